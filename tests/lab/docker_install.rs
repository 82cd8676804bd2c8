//! `docker.install: true` against the lab: a host whose container runtimes were removed
//! (apt-get purge docker.io containerd inside it: with containerd left it would be a valid
//! containerd-only agent) fails apply with the sentence that enables the key; with it,
//! apply installs docker.io from Debian's mirror, starts it, and the host takes part in the
//! smoke test (it is the only agent, so it pushes and the registry host pulls).

use crate::support::cli::run_json;
use crate::support::lab::TestLab;

#[test]
fn a_host_without_docker_gets_it_when_asked() {
    let lab = TestLab::up("dinst", 2);
    let inv = lab.lab.inventory_path.clone();
    let agent = lab.host("host2");
    lab.ssh_ok(
        agent,
        "sudo -n systemctl stop docker.socket docker.service \
         && sudo -n env DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq docker.io containerd >/dev/null \
         && ! command -v docker && ! command -v dockerd && ! command -v containerd",
    );

    let (code, report) = run_json(&inv, &["apply"]);
    assert_eq!(code, 1, "{report:#}");
    let host2 = report["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["host"] == "host2")
        .unwrap();
    let error = host2["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("docker is not installed: set `docker.install: true`"),
        "{error}"
    );

    let mut text = std::fs::read_to_string(&inv).unwrap();
    text.push_str("\ndocker:\n  install: true\n");
    std::fs::write(&inv, text).unwrap();
    let started = std::time::Instant::now();
    let (code, report) = run_json(&inv, &["apply"]);
    eprintln!(
        "apply with docker.install took {:.0} s",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(code, 0, "{report:#}");
    let smoke = report["smoke"].as_array().unwrap();
    assert!(smoke.iter().all(|s| s["ok"] == true), "{smoke:#?}");
    assert!(
        smoke
            .iter()
            .any(|s| s["host"] == "host2" && (s["action"] == "push" || s["action"] == "pull")),
        "{smoke:#?}"
    );
    assert_eq!(
        lab.ssh_ok(
            agent,
            "systemctl is-active docker && systemctl is-enabled docker"
        ),
        "active\nenabled"
    );
    // Converged: a second apply changes nothing.
    let (code, again) = run_json(&inv, &["apply"]);
    assert_eq!(code, 0, "{again:#}");
    let changed: usize = again["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|h| h["steps"].as_array().unwrap())
        .map(|s| s["changes"].as_array().unwrap().len())
        .sum();
    assert_eq!(changed, 0, "{again:#}");
}
