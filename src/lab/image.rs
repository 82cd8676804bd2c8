//! The lab's host image (Debian with systemd, sshd, dockerd, sudo), built once with debootstrap
//! and `docker import`, and tagged by the content of its recipe so a changed recipe rebuilds.

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressStyle};

use super::{cache, docker, engine};

/// The build recipe, readable on its own: src/lab/host-image.sh.
const RECIPE: &str = include_str!("host-image.sh");

pub const REPOSITORY: &str = "regboot-lab-host";

/// The tag of the image this build of regboot uses.
pub fn tag() -> String {
    format!("{REPOSITORY}:{}", cache::content_id(&[RECIPE.as_bytes()]))
}

/// The host image's tag, building it first when it is not in the engine yet.
pub fn ensure(cache_dir: &Path) -> Result<String> {
    let tag = tag();
    cache::once(
        cache_dir,
        "host-image",
        || docker::succeeds(&["image", "inspect", &tag]),
        || build_checked(cache_dir, &tag),
    )?;
    Ok(tag)
}

/// Build the image after checking for what the build needs.
fn build_checked(cache_dir: &Path, tag: &str) -> Result<()> {
    if engine::which("debootstrap").is_none() {
        bail!(
            "building the lab's host image needs debootstrap: apt-get install debootstrap \
             (it runs once; the image is cached as {tag})"
        );
    }
    if unsafe { libc::geteuid() } != 0 {
        bail!("building the lab's host image (debootstrap, chroot) needs root: run as root once");
    }
    build(cache_dir, tag)?;
    remove_stale(tag);
    Ok(())
}

/// Drop host images of older recipes; one that a running lab still uses stays (rmi refuses).
fn remove_stale(current: &str) {
    let listed = docker::run(["images", "--format", "{{.Repository}}:{{.Tag}}", REPOSITORY])
        .unwrap_or_default();
    for image in listed.lines().filter(|i| *i != current) {
        let _ = docker::run(["rmi", image]);
    }
}

fn build(cache_dir: &Path, tag: &str) -> Result<()> {
    let work = cache_dir.join("host-build");
    let log_path = cache_dir.join("host-image-build.log");
    // A build killed half way leaves its scratch space behind; start clean.
    if work.exists() {
        fs::remove_dir_all(&work).with_context(|| format!("cannot clear {}", work.display()))?;
    }
    fs::create_dir_all(&work)?;
    let script = work.join("host-image.sh");
    fs::write(&script, RECIPE)?;
    let mut log = fs::File::create(&log_path)
        .with_context(|| format!("cannot create {}", log_path.display()))?;

    let progress = Progress::start(tag);
    // stderr joins stdout so the log keeps both in order and the step markers arrive in time.
    let mut child = Command::new("sh")
        .arg("-c")
        .arg("exec sh \"$0\" \"$@\" 2>&1")
        .arg(&script)
        .arg(tag)
        .arg(&work)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .context("cannot run sh to build the host image")?;
    if let Some(stdout) = child.stdout.take() {
        for line in BufReader::new(stdout).lines() {
            let line = line.unwrap_or_default();
            let _ = writeln!(log, "{line}");
            if let Some(step) = line.strip_prefix("==> ") {
                progress.step(step);
            }
        }
    }
    let status = child.wait()?;
    let _ = fs::remove_dir_all(&work);
    if !status.success() {
        progress.fail();
        bail!(
            "building the host image {tag} failed ({status}); it needs root and Debian's package \
             mirror (REGBOOT_LAB_MIRROR picks another). The build log {} ends with:\n{}",
            log_path.display(),
            docker::tail(&fs::read_to_string(&log_path).unwrap_or_default(), 20)
        );
    }
    progress.done();
    Ok(())
}

/// Which build step runs and for how long: a spinner on a terminal, plain lines otherwise (CI).
struct Progress {
    bar: ProgressBar,
    started: Instant,
}

impl Progress {
    fn start(tag: &str) -> Self {
        eprintln!("building the lab host image {tag} (once; later runs reuse it)");
        let bar = ProgressBar::new_spinner();
        bar.set_style(
            ProgressStyle::with_template("  {spinner} {msg} [{elapsed}]")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.enable_steady_tick(Duration::from_millis(250));
        Self {
            bar,
            started: Instant::now(),
        }
    }

    fn step(&self, step: &str) {
        if self.bar.is_hidden() {
            eprintln!("  [{:>4}s] {step}", self.started.elapsed().as_secs());
        } else {
            self.bar.println(format!(
                "  [{:>4}s] {step}",
                self.started.elapsed().as_secs()
            ));
            self.bar.set_message(step.to_string());
        }
    }

    fn done(&self) {
        self.bar.finish_and_clear();
        eprintln!(
            "  host image built in {}s",
            self.started.elapsed().as_secs()
        );
    }

    fn fail(&self) {
        self.bar.abandon();
    }
}
