//! Local file helpers shared by the state directory, the lab and the CLI.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// Most an inventory may weigh: real ones are a few KiB.
pub const INVENTORY_LIMIT: u64 = 1 << 20;
/// Most a key, password or passphrase file may weigh.
pub const SECRET_LIMIT: u64 = 64 << 10;
/// Most a certificate, key or PEM bundle may weigh (an OS trust bundle is about 200 KiB).
pub const PEM_LIMIT: u64 = 4 << 20;

/// Open `path` for reading if it is a regular file; `what` names it in errors (e.g.
/// "SSH key (`key:`)"). Non-blocking open: a FIFO with no writer would block `open` itself.
pub fn open_regular(path: &Path, what: &str) -> Result<(File, u64)> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .with_context(|| format!("{what} {} cannot be read", path.display()))?;
    let meta = file.metadata()?;
    let kind = meta.file_type();
    let other = if kind.is_dir() {
        "a directory"
    } else if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_char_device() || kind.is_block_device() {
        "a device"
    } else if kind.is_socket() {
        "a socket"
    } else {
        return Ok((file, meta.len()));
    };
    bail!(
        "{what} {} is {other}, not a regular file: give the path of a file",
        path.display()
    )
}

/// The text of the regular file at `path`, refused when over `limit` bytes; reads at most
/// `limit + 1` bytes, whatever the file claims or grows to.
pub fn read_text_limited(path: &Path, what: &str, limit: u64) -> Result<String> {
    let data = read_limited(path, what, limit)?;
    String::from_utf8(data).with_context(|| format!("{what} {} is not UTF-8 text", path.display()))
}

/// Like `read_text_limited`, `None` when there is no file at `path`.
pub fn read_text_if_any(path: &Path, what: &str, limit: u64) -> Result<Option<String>> {
    match read_text_limited(path, what, limit) {
        Err(e) if not_found(&e) => Ok(None),
        other => other.map(Some),
    }
}

fn not_found(e: &anyhow::Error) -> bool {
    e.root_cause()
        .downcast_ref::<std::io::Error>()
        .is_some_and(|e| e.kind() == std::io::ErrorKind::NotFound)
}

/// The bytes of the regular file at `path`: the one bounded reader every local file regboot
/// is handed goes through (inventory, keys, secrets, certificates, ssh_config, backups).
pub fn read_limited(path: &Path, what: &str, limit: u64) -> Result<Vec<u8>> {
    let (file, len) = open_regular(path, what)?;
    let too_big = || {
        anyhow::anyhow!(
            "{what} {} is larger than {limit} bytes: is it the right file?",
            path.display()
        )
    };
    if len > limit {
        return Err(too_big());
    }
    let mut data = Vec::with_capacity(len as usize);
    bounded(file, limit, &mut data)
        .with_context(|| format!("{what} {} cannot be read", path.display()))?;
    if data.len() as u64 > limit {
        return Err(too_big());
    }
    Ok(data)
}

/// Read `file` to its end or to one byte past `limit`, whichever comes first: the size
/// checked before may have grown since.
fn bounded(file: File, limit: u64, data: &mut Vec<u8>) -> std::io::Result<usize> {
    file.take(limit + 1).read_to_end(data)
}

/// Write `data` to `path` atomically: a temp file in the same directory with `mode`, fsync,
/// rename over the target, fsync the directory. A crash leaves the old file or the new one,
/// never half of either.
pub fn write_atomic(path: &Path, data: &[u8], mode: u32) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .with_context(|| format!("{} is not a file path", path.display()))?;
    let tmp: PathBuf = dir.join(format!(
        ".{}.tmp-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| -> Result<()> {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&tmp)
            .with_context(|| format!("cannot create {}", tmp.display()))?;
        // The umask may have narrowed the mode at creation; set it exactly.
        f.set_permissions(fs::Permissions::from_mode(mode))?;
        f.write_all(data)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
            .with_context(|| format!("cannot rename {} to {}", tmp.display(), path.display()))?;
        File::open(dir)?.sync_all()?;
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.with_context(|| format!("writing {}", path.display()))
}

/// Create `dir` (and parents) and set its mode exactly, e.g. 0700 for the state directory.
pub fn ensure_dir(dir: &Path, mode: u32) -> Result<()> {
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(mode))
        .with_context(|| format!("cannot set mode {mode:o} on {}", dir.display()))
}

/// Expand a leading `~` or `~/` to `$HOME`.
pub fn expand_tilde(path: &str) -> PathBuf {
    match (path.strip_prefix('~'), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) if rest.is_empty() || rest.starts_with('/') => {
            PathBuf::from(home).join(rest.trim_start_matches('/'))
        }
        _ => PathBuf::from(path),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_sets_mode_and_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("key.pem");
        write_atomic(&p, b"one", 0o600).unwrap();
        write_atomic(&p, b"two", 0o600).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temp file left"
        );
    }

    #[test]
    fn reads_only_small_regular_files() {
        let dir = tempfile::tempdir().unwrap();
        let ok = dir.path().join("ok");
        fs::write(&ok, "secret\n").unwrap();
        assert_eq!(
            read_text_limited(&ok, "password file", 64).unwrap(),
            "secret\n"
        );

        let err = |p: &Path| {
            read_text_limited(p, "password file (`password_file:`)", 64)
                .unwrap_err()
                .to_string()
        };
        let big = dir.path().join("big");
        fs::write(&big, vec![b'a'; 65]).unwrap();
        assert!(err(&big).contains("larger than 64 bytes"), "{}", err(&big));
        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: mkfifo reads a NUL-terminated path we own.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        // Returns at once: a FIFO without a writer must not block the open.
        assert!(err(&fifo).contains("is a FIFO, not a regular file"));
        assert!(err(Path::new("/dev/zero")).contains("/dev/zero is a device"));
        assert!(err(dir.path()).contains("is a directory"));
        assert!(err(&dir.path().join("none")).contains("(`password_file:`)"));
        assert_eq!(
            read_text_if_any(&dir.path().join("none"), "x", 64).unwrap(),
            None
        );
        assert!(read_text_if_any(&big, "x", 64).is_err());
    }

    /// A file that grows while it is read (its size was checked first) is still read only
    /// to one byte past the limit, then refused.
    #[test]
    fn a_file_growing_after_its_size_check_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("grows");
        fs::write(&path, b"small").unwrap();
        let (file, len) = open_regular(&path, "backup").unwrap();
        assert_eq!(len, 5);
        // The growth happens between the check (open_regular) and the read.
        fs::write(&path, vec![b'x'; 1 << 20]).unwrap();
        let mut data = Vec::new();
        bounded(file, 64, &mut data).unwrap();
        assert_eq!(data.len(), 65, "read one byte past the limit, no more");
    }

    #[test]
    fn tilde_expands_only_at_start() {
        let home = std::env::var("HOME").unwrap();
        assert_eq!(
            expand_tilde("~/.ssh/k"),
            PathBuf::from(&home).join(".ssh/k")
        );
        assert_eq!(expand_tilde("/a/~b"), PathBuf::from("/a/~b"));
    }
}
