//! What a run tells people (lines as it goes, diffs, a summary table) and scripts (JSON).

use std::fmt::Write as _;

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Changed,
    Failed,
    Skipped,
}

/// One step's outcome on one host.
#[derive(Debug, Clone, Serialize)]
pub struct StepResult {
    pub step: String,
    pub status: Status,
    pub changes: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Why a host failed, for scripts: a stable code (`unreachable`, `host-key-changed`,
/// `auth-refused`, ...; `failed` for the rest), the message, and what to do when known.
#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    pub code: &'static str,
    pub message: String,
    pub hint: Option<String>,
}

impl Failure {
    /// `message` without the `host: ` prefix transport errors carry (JSON names the host).
    pub fn new(code: &'static str, host: &str, message: &str, hint: Option<String>) -> Failure {
        let message = message
            .strip_prefix(&format!("{host}: "))
            .unwrap_or(message);
        Failure {
            code,
            message: message.to_string(),
            hint,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct HostReport {
    pub host: String,
    pub steps: Vec<StepResult>,
    /// Why the host stopped, when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The same, with a code and the hint apart.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<Failure>,
    pub seconds: f64,
    /// SSH commands run on the host (each about one round trip), tunnels not counted.
    pub commands: usize,
}

impl HostReport {
    pub fn count(&self, status: Status) -> usize {
        self.steps.iter().filter(|s| s.status == status).count()
    }
    pub fn failed(&self) -> bool {
        self.error.is_some()
    }
}

/// One check a verifying `once` step made on one host (the smoke test: a push, a pull, a
/// cleanup); a failed one fails its host.
#[derive(Debug, Clone, Serialize)]
pub struct Verification {
    pub host: String,
    /// What was checked (the smoke test: push, pull or cleanup).
    pub action: &'static str,
    pub ok: bool,
    pub seconds: f64,
    pub detail: String,
}

/// A verifying step that did not run, and why.
#[derive(Debug, Clone, Default)]
pub struct Unverified {
    /// The step's name (the summary says "the {step} did not run").
    pub step: String,
    pub why: String,
    /// The inventory turned it off: `verify` does not fail for it.
    pub turned_off: bool,
}

/// Only `why` goes into JSON (`smoke_skipped`, the key scripts read since the smoke test was
/// the one verifying step).
fn why_only<S: serde::Serializer>(u: &Option<Unverified>, s: S) -> Result<S::Ok, S::Error> {
    match u {
        Some(u) => s.serialize_str(&u.why),
        None => s.serialize_none(),
    }
}

/// Where a run's time went: connect, probe, each step, and the verifying steps' own phases
/// (the smoke test's push, pulls and replica checks; wall time of each, all hosts together).
#[derive(Debug, Clone, Serialize)]
pub struct Phase {
    pub phase: String,
    pub seconds: f64,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct RunReport {
    pub playbook: String,
    pub check: bool,
    pub notes: Vec<String>,
    /// A serial roll stopped at a failure, and the steps after it did not run.
    pub halted: bool,
    pub hosts: Vec<HostReport>,
    /// What the verifying steps checked, in the order results came in (JSON: `smoke`).
    #[serde(rename = "smoke", skip_serializing_if = "Vec::is_empty")]
    pub verified: Vec<Verification>,
    /// A verifying step of the playbook did not run (JSON: `smoke_skipped`, its reason).
    #[serde(
        rename = "smoke_skipped",
        skip_serializing_if = "Option::is_none",
        serialize_with = "why_only"
    )]
    pub unverified: Option<Unverified>,
    pub phases: Vec<Phase>,
}

impl RunReport {
    /// Every step ran and no host failed.
    pub fn completed(&self) -> bool {
        !self.halted && self.failed_hosts().is_empty()
    }

    pub fn failed_hosts(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self
            .hosts
            .iter()
            .filter(|h| h.failed())
            .map(|h| h.host.as_str())
            .collect();
        for s in self.verified.iter().filter(|s| !s.ok) {
            if !names.contains(&s.host.as_str()) {
                names.push(&s.host);
            }
        }
        names
    }

    /// A verifying step did not run although the inventory asks for it.
    pub fn unverified_wanted(&self) -> bool {
        self.unverified.as_ref().is_some_and(|u| !u.turned_off)
    }

    pub fn changed(&self) -> usize {
        self.hosts.iter().map(|h| h.count(Status::Changed)).sum()
    }

    /// One line saying where the time went (`-v`); steps that took no time are left out.
    pub fn timing(&self) -> String {
        let parts: Vec<String> = self
            .phases
            .iter()
            .filter(|p| p.seconds >= 0.005)
            .map(|p| format!("{} {:.2} s", p.phase, p.seconds))
            .collect();
        format!("timing: {}\n", parts.join(", "))
    }

    /// The table printed at the end of a text run.
    pub fn summary(&self) -> String {
        let width = self
            .hosts
            .iter()
            .map(|h| h.host.len())
            .max()
            .unwrap_or(4)
            .max(4);
        let mut out = format!(
            "\n{:<width$}  {:>3}  {:>7}  {:>6}  {:>7}\n",
            "HOST", "OK", "CHANGED", "FAILED", "SECONDS"
        );
        for h in &self.hosts {
            let _ = writeln!(
                out,
                "{:<width$}  {:>3}  {:>7}  {:>6}  {:>7.1}",
                h.host,
                h.count(Status::Ok),
                h.count(Status::Changed),
                usize::from(h.failed()),
                h.seconds
            );
        }
        let verb = if self.check {
            "would change"
        } else {
            "changed"
        };
        let _ = write!(out, "\n{} step(s) {verb}", self.changed());
        let failed = self.failed_hosts();
        if failed.is_empty() {
            out.push_str(", no host failed\n");
        } else {
            let _ = writeln!(out, "; FAILED: {}", failed.join(", "));
            for h in self.hosts.iter().filter(|h| h.failed()) {
                let _ = writeln!(out, "  {}: {}", h.host, h.error.as_deref().unwrap_or(""));
            }
        }
        // Plan never verifies; any other run that skipped a verifying step says so last.
        if let Some(u) = self.unverified.as_ref().filter(|_| !self.check) {
            let _ = writeln!(out, "NOT VERIFIED: the {} did not run ({})", u.step, u.why);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_without_smoke_test_ends_saying_so() {
        let mut report = RunReport {
            unverified: Some(Unverified {
                step: "smoke test".into(),
                why: "smoke_test: false in the inventory".into(),
                turned_off: true,
            }),
            ..RunReport::default()
        };
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["smoke_skipped"], "smoke_test: false in the inventory");
        let last = report.summary().lines().last().unwrap().to_string();
        assert_eq!(
            last,
            "NOT VERIFIED: the smoke test did not run (smoke_test: false in the inventory)"
        );
        report.check = true;
        assert!(!report.summary().contains("NOT VERIFIED"));
    }

    #[test]
    fn the_timing_line_leaves_out_what_took_no_time() {
        let phase = |phase: &str, seconds| Phase {
            phase: phase.into(),
            seconds,
        };
        let report = RunReport {
            phases: vec![
                phase("connect", 0.4),
                phase("agent login", 0.0),
                phase("pulls", 2.5),
            ],
            ..RunReport::default()
        };
        assert_eq!(report.timing(), "timing: connect 0.40 s, pulls 2.50 s\n");
    }
}
