//! What `plan` and `apply` show for a file change: a unified diff, or for secret files only a
//! fingerprint.

use sha2::{Digest, Sha256};
use similar::TextDiff;

/// A unified diff (3 lines of context) from `old` to `new`, headed `--- path` / `+++ path`;
/// empty when they are equal. A missing final newline is marked as `diff -u` does. Passwords
/// in URLs (daemon.json's `http-proxy`, say) show as fingerprints (`redact_userinfo`).
pub fn unified(path: &str, old: &str, new: &str) -> String {
    if old == new {
        return String::new();
    }
    let (old, new) = (redact_userinfo(old), redact_userinfo(new));
    TextDiff::from_lines(&old, &new)
        .unified_diff()
        .context_radius(3)
        .missing_newline_hint(true)
        .header(path, path)
        .to_string()
}

/// The stand-in for a secret file's content: which version it is, never what it holds.
pub fn redacted(bytes: &[u8]) -> String {
    let digest = hex::encode(Sha256::digest(bytes));
    format!("(redacted, sha256 {}…)", &digest[..8])
}

/// `text` with the password of every `scheme://user:password@host` replaced by its
/// fingerprint (the user stays: it says which account); a userinfo without `:` (a token) is
/// replaced whole. A changed password still shows as a changed line.
pub fn redact_userinfo(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        let end = tail
            .find(|c: char| matches!(c, '/' | '?' | '#' | '"' | '\'' | '\\') || c.is_whitespace())
            .unwrap_or(tail.len());
        match tail[..end].rfind('@') {
            Some(at) => {
                let userinfo = &tail[..at];
                match userinfo.split_once(':') {
                    Some((user, pw)) => {
                        out.push_str(user);
                        out.push(':');
                        out.push_str(&redacted(pw.as_bytes()));
                    }
                    None => out.push_str(&redacted(userinfo.as_bytes())),
                }
                rest = &tail[at..];
            }
            None => rest = tail,
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 26 item 15: plan's daemon.json diff showed the proxy's password.
    #[test]
    fn proxy_passwords_in_a_daemon_json_diff_are_fingerprints() {
        let wanted = |pw: &str| {
            let mut keys = serde_json::Map::new();
            let proxy = format!("http://bob:{pw}@proxy.corp:3128");
            keys.insert("http-proxy".into(), proxy.clone().into());
            keys.insert("https-proxy".into(), proxy.into());
            crate::merge::daemon_json::merge(None, &keys).unwrap().text
        };
        let (first, second) = (wanted("hunter2"), wanted("hunter3"));
        let diff = unified("/etc/docker/daemon.json", &first, &second);
        assert!(!diff.contains("hunter"), "{diff}");
        assert!(diff.contains("\"http://bob:(redacted, sha256 "), "{diff}");
        assert!(diff.contains("@proxy.corp:3128\""), "{diff}");
        // The changed password is still a changed line.
        let changed = |sign: &str| diff.lines().filter(|l| l.starts_with(sign)).count();
        assert_eq!((changed("-  "), changed("+  ")), (2, 2), "{diff}");
        let token = redact_userinfo("see https://ghp_token@example.com/x and ftp://host/a@b");
        assert!(
            token.starts_with("see https://(redacted, sha256 "),
            "{token}"
        );
        assert!(
            token.ends_with("@example.com/x and ftp://host/a@b"),
            "{token}"
        );
    }

    #[test]
    fn unified_diff_has_headers_hunks_and_context() {
        let old = "a\nb\nc\nd\ne\nf\ng\nh\n";
        let new = "a\nb\nc\nd\nE\nf\ng\nh\n";
        let diff = unified("/etc/hosts", old, new);
        assert_eq!(
            diff,
            "--- /etc/hosts\n+++ /etc/hosts\n@@ -2,7 +2,7 @@\n b\n c\n d\n-e\n+E\n f\n g\n h\n"
        );
    }

    #[test]
    fn equal_texts_have_no_diff() {
        assert_eq!(unified("/x", "same\n", "same\n"), "");
    }

    #[test]
    fn new_file_and_missing_newline() {
        let diff = unified("/etc/docker/daemon.json", "", "{}\n");
        assert!(diff.contains("@@ -0,0 +1 @@\n+{}\n"), "{diff}");
        let diff = unified("/f", "x", "x\n");
        assert!(diff.contains("\\ No newline at end of file"), "{diff}");
    }

    #[test]
    fn redaction_shows_a_stable_fingerprint_only() {
        let secret = b"http_secret: hunter2";
        let shown = redacted(secret);
        assert!(!shown.contains("hunter2"));
        assert_eq!(shown, redacted(secret));
        assert_ne!(shown, redacted(b"other"));
        // sha256("") = e3b0c442...
        assert_eq!(redacted(b""), "(redacted, sha256 e3b0c442…)");
    }
}
