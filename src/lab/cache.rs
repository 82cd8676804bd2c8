//! The lab's cache directory (built image tarballs, build scratch space, build logs) and the
//! lock that keeps two concurrent `lab up` runs from building the same image twice.

use std::fs::{File, OpenOptions};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};

/// `$REGBOOT_LAB_CACHE`, else `$XDG_CACHE_HOME/regboot/lab`, else `~/.cache/regboot/lab`.
pub fn dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("REGBOOT_LAB_CACHE") {
        return dir.into();
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::fsutil::expand_tilde("~/.cache"));
    base.join("regboot").join("lab")
}

/// Run `make` unless `done()`. Concurrent `lab up` runs make it once: under the lock
/// `cache/NAME.lock`, `done` is asked again, since another run may have made it meanwhile.
pub fn once(
    cache: &Path,
    name: &str,
    done: impl Fn() -> bool,
    make: impl FnOnce() -> Result<()>,
) -> Result<()> {
    if done() {
        return Ok(());
    }
    let _lock = lock(cache, name)?;
    if done() {
        return Ok(());
    }
    make()
}

/// An exclusive lock on `cache/NAME.lock`, held until the returned file is dropped.
pub fn lock(cache: &Path, name: &str) -> Result<File> {
    std::fs::create_dir_all(cache)
        .with_context(|| format!("cannot create the lab cache {}", cache.display()))?;
    let path = cache.join(format!("{name}.lock"));
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    // SAFETY: flock on a descriptor we own; blocking until the other build finishes is the point.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } != 0 {
        return Err(std::io::Error::last_os_error())
            .with_context(|| format!("cannot lock {}", path.display()));
    }
    Ok(file)
}

/// The first 12 hex digits of the sha256 of `parts`: image tags that change with their recipe.
pub fn content_id(parts: &[&[u8]]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p);
    }
    hex::encode(h.finalize())[..12].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn once_makes_only_what_is_missing() {
        let cache = tempfile::tempdir().unwrap();
        let file = cache.path().join("made");
        for _ in 0..2 {
            once(
                cache.path(),
                "t",
                || file.exists(),
                || {
                    assert!(!file.exists(), "made twice");
                    Ok(std::fs::write(&file, "x")?)
                },
            )
            .unwrap();
        }
        assert!(file.exists() && cache.path().join("t.lock").exists());
    }
}
