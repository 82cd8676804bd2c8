//! The SSH transport against real OpenSSH servers on loopback: auth, known_hosts policies,
//! exec, bastion, sudo, failures.

mod support;

use std::fs;
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use regboot::ssh::{self, ConnectError, ExecError, HostKeyCheck, RemoteCommand, Session};
use sha2::{Digest, Sha256};
use support::sshd::{Sshd, SshdOptions, ensure_user, keygen, public_key};

fn server_for(keys: &[&Path]) -> Sshd {
    Sshd::start(&SshdOptions {
        authorized_keys: keys.iter().map(|k| public_key(k)).collect(),
        ..Default::default()
    })
}

async fn whoami(session: &Session) -> String {
    let out = session
        .exec(&RemoteCommand::new("id").arg("-un"), None)
        .await
        .unwrap();
    assert!(out.success(), "{}", out.stderr_tail());
    out.stdout_text().trim().to_string()
}

#[tokio::test]
async fn key_auth_with_ed25519_ecdsa_and_rsa_sha2() {
    let dir = tempfile::tempdir().unwrap();
    let keys: Vec<_> = ["ed25519", "ecdsa", "rsa"]
        .iter()
        .map(|t| keygen(dir.path(), &format!("id_{t}"), t, ""))
        .collect();
    let refs: Vec<&Path> = keys.iter().map(|k| k.as_path()).collect();
    let sshd = server_for(&refs);
    let kh = dir.path().join("known_hosts");
    for key in &keys {
        let target = sshd.target("h1", "root", Some(key), &kh);
        // OpenSSH 9 refuses ssh-rsa (SHA-1) signatures: an RSA success means rsa-sha2.
        let session = Session::connect(&target)
            .await
            .unwrap_or_else(|e| panic!("{key:?}: {e}"));
        assert_eq!(whoami(&session).await, "root");
        assert!(session.connect_time() < Duration::from_secs(10));
        session.close().await;
    }
}

#[tokio::test]
async fn exec_streams_stdin_and_captures_status_stdout_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let key = keygen(dir.path(), "id", "ed25519", "");
    let sshd = server_for(&[&key]);
    let mut session =
        Session::connect(&sshd.target("h1", "root", Some(&key), &dir.path().join("kh")))
            .await
            .unwrap();

    // 4 MiB through stdin: larger than any window, so it must stream while output is read.
    let data: Vec<u8> = (0..4u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let out = session
        .exec(&RemoteCommand::new("sha256sum"), Some(&data))
        .await
        .unwrap();
    assert!(out.success());
    assert_eq!(
        out.stdout_text().split_whitespace().next().unwrap(),
        hex::encode(Sha256::digest(&data))
    );

    let out = session
        .exec(
            &RemoteCommand::script("echo out; echo err >&2; exit 3"),
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        (
            out.status,
            out.stdout_text().as_str(),
            out.stderr_tail().as_str()
        ),
        (3, "out\n", "err")
    );

    // An argument with quotes and expansions arrives intact.
    let nasty = "it's $HOME `id` \"q\"";
    let out = session
        .exec(&RemoteCommand::new("printf").arg("%s").arg(nasty), None)
        .await
        .unwrap();
    assert_eq!(out.stdout_text(), nasty);

    // Channels on one connection run at once: four commands meet at a rendezvous that
    // none can pass alone (bounded wait), then more commands than channel slots all finish.
    let meet = dir.path().join("meet");
    let meet = meet.display();
    let runs = (0..4).map(|i| {
        let cmd = RemoteCommand::script(&format!(
            "mkdir -p {meet} && touch {meet}/{i} && n=0; \
             while [ $(ls {meet} | wc -l) -lt 4 ] && [ $n -lt 100 ]; do sleep 0.1; n=$((n+1)); done; \
             ls {meet} | wc -l"
        ));
        let s = &session;
        async move { s.exec(&cmd, None).await.unwrap().stdout_text() }
    });
    assert_eq!(futures_join_all(runs).await, vec!["4\n"; 4]);
    let runs = (0..12).map(|i| {
        let cmd = RemoteCommand::new("echo").arg(&i.to_string());
        let s = &session;
        async move { s.exec(&cmd, None).await.unwrap().stdout_text() }
    });
    assert_eq!(
        futures_join_all(runs).await,
        (0..12).map(|i| format!("{i}\n")).collect::<Vec<_>>()
    );

    session.set_command_timeout(Duration::from_millis(500));
    let err = session
        .exec(&RemoteCommand::new("sleep").arg("5"), None)
        .await
        .unwrap_err();
    assert!(matches!(err, ExecError::Timeout { .. }), "{err}");
}

/// Run futures concurrently on this task (no extra crate needed for a test).
async fn futures_join_all<F: std::future::Future<Output = String>>(
    futs: impl Iterator<Item = F>,
) -> Vec<String> {
    let mut set = Vec::new();
    for f in futs {
        set.push(Box::pin(f));
    }
    let mut outs = vec![None; set.len()];
    std::future::poll_fn(|cx| {
        let mut done = true;
        for (i, f) in set.iter_mut().enumerate() {
            if outs[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => outs[i] = Some(v),
                    std::task::Poll::Pending => done = false,
                }
            }
        }
        if done {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    outs.into_iter().map(Option::unwrap).collect()
}

#[tokio::test]
async fn accept_new_then_strict_and_openssh_trusts_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let key = keygen(dir.path(), "id", "ed25519", "");
    let sshd = server_for(&[&key]);
    let kh = dir.path().join("known_hosts");

    let mut target = sshd.target("h1", "root", Some(&key), &kh);
    target.host_key_check = HostKeyCheck::Strict;
    let err = Session::connect(&target)
        .await
        .err()
        .expect("strict refuses an unknown key");
    assert!(matches!(err, ConnectError::HostKeyUnknown { .. }), "{err}");
    assert!(!kh.exists(), "strict must not write known_hosts");

    target.host_key_check = HostKeyCheck::AcceptNew;
    Session::connect(&target).await.unwrap();
    // The ed25519 key, as OpenSSH would have stored it, though the server also has ecdsa.
    assert_eq!(
        fs::read_to_string(&kh).unwrap(),
        format!("{}\n", sshd.known_hosts_line())
    );

    target.host_key_check = HostKeyCheck::Strict;
    assert_eq!(
        whoami(&Session::connect(&target).await.unwrap()).await,
        "root"
    );
    assert_eq!(fs::read_to_string(&kh).unwrap().lines().count(), 1);

    // A host OpenSSH learned by its ecdsa key is checked by that key: recorded types are
    // offered first, as OpenSSH does.
    let ecdsa: Vec<&str> = sshd.host_keys[1].split_whitespace().take(2).collect();
    let kh_ecdsa = dir.path().join("known_hosts_ecdsa");
    fs::write(
        &kh_ecdsa,
        format!("[127.0.0.1]:{} {}\n", sshd.port, ecdsa.join(" ")),
    )
    .unwrap();
    let mut by_ecdsa = target.clone();
    by_ecdsa.known_hosts = kh_ecdsa;
    Session::connect(&by_ecdsa).await.unwrap();

    // `off` connects even to a changed key, and leaves the file alone.
    let other = public_key(&keygen(dir.path(), "other", "ed25519", ""));
    let other: Vec<&str> = other.split_whitespace().take(2).collect();
    let kh_wrong = dir.path().join("known_hosts_wrong");
    let wrong = format!("[127.0.0.1]:{} {}\n", sshd.port, other.join(" "));
    fs::write(&kh_wrong, &wrong).unwrap();
    let mut unchecked = target.clone();
    unchecked.known_hosts = kh_wrong.clone();
    unchecked.host_key_check = HostKeyCheck::Off;
    Session::connect(&unchecked).await.unwrap();
    assert_eq!(fs::read_to_string(&kh_wrong).unwrap(), wrong);

    let ssh = Command::new("ssh")
        .args([
            "-F",
            "/dev/null",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "BatchMode=yes",
        ])
        .arg("-o")
        .arg(format!("UserKnownHostsFile={}", kh.display()))
        .arg("-i")
        .arg(&key)
        .args(["-p", &sshd.port.to_string(), "root@127.0.0.1", "echo", "ok"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&ssh.stdout),
        "ok\n",
        "OpenSSH rejected the file: {}",
        String::from_utf8_lossy(&ssh.stderr)
    );
}

#[tokio::test]
async fn changed_host_key_stops_that_host_only() {
    let dir = tempfile::tempdir().unwrap();
    let key = keygen(dir.path(), "id", "ed25519", "");
    let servers: Vec<Sshd> = (0..3).map(|_| server_for(&[&key])).collect();
    let kh = dir.path().join("known_hosts");
    let impostor = public_key(&keygen(dir.path(), "other", "ed25519", ""));
    let impostor: Vec<&str> = impostor.split_whitespace().take(2).collect();
    fs::write(
        &kh,
        format!(
            "# comment\n{}\n[127.0.0.1]:{} {}\n{}\n",
            servers[0].known_hosts_line(),
            servers[1].port,
            impostor.join(" "),
            servers[2].known_hosts_line()
        ),
    )
    .unwrap();
    let targets: Vec<_> = servers
        .iter()
        .enumerate()
        .map(|(i, s)| s.target(&format!("h{i}"), "root", Some(&key), &kh))
        .collect();
    let results = ssh::connect_all(&targets, 50).await;
    assert!(results[0].1.is_ok() && results[2].1.is_ok());
    let err = results[1].1.as_ref().err().expect("changed key refused");
    let ConnectError::HostKeyChanged { line, file, .. } = err else {
        panic!("{err}");
    };
    assert_eq!((*line, file.as_path()), (3, kh.as_path()));
    let msg = err.to_string();
    assert!(msg.contains(&format!("{}:3", kh.display())), "{msg}");
    assert!(
        msg.contains(&format!(
            "ssh-keygen -f {} -R '[127.0.0.1]:{}'",
            kh.display(),
            servers[1].port
        )),
        "{msg}"
    );

    // The fix the message names works.
    assert_eq!(
        ssh::known_hosts::forget(&kh, "127.0.0.1", servers[1].port).unwrap(),
        1
    );
    Session::connect(&targets[1]).await.unwrap();
}

#[tokio::test]
async fn wrong_key_is_refused_naming_what_was_tried() {
    let dir = tempfile::tempdir().unwrap();
    let good = keygen(dir.path(), "good", "ed25519", "");
    let wrong = keygen(dir.path(), "wrong", "ed25519", "");
    let sshd = server_for(&[&good]);
    let err = Session::connect(&sshd.target("h1", "root", Some(&wrong), &dir.path().join("kh")))
        .await
        .err()
        .unwrap();
    assert!(matches!(err, ConnectError::AuthRefused { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains(&format!("publickey {}", wrong.display())) && msg.contains("SHA256:"),
        "{msg}"
    );
    assert!(msg.contains("the server accepts: publickey"), "{msg}");
}

#[tokio::test]
async fn unreachable_and_silent_servers_fail_within_the_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let key = keygen(dir.path(), "id", "ed25519", "");
    let sshd = server_for(&[&key]);
    let kh = dir.path().join("kh");

    // Nothing listens: refused at once.
    let port = support::free_port();
    let mut target = sshd.target("gone", "root", Some(&key), &kh);
    target.port = port;
    let start = Instant::now();
    let err = Session::connect(&target).await.err().unwrap();
    assert!(start.elapsed() < Duration::from_secs(2));
    assert_eq!(err.kind(), "unreachable", "{err}");
    assert!(
        err.to_string().contains(&format!("127.0.0.1:{port}")),
        "{err}"
    );

    // Accepts TCP but never speaks SSH: bounded by connect_timeout.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    target.port = silent.local_addr().unwrap().port();
    target.connect_timeout = Duration::from_secs(1);
    let start = Instant::now();
    let err = Session::connect(&target).await.err().unwrap();
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(err.kind(), "handshake-failed", "{err}");
}

#[tokio::test]
async fn bastion_hop_checks_both_host_keys() {
    let dir = tempfile::tempdir().unwrap();
    let key = keygen(dir.path(), "id", "ed25519", "");
    let bastion = server_for(&[&key]);
    let inner = Sshd::start(&SshdOptions {
        authorized_keys: vec![public_key(&key)],
        ..Default::default()
    });
    let kh = dir.path().join("known_hosts");
    let mut target = inner.target("inner", "root", Some(&key), &kh);
    let via = |port: u16, policy: HostKeyCheck| {
        Some(ssh::Bastion {
            host_key_check: policy,
            known_hosts: kh.clone(),
            global_known_hosts: Vec::new(),
            ..ssh::Bastion::new("root", "127.0.0.1", port)
        })
    };
    // Strict with nothing known: the bastion is refused first.
    target.bastion = via(bastion.port, HostKeyCheck::Strict);
    let err = Session::connect(&target).await.err().unwrap();
    assert!(
        matches!(&err, ConnectError::Bastion { source, .. } if matches!(**source, ConnectError::HostKeyUnknown { .. })),
        "{err}"
    );

    target.bastion = via(bastion.port, HostKeyCheck::AcceptNew);
    let session = Session::connect(&target).await.unwrap();
    assert_eq!(whoami(&session).await, "root");
    let text = fs::read_to_string(&kh).unwrap();
    assert!(
        text.contains(&bastion.known_hosts_line()) && text.contains(&inner.known_hosts_line()),
        "{text}"
    );

    // The inner host is reached through the bastion: a bastion that forbids forwarding
    // makes it unreachable.
    let closed = Sshd::start(&SshdOptions {
        authorized_keys: vec![public_key(&key)],
        extra_config: vec!["PermitOpen none".into()],
        ..Default::default()
    });
    let mut via_closed = target.clone();
    via_closed.bastion = via(closed.port, HostKeyCheck::AcceptNew);
    let err = Session::connect(&via_closed).await.err().unwrap();
    assert_eq!(err.kind(), "unreachable", "{err}");
    assert!(err.to_string().contains("from the bastion"), "{err}");

    // A changed bastion key stops the hop: record another server's key for the bastion.
    let impostor = Sshd::start(&SshdOptions::default());
    let line = impostor.known_hosts_line().replacen(
        &impostor.port.to_string(),
        &bastion.port.to_string(),
        1,
    );
    fs::write(&kh, format!("{line}\n{}\n", inner.known_hosts_line())).unwrap();
    target.bastion = via(bastion.port, HostKeyCheck::Strict);
    let err = Session::connect(&target).await.err().unwrap();
    assert_eq!(err.kind(), "host-key-changed", "{err}");
    assert!(err.to_string().contains("bastion"), "{err}");
}

#[tokio::test]
async fn sudo_without_password_with_password_and_requiretty() {
    ensure_user("regboot-nopw", "regboot-nopw ALL=(ALL) NOPASSWD: ALL\n");
    ensure_user("regboot-pw", "regboot-pw ALL=(ALL) ALL\n");
    ensure_user(
        "regboot-tty",
        "Defaults:regboot-tty requiretty\nregboot-tty ALL=(ALL) NOPASSWD: ALL\n",
    );
    let dir = tempfile::tempdir().unwrap();
    let key = keygen(dir.path(), "id", "ed25519", "");
    let sshd = server_for(&[&key]);
    let kh = dir.path().join("kh");
    let as_root = RemoteCommand::script("id -u; cat");

    let nopw = Session::connect(&sshd.target("nopw", "regboot-nopw", Some(&key), &kh))
        .await
        .unwrap();
    assert_eq!(whoami(&nopw).await, "regboot-nopw");
    let out = nopw
        .exec_as_root(&as_root, Some(b"secret via stdin"))
        .await
        .unwrap();
    assert_eq!(out.stdout_text(), "0\nsecret via stdin");

    let pw = Session::connect(&sshd.target("pw", "regboot-pw", Some(&key), &kh))
        .await
        .unwrap();
    let err = pw.exec_as_root(&as_root, None).await.unwrap_err();
    assert!(
        matches!(err, ExecError::SudoPasswordRequired { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("NOPASSWD"), "{err}");

    let tty = Session::connect(&sshd.target("tty", "regboot-tty", Some(&key), &kh))
        .await
        .unwrap();
    let out = tty
        .exec_as_root(&as_root, Some(b"line one\nbinary \x00\x04 ok"))
        .await
        .unwrap();
    assert!(out.success(), "{}", out.stdout_text());
    assert_eq!(out.stdout, b"0\nline one\nbinary \x00\x04 ok");

    // Issue 26 item 13: stdin is staged in memory, unlinked before sudo reads it, and what a
    // cut connection left behind earlier is swept (a fresh file, maybe another run's, stays).
    let shm = Path::new("/dev/shm");
    let left = shm.join(format!("regboot-stdin.left{}", std::process::id()));
    let fresh = shm.join(format!("regboot-stdin.fresh{}", std::process::id()));
    for f in [&left, &fresh] {
        fs::write(f, "config.yml with secrets").unwrap();
        support::sshd::run(Command::new("chown").arg("regboot-tty").arg(f));
    }
    support::sshd::run(
        Command::new("touch")
            .args(["-d", "20 minutes ago"])
            .arg(&left),
    );
    let out = tty
        .exec_as_root(
            &RemoteCommand::script("readlink /proc/$$/fd/0; cat"),
            Some(b"secret"),
        )
        .await
        .unwrap();
    let text = out.stdout_text();
    let staged = text.lines().next().unwrap();
    assert!(
        staged.starts_with("/dev/shm/regboot-stdin.") && staged.ends_with(" (deleted)"),
        "stdin came from {staged}"
    );
    assert!(text.ends_with("\nsecret"), "{text}");
    assert!(!left.exists(), "the leftover was not swept");
    assert!(fresh.exists(), "a fresh file was swept");
    fs::remove_file(&fresh).unwrap();
}

/// `key:` naming a device, a FIFO or a huge file fails at once with the path and the field,
/// without reading it (or blocking on it).
#[tokio::test]
async fn key_must_be_a_small_regular_file() {
    let dir = tempfile::tempdir().unwrap();
    let sshd = Sshd::start(&SshdOptions::default());
    let kh = dir.path().join("known_hosts");
    let fifo = dir.path().join("fifo");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let big = dir.path().join("big");
    fs::write(&big, vec![b'k'; (64 << 10) + 1]).unwrap();
    // Issue 26 item 15: a key that group or others may read is refused, as ssh refuses it.
    let open = keygen(dir.path(), "open", "ed25519", "");
    fs::set_permissions(&open, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    for (key, message) in [
        (open.as_path(), "has mode 0644: group or others may read it"),
        (
            Path::new("/dev/zero"),
            "/dev/zero is a device, not a regular file",
        ),
        (fifo.as_path(), "fifo is a FIFO, not a regular file"),
        (big.as_path(), "big is larger than 65536 bytes"),
    ] {
        let err = Session::connect(&sshd.target("h1", "root", Some(key), &kh))
            .await
            .err()
            .unwrap();
        let msg = err.to_string();
        assert!(matches!(err, ConnectError::Key { .. }), "{msg}");
        assert!(msg.contains(message), "{msg}");
    }
}

/// Issue 26 item 10: a command printing more than regboot reads from one command fails with
/// a clear error once past the limit (not when the host stops), and the connection goes on.
#[tokio::test]
async fn output_beyond_the_limit_fails_that_command() {
    let dir = tempfile::tempdir().unwrap();
    let key = keygen(dir.path(), "id", "ed25519", "");
    let sshd = server_for(&[&key]);
    let session = Session::connect(&sshd.target("h1", "root", Some(&key), &dir.path().join("kh")))
        .await
        .unwrap();
    // Endless output on stderr: the cap counts both streams.
    let started = Instant::now();
    let pid = dir.path().join("yes.pid");
    let pid = pid.display();
    let err = session
        .exec(
            &RemoteCommand::script(&format!("echo $$ > {pid}; exec yes 0123456789abcdef >&2")),
            None,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, ExecError::OutputTooLarge { .. }), "{err}");
    assert!(
        err.to_string().contains("printed more than 32 MiB"),
        "{err}"
    );
    eprintln!("refused after {:?}", started.elapsed());
    // Output just under the limit is read whole.
    let out = session
        .exec(
            &RemoteCommand::script(&format!("head -c {} /dev/zero", ssh::OUTPUT_LIMIT)),
            None,
        )
        .await
        .unwrap();
    assert_eq!(out.stdout.len(), ssh::OUTPUT_LIMIT);
    // The endless command was ended with its channel.
    let out = session
        .exec(
            &RemoteCommand::script(&format!("sleep 1; kill -0 $(cat {pid}) || echo gone")),
            None,
        )
        .await
        .unwrap();
    assert_eq!(out.stdout_text(), "gone\n");
}

/// A loopback server that accepts connections and never says a word (bounded: a few).
async fn silent_server() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        for _ in 0..8 {
            match listener.accept().await {
                Ok((conn, _)) => held.push(conn),
                Err(_) => return,
            }
        }
    });
    port
}

/// Issue 26 item 9: a registry (or S3 endpoint) that accepts the tunnel and never answers
/// fails the request at its deadline, both before TLS and in plain HTTP.
#[tokio::test]
async fn http_through_the_tunnel_to_a_silent_server_fails_at_the_deadline() {
    use regboot::registry_http::{REQUEST_TIMEOUT, Request, status};
    let dir = tempfile::tempdir().unwrap();
    let key = keygen(dir.path(), "id", "ed25519", "");
    let sshd = server_for(&[&key]);
    let session = Session::connect(&sshd.target("h1", "root", Some(&key), &dir.path().join("kh")))
        .await
        .unwrap();
    let port = silent_server().await;
    let ca = regboot::pki::Ca::generate(&Default::default()).unwrap();
    let request = |ca_pem| Request {
        method: "GET",
        path: "/v2/",
        hostname: "localhost",
        port,
        ca_pem,
        basic_auth: None,
    };
    let (tls, plain) = (request(Some(ca.cert_pem())), request(None));
    let started = Instant::now();
    let both = async { tokio::join!(status(&session, &tls), status(&session, &plain)) };
    // Old code waited for ever: bounded here so that it fails instead of hanging.
    let (tls, plain) = tokio::time::timeout(REQUEST_TIMEOUT * 3, both)
        .await
        .expect("a request to a silent server never ended");
    let took = started.elapsed();
    eprintln!("both requests failed after {took:?}");
    let tls = format!("{:#}", tls.unwrap_err());
    assert!(
        tls.contains("did not complete the connection within 20 s"),
        "{tls}"
    );
    let plain = format!("{:#}", plain.unwrap_err());
    assert!(
        plain.contains("GET /v2/: no complete answer within 20 s"),
        "{plain}"
    );
    assert!(took < REQUEST_TIMEOUT + Duration::from_secs(5), "{took:?}");
}

/// Issue 26 item 9: a connection that goes silent (its sshd frozen, as a host gone or a cut
/// link would look) is noticed by keepalives in seconds, not at the command's timeout.
#[tokio::test]
async fn a_frozen_connection_is_noticed_by_keepalives() {
    let dir = tempfile::tempdir().unwrap();
    let key = keygen(dir.path(), "id", "ed25519", "");
    let sshd = server_for(&[&key]);
    let session = Session::connect(&sshd.target("h1", "root", Some(&key), &dir.path().join("kh")))
        .await
        .unwrap();
    let pids = sshd.session_pids();
    assert!(!pids.is_empty(), "no sshd session process");
    let signal = |sig| {
        for pid in &pids {
            // SAFETY: kill(2) on processes of the sshd this test started.
            unsafe { libc::kill(*pid as i32, sig) };
        }
    };
    // 8 MiB to a command that never reads: the client waits for window space.
    let data = vec![0u8; 8 << 20];
    let started = Instant::now();
    let sleep = RemoteCommand::new("sleep").arg("100");
    let run = session.exec(&sleep, Some(&data));
    let freeze = async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        signal(libc::SIGSTOP);
    };
    let (result, ()) = tokio::join!(run, freeze);
    let took = started.elapsed();
    signal(libc::SIGKILL);
    eprintln!("noticed after {took:?}: {result:?}");
    let err = result.expect_err("the command finished on a frozen connection");
    assert!(err.to_string().contains("the connection was lost"), "{err}");
    assert!(
        took < Duration::from_secs(25),
        "took {took:?} (the command timeout is 120 s)"
    );
}

/// Issue 26 item 16: two hosts behind one bastion, one with `host_key_check: off`: the
/// bastion is checked by its own policy (strict), its own file and its alias, never by a
/// host's: unknown there, both are refused; recorded under its alias, both connect, and the
/// hosts' own file never gets its key.
#[tokio::test]
async fn a_shared_bastion_is_checked_by_its_own_settings() {
    let dir = tempfile::tempdir().unwrap();
    let key = keygen(dir.path(), "id", "ed25519", "");
    let bastion = server_for(&[&key]);
    let inner = server_for(&[&key]);
    let bastion_kh = dir.path().join("kh-bastion");
    let via = ssh::Bastion {
        known_hosts: bastion_kh.clone(),
        global_known_hosts: Vec::new(),
        host_key_alias: Some("the-bastion".into()),
        ..ssh::Bastion::new("root", "127.0.0.1", bastion.port)
    };
    let kh = dir.path().join("kh-hosts");
    fs::write(&kh, inner.known_hosts_line() + "\n").unwrap();
    let mut lax = inner.target("lax", "root", Some(&key), &kh);
    lax.host_key_check = HostKeyCheck::Off;
    lax.bastion = Some(via.clone());
    let mut strict = inner.target("strict", "root", Some(&key), &kh);
    strict.host_key_check = HostKeyCheck::Strict;
    strict.bastion = Some(via);
    let targets = [lax, strict];
    for (t, result) in ssh::connect_all(&targets, 1).await {
        let name = t.name;
        let err = result
            .err()
            .unwrap_or_else(|| panic!("{name} rode an unchecked bastion"));
        assert!(
            matches!(&err, ConnectError::Bastion { source, .. } if matches!(**source, ConnectError::HostKeyUnknown { .. })),
            "{err}"
        );
    }
    let line = bastion.known_hosts_line();
    let key_part = line.split_once(' ').unwrap().1;
    fs::write(
        &bastion_kh,
        format!("[the-bastion]:{} {key_part}\n", bastion.port),
    )
    .unwrap();
    for (t, result) in ssh::connect_all(&targets, 1).await {
        assert!(result.is_ok(), "{}: {:?}", t.name, result.err());
    }
    assert_eq!(
        fs::read_to_string(&kh).unwrap(),
        inner.known_hosts_line() + "\n"
    );
}

/// Issue 26 item 16: with HostKeyAlias the host key is looked up (and recorded) under the
/// alias, as ssh does: strict passes with only `[alias]:port` in known_hosts.
#[tokio::test]
async fn the_host_key_is_checked_under_its_alias() {
    let dir = tempfile::tempdir().unwrap();
    let key = keygen(dir.path(), "id", "ed25519", "");
    let sshd = server_for(&[&key]);
    let kh = dir.path().join("kh");
    let line = sshd.known_hosts_line();
    let key_part = line.split_once(' ').unwrap().1;
    fs::write(&kh, format!("[web-alias]:{} {key_part}\n", sshd.port)).unwrap();
    let mut target = sshd.target("h1", "root", Some(&key), &kh);
    target.host_key_check = HostKeyCheck::Strict;
    let err = Session::connect(&target).await.err().unwrap();
    assert!(matches!(err, ConnectError::HostKeyUnknown { .. }), "{err}");
    target.host_key_alias = Some("web-alias".into());
    let session = Session::connect(&target).await.unwrap();
    assert_eq!(whoami(&session).await, "root");
}
