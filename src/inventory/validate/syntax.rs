//! Pure predicates on strings: host names, image references, hashes, near-miss names.

/// A valid DNS host name (RFC 1123 labels).
pub fn is_hostname(s: &str) -> bool {
    let s = s.strip_suffix('.').unwrap_or(s);
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
        && !s
            .rsplit('.')
            .next()
            .unwrap_or("")
            .chars()
            .all(|c| c.is_ascii_digit())
}

/// The valid name nearest to `bad`, if it is close enough to be a likely typo.
pub(in crate::inventory) fn nearest<'v>(
    bad: &str,
    valid: impl IntoIterator<Item = &'v str>,
) -> Option<&'v str> {
    valid
        .into_iter()
        .map(|v| (strsim::levenshtein(bad, v), v))
        .filter(|(d, v)| *d <= 2.max(v.len() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, v)| v)
}

/// An image reference in distribution's grammar (github.com/distribution/reference):
/// `[host[:port]/]path[:tag][@digest]`, path components lowercase. Rules out values the
/// docker CLI would take as an option, like `--help`.
pub(super) fn is_image_reference(s: &str) -> bool {
    let (rest, digest) = match s.split_once('@') {
        Some((r, d)) => (r, Some(d)),
        None => (s, None),
    };
    // The last ':' starts a tag unless a '/' follows it (then it was a registry's port).
    let (name, tag) = match rest.rsplit_once(':') {
        Some((n, t)) if !t.contains('/') => (n, Some(t)),
        _ => (rest, None),
    };
    // A first component that reads as a registry host is one.
    let path = match name.split_once('/') {
        Some((host, path)) if is_registry_host(host) => path,
        _ => name,
    };
    name.len() <= 255
        && path.split('/').all(is_path_component)
        && tag.is_none_or(is_tag)
        && digest.is_none_or(is_digest)
}

/// `[a-z0-9]+` runs joined by one of `.`, `_`, `__` or any number of `-`.
pub(super) fn is_path_component(s: &str) -> bool {
    let alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    s.starts_with(alnum)
        && s.ends_with(alnum)
        && s.split(alnum)
            .filter(|sep| !sep.is_empty())
            .all(|sep| matches!(sep, "." | "_" | "__") || sep.bytes().all(|b| b == b'-'))
}

/// `host[:port]`: DNS labels (any case), an IPv4 address or `[IPv6]`.
pub(super) fn is_registry_host(s: &str) -> bool {
    let label = |l: &str| {
        !l.is_empty()
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    };
    let (host_ok, port) = match s.strip_prefix('[') {
        Some(v6) => match v6.split_once(']') {
            Some((ip, port)) => (ip.parse::<std::net::Ipv6Addr>().is_ok(), port),
            None => return false,
        },
        None => {
            let (host, port) = s.find(':').map_or((s, ""), |i| s.split_at(i));
            (host.split('.').all(label), port)
        }
    };
    host_ok
        && (port.is_empty()
            || port
                .strip_prefix(':')
                .is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())))
}

/// `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`
pub(super) fn is_tag(t: &str) -> bool {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    t.len() <= 128 && t.starts_with(word) && t.chars().all(|c| word(c) || c == '.' || c == '-')
}

/// `algorithm:hex`, the algorithm's parts `[A-Za-z][A-Za-z0-9]*` joined by `+._-`, at least
/// 32 hex digits.
pub(super) fn is_digest(d: &str) -> bool {
    let Some((alg, hex)) = d.split_once(':') else {
        return false;
    };
    alg.split(['+', '.', '_', '-']).all(|part| {
        part.starts_with(|c: char| c.is_ascii_alphabetic())
            && part.chars().all(|c| c.is_ascii_alphanumeric())
    }) && hex.len() >= 32
        && hex.chars().all(|c| c.is_ascii_hexdigit())
}

pub(super) fn is_bcrypt_hash(h: &str) -> bool {
    h.len() == 60 && ["$2a$", "$2b$", "$2y$"].iter().any(|p| h.starts_with(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostnames() {
        assert!(is_hostname("registry01.dev.com"));
        assert!(is_hostname("reg-1"));
        assert!(!is_hostname("-bad.com"));
        assert!(!is_hostname("under_score.com"));
        assert!(!is_hostname("300.1.1.1"));
        assert!(!is_hostname(""));
    }

    #[test]
    fn image_references() {
        let digest = format!("sha256:{}", "ab".repeat(32));
        for good in [
            "registry:2",
            "registry",
            "library/registry:2.8.3",
            "docker.io/library/registry:2",
            "Mirror.Example.com:5000/team/registry_x__y.z-w:v1_2-3",
            "localhost:5000/registry",
            "[::1]:5000/registry:2",
            &format!("registry@{digest}"),
            &format!("10.0.0.1:5000/registry:2@{digest}"),
        ] {
            assert!(is_image_reference(good), "{good}");
        }
        for bad in [
            "--help",
            "-registry",
            "",
            "Registry:2",
            "registry:",
            "registry:-x",
            "a//b",
            "a/b/",
            "a/.b",
            "a___b",
            "registry@sha256:abc",
            "registry@sha256",
            "host:port/x",
            "registry:2 --rm",
            &format!("registry:{}", "t".repeat(129)),
        ] {
            assert!(!is_image_reference(bad), "{bad}");
        }
    }
}
