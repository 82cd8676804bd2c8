//! Certificate lifecycle end to end against the lab: `certs check -i` reading what hosts
//! serve and hold, `rotate --leaf`, `rotate --ca` (killed after stage 1 and resumed), an
//! expired leaf renewed by `apply`, and `certs import` recovering a lost state directory —
//! while an agent pulls every 0.5 s and must never fail.
//!
//! Two registry hosts (host1, host2) and one agent (host3). Until HA (VIP + nginx) is in the
//! lab, the agent reaches both replicas the way DNS round robin would: its /etc/hosts maps
//! registry.lab to host1 (regboot's block) and, on a line of the test's own, to host2;
//! dockerd dials the next address when one refuses. The inventory declares the filesystem
//! storage shared; the test copies the pulled image's files from host1 to host2, standing
//! in for shared storage.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::cli::{assert_smoke_passed, regboot, run_json};
use crate::support::lab::TestLab;
use regboot::lab::LabHost;

pub(crate) const IMAGE: &str = "registry.lab:5000/rotate-lab/pull:1";
/// On the volume every lab host mounts: storage the two replicas really share.
const DATA_DIR: &str = "/srv/regboot-shared/registry";

/// `certs check -i`: exit code and (name, status) of every row.
fn certs_check(inventory: &Path) -> (i32, Vec<(String, String)>) {
    let (code, v) = run_json(inventory, &["certs", "check"]);
    let rows = v["certificates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["name"].as_str().unwrap().to_string(),
                r["status"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    (code, rows)
}

/// A bounded background loop on an agent: `docker pull` every 0.5 s (at most `MAX` times, or
/// until told to stop), each outcome logged on the host.
pub(crate) struct PullLoop<'a> {
    lab: &'a TestLab,
    host: &'a str,
}

pub(crate) const LOOP: &str = r#"img=$1; max=$2; log=/tmp/pull-loop.log
rm -f "$log" /tmp/pull-loop.stop
n=0
while [ "$n" -lt "$max" ] && [ ! -e /tmp/pull-loop.stop ]; do
  if out=$(docker pull -q "$img" 2>&1); then echo ok; else echo "FAIL $(date +%T.%N) $out"; fi >>"$log"
  n=$((n+1)); sleep 0.5
done
echo done >>"$log"
"#;
const MAX_PULLS: u32 = 600;

impl<'a> PullLoop<'a> {
    pub(crate) fn start(lab: &'a TestLab, host: &'a str, script: &Path) -> PullLoop<'a> {
        let h = lab.host(host);
        let out = lab.ssh_with_stdin(h, "cat > /tmp/pull-loop.sh", Some(script));
        assert!(out.status.success(), "{out:?}");
        lab.ssh_ok(
            h,
            &format!("nohup sh /tmp/pull-loop.sh {IMAGE} {MAX_PULLS} >/dev/null 2>&1 </dev/null &"),
        );
        PullLoop { lab, host }
    }

    /// Stop the loop and return (successful pulls, failures).
    pub(crate) fn finish(self) -> (usize, Vec<String>) {
        let h = self.lab.host(self.host);
        self.lab.ssh_ok(h, "touch /tmp/pull-loop.stop");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let log = self.lab.ssh_ok(h, "cat /tmp/pull-loop.log");
            if log.lines().any(|l| l == "done") {
                let ok = log.lines().filter(|l| *l == "ok").count();
                let failed = log
                    .lines()
                    .filter(|l| l.starts_with("FAIL"))
                    .map(String::from)
                    .collect();
                return (ok, failed);
            }
            assert!(
                Instant::now() < deadline,
                "the pull loop did not stop: {log}"
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

/// Two registry replicas on shared storage; the agent reaches both; a pushed image.
fn set_up(lab: &TestLab, dir: &Path) -> PathBuf {
    let inv = lab.lab.inventory_path.clone();
    let text = std::fs::read_to_string(&inv)
        .unwrap()
        .replace(
            "user: ops\n    roles: [agent]",
            "user: ops\n    roles: [registry]",
        )
        .replace(
            "  users:\n",
            &format!(
                "  data_dir: {DATA_DIR}\n  storage:\n    driver: filesystem\n    shared: true\n  users:\n"
            ),
        );
    assert!(
        text.contains("roles: [registry]\n  - name: host3"),
        "{text}"
    );
    std::fs::write(&inv, text).unwrap();
    // The agent reaches both replicas by name (regboot's block names host1; this line host2).
    // Written before apply, since dockerd's resolver keeps /etc/hosts cached for ~5 s.
    let agent = lab.host("host3");
    lab.ssh_ok(
        agent,
        &format!(
            "echo '{} registry.lab' >> /etc/hosts",
            lab.host("host2").address
        ),
    );
    let (code, report) = run_json(&inv, &["apply"]);
    assert_eq!(code, 0, "{report:#}");

    push_image(lab, agent);
    // Either replica alone serves the image. The registry port is nginx's (the front the
    // container rolls behind): stopping it makes the replica refuse, and dockerd dials the other.
    for stopped in ["host1", "host2"] {
        let h = lab.host(stopped);
        lab.ssh_ok(h, "sudo -n systemctl stop nginx");
        lab.ssh_ok(agent, &format!("docker pull -q {IMAGE}"));
        // Listening again before the other one stops (bounded: 10 s).
        lab.ssh_ok(
            h,
            "sudo -n systemctl start nginx && for i in $(seq 50); do \
             bash -c 'echo > /dev/tcp/127.0.0.1/5000' 2>/dev/null && exit 0; sleep 0.2; done; exit 1",
        );
    }
    let script = dir.join("pull-loop.sh");
    std::fs::write(&script, LOOP).unwrap();
    inv
}

/// Make the registry certificate in use expired, as if its end had passed: the state
/// directory's copy and the one nginx serves on each registry host (the config set the
/// backend file names) are replaced by the same certificate issued again, already expired
/// (same names, same key, same CA); nginx reloads.
fn expire_the_leaf(lab: &TestLab, state: &Path) {
    let read = |f: &str| std::fs::read_to_string(state.join(f)).unwrap();
    let (ca, cert) = (read("ca.crt"), read("registry.crt"));
    let expired =
        crate::support::tls::expired_copy(&cert, &read("registry.key"), &ca, &read("ca.key"));
    let chain = regboot::pki::leaf::chain_pem(&expired, &ca);
    std::fs::write(state.join("registry.crt"), &expired).unwrap();
    std::fs::write(state.join("registry-chain.crt"), &chain).unwrap();
    for host in ["host1", "host2"] {
        lab.root_script(
            host,
            &format!(
                "set -eu
                 d=$(sed -n 's|^ssl_certificate \\(.*\\)/registry-chain.crt;$|\\1|p' /etc/nginx/regboot-backend.conf)
                 test -n \"$d\"
                 cat > \"$d/registry-chain.crt\" <<'EOF'\n{chain}EOF
                 nginx -t -q && systemctl reload nginx"
            ),
        );
    }
}

/// `regboot certs import` of a CA backup; it must succeed.
fn import_ca(inv: &Path, cert: &Path, key: &Path) {
    let out = regboot(
        inv,
        &[
            "certs",
            "import",
            "--ca-cert",
            cert.to_str().unwrap(),
            "--ca-key",
            key.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{out:?}");
}

/// Every CA file on a host (certs.d and the trust store's regboot anchors), concatenated.
pub(crate) fn ca_files(lab: &TestLab, host: &str) -> String {
    lab.ssh_ok(
        lab.host(host),
        "ls /etc/docker/certs.d/*/ /usr/local/share/ca-certificates/; \
         cat /etc/docker/certs.d/*/*.crt /usr/local/share/ca-certificates/regboot-ca*.crt",
    )
}

/// Log `agent` in as the lab user and push a one-file image as [`IMAGE`].
pub(crate) fn push_image(lab: &TestLab, agent: &LabHost) {
    let password = lab.lab.dir.join("registry-password");
    let login = lab.ssh_with_stdin(
        agent,
        "docker login -u lab --password-stdin registry.lab:5000",
        Some(&password),
    );
    assert!(login.status.success(), "{login:?}");
    lab.ssh_ok(
        agent,
        &format!(
            "echo x > /tmp/x && tar -C /tmp -cf - x \
             | docker import - {IMAGE} >/dev/null && docker push {IMAGE} >/dev/null"
        ),
    );
}

#[test]
fn certificates_rotate_without_a_failed_pull() {
    let lab = TestLab::up("rotate", 3);
    let tmp = tempfile::tempdir().unwrap();
    let inv = set_up(&lab, tmp.path());
    let state = inv.parent().unwrap().join(".regboot");
    let script = tmp.path().join("pull-loop.sh");

    let (code, rows) = certs_check(&inv);
    assert_eq!(code, 0, "{rows:?}");
    for name in [
        "served@host1",
        "served@host2",
        "served@registry.lab:5000",
        "ca@host3",
    ] {
        assert!(
            rows.iter().any(|(n, s)| n == name && s == "valid"),
            "{rows:?}"
        );
    }

    // A short-lived leaf: check names it (exit 1); rotate --leaf fixes it, no pull fails.
    let out = regboot(&inv, &["rotate", "--leaf", "--cert-validity", "10m"]);
    assert!(out.status.success(), "{out:?}");
    let (code, rows) = certs_check(&inv);
    assert_eq!(code, 1, "{rows:?}");
    for name in ["registry", "served@host1", "served@host2"] {
        assert!(
            rows.contains(&(name.into(), "expires-soon".into())),
            "{rows:?}"
        );
    }
    let pulls = PullLoop::start(&lab, "host3", &script);
    let (code, runs) = run_json(&inv, &["rotate", "--leaf"]);
    assert_eq!(code, 0, "{runs:#}");
    assert_smoke_passed(&runs["runs"][0]["report"]);
    let (code, rows) = certs_check(&inv);
    assert_eq!(code, 0, "{rows:?}");
    let (ok, failed) = pulls.finish();
    assert!(
        failed.is_empty(),
        "pulls failed during rotate --leaf: {failed:#?}"
    );
    assert!(ok >= 4, "only {ok} pulls");

    // Plans change nothing: stage 1 as the hosts call for it, stage 3 as if 1 and 2 had run.
    let listing = |dir: &Path| {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    };
    let before = listing(&state);
    let out = regboot(&inv, &["rotate", "--ca", "--plan"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("would change: write /etc/docker/certs.d/registry.lab:5000/ca-next.crt"),
        "{text}"
    );
    let out = regboot(&inv, &["rotate", "--ca", "--plan", "--stage", "3"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("=== stage 3"), "{text}");
    assert!(
        text.contains("would change: write /etc/regboot/registry/certs/registry-chain.crt"),
        "{text}"
    );
    assert_eq!(
        listing(&state),
        before,
        "a plan changed the state directory"
    );
    assert!(!ca_files(&lab, "host3").contains("ca-next"));

    // A CA rotation, killed once stage 1 completed, then resumed: no pull fails.
    let old_ca = std::fs::read_to_string(state.join("ca.crt")).unwrap();
    let old_body: String = old_ca.lines().nth(1).unwrap().to_string();
    let pulls = PullLoop::start(&lab, "host3", &script);
    let mut child = Command::new(env!("CARGO_BIN_EXE_regboot"))
        .args(["rotate", "--ca", "-i"])
        .arg(&inv)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut seen = Vec::new();
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        let done = line.starts_with("stage 1 ") && line.ends_with(" complete");
        seen.push(line);
        if done {
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let seen = seen.join("\n");
    assert!(
        seen.contains("stage 1 (trust the old and the next CA on every host) complete"),
        "{seen}"
    );
    assert!(!seen.contains("FAILED"), "{seen}");
    assert!(ca_files(&lab, "host3").contains("ca-next.crt"));

    let (code, runs) = run_json(&inv, &["rotate", "--ca"]);
    assert_eq!(code, 0, "{runs:#}");
    let stages: Vec<&str> = runs["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["stage"].as_str().unwrap())
        .collect();
    assert_eq!(stages, ["2", "3"], "resumes at stage 2: {runs:#}");
    for run in runs["runs"].as_array().unwrap() {
        assert_smoke_passed(&run["report"]);
    }
    let (ok, failed) = pulls.finish();
    assert!(
        failed.is_empty(),
        "pulls failed during rotate --ca: {failed:#?}"
    );
    assert!(ok >= 10, "only {ok} pulls");
    for host in ["host1", "host2", "host3"] {
        let files = ca_files(&lab, host);
        assert!(
            !files.contains(&old_body),
            "{host} still holds the old CA:\n{files}"
        );
        assert!(
            !files.contains("ca-previous") && !files.contains("ca-next"),
            "{files}"
        );
    }
    let (code, rows) = certs_check(&inv);
    assert_eq!(code, 0, "{rows:?}");
    let archive: Vec<String> = std::fs::read_dir(state.join("archive"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    for suffix in [
        "-ca.crt",
        "-ca.key",
        "-ca-previous.crt",
        "-registry.crt",
        "-registry.key",
    ] {
        assert!(archive.iter().any(|n| n.ends_with(suffix)), "{archive:?}");
    }
    // Nothing left to do: a rotation that is complete runs no stage 3 again.
    let out = regboot(&inv, &["rotate", "--ca", "--stage", "3"]);
    assert!(!out.status.success(), "{out:?}");

    // An expired leaf: pulls fail, check says 2, apply notices and fixes it. The certificate
    // in place is issued again, already expired, and put where the last roll left it.
    let started = Instant::now();
    expire_the_leaf(&lab, &state);
    let deadline = Instant::now() + Duration::from_secs(20);
    let rows = loop {
        let (code, rows) = certs_check(&inv);
        let served_expired = ["served@host1", "served@host2"]
            .iter()
            .all(|n| rows.contains(&(n.to_string(), "expired".into())));
        if (code == 2 && served_expired) || Instant::now() > deadline {
            assert_eq!(code, 2, "{rows:?}");
            break rows;
        }
        std::thread::sleep(Duration::from_millis(300));
    };
    assert!(
        rows.contains(&("served@host1".into(), "expired".into())),
        "{rows:?}"
    );
    println!(
        "the leaf expired in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let pull = lab.ssh(lab.host("host3"), &format!("docker pull -q {IMAGE}"));
    assert!(
        !pull.status.success(),
        "a pull with an expired certificate succeeded"
    );
    let (code, report) = run_json(&inv, &["apply"]);
    assert_eq!(code, 0, "{report:#}");
    let notes = report["notes"].to_string();
    assert!(
        notes.contains("issued the registry certificate: expired on"),
        "{notes}"
    );
    assert_smoke_passed(&report);
    assert_eq!(certs_check(&inv).0, 0);

    // A lost state directory, recovered from a CA backup: clients keep their CA files.
    let backup = tmp.path().join("backup");
    std::fs::create_dir(&backup).unwrap();
    for f in ["ca.crt", "ca.key"] {
        std::fs::copy(state.join(f), backup.join(f)).unwrap();
    }
    std::fs::remove_dir_all(&state).unwrap();
    import_ca(&inv, &backup.join("ca.crt"), &backup.join("ca.key"));
    let (code, report) = run_json(&inv, &["apply"]);
    assert_eq!(code, 0, "{report:#}");
    assert_smoke_passed(&report);
    let text = report.to_string();
    assert!(
        !text.contains("certs.d/registry.lab:5000/ca.crt"),
        "clients changed: {report:#}"
    );
    assert_eq!(certs_check(&inv).0, 0);

    // A CA that expires (adopted, deployed, then past its end): pulls fail; rotate --ca says
    // so, tolerates stage 1's failing smoke test and ends with pulls working.
    // apply never swaps the CA the hosts trust (it stops and says why, see tests/lab/engine.rs): a
    // cluster set up with this CA is one whose hosts trust no regboot CA yet (containerd,
    // which docker.io brings, holds copies too).
    for h in ["host1", "host2", "host3"] {
        lab.ssh_ok(
            lab.host(h),
            "sudo -n sh -c 'rm -rf /etc/docker/certs.d /etc/containerd/certs.d \
             /usr/local/share/ca-certificates/regboot-ca*.crt \
             && update-ca-certificates >/dev/null 2>&1'",
        );
    }
    let ca_lifetime = Duration::from_secs(45);
    let (cert, key) = short_lived_ca(ca_lifetime);
    let made = Instant::now();
    std::fs::write(backup.join("short.crt"), cert).unwrap();
    std::fs::write(backup.join("short.key"), key).unwrap();
    std::fs::remove_dir_all(&state).unwrap();
    import_ca(&inv, &backup.join("short.crt"), &backup.join("short.key"));
    let (code, report) = run_json(&inv, &["apply"]);
    assert_eq!(code, 0, "{report:#}");
    std::thread::sleep((ca_lifetime + Duration::from_secs(2)).saturating_sub(made.elapsed()));
    let pull = lab.ssh(lab.host("host3"), &format!("docker pull -q {IMAGE}"));
    assert!(
        !pull.status.success(),
        "a pull through an expired CA succeeded"
    );
    let out = regboot(&inv, &["rotate", "--ca"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("pulls fail until stage 2 completes"),
        "{text}"
    );
    assert!(
        text.contains("stage 3 (remove the old CA from every host) complete"),
        "{text}"
    );
    lab.ssh_ok(lab.host("host3"), &format!("docker pull -q {IMAGE}"));
    let (code, rows) = certs_check(&inv);
    assert_eq!(code, 0, "{rows:?}");
}

/// A CA certificate and key (PEM) valid from an hour ago until `lifetime` from now.
fn short_lived_ca(lifetime: Duration) -> (String, String) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::default();
    params
        .distinguished_name
        .push(DnType::CommonName, "short-lived test CA");
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::hours(1);
    params.not_after = now + lifetime;
    let cert = params.self_signed(&key).unwrap();
    (cert.pem(), key.serialize_pem())
}

/// One layer upload of 256 MiB, sent slowly enough that it runs for a minute, through a
/// `rotate --leaf` that rolls the registry container under it: nginx's old worker keeps it on
/// the old container, which stays until that worker is done, so the upload completes (201)
/// and the blob is there. Prints the figures (size, time, when the roll ended).
#[test]
fn an_upload_in_flight_completes_across_a_leaf_rotation() {
    const SIZE: usize = 256 << 20;
    const RATE: &str = "4M";
    let lab = TestLab::up("roll-upload", 2);
    let inv = lab.lab.inventory_path.clone();
    let (code, applied) = run_json(&inv, &["apply"]);
    assert_eq!(code, 0, "apply: {applied:#}");
    let password = std::fs::read_to_string(lab.lab.dir.join("registry-password")).unwrap();
    let auth = format!("lab:{}", password.trim());
    let ca = inv.parent().unwrap().join(".regboot/ca.crt");
    let resolve = format!("registry.lab:5000:{}", lab.host("host1").address);
    let curl = |args: &[&str]| {
        let out = Command::new("curl")
            .args([
                "-sS",
                "--max-time",
                "600",
                "-D",
                "/dev/stderr",
                "-o",
                "/dev/null",
            ])
            .args(["-w", "%{http_code}", "--cacert"])
            .arg(&ca)
            .args(["--resolve", &resolve, "-u", &auth])
            .args(args)
            .output()
            .unwrap();
        let headers = String::from_utf8_lossy(&out.stderr).into_owned();
        (String::from_utf8_lossy(&out.stdout).into_owned(), headers)
    };

    let dir = tempfile::tempdir().unwrap();
    let blob_path = dir.path().join("layer");
    let blob: Vec<u8> = (0..SIZE as u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 24) as u8)
        .collect();
    std::fs::write(&blob_path, &blob).unwrap();
    let digest = {
        use sha2::Digest;
        format!("sha256:{}", hex::encode(sha2::Sha256::digest(&blob)))
    };
    drop(blob);
    let (status, headers) = curl(&[
        "-X",
        "POST",
        "https://registry.lab:5000/v2/lab/big/blobs/uploads/",
    ]);
    assert_eq!(status, "202", "{headers}");
    let location = headers
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("location")
                .then(|| v.trim().to_string())
        })
        .unwrap_or_else(|| panic!("no Location in {headers}"));
    let url = format!("{location}&digest={digest}");

    let started = Instant::now();
    let upload = std::thread::spawn({
        let curl_path = blob_path.clone();
        let ca = ca.clone();
        let (resolve, auth) = (resolve.clone(), auth.clone());
        move || {
            let out = Command::new("curl")
                .args([
                    "-sS",
                    "--max-time",
                    "600",
                    "-o",
                    "/dev/null",
                    "-w",
                    "%{http_code}",
                ])
                .arg("--cacert")
                .arg(&ca)
                .args(["--resolve", &resolve, "-u", &auth, "--limit-rate", RATE])
                .args(["-H", "Content-Type: application/octet-stream", "-T"])
                .arg(&curl_path)
                .arg(&url)
                .output()
                .unwrap();
            (out, started.elapsed())
        }
    });
    std::thread::sleep(Duration::from_secs(5));
    let (code, rotated) = run_json(&inv, &["rotate", "--leaf"]);
    let rolled_at = started.elapsed();
    assert_eq!(code, 0, "rotate --leaf: {rotated:#}");
    let (out, took) = upload.join().unwrap();
    let status = String::from_utf8_lossy(&out.stdout).into_owned();
    eprintln!(
        "upload of {} MiB at {RATE}/s: HTTP {status} after {:.1} s; rotate --leaf ended {:.1} s \
         after the upload began",
        SIZE >> 20,
        took.as_secs_f64(),
        rolled_at.as_secs_f64()
    );
    assert_eq!(
        status,
        "201",
        "the upload was cut: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        rolled_at + Duration::from_secs(30) < took,
        "the roll must end well before the upload: {rolled_at:?} vs {took:?}"
    );
    let (status, headers) = curl(&[
        "-I",
        &format!("https://registry.lab:5000/v2/lab/big/blobs/{digest}"),
    ]);
    assert_eq!(status, "200", "{headers}");
    // The old container goes once nginx's old worker is done with the upload (in the
    // background: bounded wait).
    let left = lab.root_script(
        "host1",
        "for i in $(seq 100); do \
           [ \"$(docker ps -aq | wc -l)\" = 1 ] && break; sleep 0.3; done; \
         docker ps -a --format '{{.Names}}' | sort",
    );
    assert_eq!(left, "regboot-registry", "{left}");
    // With it went its config set: the one left is the serving container's.
    let sets = lab.root_script(
        "host1",
        "ls /etc/regboot/registry/sets; \
         docker inspect -f '{{index .Config.Labels \"io.regboot.set\"}}' regboot-registry",
    );
    let sets: Vec<&str> = sets.lines().collect();
    assert!(sets.len() == 2 && sets[0] == sets[1], "{sets:?}");
}
