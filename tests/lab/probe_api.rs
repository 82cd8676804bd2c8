//! Issue 28: where root logs in, the probe reads dockerd through its API over the SSH
//! connection (`GET /info`, the images and containers by name), not with the docker CLI; a
//! sudo login, whose user cannot open the socket, reads them with the CLI as before.

use crate::support::cli::{changes, run_json};
use crate::support::lab::TestLab;

/// The changes plan would make on `host`.
fn planned(report: &serde_json::Value, host: &str) -> Vec<String> {
    changes(report)
        .into_iter()
        .filter(|(h, _)| h == host)
        .map(|(_, c)| c)
        .collect()
}

#[test]
fn the_probe_reads_dockerd_without_its_cli_where_root_logs_in() {
    let lab = TestLab::up("probe-api", 2);
    let inv = lab.lab.inventory_path.clone();
    let (code, first) = run_json(&inv, &["apply"]);
    assert_eq!(code, 0, "first apply: {first:#}");

    // host1 (the registry, root logs in) without the docker CLI; dockerd still runs.
    lab.root_script("host1", "mv /usr/bin/docker /usr/bin/docker.off");
    let (code, plan) = run_json(&inv, &["plan"]);
    assert_eq!(code, 0, "a converged lab without the CLI: {plan:#}");
    // Drift is seen the same way: a stopped registry container is started again.
    lab.root_script("host1", "docker.off stop regboot-registry >/dev/null");
    let (code, plan) = run_json(&inv, &["plan"]);
    assert_eq!(code, 2, "{plan:#}");
    let host1 = planned(&plan, "host1");
    assert!(
        host1.iter().any(|c| c.contains("regboot-registry")),
        "{plan:#}"
    );

    // As a sudo login (ops is outside the docker group) the CLI reads the same.
    lab.root_script("host1", "mv /usr/bin/docker.off /usr/bin/docker");
    let text = std::fs::read_to_string(&inv).unwrap();
    let ops = text.replacen("- name: host1\n", "- name: host1\n    user: ops\n", 1);
    assert_ne!(ops, text, "the inventory names host1 as expected");
    std::fs::write(&inv, ops).unwrap();
    let (code, again) = run_json(&inv, &["plan"]);
    assert_eq!(code, 2, "{again:#}");
    assert_eq!(planned(&again, "host1"), host1, "{again:#}");
    lab.root_script("host1", "docker start regboot-registry >/dev/null");
    let (code, plan) = run_json(&inv, &["plan"]);
    assert_eq!(code, 0, "{plan:#}");
}
