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
