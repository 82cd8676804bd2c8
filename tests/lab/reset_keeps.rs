//! `regboot reset` removes only what regboot created: an operator's files that apply replaced
//! (a containerd hosts.toml with a mirror for the registry's name) is back byte for byte
//! after reset, a daemon.json key the operator changed after apply keeps the
//! operator's value, and `--purge-data` deletes distribution's tree in data_dir and nothing
//! else the operator keeps there.

use serde_json::Value;

use crate::support::cli::{changes, run_json};
use crate::support::lab::TestLab;

const HOSTS_TOML: &str = "/etc/containerd/certs.d/registry.lab:5000/hosts.toml";
const DATA: &str = "/var/lib/regboot/registry";

/// The operator's hosts.toml: pulls of registry.lab:5000 go through their mirror first.
const OPERATOR_TOML: &str = "server = \"https://registry.lab:5000\"\n\n\
    [host.\"https://mirror.example:5000\"]\n  capabilities = [\"pull\", \"resolve\"]\n";

fn sha(lab: &TestLab, host: &str, path: &str) -> String {
    lab.root_script(
        host,
        &format!("sha256sum '{path}' 2>/dev/null || echo missing"),
    )
}

#[test]
fn reset_keeps_what_the_operator_placed() {
    let lab = TestLab::up("rkeep", 2);
    let inv = lab.lab.inventory_path.clone();
    lab.root_script(
        "host2",
        &format!(
            "mkdir -p \"$(dirname '{HOSTS_TOML}')\"\nprintf '%s' '{OPERATOR_TOML}' > '{HOSTS_TOML}'\n"
        ),
    );
    let toml_before = sha(&lab, "host2", HOSTS_TOML);
    let mut text = std::fs::read_to_string(&inv).unwrap();
    text.push_str("\ndocker:\n  daemon_json:\n    max-concurrent-downloads: 4\n");
    std::fs::write(&inv, text).unwrap();

    let (code, applied) = run_json(&inv, &["apply"]);
    assert_eq!(code, 0, "apply: {applied:#}");
    assert_ne!(
        sha(&lab, "host2", HOSTS_TOML),
        toml_before,
        "apply kept hosts.toml"
    );
    // The operator changes a key regboot wrote.
    lab.root_script(
        "host2",
        "sed -i 's/\"max-concurrent-downloads\": 4/\"max-concurrent-downloads\": 7/' /etc/docker/daemon.json",
    );

    let (code, reset) = run_json(&inv, &["reset", "--yes"]);
    assert_eq!(code, 0, "reset: {reset:#}");
    assert_eq!(
        sha(&lab, "host2", HOSTS_TOML),
        toml_before,
        "{:#?}",
        changes(&reset)
    );
    let daemon: Value =
        serde_json::from_str(&lab.root_script("host2", "cat /etc/docker/daemon.json")).unwrap();
    assert_eq!(daemon["max-concurrent-downloads"], 7, "{daemon}");

    // --purge-data: distribution's tree goes, what the operator keeps in data_dir stays.
    lab.root_script(
        "host1",
        &format!(
            "test -d {DATA}/docker/registry\n\
             echo notes > {DATA}/docker/notes.txt\necho mine > {DATA}/mine.txt\n"
        ),
    );
    let (code, purge) = run_json(&inv, &["reset", "--yes", "--purge-data"]);
    assert_eq!(code, 0, "{purge:#}");
    assert_eq!(
        lab.root_script(
            "host1",
            &format!(
                "test -e {DATA}/docker/registry && echo registry; cat {DATA}/docker/notes.txt {DATA}/mine.txt"
            )
        ),
        "notes\nmine",
        "{:#?}",
        changes(&purge)
    );
}
