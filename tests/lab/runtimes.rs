//! Trust for every container runtime, end to end on the runtimes lab (host1 the registry and
//! host2 an agent with docker, host3 an agent with containerd only, host4 one with podman
//! only), on Debian bookworm (containerd 1.6, podman 4.3) and trixie (containerd 1.7, podman
//! 5). The OS trust store is left out, so each runtime trusts the registry only through the
//! files regboot placed for it: apply's smoke test pulls through docker, ctr and podman with
//! TLS verified and no insecure setting; containerd, whose CRI config_path was unset, is
//! restarted once and never again; without a runtime's files its pull fails and `certs check`
//! names the host; a CA rotation fails no ctr pull on the containerd-only host; reset takes
//! out what regboot placed for each runtime (bookworm only: the rotation and reset).
//! containerd pulls through its CRI image service, the path kubelet takes, where the login user
//! may open its socket. A third lab puts containerd 2.x on host3 (trixie, containerd from
//! Debian unstable) and runs all of it, the rotation with a CRI pull loop and the reset too.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::support::cli::{changes, json_of, regboot, run_json};
use crate::support::lab::TestLab;
use regboot::lab::{ContainerdLine, LabOptions, Profile, Release};
use regboot::runtime_api::Auth;
use regboot::runtime_api::cri::{CONTAINERD_SOCKET, Cri};
use regboot::ssh::Session;
use serde_json::Value;

const HOSTS_TOML: &str = "/etc/containerd/certs.d/registry.lab:5000/hosts.toml";

/// (host, action) of every smoke line, each asserted ok.
fn smoke_pulls(report: &Value) -> Vec<(String, String)> {
    let smoke = report["smoke"].as_array().expect("smoke results");
    assert!(smoke.iter().all(|s| s["ok"] == true), "smoke: {smoke:#?}");
    let mut pulls: Vec<(String, String)> = smoke
        .iter()
        .filter(|s| s["action"].as_str().unwrap().ends_with("pull"))
        .map(|s| {
            let field = |k: &str| s[k].as_str().unwrap().to_string();
            (field("host"), field("action"))
        })
        .collect();
    pulls.sort();
    pulls
}

/// The smoke row of `host`'s `action`.
fn smoke_row<'a>(report: &'a Value, host: &str, action: &str) -> &'a Value {
    report["smoke"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["host"] == host && s["action"] == action)
        .unwrap_or_else(|| panic!("no {action} on {host}: {report:#}"))
}

/// When containerd last started on `host` (systemd's monotonic timestamp).
fn containerd_started(lab: &TestLab, host: &str) -> String {
    lab.root_script(
        host,
        "systemctl show containerd -p ActiveEnterTimestampMonotonic --value",
    )
}

/// A bounded background `ctr pull` loop on host3 through regboot's hosts.toml (at most 400
/// pulls, or until told to stop), each outcome logged on the host. The lab user's password
/// is in a root-only file; in this test-only loop it goes on ctr's command line.
const LOOP: &str = r#"img=registry.lab:5000/loop:1; log=/tmp/pull-loop.log
rm -f "$log" /tmp/pull-loop.stop
n=0
while [ "$n" -lt 400 ] && [ ! -e /tmp/pull-loop.stop ]; do
  if out=$(ctr -n loop images pull --hosts-dir /etc/containerd/certs.d --user "lab:$(cat /root/lab-password)" "$img" 2>&1); then
    echo ok; else echo "FAIL $(date +%T.%N) $out"; fi >>"$log"
  ctr -n loop images rm "$img" >/dev/null 2>&1
  n=$((n+1)); sleep 0.3
done
echo done >>"$log"
"#;

/// A bounded CRI pull loop on host3, as kubelet pulls (PullImage with the lab user's
/// credential in the request, then RemoveImage), from this process over SSH to containerd's
/// socket: at most 400 pulls, or until `stop`. Returns (successful pulls, failures).
fn cri_loop(
    lab: &TestLab,
    password: &str,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<(usize, Vec<String>)> {
    let target = lab.lab.target(lab.host("host3"));
    let password = password.to_string();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
        runtime.block_on(async {
            let session = Session::connect(&target).await.expect("SSH to host3");
            let mut cri = Cri::connect(&session, CONTAINERD_SOCKET)
                .await
                .expect("the CRI on host3");
            let (mut ok, mut failed) = (0, Vec::new());
            let started = Instant::now();
            for _ in 0..400 {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let auth = Auth {
                    username: "lab",
                    password: &password,
                    registry: "registry.lab:5000",
                };
                match cri.pull("registry.lab:5000/loop:1", Some(auth)).await {
                    Ok(_) => ok += 1,
                    Err(e) => {
                        failed.push(format!("at {:.1} s: {e}", started.elapsed().as_secs_f64()))
                    }
                }
                let _ = cri.remove("registry.lab:5000/loop:1").await;
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            (ok, failed)
        })
    })
}

/// Stop the loop on host3 and return (successful pulls, failures).
fn finish_loop(lab: &TestLab) -> (usize, Vec<String>) {
    lab.root_script("host3", "touch /tmp/pull-loop.stop");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let log = lab.root_script("host3", "cat /tmp/pull-loop.log");
        if log.lines().any(|l| l == "done") {
            let ok = log.lines().filter(|l| *l == "ok").count();
            let failed = log
                .lines()
                .filter(|l| l.starts_with("FAIL"))
                .map(String::from);
            return (ok, failed.collect());
        }
        assert!(
            Instant::now() < deadline,
            "the pull loop did not stop: {log}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn every_runtime_trusts_the_registry(
    test: &str,
    release: Release,
    containerd: ContainerdLine,
    rotate: bool,
) {
    let started = Instant::now();
    let lab = TestLab::up_options(
        test,
        LabOptions {
            profile: Profile::Runtimes,
            release,
            containerd,
            ..LabOptions::default()
        },
    );
    eprintln!("{test}: lab up in {:.1} s", started.elapsed().as_secs_f64());
    let version = lab.root_script("host3", "containerd --version");
    eprintln!("{test}: host3 runs {version}");
    if containerd == ContainerdLine::Two {
        assert!(version.contains(" 2."), "{version}");
    }
    let inv = lab.lab.inventory_path.clone();
    let text = std::fs::read_to_string(&inv).unwrap();
    assert!(text.ends_with("tls:\n  mode: self-signed\n"), "{text}");
    std::fs::write(&inv, format!("{text}  os_trust_store: false\n")).unwrap();
    assert!(
        lab.ssh(lab.host("host3"), "command -v dockerd docker")
            .stdout
            .is_empty(),
        "host3 has docker"
    );
    let before = containerd_started(&lab, "host3");
    let original_config = lab.root_script("host3", "cat /etc/containerd/config.toml");

    let started = Instant::now();
    let (code, report) = run_json(&inv, &["apply"]);
    eprintln!(
        "{test}: first apply in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(code, 0, "{report:#}");
    // host2 pushed with docker; every runtime of every host pulled. containerd's CRI plugin
    // is on (Debian's config.toml), so containerd pulls through the CRI image service, over
    // SSH to its socket, where the login user may open it (root: host1, host3); host2 logs in
    // as ops, who may not, and pulls with ctr.
    let pulls: Vec<(&str, &str)> = vec![
        ("host1", "cri pull"),
        ("host1", "pull"),
        ("host2", "ctr pull"),
        ("host3", "cri pull"),
        ("host4", "podman pull"),
    ];
    let got = smoke_pulls(&report);
    let got: Vec<(&str, &str)> = got.iter().map(|(h, a)| (h.as_str(), a.as_str())).collect();
    assert_eq!(got, pulls);
    // containerd's CRI config_path was unset on host3: set, and containerd restarted once.
    let restarts: Vec<(String, String)> = changes(&report)
        .into_iter()
        .filter(|(_, c)| c.starts_with("RESTART containerd"))
        .collect();
    assert!(restarts.iter().any(|(h, _)| h == "host3"), "{restarts:?}");
    assert!(!restarts.iter().any(|(h, _)| h == "host4"), "{restarts:?}");
    let after = containerd_started(&lab, "host3");
    assert_ne!(before, after, "containerd on host3 was not restarted");
    let config = lab.root_script("host3", "cat /etc/containerd/config.toml");
    assert!(
        config.contains("config_path = \"/etc/containerd/certs.d\""),
        "{config}"
    );
    // TLS is verified everywhere: no insecure setting in any runtime's config.
    for host in ["host1", "host2", "host3", "host4"] {
        let found = lab.root_script(
            host,
            "grep -rlE '^[^#]*(skip_verify|insecure *= *true|insecure-registries|plain.http)' \
             /etc/containerd /etc/containers /etc/docker 2>/dev/null || true",
        );
        assert_eq!(found, "", "{host}: an insecure setting");
    }
    let hosts_toml = lab.root_script("host3", &format!("cat {HOSTS_TOML}"));
    assert!(
        hosts_toml.contains("ca = [\"/etc/containerd/certs.d/registry.lab:5000/ca.crt\"]"),
        "{hosts_toml}"
    );

    // The probe reads dockerd through its API where the login user may open the socket
    // (root on host1): without the docker CLI it still finds the engine running there; ops on
    // host2 reads it with `docker info` as root, which then finds none.
    let cli = "/usr/bin/docker";
    for host in ["host1", "host2"] {
        lab.root_script(host, &format!("mv {cli} {cli}.away"));
    }
    let (code, facts) = run_json(&inv, &["facts", "--limit", "host1,host2"]);
    for host in ["host1", "host2"] {
        lab.root_script(host, &format!("mv {cli}.away {cli}"));
    }
    assert_eq!(code, 0, "{facts:#}");
    let running: Vec<(&str, bool)> = facts["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            let docker = &h["facts"]["docker"];
            (h["host"].as_str().unwrap(), docker["running"] == true)
        })
        .collect();
    assert_eq!(running, [("host1", true), ("host2", false)], "{facts:#}");

    // Converged: plan exits 0, a second apply changes and restarts nothing; -v says once why
    // host2 pushes with docker's commands and once why it pulls with ctr (host1's docker pull
    // goes through dockerd's API).
    let out = regboot(&inv, &["plan"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let out = regboot(&inv, &["apply", "-v", "-o", "json"]);
    let (code, again) = json_of(&["apply"], &out);
    assert_eq!(code, 0, "{again:#}");
    assert!(changes(&again).is_empty(), "{:?}", changes(&again));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let said: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("the smoke test runs"))
        .collect();
    assert!(
        said.len() == 2
            && said[0].contains("host2: the smoke test runs `docker load` and `docker push`")
            && said[1].contains("host2: the smoke test runs `ctr pull`")
            && said.iter().all(|l| l.contains("could not open")),
        "{stderr}"
    );
    assert_eq!(containerd_started(&lab, "host3"), after, "restarted again");

    // The trust is each runtime's own files: without them, that runtime's pull fails. (Without
    // hosts.toml, containerd still trusts the `*.crt` beside it: the directory goes.)
    lab.root_script(
        "host3",
        "mv /etc/containerd/certs.d/registry.lab:5000 /root/certs.d.away",
    );
    lab.root_script(
        "host4",
        "mv /etc/containers/certs.d/registry.lab:5000/ca.crt /root/ca.away",
    );
    // certs check sees every runtime's CA copies: those two hosts miss one (exit 2: invalid).
    let (code, check) = run_json(&inv, &["certs", "check"]);
    assert_eq!(code, 2, "{check:#}");
    let cas: Vec<(&str, &str)> = check["certificates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["name"].as_str().unwrap(), r["status"].as_str().unwrap()))
        .filter(|(n, _)| n.starts_with("ca@"))
        .collect();
    for (name, status) in cas {
        let broken = name == "ca@host3" || name == "ca@host4";
        assert_eq!(status == "valid", !broken, "{check:#}");
    }
    let (code, broken) = run_json(&inv, &["verify"]);
    assert_eq!(code, 1, "{broken:#}");
    // Results come in as pulls finish: sorted, they name the two hosts.
    let mut failed: Vec<&str> = broken["smoke"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["ok"] == false)
        .map(|s| s["host"].as_str().unwrap())
        .collect();
    failed.sort();
    assert_eq!(failed, ["host3", "host4"], "{broken:#}");
    // host3's CRI pull, which passed with hosts.toml, now fails on the certificate: it is
    // the CRI plugin's own trust (config_path), with the OS trust store out of it.
    let cri = smoke_row(&broken, "host3", "cri pull");
    assert!(
        cri["ok"] == false && cri["detail"].as_str().unwrap().contains("x509"),
        "{cri:#}"
    );
    eprintln!(
        "{test}: host3's CRI pull without hosts.toml: {}",
        cri["detail"]
    );
    let (code, repaired) = run_json(&inv, &["apply"]);
    assert_eq!(code, 0, "{repaired:#}");
    assert_eq!(
        containerd_started(&lab, "host3"),
        after,
        "a repair restarted"
    );

    if !rotate {
        return;
    }
    // A CA rotation while host3 pulls through ctr and through the CRI in loops: no pull
    // fails, no restart.
    let password = std::fs::read_to_string(&lab.lab.password_path).unwrap();
    let password = password.trim();
    lab.root_script(
        "host2",
        &format!(
            "tar cf - -T /dev/null | docker import - registry.lab:5000/loop:1 >/dev/null\n\
             echo '{password}' | docker login -u lab --password-stdin registry.lab:5000 >/dev/null\n\
             docker push -q registry.lab:5000/loop:1 >/dev/null"
        ),
    );
    lab.root_script(
        "host3",
        &format!(
            "umask 077; echo '{password}' > /root/lab-password\n\
             cat > /tmp/pull-loop.sh <<'EOF'\n{LOOP}EOF\n\
             nohup sh /tmp/pull-loop.sh >/dev/null 2>&1 </dev/null &"
        ),
    );
    let stop = Arc::new(AtomicBool::new(false));
    let cri_pulls = cri_loop(&lab, password, stop.clone());
    let (code, runs) = run_json(&inv, &["rotate", "--ca"]);
    stop.store(true, Ordering::Relaxed);
    assert_eq!(code, 0, "{runs:#}");
    for run in runs["runs"].as_array().unwrap() {
        smoke_pulls(&run["report"]);
    }
    let (cri_ok, cri_failed) = cri_pulls.join().expect("the CRI pull loop");
    assert!(
        cri_failed.is_empty(),
        "CRI pulls failed during rotate --ca: {cri_failed:#?}"
    );
    // Each loop pulls about 2.5 times a second while the rotation runs (3-4 s here now).
    assert!(cri_ok >= 5, "only {cri_ok} CRI pulls");
    eprintln!("{test}: {cri_ok} CRI pulls during rotate --ca, none failed");
    let (ok, failed) = finish_loop(&lab);
    assert!(
        failed.is_empty(),
        "ctr pulls failed during rotate --ca: {failed:#?}"
    );
    assert!(ok >= 5, "only {ok} pulls");
    eprintln!("{test}: {ok} ctr pulls during rotate --ca, none failed");
    assert_eq!(containerd_started(&lab, "host3"), after, "rotate restarted");

    // reset takes out what regboot placed for each runtime, config_path included.
    let (code, reset) = run_json(&inv, &["reset", "--yes"]);
    assert_eq!(code, 0, "{reset:#}");
    let config = lab.root_script("host3", "cat /etc/containerd/config.toml");
    assert_eq!(config, original_config);
    lab.root_script("host3", "! test -e /etc/containerd/certs.d");
    lab.root_script("host4", "! test -e /etc/containers/certs.d");
}

#[test]
fn every_runtime_trusts_the_registry_on_bookworm() {
    every_runtime_trusts_the_registry(
        "rt-bookworm",
        Release::Bookworm,
        ContainerdLine::Release,
        true,
    );
}

#[test]
fn every_runtime_trusts_the_registry_on_trixie() {
    every_runtime_trusts_the_registry("rt-trixie", Release::Trixie, ContainerdLine::Release, false);
}

/// host3 runs containerd 2.x (Debian unstable's, on trixie): it migrates the version-2
/// config.toml and reads the CRI plugin's config_path in `io.containerd.cri.v1.images`.
#[test]
fn every_runtime_trusts_the_registry_on_containerd_2() {
    every_runtime_trusts_the_registry("rt-ctrd2", Release::Trixie, ContainerdLine::Two, true);
}
