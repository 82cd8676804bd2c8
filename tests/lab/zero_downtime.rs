//! Zero failed requests while the registry rolls, on one registry host (host1; host2 and
//! host3 are agents): while regboot makes each change, host3 pulls every 0.2 s (the image
//! removed first, so blobs travel), host2 pushes a new one-layer image in a loop and probes
//! `https://registry.lab:5000/v2/` with curl every 50 ms. Per operation the test prints the
//! requests made, the failures, the longest gap between two answers and the wall time
//! (`bench/zero-downtime.sh` runs it and keeps the table), and asserts no failure and no probe
//! gap of a second or more. Then, without the loops: a new image that never answers leaves
//! the old container serving (exit 1, nothing left behind), a roll killed midway is finished
//! by the next run, and plan reports no drift.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::support::cli::regboot_env;
use crate::support::lab::TestLab;
use regboot::lab::{LabHost, Profile};

const PULLED: &str = "registry.lab:5000/zd/pull:1";
const PUSHED: &str = "registry.lab:5000/zd/push";

/// Each loop writes `MS ok` or `MS FAIL why` per request to its log, stops at
/// /tmp/zd.stop or after `max` requests, then writes `done`.
const PULL_LOOP: &str = r#"img=$1; max=$2; log=/tmp/zd-pull.log
rm -f "$log"; n=0
while [ "$n" -lt "$max" ] && [ ! -e /tmp/zd.stop ]; do
  docker rmi -f "$img" >/dev/null 2>&1
  if out=$(docker pull -q "$img" 2>&1); then echo "$(date +%s%3N) ok"
  else echo "$(date +%s%3N) FAIL $(echo "$out" | tr '\n' ' ')"; fi >>"$log"
  n=$((n+1)); sleep 0.2
done
echo done >>"$log"
"#;

const PUSH_LOOP: &str = r#"repo=$1; max=$2; log=/tmp/zd-push.log
rm -f "$log"; mkdir -p /tmp/zd-push; n=0
while [ "$n" -lt "$max" ] && [ ! -e /tmp/zd.stop ]; do
  echo "$n $(date +%s%N)" >/tmp/zd-push/x
  tar -C /tmp/zd-push -cf - x | docker import - "$repo:$((n % 4))" >/dev/null
  if out=$(docker push "$repo:$((n % 4))" 2>&1); then echo "$(date +%s%3N) ok"
  else echo "$(date +%s%3N) FAIL $(echo "$out" | tail -n 2 | tr '\n' ' ')"; fi >>"$log"
  n=$((n+1))
done
echo done >>"$log"
"#;

const PROBE_LOOP: &str = r#"max=$1; log=/tmp/zd-probe.log
rm -f "$log"; n=0
while [ "$n" -lt "$max" ] && [ ! -e /tmp/zd.stop ]; do
  # regboot's CA files for the registry (both CAs during a rotation): a small bundle keeps
  # each curl cheap, unlike the whole OS store.
  cat /etc/docker/certs.d/registry.lab:5000/*.crt >/tmp/zd-ca.pem
  out=$(curl -s -o /dev/null -w '%{http_code} %{time_total}' --cacert /tmp/zd-ca.pem \
    --max-time 5 https://registry.lab:5000/v2/ 2>&1) || true
  case $out in
    200\ *|401\ *) echo "$(date +%s%3N) ok ${out#* }" ;;
    *) echo "$(date +%s%3N) FAIL $out" ;;
  esac >>"$log"
  n=$((n+1)); sleep 0.05
done
echo done >>"$log"
"#;

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// An operation's window on the shared clock (lab hosts are containers on this kernel).
pub(crate) struct Window {
    name: String,
    start: u64,
    end: u64,
    /// Loops whose failures in this window are printed, not asserted (a killed registry
    /// loses the upload it was receiving).
    pub tolerated: Vec<&'static str>,
}

/// One loop's outcomes: (ms, ok, line).
type Log = Vec<(u64, bool, String)>;

fn parse(log: &str) -> Log {
    log.lines()
        .filter_map(|l| {
            let (ms, rest) = l.split_once(' ')?;
            Some((
                ms.parse().ok()?,
                rest == "ok" || rest.starts_with("ok "),
                l.to_string(),
            ))
        })
        .collect()
}

/// The longest single request inside `w` (ms), for logs that record each one's time.
fn slowest(log: &Log, w: &Window) -> Option<u64> {
    log.iter()
        .filter(|(t, _, _)| *t >= w.start && *t <= w.end)
        .filter_map(|(_, ok, l)| if *ok { l.split(' ').nth(2) } else { None })
        .filter_map(|secs| secs.parse::<f64>().ok())
        .map(|secs| (secs * 1000.0) as u64)
        .max()
}

/// Requests, failures (lines) and the longest gap (ms) between two answers touching `w`.
fn figures(log: &Log, w: &Window) -> (usize, Vec<String>, u64) {
    let inside: Vec<&(u64, bool, String)> = log
        .iter()
        .filter(|(t, _, _)| *t >= w.start && *t <= w.end)
        .collect();
    let failed = inside
        .iter()
        .filter(|(_, ok, _)| !ok)
        .map(|(_, _, l)| l.clone())
        .collect();
    let answers: Vec<u64> = log.iter().filter(|(_, ok, _)| *ok).map(|e| e.0).collect();
    let gap = answers
        .windows(2)
        .filter(|p| p[1] >= w.start && p[0] <= w.end)
        .map(|p| p[1] - p[0])
        .max()
        .unwrap_or(u64::MAX);
    (inside.len(), failed, gap)
}

fn edit(inv: &Path, f: impl Fn(String) -> String) {
    let text = std::fs::read_to_string(inv).unwrap();
    let new = f(text.clone());
    assert_ne!(text, new, "the inventory edit changed nothing");
    std::fs::write(inv, new).unwrap();
}

/// `cmd` as root on `h` (the lab's `ops` hosts go through sudo).
pub(crate) fn root(h: &LabHost, cmd: &str) -> String {
    if h.user == "root" {
        cmd.to_string()
    } else {
        format!("sudo -n sh -c '{cmd}'")
    }
}

/// The lab and how its hosts play the scenario.
pub(crate) struct Topology<'a> {
    pub lab: &'a TestLab,
    pub registries: Vec<&'a LabHost>,
    /// Pulls every 0.2 s.
    pub puller: &'a LabHost,
    /// Pushes in a loop and probes /v2/ every 50 ms.
    pub pusher: &'a LabHost,
    /// Added to regboot's environment (the HA and swarm labs' S3 keys).
    pub env: Vec<(String, String)>,
}

impl Topology<'_> {
    pub(crate) fn regboot(&self, args: &[&str]) -> Output {
        regboot_env(&self.lab.lab.inventory_path, args, &self.env)
    }

    pub(crate) fn ok(&self, args: &[&str]) -> String {
        let out = self.regboot(args);
        assert!(
            out.status.success(),
            "{args:?}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub(crate) fn assert_no_drift(&self) {
        let out = self.regboot(&["plan"]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
    }

    /// Containers on each registry host, one line each: `host: name status`.
    fn containers(&self) -> Vec<String> {
        self.registries
            .iter()
            .flat_map(|h| {
                self.lab
                    .ssh_ok(
                        h,
                        &root(h, "docker ps -a --format \"{{.Names}} {{.Status}}\" | sort"),
                    )
                    .lines()
                    .map(|l| format!("{}: {l}", h.name))
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// Exactly one container per registry host, `regboot-registry`, running, once the old
    /// one a roll leaves to nginx's old workers has gone (in the background: at most 30 s
    /// here, where no transfer outlives a roll).
    fn assert_one_container_each(&self) {
        let one_each = |listing: &[String]| {
            listing.len() == self.registries.len()
                && listing.iter().all(|l| {
                    l.split_once(": ")
                        .unwrap()
                        .1
                        .starts_with("regboot-registry Up")
                })
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut listing = self.containers();
        while !one_each(&listing) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(500));
            listing = self.containers();
        }
        assert!(one_each(&listing), "{listing:#?}");
    }
}

fn scenario(t: &Topology) {
    let lab = t.lab;
    let inv = lab.lab.inventory_path.clone();
    let tmp = tempfile::tempdir().unwrap();
    t.ok(&["apply"]);
    // Only the container, behind nginx on the registry port.
    t.assert_one_container_each();

    // The second image tag an image change rolls to.
    for h in &t.registries {
        lab.ssh_ok(
            h,
            &root(
                h,
                "docker tag regboot-lab/registry:2.8 regboot-lab/registry:2.8-next",
            ),
        );
    }

    start_loops(t, tmp.path());
    let (puller, password) = (t.puller, lab.lab.dir.join("registry-password"));
    let mut windows = Vec::new();
    let mut measure = |name: &str, op: &mut dyn FnMut()| timed(&mut windows, name, op);
    measure("idle (5 s, no change)", &mut || {
        std::thread::sleep(Duration::from_secs(5))
    });
    measure("rotate --leaf", &mut || {
        let out = t.ok(&["rotate", "--leaf"]);
        assert!(out.contains("roll regboot-registry blue/green"), "{out}");
    });
    measure("config change (delete_enabled: false)", &mut || {
        edit(&inv, |t| {
            t.replace("  port: 5000\n", "  port: 5000\n  delete_enabled: false\n")
        });
        let out = t.ok(&["apply"]);
        assert!(out.contains("(config changed)"), "{out}");
    });
    measure("user change (a second user)", &mut || {
        edit(&inv, |t| {
            t.replace(
                "  users:\n",
                &format!(
                    "  users:\n    - name: second\n      password_file: {}\n",
                    password.display()
                ),
            )
        });
        let out = t.ok(&["apply"]);
        assert!(!out.contains("blue/green"), "a user change rolled:\n{out}");
    });
    measure("image change (registry:2.8 -> 2.8-next)", &mut || {
        edit(&inv, |t| {
            t.lines()
                .filter(|l| !l.trim_start().starts_with("image_archive:"))
                .map(|l| l.replace("regboot-lab/registry:2.8", "regboot-lab/registry:2.8-next"))
                .collect::<Vec<_>>()
                .join("\n")
                + "\n"
        });
        let out = t.ok(&["apply"]);
        assert!(out.contains("(image changed)"), "{out}");
    });
    measure("rotate --ca (three stages)", &mut || {
        t.ok(&["rotate", "--ca"]);
    });
    finish_loops(t, &windows);

    // Plan after the whole sequence: no drift.
    t.assert_no_drift();

    // A new image whose container never answers: the old one keeps serving, exit 1, and
    // nothing is left behind.
    let first = t.registries[0];
    lab.ssh_ok(
        first,
        &root(
            first,
            "docker commit --change \"CMD [\\\"--version\\\"]\" regboot-registry regboot-lab/broken:1 >/dev/null",
        ),
    );
    edit(&inv, |t| {
        t.replace("regboot-lab/registry:2.8-next", "regboot-lab/broken:1")
    });
    let out = t.regboot(&["apply"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("did not answer GET /v2/"), "{text}");
    t.assert_one_container_each();
    lab.ssh_ok(
        puller,
        &root(
            puller,
            &format!("docker rmi -f {PULLED} >/dev/null; docker pull -q {PULLED}"),
        ),
    );
    edit(&inv, |t| {
        t.replace("regboot-lab/broken:1", "regboot-lab/registry:2.8-next")
    });
    t.assert_no_drift();

    // A roll killed once its new container runs: the next apply finishes or undoes it,
    // leaving one container per host, the one nginx passes to.
    edit(&inv, |t| t.replace("  delete_enabled: false\n", ""));
    let mut child = Command::new(env!("CARGO_BIN_EXE_regboot"))
        .env_remove("AWS_CA_BUNDLE")
        .envs(t.env.iter().map(|(k, v)| (k, v)))
        .args(["apply", "-i"])
        .arg(&inv)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(180);
    while !t
        .containers()
        .iter()
        .any(|l| l.contains("regboot-registry-next Up"))
    {
        assert!(
            Instant::now() < deadline,
            "no new container: {:#?}",
            t.containers()
        );
        assert!(child.try_wait().unwrap().is_none(), "apply ended first");
        std::thread::sleep(Duration::from_millis(200));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    // The killed run's last script may still be running on the host: the next run waits for
    // it, then finishes or undoes the roll; when that script finished the roll after this run
    // read the host, it stops and says to run again (nothing changed).
    let out = t.regboot(&["apply"]);
    if !out.status.success() {
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("run again"), "{text}");
        println!(
            "after the kill: {}",
            text.lines()
                .filter(|l| l.contains("run again"))
                .collect::<Vec<_>>()
                .join("\n")
        );
        t.ok(&["apply"]);
    }
    t.assert_one_container_each();
    for h in &t.registries {
        let port = lab.ssh_ok(
            h,
            &root(
                h,
                "docker inspect -f \"{{index .Config.Labels \\\"io.regboot.backend\\\"}}\" regboot-registry",
            ),
        );
        let backend = lab.ssh_ok(h, "cat /etc/nginx/regboot-backend.conf");
        assert!(backend.contains(&format!("127.0.0.1:{port};")), "{backend}");
    }
    t.assert_no_drift();
}

/// The loops of this scenario, started on `t`'s hosts: the puller's image pushed, both logged
/// in, curl installed on the pusher (the host image has none), then the pull, push and probe
/// loops in the background (`tmp` holds their scripts on the way).
pub(crate) fn start_loops(t: &Topology, tmp: &Path) {
    let lab = t.lab;
    let (puller, pusher) = (t.puller, t.pusher);
    let password = lab.lab.dir.join("registry-password");
    for h in [pusher, puller] {
        let login = lab.ssh_with_stdin(
            h,
            &root(
                h,
                "docker login -u lab --password-stdin registry.lab:5000 >/dev/null",
            ),
            Some(&password),
        );
        assert!(login.status.success(), "{login:?}");
    }
    lab.ssh_ok(
        puller,
        &root(
            puller,
            &format!(
                "echo x > /tmp/x && tar -C /tmp -cf - x | docker import - {PULLED} >/dev/null \
                 && docker push {PULLED} >/dev/null"
            ),
        ),
    );
    // The probe's client (the host image has no curl).
    lab.install(&pusher.name, &["curl"]);
    let start = |h: &LabHost, name: &str, script: &str, args: &str| {
        let file = tmp.join(name);
        std::fs::write(&file, script).unwrap();
        let out = lab.ssh_with_stdin(h, &format!("cat > /tmp/{name}"), Some(&file));
        assert!(out.status.success(), "{out:?}");
        lab.ssh_ok(
            h,
            &root(
                h,
                &format!("nohup sh /tmp/{name} {args} >/dev/null 2>&1 </dev/null &"),
            ),
        );
    };
    for h in [pusher, puller] {
        lab.ssh_ok(h, &root(h, "rm -f /tmp/zd.stop"));
    }
    start(puller, "zd-pull.sh", PULL_LOOP, &format!("{PULLED} 5000"));
    start(pusher, "zd-push.sh", PUSH_LOOP, &format!("{PUSHED} 2000"));
    start(pusher, "zd-probe.sh", PROBE_LOOP, "40000");
}

/// Runs `op` as the operation `name` (after 2 s of loops alone), recording its window.
pub(crate) fn timed(windows: &mut Vec<Window>, name: &str, op: &mut dyn FnMut()) {
    std::thread::sleep(Duration::from_secs(2));
    let t = Instant::now();
    let start = now_ms();
    op();
    let end = now_ms();
    println!("{name}: {:.1} s", t.elapsed().as_secs_f64());
    windows.push(Window {
        name: name.into(),
        start,
        end,
        tolerated: Vec::new(),
    });
}

/// Stops the loops, prints per operation the requests, failures and longest gap of each, and
/// asserts no failure and no probe slower than a second.
pub(crate) fn finish_loops(t: &Topology, windows: &[Window]) {
    let lab = t.lab;
    let (puller, pusher) = (t.puller, t.pusher);
    std::thread::sleep(Duration::from_secs(2));

    for h in [pusher, puller] {
        lab.ssh_ok(h, &root(h, "touch /tmp/zd.stop"));
    }
    let read = |h: &LabHost, log: &str| {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let text = lab.ssh_ok(h, &format!("cat /tmp/{log}"));
            if text.lines().any(|l| l == "done") {
                return parse(&text);
            }
            assert!(Instant::now() < deadline, "{log} did not stop");
            std::thread::sleep(Duration::from_millis(500));
        }
    };
    let logs = [
        ("pull /0.2 s", read(puller, "zd-pull.log")),
        ("push loop", read(pusher, "zd-push.log")),
        ("probe /50 ms", read(pusher, "zd-probe.log")),
    ];
    println!(
        "\n{:<42} {:>8} {:<14} {:>9} {:>7} {:>12} {:>10}",
        "operation", "wall s", "loop", "requests", "failed", "longest gap", "slowest"
    );
    let mut problems = Vec::new();
    for w in windows {
        for (i, (name, log)) in logs.iter().enumerate() {
            let (n, failed, gap) = figures(log, w);
            let slow = slowest(log, w).map_or(String::new(), |ms| format!("{ms} ms"));
            println!(
                "{:<42} {:>8} {:<14} {:>9} {:>7} {:>9} ms {:>10}",
                if i == 0 { w.name.as_str() } else { "" },
                if i == 0 {
                    format!("{:.1}", (w.end - w.start) as f64 / 1000.0)
                } else {
                    String::new()
                },
                name,
                n,
                failed.len(),
                gap,
                slow
            );
            if !failed.is_empty() && !w.tolerated.contains(name) {
                problems.push(format!("{}: {name}: {failed:#?}", w.name));
            }
            // A stalled connection (a SYN retried after a refusal or a drop) takes a second or
            // more; the gap between answers also holds this loaded machine's scheduling
            // (compare the idle row), so it is bounded loosely.
            if name.starts_with("probe") {
                if slowest(log, w).is_none_or(|ms| ms >= 1000) {
                    problems.push(format!("{}: a probe took {slow}", w.name));
                }
                if gap >= 3000 {
                    problems.push(format!("{}: the probe waited {gap} ms", w.name));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn one_registry_host_rolls_without_a_failed_request() {
    let lab = TestLab::up("zerodt", 3);
    let t = Topology {
        lab: &lab,
        registries: vec![lab.host("host1")],
        puller: lab.host("host3"),
        pusher: lab.host("host2"),
        env: Vec::new(),
    };
    scenario(&t);
}

/// The HA lab: two lb hosts (nginx, keepalived, the VIP), three replicas on S3 (host3-5),
/// agents host6 (pulls) and host7 (pushes, probes); every request through the VIP.
#[test]
fn ha_replicas_roll_without_a_failed_request() {
    let lab = TestLab::up_profile("zerodt-ha", 8, Profile::Ha);
    let env = lab.s3_env();
    let t = Topology {
        lab: &lab,
        registries: ["host3", "host4", "host5"].map(|h| lab.host(h)).to_vec(),
        puller: lab.host("host6"),
        pusher: lab.host("host7"),
        env,
    };
    scenario(&t);
}
