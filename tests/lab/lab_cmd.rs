//! `regboot lab`: containerized hosts a user (and regboot's own end-to-end tests) can reach with
//! OpenSSH, each with systemd, its own host keys and its own working docker engine.
//! Needs root and Debian's docker.io, debootstrap, docker-registry, openssh-client
//! (scripts/install-deps.sh installs them).

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, SystemTime};

use crate::support::lab::TestLab;
use regboot::lab::{self, LabHost, LabOptions};

fn docker(args: &[&str]) -> String {
    let out = Command::new("docker")
        .args(args)
        .output()
        .expect("docker CLI");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// `sudo -n ` for hosts reached as a non-root user.
fn sudo(host: &LabHost) -> &'static str {
    if host.user == "root" { "" } else { "sudo -n " }
}

#[test]
fn lab_hosts_boot_answer_ssh_run_docker_and_go_away() {
    let t = TestLab::up("main", 3);
    let lab = &t.lab;
    assert_eq!(lab.hosts.len(), 3);
    assert!(
        lab.hosts.iter().any(|h| h.port != 22),
        "one host listens on another port"
    );
    assert!(
        lab.hosts.iter().any(|h| h.user != "root"),
        "one host is reached as non-root"
    );

    // Every host: reached with the written key and known_hosts under strict checking, booted
    // (running, or degraded with the failed units named), with an inner docker that answers.
    for host in &lab.hosts {
        assert_eq!(t.ssh_ok(host, "hostname"), host.name);
        let state = t.ssh_ok(
            host,
            "systemctl is-system-running; systemctl list-units --failed --no-legend --plain; true",
        );
        let mut lines = state.lines();
        match lines.next() {
            Some("running") => {}
            Some("degraded") => assert!(
                lines.next().is_some(),
                "{} is degraded without a failed unit",
                host.name
            ),
            other => panic!("{}: systemd is {other:?}", host.name),
        }
        let version = t.ssh_ok(
            host,
            &format!(
                "{}docker info --format '{{{{.ServerVersion}}}}'",
                sudo(host)
            ),
        );
        assert!(
            !version.is_empty(),
            "{}: docker info answered nothing",
            host.name
        );
    }

    // The non-root user really is not root, and sudo needs no password.
    let ops = lab.hosts.iter().find(|h| h.user != "root").unwrap();
    assert_eq!(t.ssh_ok(ops, "id -un"), ops.user);
    assert_eq!(t.ssh_ok(ops, "sudo -n true; sudo -n id -u"), "0");

    // Each host made its own host keys.
    let known = std::fs::read_to_string(&lab.known_hosts_path).unwrap();
    let ed25519: Vec<&str> = known
        .lines()
        .filter(|l| l.contains("ssh-ed25519"))
        .map(|l| l.split_whitespace().nth(2).unwrap())
        .collect();
    assert_eq!(ed25519.len(), 3);
    assert_eq!(
        ed25519.iter().collect::<HashSet<_>>().len(),
        3,
        "host keys are shared"
    );
    assert!(known.contains(&format!("[{}]:2222 ", t.host("host3").address)));

    // The registry tarball loads and runs inside the registry host: what apply will do.
    let reg = t.host("host1");
    let loaded = t.ssh_with_stdin(reg, "docker load", Some(&lab.image_archive));
    assert!(
        loaded.status.success(),
        "docker load on host1: {}",
        String::from_utf8_lossy(&loaded.stderr)
    );
    t.ssh_ok(
        reg,
        &format!(
            "docker run -d --name lab-test-registry -p 5000:5000 {}",
            lab::REGISTRY_IMAGE
        ),
    );
    let addr: SocketAddr = format!("{}:5000", reg.address).parse().unwrap();
    assert_eq!(
        http_status(addr, "/v2/"),
        Some(200),
        "registry in host1 answers /v2/"
    );

    // The written inventory is one regboot accepts.
    let check = Command::new(env!("CARGO_BIN_EXE_regboot"))
        .args(["inventory", "check", "-i"])
        .arg(&lab.inventory_path)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "inventory check: {}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );

    // A second `up` on the running lab changes nothing: same containers, not restarted, files
    // not rewritten.
    let containers = |lab: &lab::Lab| -> Vec<String> {
        lab.hosts
            .iter()
            .map(|h| {
                docker(&[
                    "inspect",
                    "--format",
                    "{{.Id}} {{.State.StartedAt}}",
                    &h.container,
                ])
            })
            .collect()
    };
    let before = containers(lab);
    let files = [
        &lab.inventory_path,
        &lab.known_hosts_path,
        &lab.key_path,
        &lab.password_path,
    ];
    let stamps = |files: &[&std::path::PathBuf]| -> Vec<SystemTime> {
        files
            .iter()
            .map(|f| std::fs::metadata(f).unwrap().modified().unwrap())
            .collect()
    };
    let mtimes = stamps(&files);
    let again = lab::up(&LabOptions {
        name: lab.name.clone(),
        hosts: 3,
        dir: Some(lab.dir.clone()),
        // As `TestLab::up` brought it up: another package source would be another inventory.
        bundle: TestLab::from_bundle(),
        ..LabOptions::default()
    })
    .unwrap();
    assert_eq!(containers(&again), before);
    assert_eq!(stamps(&files), mtimes);
    assert_eq!(
        again.hosts.iter().map(|h| &h.address).collect::<Vec<_>>(),
        lab.hosts.iter().map(|h| &h.address).collect::<Vec<_>>()
    );

    // Down leaves no container, no network and no file behind.
    let report = lab::down(&lab.name, Some(&lab.dir), false).unwrap();
    assert_eq!(report.containers.len(), 3);
    let label = format!("label=io.regboot.lab={}", lab.name);
    assert_eq!(docker(&["ps", "--all", "--quiet", "--filter", &label]), "");
    assert_eq!(
        docker(&["network", "ls", "--quiet", "--filter", &label]),
        ""
    );
    assert!(!lab.dir.exists(), "{} is left behind", lab.dir.display());
}

#[test]
fn two_labs_run_side_by_side() {
    let a = TestLab::up("side-a", 1);
    let b = TestLab::up("side-b", 2);
    assert_ne!(a.lab.network.subnet, b.lab.network.subnet);
    for t in [&a, &b] {
        for host in &t.lab.hosts {
            assert_eq!(t.ssh_ok(host, "hostname"), host.name);
        }
    }
    // One lab's key does not open the other's hosts.
    let out = Command::new("ssh")
        .args(crate::support::lab::ssh_options(&a.lab))
        .arg(format!("root@{}", b.host("host1").address))
        .arg("true")
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "lab a's key or known_hosts opened lab b's host"
    );

    lab::down(&a.lab.name, Some(&a.lab.dir), false).unwrap();
    assert_eq!(
        b.ssh_ok(b.host("host1"), "hostname"),
        "host1",
        "lab b survives a's down"
    );
}

#[test]
fn bad_options_are_refused_before_anything_starts() {
    let err = lab::up(&LabOptions {
        name: "ok".into(),
        hosts: 0,
        dir: None,
        ..LabOptions::default()
    })
    .unwrap_err();
    assert!(format!("{err:#}").contains("--hosts"), "{err:#}");
    let err = lab::up(&LabOptions {
        name: "Bad Name".into(),
        ..LabOptions::default()
    })
    .unwrap_err();
    assert!(format!("{err:#}").contains("lab name"), "{err:#}");
    assert!(!Path::new(".regboot-lab/Bad Name").exists());
}

/// The HTTP status of GET `path` on `addr`, retried for up to ~10 s while the server starts.
fn http_status(addr: SocketAddr, path: &str) -> Option<u16> {
    for _ in 0..40 {
        if let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_secs(2)) {
            let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
            let request = format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n");
            let mut response = String::new();
            if s.write_all(request.as_bytes()).is_ok() && s.read_to_string(&mut response).is_ok() {
                return response
                    .split_whitespace()
                    .nth(1)
                    .and_then(|c| c.parse().ok());
            }
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    None
}
