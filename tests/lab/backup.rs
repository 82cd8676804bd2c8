//! A lost state directory restored from `regboot backup`: `plan` then exits 0 on the
//! unchanged cluster (same CA, same certificate and key, same http secret), against the lab.

use crate::support::cli::{regboot_env, run_json};
use crate::support::lab::TestLab;

#[test]
fn plan_is_clean_after_a_restore() {
    let lab = TestLab::up("backup", 2);
    let inv = lab.lab.inventory_path.clone();
    let (code, applied) = run_json(&inv, &["apply"]);
    assert_eq!(code, 0, "apply: {applied:#}");
    let pass = vec![(
        "REGBOOT_BACKUP_PASSPHRASE".to_string(),
        "lab passphrase".to_string(),
    )];
    let file = inv.parent().unwrap().join("state.age");
    let file = file.to_str().unwrap();
    let out = regboot_env(&inv, &["backup", file], &pass);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The state directory is lost: plan would need a new CA, and the CA guard says so.
    let state = inv.parent().unwrap().join(".regboot");
    std::fs::remove_dir_all(&state).unwrap();
    let out = regboot_env(&inv, &["plan"], &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("restore the state directory from its backup"),
        "{err}"
    );

    let out = regboot_env(&inv, &["restore", file], &pass);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (code, plan) = run_json(&inv, &["plan"]);
    assert_eq!(code, 0, "plan after the restore: {plan:#}");
}
