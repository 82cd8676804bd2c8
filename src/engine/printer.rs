//! The lines a run prints as it goes. A step's outcome is grouped: each change once, with the
//! hosts it applies to (the same CA on fifty hosts is one entry), its detail (a diff, a
//! certificate's fields) once, and the hosts with nothing to do on one line.

use std::fmt::Write as _;
use std::sync::{Mutex, MutexGuard};

use super::change::Change;
use super::progress;

pub(super) struct Printer {
    pub quiet: bool,
    /// Show each change's detail (diff, certificate fields, secret digest).
    pub diff: bool,
    /// Also show certificate files' base64 diffs (`--diff`, `-v`).
    pub raw_diff: bool,
    pub check: bool,
    /// The heading of the current step, printed before its first line: a step with nothing
    /// to say (no host of its role, an S3 check on filesystem storage) prints nothing.
    heading: Mutex<Option<String>>,
    /// Details already printed in this run: the same CA in certs.d and the trust store is
    /// described once.
    shown: Mutex<Vec<String>>,
}

impl Printer {
    pub fn new(quiet: bool, diff: bool, raw_diff: bool, check: bool) -> Printer {
        Printer {
            quiet,
            diff,
            raw_diff,
            check,
            heading: Mutex::new(None),
            shown: Mutex::new(Vec::new()),
        }
    }

    /// A new step begins: its heading waits for the step's first line.
    pub fn step(&self, name: &str) {
        *locked(&self.heading) = Some(format!("\n== {name}"));
    }

    pub fn line(&self, text: &str) {
        if !self.quiet {
            if let Some(heading) = locked(&self.heading).take() {
                progress::println(&heading);
            }
            progress::println(text);
        }
    }

    /// Print the outcome of a step (or of one batch of a roll) on `hosts`.
    pub fn changes(&self, hosts: &[(&str, &[Change])]) {
        if !self.quiet && !hosts.is_empty() {
            self.line(self.render(hosts).trim_end_matches('\n'));
        }
    }

    fn render(&self, hosts: &[(&str, &[Change])]) -> String {
        let verb = if self.check {
            "would change"
        } else {
            "changed"
        };
        let ok: Vec<&str> = hosts
            .iter()
            .filter(|(_, c)| c.is_empty())
            .map(|(h, _)| *h)
            .collect();
        let mut out = String::new();
        if !ok.is_empty() {
            let _ = writeln!(out, "  {}: ok", ok.join(", "));
        }
        let mut shown = locked(&self.shown);
        for (change, names) in groups(hosts) {
            let _ = writeln!(out, "  {}: {verb}: {}", names.join(", "), change.summary);
            let details = [
                change.diff.as_deref().filter(|_| self.diff),
                change.raw_diff.as_deref().filter(|_| self.raw_diff),
            ];
            for detail in details.into_iter().flatten().filter(|d| !d.is_empty()) {
                // The same certificate placed at several paths is described once.
                if shown.iter().any(|s| s == detail) {
                    out.push_str("      (the same as above)\n");
                    continue;
                }
                shown.push(detail.to_string());
                for l in detail.lines() {
                    let _ = writeln!(out, "      {l}");
                }
            }
        }
        out
    }
}

/// Equal changes (summary and details) with the hosts that have them, in first-seen order.
fn groups<'c>(hosts: &[(&'c str, &'c [Change])]) -> Vec<(&'c Change, Vec<&'c str>)> {
    let mut groups: Vec<(&Change, Vec<&str>)> = Vec::new();
    for (host, changes) in hosts {
        for c in changes.iter() {
            let same = |g: &&mut (&Change, Vec<&str>)| {
                g.0.summary == c.summary && g.0.diff == c.diff && g.0.raw_diff == c.raw_diff
            };
            match groups.iter_mut().find(same) {
                Some(g) => g.1.push(host),
                None => groups.push((c, vec![host])),
            }
        }
    }
    groups
}

/// A printer's lock (shared by a `once` step's tasks): a panic elsewhere leaves it usable.
fn locked<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(path: &str, diff: &str) -> Change {
        let mut c = Change::put_file(path, Vec::new(), crate::host::Mode::Keep, None);
        c.diff = Some(diff.to_string());
        c
    }

    fn printer(raw_diff: bool) -> Printer {
        Printer::new(false, true, raw_diff, true)
    }

    #[test]
    fn the_same_change_on_many_hosts_is_shown_once_with_the_hosts() {
        let ca = [
            write("/a/ca.crt", "certificate: new"),
            write("/b/ca.crt", "certificate: new"),
        ];
        let hosts_file = write("/etc/hosts", "+10.0.0.1 registry");
        let other = [write("/etc/hosts", "+10.0.0.2 registry")];
        let host1 = [ca[0].clone(), ca[1].clone(), hosts_file];
        let host2 = host1.clone();
        let shown = printer(false).render(&[
            ("host1", &host1),
            ("host2", &host2),
            ("host3", &other),
            ("host4", &[]),
        ]);
        assert_eq!(
            shown,
            "  host4: ok\n\
             \x20 host1, host2: would change: write /a/ca.crt\n      certificate: new\n\
             \x20 host1, host2: would change: write /b/ca.crt\n      (the same as above)\n\
             \x20 host1, host2: would change: write /etc/hosts\n      +10.0.0.1 registry\n\
             \x20 host3: would change: write /etc/hosts\n      +10.0.0.2 registry\n"
        );
    }

    #[test]
    fn raw_certificate_diffs_only_on_request() {
        let mut c = write("/ca.crt", "certificate: new");
        c.raw_diff = Some("+MIIB".into());
        let hosts = [("h", std::slice::from_ref(&c))];
        assert!(!printer(false).render(&hosts).contains("MIIB"));
        assert!(printer(true).render(&hosts).contains("      +MIIB\n"));
    }
}
