//! The registry's front (nginx on each registry host) when a roll halts (issue 26 item 3):
//! an apply that brings a new registry certificate writes it on every registry host before
//! the one-at-a-time roll, but nginx serves the serving container's own copy, so a roll that
//! halts at the first replica leaves the second one's front as it was, on disk and after a
//! restart of nginx (as at a reboot).
//!
//! Two registry replicas (host1, host2) on the lab's shared volume, one agent (host3).

use crate::support::cli::{host_error, run_json};
use crate::support::lab::TestLab;

const DATA_DIR: &str = "/srv/regboot-shared/front";

/// host2 becomes a second replica on shared storage.
fn two_replicas(lab: &TestLab) -> std::path::PathBuf {
    let inv = lab.lab.inventory_path.clone();
    let text = std::fs::read_to_string(&inv).unwrap();
    let (head, tail) = text.split_once("  - name: host2").unwrap();
    let tail = tail.replacen("roles: [agent]", "roles: [registry]", 1);
    let text = format!("{head}  - name: host2{tail}").replace(
        "  users:\n",
        &format!(
            "  data_dir: {DATA_DIR}\n  storage:\n    driver: filesystem\n    shared: true\n  users:\n"
        ),
    );
    std::fs::write(&inv, text).unwrap();
    inv
}

/// The SHA-256 of the certificate files nginx's config names on `host`.
fn front_files(lab: &TestLab, host: &str) -> String {
    lab.root_script(
        host,
        "nginx -T 2>/dev/null | sed -n 's/^ *ssl_certificate\\(_key\\)\\{0,1\\} \\(.*\\);$/\\2/p' | \
         sort -u | xargs sha256sum",
    )
}

/// The fingerprint of the certificate nginx on `host` serves after a restart (as at a reboot).
fn served_after_restart(lab: &TestLab, host: &str) -> String {
    lab.root_script(
        host,
        "systemctl restart nginx\n\
         echo | openssl s_client -connect 127.0.0.1:5000 -servername registry.lab 2>/dev/null | \
         openssl x509 -noout -fingerprint -sha256",
    )
}

#[test]
fn a_halted_roll_leaves_the_other_fronts_certificate_alone() {
    let lab = TestLab::up("front", 3);
    let inv = two_replicas(&lab);
    let (code, first) = run_json(&inv, &["apply"]);
    assert_eq!(code, 0, "{first:#}");
    let files_before = front_files(&lab, "host2");
    assert!(files_before.contains("registry"), "{files_before}");
    let served_before = served_after_restart(&lab, "host2");
    assert!(served_before.contains("Fingerprint"), "{served_before}");

    // A new alias (a new certificate) with an image that cannot start: the roll halts at
    // host1, after the registry files were written on both hosts.
    for h in ["host1", "host2"] {
        lab.root_script(
            h,
            "tar cf - --files-from /dev/null | docker import -c 'ENTRYPOINT [\"/nonexistent\"]' - regboot-lab/broken:1 >/dev/null",
        );
    }
    let good = std::fs::read_to_string(&inv).unwrap();
    let image_line = good
        .lines()
        .find(|l| l.starts_with("  image: "))
        .unwrap()
        .to_string();
    std::fs::write(
        &inv,
        good.replace(
            &image_line,
            "  image: regboot-lab/broken:1\n  aliases: [hub.registry.lab]",
        ),
    )
    .unwrap();
    let (code, halted) = run_json(&inv, &["apply"]);
    assert_eq!(code, 1, "{halted:#}");
    assert!(host_error(&halted, "host1").is_some(), "{halted:#}");
    assert_eq!(
        host_error(&halted, "host2"),
        Some("not started: the roll halted after host1 failed")
    );
    let base = lab.root_script(
        "host2",
        "sha256sum /etc/regboot/registry/certs/registry-chain.crt",
    );
    assert!(
        !files_before.contains(base.split_whitespace().next().unwrap()),
        "the new certificate was not written on host2 (the test proves nothing):\n{base}"
    );
    assert_eq!(
        front_files(&lab, "host2"),
        files_before,
        "host2's front certificate changed on disk"
    );
    assert_eq!(
        served_after_restart(&lab, "host2"),
        served_before,
        "host2's nginx serves another certificate after a restart"
    );

    // Fixed, a re-run rolls both: host2's front serves the new certificate.
    std::fs::write(
        &inv,
        good.replace(
            &image_line,
            &format!("{image_line}\n  aliases: [hub.registry.lab]"),
        ),
    )
    .unwrap();
    let (code, fixed) = run_json(&inv, &["apply"]);
    assert_eq!(code, 0, "{fixed:#}");
    assert_ne!(served_after_restart(&lab, "host2"), served_before);
    let (code, plan) = run_json(&inv, &["plan"]);
    assert_eq!(code, 0, "{plan:#}");
}

/// Issue 26 item 1: with `tls.mode: insecure` nginx cannot check who answers on the loopback
/// port it passes to, so that port is one only root may bind: with the container stopped (as
/// during a dockerd restart), a local user cannot listen there and get the clients' requests
/// and credentials (the ports were 41500/41501, which any user could bind).
#[test]
fn without_tls_no_local_user_can_take_the_fronts_backend_port() {
    let lab = TestLab::up("front-plain", 2);
    let inv = lab.lab.inventory_path.clone();
    let text = std::fs::read_to_string(&inv).unwrap();
    std::fs::write(
        &inv,
        text.replace("  mode: self-signed", "  mode: insecure"),
    )
    .unwrap();
    // Every host's steps pass; the smoke test's containerd pull (ctr) is not this test's
    // concern (it asks for HTTPS from a plain-HTTP registry).
    let (_, applied) = run_json(&inv, &["apply"]);
    for h in ["host1", "host2"] {
        assert_eq!(host_error(&applied, h), None, "{applied:#}");
    }
    let port = lab.root_script(
        "host1",
        "sed -n 's/^ *server 127\\.0\\.0\\.1:\\([0-9]*\\);.*/\\1/p' /etc/nginx/regboot-backend.conf",
    );
    assert!(port.parse::<u16>().is_ok(), "{port}");
    let taken = lab.root_script(
        "host1",
        &format!(
            "docker stop regboot-registry >/dev/null\n\
             setpriv --reuid=65534 --regid=65534 --clear-groups perl -MIO::Socket::INET -e \
             'print IO::Socket::INET->new(LocalAddr => \"127.0.0.1:{port}\", Listen => 1, ReuseAddr => 1) \
              ? \"bound\" : \"refused: $!\"'\n\
             docker start regboot-registry >/dev/null"
        ),
    );
    assert!(
        taken.contains("refused") && taken.contains("Permission denied"),
        "a local user could listen on 127.0.0.1:{port}: {taken}"
    );
    // A host that lets any user bind low ports: the roll refuses, naming the fix.
    lab.root_script(
        "host1",
        "sysctl -qw net.ipv4.ip_unprivileged_port_start=0\n\
         docker rm -f regboot-registry >/dev/null",
    );
    let (code, refused) = run_json(&inv, &["apply"]);
    assert_ne!(code, 0, "{refused:#}");
    let err = host_error(&refused, "host1").unwrap_or_default();
    assert!(
        err.contains("ip_unprivileged_port_start is 0") && err.contains("sysctl -w"),
        "{refused:#}"
    );
    lab.root_script(
        "host1",
        "sysctl -qw net.ipv4.ip_unprivileged_port_start=1024",
    );
    let (_, applied) = run_json(&inv, &["apply"]);
    assert_eq!(host_error(&applied, "host1"), None, "{applied:#}");
    let (code, plan) = run_json(&inv, &["plan"]);
    assert_eq!(code, 0, "{plan:#}");
}
