//! OpenSSH's client configuration (`~/.ssh/config`, or `ssh_config: PATH`) as a source of
//! what an inventory host leaves out: HostName, User, Port, IdentityFile and ProxyJump, read
//! as ssh(1) reads them (the first value obtained wins, `Host` patterns with `*`, `?` and
//! `!` negation, `Include`). Parsing is the `ssh2-config` crate's; this module picks the
//! fields regboot uses and turns ProxyJump into the one bastion regboot supports. `Include`
//! is followed here, not by the crate: each file is opened once, through the bounded reader,
//! so a huge, special or endlessly nested one is refused by name, and what is parsed is what
//! was read.

use std::path::{Path, PathBuf};

use ssh2_config::{DefaultAlgorithms, Host, HostClause, HostParams, ParseRule, SshConfig};

use crate::fsutil::{INVENTORY_LIMIT, expand_tilde, read_limited};
use crate::ssh::HostKeyCheck;

/// How deep `Include`s may nest (OpenSSH's own limit), and how many files one configuration
/// may pull in: together they bound what is read.
const MAX_INCLUDE_DEPTH: usize = 16;
const MAX_INCLUDED_FILES: usize = 256;

/// What the configuration says about one host alias.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FromConfig {
    pub host_name: Option<String>,
    pub user: Option<String>,
    pub port: Option<u16>,
    /// The first IdentityFile that exists (ssh tries them in order; regboot uses one key).
    pub identity_file: Option<PathBuf>,
    /// `[user@]host[:port]`: the one jump host; `none` turns a broader match off.
    pub proxy_jump: Option<String>,
    /// The jump host's own IdentityFile and host key check, looked up like any host's.
    pub jump_identity_file: Option<PathBuf>,
    pub jump_check: KeyCheck,
    pub check: KeyCheck,
}

/// How the configuration says one host's key is checked.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct KeyCheck {
    /// StrictHostKeyChecking (`ask` is `yes`: regboot cannot ask).
    pub policy: Option<HostKeyCheck>,
    /// UserKnownHostsFile (its first file), where ssh checks this host's key.
    pub known_hosts: Option<String>,
    /// HostKeyAlias: the name its key is recorded under in known_hosts.
    pub host_key_alias: Option<String>,
    /// GlobalKnownHostsFile: the read-only files also checked (all of them, as ssh does).
    pub global_known_hosts: Option<Vec<String>>,
}

impl KeyCheck {
    fn of(p: &HostParams) -> Result<KeyCheck, String> {
        let first = |field: &str| p.unsupported_fields.get(field)?.first().cloned();
        let policy = match first("stricthostkeychecking") {
            None => None,
            Some(word) => Some(match word.to_ascii_lowercase().as_str() {
                "yes" | "true" | "ask" => HostKeyCheck::Strict,
                "accept-new" => HostKeyCheck::AcceptNew,
                "no" | "off" | "false" => HostKeyCheck::Off,
                _ => {
                    return Err(format!(
                        "StrictHostKeyChecking {word:?}: use yes, accept-new, no or ask"
                    ));
                }
            }),
        };
        Ok(KeyCheck {
            policy,
            known_hosts: first("userknownhostsfile"),
            host_key_alias: first("hostkeyalias"),
            global_known_hosts: p.unsupported_fields.get("globalknownhostsfile").cloned(),
        })
    }
}

/// One `Host` block (or the lines of a file before its first `Host`), and the `Host`
/// patterns of the blocks its file was included from: it applies where they all match.
struct Rule {
    host: Host,
    scope: Vec<Vec<HostClause>>,
}

/// The configuration as ordered rules, as ssh2-config keeps them; `Include`s are followed
/// here, so that each file is opened once, read through the bounded reader, and those very
/// bytes are parsed (the crate would open them again itself).
pub struct Config(Vec<Rule>);

impl Config {
    /// Parse `path`; options regboot does not use are allowed, as ssh allows them.
    pub fn load(path: &Path) -> Result<Config, String> {
        let text = read_limited(path, "the file", INVENTORY_LIMIT)
            .map_err(|e| format!("cannot read it: {}", e.root_cause()))?;
        let mut rules = Vec::new();
        parse(&text, &[], &mut 0, &mut rules)?;
        Ok(Config(rules))
    }

    /// All the rules matching `alias` say, the first value obtained winning.
    fn query(&self, alias: &str) -> HostParams {
        let mut params = HostParams::new(&DefaultAlgorithms::default());
        for rule in &self.0 {
            if rule.host.intersects(alias) && rule.scope.iter().all(|c| matches(c, alias)) {
                params.overwrite_if_none(&rule.host.params);
            }
        }
        params
    }

    /// `[user@]host[:port]` of a ProxyJump with `host` looked up in this file like any host,
    /// as ssh does: its HostName, and its User and Port unless the ProxyJump gives them; and
    /// all the file says about it.
    fn resolve_jump(&self, jump: &str) -> (String, HostParams) {
        let (user, rest) = match jump.split_once('@') {
            Some((u, r)) => (Some(u.to_string()), r),
            None => (None, jump),
        };
        let (alias, port) = match rest.rsplit_once(':') {
            Some((h, p)) if !h.contains(':') && p.parse::<u16>().is_ok() => {
                (h, Some(p.to_string()))
            }
            _ => (rest, None),
        };
        let found = self.query(alias);
        let user = user
            .or(found.user.clone())
            .map(|u| format!("{u}@"))
            .unwrap_or_default();
        let port = port.or(found.port.map(|p| p.to_string()));
        let host = found.host_name.clone().unwrap_or_else(|| alias.to_string());
        let jump = match port {
            Some(p) if host.contains(':') => format!("{user}[{host}]:{p}"),
            Some(p) => format!("{user}{host}:{p}"),
            None => format!("{user}{host}"),
        };
        (jump, found)
    }

    /// What applies to `alias` (the host's `address` in the inventory).
    pub fn lookup(&self, alias: &str) -> Result<FromConfig, String> {
        let p = self.query(alias);
        let (proxy_jump, jump_identity_file, jump_check) = match p.proxy_jump.as_deref() {
            None | Some([]) => (None, None, KeyCheck::default()),
            Some([one]) if one.eq_ignore_ascii_case("none") => (None, None, KeyCheck::default()),
            Some([one]) => {
                let (jump, found) = self.resolve_jump(one);
                let check = KeyCheck::of(&found).map_err(|e| format!("ProxyJump {one}: {e}"))?;
                (Some(jump), first_identity(found.identity_file), check)
            }
            Some(hops) => {
                return Err(format!(
                    "ProxyJump {} has {} hops; regboot goes through one bastion",
                    hops.join(","),
                    hops.len()
                ));
            }
        };
        Ok(FromConfig {
            check: KeyCheck::of(&p)?,
            host_name: p.host_name,
            user: p.user,
            port: p.port,
            identity_file: first_identity(p.identity_file),
            proxy_jump,
            jump_identity_file,
            jump_check,
        })
    }
}

/// `Host` clauses as ssh2-config matches them: one positive match and no negated one.
fn matches(clauses: &[HostClause], alias: &str) -> bool {
    clauses.iter().any(|c| !c.negated && c.intersects(alias))
        && !clauses.iter().any(|c| c.negated && c.intersects(alias))
}

/// Parse one file's `text` into `rules`, under the `scope` it was included in. The lines
/// between `Include`s are parsed by ssh2-config (which then never sees an `Include`); each
/// included file is read through the bounded reader and parsed under the current block's
/// patterns, and the lines after it continue that block, as ssh2-config does. `count` is
/// how many files were included so far.
fn parse(
    text: &[u8],
    scope: &[Vec<HostClause>],
    count: &mut usize,
    rules: &mut Vec<Rule>,
) -> Result<(), String> {
    let text = std::str::from_utf8(text).map_err(|e| format!("not UTF-8 text: {e}"))?;
    let mut block = vec![HostClause::new("*".into(), false)];
    let mut lines = String::new();
    for line in text.lines() {
        let Some(args) = include_args(line) else {
            lines.push_str(line);
            lines.push('\n');
            continue;
        };
        flush(&mut lines, &mut block, scope, rules)?;
        if args.is_empty() {
            return Err("Include names no file".into());
        }
        let mut inner = scope.to_vec();
        inner.push(block.clone());
        for arg in &args {
            for file in included(arg) {
                *count += 1;
                if inner.len() > MAX_INCLUDE_DEPTH || *count > MAX_INCLUDED_FILES {
                    return Err(format!(
                        "Include {}: more than {MAX_INCLUDE_DEPTH} levels or \
                         {MAX_INCLUDED_FILES} files (does an Include include itself?)",
                        file.display()
                    ));
                }
                let data = read_limited(&file, "the included file", INVENTORY_LIMIT)
                    .map_err(|e| format!("Include {arg}: {e:#}"))?;
                parse(&data, &inner, count, rules).map_err(|e| {
                    if e.starts_with("Include ") {
                        e
                    } else {
                        format!("Include {}: {e}", file.display())
                    }
                })?;
            }
        }
    }
    flush(&mut lines, &mut block, scope, rules)
}

/// Parse the `lines` gathered since the last `Include` (they continue `block`) into `rules`;
/// `block` becomes the patterns of the last block they open.
fn flush(
    lines: &mut String,
    block: &mut Vec<HostClause>,
    scope: &[Vec<HostClause>],
    rules: &mut Vec<Rule>,
) -> Result<(), String> {
    let parsed = SshConfig::default()
        .parse(
            &mut lines.as_bytes(),
            ParseRule::ALLOW_UNKNOWN_FIELDS | ParseRule::ALLOW_UNSUPPORTED_FIELDS,
        )
        .map_err(|e| e.to_string())?;
    lines.clear();
    let mut hosts = parsed.get_hosts().clone();
    // The parser's first rule holds the lines before any `Host`: the block they continue.
    if let Some(first) = hosts.first_mut() {
        first.pattern = block.clone();
    }
    if let Some(last) = hosts.last() {
        *block = last.pattern.clone();
    }
    rules.extend(hosts.into_iter().map(|host| Rule {
        host,
        scope: scope.to_vec(),
    }));
    Ok(())
}

/// The arguments of an `Include` line, as ssh2-config reads a line (comment off, keyword up
/// to a blank or `=`, arguments split at blanks outside double quotes); `None` for any other.
fn include_args(line: &str) -> Option<Vec<String>> {
    let line = line.trim();
    let end = line.find(|c: char| c.is_whitespace() || c == '=')?;
    if !line[..end].eq_ignore_ascii_case("include") {
        return None;
    }
    let rest = line[end..].trim_start();
    let rest = rest.strip_prefix('=').unwrap_or(rest);
    let (mut args, mut word, mut quoted) = (Vec::new(), String::new(), false);
    for c in rest.chars() {
        match c {
            '"' => quoted = !quoted,
            '#' if !quoted => break,
            c if c.is_whitespace() && !quoted => {
                if !word.is_empty() {
                    args.push(std::mem::take(&mut word));
                }
            }
            c => word.push(c),
        }
    }
    if !word.is_empty() {
        args.push(word);
    }
    Some(args)
}

/// The files an `Include` argument names, found as ssh2-config finds them: absolute, `~/`,
/// or relative to `~/.ssh`, with glob patterns. A bad pattern names none here (the parser
/// reports it).
fn included(arg: &str) -> Vec<PathBuf> {
    let home = || glob::Pattern::escape(&expand_tilde("~").display().to_string());
    let pattern = if arg.starts_with('/') || (arg.starts_with('~') && !arg.starts_with("~/")) {
        arg.to_string()
    } else if let Some(rest) = arg.strip_prefix("~/") {
        format!("{}/{rest}", home())
    } else {
        format!("{}/.ssh/{arg}", home())
    };
    glob::glob(&pattern)
        .map(|paths| paths.filter_map(Result::ok).collect())
        .unwrap_or_default()
}

/// The first IdentityFile that exists, else the first named (ssh tries them in order;
/// regboot uses one key).
fn first_identity(files: Option<Vec<PathBuf>>) -> Option<PathBuf> {
    let files = files.unwrap_or_default();
    files
        .iter()
        .find(|f| f.is_file())
        .or(files.first())
        .cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> Config {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config");
        std::fs::write(&path, text).unwrap();
        Config::load(&path).unwrap()
    }

    #[test]
    fn first_match_wins_with_wildcards_and_negation() {
        let c = config(
            "Host db-* !db-old\n  User dba\n  Port 2200\n\
             Host db-1\n  HostName 10.0.0.1\n  User late\n\
             Host *\n  User everyone\n  Port 22\n  IdentityFile /nonexistent/id\n",
        );
        let db1 = c.lookup("db-1").unwrap();
        assert_eq!(db1.host_name.as_deref(), Some("10.0.0.1"));
        assert_eq!(
            db1.user.as_deref(),
            Some("dba"),
            "the first value obtained wins"
        );
        assert_eq!(db1.port, Some(2200));
        let old = c.lookup("db-old").unwrap();
        assert_eq!(
            (old.user.as_deref(), old.port),
            (Some("everyone"), Some(22))
        );
        assert_eq!(old.identity_file, Some(PathBuf::from("/nonexistent/id")));
        assert_eq!(c.lookup("web").unwrap().host_name, None);
    }

    #[test]
    fn proxy_jump_is_one_bastion_or_none() {
        let c = config(
            "Host direct\n  ProxyJump none\nHost two\n  ProxyJump a,b\n\
             Host *\n  ProxyJump ops@jump:2222\n",
        );
        assert_eq!(c.lookup("direct").unwrap().proxy_jump, None);
        assert_eq!(
            c.lookup("x").unwrap().proxy_jump.as_deref(),
            Some("ops@jump:2222")
        );
        assert!(c.lookup("two").unwrap_err().contains("one bastion"));
    }

    /// Issue 26 item 16: a ProxyJump naming another alias of the file is resolved through it
    /// (it used to be dialed as the bare alias: "jumpA:22 ... failed to lookup address").
    #[test]
    fn a_proxy_jump_alias_is_resolved_like_any_host() {
        let c = config(
            "Host jumpA\n  HostName 127.0.0.5\n  User ops\n  Port 2222\n  IdentityFile /keys/jump\n\
             Host target\n  HostName 10.0.0.9\n  ProxyJump jumpA\n\
             Host other\n  ProxyJump admin@jumpA:2200\n\
             Host direct\n  ProxyJump bastion.example.com\n",
        );
        let jump = |h: &str| c.lookup(h).unwrap().proxy_jump.unwrap();
        assert_eq!(
            c.lookup("target").unwrap().jump_identity_file,
            Some(PathBuf::from("/keys/jump"))
        );
        assert_eq!(jump("target"), "ops@127.0.0.5:2222");
        assert_eq!(
            jump("other"),
            "admin@127.0.0.5:2200",
            "what the ProxyJump says wins"
        );
        assert_eq!(jump("direct"), "bastion.example.com");
    }

    #[test]
    fn user_known_hosts_file_is_read() {
        let c = config(
            "Host a\n  UserKnownHostsFile ~/kh-a ~/kh-b\n  HostKeyAlias web\nHost *\n  User x\n",
        );
        assert_eq!(
            c.lookup("a").unwrap().check.host_key_alias.as_deref(),
            Some("web")
        );
        assert_eq!(
            c.lookup("a").unwrap().check.known_hosts.as_deref(),
            Some("~/kh-a")
        );
        assert_eq!(c.lookup("b").unwrap().check.known_hosts, None);
        let c = config("Host *\n  GlobalKnownHostsFile /g1 /g2\n");
        assert_eq!(
            c.lookup("a").unwrap().check.global_known_hosts,
            Some(vec!["/g1".to_string(), "/g2".to_string()])
        );
    }

    /// Issue 26 item 16: StrictHostKeyChecking is read for the host and, separately, for
    /// the jump host its ProxyJump names (its own settings, not the target's).
    #[test]
    fn strict_host_key_checking_is_read_for_the_host_and_its_jump_host() {
        let c = config(
            "Host jumpA\n  StrictHostKeyChecking yes\n  UserKnownHostsFile /kh-jump\n\
             \x20 HostKeyAlias bastion\n\
             Host t\n  ProxyJump jumpA\n  StrictHostKeyChecking no\n  UserKnownHostsFile /kh-t\n\
             Host bad\n  StrictHostKeyChecking maybe\n",
        );
        let t = c.lookup("t").unwrap();
        assert_eq!(t.check.policy, Some(HostKeyCheck::Off));
        assert_eq!(t.check.known_hosts.as_deref(), Some("/kh-t"));
        assert_eq!(t.jump_check.policy, Some(HostKeyCheck::Strict));
        assert_eq!(t.jump_check.known_hosts.as_deref(), Some("/kh-jump"));
        assert_eq!(t.jump_check.host_key_alias.as_deref(), Some("bastion"));
        assert_eq!(c.lookup("jumpA").unwrap().jump_check, KeyCheck::default());
        let err = c.lookup("bad").unwrap_err();
        assert!(err.contains("StrictHostKeyChecking \"maybe\""), "{err}");
    }

    #[test]
    fn unknown_options_are_allowed_and_syntax_errors_are_not() {
        config("Host *\n  ControlMaster auto\n  SendEnv LANG\n");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config");
        std::fs::write(&path, "Host x\n  Port notaport\n").unwrap();
        assert!(Config::load(&path).is_err());
    }

    /// Issue 26 item 12: read through the bounded reader, like every local file.
    #[test]
    fn a_huge_or_special_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config");
        let comment = "# a comment line of forty bytes or so..\n";
        std::fs::write(&path, comment.repeat((2 << 20) / comment.len())).unwrap();
        let err = Config::load(&path).err().unwrap();
        assert!(
            err.contains("cannot read it") && err.contains("larger than"),
            "{err}"
        );
        let err = Config::load(Path::new("/dev/zero")).err().unwrap();
        assert!(err.contains("is a device"), "{err}");
    }

    /// How often `path` is opened while `f` runs (inotify's IN_OPEN events; closes are
    /// watched too, since inotify merges identical events in a row).
    fn opens_of(path: &Path, f: impl FnOnce()) -> usize {
        use std::os::unix::ffi::OsStrExt;
        let name = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
        let mask = libc::IN_OPEN | libc::IN_CLOSE;
        let mut buf = [0u8; 4096];
        // SAFETY: plain syscalls on a descriptor this function owns and closes.
        let n = unsafe {
            let fd = libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC);
            assert!(fd >= 0);
            assert!(libc::inotify_add_watch(fd, name.as_ptr(), mask) >= 0);
            f();
            let n = libc::read(fd, buf.as_mut_ptr().cast(), buf.len());
            libc::close(fd);
            n
        };
        // Events on a watched file carry no name: each is one bare inotify_event, its mask
        // the second u32.
        let size = std::mem::size_of::<libc::inotify_event>();
        buf[..usize::try_from(n).unwrap_or(0)]
            .chunks(size)
            .filter(|e| u32::from_ne_bytes(e[4..8].try_into().unwrap()) & libc::IN_OPEN != 0)
            .count()
    }

    /// Issue 26 item 12: an included file is opened once, through the bounded reader, and
    /// the parser reads those bytes (ssh2-config used to open it again: what it parsed was
    /// not what was checked). Include inside a `Host` block still applies only there.
    #[test]
    fn each_included_file_is_opened_once() {
        let dir = tempfile::tempdir().unwrap();
        let inc = dir.path().join("inc.conf");
        std::fs::write(&inc, "User from-include\nHost other\n  User other\n").unwrap();
        let path = dir.path().join("config");
        std::fs::write(
            &path,
            format!(
                "Host a* !ab\n  Include {}\n  Port 2200\nHost *\n  User last\n",
                inc.display()
            ),
        )
        .unwrap();
        let mut c = None;
        assert_eq!(opens_of(&inc, || c = Some(Config::load(&path).unwrap())), 1);
        let c = c.unwrap();
        let a = c.lookup("a1").unwrap();
        assert_eq!(
            (a.user.as_deref(), a.port),
            (Some("from-include"), Some(2200))
        );
        assert_eq!(c.lookup("ab").unwrap().user.as_deref(), Some("last"));
        assert_eq!(c.lookup("other").unwrap().user.as_deref(), Some("last"));
    }

    /// Following `Include`s here gives what ssh2-config gives following them itself: at the
    /// top, inside a `Host` block (lines after it continue that block), nested, globbed.
    #[test]
    fn includes_resolve_as_the_crate_resolves_them() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display();
        let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
        write(
            "a.conf",
            &format!("Port 2001\nHost web*\n  User a-web\n  Include \"{d}/n.conf\"\n"),
        );
        write(
            "b.conf",
            "Host db\n  HostName 10.0.0.2\nHost *\n  User b-all\n",
        );
        write("n.conf", "HostName nested\nHost webx\n  Port 2003\n");
        let main = format!(
            "Host web1 db\n  Include {d}/a.conf\n  User main-block\n\
             Include={d}/b*.conf # both\nHost *\n  Port 22\n  User fallback\n"
        );
        let path = dir.path().join("config");
        std::fs::write(&path, &main).unwrap();
        let ours = Config::load(&path).unwrap();
        let theirs = SshConfig::default()
            .parse(
                &mut main.as_bytes(),
                ParseRule::ALLOW_UNKNOWN_FIELDS | ParseRule::ALLOW_UNSUPPORTED_FIELDS,
            )
            .unwrap();
        for alias in ["web1", "webx", "db", "other", "web2"] {
            let (a, b) = (ours.query(alias), theirs.query(alias));
            assert_eq!(
                (a.host_name, a.user, a.port),
                (b.host_name, b.user, b.port),
                "{alias}"
            );
        }
        assert_eq!(ours.query("web1").host_name.as_deref(), Some("nested"));
    }

    /// Issue 26 item 12: what an `Include` pulls in is bounded too (the parser used to read
    /// it whole): a huge file, a device and an Include of itself are refused by name.
    #[test]
    fn a_huge_or_endless_include_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let huge = dir.path().join("huge.conf");
        let comment = "# a comment line of forty bytes or so..\n";
        std::fs::write(&huge, comment.repeat((2 << 20) / comment.len())).unwrap();
        std::fs::write(dir.path().join("small.conf"), "Host x\n  User y\n").unwrap();
        let path = dir.path().join("config");
        let load = |text: String| {
            std::fs::write(&path, text).unwrap();
            Config::load(&path)
        };
        let glob = format!("Host *\n  Include={}/*.conf\n", dir.path().display());
        let err = load(glob).err().unwrap();
        assert!(
            err.contains(&huge.display().to_string()) && err.contains("larger than"),
            "{err}"
        );
        let err = load("Include /dev/zero\n".into()).err().unwrap();
        assert!(
            err.contains("/dev/zero") && err.contains("is a device"),
            "{err}"
        );
        let err = load(format!("Include {}\n", path.display())).err().unwrap();
        assert!(err.contains("include itself"), "{err}");
        std::fs::remove_file(&huge).unwrap();
        let c = load(format!("Include {}/*.conf\n", dir.path().display())).unwrap();
        assert_eq!(c.lookup("x").unwrap().user.as_deref(), Some("y"));
    }
}
