//! Making sure a local docker engine answers: start dockerd when it is installed but stopped,
//! or say exactly what to install. Also the kernel limits many systemd hosts need.

use std::fs::{self, OpenOptions};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::docker;

/// How long a freshly started dockerd may take before `docker info` answers.
const START_TIMEOUT: Duration = Duration::from_secs(60);

const INSTALL_HINT: &str = "install the engine and the lab's tools: \
`apt-get install docker.io debootstrap docker-registry openssh-client` (Debian/Ubuntu)";

/// What the lab needs to know about the engine it talks to.
#[derive(Debug, Clone, Copy)]
pub struct Engine {
    pub cgroup_version: u8,
}

/// Return once `docker info` answers, starting dockerd if needed.
pub fn ensure_running() -> Result<Engine> {
    if which("docker").is_none() {
        bail!("the docker CLI is not installed: {INSTALL_HINT}");
    }
    if let Err(err) = probe() {
        let msg = format!("{err:#}");
        if msg.contains("permission denied") {
            bail!(
                "the docker engine refused this user ({msg}): run as root, or add the user to \
                 the `docker` group"
            );
        }
        // Several labs starting at once (parallel tests) must start one engine, not race two
        // dockerds where the loser's exit looks like a failed start.
        let _lock = super::cache::lock(&super::cache::dir(), "engine")?;
        if probe().is_err() {
            start()?;
        }
    }
    let version = docker::run(["info", "--format", "{{.CgroupVersion}}"])?;
    Ok(Engine {
        cgroup_version: if version.trim() == "2" { 2 } else { 1 },
    })
}

fn probe() -> Result<String> {
    docker::run(["info", "--format", "{{.ServerVersion}}"])
}

/// Start the engine: through systemd when it runs the machine, else as a background dockerd.
fn start() -> Result<()> {
    let Some(dockerd) = which("dockerd") else {
        bail!("no docker engine answers and dockerd is not installed: {INSTALL_HINT}");
    };
    if unsafe { libc::geteuid() } != 0 {
        bail!(
            "no docker engine answers and starting dockerd needs root: run `sudo dockerd &` or run the lab as root"
        );
    }
    let mut child = None;
    let log = log_path();
    if Path::new("/run/systemd/system").is_dir() {
        eprintln!("starting the docker engine (systemctl start docker)");
        docker::run_command({
            let mut c = Command::new("systemctl");
            c.args(["start", "docker"]);
            c
        })
        .context("starting docker.service")?;
    } else {
        eprintln!(
            "starting the docker engine ({} in the background, log {})",
            dockerd.display(),
            log.display()
        );
        let out = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .with_context(|| format!("cannot open {}", log.display()))?;
        let err = out.try_clone()?;
        // Its own process group: the engine outlives this command and ignores its Ctrl-C.
        child = Some(
            Command::new(&dockerd)
                .stdin(Stdio::null())
                .stdout(out)
                .stderr(err)
                .process_group(0)
                .spawn()
                .with_context(|| format!("cannot start {}", dockerd.display()))?,
        );
    }
    let started = Instant::now();
    loop {
        if probe().is_ok() {
            return Ok(());
        }
        if let Some(status) = child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
            bail!(
                "dockerd exited at start ({status}); its log {} ends with:\n{}",
                log.display(),
                log_tail(&log)
            );
        }
        if started.elapsed() > START_TIMEOUT {
            bail!(
                "the docker engine did not answer within {}s; its log {} ends with:\n{}",
                START_TIMEOUT.as_secs(),
                log.display(),
                log_tail(&log)
            );
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

fn log_path() -> PathBuf {
    PathBuf::from("/var/log/regboot-lab-dockerd.log")
}

fn log_tail(log: &Path) -> String {
    docker::tail(&fs::read_to_string(log).unwrap_or_default(), 10)
}

pub fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

/// On cgroup v1, systemd in a container needs the host's `name=systemd` hierarchy (a machine
/// booted by systemd has it; others may not). Mount it when missing, or say how.
pub fn ensure_systemd_cgroup(engine: Engine) -> Result<()> {
    let dir = Path::new("/sys/fs/cgroup/systemd");
    if engine.cgroup_version != 1 || dir.is_dir() {
        return Ok(());
    }
    let mounted = fs::create_dir_all(dir).is_ok()
        && Command::new("mount")
            .args(["-t", "cgroup", "-o", "none,name=systemd", "cgroup"])
            .arg(dir)
            .status()
            .is_ok_and(|s| s.success());
    if !mounted {
        bail!(
            "this machine uses cgroup v1 without the name=systemd hierarchy, which systemd in the \
             lab hosts needs. Fix (as root): mkdir -p /sys/fs/cgroup/systemd && \
             mount -t cgroup -o none,name=systemd cgroup /sys/fs/cgroup/systemd"
        );
    }
    Ok(())
}

/// Each systemd host uses several inotify instances; with the kernel default (128 per user)
/// hosts beyond a dozen or so hang in "initializing". Raise the limits, or say why not.
pub fn raise_inotify_limits() {
    for (name, want) in [
        ("max_user_instances", 8192u64),
        ("max_user_watches", 1_048_576),
    ] {
        let path = format!("/proc/sys/fs/inotify/{name}");
        let current: u64 = fs::read_to_string(&path)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0);
        if current >= want {
            continue;
        }
        if fs::write(&path, want.to_string()).is_err() {
            eprintln!(
                "warning: fs.inotify.{name} is {current} and cannot be raised here; hosts may hang \
                 at boot. Fix: sysctl -w fs.inotify.{name}={want}"
            );
        }
    }
}
