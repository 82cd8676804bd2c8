//! The lab's host containers: create and boot them (systemd as PID 1, sshd, inner dockerd),
//! wait until they are up, and read what the inventory needs (address, SSH host keys).

use std::fs;
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::Flavor;
use super::docker;
use super::engine::Engine;
use super::network::LabNetwork;

/// Labels on every lab container: `lab up` finds its hosts, `status` and `down` find the lab.
pub const LAB_LABEL: &str = "io.regboot.lab";
pub const HOST_LABEL: &str = "io.regboot.lab.host";
pub const DIR_LABEL: &str = "io.regboot.lab.dir";
pub const USER_LABEL: &str = "io.regboot.lab.user";
pub const PORT_LABEL: &str = "io.regboot.lab.port";
pub const FLAVOR_LABEL: &str = "io.regboot.lab.flavor";

/// How long a host may take from start to a finished systemd boot with sshd listening.
const BOOT_TIMEOUT: Duration = Duration::from_secs(180);

/// One lab host: how it is reached from this machine.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LabHost {
    /// The inventory name: host1, host2, ...
    pub name: String,
    pub container: String,
    pub address: String,
    pub port: u16,
    pub user: String,
    /// Its container runtime.
    pub flavor: Flavor,
}

/// What host `index` (1-based) looks like. The mix matters: host 2, 5, 8... are reached as the
/// non-root user `ops` (passwordless sudo), host 3, 6, 9... run sshd on port 2222.
pub fn plan(lab: &str, network: &LabNetwork, index: usize, flavor: Flavor) -> LabHost {
    let name = format!("host{index}");
    LabHost {
        container: container_name(lab, &name),
        name,
        address: network
            .host_address(index)
            .map(|a| a.to_string())
            .unwrap_or_default(),
        port: if index.is_multiple_of(3) { 2222 } else { 22 },
        user: if index % 3 == 2 { "ops" } else { "root" }.to_string(),
        flavor,
    }
}

pub fn container_name(lab: &str, host: &str) -> String {
    format!("regboot-lab-{lab}-{host}")
}

/// Everything a host needs at creation.
/// Where every host of a lab mounts the same volume: it stands in for NFS, so a registry
/// `data_dir` below it with `storage.shared: true` is really shared between replicas.
pub const SHARED_DIR: &str = "/srv/regboot-shared";

/// The docker volume behind [`SHARED_DIR`] (removed by `lab down`).
pub fn shared_volume(lab: &str) -> String {
    format!("regboot-lab-{lab}-shared")
}

pub struct Boot<'a> {
    pub lab: &'a str,
    pub dir: &'a Path,
    /// The host image of each flavor the lab has.
    pub images: &'a std::collections::BTreeMap<&'static str, String>,
    pub network: &'a LabNetwork,
    pub engine: Engine,
    pub authorized_key: &'a str,
}

/// Make sure `host` runs (create or start it), wait for its boot, fill in its address, and
/// return its SSH host public keys ("type base64" lines).
pub fn ensure(boot: &Boot, host: &mut LabHost) -> Result<Vec<String>> {
    let state = docker::run(["inspect", "--format", "{{.State.Running}}", &host.container]);
    match state.as_deref() {
        Ok("true") => {}
        Ok(_) => {
            docker::run(["start", &host.container])
                .with_context(|| format!("starting {}", host.name))?;
        }
        Err(_) => create(boot, host)?,
    }
    host.address = docker::run([
        "inspect",
        "--format",
        &format!(
            "{{{{(index .NetworkSettings.Networks \"{}\").IPAddress}}}}",
            boot.network.name
        ),
        &host.container,
    ])
    .with_context(|| format!("reading {}'s address", host.name))?;
    if host.address.is_empty() {
        bail!(
            "{} ({}) has no address on the network {}: remove it with `regboot lab down --name {}`",
            host.name,
            host.container,
            boot.network.name,
            boot.lab
        );
    }
    wait_booted(host)?;
    wait_port(host)?;
    let keys = docker::run([
        "exec",
        &host.container,
        "cat",
        "/etc/ssh/ssh_host_ed25519_key.pub",
        "/etc/ssh/ssh_host_ecdsa_key.pub",
        "/etc/ssh/ssh_host_rsa_key.pub",
    ])
    .with_context(|| format!("reading {}'s SSH host keys", host.name))?;
    Ok(keys
        .lines()
        .map(|l| l.split_whitespace().take(2).collect::<Vec<_>>().join(" "))
        .filter(|l| !l.is_empty())
        .collect())
}

fn create(boot: &Boot, host: &LabHost) -> Result<()> {
    let labels = [
        format!("{LAB_LABEL}={}", boot.lab),
        format!("{HOST_LABEL}={}", host.name),
        format!("{DIR_LABEL}={}", boot.dir.display()),
        format!("{USER_LABEL}={}", host.user),
        format!("{PORT_LABEL}={}", host.port),
        format!("{FLAVOR_LABEL}={}", host.flavor.name()),
    ];
    let mut args: Vec<String> = vec![
        "create".into(),
        "--name".into(),
        host.container.clone(),
        "--hostname".into(),
        host.name.clone(),
        "--network".into(),
        boot.network.name.clone(),
        "--ip".into(),
        host.address.clone(),
    ];
    for label in labels {
        args.extend(["--label".into(), label]);
    }
    // What systemd and a nested dockerd need without --privileged (which this kind of machine
    // refuses): every capability but one, no seccomp/apparmor confinement, all devices.
    for flag in [
        "--cap-add=ALL",
        "--cap-drop=SYS_RESOURCE",
        "--security-opt=seccomp=unconfined",
        "--security-opt=apparmor=unconfined",
        "--security-opt=systempaths=unconfined",
        "--device-cgroup-rule=a *:* rwm",
        "--tmpfs=/run",
        "--tmpfs=/run/lock",
        "--stop-signal=SIGRTMIN+3",
        "--env=container=docker",
        // As on a machine (docker's default in a container is 0): only root binds ports
        // below 1024, which the registry's front relies on (registry_front::SLOTS).
        "--sysctl=net.ipv4.ip_unprivileged_port_start=1024",
        // The inner engines' overlay storage cannot sit on the container's own overlay:
        // anonymous volumes, removed with the container.
        "--volume=/var/lib/docker",
        "--volume=/var/lib/containerd",
        "--volume=/var/lib/containers",
    ] {
        args.push(flag.into());
    }
    args.push(format!("--volume={}:{SHARED_DIR}", shared_volume(boot.lab)));
    if boot.engine.cgroup_version == 2 {
        // Its own cgroup namespace; the image's entrypoint makes it writable for systemd.
        args.push("--cgroupns=private".into());
    } else {
        args.push("--volume=/sys/fs/cgroup:/sys/fs/cgroup:rw".into());
    }
    args.push(boot.images[host.flavor.name()].clone());
    docker::run(&args).with_context(|| {
        format!(
            "creating {}: the engine refused a host container (systemd and a nested dockerd \
             need --cap-add ALL, unconfined seccomp/apparmor/systempaths, all devices and a \
             writable cgroup tree; rootless or restricted engines cannot give that)",
            host.name
        )
    })?;

    // The host's first boot reads these (see regboot-lab-firstboot in host-image.sh).
    let staging = boot.dir.join(format!(".boot-{}", host.name));
    let config = staging.join("regboot-lab");
    fs::create_dir_all(&config)?;
    fs::write(config.join("authorized_keys"), boot.authorized_key)?;
    fs::write(config.join("ssh_port"), format!("{}\n", host.port))?;
    let copied = docker::run([
        "cp",
        &config.to_string_lossy(),
        &format!("{}:/etc/", host.container),
    ]);
    let _ = fs::remove_dir_all(&staging);
    copied.with_context(|| format!("copying the lab's key into {}", host.name))?;
    docker::run(["start", &host.container]).with_context(|| format!("starting {}", host.name))?;
    Ok(())
}

/// Wait until systemd has finished booting and sshd and the host's engine are active.
fn wait_booted(host: &LabHost) -> Result<()> {
    let started = Instant::now();
    let mut state = String::new();
    // Bounded by time; each probe is one `docker exec`.
    while started.elapsed() < BOOT_TIMEOUT {
        // Non-zero for anything but "running", and before systemd's bus is up it prints
        // "offline" or nothing: read what it printed, not its exit status.
        state = docker::run([
            "exec",
            &host.container,
            "sh",
            "-c",
            "systemctl is-system-running 2>/dev/null; true",
        ])
        .with_context(|| format!("asking {}'s systemd for its state", host.name))?;
        if matches!(
            state.as_str(),
            "running" | "degraded" | "maintenance" | "stopping"
        ) {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    match state.as_str() {
        "running" => {}
        "degraded" => {
            let failed = docker::run([
                "exec",
                &host.container,
                "systemctl",
                "list-units",
                "--failed",
                "--no-legend",
                "--plain",
            ])
            .unwrap_or_default();
            eprintln!(
                "warning: {} booted degraded; failed units:\n{failed}",
                host.name
            );
        }
        other => bail!(
            "{} ({}) did not finish booting within {}s (systemd says {other:?}). {}",
            host.name,
            host.container,
            BOOT_TIMEOUT.as_secs(),
            boot_diagnosis(host)
        ),
    }
    let units: Vec<&str> = std::iter::once("ssh")
        .chain(host.flavor.service())
        .collect();
    let mut args = vec!["exec", &host.container, "systemctl", "is-active"];
    args.extend(&units);
    if let Err(err) = docker::run(&args) {
        bail!(
            "{}: {} not active: {err:#}. Look inside with `docker exec {} systemctl status {}`",
            host.name,
            units.join(" or "),
            host.container,
            units.join(" ")
        );
    }
    Ok(())
}

/// Why a host may not boot, with what to look at.
fn boot_diagnosis(host: &LabHost) -> String {
    let jobs = docker::run([
        "exec",
        &host.container,
        "systemctl",
        "list-jobs",
        "--no-legend",
    ])
    .unwrap_or_default();
    let logs = docker::cmd(["logs", "--tail", "15", &host.container])
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr)
        })
        .unwrap_or_default();
    format!(
        "Pending jobs:\n{jobs}\nContainer log:\n{}\nIf many hosts run, raise the inotify limits \
         (sysctl -w fs.inotify.max_user_instances=8192 fs.inotify.max_user_watches=1048576).",
        docker::tail(&logs, 15)
    )
}

/// Wait until this machine reaches the host's sshd (bounded by count and time).
fn wait_port(host: &LabHost) -> Result<()> {
    let addr: SocketAddr = format!("{}:{}", host.address, host.port)
        .parse()
        .with_context(|| format!("{}: bad address {}", host.name, host.address))?;
    let started = Instant::now();
    for _ in 0..100 {
        if TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_ok() {
            return Ok(());
        }
        if started.elapsed() > Duration::from_secs(30) {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    bail!(
        "{}: sshd does not answer on {addr} from this machine: is a firewall dropping traffic \
         to docker networks?",
        host.name
    )
}

/// How many of `hosts` have no running container yet.
pub fn missing(hosts: &[LabHost]) -> Result<usize> {
    let mut n = 0;
    for host in hosts {
        let running = docker::run(["inspect", "--format", "{{.State.Running}}", &host.container]);
        if running.as_deref().ok() != Some("true") {
            n += 1;
        }
    }
    Ok(n)
}

/// Remove the lab's containers whose host number is above `keep` (after `--hosts` shrank).
pub fn remove_extra(lab: &str, keep: usize) -> Result<()> {
    for (container, host) in list(lab)? {
        let index: usize = host
            .strip_prefix("host")
            .and_then(|n| n.parse().ok())
            .unwrap_or(usize::MAX);
        if index > keep {
            docker::run(["rm", "--force", "--volumes", &container])?;
        }
    }
    Ok(())
}

/// The lab's containers as (container name, host name).
pub fn list(lab: &str) -> Result<Vec<(String, String)>> {
    let out = docker::run([
        "ps",
        "--all",
        "--filter",
        &format!("label={LAB_LABEL}={lab}"),
        "--format",
        &format!("{{{{.Names}}}}\t{{{{.Label \"{HOST_LABEL}\"}}}}"),
    ])?;
    Ok(out
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(c, h)| (c.to_string(), h.to_string()))
        .collect())
}
