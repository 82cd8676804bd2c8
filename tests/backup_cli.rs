//! `regboot backup` and `regboot restore` as a user runs them, without hosts: the manifest
//! readable without the passphrase, a wrong passphrase writing nothing, a restore over
//! another CA refused (and done with --force, the old directory kept), files and modes back
//! as they were. tests/lab/backup.rs proves `plan` exits 0 after a
//! restore on a deployed cluster.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Output;

const INVENTORY: &str = "\
version: 1
hosts:
  - { name: reg1, address: 10.1.0.1, roles: [registry] }
registry:
  hostname: registry.example.com
tls:
  mode: self-signed
";

/// `regboot ARGS` run in `dir`, with the passphrase `pass` in its environment if any.
fn regboot(dir: &Path, args: &[&str], pass: Option<&str>) -> Output {
    let mut c = support::cli::command();
    c.current_dir(dir).args(args);
    if let Some(p) = pass {
        c.env("REGBOOT_BACKUP_PASSPHRASE", p);
    }
    c.output().unwrap()
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Every file under `dir`: relative path, mode, content.
fn tree(dir: &Path) -> Vec<(String, u32, Vec<u8>)> {
    let mut out = Vec::new();
    for e in walk(dir) {
        let meta = std::fs::metadata(&e).unwrap();
        let rel = e.strip_prefix(dir).unwrap().display().to_string();
        if rel != "lock" {
            out.push((
                rel,
                meta.permissions().mode() & 0o777,
                std::fs::read(&e).unwrap(),
            ));
        }
    }
    out.sort();
    out
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files.extend(walk(&p));
        } else {
            files.push(p);
        }
    }
    files
}

#[test]
fn backup_and_restore_round_trip_with_refusals() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::write(dir.join("inventory.yml"), INVENTORY).unwrap();
    ok(&regboot(
        dir,
        &["certs", "init", "-i", "inventory.yml"],
        None,
    ));
    let state = dir.join(".regboot");
    // The http secret is made by the first apply; here by hand, to be in the backup.
    std::fs::write(state.join("http-secret"), "0123\n").unwrap();
    std::fs::set_permissions(
        state.join("http-secret"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    let original = tree(&state);

    // No passphrase and no terminal: refused, nothing written.
    let out = regboot(dir, &["backup", "b.age", "-i", "inventory.yml"], None);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("REGBOOT_BACKUP_PASSPHRASE"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!dir.join("b.age").exists());

    let shown = ok(&regboot(
        dir,
        &["backup", "b.age", "-i", "inventory.yml", "-o", "json"],
        Some("correct horse"),
    ));
    let manifest: serde_json::Value = serde_json::from_str(&shown).unwrap();
    let ca_fp = manifest["ca_fingerprint_sha256"]
        .as_str()
        .unwrap()
        .to_string();
    // The manifest without the passphrase; no key in the file's clear text.
    let show = ok(&regboot(dir, &["restore", "--show", "b.age"], None));
    assert!(show.contains(&ca_fp), "{show}");
    let bytes = std::fs::read(dir.join("b.age")).unwrap();
    assert!(!String::from_utf8_lossy(&bytes).contains("PRIVATE KEY"));
    assert_eq!(
        std::fs::metadata(dir.join("b.age"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );

    // The state directory is lost; a wrong passphrase restores nothing.
    std::fs::remove_dir_all(&state).unwrap();
    let out = regboot(
        dir,
        &["restore", "b.age", "-i", "inventory.yml"],
        Some("wrong"),
    );
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("the passphrase does not open"), "{err}");
    assert!(
        !state.exists(),
        "a wrong passphrase wrote {}",
        state.display()
    );

    ok(&regboot(
        dir,
        &["restore", "b.age", "-i", "inventory.yml"],
        Some("correct horse"),
    ));
    assert_eq!(tree(&state), original, "restored files differ");
    assert_eq!(
        std::fs::metadata(&state).unwrap().permissions().mode() & 0o777,
        0o700
    );

    // Another CA in the state directory: refused without --force, unchanged.
    std::fs::remove_dir_all(&state).unwrap();
    ok(&regboot(
        dir,
        &["certs", "init", "-i", "inventory.yml"],
        None,
    ));
    let other = tree(&state);
    let out = regboot(
        dir,
        &["restore", "b.age", "-i", "inventory.yml"],
        Some("correct horse"),
    );
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("holds another CA") && err.contains("--force"),
        "{err}"
    );
    assert_eq!(tree(&state), other);
    // --force: the backup's files, the other directory moved aside.
    let out = ok(&regboot(
        dir,
        &["restore", "b.age", "-i", "inventory.yml", "--force"],
        Some("correct horse"),
    ));
    assert!(out.contains("the replaced state directory is now"), "{out}");
    assert_eq!(tree(&state), original);
    let aside: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".regboot.replaced-"))
        .collect();
    assert_eq!(aside.len(), 1, "{aside:?}");
    assert_eq!(tree(&dir.join(&aside[0])), other);
}
