//! `regboot gc`: garbage collection that loses no push.
//!
//! distribution's collector (`registry garbage-collect`) marks the blobs that manifests
//! reference, then deletes the rest. A push running meanwhile can upload a blob after the mark
//! and put its manifest before the sweep: the sweep deletes a blob the new manifest needs. So
//! the replicas are first rolled, one at a time, to `maintenance.readonly` (blue/green behind
//! each host's nginx: pulls never stop; a push is refused with "read-only mode" and fails
//! loudly instead of half-landing), the collector runs once against the shared storage from
//! the first registry host, and the replicas are rolled back. A push that finished before its
//! replica went read-only is marked and kept; a refused one must be repeated; one that slips
//! through (it found a blob that the sweep then deletes) is refused by the registry when it
//! puts its manifest, whose blobs must exist. The rollback also restarts every replica's
//! in-memory blob cache, which would still answer for deleted blobs.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde::Serialize;

use crate::engine::fleet::{self, Node};
use crate::engine::report::RunReport;
use crate::engine::runner::{self, Options};
use crate::inventory::{Inventory, Role, Storage};
use crate::modules::registry_files::{self, COLLECTOR};
use crate::pki::StateDir;

/// How a roll leaves the replicas (`Registry::read_only`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RegistryMode {
    /// Pushes, pulls and deletes.
    Serving,
    /// config.yml's `maintenance.readonly`: pulls only, while the collector runs.
    ReadOnly,
}

pub struct GcOptions {
    /// List what would go; change nothing (no read-only roll either).
    pub dry_run: bool,
    pub forks: usize,
    pub quiet: bool,
    pub state_dir: PathBuf,
}

#[derive(Debug, Serialize)]
pub struct GcReport {
    pub dry_run: bool,
    /// The registry host the collector ran on.
    pub host: String,
    /// Blobs deleted (or, dry run, that would be), each with its size when the storage is a
    /// filesystem regboot can measure (object storage reports none to the collector).
    pub blobs: Vec<Blob>,
    pub manifests: usize,
    /// The sum of the blobs' sizes; `None` when a size is unknown.
    pub bytes: Option<u64>,
    /// The rolls to read-only and back (absent in a dry run).
    pub rolls: Vec<RunReport>,
}

#[derive(Debug, Serialize)]
pub struct Blob {
    pub digest: String,
    pub size: Option<u64>,
}

/// The collector's longest run; a storage of many millions of blobs may need more.
const COLLECT_TIMEOUT: Duration = Duration::from_secs(4 * 3600);
/// Removing the collector: docker stops it within its 10 s grace time.
const REMOVE_TIMEOUT: Duration = Duration::from_secs(60);

/// Args: image, data dir, base dir, then `--dry-run` or nothing. Runs the collector in a
/// throwaway container with the replicas' config.yml (both config paths: 2.x and 3.x images),
/// first as a dry run to list the blobs and, on a filesystem, their sizes (`size D N`), then,
/// unless dry, for real, after which a blob file still there is reported (`left D`).
const COLLECT: &str = r#"set -eu
image=$1; data=$2; base=$3; dry=${4:-}
collect() {
  docker rm -f regboot-gc >/dev/null 2>&1 || true
  docker run --rm --name regboot-gc \
    -v "$base/config.yml:/etc/docker/registry/config.yml:ro" \
    -v "$base/config.yml:/etc/distribution/config.yml:ro" \
    -v "$data:/var/lib/registry" \
    "$image" garbage-collect --delete-untagged "$@" /etc/docker/registry/config.yml
}
blob_file() { h=${1#sha256:}; echo "$data/docker/registry/v2/blobs/sha256/$(printf %s "$h" | cut -c1-2)/$h/data"; }
listed=$(collect --dry-run 2>&1) || { printf '%s\n' "$listed" | tail -n 15 >&2; exit 1; }
printf '%s\n' "$listed"
blobs=$(printf '%s\n' "$listed" | sed -n 's/^blob eligible for deletion: //p')
for d in $blobs; do
  f=$(blob_file "$d")
  if [ -f "$f" ]; then echo "size $d $(stat -c %s "$f")"; fi
done
[ "$dry" = --dry-run ] && exit 0
swept=$(collect 2>&1) || { printf '%s\n' "$swept" | tail -n 15 >&2; exit 1; }
for d in $blobs; do
  f=$(blob_file "$d")
  if [ -f "$f" ]; then echo "left $d"; fi
done
"#;

/// What the collector's output says (see [`COLLECT`]).
#[derive(Debug, Default, PartialEq)]
struct Collected {
    blobs: Vec<String>,
    sizes: BTreeMap<String, u64>,
    manifests: usize,
    left: Vec<String>,
}

fn parse(out: &str) -> Collected {
    let mut c = Collected::default();
    for line in out.lines() {
        let line = line.trim();
        if let Some(d) = line.strip_prefix("blob eligible for deletion: ") {
            c.blobs.push(d.to_string());
        } else if let Some(rest) = line.strip_prefix("size ") {
            if let Some((d, n)) = rest.split_once(' ')
                && let Ok(n) = n.parse()
            {
                c.sizes.insert(d.to_string(), n);
            }
        } else if let Some(d) = line.strip_prefix("left ") {
            c.left.push(d.to_string());
        } else if let Some((_, tail)) = line.split_once(" blobs and ")
            && let Some(n) = tail.strip_suffix(" manifests eligible for deletion")
        {
            c.manifests = n.parse().unwrap_or(0);
        }
    }
    c
}

/// Collect garbage on the registry of `inv` (every registry host takes part: each must be
/// read-only while the collector runs). Holds the state directory's lock and each host's.
pub async fn run(inv: &Inventory, opts: &GcOptions) -> Result<GcReport> {
    let state = StateDir::existing(&opts.state_dir)?;
    let _lock = state.lock()?;
    let hosts: Vec<_> = inv.hosts_with(Role::Registry).collect();
    let mut nodes = fleet::connect(&hosts, opts.forks).await;
    if let Some(down) = nodes.iter().find(|n| n.remote.is_none()) {
        let why = down.error.clone().unwrap_or_default();
        let name = down.host.name.clone();
        fleet::close(&mut nodes).await;
        bail!(
            "{name}: {why}: every registry host must be reachable, so that each is read-only while \
             the collector runs"
        );
    }
    if !opts.dry_run {
        for note in fleet::lock(&mut nodes).await {
            say(opts, &format!("note: {note}"));
        }
    }
    let report = collect(inv, opts, &state, &mut nodes).await;
    fleet::close(&mut nodes).await;
    report
}

fn say(opts: &GcOptions, line: &str) {
    if !opts.quiet {
        println!("{line}");
    }
}

async fn collect(
    inv: &Inventory,
    opts: &GcOptions,
    state: &StateDir,
    nodes: &mut [Node<'_>],
) -> Result<GcReport> {
    let mut rolls = Vec::new();
    if opts.dry_run {
        let collected = sweep(inv, &mut nodes[0], true).await?;
        return Ok(report(
            inv,
            nodes[0].host.name.clone(),
            collected,
            true,
            rolls,
        ));
    }
    say(
        opts,
        "gc: the replicas go read-only, one at a time (pulls go on, pushes are refused)",
    );
    let read_only = roll(inv, opts, state, nodes, RegistryMode::ReadOnly).await;
    let swept = match read_only {
        Ok(r) if r.completed() => {
            rolls.push(r);
            say(opts, &format!("gc: collecting on {}", nodes[0].host.name));
            sweep(inv, &mut nodes[0], false).await
        }
        Ok(r) => {
            let failed = r.failed_hosts().join(", ");
            rolls.push(r);
            Err(anyhow::anyhow!(
                "not every replica went read-only (failed: {failed}): the collector did not run"
            ))
        }
        Err(e) => Err(e.context("the roll to read-only failed: the collector did not run")),
    };
    // A sweep cut off (the command's timeout, a lost connection) leaves the collector
    // running on the host: read-only stays until it is gone.
    if let Err(e) = remove_collector(&mut nodes[0]).await {
        bail!(
            "{e:#}: the replicas stay read-only while the collector may sweep (a push could lose \
             blobs); remove it on {} (`docker rm -f {COLLECTOR}`), then run `regboot apply` to \
             take pushes again",
            nodes[0].host.name
        );
    }
    say(opts, "gc: the replicas take pushes again, one at a time");
    let lifted = roll(inv, opts, state, nodes, RegistryMode::Serving).await;
    let lift_problem = match &lifted {
        Ok(r) if r.completed() => None,
        Ok(r) => Some(format!("failed on {}", r.failed_hosts().join(", "))),
        Err(e) => Some(format!("{e:#}")),
    };
    rolls.extend(lifted.ok());
    let collected = swept?;
    if let Some(problem) = lift_problem {
        bail!(
            "the collector ran, but lifting read-only {problem}: pushes may still be refused; \
             run `regboot apply` to roll the replicas back"
        );
    }
    if !collected.left.is_empty() {
        bail!(
            "the collector ran, but these blobs are still in the storage: {}",
            collected.left.join(", ")
        );
    }
    Ok(report(
        inv,
        nodes[0].host.name.clone(),
        collected,
        false,
        rolls,
    ))
}

/// The gc playbook (registry files, then the containers one at a time) with `mode`.
async fn roll(
    inv: &Inventory,
    opts: &GcOptions,
    state: &StateDir,
    nodes: &mut [Node<'_>],
    mode: RegistryMode,
) -> Result<RunReport> {
    // Nothing is reissued: gc changes the registry's mode, not its certificate.
    let options = Options::prepared(state.root(), opts.forks, opts.quiet);
    let mut inv = inv.clone();
    inv.registry.read_only = mode == RegistryMode::ReadOnly;
    runner::run_on(&inv, &crate::playbooks::gc()?, &options, state, nodes).await
}

/// Removes the collector's container and confirms it is gone.
const REMOVE_COLLECTOR: &str = r#"docker rm -f regboot-gc >/dev/null 2>&1 || true
if docker inspect --type container regboot-gc >/dev/null 2>&1; then
  echo "container regboot-gc is still there after docker rm -f" >&2; exit 1
fi
"#;

async fn remove_collector(node: &mut Node<'_>) -> Result<()> {
    let remote = node.remote.as_mut().context("not connected")?;
    remote.session.set_command_timeout(REMOVE_TIMEOUT);
    remote
        .run(
            &format!("remove the collector ({COLLECTOR})"),
            REMOVE_COLLECTOR,
            &[],
            None,
        )
        .await
        .map(|_| ())
}

async fn sweep(inv: &Inventory, node: &mut Node<'_>, dry_run: bool) -> Result<Collected> {
    let remote = node.remote.as_mut().context("not connected")?;
    remote.session.set_command_timeout(COLLECT_TIMEOUT);
    let reg = &inv.registry;
    let mut args = vec![
        reg.image.as_str(),
        reg.data_dir.as_str(),
        registry_files::BASE,
    ];
    if dry_run {
        args.push("--dry-run");
    }
    let out = remote
        .run("registry garbage-collect", COLLECT, &args, None)
        .await?;
    Ok(parse(&out.stdout_text()))
}

fn report(
    inv: &Inventory,
    host: String,
    c: Collected,
    dry_run: bool,
    rolls: Vec<RunReport>,
) -> GcReport {
    // Object storage: the registry host cannot stat the blobs.
    let measured = matches!(inv.registry.storage, Storage::Filesystem { .. });
    let blobs: Vec<Blob> = c
        .blobs
        .iter()
        .map(|d| Blob {
            digest: d.clone(),
            size: c.sizes.get(d).copied().filter(|_| measured),
        })
        .collect();
    let bytes = blobs.iter().map(|b| b.size).sum();
    GcReport {
        dry_run,
        host,
        blobs,
        manifests: c.manifests,
        bytes,
        rolls,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collector_output_is_read() {
        // distribution 2.8's output, then COLLECT's own lines.
        let out = "registry/smoke\nregistry/smoke: marking manifest sha256:aa\n\
                   \n3 blobs marked, 2 blobs and 1 manifests eligible for deletion\n\
                   blob eligible for deletion: sha256:bb\nblob eligible for deletion: sha256:cc\n\
                   size sha256:bb 1024\nsize sha256:cc 7\nleft sha256:cc\n";
        assert_eq!(
            parse(out),
            Collected {
                blobs: vec!["sha256:bb".into(), "sha256:cc".into()],
                sizes: [("sha256:bb".into(), 1024), ("sha256:cc".into(), 7)].into(),
                manifests: 1,
                left: vec!["sha256:cc".into()],
            }
        );
    }

    #[test]
    fn collect_script_parses() {
        for script in [COLLECT, REMOVE_COLLECTOR] {
            let out = std::process::Command::new("sh")
                .args(["-n", "-c", script])
                .output()
                .unwrap();
            assert!(out.status.success(), "{out:?}");
        }
    }
}
