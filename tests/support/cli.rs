//! Running the regboot binary from the tests, as a user would.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

/// The regboot binary as a user on a clean machine runs it: none of this machine's
/// REGBOOT_* defaults, and no AWS_CA_BUNDLE (set on these machines: the registry's s3 driver
/// refuses a bundle it cannot load).
pub fn command() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_regboot"));
    for var in [
        "AWS_CA_BUNDLE",
        "REGBOOT_INVENTORY",
        "REGBOOT_STATE_DIR",
        "REGBOOT_BACKUP_PASSPHRASE",
    ] {
        c.env_remove(var);
    }
    c
}

/// `regboot ARGS`: its stdout, panicking with its stderr unless it succeeds.
pub fn stdout_ok(args: &[&str]) -> String {
    let out = command().args(args).output().expect("run regboot");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

/// `regboot ARGS -i INVENTORY` with `env` added to its environment.
pub fn regboot_env(inventory: &Path, args: &[&str], env: &[(String, String)]) -> Output {
    command()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .args(args)
        .arg("-i")
        .arg(inventory)
        .output()
        .expect("run regboot")
}

pub fn regboot(inventory: &Path, args: &[&str]) -> Output {
    regboot_env(inventory, args, &[])
}

/// The exit code and the JSON that `regboot ARGS -o json` printed (`out`).
pub fn json_of(args: &[&str], out: &Output) -> (i32, Value) {
    let value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{args:?}: no JSON ({e}); stdout:\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), value)
}

/// Exit code and JSON of `regboot ARGS -o json -i INVENTORY`.
pub fn run_json(inventory: &Path, args: &[&str]) -> (i32, Value) {
    let all = [args, &["-o", "json"]].concat();
    json_of(args, &regboot(inventory, &all))
}

/// Why `host` failed in a run's JSON report, if it did.
pub fn host_error<'a>(report: &'a Value, host: &str) -> Option<&'a str> {
    report["hosts"]
        .as_array()?
        .iter()
        .find(|h| h["host"] == host)
        .and_then(|h| h["error"].as_str())
}

/// Every (host, change) a run's JSON report lists.
pub fn changes(report: &Value) -> Vec<(String, String)> {
    let mut all = Vec::new();
    for h in report["hosts"].as_array().into_iter().flatten() {
        for s in h["steps"].as_array().into_iter().flatten() {
            for c in s["changes"].as_array().into_iter().flatten() {
                all.push((
                    h["host"].as_str().unwrap_or_default().to_string(),
                    c.as_str().unwrap_or_default().to_string(),
                ));
            }
        }
    }
    all
}

/// A run's smoke test passed: at least one smoke line, every one ok, nothing skipped.
pub fn assert_smoke_passed(report: &Value) {
    let smoke = report["smoke"].as_array().expect("smoke results");
    assert!(
        !smoke.is_empty() && smoke.iter().all(|s| s["ok"] == true),
        "smoke: {smoke:#?}"
    );
    assert!(report.get("smoke_skipped").is_none(), "{report:#}");
}

/// The smoke test passed and every one of the lab's `hosts` but the pusher pulled.
pub fn assert_smoke_ok(report: &Value, hosts: usize) {
    assert_smoke_passed(report);
    let smoke = report["smoke"].as_array().expect("smoke results");
    let pulls = smoke.iter().filter(|s| s["action"] == "pull").count();
    assert_eq!(pulls, hosts - 1, "smoke: {smoke:#?}");
}
