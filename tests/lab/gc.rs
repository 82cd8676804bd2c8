//! `regboot gc` against the lab: two tags pushed, one deleted, then a dry run (deletes
//! nothing), then gc while a push loop runs on the registry host. The deleted tag's blobs are
//! gone from the storage, the other tag still pulls, every push the loop saw succeed pulls
//! back whole (a push refused while the replica was read-only failed loudly, and is not
//! lost), and afterwards the registry takes pushes again (`verify`) with nothing to converge.

use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use crate::support::cli::{host_error, run_json};
use crate::support::lab::TestLab;

/// Makes an image of one layer of `$2` random bytes named `$1` (no base image needed).
const MAKE: &str = "mk() { d=$(mktemp -d) && head -c \"$2\" /dev/urandom >\"$d/data\" \
    && tar -C \"$d\" -c . | docker import - \"$1\" >/dev/null && rm -rf \"$d\"; }";
const REPO: &str = "registry.lab:5000/lab/gc";

#[test]
fn gc_deletes_an_untagged_image_and_loses_no_push() {
    let lab = TestLab::up("gc", 2);
    let inv = lab.lab.inventory_path.clone();
    let (code, applied) = run_json(&inv, &["apply"]);
    assert_eq!(code, 0, "apply: {applied:#}");
    let password = std::fs::read_to_string(lab.lab.dir.join("registry-password")).unwrap();
    let password = password.trim();
    let reg = lab.host("host1");
    // A docker config of the test's own on the registry host, logged in once.
    let login = format!(
        "export DOCKER_CONFIG=/root/gc-test && {MAKE} && \
         echo '{password}' | docker login registry.lab:5000 -u lab --password-stdin >/dev/null"
    );
    lab.ssh_ok(
        reg,
        &format!("{login} && for t in keep drop; do mk {REPO}:$t 3000000 && docker push -q {REPO}:$t >/dev/null; done"),
    );

    // Delete the tag `drop` by its digest, from this machine, trusting only the regboot CA.
    let ca = inv.parent().unwrap().join(".regboot/ca.crt");
    let curl = |args: &[&str]| {
        let out = Command::new("curl")
            .args(["-sS", "--max-time", "20", "--cacert"])
            .arg(&ca)
            .arg("--resolve")
            .arg(format!("registry.lab:5000:{}", reg.address))
            .args(["-u", &format!("lab:{password}")])
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let headers = curl(&[
        "-I",
        "-H",
        "Accept: application/vnd.docker.distribution.manifest.v2+json",
        "https://registry.lab:5000/v2/lab/gc/manifests/drop",
    ]);
    let digest = headers
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .starts_with("docker-content-digest:")
                .then(|| l.split_once(':').unwrap().1.trim().to_string())
        })
        .unwrap_or_else(|| panic!("no digest in\n{headers}"));
    let status = curl(&[
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "-X",
        "DELETE",
        &format!("https://registry.lab:5000/v2/lab/gc/manifests/{digest}"),
    ]);
    assert_eq!(status, "202", "DELETE {digest}");

    // A dry run lists the blobs and deletes nothing.
    let (code, dry) = run_json(&inv, &["gc", "--dry-run"]);
    assert_eq!(code, 0, "gc --dry-run: {dry:#}");
    let blobs: Vec<String> = dry["blobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["digest"].as_str().unwrap().to_string())
        .collect();
    assert!(blobs.len() >= 2, "the layer and the config: {dry:#}");
    assert!(dry["bytes"].as_u64().unwrap() > 3_000_000, "{dry:#}");
    assert!(dry["rolls"].as_array().unwrap().is_empty(), "{dry:#}");
    let blob_files = blobs
        .iter()
        .map(|d| {
            let h = d.trim_start_matches("sha256:");
            format!(
                "/var/lib/regboot/registry/docker/registry/v2/blobs/sha256/{}/{h}/data",
                &h[..2]
            )
        })
        .collect::<Vec<_>>()
        .join(" ");
    lab.ssh_ok(reg, &format!("for f in {blob_files}; do test -f $f; done"));

    // Pushes run while gc rolls the replica read-only, collects and rolls it back: each is
    // recorded as pushed or refused (bounded: 90 pushes, and it stops once gc is done).
    lab.ssh_ok(reg, "rm -f /tmp/gc-test-progress");
    let pusher = {
        let lab_ssh = crate::support::lab::ssh_options(&lab.lab);
        let login = login.clone();
        let target = format!("{}@{}", reg.user, reg.address);
        let port = reg.port.to_string();
        thread::spawn(move || {
            let script = format!(
                "{login} && rm -f /tmp/gc-test-done && i=0; \
                 while [ $i -lt 90 ] && [ ! -e /tmp/gc-test-done ]; do i=$((i+1)); \
                   mk {REPO}-during:$i 200000; \
                   if out=$(docker push {REPO}-during:$i 2>&1); then echo \"pushed $i\"; \
                   else echo \"refused $i: $(echo $out | tail -c 200)\"; fi; \
                   echo $i > /tmp/gc-test-progress; \
                 done"
            );
            Command::new("ssh")
                .args(&lab_ssh)
                .args(["-p", &port, &target, &script])
                .output()
                .unwrap()
        })
    };
    // gc starts once the loop has pushed (bounded wait).
    let deadline = Instant::now() + Duration::from_secs(120);
    while lab.ssh(reg, "test -s /tmp/gc-test-progress").status.code() != Some(0) {
        assert!(
            !pusher.is_finished() && Instant::now() < deadline,
            "the push loop never pushed"
        );
        thread::sleep(Duration::from_millis(200));
    }
    let (code, gc) = run_json(&inv, &["gc"]);
    lab.ssh_ok(reg, "touch /tmp/gc-test-done");
    let pushes = pusher.join().unwrap();
    let pushes = String::from_utf8_lossy(&pushes.stdout).to_string();
    eprintln!("pushes while gc ran:\n{pushes}");
    assert_eq!(code, 0, "gc: {gc:#}\npushes:\n{pushes}");
    let deleted: Vec<&str> = gc["blobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["digest"].as_str().unwrap())
        .collect();
    for b in &blobs {
        assert!(deleted.contains(&b.as_str()), "{b} not deleted: {gc:#}");
    }
    assert!(gc["bytes"].as_u64().unwrap() > 3_000_000, "{gc:#}");
    assert_eq!(gc["rolls"].as_array().unwrap().len(), 2, "{gc:#}");
    lab.ssh_ok(
        reg,
        &format!("for f in {blob_files}; do test ! -e $f; done"),
    );

    // The read-only window refused some pushes; every push reported done pulls back whole.
    let pushed: Vec<&str> = pushes
        .lines()
        .filter_map(|l| l.strip_prefix("pushed "))
        .collect();
    let refused = pushes.lines().filter(|l| l.starts_with("refused ")).count();
    assert!(refused > 0, "no push met the read-only window:\n{pushes}");
    assert!(!pushed.is_empty(), "no push succeeded:\n{pushes}");
    let pulls = pushed
        .iter()
        .map(|i| format!("docker rmi -f {REPO}-during:{i} >/dev/null && docker pull -q {REPO}-during:{i} >/dev/null"))
        .collect::<Vec<_>>()
        .join(" && ");
    lab.ssh_ok(
        reg,
        &format!("{login} && docker rmi -f {REPO}:keep >/dev/null && docker pull -q {REPO}:keep >/dev/null && {pulls}"),
    );

    // Read-only is lifted (the smoke test pushes) and nothing is left to converge.
    let (code, verified) = run_json(&inv, &["verify"]);
    assert_eq!(code, 0, "verify after gc: {verified:#}");
    let (code, plan) = run_json(&inv, &["plan"]);
    assert_eq!(code, 0, "plan after gc: {plan:#}");
}

/// A gc cut off in its sweep (its command's timeout, a lost connection) leaves the replicas
/// read-only and its collector sweeping. `apply`, the documented way back, refuses to lift
/// read-only while the collector is on the host, and names it; once it is gone, apply lifts it.
#[test]
fn apply_keeps_read_only_while_the_collector_runs() {
    let lab = TestLab::up("gc-cut", 2);
    let inv = lab.lab.inventory_path.clone();
    let (code, applied) = run_json(&inv, &["apply"]);
    assert_eq!(code, 0, "apply: {applied:#}");
    // What the cut-off gc left: config.yml as its read-only roll wrote it (here: one line
    // more), and the collector running (the registry image with the host's files).
    let marker = "# read-only while gc sweeps";
    let image = regboot::lab::REGISTRY_IMAGE;
    lab.root_script(
        "host1",
        &format!(
            "set -e; b=/etc/regboot/registry; echo '{marker}' >>$b/config.yml
             docker run -d --name regboot-gc -v $b/config.yml:/etc/docker/registry/config.yml:ro \
               -v $b/certs:/certs:ro -v $b/auth:/auth:ro -v /var/lib/regboot/registry:/var/lib/registry \
               {image} >/dev/null
             sleep 1; test \"$(docker inspect -f '{{{{.State.Running}}}}' regboot-gc)\" = true"
        ),
    );

    let (code, report) = run_json(&inv, &["apply"]);
    assert_ne!(code, 0, "apply lifted read-only: {report:#}");
    let error = host_error(&report, "host1").unwrap_or_default();
    assert!(
        error.contains("container regboot-gc") && error.contains("read-only"),
        "{report:#}"
    );
    lab.root_script(
        "host1",
        &format!(
            "grep -qx '{marker}' /etc/regboot/registry/config.yml && docker inspect regboot-gc >/dev/null"
        ),
    );

    lab.root_script("host1", "docker rm -f regboot-gc >/dev/null");
    let (code, report) = run_json(&inv, &["apply"]);
    assert_eq!(code, 0, "apply once the collector is gone: {report:#}");
    lab.root_script(
        "host1",
        &format!("! grep -q '{marker}' /etc/regboot/registry/config.yml"),
    );
}
