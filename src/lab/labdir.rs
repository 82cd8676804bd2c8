//! What `lab up` writes into the lab's directory, and what `lab down` removes again: an SSH key
//! pair, known_hosts with the hosts' real keys, the registry user's password, the inventory,
//! and a marker that says the directory belongs to the lab.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use rand::RngExt;
use russh::keys::ssh_key::LineEnding;
use russh::keys::{Algorithm, PrivateKey};

use super::hosts::LabHost;
use crate::fsutil::{ensure_dir, write_atomic};

pub const KEY: &str = "id_ed25519";
pub const KNOWN_HOSTS: &str = "known_hosts";
pub const PASSWORD: &str = "registry-password";
pub const INVENTORY: &str = "inventory.yml";
pub const ARCHIVE: &str = "images/registry.tar";
const MARKER: &str = ".regboot-lab.json";

/// The marker: which lab owns the directory, and whether `lab up` created it (then `lab down`
/// removes it whole, including what later commands put there, such as apply's state dir).
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Marker {
    lab: String,
    created_dir: bool,
}

/// Create the directory (0700) and its marker; refuse a directory that belongs to another lab.
pub fn claim(dir: &Path, lab: &str) -> Result<()> {
    let created_dir = !dir.exists();
    if let Some(marker) = read_marker(dir)? {
        if marker.lab != lab {
            bail!(
                "{} belongs to the lab {:?}: pick another --dir or run `regboot lab down --name {}`",
                dir.display(),
                marker.lab,
                marker.lab
            );
        }
        return Ok(());
    }
    ensure_dir(dir, 0o700)?;
    let marker = serde_json::to_vec_pretty(&Marker {
        lab: lab.to_string(),
        created_dir,
    })?;
    write_atomic(&dir.join(MARKER), &marker, 0o600)
}

fn read_marker(dir: &Path) -> Result<Option<Marker>> {
    let path = dir.join(MARKER);
    match fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .with_context(|| format!("{} is not a lab marker", path.display())),
        Err(_) => Ok(None),
    }
}

/// The lab's SSH key pair, made once; returns the public key line for authorized_keys.
pub fn ensure_key(dir: &Path, lab: &str) -> Result<String> {
    let private = dir.join(KEY);
    let public = dir.join(format!("{KEY}.pub"));
    if let Ok(line) = fs::read_to_string(&public)
        && private.exists()
    {
        return Ok(line);
    }
    let key = PrivateKey::random(&mut rand::rng(), Algorithm::Ed25519)
        .context("generating the lab's SSH key")?;
    let pem = key
        .to_openssh(LineEnding::LF)
        .context("encoding the lab's SSH key")?;
    let line = format!(
        "{} regboot-lab-{lab}\n",
        key.public_key()
            .to_openssh()
            .context("encoding the lab's public key")?
    );
    write_atomic(&private, pem.as_bytes(), 0o600)?;
    write_atomic(&public, line.as_bytes(), 0o644)?;
    Ok(line)
}

/// known_hosts in OpenSSH's format: `addr` for port 22, `[addr]:port` otherwise.
pub fn known_hosts(hosts: &[(LabHost, Vec<String>)]) -> String {
    let mut out = String::new();
    for (host, keys) in hosts {
        let pattern = if host.port == 22 {
            host.address.clone()
        } else {
            format!("[{}]:{}", host.address, host.port)
        };
        for key in keys {
            out.push_str(&format!("{pattern} {key}\n"));
        }
    }
    out
}

/// The registry user's password file (0600), made once with 24 random characters.
pub fn ensure_password(dir: &Path) -> Result<PathBuf> {
    let path = dir.join(PASSWORD);
    if !path.exists() {
        let password: String = rand::rng()
            .sample_iter(rand::distr::Alphanumeric)
            .take(24)
            .map(char::from)
            .collect();
        write_atomic(&path, format!("{password}\n").as_bytes(), 0o600)?;
    }
    Ok(path)
}

/// Write `data` unless the file already holds exactly that with `mode`: re-running `lab up`
/// on a running lab changes nothing, not even a timestamp. True when it wrote.
pub fn write_if_changed(path: &Path, data: &[u8], mode: u32) -> Result<bool> {
    if let Ok(meta) = fs::metadata(path)
        && meta.permissions().mode() & 0o777 == mode
        && fs::read(path).is_ok_and(|old| old == data)
    {
        return Ok(false);
    }
    write_atomic(path, data, mode)?;
    Ok(true)
}

/// Remove what `lab up` wrote: the whole directory when up created it, else its own files.
pub fn remove(dir: &Path, lab: &str) -> Result<()> {
    let Some(marker) = read_marker(dir)? else {
        return Ok(());
    };
    if marker.lab != lab {
        bail!(
            "{} belongs to the lab {:?}, not {lab:?}: left as it is",
            dir.display(),
            marker.lab
        );
    }
    if marker.created_dir {
        return fs::remove_dir_all(dir).with_context(|| format!("cannot remove {}", dir.display()));
    }
    let key_pub = format!("{KEY}.pub");
    for name in [
        KEY,
        &key_pub,
        KNOWN_HOSTS,
        PASSWORD,
        INVENTORY,
        ARCHIVE,
        super::seaweed::ENV_FILE,
        MARKER,
    ] {
        let path = dir.join(name);
        if path.exists() {
            fs::remove_file(&path).with_context(|| format!("cannot remove {}", path.display()))?;
        }
    }
    let _ = fs::remove_dir(dir.join("images"));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_hosts_brackets_only_other_ports() {
        let host = |address: &str, port| LabHost {
            name: "h".into(),
            container: "c".into(),
            address: address.into(),
            port,
            user: "root".into(),
            flavor: crate::lab::Flavor::Docker,
        };
        let text = known_hosts(&[
            (host("10.0.0.1", 22), vec!["ssh-ed25519 AAAA1".into()]),
            (
                host("10.0.0.2", 2222),
                vec!["ssh-ed25519 AAAA2".into(), "ssh-rsa BBBB".into()],
            ),
        ]);
        assert_eq!(
            text,
            "10.0.0.1 ssh-ed25519 AAAA1\n[10.0.0.2]:2222 ssh-ed25519 AAAA2\n[10.0.0.2]:2222 ssh-rsa BBBB\n"
        );
    }

    #[test]
    fn rewrites_only_what_changed() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        assert!(write_if_changed(&p, b"a", 0o644).unwrap());
        assert!(!write_if_changed(&p, b"a", 0o644).unwrap());
        assert!(write_if_changed(&p, b"a", 0o600).unwrap());
        assert!(write_if_changed(&p, b"b", 0o600).unwrap());
    }

    #[test]
    fn down_removes_only_a_directory_of_the_same_lab() {
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("lab");
        claim(&dir, "one").unwrap();
        assert!(claim(&dir, "two").is_err());
        assert!(remove(&dir, "two").is_err());
        remove(&dir, "one").unwrap();
        assert!(!dir.exists());

        // A directory that existed before keeps what the lab did not write.
        let own = parent.path().join("own");
        fs::create_dir(&own).unwrap();
        fs::write(own.join("notes"), "mine").unwrap();
        claim(&own, "one").unwrap();
        ensure_password(&own).unwrap();
        remove(&own, "one").unwrap();
        assert!(own.join("notes").exists() && !own.join(PASSWORD).exists());
    }
}
