//! The one way regboot builds a remote shell command: every argument goes through [`quote`].
//!
//! SSH carries a command as a single string that the remote login shell parses, so an argument
//! with a space, quote or `$` would be split or expanded unless quoted. POSIX single quotes
//! disable every expansion; the only character needing care inside them is `'` itself.

use std::fmt;

/// Quote `s` for a POSIX shell. Words made only of safe characters are left as they are so
/// commands stay readable in logs.
pub fn quote(s: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "_@%+=:,./-".contains(c);
    if !s.is_empty() && s.chars().all(safe) {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// A remote command built from arguments, each quoted once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteCommand {
    line: String,
}

impl RemoteCommand {
    pub fn new(program: &str) -> Self {
        RemoteCommand {
            line: quote(program),
        }
    }

    /// A shell script run by `sh -c`, so pipes, `&&` and redirections inside it work.
    pub fn script(script: &str) -> Self {
        RemoteCommand::new("sh").arg("-c").arg(script)
    }

    pub fn arg(mut self, arg: &str) -> Self {
        self.line.push(' ');
        self.line.push_str(&quote(arg));
        self
    }

    pub fn args<'a>(self, args: impl IntoIterator<Item = &'a str>) -> Self {
        args.into_iter().fold(self, RemoteCommand::arg)
    }

    /// The same command run as root by `sudo -n` (never prompts: a password requirement is an
    /// error, reported by [`crate::ssh::Session::exec_as_root`]). In the C locale, so sudo's
    /// messages, which regboot recognizes, are in English.
    pub fn sudo(&self) -> Self {
        RemoteCommand::new("env")
            .args(["LC_ALL=C", "sudo", "-n", "--", "sh", "-c"])
            .arg(&self.line)
    }

    pub fn as_str(&self) -> &str {
        &self.line
    }
}

impl fmt::Display for RemoteCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    #[test]
    fn safe_words_stay_bare() {
        assert_eq!(quote("/etc/docker/daemon.json"), "/etc/docker/daemon.json");
        assert_eq!(quote("a=b,c:d@e"), "a=b,c:d@e");
    }

    #[test]
    fn everything_else_is_single_quoted() {
        assert_eq!(quote(""), "''");
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(quote("$(rm -rf /)"), "'$(rm -rf /)'");
    }

    /// A real shell must give back exactly the argument we quoted, even nested in `sudo sh -c`.
    #[test]
    fn sh_reads_back_every_argument() {
        let nasty = [
            "plain",
            "two words",
            "it's",
            "''",
            "$HOME `id` $(id) \\ \" ; | & * ? ~ #",
            "new\nline\ttab",
            "-n",
        ];
        let cmd = RemoteCommand::new("printf").arg("%s\\0").args(nasty);
        // Directly, and nested once more as a script (as sudo wraps commands).
        for line in [cmd.clone(), RemoteCommand::script(cmd.as_str())] {
            let out = Command::new("sh")
                .arg("-c")
                .arg(line.as_str())
                .output()
                .unwrap();
            let got: Vec<&str> = std::str::from_utf8(&out.stdout)
                .unwrap()
                .split_terminator('\0')
                .collect();
            assert_eq!(got, nasty, "{line}");
        }
    }
}
