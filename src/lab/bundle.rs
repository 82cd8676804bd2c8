//! The lab's own offline bundle: the packages apply installs on lab hosts (nginx on registry
//! hosts; nginx, keepalived and curl on lb hosts; docker.io with what it recommends, for
//! `docker.install`) for a lab release, and the lab's registry image. Built once into the lab
//! cache (under its lock, so concurrent tests build it once) and then used as it is, without
//! asking the mirror again: a lab whose inventory names it (`lab up --bundle`, and every lab
//! test: tests/support/lab.rs) installs nothing from the mirror.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use anyhow::{Context, Result};

use super::{LabHost, Release, cache, docker, registry_image};
use crate::bundle::build::{self, Spec, Wanted};
use crate::bundle::{Manifest, ReleaseKey, deb_arch};

/// Each package, and whether apt brings what it recommends: what apply installs, and the
/// tests' own tools on lab hosts (prometheus-node-exporter; `TestLab::install`).
const PACKAGES: [(&str, bool); 5] = [
    ("nginx", false),
    ("keepalived", false),
    ("curl", false),
    ("docker.io", true),
    ("prometheus-node-exporter", false),
];

/// The bundle's name for lab hosts of `release` (`debian-12-amd64`).
pub fn key(release: Release) -> ReleaseKey {
    ReleaseKey {
        os: "debian".into(),
        version: match release {
            Release::Bookworm => "12",
            Release::Trixie => "13",
        }
        .into(),
        arch: deb_arch(std::env::consts::ARCH).into(),
    }
}

/// The bundle for lab hosts of `release`, built into the lab cache the first time.
pub fn ensure(release: Release) -> Result<PathBuf> {
    let cache = cache::dir();
    let name = format!("bundle-{}", release.name());
    let dir = cache.join(&name);
    let key = key(release);
    let complete = || {
        Manifest::load(&dir).ok().is_some_and(|m| {
            m.image.is_some()
                && m.releases
                    .get(&key.to_string())
                    .is_some_and(|r| PACKAGES.iter().all(|(p, _)| r.packages.contains_key(*p)))
        })
    };
    cache::once(&cache, &name, complete, || {
        let archive = registry_image::ensure_archive(&cache)?;
        let wanted: BTreeSet<Wanted> = PACKAGES
            .iter()
            .map(|(p, recommends)| Wanted {
                name: p.to_string(),
                recommends: *recommends,
            })
            .collect();
        let spec = Spec {
            releases: BTreeMap::from([(key.clone(), wanted)]),
            image: Some((registry_image::IMAGE.into(), Some(archive))),
            mirror: std::env::var("REGBOOT_LAB_MIRROR").ok(),
            refresh: false,
        };
        build::build(&dir, &spec)
            .map(|_| ())
            .with_context(|| format!("building the lab's bundle in {}", dir.display()))
    })?;
    Ok(dir)
}

/// The inventory's lines that install from `dir` (a section of their own, followed by a blank
/// line).
pub fn inventory_section(dir: &std::path::Path) -> String {
    format!(
        "packages:\n  bundle: {}\n\n",
        serde_yaml_ng::to_string(&dir.to_string_lossy())
            .map(|y| y.trim_end().to_string())
            .unwrap_or_else(|_| dir.display().to_string())
    )
}

/// Cut the hosts off from everything outside the lab network: no default route (the lab
/// network's own route stays, so this machine and the hosts reach each other, and VRRP's
/// multicast between lb hosts still flows; an `--internal` docker network drops it).
pub(super) fn air_gap(hosts: &[LabHost]) -> Result<()> {
    for h in hosts {
        docker::run([
            "exec",
            &h.container,
            "sh",
            "-c",
            "ip -4 route del default 2>/dev/null; ip -6 route del default 2>/dev/null; true",
        ])
        .with_context(|| format!("air-gapping {}", h.name))?;
    }
    Ok(())
}
