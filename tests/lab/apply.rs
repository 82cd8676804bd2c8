//! `regboot apply`, `plan` and `verify` end to end against the lab: real sshd, real dockerd
//! in each host, a real registry, real `docker push`/`docker pull` and TLS checked by curl.

use std::path::Path;
use std::process::Command;

use crate::support::cli::{assert_smoke_ok, changes, host_error, regboot, run_json};
use crate::support::lab::TestLab;
use serde_json::Value;

/// When dockerd last started, to prove it was not restarted.
fn dockerd_started(lab: &TestLab, host: &str) -> String {
    lab.ssh_ok(
        lab.host(host),
        "sudo -n systemctl show docker -p ActiveEnterTimestampMonotonic --value",
    )
}

/// HTTP status of GET /v2/ from this machine, trusting only the regboot CA.
fn curl_v2(lab: &TestLab, ca: &Path, auth: Option<&str>) -> String {
    let reg = lab.host("host1");
    let mut c = Command::new("curl");
    c.args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "--cacert"])
        .arg(ca)
        .arg("--resolve")
        .arg(format!("registry.lab:5000:{}", reg.address));
    if let Some(a) = auth {
        c.arg("-u").arg(a);
    }
    let out = c.arg("https://registry.lab:5000/v2/").output().unwrap();
    String::from_utf8_lossy(&out.stdout).to_string()
}

#[test]
fn apply_converges_repairs_drift_and_keeps_foreign_config() {
    let lab = TestLab::up("apply", 3);
    let inv = lab.lab.inventory_path.clone();
    // The user's own daemon.json key and /etc/hosts line exist before regboot arrives, and the
    // inventory asks for one reloadable daemon.json key.
    let agent = lab.host("host2");
    lab.ssh_ok(
        agent,
        "echo '{\"log-level\": \"info\"}' | sudo -n tee /etc/docker/daemon.json >/dev/null \
         && echo '192.0.2.7 mine.example' | sudo -n tee -a /etc/hosts >/dev/null",
    );
    let mut text = std::fs::read_to_string(&inv).unwrap();
    text.push_str("\ndocker:\n  daemon_json:\n    max-concurrent-downloads: 4\n");
    std::fs::write(&inv, text).unwrap();
    let started = dockerd_started(&lab, "host2");

    let (code, first) = run_json(&inv, &["apply"]);
    assert_eq!(code, 0, "first apply: {first:#}");
    assert_smoke_ok(&first, 3);
    assert!(
        changes(&first).contains(&("host2".into(), "reload dockerd (SIGHUP)".into())),
        "{first:#}"
    );

    // The user's key and line survive; the daemon was reloaded, not restarted.
    let daemon: Value =
        serde_json::from_str(&lab.ssh_ok(agent, "cat /etc/docker/daemon.json")).unwrap();
    assert_eq!(daemon["log-level"], "info");
    assert_eq!(daemon["max-concurrent-downloads"], 4);
    assert!(daemon.get("insecure-registries").is_none());
    let hosts = lab.ssh_ok(agent, "cat /etc/hosts");
    assert!(
        hosts.lines().any(|l| l == "192.0.2.7 mine.example"),
        "{hosts}"
    );
    assert!(
        hosts
            .lines()
            .any(|l| l == format!("{} registry.lab", lab.host("host1").address)),
        "{hosts}"
    );
    assert_eq!(dockerd_started(&lab, "host2"), started, "dockerd restarted");

    // TLS with only our CA: 401 without credentials, 200 with them.
    let ca = inv.parent().unwrap().join(".regboot/ca.crt");
    let password = std::fs::read_to_string(lab.lab.dir.join("registry-password")).unwrap();
    assert_eq!(curl_v2(&lab, &ca, None), "401");
    assert_eq!(
        curl_v2(&lab, &ca, Some(&format!("lab:{}", password.trim()))),
        "200"
    );

    // Second apply: nothing changes, plan agrees, no daemon restarted anywhere.
    let before: Vec<String> = ["host1", "host2", "host3"]
        .iter()
        .map(|h| dockerd_started(&lab, h))
        .collect();
    let (code, second) = run_json(&inv, &["apply"]);
    assert_eq!(code, 0, "{second:#}");
    assert!(changes(&second).is_empty(), "{second:#}");
    assert_smoke_ok(&second, 3);
    let (code, _) = run_json(&inv, &["plan"]);
    assert_eq!(code, 0, "plan after a converged apply");

    // Drift on two agents: plan shows exactly that and apply repairs exactly that.
    lab.ssh_ok(
        lab.host("host3"),
        "rm /etc/docker/certs.d/registry.lab:5000/ca.crt",
    );
    lab.ssh_ok(
        agent,
        "sed 's/.* registry.lab$/192.0.2.99 registry.lab/' /etc/hosts > /tmp/h \
         && sudo -n sh -c 'cat /tmp/h > /etc/hosts'",
    );
    let expected = vec![
        ("host2".to_string(), "write /etc/hosts".to_string()),
        (
            "host3".to_string(),
            "write /etc/docker/certs.d/registry.lab:5000/ca.crt".to_string(),
        ),
    ];
    let (code, plan) = run_json(&inv, &["plan"]);
    assert_eq!(code, 2, "{plan:#}");
    let mut planned = changes(&plan);
    planned.sort();
    assert_eq!(planned, expected);
    let (code, repair) = run_json(&inv, &["apply"]);
    assert_eq!(code, 0, "{repair:#}");
    let mut repaired = changes(&repair);
    repaired.sort();
    assert_eq!(repaired, expected);
    let (code, _) = run_json(&inv, &["plan"]);
    assert_eq!(code, 0);

    // A certs-only change restarts no daemon either.
    let after: Vec<String> = ["host1", "host2", "host3"]
        .iter()
        .map(|h| dockerd_started(&lab, h))
        .collect();
    assert_eq!(before, after, "a dockerd was restarted");

    // verify alone runs the smoke test.
    let (code, verify) = run_json(&inv, &["verify"]);
    assert_eq!(code, 0, "{verify:#}");
    assert_smoke_ok(&verify, 3);
}

#[test]
fn a_broken_host_fails_clearly_while_the_others_complete() {
    let lab = TestLab::up("broken", 3);
    let inv = lab.lab.inventory_path.clone();
    let (host2, host3) = (lab.host("host2"), lab.host("host3"));
    let invalid = "{\"log-level\": \"info\",,}\n";
    lab.ssh_ok(
        host2,
        &format!("printf '%s' '{invalid}' | sudo -n tee /etc/docker/daemon.json >/dev/null"),
    );
    // Stop docker for good on host3 (the socket would start it again on demand).
    lab.ssh_ok(host3, "systemctl stop docker.socket docker.service");

    let (code, report) = run_json(&inv, &["apply"]);
    assert_eq!(code, 1, "{report:#}");
    let e2 = host_error(&report, "host2").expect("host2 failed");
    assert!(
        e2.contains("daemon.json is not valid JSON at line 1"),
        "{e2}"
    );
    let e3 = host_error(&report, "host3").expect("host3 failed");
    assert!(e3.contains("docker engine is not running"), "{e3}");
    assert!(host_error(&report, "host1").is_none(), "{report:#}");
    assert_eq!(
        lab.ssh_ok(host2, "cat /etc/docker/daemon.json"),
        invalid.trim_end(),
        "an unparsable daemon.json must be left alone"
    );
    let text = String::from_utf8(regboot(&inv, &["apply"]).stdout).unwrap();
    assert!(text.contains("FAILED: host2, host3"), "{text}");

    // Fixed by hand, a re-run converges.
    lab.ssh_ok(
        host2,
        "echo '{\"log-level\": \"info\"}' | sudo -n tee /etc/docker/daemon.json >/dev/null",
    );
    lab.ssh_ok(host3, "systemctl start docker");
    let (code, report) = run_json(&inv, &["apply"]);
    assert_eq!(code, 0, "{report:#}");
    assert_smoke_ok(&report, 3);
    let (code, _) = run_json(&inv, &["plan"]);
    assert_eq!(code, 0);
}
