//! The lab: containerized Debian hosts (systemd, sshd, dockerd) on the local docker engine, with
//! an inventory that reaches them. Users rehearse a setup against it in CI; regboot's own
//! end-to-end tests and the README's demo run against it.
//!
//! `up` is safe to run again: a running lab is left as it is and no file is rewritten.

pub mod bundle;
mod cache;
mod docker;
mod engine;
mod flavor;
mod hosts;
mod image;
mod inventory;
mod k3s;
mod labdir;
mod network;
mod registry_image;
mod seaweed;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};

pub use flavor::Flavor;
pub use hosts::LabHost;
pub use network::LabNetwork;
pub use registry_image::IMAGE as REGISTRY_IMAGE;

use crate::ssh::{HostKeyCheck, Target};

pub const DEFAULT_NAME: &str = "default";
pub const DEFAULT_HOSTS: usize = 3;
/// The network's ip range holds 125 addresses; keep well inside it.
pub const MAX_HOSTS: usize = 64;

/// What the lab's hosts are for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    /// host1 is the registry, the others agents.
    #[default]
    Basic,
    /// High availability: host1-2 load balancers (nginx, keepalived), host3-5 registry
    /// replicas, host6-7 agents, host8 SeaweedFS S3 storage (not in the inventory); the VIP
    /// is an address of the lab network that docker never hands out.
    Ha,
    /// Every container runtime: host1 the registry and host2 an agent (docker), host3 an
    /// agent with containerd only (a Kubernetes node), host4 an agent with podman only.
    Runtimes,
    /// The registry as a Swarm service (`registry.deploy: swarm`): host1 (the manager) and
    /// host2 registry hosts, host3 an agent outside the swarm that also serves the replicas'
    /// SeaweedFS S3 storage.
    Swarm,
}

/// The HA profile's fixed shape.
pub const HA_HOSTS: usize = 8;
/// The runtimes profile's fixed shape.
pub const RUNTIMES_HOSTS: usize = 4;
/// The swarm profile's fixed shape.
pub const SWARM_HOSTS: usize = 3;

/// The Debian release of the lab's hosts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Release {
    /// Debian 12: docker 20.10, containerd 1.6, podman 4.3.
    #[default]
    Bookworm,
    /// Debian 13: docker 26, containerd 1.7, podman 5.
    Trixie,
}

impl Release {
    pub fn name(self) -> &'static str {
        match self {
            Release::Bookworm => "bookworm",
            Release::Trixie => "trixie",
        }
    }
}

/// Which containerd the runtimes profile's containerd-only host (host3) runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
pub enum ContainerdLine {
    /// The release's own: 1.6 on bookworm, 1.7 on trixie.
    #[default]
    #[value(name = "release")]
    #[serde(rename = "release")]
    Release,
    /// 2.x from Debian unstable (on trixie hosts: unstable's systemd does not boot here).
    #[value(name = "2")]
    #[serde(rename = "2")]
    Two,
}

impl Profile {
    /// The role of host `index` (1-based) as the inventory and `lab up` name it.
    pub fn role(self, index: usize) -> &'static str {
        match (self, index) {
            (Profile::Basic, 1) => "registry",
            (Profile::Basic, _) => "agent",
            (Profile::Ha, 1 | 2) => "lb",
            (Profile::Ha, 3..=5) => "registry",
            (Profile::Ha, 6 | 7) => "agent",
            (Profile::Ha, _) => "storage",
            (Profile::Runtimes, 1) => "registry",
            (Profile::Runtimes, _) => "agent",
            (Profile::Swarm, 1 | 2) => "registry",
            (Profile::Swarm, _) => "agent",
        }
    }

    /// The container runtime of host `index` (1-based).
    pub fn flavor(self, index: usize) -> Flavor {
        match (self, index) {
            (Profile::Runtimes, 3) => Flavor::Containerd,
            (Profile::Runtimes, 4) => Flavor::Podman,
            _ => Flavor::Docker,
        }
    }
}

#[derive(Debug, Clone)]
pub struct LabOptions {
    pub name: String,
    pub hosts: usize,
    pub profile: Profile,
    pub release: Release,
    /// The runtimes profile's containerd (host3).
    pub containerd: ContainerdLine,
    /// Where up writes keys, known_hosts and the inventory; default `.regboot-lab/NAME/`.
    pub dir: Option<PathBuf>,
    /// A k3s binary to run as a k3s server on the runtimes profile's host3.
    pub k3s: Option<PathBuf>,
    /// The inventory installs packages from the lab's cached bundle (`bundle::ensure`), not
    /// from the mirror.
    pub bundle: bool,
    /// The hosts reach nothing outside the lab network (no default route), so no package
    /// mirror: packages come from a bundle (`packages.bundle`, `bundle::ensure`).
    pub air_gapped: bool,
}

impl LabOptions {
    /// The container runtime of host `index` (1-based).
    fn flavor(&self, index: usize) -> Flavor {
        match self.profile.flavor(index) {
            Flavor::Containerd if self.containerd == ContainerdLine::Two => Flavor::Containerd2,
            flavor => flavor,
        }
    }
}

impl Default for LabOptions {
    fn default() -> Self {
        Self {
            name: DEFAULT_NAME.into(),
            hosts: DEFAULT_HOSTS,
            profile: Profile::Basic,
            release: Release::Bookworm,
            containerd: ContainerdLine::Release,
            dir: None,
            k3s: None,
            air_gapped: false,
            bundle: false,
        }
    }
}

/// A running lab and the files that reach it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Lab {
    pub name: String,
    pub dir: PathBuf,
    pub inventory_path: PathBuf,
    pub key_path: PathBuf,
    pub known_hosts_path: PathBuf,
    pub password_path: PathBuf,
    pub image_archive: PathBuf,
    pub profile: Profile,
    pub release: Release,
    /// HA profile: `VAR=value` lines with the S3 keys the inventory's env variables name.
    pub s3_env: Option<PathBuf>,
    /// HA profile: the VIP.
    pub vip: Option<String>,
    pub network: LabNetwork,
    /// host1 (the registry) first.
    pub hosts: Vec<LabHost>,
}

impl Lab {
    /// How regboot's SSH client reaches `host`, checked strictly against the lab's known_hosts.
    pub fn target(&self, host: &LabHost) -> Target {
        Target {
            name: host.name.clone(),
            address: host.address.clone(),
            port: host.port,
            user: host.user.clone(),
            key: Some(self.key_path.clone()),
            key_passphrase_env: None,
            sudo: host.user != "root",
            bastion: None,
            known_hosts: self.known_hosts_path.clone(),
            // The lab's hosts are checked against the lab's file only.
            global_known_hosts: Vec::new(),
            host_key_alias: None,
            host_key_check: HostKeyCheck::Strict,
            connect_timeout: Duration::from_secs(10),
        }
    }
}

/// Bring the lab up (or confirm it is up): engine, images, network, hosts, files.
pub fn up(opts: &LabOptions) -> Result<Lab> {
    check_name(&opts.name)?;
    let hosts = match opts.profile {
        Profile::Basic => opts.hosts,
        Profile::Ha if opts.hosts == DEFAULT_HOSTS || opts.hosts == HA_HOSTS => HA_HOSTS,
        Profile::Ha => bail!("--profile ha always has {HA_HOSTS} hosts: leave out --hosts"),
        Profile::Runtimes if opts.hosts == DEFAULT_HOSTS || opts.hosts == RUNTIMES_HOSTS => {
            RUNTIMES_HOSTS
        }
        Profile::Runtimes => {
            bail!("--profile runtimes always has {RUNTIMES_HOSTS} hosts: leave out --hosts")
        }
        Profile::Swarm if opts.hosts == DEFAULT_HOSTS => SWARM_HOSTS,
        Profile::Swarm => {
            bail!("--profile swarm always has {SWARM_HOSTS} hosts: leave out --hosts")
        }
    };
    let opts = &LabOptions {
        hosts,
        ..opts.clone()
    };
    if opts.containerd == ContainerdLine::Two
        && (opts.profile != Profile::Runtimes || opts.release != Release::Trixie)
    {
        bail!(
            "--containerd 2 puts containerd 2.x on the runtimes profile's containerd host, on \
             trixie: use it with --profile runtimes --release trixie"
        );
    }
    if let Some(binary) = &opts.k3s {
        if opts.profile != Profile::Runtimes {
            bail!("--k3s runs k3s on the runtimes profile's host3: use it with --profile runtimes");
        }
        k3s::check(binary)?;
    }
    if opts.hosts == 0 || opts.hosts > MAX_HOSTS {
        bail!(
            "--hosts must be between 1 and {MAX_HOSTS}, not {}",
            opts.hosts
        );
    }
    let name = opts.name.as_str();
    let engine = engine::ensure_running()?;
    engine::ensure_systemd_cgroup(engine)?;
    engine::raise_inotify_limits();

    let dir = absolute(&opts.dir.clone().unwrap_or_else(|| default_dir(name)))?;
    if let Some(running) = running_dir(name)?
        && running != dir
    {
        bail!(
            "the lab {name:?} already runs with its files in {}: use that --dir, or \
             `regboot lab down --name {name}` first",
            running.display()
        );
    }
    labdir::claim(&dir, name)?;

    let cache = cache::dir();
    // The registry image first: it takes seconds, and a missing docker-registry package should
    // stop the run before the long host image build, not after.
    let archive = registry_image::ensure_archive(&cache)?;
    let mut images = BTreeMap::new();
    for flavor in (1..=opts.hosts).map(|i| opts.flavor(i)) {
        if !images.contains_key(flavor.name()) {
            images.insert(flavor.name(), image::ensure(&cache, opts.release, flavor)?);
        }
    }
    let bundle_dir = opts
        .bundle
        .then(|| bundle::ensure(opts.release))
        .transpose()?;
    let image_archive = dir.join(labdir::ARCHIVE);
    registry_image::install_archive(&archive, &image_archive)?;
    let authorized_key = labdir::ensure_key(&dir, name)?;
    let password_path = labdir::ensure_password(&dir)?;

    let network = network::ensure(name)?;
    hosts::remove_extra(name, opts.hosts)?;
    let mut lab_hosts: Vec<LabHost> = (1..=opts.hosts)
        .map(|i| hosts::plan(name, &network, i, opts.flavor(i)))
        .collect();
    let missing = hosts::missing(&lab_hosts)?;
    if missing > 0 {
        eprintln!(
            "starting {missing} lab host(s) on {} ({})",
            network.name, network.subnet
        );
    }
    let boot = hosts::Boot {
        lab: name,
        dir: &dir,
        images: &images,
        network: &network,
        engine,
        authorized_key: &authorized_key,
    };
    let results: Vec<Result<Vec<String>>> = std::thread::scope(|s| {
        let handles: Vec<_> = lab_hosts
            .iter_mut()
            .map(|host| s.spawn(|| hosts::ensure(&boot, host)))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("a host thread panicked")))
            })
            .collect()
    });
    let mut keyed = Vec::new();
    let mut failures = Vec::new();
    for (host, result) in lab_hosts.iter().zip(results) {
        match result {
            Ok(keys) => keyed.push((host.clone(), keys)),
            Err(err) => failures.push(format!("{}: {err:#}", host.name)),
        }
    }
    if !failures.is_empty() {
        bail!(
            "{} of {} lab hosts did not come up:\n{}",
            failures.len(),
            lab_hosts.len(),
            failures.join("\n")
        );
    }

    if let Some(binary) = &opts.k3s {
        k3s::install(&lab_hosts[k3s::HOST - 1].container, binary)?;
    }
    if opts.air_gapped {
        bundle::air_gap(&lab_hosts)?;
    }
    let known_hosts_path = dir.join(labdir::KNOWN_HOSTS);
    labdir::write_if_changed(
        &known_hosts_path,
        labdir::known_hosts(&keyed).as_bytes(),
        0o644,
    )?;
    let (s3_env, vip) = match opts.profile {
        Profile::Basic | Profile::Runtimes => (None, None),
        Profile::Swarm => {
            let storage = &lab_hosts[SWARM_HOSTS - 1];
            let env = seaweed::ensure(&cache, &dir, &storage.container, &storage.address)?;
            (Some(env), None)
        }
        Profile::Ha => {
            let storage = &lab_hosts[HA_HOSTS - 1];
            let env = seaweed::ensure(&cache, &dir, &storage.container, &storage.address)?;
            let vip = network
                .spare_address(0)
                .context("the lab network has no spare address for the VIP")?;
            (Some(env), Some(vip.to_string()))
        }
    };
    let inventory_path = dir.join(labdir::INVENTORY);
    let mut text = match (&vip, opts.profile) {
        (Some(vip), _) => inventory::render_ha(name, &dir, &network.name, &lab_hosts, vip),
        (None, Profile::Swarm) => inventory::render_swarm(name, &dir, &network.name, &lab_hosts),
        (None, _) => inventory::render(name, &dir, &network.name, &lab_hosts),
    };
    if let Some(bundle_dir) = &bundle_dir {
        text = inventory::with_section(&text, &bundle::inventory_section(bundle_dir));
    }
    labdir::write_if_changed(&inventory_path, text.as_bytes(), 0o644)?;
    Ok(Lab {
        name: name.to_string(),
        key_path: dir.join(labdir::KEY),
        known_hosts_path,
        inventory_path,
        password_path,
        image_archive,
        profile: opts.profile,
        release: opts.release,
        s3_env,
        vip,
        network,
        hosts: lab_hosts,
        dir,
    })
}

/// What `down` removed.
#[derive(Debug, Default, serde::Serialize)]
pub struct DownReport {
    pub containers: Vec<String>,
    pub network: Option<String>,
    pub dir: Option<PathBuf>,
    pub images: Vec<String>,
    /// Images `--purge` could not remove (still used by another lab), with docker's reason.
    pub images_kept: Vec<String>,
}

/// Remove the lab's containers (with their inner docker volumes), its network and what up
/// wrote; with `purge` also the cached images and tarballs. Safe to run on a lab already gone.
pub fn down(name: &str, dir: Option<&Path>, purge: bool) -> Result<DownReport> {
    check_name(name)?;
    engine::ensure_running()?;
    let mut report = DownReport::default();
    let dir = match (running_dir(name)?, dir) {
        (Some(running), _) => running,
        (None, Some(given)) => absolute(given)?,
        (None, None) => absolute(&default_dir(name))?,
    };
    for (container, _) in hosts::list(name)? {
        docker::run(["rm", "--force", "--volumes", &container])?;
        report.containers.push(container);
    }
    // After the containers that used it; absent when no host was ever created.
    let volume = hosts::shared_volume(name);
    if docker::succeeds(&["volume", "inspect", &volume]) {
        docker::run(["volume", "rm", &volume])?;
    }
    let net = network::name_for(name);
    if network::inspect(&net).is_ok_and(|n| n.is_some()) {
        docker::run(["network", "rm", &net])?;
        report.network = Some(net);
    }
    if dir.exists() {
        labdir::remove(&dir, name)?;
        // The default parent, .regboot-lab/, goes with its last lab (remove_dir keeps it if not).
        if let Some(parent) = dir.parent().filter(|p| p.ends_with(".regboot-lab")) {
            let _ = std::fs::remove_dir(parent);
        }
        report.dir = Some(dir);
    }
    if purge {
        purge_images(&mut report)?;
    }
    Ok(report)
}

fn purge_images(report: &mut DownReport) -> Result<()> {
    let listed = docker::run([
        "images",
        "--format",
        "{{.Repository}}:{{.Tag}}",
        image::REPOSITORY,
    ])?;
    let images = listed.lines().map(str::to_string).chain(
        docker::succeeds(&["image", "inspect", REGISTRY_IMAGE]).then(|| REGISTRY_IMAGE.to_string()),
    );
    for image in images {
        match docker::run(["rmi", &image]) {
            Ok(_) => report.images.push(image),
            Err(err) => report.images_kept.push(format!("{image}: {err:#}")),
        }
    }
    let cache = cache::dir();
    if cache.exists() {
        std::fs::remove_dir_all(&cache)
            .with_context(|| format!("cannot remove the lab cache {}", cache.display()))?;
    }
    Ok(())
}

/// One lab as the engine sees it.
#[derive(Debug, serde::Serialize)]
pub struct LabStatus {
    pub name: String,
    pub dir: Option<PathBuf>,
    pub network: Option<LabNetwork>,
    /// (host, docker's state: running, exited, ...)
    pub hosts: Vec<(LabHost, String)>,
}

/// Every lab on this engine, or only `name`.
pub fn status(name: Option<&str>) -> Result<Vec<LabStatus>> {
    engine::ensure_running()?;
    let filter = match name {
        Some(n) => format!("label={}={n}", hosts::LAB_LABEL),
        None => format!("label={}", hosts::LAB_LABEL),
    };
    let ids = docker::run(["ps", "--all", "--quiet", "--filter", &filter])?;
    let mut labs: BTreeMap<String, LabStatus> = BTreeMap::new();
    let ids: Vec<&str> = ids.lines().collect();
    if !ids.is_empty() {
        let format = format!(
            "{{{{.Name}}}}\t{}\t{}\t{}\t{}\t{}\t{}\t{{{{.State.Status}}}}\t\
             {{{{range .NetworkSettings.Networks}}}}{{{{.IPAddress}}}}{{{{end}}}}",
            label(hosts::LAB_LABEL),
            label(hosts::FLAVOR_LABEL),
            label(hosts::HOST_LABEL),
            label(hosts::DIR_LABEL),
            label(hosts::USER_LABEL),
            label(hosts::PORT_LABEL),
        );
        let mut args = vec!["inspect", "--format", &format];
        args.extend(ids);
        for line in docker::run(&args)?.lines() {
            let f: Vec<&str> = line.split('\t').collect();
            let [
                container,
                lab,
                flavor,
                host,
                dir,
                user,
                port,
                state,
                address,
            ] = f[..]
            else {
                continue;
            };
            let entry = labs.entry(lab.to_string()).or_insert_with(|| LabStatus {
                name: lab.to_string(),
                dir: Some(PathBuf::from(dir)),
                network: None,
                hosts: Vec::new(),
            });
            entry.hosts.push((
                LabHost {
                    name: host.to_string(),
                    container: container.trim_start_matches('/').to_string(),
                    address: address.to_string(),
                    port: port.parse().unwrap_or(22),
                    user: user.to_string(),
                    flavor: match flavor {
                        "containerd" => Flavor::Containerd,
                        "containerd2" => Flavor::Containerd2,
                        "podman" => Flavor::Podman,
                        _ => Flavor::Docker,
                    },
                },
                state.to_string(),
            ));
        }
    }
    // A lab whose hosts are gone may still hold its network.
    let nets = docker::run([
        "network",
        "ls",
        "--filter",
        &filter,
        "--format",
        &format!("{{{{.Label \"{}\"}}}}", hosts::LAB_LABEL),
    ])?;
    for lab in nets.lines().filter(|l| !l.is_empty()) {
        let entry = labs.entry(lab.to_string()).or_insert_with(|| LabStatus {
            name: lab.to_string(),
            dir: None,
            network: None,
            hosts: Vec::new(),
        });
        entry.network = network::inspect(&network::name_for(lab))?;
    }
    for lab in labs.values_mut() {
        lab.hosts.sort_by_key(|(h, _)| {
            h.name
                .trim_start_matches("host")
                .parse::<usize>()
                .unwrap_or(0)
        });
    }
    Ok(labs.into_values().collect())
}

/// A docker format template that prints a container label.
fn label(name: &str) -> String {
    format!("{{{{index .Config.Labels \"{name}\"}}}}")
}

/// The directory recorded on a running lab's containers.
fn running_dir(name: &str) -> Result<Option<PathBuf>> {
    let Some((container, _)) = hosts::list(name)?.into_iter().next() else {
        return Ok(None);
    };
    let dir = docker::run(["inspect", "--format", &label(hosts::DIR_LABEL), &container])?;
    Ok((!dir.is_empty()).then(|| PathBuf::from(dir)))
}

fn default_dir(name: &str) -> PathBuf {
    Path::new(".regboot-lab").join(name)
}

fn absolute(dir: &Path) -> Result<PathBuf> {
    std::path::absolute(dir).with_context(|| format!("cannot resolve {}", dir.display()))
}

/// Lab names become parts of container and network names.
fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 40
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if !ok {
        bail!(
            "lab name {name:?} is not usable: 1 to 40 characters of a-z, 0-9, '-' and '_', \
             starting with a letter or digit"
        );
    }
    Ok(())
}
