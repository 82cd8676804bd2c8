//! `regboot reset` end to end against the lab: a host reset after apply is, file for file
//! under /etc and /usr/local/share/ca-certificates (path, type, mode, SHA-256), in its
//! containers and images, the host it was before apply; the state directory is not needed;
//! the refusals (no --yes without a terminal) change nothing; --purge-data removes the data.

use crate::support::cli::{changes, regboot, run_json};
use crate::support::lab::TestLab;
use serde_json::Value;

/// Besides the paths (`TestLab::fingerprint`): the containers and images of dockerd.
const FINGERPRINT: &str = r#"echo containers:; docker ps -a --format '{{.Names}} {{.Image}} {{.Status}}' | sed 's/ Up .*/ Up/' | LC_ALL=C sort
echo images:; docker image ls --format '{{.Repository}}:{{.Tag}} {{.ID}}' | LC_ALL=C sort
"#;

/// The lines only in `a` and only in `b`, for a readable failure.
fn difference(a: &str, b: &str) -> String {
    let only = |x: &str, y: &str| -> Vec<String> {
        x.lines()
            .filter(|l| !y.lines().any(|m| m == *l))
            .map(String::from)
            .collect()
    };
    format!(
        "only before:\n  {}\nonly after:\n  {}",
        only(a, b).join("\n  "),
        only(b, a).join("\n  ")
    )
}

#[test]
fn reset_returns_hosts_to_what_they_were() {
    let lab = TestLab::up("reset", 2);
    let inv = lab.lab.inventory_path.clone();
    // The operator's own daemon.json (one key regboot replaces, one list it extends) and
    // /etc/hosts line exist before regboot arrives.
    let agent = lab.host("host2");
    lab.ssh_ok(
        agent,
        "printf '{\\n  \"log-level\": \"info\",\\n  \"debug\": false,\\n  \"registry-mirrors\": [\"https://mine.example\"]\\n}\\n' \
         | sudo -n tee /etc/docker/daemon.json >/dev/null \
         && echo '192.0.2.7 mine.example' | sudo -n tee -a /etc/hosts >/dev/null",
    );
    let mut text = std::fs::read_to_string(&inv).unwrap();
    text.push_str(
        "\ndocker:\n  daemon_json:\n    debug: true\n    max-concurrent-downloads: 4\n    \
         registry-mirrors: [\"https://mirror.example\"]\n",
    );
    std::fs::write(&inv, text).unwrap();
    let fresh: Vec<String> = ["host1", "host2"]
        .iter()
        .map(|h| lab.fingerprint(h, FINGERPRINT))
        .collect();
    assert!(
        fresh[0].contains("/etc/ssl/certs/ca-certificates.crt"),
        "{}",
        fresh[0]
    );

    let (code, applied) = run_json(&inv, &["apply"]);
    assert_eq!(code, 0, "apply: {applied:#}");
    let daemon: Value =
        serde_json::from_str(&lab.ssh_ok(agent, "cat /etc/docker/daemon.json")).unwrap();
    assert_eq!(daemon["debug"], true);
    assert_eq!(
        daemon["registry-mirrors"],
        serde_json::json!(["https://mine.example", "https://mirror.example"])
    );
    // A second apply: the manifest is not rewritten.
    let (code, second) = run_json(&inv, &["apply"]);
    assert_eq!(code, 0, "{second:#}");
    assert!(changes(&second).is_empty(), "{second:#}");
    let manifest = lab.ssh_ok(agent, "sudo -n cat /etc/regboot/manifest.json");
    let applied_fp = lab.fingerprint("host2", FINGERPRINT);

    // No --yes and no terminal (stdin is /dev/null here): refused, nothing changed.
    let out = regboot(&inv, &["reset"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no terminal to ask on") && err.contains("regboot reset --yes"),
        "{err}"
    );
    assert_eq!(
        lab.fingerprint("host2", FINGERPRINT),
        applied_fp,
        "a refusal changed host2"
    );

    // The state directory is not needed: move it away for the reset.
    let state = inv.parent().unwrap().join(".regboot");
    let away = inv.parent().unwrap().join("state-away");
    std::fs::rename(&state, &away).unwrap();

    // --plan: what would go, per host; exit 2; nothing changes.
    let (code, plan) = run_json(&inv, &["reset", "--plan"]);
    assert_eq!(code, 2, "{plan:#}");
    let planned = changes(&plan);
    for (host, line) in [
        (
            "host1",
            "remove container regboot-registry (its data in /var/lib/regboot/registry stays)",
        ),
        ("host2", "write /etc/docker/daemon.json"),
        ("host2", "write /etc/hosts"),
        (
            "host2",
            "remove /etc/regboot (regboot's files, saved originals and manifest)",
        ),
    ] {
        assert!(
            planned.contains(&(host.into(), line.into())),
            "{line} on {host} not planned: {planned:#?}"
        );
    }
    assert_eq!(
        lab.fingerprint("host2", FINGERPRINT),
        applied_fp,
        "plan changed host2"
    );

    let (code, reset) = run_json(&inv, &["reset", "--yes"]);
    assert_eq!(code, 0, "reset: {reset:#}");
    assert!(!state.exists(), "reset created a state directory");
    for (i, host) in ["host1", "host2"].iter().enumerate() {
        let now = lab.fingerprint(host, FINGERPRINT);
        assert!(
            now == fresh[i],
            "{host} differs from before apply:\n{}",
            difference(&fresh[i], &now)
        );
    }
    // Data stays without --purge-data; nothing is left to reset but the data.
    let reg = lab.host("host1");
    assert_eq!(
        lab.ssh_ok(reg, "test -d /var/lib/regboot/registry/docker && echo kept"),
        "kept"
    );
    let (code, again) = run_json(&inv, &["reset", "--plan"]);
    assert_eq!(code, 0, "{again:#}");

    // The manifest told reset what was the operator's: their daemon.json is back byte for
    // byte (it was checked above with the rest of /etc; here for the reader).
    assert!(manifest.contains("\"before\": false"), "{manifest}");

    // --purge-data: the data and the directories regboot created for it go.
    let (code, purge) = run_json(&inv, &["reset", "--yes", "--purge-data"]);
    assert_eq!(code, 0, "{purge:#}");
    assert_eq!(
        changes(&purge),
        [(
            "host1".to_string(),
            "DELETE the registry's data /var/lib/regboot/registry/docker/registry (--purge-data); \
             remove /var/lib/regboot/registry /var/lib/regboot when empty (regboot created it)"
                .to_string()
        )]
    );
    assert_eq!(
        lab.ssh_ok(reg, "test -e /var/lib/regboot && echo left || echo gone"),
        "gone"
    );

    // Applied again after a reset, with the state directory back: a working registry.
    std::fs::rename(&away, &state).unwrap();
    let (code, reapplied) = run_json(&inv, &["apply"]);
    assert_eq!(code, 0, "apply after reset: {reapplied:#}");
    let smoke = reapplied["smoke"].as_array().unwrap();
    assert!(smoke.iter().all(|s| s["ok"] == true), "{smoke:#?}");
}
