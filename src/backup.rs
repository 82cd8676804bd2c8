//! Backups of the state directory: one file holding a plain manifest (what the backup is,
//! readable without the passphrase) and the state directory's files (CA, keys, http secret,
//! rotation CAs, archive) as a tar encrypted with age to a passphrase (scrypt).
//!
//! Layout: the line `regboot-backup 1`, one line of JSON (the manifest), then the age file.
//! `head -n 2 FILE` shows the manifest.

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use age::secrecy::SecretString;
use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::fsutil::{ensure_dir, write_atomic};
use crate::pki::inspect;
use crate::pki::state::{CA_CERT, DIR_MODE};

const MAGIC: &str = "regboot-backup 1";
/// Larger than any state directory (keys and certificates): a bound on what is read.
const MAX_SIZE: u64 = 64 << 20;
/// Never backed up: the run lock.
const SKIPPED: &[&str] = &["lock"];

/// What a backup holds, readable without the passphrase.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub created: String,
    pub regboot_version: String,
    /// SHA-256 of the CA certificate (as `certs show` prints it); none without a CA.
    pub ca_fingerprint_sha256: Option<String>,
    pub ca_subject: Option<String>,
    pub ca_not_after: Option<String>,
    /// SHA-256 of the inventory file the backup was made with.
    pub inventory_sha256: Option<String>,
    /// The files, relative to the state directory.
    pub files: Vec<String>,
}

/// One file of the state directory.
struct Entry {
    path: PathBuf,
    mode: u32,
    data: Vec<u8>,
}

fn read_tree(root: &Path) -> Result<Vec<Entry>> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<Entry>) -> Result<()> {
        let mut names: Vec<_> = fs::read_dir(dir)
            .with_context(|| format!("cannot list {}", dir.display()))?
            .collect::<Result<_, _>>()?;
        names.sort_by_key(|e| e.file_name());
        for e in names {
            let path = e.path();
            let rel = path.strip_prefix(root).expect("below root").to_path_buf();
            let meta = fs::symlink_metadata(&path)?;
            if meta.is_dir() {
                walk(root, &path, out)?;
            } else if meta.is_file() && !SKIPPED.iter().any(|s| rel == Path::new(s)) {
                out.push(Entry {
                    data: fs::read(&path)
                        .with_context(|| format!("cannot read {}", path.display()))?,
                    mode: meta.permissions().mode() & 0o777,
                    path: rel,
                });
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(root, root, &mut out)?;
    Ok(out)
}

fn fingerprint(pem: &[u8]) -> Option<inspect::CertInfo> {
    inspect::cert_info(&String::from_utf8_lossy(pem)).ok()
}

/// Write a backup of `state` to `out` (0600, atomically); returns its manifest.
pub fn backup(
    state: &Path,
    inventory: Option<&Path>,
    out: &Path,
    passphrase: &str,
) -> Result<Manifest> {
    if !state.is_dir() {
        bail!(
            "there is no state directory at {} to back up (choose it with --state-dir)",
            state.display()
        );
    }
    let entries = read_tree(state)?;
    if entries.is_empty() {
        bail!("the state directory {} is empty", state.display());
    }
    let ca = entries
        .iter()
        .find(|e| e.path == Path::new(CA_CERT))
        .and_then(|e| fingerprint(&e.data));
    let manifest = Manifest {
        created: time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)?,
        regboot_version: env!("CARGO_PKG_VERSION").into(),
        ca_fingerprint_sha256: ca.as_ref().map(|c| c.fingerprint_sha256.clone()),
        ca_subject: ca.as_ref().map(|c| c.subject.clone()),
        ca_not_after: ca.as_ref().map(|c| inspect::date(c.not_after)),
        inventory_sha256: match inventory {
            Some(p) => Some(hex::encode(Sha256::digest(
                fs::read(p).with_context(|| format!("cannot read {}", p.display()))?,
            ))),
            None => None,
        },
        files: entries
            .iter()
            .map(|e| e.path.display().to_string())
            .collect(),
    };
    let mut tar = tar::Builder::new(Vec::new());
    for e in &entries {
        let mut header = tar::Header::new_gnu();
        header.set_size(e.data.len() as u64);
        header.set_mode(e.mode);
        header.set_mtime(0);
        header.set_entry_type(tar::EntryType::Regular);
        tar.append_data(&mut header, &e.path, e.data.as_slice())?;
    }
    let plain = tar.into_inner()?;
    let encryptor = age::Encryptor::with_user_passphrase(SecretString::from(passphrase.to_owned()));
    let mut sealed = Vec::new();
    let mut w = encryptor.wrap_output(&mut sealed)?;
    w.write_all(&plain)?;
    w.finish()?;
    let mut file = format!("{MAGIC}\n{}\n", serde_json::to_string(&manifest)?).into_bytes();
    file.extend(sealed);
    write_atomic(out, &file, 0o600)?;
    Ok(manifest)
}

/// The manifest and the encrypted part of a backup file.
fn split(path: &Path) -> Result<(Manifest, Vec<u8>)> {
    let data = crate::fsutil::read_limited(path, "backup", MAX_SIZE)?;
    let not_ours = || format!("{} is not a regboot backup", path.display());
    let first = data
        .iter()
        .position(|b| *b == b'\n')
        .with_context(not_ours)?;
    if &data[..first] != MAGIC.as_bytes() {
        bail!(not_ours());
    }
    let rest = &data[first + 1..];
    let second = rest
        .iter()
        .position(|b| *b == b'\n')
        .with_context(not_ours)?;
    let manifest: Manifest = serde_json::from_slice(&rest[..second]).with_context(not_ours)?;
    Ok((manifest, rest[second + 1..].to_vec()))
}

/// The manifest of a backup, without the passphrase.
pub fn show(path: &Path) -> Result<Manifest> {
    split(path).map(|(m, _)| m)
}

/// What a restore did.
pub struct Restored {
    pub manifest: Manifest,
    pub files: usize,
    /// Where the replaced state directory went (`--force` over another CA).
    pub moved_aside: Option<PathBuf>,
}

/// Restore the backup at `path` into the state directory `state`. Refuses to replace a
/// different CA unless `force` (the old directory is then moved aside, not deleted). A wrong
/// passphrase writes nothing.
pub fn restore(path: &Path, state: &Path, passphrase: &str, force: bool) -> Result<Restored> {
    let (manifest, sealed) = split(path)?;
    let decryptor = age::Decryptor::new_buffered(sealed.as_slice()).with_context(|| {
        format!(
            "{} is damaged (not an age file after its manifest)",
            path.display()
        )
    })?;
    let identity = age::scrypt::Identity::new(SecretString::from(passphrase.to_owned()));
    let mut plain = Vec::new();
    match decryptor.decrypt(std::iter::once(&identity as &dyn age::Identity)) {
        Ok(mut r) => r.read_to_end(&mut plain).with_context(|| {
            format!(
                "{} is damaged: its encrypted part does not decrypt whole; nothing was written",
                path.display()
            )
        })?,
        Err(
            age::DecryptError::DecryptionFailed
            | age::DecryptError::KeyDecryptionFailed
            | age::DecryptError::NoMatchingKeys,
        ) => bail!(
            "the passphrase does not open {} (a wrong passphrase, or a damaged file); nothing was written",
            path.display()
        ),
        Err(e) => bail!(
            "cannot decrypt {}: {e}; nothing was written",
            path.display()
        ),
    };
    let mut entries = Vec::new();
    let mut archive = tar::Archive::new(plain.as_slice());
    for e in archive.entries()? {
        let mut e = e?;
        let rel = e.path()?.to_path_buf();
        if rel.components().any(|c| !matches!(c, Component::Normal(_))) {
            bail!(
                "{} holds an unsafe path {}; nothing was written",
                path.display(),
                rel.display()
            );
        }
        let mode = e.header().mode()? & 0o777;
        let mut data = Vec::new();
        e.read_to_end(&mut data)?;
        entries.push(Entry {
            path: rel,
            mode,
            data,
        });
    }
    let inside = entries
        .iter()
        .find(|e| e.path == Path::new(CA_CERT))
        .and_then(|e| fingerprint(&e.data))
        .map(|c| c.fingerprint_sha256);
    if inside != manifest.ca_fingerprint_sha256 {
        bail!(
            "{}: the manifest names another CA than the one inside; nothing was written",
            path.display()
        );
    }
    let current = fs::read(state.join(CA_CERT))
        .ok()
        .and_then(|pem| fingerprint(&pem))
        .map(|c| c.fingerprint_sha256);
    let mut moved_aside = None;
    if let (Some(cur), Some(new)) = (&current, &inside)
        && cur != new
    {
        if !force {
            bail!(
                "the state directory {} holds another CA (SHA-256 {}…) than the backup ({}…): \
                 restoring would replace the CA the hosts may trust. Nothing was written. If \
                 that is what you want, run again with --force (the current directory is kept \
                 beside it, renamed).",
                state.display(),
                &cur[..cur.len().min(23)],
                &new[..new.len().min(23)]
            );
        }
        let stamp = time::OffsetDateTime::now_utc().unix_timestamp();
        let aside = PathBuf::from(format!("{}.replaced-{stamp}", state.display()));
        fs::rename(state, &aside)
            .with_context(|| format!("cannot move {} aside", state.display()))?;
        moved_aside = Some(aside);
    }
    ensure_dir(state, DIR_MODE)?;
    for e in &entries {
        let to = state.join(&e.path);
        if let Some(parent) = to.parent() {
            ensure_dir(parent, DIR_MODE)?;
        }
        write_atomic(&to, &e.data, e.mode)?;
    }
    Ok(Restored {
        manifest,
        files: entries.len(),
        moved_aside,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_refusals() {
        let tmp = tempfile::tempdir().unwrap();
        let state = tmp.path().join("state");
        let a = crate::pki::StateDir::open(&state).unwrap();
        a.write_public(CA_CERT, "not a certificate\n").unwrap();
        a.write_secret("http-secret", "s3cret\n").unwrap();
        fs::create_dir_all(state.join("archive")).unwrap();
        fs::write(state.join("archive/old.key"), "old").unwrap();
        fs::write(state.join("lock"), "").unwrap();
        let file = tmp.path().join("b.age");
        let m = backup(&state, None, &file, "pw").unwrap();
        assert_eq!(m.files, ["archive/old.key", "ca.crt", "http-secret"]);
        assert_eq!(show(&file).unwrap(), m);
        let mode = fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        // The secret is not readable in the file.
        assert!(!String::from_utf8_lossy(&fs::read(&file).unwrap()).contains("s3cret"));

        let target = tmp.path().join("restored");
        let err = restore(&file, &target, "wrong", false).err().unwrap();
        assert!(format!("{err:#}").contains("does not open"), "{err:#}");
        assert!(!target.exists(), "a wrong passphrase wrote something");

        let r = restore(&file, &target, "pw", false).unwrap();
        assert_eq!(r.files, 3);
        assert_eq!(
            fs::read_to_string(target.join("http-secret")).unwrap(),
            "s3cret\n"
        );
        let mode = fs::metadata(target.join("http-secret"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(!target.join("lock").exists());
    }
}
