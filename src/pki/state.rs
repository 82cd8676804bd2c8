//! The state directory: what regboot keeps because it cannot be read back from the hosts
//! (the CA key, the issued server key, the registry http secret, the smoke test's password)
//! and the run lock.

use std::fs::{self, File, OpenOptions};
use std::io::ErrorKind;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::fsutil::{ensure_dir, write_atomic};

pub const CA_CERT: &str = "ca.crt";
pub const CA_KEY: &str = "ca.key";
pub const REGISTRY_CERT: &str = "registry.crt";
pub const REGISTRY_KEY: &str = "registry.key";
pub const REGISTRY_CHAIN: &str = "registry-chain.crt";
pub const HTTP_SECRET: &str = "http-secret";
/// The password of the smoke test's own registry user (see `inventory::SMOKE_USER`).
pub const SMOKE_PASSWORD: &str = "smoke-password";
/// The CA a rotation moves to, before it becomes `ca.*` (stage 1 of `rotate --ca`).
pub const CA_NEXT_CERT: &str = "ca-next.crt";
pub const CA_NEXT_KEY: &str = "ca-next.key";
/// The CA a rotation moved away from, still trusted by hosts until stage 3 of `rotate --ca`.
pub const CA_PREVIOUS_CERT: &str = "ca-previous.crt";
/// Replaced certificates and keys, named `<UTC time>-<file>`: never silently dropped.
pub const ARCHIVE: &str = "archive";
const LOCK: &str = "lock";

/// The private keys and secrets: refused when group or others have any access to them.
pub const SECRETS: [&str; 5] = [
    CA_KEY,
    CA_NEXT_KEY,
    REGISTRY_KEY,
    HTTP_SECRET,
    SMOKE_PASSWORD,
];

fn refuse_open_secret(path: &Path, name: &str, mode: u32) -> Result<()> {
    if mode & 0o077 == 0 {
        return Ok(());
    }
    let leaked = match name {
        CA_KEY | CA_NEXT_KEY => "`regboot rotate --ca`",
        REGISTRY_KEY => "`regboot rotate --leaf`",
        _ => "remove it and run `regboot apply`, which makes a new one",
    };
    bail!(
        "{} has mode {mode:04o}: group or others may read it, and regboot will not use a secret \
         that others can read. Fix: `chmod 600 {}`. If anyone else could have copied it, treat \
         it as leaked: {leaked}",
        path.display(),
        path.display()
    )
}

/// A file's or directory's permissions, as `certs show` prints them.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Permission {
    pub path: PathBuf,
    /// e.g. `0600`.
    pub mode: String,
    pub uid: u32,
    /// What is wrong with it, with the fix.
    pub problem: Option<String>,
}

/// Mode of the state directory itself: only the owner may list or enter it.
pub const DIR_MODE: u32 = 0o700;
/// Mode of private keys and secrets.
pub const SECRET_MODE: u32 = 0o600;
/// Mode of certificates (public, but they live in a 0700 directory anyway).
pub const PUBLIC_MODE: u32 = 0o644;

/// An opened state directory (created with mode 0700 when missing).
#[derive(Debug, Clone)]
pub struct StateDir {
    root: PathBuf,
    /// Opened by [`StateDir::existing`]: every write is refused.
    read_only: bool,
}

impl StateDir {
    /// Open `root`, creating it (and its parents) when missing, and set its mode to 0700.
    pub fn open(root: &Path) -> Result<Self> {
        ensure_dir(root, DIR_MODE).with_context(|| {
            format!(
                "cannot use state directory {} (choose another with --state-dir)",
                root.display()
            )
        })?;
        Ok(Self {
            root: root.to_path_buf(),
            read_only: false,
        })
    }

    /// The state directory at `root`, without creating it: read-only commands (`certs check`,
    /// `certs show`) must not leave an empty state directory behind.
    pub fn at(root: &Path) -> Self {
        Self {
            root: root.to_path_buf(),
            read_only: false,
        }
    }

    /// The state directory an earlier apply made at `root`, for a run that must not change it
    /// (`verify`): an error when it does not exist, and every write refused.
    pub fn existing(root: &Path) -> Result<Self> {
        if !root.is_dir() {
            bail!(
                "no state directory at {}: run `regboot apply` first (it creates the CA and the \
                 smoke test's credential), or name the right one with --state-dir",
                root.display()
            );
        }
        Ok(Self {
            root: root.to_path_buf(),
            read_only: true,
        })
    }

    /// Whether this run may not change the state directory (see [`StateDir::existing`]).
    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    fn writable(&self) -> Result<()> {
        if self.read_only {
            bail!(
                "this command does not change the state directory {}: run `regboot apply`",
                self.root.display()
            );
        }
        Ok(())
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The path of a well-known file, e.g. `state.path(CA_CERT)`.
    pub fn path(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// Read a well-known text file; `None` when it does not exist. A private key that group
    /// or others may read (or write) is refused, with the fix: it may have leaked already.
    pub fn read(&self, name: &str) -> Result<Option<String>> {
        let path = self.path(name);
        if SECRETS.contains(&name) {
            match fs::metadata(&path) {
                Ok(meta) => refuse_open_secret(&path, name, meta.permissions().mode() & 0o777)?,
                Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
                Err(e) => {
                    return Err(e).with_context(|| format!("cannot stat {}", path.display()));
                }
            }
        }
        crate::fsutil::read_text_if_any(&path, "the state directory's", crate::fsutil::PEM_LIMIT)
    }

    /// Write a private key or secret (mode 0600), atomically.
    pub fn write_secret(&self, name: &str, data: &str) -> Result<()> {
        self.writable()?;
        write_atomic(&self.path(name), data.as_bytes(), SECRET_MODE)
    }

    /// Write a certificate (mode 0644), atomically.
    pub fn write_public(&self, name: &str, data: &str) -> Result<()> {
        self.writable()?;
        write_atomic(&self.path(name), data.as_bytes(), PUBLIC_MODE)
    }

    /// Copy `name` (when it exists) into `archive/` as `<UTC time>-<name>`, keeping its mode;
    /// returns the archived path.
    pub fn archive(&self, name: &str) -> Result<Option<PathBuf>> {
        self.writable()?;
        let Some(data) = self.read(name)? else {
            return Ok(None);
        };
        let dir = self.path(ARCHIVE);
        ensure_dir(&dir, DIR_MODE)?;
        let stamp = time::OffsetDateTime::now_utc()
            .format(time::macros::format_description!(
                "[year]-[month]-[day]T[hour][minute][second]Z"
            ))
            .context("formatting the archive time")?;
        let mode = fs::metadata(self.path(name))
            .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o777)
            .unwrap_or(SECRET_MODE);
        // Two archives of one file in the same second get a counter.
        let mut target = dir.join(format!("{stamp}-{name}"));
        let mut n = 1;
        while target.exists() {
            n += 1;
            target = dir.join(format!("{stamp}-{n}-{name}"));
        }
        write_atomic(&target, data.as_bytes(), mode)?;
        Ok(Some(target))
    }

    /// Remove a well-known file (gone already is fine).
    pub fn remove(&self, name: &str) -> Result<()> {
        self.writable()?;
        let path = self.path(name);
        match fs::remove_file(&path) {
            Err(e) if e.kind() != ErrorKind::NotFound => {
                Err(e).with_context(|| format!("cannot remove {}", path.display()))
            }
            _ => Ok(()),
        }
    }

    /// Take the run lock, so two runs never change the state (or the hosts) at once.
    /// Held until the returned guard is dropped; the kernel releases it if the process dies.
    /// A read-only state directory is locked through its existing lock file (apply made it).
    pub fn lock(&self) -> Result<RunLock> {
        let path = self.path(LOCK);
        let file = OpenOptions::new()
            .create(!self.read_only)
            .truncate(false)
            .read(true)
            .write(!self.read_only)
            .mode(SECRET_MODE)
            .open(&path)
            .with_context(|| {
                let hint = if self.read_only {
                    ": run `regboot apply` first"
                } else {
                    ""
                };
                format!("cannot open lock file {}{hint}", path.display())
            })?;
        // SAFETY: flock on a file descriptor we own; no memory is shared with the kernel.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            let err = std::io::Error::last_os_error();
            if err.kind() == ErrorKind::WouldBlock {
                bail!(
                    "another regboot run holds the lock on {} (file {}): wait for it to finish",
                    self.root.display(),
                    path.display()
                );
            }
            return Err(err).with_context(|| format!("cannot lock {}", path.display()));
        }
        Ok(RunLock { _file: file })
    }

    /// The registry's http secret (shared by every replica), created once.
    pub fn http_secret(&self) -> Result<String> {
        self.random_secret(HTTP_SECRET)
    }

    /// The smoke test user's password, created once.
    pub fn smoke_password(&self) -> Result<String> {
        self.random_secret(SMOKE_PASSWORD)
    }

    /// The secret in `name` (trimmed; `None` when missing or empty), without creating it.
    pub fn read_secret(&self, name: &str) -> Result<Option<String>> {
        Ok(self
            .read(name)?
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty()))
    }

    /// The secret in `name`, created as 32 random bytes in hex (0600) when missing, and kept
    /// from then on.
    fn random_secret(&self, name: &str) -> Result<String> {
        if let Some(secret) = self.read_secret(name)? {
            return Ok(secret);
        }
        let secret = hex::encode(rand::random::<[u8; 32]>());
        self.write_secret(name, &secret)?;
        Ok(secret)
    }

    /// The state directory's and its files' modes and owners (not recursing into archive/),
    /// each with what is wrong with it.
    pub fn permissions(&self) -> Result<Vec<Permission>> {
        let entry = |path: PathBuf, meta: &fs::Metadata, problem: Option<String>| Permission {
            mode: format!("{:04o}", meta.permissions().mode() & 0o7777),
            uid: meta.uid(),
            path,
            problem,
        };
        let meta = fs::metadata(&self.root)
            .with_context(|| format!("cannot stat {}", self.root.display()))?;
        let mode = meta.permissions().mode() & 0o777;
        let dir_problem = (mode & 0o077 != 0).then(|| {
            format!(
                "group or others may enter it; any regboot run that writes it sets 0700 (or `chmod 700 {}`)",
                self.root.display()
            )
        });
        let mut out = vec![entry(self.root.clone(), &meta, dir_problem)];
        let mut names: Vec<_> = fs::read_dir(&self.root)
            .with_context(|| format!("cannot list {}", self.root.display()))?
            .filter_map(|e| e.ok().map(|e| e.file_name()))
            .collect();
        names.sort();
        for name in names {
            let path = self.root.join(&name);
            let Ok(meta) = fs::symlink_metadata(&path) else {
                continue;
            };
            let mode = meta.permissions().mode() & 0o777;
            let secret = name.to_str().is_some_and(|n| SECRETS.contains(&n));
            let problem = (secret && mode & 0o077 != 0).then(|| {
                format!(
                    "a secret open to group or others: `chmod 600 {}`",
                    path.display()
                )
            });
            out.push(entry(path, &meta, problem));
        }
        Ok(out)
    }

    #[cfg(test)]
    pub(crate) fn mode_of(&self, name: &str) -> Result<u32> {
        let path = self.path(name);
        let meta =
            fs::metadata(&path).with_context(|| format!("cannot stat {}", path.display()))?;
        Ok(meta.permissions().mode() & 0o777)
    }
}

/// The run lock; released on drop.
#[derive(Debug)]
pub struct RunLock {
    _file: File,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archive_keeps_every_version_with_its_mode() {
        let tmp = tempfile::tempdir().unwrap();
        let state = StateDir::open(tmp.path()).unwrap();
        assert_eq!(state.archive(CA_KEY).unwrap(), None);
        state.write_secret(CA_KEY, "one").unwrap();
        let first = state.archive(CA_KEY).unwrap().unwrap();
        state.write_secret(CA_KEY, "two").unwrap();
        let second = state.archive(CA_KEY).unwrap().unwrap();
        assert_ne!(first, second);
        assert_eq!(fs::read_to_string(&first).unwrap(), "one");
        assert_eq!(fs::read_to_string(&second).unwrap(), "two");
        let mode = fs::metadata(&second).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(
            first
                .file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .ends_with("Z-ca.key")
        );
    }

    #[test]
    fn created_with_0700_and_tightened_when_wider() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("a/b/.regboot");
        StateDir::open(&root).unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&root), 0o700);
        fs::set_permissions(&root, fs::Permissions::from_mode(0o755)).unwrap();
        StateDir::open(&root).unwrap();
        assert_eq!(mode(&root), 0o700);
    }

    #[test]
    fn a_key_open_to_group_or_others_is_refused_with_the_fix() {
        let tmp = tempfile::tempdir().unwrap();
        let state = StateDir::open(tmp.path()).unwrap();
        for name in [CA_KEY, CA_NEXT_KEY, REGISTRY_KEY] {
            state.write_secret(name, "key").unwrap();
            assert_eq!(state.read(name).unwrap().as_deref(), Some("key"));
            for mode in [0o644, 0o640, 0o604, 0o660] {
                fs::set_permissions(state.path(name), fs::Permissions::from_mode(mode)).unwrap();
                let err = state.read(name).unwrap_err().to_string();
                assert!(err.contains(&format!("mode {mode:04o}")), "{err}");
                assert!(
                    err.contains(&format!("chmod 600 {}", state.path(name).display())),
                    "{err}"
                );
            }
            fs::set_permissions(state.path(name), fs::Permissions::from_mode(0o400)).unwrap();
            assert!(state.read(name).is_ok());
        }
        // Certificates are public.
        state.write_public(CA_CERT, "cert").unwrap();
        assert!(state.read(CA_CERT).is_ok());
        let perms = state.permissions().unwrap();
        assert_eq!(perms[0].mode, "0700");
        assert!(perms.iter().all(|p| p.problem.is_none()), "{perms:?}");
        fs::set_permissions(state.path(CA_KEY), fs::Permissions::from_mode(0o644)).unwrap();
        let perms = state.permissions().unwrap();
        let ca_key = perms.iter().find(|p| p.path.ends_with(CA_KEY)).unwrap();
        assert_eq!(ca_key.mode, "0644");
        assert!(ca_key.problem.as_ref().unwrap().contains("chmod 600"));
    }

    /// Issue 26 item 15: the http secret and the smoke password are refused like keys, not
    /// only reported by `certs show`.
    #[test]
    fn an_open_http_secret_or_smoke_password_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let state = StateDir::open(tmp.path()).unwrap();
        for name in [HTTP_SECRET, SMOKE_PASSWORD] {
            state.write_secret(name, "s3cret").unwrap();
            fs::set_permissions(state.path(name), fs::Permissions::from_mode(0o644)).unwrap();
            let err = state.read_secret(name).unwrap_err().to_string();
            assert!(
                err.contains("mode 0644") && err.contains("chmod 600"),
                "{err}"
            );
            assert!(err.contains("remove it and run `regboot apply`"), "{err}");
            fs::set_permissions(state.path(name), fs::Permissions::from_mode(0o600)).unwrap();
            assert_eq!(state.read_secret(name).unwrap().as_deref(), Some("s3cret"));
        }
    }

    #[test]
    fn second_lock_fails_until_first_is_dropped() {
        let tmp = tempfile::tempdir().unwrap();
        let state = StateDir::open(tmp.path()).unwrap();
        let first = state.lock().unwrap();
        let err = state.lock().unwrap_err();
        assert!(err.to_string().contains("another regboot run"), "{err}");
        drop(first);
        state.lock().unwrap();
    }

    #[test]
    fn secrets_are_created_once_with_0600() {
        let tmp = tempfile::tempdir().unwrap();
        let state = StateDir::open(tmp.path()).unwrap();
        let secret = state.http_secret().unwrap();
        assert_eq!(secret.len(), 64);
        assert!(secret.chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(state.http_secret().unwrap(), secret);
        assert_eq!(state.mode_of(HTTP_SECRET).unwrap(), 0o600);
        let password = state.smoke_password().unwrap();
        assert_ne!(password, secret);
        assert_eq!(state.smoke_password().unwrap(), password);
        assert_eq!(state.mode_of(SMOKE_PASSWORD).unwrap(), 0o600);
        let other_tmp = tempfile::tempdir().unwrap();
        let other = StateDir::open(other_tmp.path()).unwrap();
        assert_ne!(other.http_secret().unwrap(), secret);
    }

    #[test]
    fn an_existing_state_dir_is_never_written() {
        let tmp = tempfile::tempdir().unwrap();
        let missing = tmp.path().join("none");
        let err = StateDir::existing(&missing).unwrap_err().to_string();
        assert!(err.contains("run `regboot apply` first"), "{err}");
        assert!(!missing.exists());

        let state = StateDir::existing(tmp.path()).unwrap();
        let err = state.lock().unwrap_err().to_string();
        assert!(err.contains("run `regboot apply` first"), "{err}");
        assert!(state.smoke_password().is_err());
        assert!(state.write_public(CA_CERT, "x").is_err());
        assert!(state.remove(CA_CERT).is_err());
        assert_eq!(
            fs::read_dir(tmp.path()).unwrap().count(),
            0,
            "nothing written"
        );

        // After an apply: read and locked (against apply) as it is.
        let applied = StateDir::open(tmp.path()).unwrap();
        let password = applied.smoke_password().unwrap();
        drop(applied.lock().unwrap());
        let _lock = state.lock().unwrap();
        assert!(applied.lock().is_err(), "verify holds the run lock");
        assert_eq!(state.read_secret(SMOKE_PASSWORD).unwrap(), Some(password));
    }
}
