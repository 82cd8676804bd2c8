//! The lab's own offline bundle: the packages apply installs on lab hosts (nginx on registry
//! hosts; nginx, keepalived and curl on lb hosts) for a lab release, and the lab's registry
//! image. Built once into the lab cache and then used as it is (no mirror asked again), so a
//! lab test that uses it does not depend on the mirror answering.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use anyhow::{Context, Result};

use super::{LabHost, Release, cache, docker, registry_image};
use crate::bundle::build::{self, Spec, Wanted};
use crate::bundle::{Manifest, ReleaseKey, deb_arch};

const PACKAGES: [&str; 3] = ["nginx", "keepalived", "curl"];

/// The bundle for lab hosts of `release`, built into the lab cache the first time.
pub fn ensure(release: Release) -> Result<PathBuf> {
    let cache = cache::dir();
    let dir = cache.join(format!("bundle-{}", release.name()));
    let key = ReleaseKey {
        os: "debian".into(),
        version: match release {
            Release::Bookworm => "12",
            Release::Trixie => "13",
        }
        .into(),
        arch: deb_arch(std::env::consts::ARCH).into(),
    };
    let complete = Manifest::load(&dir).ok().is_some_and(|m| {
        m.image.is_some()
            && m.releases
                .get(&key.to_string())
                .is_some_and(|r| PACKAGES.iter().all(|p| r.packages.contains_key(*p)))
    });
    if complete {
        return Ok(dir);
    }
    let archive = registry_image::ensure_archive(&cache)?;
    let wanted: BTreeSet<Wanted> = PACKAGES
        .iter()
        .map(|p| Wanted {
            name: p.to_string(),
            recommends: false,
        })
        .collect();
    let spec = Spec {
        releases: BTreeMap::from([(key, wanted)]),
        image: Some((registry_image::IMAGE.into(), Some(archive))),
        mirror: std::env::var("REGBOOT_LAB_MIRROR").ok(),
    };
    build::build(&dir, &spec)
        .with_context(|| format!("building the lab's bundle in {}", dir.display()))?;
    Ok(dir)
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
