//! `regboot facts -i` end to end: the real binary against real sshd servers, one of them
//! unreachable, one with a changed host key, one whose sudo wants a password.

mod support;

use std::fs;

use serde_json::Value;
use support::sshd::{Sshd, SshdOptions, ensure_user, keygen, public_key};

/// `regboot ARGS`: its exit code, its JSON (null when it printed none) and its stderr.
fn regboot(args: &[&str]) -> (i32, Value, String) {
    let out = support::cli::command().args(args).output().unwrap();
    let json = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (
        out.status.code().unwrap_or(-1),
        json,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The row of `facts -o json` for host `name`.
fn host_row(rows: &Value, name: &str) -> Value {
    rows["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["host"] == name)
        .unwrap_or_else(|| panic!("no {name}: {rows:#}"))
        .clone()
}

#[test]
fn facts_reports_every_host_and_names_each_failure() {
    ensure_user("regboot-pw", "regboot-pw ALL=(ALL) ALL\n");
    let dir = tempfile::tempdir().unwrap();
    let key = keygen(dir.path(), "id", "ed25519", "");
    // Also on 127.0.0.2: `pw` is a second user on `good`'s server, and two hosts may not
    // share an address and port.
    let opts = SshdOptions {
        authorized_keys: vec![public_key(&key)],
        extra_config: vec!["ListenAddress 127.0.0.2".into()],
        ..Default::default()
    };
    let (good, changed) = (Sshd::start(&opts), Sshd::start(&opts));
    let impostor = Sshd::start(&SshdOptions::default());
    let kh = dir.path().join("known_hosts");
    let wrong = impostor.known_hosts_line().replacen(
        &impostor.port.to_string(),
        &changed.port.to_string(),
        1,
    );
    fs::write(&kh, format!("{wrong}\n")).unwrap();
    let closed_port = support::free_port();

    let inv = dir.path().join("inventory.yml");
    fs::write(
        &inv,
        format!(
            "version: 1\ndefaults:\n  user: root\n  key: {key}\n  known_hosts: {kh}\n  \
             host_key_check: accept-new\nhosts:\n\
             \x20 - {{ name: good, address: 127.0.0.1, port: {g}, roles: [registry] }}\n\
             \x20 - {{ name: changed, address: 127.0.0.1, port: {c}, roles: [agent] }}\n\
             \x20 - {{ name: gone, address: 127.0.0.1, port: {closed_port}, roles: [agent] }}\n\
             \x20 - {{ name: pw, address: 127.0.0.2, port: {g}, user: regboot-pw, roles: [agent] }}\n\
             registry:\n  hostname: registry.test\n",
            key = key.display(),
            kh = kh.display(),
            g = good.port,
            c = changed.port,
        ),
    )
    .unwrap();
    let inv = inv.to_str().unwrap();

    let (code, rows, stderr) = regboot(&["facts", "-i", inv, "-o", "json"]);
    assert_eq!(code, 1, "{stderr}");
    let row = |name: &str| host_row(&rows, name);
    let g = row("good");
    assert!(g["error"].is_null(), "{g}");
    assert_eq!(g["facts"]["os"]["family"], "debian");
    assert_eq!(g["facts"]["sudo"], "root");
    assert!(g["facts"]["connect_ms"].as_u64().is_some());
    assert_eq!(row("changed")["error"]["code"], "host-key-changed");
    assert_eq!(row("gone")["error"]["code"], "unreachable");
    let pw = row("pw");
    assert_eq!(pw["error"]["code"], "sudo-needs-password");
    assert_eq!(pw["facts"]["sudo"], "password");
    for name in ["changed:", "gone:", "pw:"] {
        assert!(stderr.contains(name), "{name} not named in:\n{stderr}");
    }
    assert!(
        stderr.contains(&format!("{}:1", kh.display())),
        "file:line of the changed key:\n{stderr}"
    );

    // The fix the message gives, then the host is back.
    let pattern = format!("[127.0.0.1]:{}", changed.port);
    let out = support::cli::command()
        .args([
            "known-hosts",
            "forget",
            &pattern,
            "--file",
            kh.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let (_, rows, _) = regboot(&["facts", "-i", inv, "-o", "json"]);
    let c = host_row(&rows, "changed");
    assert!(c["error"].is_null(), "{c}");
}

/// Hosts the inventory names only by aliases that the OpenSSH config resolves (HostName,
/// Port, User, IdentityFile, ProxyJump), first match winning and `!` patterns excluding.
#[test]
fn aliases_only_the_openssh_config_knows() {
    let dir = tempfile::tempdir().unwrap();
    let key = keygen(dir.path(), "id", "ed25519", "");
    let sshd = Sshd::start(&SshdOptions {
        authorized_keys: vec![public_key(&key)],
        extra_config: vec!["ListenAddress 127.0.0.2".into()],
        ..Default::default()
    });
    let config = dir.path().join("ssh_config");
    fs::write(
        &config,
        format!(
            "Host regboot-jumped\n  HostName 127.0.0.2\n  ProxyJump root@127.0.0.1:{port}\n\
             Host regboot-* !regboot-decoy\n  HostName 127.0.0.1\n  Port {port}\n\
             Host regboot-decoy\n  HostName 127.0.0.1\n  Port 1\n\
             Host *\n  User root\n  IdentityFile {missing}\n  IdentityFile {key}\n",
            port = sshd.port,
            missing = dir.path().join("no-such-key").display(),
            key = key.display(),
        ),
    )
    .unwrap();
    let inventory = |ssh_config: &str| {
        let inv = dir.path().join("inventory.yml");
        fs::write(
            &inv,
            format!(
                "version: 1\nssh_config: {ssh_config}\ndefaults:\n  known_hosts: {kh}\nhosts:\n\
                 \x20 - {{ name: direct, address: regboot-alias, roles: [registry] }}\n\
                 \x20 - {{ name: jumped, address: regboot-jumped, roles: [agent] }}\n\
                 \x20 - {{ name: decoy, address: regboot-decoy, roles: [agent] }}\n\
                 registry:\n  hostname: registry.test\n  hosts_file: false\n",
                kh = dir.path().join("known_hosts").display(),
            ),
        )
        .unwrap();
        inv.display().to_string()
    };

    let inv = inventory(&config.display().to_string());
    let (code, rows, stderr) = regboot(&["facts", "-i", &inv, "-o", "json"]);
    assert_eq!(code, 1, "decoy fails: {stderr}");
    let row = |name: &str| host_row(&rows, name);
    for name in ["direct", "jumped"] {
        let r = row(name);
        assert!(r["error"].is_null(), "{r:#}");
        assert_eq!(r["facts"]["sudo"], "root", "{r:#}");
    }
    // `!regboot-decoy` kept the second block from it: its own block sends it to port 1.
    let decoy = row("decoy");
    assert_eq!(decoy["error"]["code"], "unreachable", "{decoy:#}");
    assert!(
        decoy["error"]["message"]
            .as_str()
            .unwrap()
            .contains("127.0.0.1:1 ")
    );

    // Without the config the aliases mean nothing.
    let (code, rows, _) = regboot(&["facts", "-i", &inventory("false"), "-o", "json"]);
    assert_eq!(code, 1);
    for r in rows["hosts"].as_array().unwrap() {
        assert_eq!(r["error"]["code"], "unreachable", "{r:#}");
    }
}
