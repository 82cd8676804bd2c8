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

/// Issue 26 item 16: a ProxyJump naming another alias of the same file goes through that
/// alias's HostName, Port and User, and the hop is taken: the jump host's sshd logs the
/// forwarding to the target (it used to fail with "jumpA:22 ... failed to lookup address").
#[test]
fn a_proxy_jump_alias_is_dialed_through_its_own_settings() {
    let dir = tempfile::tempdir().unwrap();
    let key = keygen(dir.path(), "id", "ed25519", "");
    let options = |extra: &str| SshdOptions {
        authorized_keys: vec![public_key(&key)],
        // Match settings override the global LogLevel ERROR for every connection.
        extra_config: vec![extra.into(), "Match all".into(), "  LogLevel DEBUG1".into()],
        ..Default::default()
    };
    let jump = Sshd::start(&options(""));
    let target = Sshd::start(&options("ListenAddress 127.0.0.2"));
    let config = dir.path().join("ssh_config");
    fs::write(
        &config,
        format!(
            "Host jumpA\n  HostName 127.0.0.1\n  Port {jump}\n  User root\n\
             Host regboot-target\n  HostName 127.0.0.2\n  Port {target}\n  ProxyJump jumpA\n\
             Host *\n  User root\n  IdentityFile {key}\n",
            jump = jump.port,
            target = target.port,
            key = key.display(),
        ),
    )
    .unwrap();
    let inv = dir.path().join("inventory.yml");
    fs::write(
        &inv,
        format!(
            "version: 1\nssh_config: {config}\ndefaults:\n  known_hosts: {kh}\n  host_key_check: accept-new\n\
             hosts:\n\x20 - {{ name: target, address: regboot-target, roles: [registry] }}\n\
             registry:\n  hostname: registry.test\n  hosts_file: false\n",
            config = config.display(),
            kh = dir.path().join("known_hosts").display(),
        ),
    )
    .unwrap();
    let (code, rows, stderr) = regboot(&["facts", "-i", &inv.display().to_string(), "-o", "json"]);
    let row = host_row(&rows, "target");
    assert_eq!(code, 0, "{row:#} {stderr}");
    assert!(row["error"].is_null(), "{row:#}");
    let log = fs::read_to_string(jump.dir.join("sshd.log")).unwrap();
    let hop = format!("target 127.0.0.2 port {}", target.port);
    assert!(
        log.contains(&hop),
        "the jump host did not forward to the target:\n{log}"
    );
}

/// Issue 26 item 16: a key in OpenSSH's GlobalKnownHostsFile (here named by the ssh_config,
/// so the test does not write /etc/ssh) is trusted under strict checking, and that file is
/// never written; a key in neither file is refused.
#[test]
fn a_key_in_the_global_known_hosts_file_is_trusted_read_only() {
    let dir = tempfile::tempdir().unwrap();
    let key = keygen(dir.path(), "id", "ed25519", "");
    let sshd = Sshd::start(&SshdOptions {
        authorized_keys: vec![public_key(&key)],
        ..Default::default()
    });
    let global = dir.path().join("ssh_known_hosts");
    let user = dir.path().join("known_hosts");
    let config = dir.path().join("ssh_config");
    fs::write(
        &config,
        format!(
            "Host regboot-global\n  HostName 127.0.0.1\n  Port {port}\n  User root\n\
             \x20 IdentityFile {key}\n  GlobalKnownHostsFile {global}\n",
            port = sshd.port,
            key = key.display(),
            global = global.display(),
        ),
    )
    .unwrap();
    let inv = dir.path().join("inventory.yml");
    fs::write(
        &inv,
        format!(
            "version: 1\nssh_config: {config}\ndefaults:\n  known_hosts: {kh}\n  host_key_check: strict\n\
             hosts:\n\x20 - {{ name: h, address: regboot-global, roles: [registry] }}\n\
             registry:\n  hostname: registry.test\n  hosts_file: false\n",
            config = config.display(),
            kh = user.display(),
        ),
    )
    .unwrap();
    let facts = || regboot(&["facts", "-i", &inv.display().to_string(), "-o", "json"]);

    // In neither file: refused.
    fs::write(&global, "# nothing yet\n").unwrap();
    let (code, rows, stderr) = facts();
    let row = host_row(&rows, "h");
    assert_ne!(code, 0, "{row:#} {stderr}");
    assert_eq!(row["error"]["code"], "host-key-unknown", "{row:#}");

    // Only in the global file: strict checking connects, and nothing is written anywhere.
    let text = format!("# the fleet's keys\n{}\n", sshd.known_hosts_line());
    fs::write(&global, &text).unwrap();
    let (code, rows, stderr) = facts();
    let row = host_row(&rows, "h");
    assert_eq!(code, 0, "{row:#} {stderr}");
    assert!(row["error"].is_null(), "{row:#}");
    assert_eq!(fs::read_to_string(&global).unwrap(), text);
    assert!(!user.exists(), "the user's known_hosts was written");
}

/// Issue 26 item 16: the jump host a ProxyJump alias names is dialed with that alias's own
/// IdentityFile, the target with its own: each sshd here accepts only one of the two keys
/// (the bastion used to be dialed with the target's key, and refused it).
#[test]
fn a_proxy_jump_alias_uses_its_own_identity_file() {
    let dir = tempfile::tempdir().unwrap();
    let jump_key = keygen(dir.path(), "id_jump", "ed25519", "");
    let target_key = keygen(dir.path(), "id_target", "ed25519", "");
    let jump = Sshd::start(&SshdOptions {
        authorized_keys: vec![public_key(&jump_key)],
        extra_config: vec!["Match all".into(), "  LogLevel DEBUG1".into()],
        ..Default::default()
    });
    let target = Sshd::start(&SshdOptions {
        authorized_keys: vec![public_key(&target_key)],
        extra_config: vec!["ListenAddress 127.0.0.2".into()],
        ..Default::default()
    });
    let config = dir.path().join("ssh_config");
    fs::write(
        &config,
        format!(
            "Host jumpA\n  HostName 127.0.0.1\n  Port {jump}\n  User root\n  IdentityFile {jk}\n\
             Host regboot-target\n  HostName 127.0.0.2\n  Port {target}\n  User root\n\
             \x20 IdentityFile {tk}\n  ProxyJump jumpA\n",
            jump = jump.port,
            target = target.port,
            jk = jump_key.display(),
            tk = target_key.display(),
        ),
    )
    .unwrap();
    let inv = dir.path().join("inventory.yml");
    fs::write(
        &inv,
        format!(
            "version: 1\nssh_config: {config}\ndefaults:\n  known_hosts: {kh}\n  host_key_check: accept-new\n\
             hosts:\n\x20 - {{ name: target, address: regboot-target, roles: [registry] }}\n\
             registry:\n  hostname: registry.test\n  hosts_file: false\n",
            config = config.display(),
            kh = dir.path().join("known_hosts").display(),
        ),
    )
    .unwrap();
    let (code, rows, stderr) = regboot(&["facts", "-i", &inv.display().to_string(), "-o", "json"]);
    let row = host_row(&rows, "target");
    assert_eq!(code, 0, "{row:#} {stderr}");
    assert!(row["error"].is_null(), "{row:#}");
    let log = fs::read_to_string(jump.dir.join("sshd.log")).unwrap();
    let hop = format!("target 127.0.0.2 port {}", target.port);
    assert!(log.contains(&hop), "the jump host did not forward:\n{log}");
}

/// `line` (an `[127.0.0.1]:PORT key` line) recorded under `name` instead.
fn recorded_as(line: &str, name: &str) -> String {
    let (pattern, key) = line.split_once(' ').unwrap();
    let port = pattern.rsplit_once(':').unwrap().1;
    format!("[{name}]:{port} {key}")
}

/// Issue 26 item 16: the jump host is checked by its own ssh_config settings
/// (StrictHostKeyChecking, UserKnownHostsFile, HostKeyAlias), never by the target's: its key
/// is found under its alias in its own file, the targets' file gets only the targets' keys,
/// and its own `yes` refuses it when unknown although the targets accept new keys. (The
/// jump host used to be checked under the target's policy, in the target's file, under its
/// address: its key landed in the targets' file.)
#[test]
fn a_jump_host_is_checked_by_its_own_settings() {
    let dir = tempfile::tempdir().unwrap();
    let key = keygen(dir.path(), "id", "ed25519", "");
    let jump = Sshd::start(&SshdOptions {
        authorized_keys: vec![public_key(&key)],
        ..Default::default()
    });
    let target = Sshd::start(&SshdOptions {
        authorized_keys: vec![public_key(&key)],
        extra_config: vec!["ListenAddress 127.0.0.2".into()],
        ..Default::default()
    });
    let (kh_jump, kh_targets) = (dir.path().join("kh-jump"), dir.path().join("known_hosts"));
    let jump_line = recorded_as(&jump.known_hosts_line(), "the-bastion") + "\n";
    fs::write(&kh_jump, &jump_line).unwrap();
    let config = dir.path().join("ssh_config");
    fs::write(
        &config,
        format!(
            "Host jumpA\n  HostName 127.0.0.1\n  Port {jport}\n  UserKnownHostsFile {khj}\n\
             \x20 HostKeyAlias the-bastion\n  StrictHostKeyChecking yes\n\
             Host regboot-target\n  HostName 127.0.0.2\n  Port {tport}\n  ProxyJump jumpA\n\
             Host *\n  User root\n  IdentityFile {key}\n",
            jport = jump.port,
            tport = target.port,
            khj = kh_jump.display(),
            key = key.display(),
        ),
    )
    .unwrap();
    let inv = dir.path().join("inventory.yml");
    fs::write(
        &inv,
        format!(
            "version: 1\nssh_config: {config}\ndefaults:\n  known_hosts: {kh}\n  host_key_check: accept-new\n\
             hosts:\n\x20 - {{ name: target, address: regboot-target, roles: [registry] }}\n\
             registry:\n  hostname: registry.test\n  hosts_file: false\n",
            config = config.display(),
            kh = kh_targets.display(),
        ),
    )
    .unwrap();
    let facts = || regboot(&["facts", "-i", &inv.display().to_string(), "-o", "json"]);

    let (code, rows, stderr) = facts();
    let row = host_row(&rows, "target");
    assert_eq!(code, 0, "{row:#} {stderr}");
    assert!(row["error"].is_null(), "{row:#}");
    let targets = fs::read_to_string(&kh_targets).unwrap();
    assert!(
        targets.contains(&format!("[127.0.0.2]:{}", target.port))
            && !targets.contains(&format!(":{} ", jump.port)),
        "the targets' known_hosts holds the jump host's key:\n{targets}"
    );
    assert_eq!(fs::read_to_string(&kh_jump).unwrap(), jump_line);

    // Its own `yes`: unknown in its own file, it is refused, naming that file.
    fs::write(&kh_jump, "").unwrap();
    let (code, rows, stderr) = facts();
    let row = host_row(&rows, "target");
    assert_ne!(code, 0, "{row:#} {stderr}");
    assert_eq!(row["error"]["code"], "host-key-unknown", "{row:#}");
    let message = row["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("bastion"), "{row:#}");
    assert_eq!(fs::read_to_string(&kh_jump).unwrap(), "");
}

/// Issue 26 item 16: a bastion two hosts share, one with `host_key_check: off` and one with
/// `strict`, and no policy of its own in ssh_config, is checked under `strict` for both:
/// unknown, both are refused (the lax host used to ride it unchecked); known, both connect
/// over one connection to it.
#[test]
fn a_shared_bastion_is_checked_as_strictly_as_its_strictest_host() {
    let dir = tempfile::tempdir().unwrap();
    let key = keygen(dir.path(), "id", "ed25519", "");
    let jump = Sshd::start(&SshdOptions {
        authorized_keys: vec![public_key(&key)],
        extra_config: vec!["Match all".into(), "  LogLevel DEBUG1".into()],
        ..Default::default()
    });
    let on_two = SshdOptions {
        authorized_keys: vec![public_key(&key)],
        extra_config: vec!["ListenAddress 127.0.0.2".into()],
        ..Default::default()
    };
    let (lax, strict) = (Sshd::start(&on_two), Sshd::start(&on_two));
    let kh = dir.path().join("known_hosts");
    let targets = format!(
        "{}\n{}\n",
        recorded_as(&lax.known_hosts_line(), "127.0.0.2"),
        recorded_as(&strict.known_hosts_line(), "127.0.0.2")
    );
    fs::write(&kh, &targets).unwrap();
    let config = dir.path().join("ssh_config");
    fs::write(
        &config,
        format!(
            "Host jumpA\n  HostName 127.0.0.1\n  Port {jport}\n\
             Host regboot-*\n  HostName 127.0.0.2\n  ProxyJump jumpA\n\
             Host *\n  User root\n  IdentityFile {key}\n",
            jport = jump.port,
            key = key.display(),
        ),
    )
    .unwrap();
    let inv = dir.path().join("inventory.yml");
    fs::write(
        &inv,
        format!(
            "version: 1\nssh_config: {config}\ndefaults:\n  known_hosts: {kh}\n\
             hosts:\n\
             \x20 - {{ name: lax, address: regboot-lax, port: {lp}, host_key_check: off, roles: [registry] }}\n\
             \x20 - {{ name: strict, address: regboot-strict, port: {sp}, host_key_check: strict, roles: [agent] }}\n\
             registry:\n  hostname: registry.test\n  hosts_file: false\n",
            config = config.display(),
            kh = kh.display(),
            lp = lax.port,
            sp = strict.port,
        ),
    )
    .unwrap();
    let facts = || regboot(&["facts", "-i", &inv.display().to_string(), "-o", "json"]);

    let (code, rows, stderr) = facts();
    assert_ne!(code, 0, "{rows:#} {stderr}");
    for name in ["lax", "strict"] {
        let row = host_row(&rows, name);
        assert_eq!(row["error"]["code"], "host-key-unknown", "{row:#}");
        let message = row["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains("bastion"), "{row:#}");
    }
    assert_eq!(fs::read_to_string(&kh).unwrap(), targets, "nothing added");

    fs::write(&kh, format!("{targets}{}\n", jump.known_hosts_line())).unwrap();
    let (code, rows, stderr) = facts();
    assert_eq!(code, 0, "{rows:#} {stderr}");
    let log = fs::read_to_string(jump.dir.join("sshd.log")).unwrap();
    assert_eq!(
        log.matches("Accepted publickey").count(),
        1,
        "one connection to the bastion for both hosts:\n{log}"
    );
}
