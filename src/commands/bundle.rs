//! `regboot bundle`: what to put in the bundle (the releases of the fleet, the packages apply
//! may install on their hosts), then `bundle::build`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result, bail};

use crate::bundle::ReleaseKey;
use crate::bundle::build::{self, Spec, Wanted};
use crate::cli::Cli;
use crate::engine::fleet;
use crate::engine::probe::ProbeRequest;
use crate::inventory::{self, Host, Inventory};

/// The docker engine's Debian package (`docker.install`), installed with its recommends.
const ENGINE: &str = "docker.io";
/// Hosts read at once.
const FORKS: usize = 50;

pub fn bundle(
    cli: &Cli,
    dir: &Path,
    releases: &[String],
    mirror: Option<&str>,
    no_image: bool,
    refresh: bool,
) -> Result<ExitCode> {
    let start = Instant::now();
    let inv = inventory::load(cli.inventory_path()?)?;
    let wanted_all: BTreeSet<Wanted> = inv.hosts.iter().flat_map(|h| wanted(&inv, h)).collect();
    let releases: BTreeMap<ReleaseKey, BTreeSet<Wanted>> = if releases.is_empty() {
        from_hosts(&inv)?
    } else {
        releases
            .iter()
            .map(|r| Ok((r.parse()?, wanted_all.clone())))
            .collect::<Result<_>>()?
    };
    if releases.is_empty() {
        bail!("no host of the inventory runs a release with apt: there is nothing to bundle");
    }
    let spec = Spec {
        releases,
        image: (!no_image).then(|| {
            (
                inv.registry.image.clone(),
                inv.registry.image_archive.clone(),
            )
        }),
        mirror: mirror.map(str::to_string),
        refresh,
    };
    let manifest = build::build(dir, &spec)?;
    let bytes: u64 = manifest
        .files
        .keys()
        .map(|f| std::fs::metadata(dir.join(f)).map_or(0, |m| m.len()))
        .sum();
    let seconds = start.elapsed().as_secs_f64();
    if cli.output == crate::cli::Output::Json {
        super::json::print(&serde_json::json!({
            "dir": dir,
            "releases": manifest.releases.keys().collect::<Vec<_>>(),
            "image": manifest.image.as_ref().map(|i| &i.name),
            "files": manifest.files.len(),
            "bytes": bytes,
            "seconds": seconds,
        }))?;
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "bundle {}: {} release(s), {} files, {:.1} MB, in {seconds:.1} s",
        dir.display(),
        manifest.releases.len(),
        manifest.files.len(),
        bytes as f64 / 1e6,
    );
    println!(
        "use it with `packages: {{ bundle: {} }}` in the inventory",
        dir.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// The packages apply may install on `host`: those its steps' footprints name, and the
/// engine with `docker.install`.
fn wanted(inv: &Inventory, host: &Host) -> Vec<Wanted> {
    let mut out: Vec<Wanted> = crate::playbooks::apply_steps()
        .modules_on(host)
        .iter()
        .flat_map(|m| m.footprint(inv, host, None).packages)
        .map(|p| Wanted {
            name: p.name.to_string(),
            recommends: false,
        })
        .collect();
    if inv.docker_install {
        out.push(Wanted {
            name: ENGINE.into(),
            recommends: true,
        });
    }
    out
}

/// Each host's release, read from the host; an unreachable host stops the run with the
/// option that names its release instead.
fn from_hosts(inv: &Inventory) -> Result<BTreeMap<ReleaseKey, BTreeSet<Wanted>>> {
    let hosts: Vec<&Host> = inv.hosts.iter().collect();
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    let nodes = runtime.block_on(async {
        let mut nodes =
            fleet::connect_probe(&hosts, FORKS, |_| ProbeRequest::default(), |_| false).await;
        fleet::close(&mut nodes).await;
        nodes
            .into_iter()
            .map(|n| (n.host, n.state.map(|s| s.facts), n.error))
            .collect::<Vec<_>>()
    });
    let mut out: BTreeMap<ReleaseKey, BTreeSet<Wanted>> = BTreeMap::new();
    let mut unreachable = Vec::new();
    for (host, facts, error) in nodes {
        match (facts, error) {
            (Some(f), _) => match ReleaseKey::of(&f) {
                Some(key) => out.entry(key).or_default().extend(wanted(inv, host)),
                None => eprintln!(
                    "{}: {} has no apt: a bundle holds .debs only, install its packages beforehand",
                    host.name, f.os.id
                ),
            },
            (None, e) => unreachable.push(format!(
                "{}: {}",
                host.name,
                e.unwrap_or_else(|| "not read".into())
            )),
        }
    }
    if !unreachable.is_empty() {
        bail!(
            "cannot read the release of {} host(s):\n  {}\nname their releases instead: \
             --release OS-VERSION-ARCH (e.g. --release debian-12-amd64), once per release",
            unreachable.len(),
            unreachable.join("\n  ")
        );
    }
    Ok(out)
}
