//! The engine and its safety rails against the lab, as an operator meets them: `--limit`
//! (one agent, a role, a pattern matching nothing, a rotation refusing a partial fleet), a
//! dockerd restart rolled one host at a time, a second regboot run (another state directory)
//! refused while the first holds the hosts, a registry roll that halts at the first replica
//! that cannot start, and a lost state directory that stops plan and apply before any change
//! and is recovered with `apply --replace-ca`.
//!
//! Two registry replicas (host1, host4) on the lab's shared volume, two agents (host2 as a
//! sudo user, host3 on port 2222).

use std::path::{Path, PathBuf};
use std::process::Child;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::cli::{host_error, json_of, regboot, run_json};
use crate::support::lab::TestLab;
use serde_json::Value;

const DATA_DIR: &str = "/srv/regboot-shared/engine";
const CA: &str = "/etc/docker/certs.d/registry.lab:5000/ca.crt";

/// host4 becomes a second replica on shared storage.
fn two_replicas(lab: &TestLab, data_dir: &str) -> PathBuf {
    let inv = lab.lab.inventory_path.clone();
    let text = std::fs::read_to_string(&inv).unwrap();
    let (head, tail) = text.split_once("  - name: host4").unwrap();
    let tail = tail.replacen("roles: [agent]", "roles: [registry]", 1);
    let text = format!("{head}  - name: host4{tail}").replace(
        "  users:\n",
        &format!(
            "  data_dir: {data_dir}\n  storage:\n    driver: filesystem\n    shared: true\n  users:\n"
        ),
    );
    std::fs::write(&inv, text).unwrap();
    inv
}

/// Hosts the report names, and (host, change) pairs.
fn hosts_of(report: &Value) -> Vec<String> {
    report["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["host"].as_str().unwrap().to_string())
        .collect()
}

fn changed_hosts(report: &Value) -> Vec<String> {
    report["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| {
            h["steps"]
                .as_array()
                .unwrap()
                .iter()
                .any(|s| s["status"] == "changed")
        })
        .map(|h| h["host"].as_str().unwrap().to_string())
        .collect()
}

fn stderr_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn started(lab: &TestLab, host: &str) -> String {
    lab.ssh_ok(
        lab.host(host),
        "sudo -n docker inspect -f '{{.State.StartedAt}}' regboot-registry",
    )
}

/// dockerd's last down window on `host` (monotonic µs; one kernel, so comparable across
/// the lab's hosts): from leaving active to active again.
fn restart_window(lab: &TestLab, host: &str) -> (u64, u64) {
    let out = lab.ssh_ok(
        lab.host(host),
        "systemctl show docker -p ActiveExitTimestampMonotonic -p ActiveEnterTimestampMonotonic",
    );
    let get = |key: &str| -> u64 {
        out.lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
            .unwrap()
            .parse()
            .unwrap()
    };
    (
        get("ActiveExitTimestampMonotonic"),
        get("ActiveEnterTimestampMonotonic"),
    )
}

/// Wait until `run` holds the run lock of every host in `hosts`: each host's
/// /run/regboot.owner (written once the lock is taken) names its pid. Reads only, so it never
/// takes a lock itself; bounded, and fails at once if the run ends first.
fn wait_for_run_locks(lab: &TestLab, run: &mut Child, hosts: &[&str]) {
    let mark = format!("(pid {})", run.id());
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let held = hosts.iter().all(|h| {
            lab.ssh_ok(lab.host(h), "cat /run/regboot.owner 2>/dev/null || true")
                .contains(&mark)
        });
        if held {
            return;
        }
        if let Some(status) = run.try_wait().unwrap() {
            panic!("the first apply ended ({status}) before it held every host's lock");
        }
        assert!(
            Instant::now() < deadline,
            "the first apply held not every host's lock within 120 s"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn limits_restarts_host_locks_and_halting_rolls() {
    let lab = TestLab::up("engine", 4);
    let inv = two_replicas(&lab, DATA_DIR);
    let (code, first) = run_json(&inv, &["apply"]);
    assert_eq!(code, 0, "first apply: {first:#}");

    // --limit: one agent. Drift on both agents; only host2 is looked at and repaired.
    for h in ["host2", "host3"] {
        lab.ssh_ok(lab.host(h), &format!("sudo -n rm {CA}"));
    }
    let (code, plan) = run_json(&inv, &["plan", "--limit", "role:agent"]);
    assert_eq!(code, 2, "{plan:#}");
    assert_eq!(hosts_of(&plan), ["host2", "host3"]);
    let (code, one) = run_json(&inv, &["apply", "--limit", "host2"]);
    assert_eq!(code, 0, "{one:#}");
    assert_eq!(hosts_of(&one), ["host2"]);
    assert_eq!(changed_hosts(&one), ["host2"]);
    lab.ssh_ok(lab.host("host2"), &format!("test -s {CA}"));
    assert!(
        !lab.ssh(lab.host("host3"), &format!("test -e {CA}"))
            .status
            .success()
    );
    // Globs and exclusions, and a pattern that matches nothing.
    let (code, plan) = run_json(&inv, &["plan", "--limit", "host*,!role:registry,!host2"]);
    assert_eq!(
        (code, hosts_of(&plan)),
        (2, vec!["host3".to_string()]),
        "{plan:#}"
    );
    let out = regboot(&inv, &["plan", "--limit", "node*"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr_of(&out).contains("\"node*\" matches no host"),
        "{}",
        stderr_of(&out)
    );
    // A rotation cannot leave out a replica.
    let out = regboot(&inv, &["rotate", "--leaf", "--limit", "role:agent"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr_of(&out);
    assert!(
        err.contains("leaves out host1, host4, which must take part"),
        "{err}"
    );
    let out = regboot(&inv, &["rotate", "--ca", "--limit", "!host3"]);
    assert!(
        stderr_of(&out).contains("leaves out host3"),
        "{}",
        stderr_of(&out)
    );

    // A key dockerd cannot reload: plan names the hosts that would restart, one at a time;
    // apply restarts them so, each back (and its registry healthy) before the next.
    let text = std::fs::read_to_string(&inv).unwrap();
    std::fs::write(
        &inv,
        format!("{text}\ndocker:\n  daemon_json:\n    log-driver: json-file\n"),
    )
    .unwrap();
    let out = regboot(&inv, &["plan"]);
    let plan = String::from_utf8_lossy(&out.stdout);
    assert!(
        plan.contains("one host at a time: host1, host2, host3, host4"),
        "{plan}"
    );

    // Meanwhile a second operator, with another state directory, is refused on every host.
    let other = lab.lab.dir.with_file_name("other-state");
    let mut first_run = Command::new(env!("CARGO_BIN_EXE_regboot"))
        .args(["apply", "-o", "json", "-i"])
        .arg(&inv)
        .env_remove("AWS_CA_BUNDLE")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_run_locks(&lab, &mut first_run, &["host1", "host2", "host3", "host4"]);
    let second = regboot(
        &inv,
        &[
            "apply",
            "-o",
            "json",
            "--state-dir",
            other.to_str().unwrap(),
        ],
    );
    let (code, second) = json_of(&["apply"], &second);
    assert_eq!(code, 1, "{second:#}");
    for h in ["host1", "host2", "host3", "host4"] {
        let e = host_error(&second, h).unwrap_or_default();
        assert!(
            e.contains(&format!("host {h} is being changed by another regboot run")),
            "{h}: {e}"
        );
    }
    let out = first_run.wait_with_output().unwrap();
    let (code, restarted) = json_of(&["apply"], &out);
    assert_eq!(code, 0, "{restarted:#}");
    let mut windows: Vec<(u64, u64)> = ["host1", "host2", "host3", "host4"]
        .iter()
        .map(|h| restart_window(&lab, h))
        .collect();
    windows.sort();
    for pair in windows.windows(2) {
        assert!(
            pair[0].1 <= pair[1].0,
            "dockerd restarts overlapped: {windows:?}"
        );
    }
    // The lock went with the first run's connections: a plan and an apply go through.
    let (code, again) = run_json(&inv, &["apply"]);
    assert_eq!(code, 0, "{again:#}");

    // A replica that cannot start halts the roll: host4 is never touched, and neither are
    // the files the serving containers load (config.yml, certificates), on disk: the new
    // config.yml (delete disabled) waits beside them until a container of its own mounts it.
    let mounted = |h: &str| {
        lab.root_script(
            h,
            "docker inspect -f '{{range .Mounts}}{{if or (eq .Destination \"/etc/docker/registry/config.yml\") \
             (eq .Destination \"/certs\")}}{{.Source}} {{end}}{{end}}' regboot-registry | \
             xargs -n1 sh -c 'find \"$0\" -type f | xargs sha256sum' | sort",
        )
    };
    let mounted_before = ["host1", "host4"].map(mounted);
    for h in ["host1", "host4"] {
        lab.ssh_ok(
            lab.host(h),
            "tar cf - --files-from /dev/null | docker import -c 'ENTRYPOINT [\"/nonexistent\"]' - regboot-lab/broken:1 >/dev/null",
        );
    }
    let host4_before = started(&lab, "host4");
    let good = std::fs::read_to_string(&inv).unwrap();
    let image_line = good
        .lines()
        .find(|l| l.starts_with("  image: "))
        .unwrap()
        .to_string();
    std::fs::write(
        &inv,
        good.replace(
            &image_line,
            "  image: regboot-lab/broken:1\n  delete_enabled: false",
        ),
    )
    .unwrap();
    let (code, halted) = run_json(&inv, &["apply"]);
    assert_eq!(code, 1, "{halted:#}");
    assert!(host_error(&halted, "host1").is_some(), "{halted:#}");
    assert_eq!(
        host_error(&halted, "host4"),
        Some("not started: the roll halted after host1 failed")
    );
    assert!(
        halted["notes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n.as_str().unwrap().contains(
                "the run halted: the roll of \"registry container\" stopped after host1 failed"
            )),
        "{halted:#}"
    );
    assert_eq!(started(&lab, "host4"), host4_before, "host4 was touched");
    assert_eq!(
        ["host1", "host4"].map(mounted),
        mounted_before,
        "the serving containers' files changed on disk"
    );
    // Fixed, a re-run converges both.
    std::fs::write(&inv, good).unwrap();
    let (code, fixed) = run_json(&inv, &["apply"]);
    assert_eq!(code, 0, "{fixed:#}");
    let (code, _) = run_json(&inv, &["plan"]);
    assert_eq!(code, 0);
}

fn ca_fingerprints(lab: &TestLab) -> Vec<String> {
    ["host1", "host2", "host3"]
        .iter()
        .map(|h| lab.ssh_ok(lab.host(h), &format!("sha256sum {CA}")))
        .collect()
}

fn state(dir: &Path) -> String {
    dir.to_str().unwrap().to_string()
}

#[test]
fn a_lost_state_directory_stops_and_is_recovered_without_an_overwrite() {
    let lab = TestLab::up("lost", 3);
    let inv = lab.lab.inventory_path.clone();
    let (code, first) = run_json(&inv, &["apply"]);
    assert_eq!(code, 0, "{first:#}");
    let trusted = ca_fingerprints(&lab);

    // A fresh state directory: plan and apply stop before any change, naming the way out.
    let lost = lab.lab.dir.with_file_name("lost-state");
    for cmd in ["plan", "apply"] {
        let out = regboot(&inv, &[cmd, "--state-dir", &state(&lost)]);
        assert_eq!(out.status.code(), Some(1), "{cmd}");
        let err = stderr_of(&out);
        for says in [
            "hosts trust a regboot CA it does not hold",
            "host1, host2, host3: CA",
            "regboot certs import",
            "regboot apply --replace-ca",
        ] {
            assert!(err.contains(says), "{cmd}: {says:?} not in:\n{err}");
        }
    }
    assert_eq!(ca_fingerprints(&lab), trusted, "a host's CA changed");
    assert!(!lost.join("ca.key").exists(), "a CA was minted");

    // The way out: a new CA rolled in like rotate --ca, then apply; every stage's smoke test
    // pulls on every host.
    let out = regboot(
        &inv,
        &["apply", "--replace-ca", "--state-dir", &state(&lost)],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}\n{}", stderr_of(&out));
    assert!(
        text.contains("replace-ca: read back from the hosts"),
        "{text}"
    );
    let now = ca_fingerprints(&lab);
    assert_ne!(now, trusted);
    let new_ca = std::fs::read_to_string(lost.join("ca.crt")).unwrap();
    let held = lab.ssh_ok(lab.host("host3"), &format!("cat {CA}"));
    assert_eq!(held.trim(), new_ca.trim());
    let (code, plan) = run_json(&inv, &["plan", "--state-dir", &state(&lost)]);
    assert_eq!(code, 0, "{plan:#}");
    // The old state directory is now the stranger: it is stopped the same way.
    let out = regboot(&inv, &["plan"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr_of(&out).contains("holds another CA"),
        "{}",
        stderr_of(&out)
    );
}

/// A roll cut off midway is drift that plan names: a `regboot-registry-next` left beside the
/// serving container, then the front switched by hand to the other loopback slot. Each makes
/// plan exit 2 with "finish or undo the interrupted roll"; apply settles it (the leftover
/// goes, nginx passes to the serving container again) and the next plan is clean.
#[test]
fn an_interrupted_roll_is_drift_that_apply_settles() {
    let lab = TestLab::up("roll-cut", 2);
    let inv = lab.lab.inventory_path.clone();
    let (code, applied) = run_json(&inv, &["apply"]);
    assert_eq!(code, 0, "apply: {applied:#}");
    let own = lab.root_script(
        "host1",
        "docker inspect -f '{{index .Config.Labels \"io.regboot.backend\"}}' regboot-registry",
    );
    let other = if own == "415" { "416" } else { "415" };
    let plan = |why: &str| {
        let out = regboot(&inv, &["plan"]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert_eq!(out.status.code(), Some(2), "{text}");
        let want = format!("finish or undo the interrupted roll ({why})");
        assert!(text.contains(&want), "no {want:?} in\n{text}");
    };
    let settle = || {
        let (code, report) = run_json(&inv, &["apply"]);
        assert_eq!(code, 0, "apply: {report:#}");
        let out = regboot(&inv, &["plan"]);
        assert_eq!(out.status.code(), Some(0), "plan after apply: {out:?}");
    };

    // Cut off before its switch: the next container exists, nginx still passes to the old one.
    let image = regboot::lab::REGISTRY_IMAGE;
    lab.root_script(
        "host1",
        &format!(
            "docker create --name regboot-registry-next --label io.regboot.backend={other} {image} >/dev/null"
        ),
    );
    plan("regboot-registry-next is still there; nginx does not pass to it");
    settle();
    lab.root_script(
        "host1",
        "! docker inspect regboot-registry-next >/dev/null 2>&1",
    );

    // The front switched to the other slot, where nothing listens.
    lab.root_script(
        "host1",
        &format!(
            "sed -i 's/127.0.0.1:{own}/127.0.0.1:{other}/' /etc/nginx/regboot-backend.conf && \
             systemctl reload nginx"
        ),
    );
    plan(&format!(
        "nginx passes to 127.0.0.1:{other}, regboot-registry listens on 127.0.0.1:{own}"
    ));
    settle();
    let backend = lab.root_script("host1", "cat /etc/nginx/regboot-backend.conf");
    assert!(backend.contains(&format!("127.0.0.1:{own};")), "{backend}");
}
