//! `-o json` on every command, failures included: stdout is one JSON object with
//! `schema_version`, and the exit code is the one text mode gives. The hosts are a loopback
//! port nothing listens on (127.0.0.1:1) and a real sshd whose host key is refused.

mod support;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;
use support::sshd::{Sshd, SshdOptions, keygen, public_key};

/// Exit code and stdout of `regboot ARGS` (stdin: `input`), in a directory of its own.
fn run(dir: &Path, args: &[&str], input: &str) -> (i32, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_regboot"))
        .current_dir(dir)
        .env("REGBOOT_BACKUP_PASSPHRASE", "a passphrase for the test")
        .env_remove("REGBOOT_INVENTORY")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// Run `args` in text and in JSON: the same exit code, and one versioned JSON object.
fn json(dir: &Path, args: &[&str], input: &str) -> (i32, Value) {
    let (text_code, _) = run(dir, args, input);
    let (code, stdout) = run(dir, &[args, &["-o", "json"]].concat(), input);
    assert_eq!(
        code, text_code,
        "{args:?}: exit codes differ; JSON:\n{stdout}"
    );
    let value: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}):\n{stdout}"));
    assert_eq!(value["schema_version"], 1, "{args:?}: {value:#}");
    (code, value)
}

fn inventory(dir: &Path, host: &str, port: u16, extra: &str) -> String {
    let key = keygen(dir, "id", "ed25519", "");
    let path = dir.join("inventory.yml");
    std::fs::write(
        &path,
        format!(
            "version: 1\ndefaults:\n  user: root\n  key: {key}\n  known_hosts: {kh}\n{extra}\
             hosts:\n  - {{ name: node1, address: {host}, port: {port}, roles: [registry] }}\n\
             registry:\n  hostname: registry.test\n  image: registry:2\nsmoke_test: false\n",
            key = key.display(),
            kh = dir.join("known_hosts").display(),
        ),
    )
    .unwrap();
    path.display().to_string()
}

#[test]
fn every_command_prints_json_with_failures_as_documents() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let inv = inventory(d, "127.0.0.1", 1, "");
    let i = inv.as_str();
    let lab = format!("json-{}", std::process::id());
    let commands: Vec<(Vec<&str>, &str)> = vec![
        (vec!["inventory", "check", "-i", i], ""),
        (vec!["facts", "-i", i], ""),
        (vec!["plan", "-i", i], ""),
        (vec!["apply", "-i", i], ""),
        (vec!["verify", "-i", i], ""),
        (vec!["certs", "init", "-i", i], ""),
        (vec!["certs", "show", "-i", i], ""),
        (vec!["certs", "check", "-i", i], ""),
        (vec!["certs", "check", "--local", "-i", i], ""),
        (
            vec![
                "certs",
                "import",
                "--ca-cert",
                "x",
                "--ca-key",
                "y",
                "-i",
                i,
            ],
            "",
        ),
        (vec!["rotate", "--leaf", "-i", i], ""),
        (vec!["rotate", "--ca", "--plan", "-i", i], ""),
        (vec!["renew", "-i", i], ""),
        (vec!["schedule", "systemd", "--print", "-i", i], ""),
        (vec!["reset", "--plan", "-i", i], ""),
        (vec!["reset", "-i", i], ""),
        (vec!["catalog", "-i", i], ""),
        (vec!["gc", "--dry-run", "-i", i], ""),
        (vec!["render", "marathon", "-i", i], ""),
        (vec!["backup", "b.age", "-i", i], ""),
        (vec!["restore", "b.age", "--show"], ""),
        (vec!["restore", "missing.age", "-i", i], ""),
        (vec!["known-hosts", "forget", "node1", "-i", i], ""),
        (vec!["user", "hash"], "a password"),
        (vec!["user", "hash"], ""),
        (vec!["completions", "bash"], ""),
        (vec!["man"], ""),
        (vec!["lab", "status", "--name", &lab], ""),
        (vec!["plan", "--forks", "0", "-i", i], ""),
        (vec!["no-such-command"], ""),
    ];
    for (args, input) in &commands {
        let (code, value) = json(d, args, input);
        // A failure is either an error document or a report naming the failed host.
        if value.get("code").is_some() {
            assert_ne!(code, 0, "{args:?}: an error document with exit 0");
            assert!(value["message"].is_string(), "{args:?}: {value:#}");
        }
    }

    let (code, usage) = json(d, &["plan", "--forks", "0"], "");
    assert_eq!(
        (code, &usage["code"]),
        (2, &Value::from("usage")),
        "{usage:#}"
    );

    // An unreachable host: its code and hint apart, in the report and in facts.
    let (code, report) = json(d, &["plan", "-i", i], "");
    assert_eq!(code, 1);
    let failure = &report["hosts"][0]["failure"];
    assert_eq!(failure["code"], "unreachable", "{report:#}");
    assert!(
        failure["hint"]
            .as_str()
            .unwrap()
            .contains("sshd runs there")
    );
    let (_, facts) = json(d, &["facts", "-i", i], "");
    assert_eq!(
        facts["hosts"][0]["error"]["code"], "unreachable",
        "{facts:#}"
    );

    // A bad inventory: an error document locating each problem.
    std::fs::write(
        d.join("bad.yml"),
        "version: 1\nhosts: [{ name: a, adress: x }]\n",
    )
    .unwrap();
    let (code, doc) = json(d, &["plan", "-i", "bad.yml"], "");
    assert_eq!(code, 1);
    assert_eq!(doc["code"], "inventory-invalid", "{doc:#}");
    assert!(doc["host"].is_null());
    let problem = doc["problems"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["field"].as_str().unwrap().contains("adress"))
        .unwrap_or_else(|| panic!("{doc:#}"));
    assert_eq!(problem["line"], 2, "{doc:#}");
    assert!(
        problem["hint"].as_str().unwrap().contains("address"),
        "{doc:#}"
    );
}

#[test]
fn a_refused_host_key_is_a_failure_with_code_and_hint() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let key = keygen(d, "authorized", "ed25519", "");
    let sshd = Sshd::start(&SshdOptions {
        authorized_keys: vec![public_key(&key)],
        ..Default::default()
    });
    // Strict checking and an empty known_hosts: the key is refused before auth.
    std::fs::write(d.join("known_hosts"), "").unwrap();
    let inv = inventory(d, "127.0.0.1", sshd.port, "  host_key_check: strict\n");
    for args in [["facts", "-i", &inv], ["plan", "-i", &inv]] {
        let (code, value) = json(d, &args, "");
        assert_eq!(code, 1, "{value:#}");
        let host = &value["hosts"][0];
        let failure = if host["failure"].is_null() {
            &host["error"]
        } else {
            &host["failure"]
        };
        assert_eq!(failure["code"], "host-key-unknown", "{value:#}");
        assert!(
            failure["hint"].as_str().unwrap().contains("ssh-keyscan"),
            "{value:#}"
        );
    }
}

/// Each host's `seconds` is its own time: a host whose server never speaks costs its connect
/// timeout, one refused at once costs nothing, whatever the run's wall time.
#[test]
fn a_hosts_seconds_are_its_own_time() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Accepts and holds connections without a word (bounded: a few connections).
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let held: Vec<_> = silent.incoming().take(4).collect();
        std::thread::sleep(std::time::Duration::from_secs(30));
        drop(held);
    });
    let inv = inventory(d, "127.0.0.1", 1, "  connect_timeout_secs: 2\n");
    let text = std::fs::read_to_string(&inv).unwrap().replace(
        "hosts:\n",
        &format!(
            "hosts:\n  - {{ name: silent, address: 127.0.0.1, port: {port}, roles: [agent] }}\n"
        ),
    );
    std::fs::write(&inv, text).unwrap();
    let (code, report) = json(d, &["plan", "-i", &inv], "");
    assert_eq!(code, 1, "{report:#}");
    let seconds = |name: &str| {
        report["hosts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h["host"] == name)
            .and_then(|h| h["seconds"].as_f64())
            .unwrap_or_else(|| panic!("{report:#}"))
    };
    assert!(seconds("silent") >= 1.9, "{report:#}");
    assert!(seconds("node1") < 0.5, "{report:#}");
}
