//! The lab's host image (Debian with systemd, sshd, dockerd, sudo), built once with debootstrap
//! and `docker import`, and tagged by the content of its recipe so a changed recipe rebuilds.

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressStyle};

use super::{Flavor, Release, cache, docker, engine};

/// The build recipe, readable on its own: src/lab/host-image.sh.
const RECIPE: &str = include_str!("host-image.sh");

pub const REPOSITORY: &str = "regboot-lab-host";

/// The tag of the docker host image of `release` this build of regboot uses.
fn base_tag(release: Release) -> String {
    let id = cache::content_id(&[RECIPE.as_bytes(), release.name().as_bytes()]);
    format!("{REPOSITORY}:{id}")
}

/// What a host of `flavor` is made from the docker host image of `release`: the packages
/// added, then the ones purged (trixie's docker CLI is a package of its own). `apt-get
/// install` marks containerd as wanted, so purging docker.io keeps it.
fn derivation(flavor: Flavor, release: Release) -> Option<(&'static str, String)> {
    let docker = match release {
        Release::Bookworm => "docker.io",
        Release::Trixie => "docker.io docker-cli",
    };
    match flavor {
        Flavor::Docker => None,
        Flavor::Containerd => Some(("containerd", docker.to_string())),
        // The release's containerd first (its config.toml), then unstable's over it.
        Flavor::Containerd2 => Some(("containerd", docker.to_string())),
        Flavor::Podman => Some(("podman", format!("{docker} containerd"))),
    }
}

/// Installs $1 and purges $2 (with what only they needed) in an image build.
const DERIVE: &str = "RUN set -eu; export DEBIAN_FRONTEND=noninteractive; apt-get update -q; \
    apt-get install -y -q --no-install-recommends $ADD; apt-get purge -y -q $PURGE; \
    apt-get autoremove -y -q --purge; apt-get clean; rm -rf /var/lib/apt/lists/*";

/// [`DERIVE`], then containerd from Debian unstable, whose Release file may be past its
/// Valid-Until date on the mirror (so that one source is not checked for it); the source is
/// removed again, so nothing else on the host comes from unstable later.
const DERIVE_SID: &str = "RUN set -eu; export DEBIAN_FRONTEND=noninteractive; \
    mirror=$(sed -n 's/^deb \\([^ ]*\\) .*/\\1/p' /etc/apt/sources.list | head -n 1); \
    echo \"deb [check-valid-until=no] $mirror sid main\" > /etc/apt/sources.list.d/sid.list; \
    apt-get update -q; apt-get install -y -q --no-install-recommends $ADD; \
    apt-get install -y -q --no-install-recommends -t sid containerd; apt-get purge -y -q $PURGE; \
    apt-get autoremove -y -q --purge; rm /etc/apt/sources.list.d/sid.list; apt-get clean; \
    rm -rf /var/lib/apt/lists/*";

/// The build step of `flavor`'s image.
fn derive_step(flavor: Flavor) -> &'static str {
    match flavor {
        Flavor::Containerd2 => DERIVE_SID,
        _ => DERIVE,
    }
}

/// The host image of `release` and `flavor`, building it first when the engine lacks it: the
/// docker image with debootstrap, the others derived from it with `docker build`.
pub fn ensure(cache_dir: &Path, release: Release, flavor: Flavor) -> Result<String> {
    let base = base_tag(release);
    cache::once(
        cache_dir,
        &format!("host-image-{}", release.name()),
        || docker::succeeds(&["image", "inspect", &base]),
        || build_checked(cache_dir, &base, release),
    )?;
    let Some((add, purge)) = derivation(flavor, release) else {
        return Ok(base);
    };
    let tag = format!(
        "{base}-{}",
        cache::content_id(&[
            derive_step(flavor).as_bytes(),
            add.as_bytes(),
            purge.as_bytes()
        ])
    );
    cache::once(
        cache_dir,
        &format!("host-image-{}-{}", release.name(), flavor.name()),
        || docker::succeeds(&["image", "inspect", &tag]),
        || derive(cache_dir, &base, &tag, flavor, add, &purge),
    )?;
    Ok(tag)
}

/// `docker build` of the `flavor` image from `base` (apt-get inside needs Debian's mirror).
fn derive(
    cache_dir: &Path,
    base: &str,
    tag: &str,
    flavor: Flavor,
    add: &str,
    purge: &str,
) -> Result<()> {
    let dockerfile = format!(
        "FROM {base}\nENV ADD=\"{add}\" PURGE=\"{purge}\"\n{}\n\
         LABEL io.regboot.lab.flavor={}\n",
        derive_step(flavor),
        flavor.name()
    );
    let context = cache_dir.join(format!("derive-{}", flavor.name()));
    fs::create_dir_all(&context)?;
    fs::write(context.join("Dockerfile"), dockerfile)?;
    let progress = Progress::start(tag);
    progress.step(&format!("docker build: {base} + {add} - {purge}"));
    let built = docker::run(["build", "--quiet", "-t", tag, &context.to_string_lossy()]);
    let _ = fs::remove_dir_all(&context);
    if let Err(e) = built {
        progress.fail();
        return Err(e).with_context(|| format!("building the lab host image {tag}"));
    }
    progress.done();
    remove_stale(tag);
    Ok(())
}

/// Build the image after checking for what the build needs.
fn build_checked(cache_dir: &Path, tag: &str, release: Release) -> Result<()> {
    if engine::which("debootstrap").is_none() {
        bail!(
            "building the lab's host image needs debootstrap: apt-get install debootstrap \
             (it runs once; the image is cached as {tag})"
        );
    }
    if unsafe { libc::geteuid() } != 0 {
        bail!("building the lab's host image (debootstrap, chroot) needs root: run as root once");
    }
    build(cache_dir, tag, release)?;
    remove_stale(tag);
    Ok(())
}

/// Drop host images of older recipes of the same release and flavor (labs of other releases,
/// and images from before these labels, are left alone); one a running lab still uses stays
/// (rmi refuses).
fn remove_stale(current: &str) {
    let format = "{{index .Config.Labels \"io.regboot.lab.release\"}} \
                  {{index .Config.Labels \"io.regboot.lab.flavor\"}}";
    let kind = |image: &str| docker::run(["image", "inspect", "--format", format, image]).ok();
    let Some(mine) = kind(current) else { return };
    let listed = docker::run(["images", "--format", "{{.Repository}}:{{.Tag}}", REPOSITORY])
        .unwrap_or_default();
    for image in listed.lines().filter(|i| *i != current) {
        if kind(image).as_deref() == Some(mine.as_str()) {
            let _ = docker::run(["rmi", image]);
        }
    }
}

fn build(cache_dir: &Path, tag: &str, release: Release) -> Result<()> {
    let work = cache_dir.join(format!("host-build-{}", release.name()));
    let log_path = cache_dir.join(format!("host-image-build-{}.log", release.name()));
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
        .arg(release.name())
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
