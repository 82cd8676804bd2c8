//! High availability end to end against the HA lab (`lab up --profile ha`): two lb hosts
//! (nginx + keepalived holding the VIP), three registry replicas on SeaweedFS S3, two agents.
//! One lab, scenarios in order: apply; push and pull through the VIP; a replica down; the
//! MASTER's keepalived stopped, then the new MASTER's nginx stopped (the VIP moves each time);
//! every time, a later `apply` converges and a `plan` finds nothing to change. Then a drained
//! replica, and gc on the S3 storage.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::lab::TestLab;
use regboot::lab::Profile;
use serde_json::Value;

/// How long the VIP may take to move (keepalived: advert 1 s, check every 2 s, fall 2).
const FAILOVER_BOUND: Duration = Duration::from_secs(20);

fn run_json(lab: &TestLab, cmd: &str) -> (i32, Value) {
    crate::support::cli::json_of(&[cmd], &lab.regboot_s3(&[cmd, "-o", "json"]))
}

fn smoke<'a>(report: &'a Value, action: &str) -> Vec<&'a Value> {
    report["smoke"]
        .as_array()
        .map(|s| s.iter().filter(|r| r["action"] == action).collect())
        .unwrap_or_default()
}

/// The push and all six pulls (through the VIP) succeeded.
fn assert_push_and_pulls_ok(report: &Value) {
    let push = smoke(report, "push");
    assert!(push.len() == 1 && push[0]["ok"] == true, "push: {push:#?}");
    let pulls = smoke(report, "pull");
    assert_eq!(pulls.len(), 6, "pulls: {pulls:#?}");
    assert!(pulls.iter().all(|p| p["ok"] == true), "pulls: {pulls:#?}");
}

/// Names of the replicas whose direct manifest read failed.
fn failed_replicas(report: &Value) -> Vec<String> {
    smoke(report, "replica")
        .iter()
        .filter(|r| r["ok"] != true)
        .map(|r| r["host"].as_str().unwrap_or("").to_string())
        .collect()
}

fn assert_converged(lab: &TestLab) {
    let out = lab.regboot_s3(&["plan"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "plan after apply must find nothing to change:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// The inventory with `storage:` replaced by shared filesystem storage.
fn shared_filesystem(text: &str) -> String {
    let start = text
        .find("  storage:\n")
        .expect("the HA inventory has storage");
    let end = start
        + text[start..]
            .find("  users:")
            .expect("users follow storage");
    format!(
        "{}  storage:\n    driver: filesystem\n    shared: true\n{}",
        &text[..start],
        &text[end..]
    )
}

/// The lb host that holds the VIP now (None when neither does).
fn vip_holder(lab: &TestLab, vip: &str) -> Option<String> {
    ["host1", "host2"]
        .into_iter()
        .find(|h| {
            lab.ssh_ok(lab.host(h), "ip -4 -o addr show")
                .contains(&format!(" {vip}/"))
        })
        .map(String::from)
}

/// Wait (bounded) until `to` holds the VIP; the seconds it took.
fn wait_vip_on(lab: &TestLab, vip: &str, to: &str) -> f64 {
    let start = Instant::now();
    while start.elapsed() < FAILOVER_BOUND {
        if vip_holder(lab, vip).as_deref() == Some(to) {
            return start.elapsed().as_secs_f64();
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!(
        "the VIP did not move to {to} within {} s (now on {:?})",
        FAILOVER_BOUND.as_secs(),
        vip_holder(lab, vip)
    );
}

#[test]
fn ha_lab_survives_a_replica_and_a_balancer_failing() {
    let lab = TestLab::up_profile("ha", 8, Profile::Ha);
    let vip = lab.lab.vip.clone().expect("the HA lab has a VIP");

    // 0. A bucket that does not exist is a clear error unless the inventory lets apply
    //    create it; plan says it would.
    let text = std::fs::read_to_string(&lab.lab.inventory_path).unwrap();
    let absent = text
        .replace("bucket: registry", "bucket: absent")
        .replace("create_bucket: true", "create_bucket: false");
    let absent_path = lab.lab.dir.with_file_name("absent-bucket.yml");
    std::fs::write(&absent_path, absent).unwrap();
    let out = lab.regboot_s3_on(&absent_path, &["plan"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("bucket \"absent\"")
            && stdout.contains("does not exist")
            && stdout.contains("create_bucket: true"),
        "{stdout}"
    );
    let out = lab.regboot_s3(&["plan"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("storage: would create bucket \"registry\""),
        "{stdout}"
    );
    // Filesystem storage for three replicas is accepted only as shared, and plan says that
    // regboot trusts it.
    let shared_path = lab.lab.dir.with_file_name("shared-fs.yml");
    std::fs::write(&shared_path, shared_filesystem(&text)).unwrap();
    let out = lab.regboot_s3_on(&shared_path, &["plan"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("storage: filesystem with 3 replicas")
            && stdout.contains("must be the same shared storage"),
        "{stdout}"
    );

    // 1. One apply sets up everything; the first lb (highest priority) holds the VIP.
    let (code, report) = run_json(&lab, "apply");
    assert_eq!(code, 0, "apply: {report:#}");
    assert!(
        report["notes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n.as_str() == Some("storage: created bucket \"registry\"")),
        "notes: {:#}",
        report["notes"]
    );
    assert_push_and_pulls_ok(&report);
    assert!(failed_replicas(&report).is_empty(), "{report:#}");
    assert_eq!(smoke(&report, "catalog").len(), 3);
    assert_eq!(vip_holder(&lab, &vip).as_deref(), Some("host1"));
    // nginx serves a certificate valid for the VIP and for the hostname (checked by curl from
    // this machine against the regboot CA only).
    let ca = lab.lab.dir.join(".regboot").join("ca.crt");
    for (url, resolve) in [
        (format!("https://{vip}:5000/v2/"), None),
        (
            "https://registry.lab:5000/v2/".to_string(),
            Some(format!("registry.lab:5000:{vip}")),
        ),
    ] {
        let mut c = Command::new("curl");
        c.args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--max-time",
            "10",
        ])
        .arg("--cacert")
        .arg(&ca);
        if let Some(r) = &resolve {
            c.arg("--resolve").arg(r);
        }
        let out = c.arg(&url).output().expect("curl");
        assert_eq!(String::from_utf8_lossy(&out.stdout), "401", "{url}");
    }
    // Every host resolves the registry name to the VIP.
    let resolved = lab.ssh_ok(lab.host("host7"), "getent hosts registry.lab");
    assert!(resolved.starts_with(&vip), "{resolved}");
    assert_converged(&lab);

    // 2. One replica's registry container stops: pushes and pulls through the VIP go on, and
    //    verify names the replica that does not answer. apply brings it back.
    lab.ssh_ok(lab.host("host4"), "docker stop regboot-registry");
    let (code, report) = run_json(&lab, "verify");
    assert_push_and_pulls_ok(&report);
    assert_eq!(failed_replicas(&report), ["host4"], "{report:#}");
    assert_ne!(code, 0, "a replica down is a failed verify");
    let (code, report) = run_json(&lab, "apply");
    assert_eq!(code, 0, "apply: {report:#}");
    assert_converged(&lab);

    // 3. keepalived stops on the MASTER: the VIP moves to the backup, work goes on.
    lab.ssh_ok(lab.host("host1"), "sudo -n systemctl stop keepalived");
    let took = wait_vip_on(&lab, &vip, "host2");
    eprintln!("VIP moved to host2 {took:.1} s after keepalived stopped on host1");
    let (code, report) = run_json(&lab, "verify");
    assert_eq!(code, 0, "verify after failover: {report:#}");
    assert_push_and_pulls_ok(&report);
    // Started again it stays BACKUP (nopreempt); apply has nothing to do.
    lab.ssh_ok(lab.host("host1"), "sudo -n systemctl start keepalived");
    let (code, report) = run_json(&lab, "apply");
    assert_eq!(code, 0, "apply: {report:#}");
    assert_eq!(vip_holder(&lab, &vip).as_deref(), Some("host2"));
    assert_converged(&lab);

    // 4. nginx stops on the new MASTER: its check fails, the VIP goes back to host1.
    lab.ssh_ok(lab.host("host2"), "sudo -n systemctl stop nginx");
    let took = wait_vip_on(&lab, &vip, "host1");
    eprintln!("VIP moved to host1 {took:.1} s after nginx stopped on host2");
    let (code, report) = run_json(&lab, "verify");
    assert_eq!(code, 0, "verify after failover: {report:#}");
    assert_push_and_pulls_ok(&report);
    // apply starts nginx again (it is not active) and then converges.
    let (code, report) = run_json(&lab, "apply");
    assert_eq!(code, 0, "apply: {report:#}");
    let text = report.to_string();
    assert!(text.contains("start nginx (not active)"), "{report:#}");
    assert_converged(&lab);

    // 5. `drain: true` on host3: the lb hosts mark it down, and the requests of a verify
    //    reach only the other replicas (the access log names the upstream of each).
    let drained = lab.host("host3").address.clone();
    let inv = &lab.lab.inventory_path;
    let text = std::fs::read_to_string(inv).unwrap();
    let text = text.replacen("- name: host3\n", "- name: host3\n    drain: true\n", 1);
    assert!(text.contains("drain: true"), "{text}");
    std::fs::write(inv, text).unwrap();
    let (code, report) = run_json(&lab, "apply");
    assert_eq!(code, 0, "apply with host3 drained: {report:#}");
    let conf = lab.ssh_ok(lab.host("host1"), "cat /etc/nginx/nginx.conf");
    assert!(
        conf.contains(&format!(
            "server {drained}:5000 max_fails=1 fail_timeout=5s down;"
        )),
        "{conf}"
    );
    let log = "/var/log/nginx/access.log";
    let before: usize = lab
        .ssh_ok(lab.host("host1"), &format!("sudo -n wc -l < {log}"))
        .parse()
        .unwrap();
    let (code, report) = run_json(&lab, "verify");
    assert_eq!(code, 0, "verify with host3 drained: {report:#}");
    assert_push_and_pulls_ok(&report);
    let lines = lab.ssh_ok(
        lab.host("host1"),
        &format!("sudo -n tail -n +{} {log}", before + 1),
    );
    assert!(lines.contains("upstream="), "{lines}");
    assert!(!lines.contains(&format!("{drained}:5000")), "{lines}");
    assert_converged(&lab);

    // 6. gc on the S3 storage: every replica read-only in turn, the collector once, back.
    let (code, report) =
        crate::support::cli::json_of(&["gc"], &lab.regboot_s3(&["gc", "-o", "json"]));
    assert_eq!(code, 0, "gc: {report:#}");
    assert_eq!(report["rolls"].as_array().unwrap().len(), 2, "{report:#}");
    let (code, report) = run_json(&lab, "verify");
    assert_eq!(code, 0, "verify after gc: {report:#}");
    assert_converged(&lab);
}

#[test]
fn ha_profile_refuses_another_host_count_before_starting_anything() {
    let out = Command::new(env!("CARGO_BIN_EXE_regboot"))
        .args([
            "lab",
            "up",
            "--profile",
            "ha",
            "--hosts",
            "5",
            "--name",
            "never",
        ])
        .arg("--dir")
        .arg(Path::new("/nonexistent/never"))
        .output()
        .expect("run regboot");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--profile ha always has 8 hosts"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
