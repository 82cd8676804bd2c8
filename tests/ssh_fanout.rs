//! Many hosts at once against real sshd processes: 30 servers in parallel, and many
//! connections to one server whose MaxStartups drops the surplus.

mod support;

use std::fs;

use regboot::engine;
use regboot::facts::{OsFamily, SudoAccess};
use regboot::ssh;
use support::sshd::{Sshd, SshdOptions, keygen, public_key};

#[tokio::test(flavor = "multi_thread")]
async fn thirty_servers_in_parallel_give_their_facts() {
    let dir = tempfile::tempdir().unwrap();
    let key = keygen(dir.path(), "id", "ed25519", "");
    let opts = SshdOptions {
        authorized_keys: vec![public_key(&key)],
        host_key_types: vec!["ed25519"],
        ..Default::default()
    };
    let servers: Vec<Sshd> = (0..30).map(|_| Sshd::start(&opts)).collect();
    let kh = dir.path().join("known_hosts");
    let targets: Vec<_> = servers
        .iter()
        .enumerate()
        .map(|(i, s)| s.target(&format!("node{i}"), "root", Some(&key), &kh))
        .collect();

    let results = ssh::run_all(&targets, 50, |session| async move {
        engine::facts(&session).await
    })
    .await;
    let release = fs::read_to_string("/etc/os-release").unwrap();
    for (i, (target, result)) in results.iter().enumerate() {
        assert_eq!(
            target.name,
            format!("node{i}"),
            "results keep the inventory order"
        );
        let f = result
            .as_ref()
            .unwrap_or_else(|e| panic!("{e}"))
            .as_ref()
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(release.contains(&format!("ID={}", f.os.id)), "{f:?}");
        assert_eq!(f.os.family, Some(OsFamily::Debian));
        assert_eq!(f.sudo, SudoAccess::Root);
        assert!(f.sudo_nopasswd());
    }
    let known = fs::read_to_string(&kh).unwrap();
    for s in &servers {
        assert!(
            known.contains(&s.known_hosts_line()),
            "port {} not learned",
            s.port
        );
    }
    assert_eq!(known.lines().count(), 30);
}

#[tokio::test(flavor = "multi_thread")]
async fn handshakes_retry_when_maxstartups_drops_them() {
    let dir = tempfile::tempdir().unwrap();
    let key = keygen(dir.path(), "id", "ed25519", "");
    // sshd drops every unauthenticated connection beyond 2: far below regboot's 8 per address.
    let sshd = Sshd::start(&SshdOptions {
        authorized_keys: vec![public_key(&key)],
        host_key_types: vec!["ed25519"],
        extra_config: vec!["MaxStartups 2".into()],
    });
    let kh = dir.path().join("known_hosts");
    let targets: Vec<_> = (0..24)
        .map(|i| sshd.target(&format!("same{i}"), "root", Some(&key), &kh))
        .collect();
    let results = ssh::connect_all(&targets, 50).await;
    let failed: Vec<String> = results
        .iter()
        .filter_map(|(_, r)| r.as_ref().err().map(|e| e.to_string()))
        .collect();
    assert!(failed.is_empty(), "{failed:#?}");
    // 24 connections learned the same key: recorded once.
    assert_eq!(
        fs::read_to_string(&kh).unwrap(),
        sshd.known_hosts_line() + "\n"
    );
}

/// A loopback endpoint that is not an SSH server: it writes `reply` (nothing: it closes
/// before any banner, as a crowded sshd does, but also a firewall) and closes.
async fn listener(reply: &'static [u8]) -> u16 {
    use tokio::io::AsyncWriteExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let _ = stream.write_all(reply).await;
        }
    });
    port
}

async fn web_server() -> u16 {
    listener(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n").await
}

fn target_at(name: &str, port: u16, dir: &std::path::Path) -> ssh::Target {
    ssh::Target {
        name: name.into(),
        address: "127.0.0.1".into(),
        port,
        user: "root".into(),
        key: Some(keygen(dir, name, "ed25519", "")),
        key_passphrase_env: None,
        sudo: false,
        bastion: None,
        known_hosts: dir.join("known_hosts"),
        global_known_hosts: Vec::new(),
        host_key_alias: None,
        host_key_check: ssh::HostKeyCheck::AcceptNew,
        connect_timeout: std::time::Duration::from_secs(5),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_maxstartups_hint_only_when_several_hosts_share_a_dropping_address() {
    let dir = tempfile::tempdir().unwrap();
    let (alone, web, shared) = (listener(b"").await, web_server().await, listener(b"").await);
    let named = |prefix: &str, port: u16, n: usize| -> Vec<ssh::Target> {
        (0..n)
            .map(|i| target_at(&format!("{prefix}{i}"), port, dir.path()))
            .collect()
    };
    // Side by side: each case waits out the retries' backoff.
    let targets = [
        named("alone", alone, 1),
        named("web", web, 3),
        named("same", shared, 3),
    ];
    let (alone_r, web_r, shared_r) = tokio::join!(
        ssh::connect_all(&targets[0], 5),
        ssh::connect_all(&targets[1], 5),
        ssh::connect_all(&targets[2], 5),
    );
    let errors = |r: Vec<(ssh::Target, Result<ssh::Session, ssh::ConnectError>)>| {
        r.into_iter()
            .map(|(_, r)| r.err().expect("no SSH server there"))
            .collect::<Vec<_>>()
    };

    // One host on an endpoint that drops it before any banner: not a crowded sshd.
    let e = &errors(alone_r)[0];
    assert_eq!(e.kind(), "handshake-failed", "{e}");
    let hint = e.hint().unwrap();
    assert!(!hint.contains("MaxStartups"), "{hint}");
    assert!(
        hint.contains(&format!("127.0.0.1:{alone} is an SSH server")),
        "{hint}"
    );
    // Three hosts on a web server: it answers, so it is no crowded sshd (and no retries).
    for e in errors(web_r) {
        assert!(!e.to_string().contains("MaxStartups"), "{e}");
        assert!(e.to_string().contains("after 1 attempt(s)"), "{e}");
    }
    // Three hosts behind one address that drops them all before a banner: MaxStartups.
    for e in errors(shared_r) {
        assert!(e.to_string().contains("raise MaxStartups"), "{e}");
    }
}
