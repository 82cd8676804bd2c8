//! Building a bundle on a machine that reaches the mirrors: for each release, apt runs with a
//! private sources list, lists, cache and an empty dpkg status (so it resolves the whole
//! dependency closure, whatever a host already has), downloads into the release's directory,
//! and the records of the chosen versions become the release's flat repository index.
//!
//! Again on the same directory: a release whose manifest entry already holds every package
//! asked for (with its recommends when asked so), and whose files all match the manifest's
//! SHA-256, is kept as it is without asking apt anything (seconds). Otherwise apt runs for it
//! again, for what it held and what is asked now (a bundle only grows), and downloads only the
//! .debs its directory lacks. `refresh` re-resolves every release against fresh lists.

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
    /// Resolve every release again against fresh package lists, even a complete one (newer
    /// security updates come in; the .debs already there are not downloaded again).
    pub refresh: bool,
}

/// Build or complete the bundle in `dir`; prints a line per step on stderr.
pub fn build(dir: &Path, spec: &Spec) -> Result<Manifest> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    // An unreadable or absent manifest: every release is resolved (apt still keeps its .debs).
    let old = Manifest::load(dir).unwrap_or_default();
    let mut manifest = Manifest {
        version: 1,
        ..Manifest::default()
    };
    // Digests already checked against the files, by path in the bundle.
    let mut checked = BTreeMap::new();
    for (key, wanted) in &spec.releases {
        let start = Instant::now();
        let name = key.to_string();
        let before = old.releases.get(&name);
        if let Some((r, sums)) = kept(dir, &name, wanted, &old, spec.refresh)? {
            eprintln!(
                "{key}: complete, nothing fetched ({} packages, {} files checked in {:.1} s)",
                r.packages.len(),
                sums.len(),
                start.elapsed().as_secs_f64()
            );
            checked.extend(sums);
            manifest.releases.insert(name, r.clone());
            continue;
        }
        let mut asked = wanted.clone();
        asked.extend(before.map(Release::asked).unwrap_or_default());
        let release = release(dir, key, &asked, spec.mirror.as_deref())
            .with_context(|| format!("bundling {key}"))?;
        eprintln!(
            "{key}: {} packages, {} files ({:.1} s)",
            release.packages.len(),
            release.debs.len(),
            start.elapsed().as_secs_f64()
        );
        manifest.releases.insert(name, release);
    }
    // Releases bundled before and not asked for now stay, when their files are whole.
    for (name, r) in &old.releases {
        if manifest.releases.contains_key(name) {
            continue;
        }
        match intact(dir, name, r, &old)? {
            Some(sums) => {
                checked.extend(sums);
                manifest.releases.insert(name.clone(), r.clone());
            }
            None => eprintln!("{name}: left out (name it with --release to fetch it again)"),
        }
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
        .flat_map(|(key, r)| r.files().map(move |f| format!("{key}/{f}")))
        .collect();
    files.extend(manifest.image.as_ref().map(|i| i.file.clone()));
    for f in files {
        let sum = match checked.remove(&f) {
            Some(sum) => sum,
            None => sha256_file(&dir.join(&f))?,
        };
        manifest.files.insert(f, sum);
    }
    let text = serde_json::to_vec_pretty(&manifest)?;
    crate::fsutil::write_atomic(&dir.join(super::MANIFEST), &text, 0o644)?;
    Ok(manifest)
}

/// Release `name` of the `old` manifest and its files' digests, when it can stay as it is: it
/// holds every package of `wanted` and its files are whole (and no `refresh` was asked for).
fn kept<'a>(
    dir: &Path,
    name: &str,
    wanted: &BTreeSet<Wanted>,
    old: &'a Manifest,
    refresh: bool,
) -> Result<Option<(&'a Release, BTreeMap<String, String>)>> {
    match old.releases.get(name) {
        Some(r) if !refresh && r.holds(wanted) => Ok(intact(dir, name, r, old)?.map(|s| (r, s))),
        _ => Ok(None),
    }
}

/// The digests of release `name`'s files when every one is there and matches `old`'s
/// manifest (`None`, saying which one on stderr, when one is missing or differs).
fn intact(
    dir: &Path,
    name: &str,
    release: &Release,
    old: &Manifest,
) -> Result<Option<BTreeMap<String, String>>> {
    let mut sums = BTreeMap::new();
    for f in release.files() {
        let path = format!("{name}/{f}");
        let want = old.files.get(&path);
        let file = dir.join(&path);
        let got = if file.is_file() {
            Some(sha256_file(&file)?)
        } else {
            None
        };
        if got.is_none() || got.as_ref() != want {
            let why = if got.is_none() { "missing" } else { "changed" };
            eprintln!("{name}: {path} is {why}: resolving the release again");
            return Ok(None);
        }
        sums.insert(path, got.unwrap_or_default());
    }
    Ok(Some(sums))
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
        recommends: wanted
            .iter()
            .filter(|w| w.recommends)
            .map(|w| w.name.clone())
            .collect(),
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

    fn wanted(list: &[(&str, bool)]) -> BTreeSet<Wanted> {
        list.iter()
            .map(|(name, recommends)| Wanted {
                name: name.to_string(),
                recommends: *recommends,
            })
            .collect()
    }

    /// A bundle of debian-12-amd64 holding nginx (2 files) and docker.io with recommends.
    fn bundle(dir: &Path) -> Manifest {
        let key = "debian-12-amd64";
        std::fs::create_dir_all(dir.join(key)).unwrap();
        let mut m = Manifest {
            version: 1,
            ..Manifest::default()
        };
        let mut release = Release {
            os: "debian".into(),
            version: "12".into(),
            codename: "bookworm".into(),
            arch: "amd64".into(),
            packages: BTreeMap::new(),
            recommends: BTreeSet::from(["docker.io".to_string()]),
            debs: BTreeMap::new(),
        };
        for (p, deps) in [
            ("nginx", &["nginx", "libc6"][..]),
            ("docker.io", &["docker.io"]),
        ] {
            let files: Vec<String> = deps.iter().map(|d| deb_file(d, "1", "amd64")).collect();
            for (d, f) in deps.iter().zip(&files) {
                std::fs::write(dir.join(key).join(f), format!("deb {d}")).unwrap();
                release.debs.insert(
                    f.clone(),
                    Deb {
                        package: d.to_string(),
                        version: "1".into(),
                        arch: "amd64".into(),
                        size: 5,
                    },
                );
            }
            release.packages.insert(p.into(), files);
        }
        std::fs::write(dir.join(key).join(INDEX), "Package: nginx\n").unwrap();
        for f in release.files() {
            let path = format!("{key}/{f}");
            m.files
                .insert(path.clone(), sha256_file(&dir.join(&path)).unwrap());
        }
        m.releases.insert(key.into(), release);
        std::fs::write(
            dir.join(crate::bundle::MANIFEST),
            serde_json::to_vec(&m).unwrap(),
        )
        .unwrap();
        m
    }

    /// A complete release stays as it is, without apt: the whole build is a digest check. More
    /// packages, a recommends not resolved before, a damaged or missing file, or `refresh`
    /// send it back to apt.
    #[test]
    fn a_complete_release_is_kept_and_anything_missing_resolves_it_again() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let old = bundle(dir);
        let key = "debian-12-amd64";
        let asked = wanted(&[("nginx", false), ("docker.io", true)]);
        let (_, sums) = kept(dir, key, &asked, &old, false).unwrap().unwrap();
        assert_eq!(sums.len(), 4);
        assert!(
            kept(dir, key, &wanted(&[("nginx", false)]), &old, false)
                .unwrap()
                .is_some()
        );
        assert!(
            kept(dir, key, &asked, &old, true).unwrap().is_none(),
            "refresh"
        );
        let more = wanted(&[("nginx", false), ("keepalived", false)]);
        assert!(
            kept(dir, key, &more, &old, false).unwrap().is_none(),
            "more"
        );
        let nginx_recommends = wanted(&[("nginx", true)]);
        assert!(
            kept(dir, key, &nginx_recommends, &old, false)
                .unwrap()
                .is_none()
        );
        assert!(
            kept(dir, "debian-13-amd64", &asked, &old, false)
                .unwrap()
                .is_none()
        );

        // The whole build, with a mirror that cannot answer: nothing is asked of apt.
        let spec = Spec {
            releases: BTreeMap::from([(key.parse().unwrap(), asked.clone())]),
            image: None,
            mirror: Some("http://127.0.0.1:9/debian".into()),
            refresh: false,
        };
        let again = build(dir, &spec).unwrap();
        assert_eq!(again.files, old.files);
        assert_eq!(again.releases[key].asked(), asked);

        let deb = dir.join(key).join(deb_file("libc6", "1", "amd64"));
        std::fs::write(&deb, "damaged").unwrap();
        assert!(
            kept(dir, key, &asked, &old, false).unwrap().is_none(),
            "damaged"
        );
        std::fs::remove_file(&deb).unwrap();
        assert!(
            kept(dir, key, &asked, &old, false).unwrap().is_none(),
            "missing"
        );
    }

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
