//! Offline bundles for air-gapped fleets (`regboot bundle`, `packages.bundle:`): per OS
//! release and architecture, the .debs apply may install with their whole dependency closure,
//! a flat apt repository index over them, the registry image, and a manifest with every
//! file's SHA-256 (docs/bundle.md).

pub mod build;
pub mod install;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use crate::facts::Facts;

/// The manifest's file name inside a bundle directory.
pub const MANIFEST: &str = "manifest.json";
/// A release directory's apt index (a flat repository: `deb [trusted=yes] file:DIR ./`).
pub const INDEX: &str = "Packages";
/// Where the registry image goes, relative to the bundle.
pub const IMAGE: &str = "images/registry.tar";
/// A bundle's manifest larger than this is not a manifest.
const MANIFEST_LIMIT: u64 = 16 << 20;

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Manifest {
    pub version: u32,
    /// By release key (`debian-12-amd64`).
    pub releases: BTreeMap<String, Release>,
    pub image: Option<Image>,
    /// Every file of the bundle (path relative to it) and its SHA-256.
    pub files: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Release {
    pub os: String,
    pub version: String,
    pub codename: String,
    pub arch: String,
    /// What apply may install, each with the .deb files of its dependency closure (resolved
    /// against an empty system, so it holds whatever a host of the release may lack).
    pub packages: BTreeMap<String, Vec<String>>,
    /// The packages resolved with what they recommend (docker.io); absent in bundles made
    /// before it was recorded, which are then resolved again for such a package.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub recommends: BTreeSet<String>,
    /// By file name (in the release's directory).
    pub debs: BTreeMap<String, Deb>,
}

impl Release {
    /// The release's files, relative to its directory: the .debs and the index.
    pub fn files(&self) -> impl Iterator<Item = &str> {
        self.debs.keys().map(String::as_str).chain([INDEX])
    }

    /// What was asked for: each package and whether with its recommends.
    pub fn asked(&self) -> BTreeSet<build::Wanted> {
        self.packages
            .keys()
            .map(|name| build::Wanted {
                name: name.clone(),
                recommends: self.recommends.contains(name),
            })
            .collect()
    }

    /// Whether it holds every package of `wanted` (resolved with its recommends when asked so).
    pub fn holds(&self, wanted: &BTreeSet<build::Wanted>) -> bool {
        wanted.iter().all(|w| {
            self.packages.contains_key(&w.name)
                && (!w.recommends || self.recommends.contains(&w.name))
        })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Deb {
    pub package: String,
    pub version: String,
    pub arch: String,
    pub size: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Image {
    /// The image reference inside the archive (`registry.image`).
    pub name: String,
    /// Relative to the bundle.
    pub file: String,
}

impl Manifest {
    /// The manifest of the bundle in `dir`.
    pub fn load(dir: &Path) -> Result<Manifest> {
        let path = dir.join(MANIFEST);
        let text = crate::fsutil::read_text_limited(&path, "bundle manifest", MANIFEST_LIMIT)?;
        let m: Manifest = serde_json::from_str(&text).with_context(|| {
            format!(
                "{} is not a bundle manifest: build the bundle with `regboot bundle`",
                path.display()
            )
        })?;
        if m.version != 1 {
            bail!(
                "{}: bundle version {} is not supported (this regboot reads 1): rebuild it with \
                 this regboot's `regboot bundle`",
                path.display(),
                m.version
            );
        }
        Ok(m)
    }

    /// The SHA-256 of `file` (relative to the bundle), as the manifest records it.
    pub fn sha256(&self, file: &str) -> Result<&str> {
        self.files
            .get(file)
            .map(String::as_str)
            .with_context(|| format!("the bundle's manifest lists no {file}: rebuild the bundle"))
    }
}

/// A release as the bundle names it: `debian-12-amd64`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ReleaseKey {
    pub os: String,
    pub version: String,
    /// Debian's name for the architecture (amd64, arm64, ...).
    pub arch: String,
}

impl std::fmt::Display for ReleaseKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}-{}", self.os, self.version, self.arch)
    }
}

impl std::str::FromStr for ReleaseKey {
    type Err = anyhow::Error;

    /// `debian-12-amd64`, `ubuntu-24.04-arm64`.
    fn from_str(s: &str) -> Result<Self> {
        let mut parts = s.splitn(3, '-');
        match (parts.next(), parts.next(), parts.next()) {
            (Some(os), Some(version), Some(arch))
                if [os, version, arch].iter().all(|p| {
                    !p.is_empty()
                        && p.chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_')
                }) =>
            {
                let key = ReleaseKey {
                    os: os.into(),
                    version: version.into(),
                    arch: arch.into(),
                };
                codename(&key)?;
                Ok(key)
            }
            _ => bail!(
                "release {s:?} is not OS-VERSION-ARCH: name it like debian-12-amd64 or \
                 ubuntu-24.04-arm64 (os-release's ID and VERSION_ID, Debian's architecture)"
            ),
        }
    }
}

impl ReleaseKey {
    /// The release of a probed host (`None`: its OS has no apt, or no VERSION_ID).
    pub fn of(facts: &Facts) -> Option<ReleaseKey> {
        if facts.os.family != Some(crate::facts::OsFamily::Debian) {
            return None;
        }
        Some(ReleaseKey {
            os: facts.os.id.clone(),
            version: facts.os.version.clone()?,
            arch: deb_arch(&facts.arch).to_string(),
        })
    }
}

/// Debian's architecture name for `uname -m`.
pub fn deb_arch(machine: &str) -> &str {
    match machine {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "armv7l" => "armhf",
        "i686" | "i386" => "i386",
        "ppc64le" => "ppc64el",
        other => other,
    }
}

/// The suite name of a release regboot can bundle.
pub fn codename(key: &ReleaseKey) -> Result<&'static str> {
    Ok(match (key.os.as_str(), key.version.as_str()) {
        ("debian", "11") => "bullseye",
        ("debian", "12") => "bookworm",
        ("debian", "13") => "trixie",
        ("ubuntu", "20.04") => "focal",
        ("ubuntu", "22.04") => "jammy",
        ("ubuntu", "24.04") => "noble",
        _ => bail!(
            "regboot cannot bundle {} {}: it bundles debian 11-13 and ubuntu 20.04, 22.04 and \
             24.04; install the packages on such hosts beforehand",
            key.os,
            key.version
        ),
    })
}

/// The file apt stores a downloaded package as (`:` of an epoch escaped as `%3a`).
pub fn deb_file(package: &str, version: &str, arch: &str) -> String {
    format!("{package}_{}_{arch}.deb", version.replace(':', "%3a"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn release_keys_read_and_refuse() {
        let k: ReleaseKey = "debian-12-amd64".parse().unwrap();
        assert_eq!(k.to_string(), "debian-12-amd64");
        assert_eq!(codename(&k).unwrap(), "bookworm");
        let u: ReleaseKey = "ubuntu-24.04-arm64".parse().unwrap();
        assert_eq!(codename(&u).unwrap(), "noble");
        for bad in [
            "debian-12",
            "debian-12-",
            "debian-99-amd64",
            "debian-12-am d64",
        ] {
            assert!(bad.parse::<ReleaseKey>().is_err(), "{bad}");
        }
        assert_eq!(
            deb_file("zlib1g", "1:1.2.13.dfsg-1", "amd64"),
            "zlib1g_1%3a1.2.13.dfsg-1_amd64.deb"
        );
    }
}
