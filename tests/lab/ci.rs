//! The CI rehearsal that docs/ci.md hands to users (scripts/ci-lab.sh, run by the GitHub and
//! GitLab examples) passes here too: lab up, plan, apply, verify, a converged plan, lab down.

use std::process::Command;

#[test]
fn the_ci_rehearsal_script_sets_up_verifies_and_removes_a_lab() {
    let regboot = env!("CARGO_BIN_EXE_regboot");
    let name = format!("t{}-ci", std::process::id());
    let out = Command::new("bash")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/ci-lab.sh"))
        .arg(regboot)
        .env("REGBOOT_CI_LAB", &name)
        // Two hosts: a registry and an agent that pulls from it, the cheapest full rehearsal.
        .env("REGBOOT_CI_HOSTS", "2")
        // Like every lab test: packages from the lab's cached bundle (docs/testing.md).
        .env("REGBOOT_CI_BUNDLE", "1")
        .env_remove("AWS_CA_BUNDLE")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "ci-lab.sh failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for step in [
        "lab up",
        "plan (exit 2",
        "apply",
        "verify",
        "plan (exit 0",
        "done",
    ] {
        assert!(stdout.contains(&format!("== ci-lab: {step}")), "{stdout}");
    }
    // The lab is gone afterwards.
    let status = Command::new(regboot)
        .args(["lab", "status", "--name", &name, "-o", "json"])
        .output()
        .unwrap();
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(status["labs"], serde_json::json!([]), "{status:#}");
}
