//! What `plan` and `apply` show for a file change: a unified diff, or for secret files only a
//! fingerprint.

use sha2::{Digest, Sha256};
use similar::TextDiff;

/// A unified diff (3 lines of context) from `old` to `new`, headed `--- path` / `+++ path`;
/// empty when they are equal. A missing final newline is marked as `diff -u` does.
pub fn unified(path: &str, old: &str, new: &str) -> String {
    if old == new {
        return String::new();
    }
    TextDiff::from_lines(old, new)
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

#[cfg(test)]
mod tests {
    use super::*;

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
