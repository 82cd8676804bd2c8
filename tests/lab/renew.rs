//! `regboot renew` against the lab, an agent pulling every 0.5 s throughout (no pull may
//! fail): a short-lived CA (`certs init --ca-validity 30m`, due at once with
//! `ca_renew_before_days: 1`) goes through its three stages over three `renew` runs with a
//! 10 min soak, a run inside the soak changing nothing (the test then moves the state
//! directory's record of when the stage was reached back by the soak, rather than wait it
//! out); then a short-lived leaf is renewed and
//! a second run rolls nothing. Then node_exporter (Debian's prometheus-node-exporter,
//! installed on the agent) serves `certs check --textfile` and the agent's own file
//! (`metrics.textfile_dir`), and `schedule systemd`'s timer fires `renew` on a lab host.

use std::path::Path;

use crate::rotate::{LOOP, PullLoop, ca_files, push_image};
use crate::support::cli::{assert_smoke_ok, regboot, run_json};
use crate::support::lab::TestLab;
use serde_json::Value;

const SOAK_SECS: i64 = 600;
/// Debian's prometheus-node-exporter reads this directory (--collector.textfile.directory).
const TEXTFILE_DIR: &str = "/var/lib/prometheus/node-exporter";

/// Every file of the state directory with its content (what a "changes nothing" run keeps).
fn state_files(state: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(state)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().unwrap().is_file())
        .map(|e| {
            (
                e.file_name().into_string().unwrap(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}

/// `renew -o json`: its exit code and document.
fn renew(inv: &Path) -> (i32, Value) {
    run_json(inv, &["renew"])
}

fn stage_run(inv: &Path, stage: u64) {
    let (code, doc) = renew(inv);
    assert_eq!(code, 3, "renew ran stage {stage}: {doc:#}");
    assert_eq!(doc["ca"]["step"]["action"], "run", "{doc:#}");
    assert_eq!(doc["ca"]["step"]["stage"], stage, "{doc:#}");
    assert_eq!(doc["runs"][0]["stage"], stage.to_string(), "{doc:#}");
    assert_smoke_ok(&doc["runs"][0]["report"], 3);
    assert_eq!(doc["ca"]["stage"]["stage"], stage, "recorded: {doc:#}");
}

/// A run inside the soak: exit 0, says until when it waits, changes nothing.
fn inside_soak(lab: &TestLab, inv: &Path, state: &Path, next: u64) {
    let before = (state_files(state), ca_files(lab, "host3"));
    let (code, doc) = renew(inv);
    assert_eq!(code, 0, "{doc:#}");
    assert_eq!(doc["ca"]["step"]["action"], "wait", "{doc:#}");
    assert_eq!(doc["ca"]["step"]["stage"], next, "{doc:#}");
    assert!(doc["ca"]["step"]["until"].is_string(), "{doc:#}");
    assert_eq!(doc["runs"], Value::Array(Vec::new()));
    assert_eq!((state_files(state), ca_files(lab, "host3")), before);
    let text = String::from_utf8_lossy(&regboot(inv, &["renew"]).stdout).into_owned();
    assert!(
        text.contains(&format!("CA: waiting: stage {next} may run from")),
        "{text}"
    );
}

/// As if the soak were over: the state directory's record of when the last stage was
/// reached (what `renew` counts the soak from) moves back by the soak and a second.
fn soak_passes(state: &Path) {
    use time::format_description::well_known::Rfc3339;
    let path = state.join("ca-rotation.json");
    let mut record: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let last = record.as_array_mut().unwrap().last_mut().unwrap();
    let at = time::OffsetDateTime::parse(last["at"].as_str().unwrap(), &Rfc3339).unwrap();
    let earlier = at - time::Duration::seconds(SOAK_SECS + 1);
    last["at"] = earlier.format(&Rfc3339).unwrap().into();
    std::fs::write(&path, serde_json::to_string_pretty(&record).unwrap()).unwrap();
}

#[test]
fn renew_rotates_a_short_lived_ca_stage_by_stage_and_renews_a_leaf_once() {
    // host2 logs in as a sudo user; host3, the agent that pulls, as root.
    let lab = TestLab::up("renew", 3);
    let tmp = tempfile::tempdir().unwrap();
    let inv = lab.lab.inventory_path.clone();
    let state = inv.parent().unwrap().join(".regboot");
    let text = std::fs::read_to_string(&inv).unwrap().replace(
        "tls:\n  mode: self-signed\n",
        &format!(
            "tls:\n  mode: self-signed\n  ca_renew_before_days: 1\n  ca_stage_soak: {SOAK_SECS}s\n\
             metrics:\n  textfile_dir: {TEXTFILE_DIR}\n"
        ),
    );
    std::fs::write(&inv, text).unwrap();
    let out = regboot(&inv, &["certs", "init", "--ca-validity", "30m"]);
    assert!(out.status.success(), "{out:?}");
    let (code, report) = run_json(&inv, &["apply"]);
    assert_eq!(code, 0, "{report:#}");

    let agent = lab.host("host3");
    push_image(&lab, agent);
    let script = tmp.path().join("pull-loop.sh");
    std::fs::write(&script, LOOP).unwrap();
    let pulls = PullLoop::start(&lab, "host3", &script);

    // The plan names what is due.
    let out = regboot(&inv, &["plan"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("renewal: `regboot renew` runs CA rotation stage 1"),
        "{text}"
    );

    stage_run(&inv, 1);
    inside_soak(&lab, &inv, &state, 2);
    let text = String::from_utf8_lossy(&regboot(&inv, &["certs", "check"]).stdout).into_owned();
    assert!(
        text.contains("CA rotation: stage 1 reached at") && text.contains("stage 2 may run from"),
        "{text}"
    );
    soak_passes(&state);
    stage_run(&inv, 2);
    inside_soak(&lab, &inv, &state, 3);
    soak_passes(&state);
    stage_run(&inv, 3);
    let recorded: Value =
        serde_json::from_slice(&std::fs::read(state.join("ca-rotation.json")).unwrap()).unwrap();
    let stages: Vec<u64> = recorded
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["stage"].as_u64().unwrap())
        .collect();
    assert_eq!(stages, [1, 2, 3], "{recorded:#}");
    // The new CA (tls.ca_validity_days) is far from its window: nothing is due.
    let (code, doc) = renew(&inv);
    assert_eq!(code, 0, "{doc:#}");
    assert_eq!(doc["ca"]["step"]["action"], "not-due", "{doc:#}");
    let (code, check) = run_json(&inv, &["certs", "check"]);
    assert_eq!(code, 0, "{check:#}");

    // A short-lived leaf is renewed once; the next run rolls nothing.
    let out = regboot(&inv, &["rotate", "--leaf", "--cert-validity", "10m"]);
    assert!(out.status.success(), "{out:?}");
    let (code, doc) = renew(&inv);
    assert_eq!(code, 3, "{doc:#}");
    assert!(
        doc["leaf_due"].as_str().unwrap().contains("expires soon"),
        "{doc:#}"
    );
    assert_eq!(doc["runs"][0]["stage"], "leaf", "{doc:#}");
    assert_smoke_ok(&doc["runs"][0]["report"], 3);
    // That run also writes the metrics as they stand after it.
    let textfile = tmp.path().join("renew.prom");
    let (code, doc) = run_json(&inv, &["renew", "--textfile", textfile.to_str().unwrap()]);
    assert_eq!(code, 0, "{doc:#}");
    assert_eq!(doc["runs"], Value::Array(Vec::new()), "{doc:#}");
    assert_eq!(doc["leaf_due"], Value::Null, "{doc:#}");
    let promtool = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::fs::File::open(&textfile).unwrap())
        .output()
        .expect("promtool (Debian's prometheus package)");
    assert!(promtool.status.success(), "{promtool:?}");
    let metrics = std::fs::read_to_string(&textfile).unwrap();
    assert!(
        metrics.contains("regboot_cert_check_success 1\n")
            && metrics.contains("kind=\"served\",host=\"host1\""),
        "{metrics}"
    );

    let (ok, failed) = pulls.finish();
    println!(
        "pulls during the renewals: {ok} ok, {} failed",
        failed.len()
    );
    assert!(failed.is_empty(), "pulls failed during renew: {failed:#?}");
    assert!(ok >= 10, "only {ok} pulls");

    // reset takes the host's metrics file away with the rest.
    let out = regboot(&inv, &["reset", "--plan", "--limit", "host3"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!("remove {TEXTFILE_DIR}/regboot-certs.prom")),
        "{text}"
    );

    node_exporter_serves_the_textfile(&lab, &inv, tmp.path());
    the_timer_fires_renew_on_a_lab_host(&lab, &inv);
}

/// `schedule systemd` on host1 (regboot, the lab's directory and state copied there, at the
/// same paths) with a timer every 15 s and no random delay: systemd starts the service,
/// which runs `renew` against the lab and finds nothing due (exit 0).
fn the_timer_fires_renew_on_a_lab_host(lab: &TestLab, inv: &Path) {
    let host = lab.host("host1");
    let docker = |args: &[&str]| {
        let out = std::process::Command::new("docker")
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "docker {args:?}: {out:?}");
    };
    let dir = lab.lab.dir.to_str().unwrap();
    let parent = lab.lab.dir.parent().unwrap().to_str().unwrap();
    docker(&["exec", &host.container, "mkdir", "-p", parent]);
    docker(&["cp", dir, &format!("{}:{parent}/", host.container)]);
    let exe = env!("CARGO_BIN_EXE_regboot");
    docker(&[
        "cp",
        exe,
        &format!("{}:/usr/local/bin/regboot", host.container),
    ]);
    let inv = inv.to_str().unwrap();
    // The host's own drop-in: the timer elapses on time, not within systemd's default
    // AccuracySec of a minute (what the test waits for is that it fires and runs renew).
    let started = std::time::Instant::now();
    lab.ssh_ok(
        host,
        &format!(
            "regboot schedule systemd -i {inv} --on-calendar '*:*:0/15' --randomized-delay 0 \
             && mkdir -p /etc/systemd/system/regboot-renew.timer.d \
             && printf '[Timer]\\nAccuracySec=1s\\n' \
                >/etc/systemd/system/regboot-renew.timer.d/accuracy.conf \
             && systemctl daemon-reload && systemctl start regboot-renew.timer"
        ),
    );
    let shown = lab.ssh_ok(
        host,
        "for i in $(seq 150); do \
           t=$(systemctl show -p ExecMainExitTimestampMonotonic --value regboot-renew.service); \
           [ \"$t\" != 0 ] && [ -n \"$t\" ] && break; sleep 1; done; \
         systemctl stop regboot-renew.timer; \
         systemctl show -p Result -p ExecMainStatus regboot-renew.service; \
         journalctl -u regboot-renew.service --no-pager -o cat",
    );
    println!(
        "the timer's run on host1 ({:.1} s after it was scheduled):\n{shown}",
        started.elapsed().as_secs_f64()
    );
    assert!(shown.contains("ExecMainStatus=0"), "{shown}");
    assert!(shown.contains("Result=success"), "{shown}");
    assert!(shown.contains("CA: not due"), "{shown}");
    assert!(shown.contains("registry certificate: not due"), "{shown}");
}

/// node_exporter on the agent serves the agent's own file (written by apply and renew:
/// its CA copies) and `certs check --limit host1 --textfile` (the state directory's
/// certificates, what host1 serves), with the values `certs check -o json` reports.
fn node_exporter_serves_the_textfile(lab: &TestLab, inv: &Path, tmp: &Path) {
    let agent = lab.host("host3");
    lab.install(&agent.name, &["prometheus-node-exporter", "curl"]);
    let file = tmp.join("regboot.prom");
    let (_, check) = run_json(
        inv,
        &[
            "certs",
            "check",
            "--limit",
            "host1",
            "--textfile",
            file.to_str().unwrap(),
        ],
    );
    let copy = lab.ssh_with_stdin(
        agent,
        &format!("cat > {TEXTFILE_DIR}/.check.tmp && mv {TEXTFILE_DIR}/.check.tmp {TEXTFILE_DIR}/check.prom"),
        Some(&file),
    );
    assert!(copy.status.success(), "{copy:?}");
    // The service starts on install; bounded wait for it to answer.
    let scraped = lab.ssh_ok(
        agent,
        "for i in $(seq 50); do curl -sf http://127.0.0.1:9100/metrics && exit 0; sleep 0.2; done; exit 1",
    );
    // node_exporter sorts the labels and may drop an empty one.
    let value = |kind: &str, host: &str| -> Option<i64> {
        let on_host = |l: &str| match host {
            "" => !l.contains("host=\"") || l.contains("host=\"\""),
            h => l.contains(&format!("host=\"{h}\"")),
        };
        scraped
            .lines()
            .filter(|l| l.starts_with("regboot_cert_not_after_timestamp_seconds{"))
            .filter(|l| l.contains(&format!("kind=\"{kind}\"")) && on_host(l))
            .find_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .map(|v| v as i64)
    };
    let rows = check["certificates"].as_array().unwrap();
    let not_after = |name: &str| {
        let row = rows.iter().find(|r| r["name"] == name).unwrap();
        time::OffsetDateTime::parse(
            row["not_after"].as_str().unwrap(),
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap()
        .unix_timestamp()
    };
    assert_eq!(value("ca", ""), Some(not_after("ca")), "{scraped}");
    assert_eq!(
        value("registry", ""),
        Some(not_after("registry")),
        "{scraped}"
    );
    assert_eq!(
        value("served", "host1"),
        Some(not_after("served@host1")),
        "{scraped}"
    );
    assert!(
        scraped.contains("regboot_cert_check_success 1"),
        "{scraped}"
    );
    // The agent's own file: its CA copies hold the current CA, valid.
    let copy = |metric: &str| {
        scraped
            .lines()
            .filter(|l| l.starts_with(&format!("{metric}{{")) && l.contains("host=\"host3\""))
            .find(|l| l.contains("path=\"/etc/docker/certs.d/registry.lab:5000/ca.crt\""))
            .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .map(|v| v as i64)
    };
    assert_eq!(
        copy("regboot_cert_not_after_timestamp_seconds"),
        Some(not_after("ca")),
        "{scraped}"
    );
    assert_eq!(copy("regboot_cert_valid"), Some(1), "{scraped}");
    assert!(
        scraped.lines().any(|l| l == "node_textfile_scrape_error 0"),
        "{scraped}"
    );
}
