//! Building a bundle on a machine that reaches the mirrors: for each release, apt runs with a
//! private sources list, lists, cache and an empty dpkg status (so it resolves the whole
//! dependency closure, whatever a host already has), downloads into the release's directory
//! (apt keeps what it already has there: a re-run fetches only what is missing), and the
//! records of the chosen versions become the release's flat repository index.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};

use super::{Deb, INDEX, Image, Manifest, Release, ReleaseKey, codename, deb_file};

/// A package apply may install, and whether apt brings what it recommends (docker.io).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Wanted {
    pub name: String,
    pub recommends: bool,
}

/// What to put in a bundle.
#[derive(Debug)]
pub struct Spec {
    pub releases: BTreeMap<ReleaseKey, BTreeSet<Wanted>>,
    /// The registry image: its reference and a `docker save` archive of it (`None`: saved
    /// from this machine's docker, pulled first when missing).
    pub image: Option<(String, Option<PathBuf>)>,
    /// The Debian mirror (default http://deb.debian.org/debian); Ubuntu uses its archive.
    pub mirror: Option<String>,
}

/// Build or complete the bundle in `dir`; prints a line per step on stderr.
pub fn build(dir: &Path, spec: &Spec) -> Result<Manifest> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut manifest = Manifest {
        version: 1,
        ..Manifest::default()
    };
    for (key, wanted) in &spec.releases {
        let start = Instant::now();
        let release = release(dir, key, wanted, spec.mirror.as_deref())
            .with_context(|| format!("bundling {key}"))?;
        eprintln!(
            "{key}: {} packages, {} files ({:.1} s)",
            release.packages.len(),
            release.debs.len(),
            start.elapsed().as_secs_f64()
        );
        manifest.releases.insert(key.to_string(), release);
    }
    if let Some((name, archive)) = &spec.image {
        image(dir, name, archive.as_deref())?;
        manifest.image = Some(Image {
            name: name.clone(),
            file: super::IMAGE.into(),
        });
    }
    let mut files: Vec<String> = manifest
        .releases
        .iter()
        .flat_map(|(key, r)| {
            r.debs
                .keys()
                .map(move |f| format!("{key}/{f}"))
                .chain([format!("{key}/{INDEX}")])
        })
        .collect();
    files.extend(manifest.image.as_ref().map(|i| i.file.clone()));
    for f in files {
        let sum = sha256_file(&dir.join(&f))?;
        manifest.files.insert(f, sum);
    }
    let text = serde_json::to_vec_pretty(&manifest)?;
    crate::fsutil::write_atomic(&dir.join(super::MANIFEST), &text, 0o644)?;
    Ok(manifest)
}

fn sha256_file(path: &Path) -> Result<String> {
    use std::io::Read;
    let mut f =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f
            .read(&mut buf)
            .with_context(|| format!("cannot read {}", path.display()))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

/// apt with everything private to `work`: the sources, lists, cache, an empty status.
struct Apt {
    work: PathBuf,
    archives: PathBuf,
    arch: String,
}

impl Apt {
    fn command(&self, args: &[&str]) -> Command {
        let w = |p: &str| format!("{}", self.work.join(p).display());
        let opts = [
            format!("Dir::State::Lists={}", w("lists")),
            format!("Dir::State::status={}", w("status")),
            format!("Dir::Cache={}", w("cache")),
            format!("Dir::Cache::archives={}", self.archives.display()),
            format!("Dir::Etc::SourceList={}", w("sources.list")),
            format!("Dir::Etc::SourceParts={}", w("parts")),
            format!("Dir::Etc::Preferences={}", w("preferences")),
            format!("Dir::Etc::PreferencesParts={}", w("parts")),
            format!("APT::Architecture={}", self.arch),
            format!("APT::Architectures={}", self.arch),
            "APT::Sandbox::User=root".into(),
            "Debug::NoLocking=1".into(),
            "Acquire::Languages=none".into(),
        ];
        let mut c = Command::new(args[0]);
        for o in &opts {
            c.arg("-o").arg(o);
        }
        c.args(&args[1..]).env("LC_ALL", "C");
        c
    }

    fn run(&self, args: &[&str]) -> Result<String> {
        let out = self
            .command(args)
            .output()
            .with_context(|| format!("cannot run {} (is apt installed here?)", args[0]))?;
        if !out.status.success() {
            bail!(
                "`{}` failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

fn sources(key: &ReleaseKey, mirror: Option<&str>) -> Result<String> {
    let suite = codename(key)?;
    let (main, security, keyring, components) = match key.os.as_str() {
        "ubuntu" => {
            let archive = if matches!(key.arch.as_str(), "amd64" | "i386") {
                "http://archive.ubuntu.com/ubuntu"
            } else {
                "http://ports.ubuntu.com/ubuntu-ports"
            };
            let m = mirror.unwrap_or(archive).to_string();
            (
                m.clone(),
                (m, "-security"),
                "ubuntu-archive-keyring.gpg",
                "main universe",
            )
        }
        _ => (
            mirror.unwrap_or("http://deb.debian.org/debian").to_string(),
            (
                "http://deb.debian.org/debian-security".to_string(),
                "-security",
            ),
            "debian-archive-keyring.gpg",
            "main",
        ),
    };
    let keyring = format!("/usr/share/keyrings/{keyring}");
    if !Path::new(&keyring).exists() {
        bail!(
            "{keyring} is missing: install the {} package to check the {} archive's signatures",
            keyring
                .trim_start_matches("/usr/share/keyrings/")
                .trim_end_matches(".gpg"),
            key.os
        );
    }
    let line =
        |uri: &str, suite: &str| format!("deb [signed-by={keyring}] {uri} {suite} {components}\n");
    Ok([
        line(&main, suite),
        line(&main, &format!("{suite}-updates")),
        line(&security.0, &format!("{suite}{}", security.1)),
    ]
    .concat())
}

fn release(
    dir: &Path,
    key: &ReleaseKey,
    wanted: &BTreeSet<Wanted>,
    mirror: Option<&str>,
) -> Result<Release> {
    let apt = Apt {
        work: dir.join(".apt").join(key.to_string()),
        archives: dir.join(key.to_string()),
        arch: key.arch.clone(),
    };
    for d in ["lists/partial", "cache", "parts"] {
        std::fs::create_dir_all(apt.work.join(d))?;
    }
    std::fs::create_dir_all(apt.archives.join("partial"))?;
    std::fs::write(apt.work.join("status"), "")?;
    std::fs::write(apt.work.join("preferences"), "")?;
    std::fs::write(apt.work.join("sources.list"), sources(key, mirror)?)?;
    apt.run(&["apt-get", "-qq", "update"])?;

    let mut packages = BTreeMap::new();
    let mut debs: BTreeMap<String, Deb> = BTreeMap::new();
    for w in wanted {
        let mut args = vec!["apt-get", "-s", "-y", "install"];
        let mut get = vec!["apt-get", "-qq", "-y", "--download-only", "install"];
        if !w.recommends {
            args.push("--no-install-recommends");
            get.push("--no-install-recommends");
        }
        args.push(&w.name);
        get.push(&w.name);
        let closure = simulated(&apt.run(&args)?);
        if closure.is_empty() {
            bail!(
                "apt resolved nothing for {}: is it a package of {key}?",
                w.name
            );
        }
        apt.run(&get)?;
        let mut files = Vec::new();
        for d in closure {
            let file = deb_file(&d.package, &d.version, &d.arch);
            let meta = std::fs::metadata(apt.archives.join(&file))
                .with_context(|| format!("apt downloaded no {file} for {}", w.name))?;
            files.push(file.clone());
            debs.insert(
                file,
                Deb {
                    size: meta.len(),
                    ..d
                },
            );
        }
        packages.insert(w.name.clone(), files);
    }
    write_index(&apt, &debs)?;
    // What apt left beside the packages (its lock, partial downloads) is not part of a bundle.
    let _ = std::fs::remove_dir_all(apt.archives.join("partial"));
    let _ = std::fs::remove_file(apt.archives.join("lock"));
    Ok(Release {
        os: key.os.clone(),
        version: key.version.clone(),
        codename: codename(key)?.into(),
        arch: key.arch.clone(),
        packages,
        debs,
    })
}

/// The packages `apt-get -s install` would install: `Inst NAME (VERSION SOURCES [ARCH])`.
fn simulated(out: &str) -> Vec<Deb> {
    out.lines()
        .filter_map(|l| {
            let rest = l.strip_prefix("Inst ")?;
            let (package, rest) = rest.split_once(" (")?;
            let inner = &rest[..rest.find(')')?];
            let version = inner.split_whitespace().next()?;
            let arch = &inner[inner.rfind('[')? + 1..inner.rfind(']')?];
            Some(Deb {
                package: package.into(),
                version: version.into(),
                arch: arch.into(),
                size: 0,
            })
        })
        .collect()
}

/// The release's `Packages`: apt's own records of the chosen versions, each pointing at its
/// file beside the index.
fn write_index(apt: &Apt, debs: &BTreeMap<String, Deb>) -> Result<()> {
    let specs: Vec<String> = debs
        .values()
        .map(|d| format!("{}:{}={}", d.package, d.arch, d.version))
        .collect();
    let mut args = vec!["apt-cache", "show", "--no-all-versions"];
    args.extend(specs.iter().map(String::as_str));
    let out = apt.run(&args)?;
    let mut index = String::new();
    let mut seen = BTreeSet::new();
    for record in out.split("\n\n").filter(|r| !r.trim().is_empty()) {
        let field = |name: &str| {
            record
                .lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(": "))
                .unwrap_or_default()
        };
        let file = deb_file(field("Package"), field("Version"), field("Architecture"));
        if !debs.contains_key(&file) || !seen.insert(file.clone()) {
            continue;
        }
        for line in record.lines() {
            if line.starts_with("Filename: ") {
                index.push_str(&format!("Filename: ./{file}\n"));
            } else {
                index.push_str(line);
                index.push('\n');
            }
        }
        index.push('\n');
    }
    if seen.len() != debs.len() {
        bail!(
            "apt-cache show found {} of the {} chosen packages",
            seen.len(),
            debs.len()
        );
    }
    std::fs::write(apt.archives.join(INDEX), index)?;
    Ok(())
}

/// The registry image into the bundle: the inventory's `image_archive`, or saved from this
/// machine's docker (pulled first when it has none). Kept when the archive there is the same.
fn image(dir: &Path, name: &str, archive: Option<&Path>) -> Result<()> {
    let dest = dir.join(super::IMAGE);
    std::fs::create_dir_all(dest.parent().unwrap_or(dir))?;
    match archive {
        Some(src) => {
            let same = dest.exists() && sha256_file(&dest)? == sha256_file(src)?;
            if !same {
                std::fs::copy(src, &dest).with_context(|| {
                    format!("cannot copy {} to {}", src.display(), dest.display())
                })?;
            }
        }
        None => {
            let docker = |args: &[&str]| -> Result<bool> {
                Ok(Command::new("docker")
                    .args(args)
                    .stdout(std::process::Stdio::null())
                    .status()
                    .context("cannot run docker: set registry.image_archive, or use --no-image")?
                    .success())
            };
            if !docker(&["image", "inspect", name])? && !docker(&["pull", "--quiet", name])? {
                bail!("cannot pull {name}: set registry.image_archive, or use --no-image");
            }
            let tmp = dest.with_extension("tar.tmp");
            if !docker(&["save", "-o", &tmp.to_string_lossy(), name])? {
                bail!("docker save {name} failed");
            }
            std::fs::rename(&tmp, &dest)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_apt_would_install() {
        let out = "NOTE: simulation\nInst libgcc-s1 (12.2.0-14+deb12u1 Debian:12.15/oldstable [amd64]) []\n\
                   Inst zlib1g (1:1.2.13.dfsg-1+deb12u1 Debian-Security:12/oldstable-security [amd64])\n\
                   Inst libkrb5-3 (1.20.1-2+deb12u5 Debian:12.15/oldstable, Debian-Security:12/oldstable-security [amd64])\n\
                   Conf zlib1g (1:1.2.13.dfsg-1+deb12u1 Debian-Security:12/oldstable-security [amd64])\n";
        let got: Vec<(String, String, String)> = simulated(out)
            .into_iter()
            .map(|d| (d.package, d.version, d.arch))
            .collect();
        let want = [
            ("libgcc-s1", "12.2.0-14+deb12u1", "amd64"),
            ("zlib1g", "1:1.2.13.dfsg-1+deb12u1", "amd64"),
            ("libkrb5-3", "1.20.1-2+deb12u5", "amd64"),
        ]
        .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()));
        assert_eq!(got, want);
    }
}
