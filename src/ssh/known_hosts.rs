//! OpenSSH's known_hosts file: look up the keys recorded for a host, append a new one in
//! OpenSSH's own format, and forget a host. Hashed names (`|1|salt|hash`), comma lists,
//! `*`/`?` wildcards, negation and the `@revoked` marker are understood, so the file regboot
//! writes and the one `ssh` writes are the same file.

use std::fs::{self, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use data_encoding::BASE64;
use hmac::{Hmac, KeyInit, Mac};
use russh::keys::{Algorithm, HashAlg, PublicKey};
use sha1::Sha1;

/// How OpenSSH names a host in known_hosts: `host` on port 22, `[host]:port` otherwise.
pub fn host_pattern(address: &str, port: u16) -> String {
    if port == 22 {
        address.to_string()
    } else {
        format!("[{address}]:{port}")
    }
}

/// One key line that names the host.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The file it is in (the user's known_hosts or a global one).
    pub file: PathBuf,
    /// 1-based line number, as editors and `ssh` print it.
    pub line: usize,
    pub revoked: bool,
    pub key: PublicKey,
}

/// What the recorded entries say about the key a server presented.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Known,
    Unknown,
    /// A key of the same type is recorded for this host and differs.
    Changed {
        file: PathBuf,
        line: usize,
    },
    Revoked {
        file: PathBuf,
        line: usize,
    },
}

/// A known_hosts file larger than this is refused (OpenSSH's own files hold a few kB per
/// hundred hosts): reading it must stay bounded.
const MAX_FILE: u64 = 64 << 20;

/// Files whose text is kept: the user's known_hosts and the global ones.
const CACHED_FILES: usize = 4;

/// The text of `path`, read once per version of the file (size and modification time) and
/// shared: a run that connects to 500 hosts at once reads and holds it once, not 500 times.
fn text_of(path: &Path) -> io::Result<Option<Arc<str>>> {
    type Cached = (PathBuf, u64, Option<SystemTime>, Arc<str>);
    static CACHE: Mutex<Vec<Cached>> = Mutex::new(Vec::new());
    let meta = match fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    if meta.len() > MAX_FILE {
        return Err(io::Error::other(format!(
            "{} bytes: larger than the {} MiB regboot reads",
            meta.len(),
            MAX_FILE >> 20
        )));
    }
    let version = (meta.len(), meta.modified().ok());
    let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, _, _, text)) = cache
        .iter()
        .find(|(p, len, mtime, _)| p == path && (*len, *mtime) == version)
    {
        return Ok(Some(text.clone()));
    }
    let mut text = String::new();
    fs::File::open(path)?
        .take(MAX_FILE)
        .read_to_string(&mut text)?;
    let text: Arc<str> = text.into();
    cache.retain(|(p, _, _, _)| p != path);
    if cache.len() >= CACHED_FILES {
        cache.remove(0);
    }
    cache.push((path.to_path_buf(), version.0, version.1, text.clone()));
    Ok(Some(text))
}

/// The entries recorded for `address:port` in `path`; a missing file has none.
pub fn lookup(path: &Path, address: &str, port: u16) -> io::Result<Vec<Entry>> {
    let Some(text) = text_of(path)? else {
        return Ok(Vec::new());
    };
    let name = host_pattern(address, port);
    Ok(text
        .lines()
        .enumerate()
        .filter_map(|(i, line)| parse_line(line).map(|l| (i + 1, l)))
        .filter(|(_, l)| l.marker != Some("@cert-authority") && hosts_match(l.hosts, &name))
        .filter_map(|(line, l)| {
            // A key this build cannot parse (a newer type) cannot match what we received.
            let key = PublicKey::from_openssh(&format!("{} {}", l.key_type, l.key_data)).ok()?;
            Some(Entry {
                file: path.to_path_buf(),
                line,
                revoked: l.marker == Some("@revoked"),
                key,
            })
        })
        .collect())
}

/// Compare a presented key with the entries, as OpenSSH does: a revoked key refuses, an equal
/// key passes, a different key of the same type is a change, other types do not count.
pub fn verdict(entries: &[Entry], key: &PublicKey) -> Verdict {
    if let Some(e) = entries
        .iter()
        .find(|e| e.revoked && e.key.key_data() == key.key_data())
    {
        return Verdict::Revoked {
            file: e.file.clone(),
            line: e.line,
        };
    }
    let live = entries.iter().filter(|e| !e.revoked);
    if live.clone().any(|e| e.key.key_data() == key.key_data()) {
        return Verdict::Known;
    }
    match live
        .into_iter()
        .find(|e| same_family(&e.key.algorithm(), &key.algorithm()))
    {
        Some(e) => Verdict::Changed {
            file: e.file.clone(),
            line: e.line,
        },
        None => Verdict::Unknown,
    }
}

/// Host key algorithms to offer, most wanted first: the types already recorded for this host
/// (so the server shows the key we can check, as OpenSSH does), then russh's default order,
/// which puts ed25519 first like OpenSSH's.
pub fn preferred_algorithms(entries: &[Entry], defaults: &[Algorithm]) -> Vec<Algorithm> {
    let recorded = |a: &Algorithm| {
        entries
            .iter()
            .any(|e| !e.revoked && same_family(&e.key.algorithm(), a))
    };
    let (mut first, rest): (Vec<_>, Vec<_>) = defaults.iter().cloned().partition(recorded);
    first.extend(rest);
    first
}

fn same_family(a: &Algorithm, b: &Algorithm) -> bool {
    match (a, b) {
        (Algorithm::Rsa { .. }, Algorithm::Rsa { .. }) => true,
        _ => a == b,
    }
}

/// The `SHA256:...` fingerprint that `ssh` and `ssh-keygen -l` print.
pub fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

// Parallel connections may learn keys at the same moment; appends are serialized here.
static APPEND_LOCK: Mutex<()> = Mutex::new(());

/// Append `key` for `address:port` as a plain OpenSSH line, creating the file (0600, and its
/// directory 0700) if needed. A key already there (learned by a parallel connection to the
/// same server) is not added twice.
pub fn append(path: &Path, address: &str, port: u16, key: &PublicKey) -> io::Result<()> {
    let mut key = key.clone();
    key.set_comment("");
    let encoded = key.to_openssh().map_err(io::Error::other)?;
    let line = format!("{} {}\n", host_pattern(address, port), encoded.trim());

    let _guard = APPEND_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    if verdict(&lookup(path, address, port)?, &key) == Verdict::Known {
        return Ok(());
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
    }
    let mut file = OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .mode(0o600)
        .open(path)?;
    let len = file.metadata()?.len();
    let mut out = String::new();
    if len > 0 {
        let mut last = [0u8; 1];
        file.seek(SeekFrom::Start(len - 1))?;
        file.read_exact(&mut last)?;
        if last[0] != b'\n' {
            out.push('\n');
        }
    }
    out.push_str(&line);
    file.write_all(out.as_bytes())?;
    file.sync_all()
}

/// Remove every line naming `address:port` (plain or hashed), keeping comments and all other
/// lines byte for byte, like `ssh-keygen -R`. Returns how many lines were removed.
pub fn forget(path: &Path, address: &str, port: u16) -> anyhow::Result<usize> {
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e.into()),
    };
    let name = host_pattern(address, port);
    let mut removed = 0;
    let mut kept = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let hit = parse_line(line).is_some_and(|l| hosts_match(l.hosts, &name));
        if hit {
            removed += 1;
        } else {
            kept.push_str(line);
        }
    }
    if removed > 0 {
        crate::fsutil::write_atomic(path, kept.as_bytes(), 0o600)?;
    }
    Ok(removed)
}

struct Line<'a> {
    marker: Option<&'a str>,
    hosts: &'a str,
    key_type: &'a str,
    key_data: &'a str,
}

fn parse_line(line: &str) -> Option<Line<'_>> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let mut fields = line.split_whitespace();
    let mut first = fields.next()?;
    let marker = if first.starts_with('@') {
        let m = first;
        first = fields.next()?;
        Some(m)
    } else {
        None
    };
    Some(Line {
        marker,
        hosts: first,
        key_type: fields.next()?,
        key_data: fields.next()?,
    })
}

/// OpenSSH's host list semantics: any positive pattern matches and no negated one does.
fn hosts_match(patterns: &str, name: &str) -> bool {
    let mut matched = false;
    for pattern in patterns.split(',') {
        if let Some(hashed) = pattern.strip_prefix("|1|") {
            matched |= hashed_match(hashed, name);
        } else if let Some(negated) = pattern.strip_prefix('!') {
            if glob(negated, name) {
                return false;
            }
        } else {
            matched |= glob(pattern, name);
        }
    }
    matched
}

fn hashed_match(salt_and_hash: &str, name: &str) -> bool {
    let Some((salt, hash)) = salt_and_hash.split_once('|') else {
        return false;
    };
    let (Ok(salt), Ok(hash)) = (
        BASE64.decode(salt.as_bytes()),
        BASE64.decode(hash.as_bytes()),
    ) else {
        return false;
    };
    let Ok(mac) = <Hmac<Sha1> as KeyInit>::new_from_slice(&salt) else {
        return false;
    };
    mac.chain_update(name.as_bytes())
        .verify_slice(&hash)
        .is_ok()
}

/// `*` and `?` wildcards, case-insensitive like OpenSSH's host matching.
fn glob(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.to_ascii_lowercase().chars().collect();
    let n: Vec<char> = name.to_ascii_lowercase().chars().collect();
    let (mut pi, mut ni, mut star, mut mark) = (0, 0, None, 0);
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ni;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ni = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    #[test]
    fn a_file_is_read_once_per_version_and_a_huge_one_refused() {
        let dir = tempfile::tempdir().unwrap();
        let kh = dir.path().join("known_hosts");
        fs::write(&kh, format!("10.0.0.1 {ED1}\n")).unwrap();
        assert_eq!(lookup(&kh, "10.0.0.1", 22).unwrap().len(), 1);
        // Appended (a new version): the new line is seen.
        let mut f = OpenOptions::new().append(true).open(&kh).unwrap();
        writeln!(f, "10.0.0.2 {ED1}").unwrap();
        assert_eq!(lookup(&kh, "10.0.0.2", 22).unwrap().len(), 1);
        assert_eq!(lookup(&kh, "10.0.0.1", 22).unwrap().len(), 1);
        f.set_len(MAX_FILE + 1).unwrap();
        let err = lookup(&kh, "10.0.0.1", 22).unwrap_err();
        assert!(err.to_string().contains("larger than the 64 MiB"), "{err}");
    }

    const ED1: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOXQ80vDQvUU9WEsE0KRMq+2J6BdYccJgDMRNe7vFwz6";
    const ED2: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKC8trI7IMS7c3moipliehd9qKvMgR4fEPF2OHTcZpU1";

    fn key(s: &str) -> PublicKey {
        PublicKey::from_openssh(s).unwrap()
    }

    #[test]
    fn patterns_follow_openssh() {
        assert_eq!(host_pattern("h", 22), "h");
        assert_eq!(host_pattern("10.0.0.1", 2222), "[10.0.0.1]:2222");
        assert!(hosts_match("a,b,[c]:2222", "[c]:2222"));
        assert!(!hosts_match("a,b,c", "[c]:2222"));
        assert!(hosts_match("*.example.com", "node1.EXAMPLE.com"));
        assert!(!hosts_match(
            "*.example.com,!bad.example.com",
            "bad.example.com"
        ));
        assert!(hosts_match("node?", "node7"));
    }

    #[test]
    fn hashed_names_written_by_ssh_keygen_match() {
        let dir = tempfile::tempdir().unwrap();
        let kh = dir.path().join("known_hosts");
        fs::write(&kh, format!("[127.0.0.1]:2200 {ED1}\nother {ED2}\n")).unwrap();
        let ok = Command::new("ssh-keygen")
            .arg("-H")
            .arg("-f")
            .arg(&kh)
            .output()
            .unwrap();
        assert!(ok.status.success());
        assert!(fs::read_to_string(&kh).unwrap().starts_with("|1|"));
        let found = lookup(&kh, "127.0.0.1", 2200).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(verdict(&found, &key(ED1)), Verdict::Known);
        assert_eq!(
            verdict(&found, &key(ED2)),
            Verdict::Changed {
                file: kh.clone(),
                line: 1
            }
        );
        assert_eq!(forget(&kh, "127.0.0.1", 2200).unwrap(), 1);
        assert!(lookup(&kh, "127.0.0.1", 2200).unwrap().is_empty());
        assert_eq!(lookup(&kh, "other", 22).unwrap().len(), 1);
    }

    #[test]
    fn append_then_lookup_and_revoked() {
        let dir = tempfile::tempdir().unwrap();
        let kh = dir.path().join("sub/known_hosts");
        append(&kh, "10.1.1.1", 2222, &key(ED1)).unwrap();
        let text = fs::read_to_string(&kh).unwrap();
        assert_eq!(text, format!("[10.1.1.1]:2222 {ED1}\n"));
        fs::write(&kh, format!("{text}@revoked * {ED2}")).unwrap();
        append(&kh, "h", 22, &key(ED1)).unwrap();
        append(&kh, "h", 22, &key(ED1)).unwrap();
        assert!(
            fs::read_to_string(&kh)
                .unwrap()
                .ends_with(&format!("{ED2}\nh {ED1}\n"))
        );
        let found = lookup(&kh, "10.1.1.1", 2222).unwrap();
        assert_eq!(
            verdict(&found, &key(ED2)),
            Verdict::Revoked {
                file: kh.clone(),
                line: 2
            }
        );
        assert_eq!(verdict(&found, &key(ED1)), Verdict::Known);
        let prefs =
            preferred_algorithms(&found, &[Algorithm::Rsa { hash: None }, Algorithm::Ed25519]);
        assert_eq!(prefs[0], Algorithm::Ed25519);
    }
}
