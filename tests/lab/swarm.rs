//! `registry.deploy: swarm` on the swarm lab (host1 and host2 registry hosts, host3 an agent
//! outside the swarm serving the S3 storage): apply makes the swarm and the service, the smoke
//! test passes (push from one host, pulls through every runtime on the others), the service
//! spec holds no secret; then, with zero_downtime's loops running (host3 pulls every 0.2 s,
//! host2 pushes in a loop and probes /v2/ every 50 ms), `rotate --leaf`, `rotate --ca` and a
//! task killed with `docker kill` fail no request (but the upload the killed task was
//! receiving, which is reported); plan shows no drift; reset takes the
//! service, secrets, labels and the swarm away. Last, a swarm regboot did not make is refused
//! without `swarm.existing: true`, used with it, and kept by reset.

use std::time::{Duration, Instant};

use crate::support::lab::TestLab;
use crate::zero_downtime::{Topology, finish_loops, root, start_loops, timed};
use regboot::lab::{LabHost, Profile};

/// Runs `cmd` as root on `h` and returns its stdout.
fn on(t: &Topology, h: &LabHost, cmd: &str) -> String {
    t.lab.ssh_ok(h, &root(h, cmd))
}

fn swarm_state(t: &Topology, h: &LabHost) -> String {
    on(t, h, "docker info --format {{.Swarm.LocalNodeState}}")
        .trim()
        .to_string()
}

#[test]
fn the_registry_runs_as_a_swarm_service_and_rolls_without_a_failed_request() {
    let started = Instant::now();
    let lab = TestLab::up_profile("swarm", 3, Profile::Swarm);
    let t = Topology {
        lab: &lab,
        registries: vec![lab.host("host1"), lab.host("host2")],
        puller: lab.host("host3"),
        pusher: lab.host("host2"),
        env: lab.s3_env(),
    };
    let (host1, host2, host3) = (lab.host("host1"), lab.host("host2"), lab.host("host3"));

    // apply exits 0 only when the smoke test passed on every host.
    let out = t.ok(&["apply"]);
    assert!(out.contains("initialise a swarm"), "{out}");
    assert!(out.contains("join the swarm of host1"), "{out}");
    assert!(out.contains("replica ok"), "{out}");
    assert_eq!(swarm_state(&t, host1), "active");
    assert_eq!(swarm_state(&t, host2), "active");
    assert_eq!(swarm_state(&t, host3), "inactive");
    t.assert_no_drift();
    // certs check reads what each host's task serves (and the front, through the hostname).
    let out = t.regboot(&["certs", "check"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("served@host2"), "{text}");

    // Nothing secret in the spec: neither the http secret nor the S3 key nor the TLS key.
    let inspect = on(&t, host1, "docker service inspect $(docker service ls -q)");
    let config = on(&t, host1, "cat /etc/regboot/registry/config.yml");
    let key = on(&t, host1, "cat /etc/regboot/registry/certs/registry.key");
    for line in config
        .lines()
        .filter(|l| l.contains("secret:") || l.contains("secretkey:"))
        .chain(key.lines().filter(|l| !l.starts_with("-----")))
    {
        let value = line.rsplit(' ').next().unwrap();
        assert!(!inspect.contains(value), "{line:?} is in the service spec");
    }
    assert!(
        inspect.contains("\"SecretName\": \"regboot-key-"),
        "{inspect}"
    );

    let tmp = tempfile::tempdir().unwrap();
    start_loops(&t, tmp.path());
    let mut windows = Vec::new();
    let mut measure = |name: &str, op: &mut dyn FnMut()| timed(&mut windows, name, op);
    // This loaded machine's own pace, to compare the rows below with.
    measure("idle (5 s, no change)", &mut || {
        std::thread::sleep(Duration::from_secs(5))
    });
    measure("rotate --leaf", &mut || {
        let out = t.ok(&["rotate", "--leaf"]);
        assert!(out.contains("create service regboot-registry-"), "{out}");
    });
    measure("rotate --ca (three stages)", &mut || {
        t.ok(&["rotate", "--ca"]);
    });
    measure("docker kill of host1's task (8 s)", &mut || {
        on(
            &t,
            host1,
            "docker kill $(docker ps -q --filter label=io.regboot.service=registry)",
        );
        std::thread::sleep(Duration::from_secs(8));
    });
    // An upload the killed task was receiving is lost (docker push does not retry a manifest
    // or a finished layer); pulls and probes must go on (nginx retries them on host2's task).
    windows.last_mut().unwrap().tolerated.push("push loop");
    finish_loops(&t, &windows);
    // Swarm started a new task in the killed one's place.
    let tasks = on(
        &t,
        host1,
        "docker ps --filter label=io.regboot.service=registry --format {{.Status}}",
    );
    assert!(tasks.starts_with("Up"), "{tasks}");
    t.assert_no_drift();

    let out = t.ok(&["reset", "--yes"]);
    assert!(out.contains("leave the swarm regboot created"), "{out}");
    for h in [host1, host2] {
        assert_eq!(swarm_state(&t, h), "inactive");
        // The tasks' containers go with the swarm (asynchronously).
        let deadline = Instant::now() + Duration::from_secs(30);
        while !on(&t, h, "docker ps -aq").trim().is_empty() {
            assert!(Instant::now() < deadline, "tasks left on {}", h.name);
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    // A swarm someone else made: refused by name, used with swarm.existing, kept by reset.
    on(
        &t,
        host1,
        &format!(
            "docker swarm init --advertise-addr {} >/dev/null",
            host1.address
        ),
    );
    let out = t.regboot(&["plan"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("swarm.existing: true"), "{text}");
    let inv = &lab.lab.inventory_path;
    let yaml = std::fs::read_to_string(inv).unwrap();
    std::fs::write(inv, format!("{yaml}\nswarm:\n  existing: true\n")).unwrap();
    t.ok(&["apply"]);
    t.ok(&["reset", "--yes"]);
    assert_eq!(swarm_state(&t, host1), "active");
    assert_eq!(on(&t, host1, "docker service ls -q | wc -l").trim(), "0");
    assert_eq!(swarm_state(&t, host2), "inactive");
    println!("swarm scenario: {:.0} s", started.elapsed().as_secs_f64());
}
