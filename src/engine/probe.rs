//! What a host has now, read in one round trip by one script (`probe.sh`): its facts (OS,
//! init, sudo, runtimes), the managed files' hashes (and contents where a module merges or
//! diffs them), the commands, units, directories, images and containers modules ask about.

use std::collections::HashMap;
use std::sync::LazyLock;

use anyhow::{Context, Result, bail};
use base64::Engine;
use sha2::{Digest, Sha256};

use crate::facts::{Containerd, Facts, InitSystem, Os, Runtime, SudoAccess};
use crate::runtime_api::{ApiError, docker};
use crate::ssh::{ExecError, RemoteCommand, Session};

/// The probe as sent: without its comment lines (every byte of a request is buffered once per
/// connection, which counts on a large fleet).
static PROBE: LazyLock<String> = LazyLock::new(|| {
    include_str!("probe.sh")
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .fold(String::new(), |mut s, l| {
            s.push_str(l);
            s.push('\n');
            s
        })
});

/// containerd's config, which the probe reads when containerd is installed.
const CONTAINERD_CONFIG: &str = "/etc/containerd/config.toml";

/// Most of a file the probe reads (`probe.sh` sends one byte more, so more is seen).
const FILE_LIMIT: usize = 1 << 20;

/// A file's content from the probe, refused over `FILE_LIMIT`: no file regboot merges or
/// compares is near that size.
fn content(path: &str, b64: &str) -> Result<Vec<u8>> {
    let data = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .with_context(|| format!("the content of {path}"))?;
    if data.len() > FILE_LIMIT {
        bail!(
            "{path} on the host is larger than {} MiB, more than regboot reads from a file it \
             manages: look there at what wrote it",
            FILE_LIMIT >> 20
        );
    }
    Ok(data)
}

/// A file as the host has it (`None` in the map when missing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileState {
    pub mode: u32,
    pub sha256: String,
    /// Only for files probed with their content.
    pub content: Option<Vec<u8>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Container {
    pub image_id: String,
    pub running: bool,
    pub labels: HashMap<String, String>,
}

#[derive(Debug, Clone, Default)]
pub struct HostState {
    pub facts: Facts,
    pub files: HashMap<String, Option<FileState>>,
    /// Images asked for by name: name -> id, when present.
    pub images: HashMap<String, String>,
    /// Containers asked for by name, when present.
    pub containers: HashMap<String, Container>,
    /// Commands asked about: name -> found on PATH.
    pub commands: HashMap<String, bool>,
    /// systemd units asked about: name -> `systemctl is-active` (active, inactive, failed...).
    pub services: HashMap<String, String>,
    /// Directories asked about: path -> whether it is one.
    pub dirs: HashMap<String, bool>,
    /// Debug builds: the module reading this state and what it asked the probe for
    /// (`footprint::scoped`); reading anything else through the accessors below panics.
    #[cfg(debug_assertions)]
    pub asked: Option<std::sync::Arc<(&'static str, ProbeRequest)>>,
}

impl HostState {
    /// Panics (debug builds) when the module this state is scoped to did not ask for `what`.
    fn check(&self, what: impl FnOnce() -> String, asked: impl FnOnce(&ProbeRequest) -> bool) {
        #[cfg(debug_assertions)]
        if let Some(scope) = &self.asked {
            assert!(
                asked(&scope.1),
                "module {} reads {} without asking the probe for it: add it to its want()",
                scope.0,
                what()
            );
        }
        #[cfg(not(debug_assertions))]
        let _ = (what, asked);
    }

    /// A file probed with or without its content; `None` when missing.
    pub fn file(&self, path: &str) -> Option<&FileState> {
        let has = |l: &[String]| l.iter().any(|p| p == path);
        self.check(
            || format!("file {path}"),
            |r| has(&r.hash) || has(&r.content),
        );
        self.files.get(path)?.as_ref()
    }

    /// The text of a file probed with its content; `None` when missing.
    pub fn text(&self, path: &str) -> Option<String> {
        self.check(
            || format!("the content of {path}"),
            |r| r.content.iter().any(|p| p == path),
        );
        self.text_of(path)
    }

    fn text_of(&self, path: &str) -> Option<String> {
        let file = self.files.get(path)?.as_ref()?;
        Some(String::from_utf8_lossy(file.content.as_deref()?).into_owned())
    }

    /// Whether command `name` is on PATH (`None`: not asked).
    pub fn command(&self, name: &str) -> Option<bool> {
        self.check(
            || format!("command {name}"),
            |r| r.commands.iter().any(|c| c == name),
        );
        self.commands.get(name).copied()
    }

    /// `systemctl is-active` of `unit` (`None`: not asked).
    pub fn service(&self, unit: &str) -> Option<&str> {
        self.check(
            || format!("unit {unit}"),
            |r| r.services.iter().any(|s| s == unit),
        );
        self.services.get(unit).map(String::as_str)
    }

    /// Whether `path` is a directory (`None`: not asked).
    pub fn dir(&self, path: &str) -> Option<bool> {
        self.check(
            || format!("directory {path}"),
            |r| r.dirs.iter().any(|d| d == path),
        );
        self.dirs.get(path).copied()
    }

    /// The id of image `name`, when present (and the engine runs).
    pub fn image_id(&self, name: &str) -> Option<&str> {
        self.check(
            || format!("image {name}"),
            |r| r.images.iter().any(|i| i == name),
        );
        self.images.get(name).map(String::as_str)
    }

    /// Container `name`, when present (and the engine runs).
    pub fn container(&self, name: &str) -> Option<&Container> {
        self.check(
            || format!("container {name}"),
            |r| r.containers.iter().any(|c| c == name),
        );
        self.containers.get(name)
    }

    /// Whether the probe could read the host as root (else only its facts are known).
    pub fn as_root(&self) -> bool {
        self.facts.sudo_nopasswd()
    }
}

/// What to ask a host about.
#[derive(Debug, Default)]
pub struct ProbeRequest {
    /// Images by name: their ids.
    pub images: Vec<String>,
    /// Containers by name: image id, whether running, labels.
    pub containers: Vec<String>,
    pub hash: Vec<String>,
    pub content: Vec<String>,
    pub commands: Vec<String>,
    pub services: Vec<String>,
    pub dirs: Vec<String>,
    /// Every runtime's version and dockerd's image store (else only what a module needs:
    /// containerd's version when its config sets no `config_path`, dockerd's).
    pub versions: bool,
}

impl ProbeRequest {
    /// Each path and name once (modules ask for what they share, like the manifest), a path
    /// asked with its content not asked again without.
    pub fn dedup(&mut self) {
        fn once(list: &mut Vec<String>, also: &[String]) {
            let mut seen = std::collections::HashSet::new();
            list.retain(|x| !also.contains(x) && seen.insert(x.clone()));
        }
        once(&mut self.content, &[]);
        let content = self.content.clone();
        once(&mut self.hash, &content);
        once(&mut self.commands, &[]);
        once(&mut self.services, &[]);
        once(&mut self.dirs, &[]);
        once(&mut self.images, &[]);
        once(&mut self.containers, &[]);
    }
}

/// Read the host behind `session`: as root, or as the login user when sudo wants a password
/// (then only the facts are worth anything, and `HostState::as_root` says so). A root login
/// reads dockerd from its API over the socket beside the script (its version, then each image
/// and container asked for by name), so the script starts no docker CLI (each start tens of
/// ms of the host's CPU); sshd opens the socket as the login user, so a sudo login keeps the
/// `docker` commands as root, and so does a root login whose API calls fail (said in -v).
pub async fn probe(session: &Session, req: &ProbeRequest) -> Result<HostState> {
    let api = !session.target().sudo;
    let (text, read) = tokio::join!(run(session, req, api), async {
        if api {
            Some(from_api(session, req).await)
        } else {
            None
        }
    });
    let text = text?;
    let left_to_api = text.lines().any(|l| l == "docker\tapi");
    match read {
        Some(Ok(read)) if left_to_api => {
            let mut st = parse(&text).context("unexpected probe output")?;
            st.facts.docker = Runtime {
                installed: true,
                running: true,
                version: Some(read.version),
            };
            st.facts.docker_containerd_store = read.containerd_store;
            (st.images, st.containers) = (read.images, read.containers);
            Ok(st)
        }
        Some(Err(e)) if left_to_api => {
            let host = &session.target().name;
            tracing::info!("{host}: reading dockerd with the docker CLI: {e}");
            let text = run(session, req, false).await?;
            parse(&text).context("unexpected probe output")
        }
        _ => parse(&text).context("unexpected probe output"),
    }
}

/// What dockerd's API says: its facts, and the images and containers `req` names (each a
/// request on one socket connection; a missing one is left out, as the script leaves it).
struct FromApi {
    version: String,
    /// Read with the versions only (`GET /info`).
    containerd_store: bool,
    images: HashMap<String, String>,
    containers: HashMap<String, Container>,
}

async fn from_api(session: &Session, req: &ProbeRequest) -> Result<FromApi, ApiError> {
    let engine = docker::Engine::connect(session).await?;
    // GET /info only when asked for every version (dockerd starts two programs for it).
    let (version, containerd_store) = if req.versions {
        let info = engine.info().await?;
        let store = info.containerd_store();
        (info.server_version, store)
    } else {
        (engine.version().await?, false)
    };
    let mut images = HashMap::new();
    for name in &req.images {
        if let Some(id) = engine.image_id(name).await? {
            images.insert(name.clone(), id);
        }
    }
    let mut containers = HashMap::new();
    for name in &req.containers {
        if let Some(c) = engine.container(name).await? {
            let container = Container {
                image_id: c.image,
                running: c.state.running,
                labels: c.config.labels.unwrap_or_default(),
            };
            containers.insert(name.clone(), container);
        }
    }
    Ok(FromApi {
        version,
        containerd_store,
        images,
        containers,
    })
}

/// The probe script's output; `api`: dockerd's facts are read from its API instead.
async fn run(session: &Session, req: &ProbeRequest, api: bool) -> Result<String> {
    let mut args: Vec<String> = req.hash.iter().map(|p| format!("h:{p}")).collect();
    args.extend(req.content.iter().map(|p| format!("c:{p}")));
    args.extend(req.commands.iter().map(|c| format!("x:{c}")));
    args.extend(req.services.iter().map(|s| format!("s:{s}")));
    args.extend(req.dirs.iter().map(|d| format!("d:{d}")));
    args.extend(req.images.iter().map(|i| format!("i:{i}")));
    args.extend(req.containers.iter().map(|c| format!("k:{c}")));
    if req.versions {
        args.push("v:".into());
    }
    if api {
        args.push("a:".into());
    }
    let cmd = RemoteCommand::new("sh")
        .arg("-c")
        .arg(PROBE.as_str())
        .arg("regboot")
        .args(args.iter().map(String::as_str));
    let out = match session.exec_as_root(&cmd, None).await {
        Err(ExecError::SudoPasswordRequired { .. }) => session.exec(&cmd, None).await,
        other => other,
    }
    .context("reading the host's state: the command could not run")?;
    if !out.success() {
        bail!(
            "reading the host's state failed (exit {}): {}",
            out.status,
            out.stderr_tail().trim()
        );
    }
    Ok(out.stdout_text())
}

/// The facts of the host behind `session`: the probe with nothing else asked.
pub async fn facts(session: &Session) -> Result<Facts> {
    let req = ProbeRequest {
        versions: true,
        ..ProbeRequest::default()
    };
    Ok(probe(session, &req).await?.facts)
}

fn runtime(fields: &[&str]) -> Runtime {
    let version = fields
        .first()
        .filter(|v| **v != "-" && !v.is_empty())
        .map(|v| v.to_string());
    Runtime {
        installed: true,
        running: false,
        version,
    }
}

fn container(image: &str, running: &str, labels: &str) -> Result<Container> {
    Ok(Container {
        image_id: image.to_string(),
        running: running == "true",
        labels: serde_json::from_str::<Option<HashMap<String, String>>>(labels)
            .context("container labels")?
            .unwrap_or_default(),
    })
}

fn parse(text: &str) -> Result<HostState> {
    let mut st = HostState::default();
    let mut os_release = String::new();
    let mut containerd_config: Option<String> = None;
    // The config came as a file asked with its content.
    let mut containerd_config_read = false;
    for line in text.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        match f.as_slice() {
            ["arch", v] => st.facts.arch = v.to_string(),
            ["init", v] => {
                st.facts.init = match *v {
                    "systemd" => InitSystem::Systemd,
                    "openrc" => InitSystem::Openrc,
                    _ => InitSystem::Other,
                }
            }
            ["os", rest @ ..] => {
                os_release.push_str(&rest.join("\t"));
                os_release.push('\n');
            }
            ["sudo", v] => {
                st.facts.sudo = match *v {
                    "root" => SudoAccess::Root,
                    "nopasswd" => SudoAccess::Nopasswd,
                    "requiretty" => SudoAccess::Requiretty,
                    "password" => SudoAccess::Password,
                    _ => SudoAccess::Missing,
                }
            }
            ["file", p, "-"] => {
                st.files.insert(p.to_string(), None);
            }
            // With its content (hashed here), or without (its hash in a `sha256` record).
            ["file", p, mode, "", rest @ ..] => {
                let content = match rest {
                    [] => None,
                    [b64] => Some(content(p, b64)?),
                    _ => bail!("unrecognized line {line:?}"),
                };
                let file = FileState {
                    mode: u32::from_str_radix(mode, 8).context("file mode")?,
                    sha256: content
                        .as_ref()
                        .map(|c| hex::encode(Sha256::digest(c)))
                        .unwrap_or_default(),
                    content,
                };
                st.files.insert(p.to_string(), Some(file));
            }
            ["sha256", p, sum] => {
                if let Some(Some(file)) = st.files.get_mut(*p) {
                    file.sha256 = sum.to_string();
                }
            }
            ["command", name, path] => {
                st.commands.insert(name.to_string(), *path != "-");
            }
            ["service", name, state] => {
                st.services.insert(name.to_string(), state.to_string());
            }
            ["dir", p, v] => {
                st.dirs.insert(p.to_string(), *v == "yes");
            }
            ["runtime", _, "-"] => {}
            ["runtime", "containerd", v @ ..] => st.facts.containerd.runtime = runtime(v),
            ["runtime", "podman", v @ ..] => st.facts.podman = runtime(v),
            ["runtime", "buildah", v @ ..] => st.facts.buildah = runtime(v),
            ["runtime", "crio", v @ ..] => st.facts.crio = runtime(v),
            ["runtime", ..] => {}
            ["containerd_config", "-"] => {}
            ["containerd_config", "file"] => containerd_config_read = true,
            ["containerd_config", b64] => {
                let text = content(CONTAINERD_CONFIG, b64)?;
                containerd_config = Some(String::from_utf8_lossy(&text).into_owned());
            }
            ["kube", unit, state, version] => {
                st.facts.kubernetes = crate::facts::Kubernetes::from_unit(unit, state, version)
            }
            ["docker_store", "containerd"] => st.facts.docker_containerd_store = true,
            ["docker", "missing"] => st.facts.docker = Runtime::default(),
            // Running: the caller has its facts from the API.
            ["docker", "api"] => st.facts.docker = runtime(&[]),
            ["docker", "stopped", v @ ..] => st.facts.docker = runtime(v),
            ["docker", "running", v @ ..] => {
                st.facts.docker = Runtime {
                    running: true,
                    ..runtime(v)
                }
            }
            ["image", _, "-"] => {}
            ["image", name, id] => {
                st.images.insert(name.to_string(), id.to_string());
            }
            ["container", name, image, running, labels] => {
                (st.containers).insert(name.to_string(), container(image, running, labels)?);
            }
            _ => bail!("unrecognized line {line:?}"),
        }
    }
    st.facts.os = Os::from_release(&os_release);
    if containerd_config_read {
        containerd_config = st.text_of(CONTAINERD_CONFIG);
    }
    let containerd = std::mem::take(&mut st.facts.containerd.runtime);
    st.facts.containerd = Containerd::with_config(containerd, containerd_config.as_deref());
    Ok(st)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The script run by this machine's sh gives facts that agree with this machine, and each
    /// file's mode, hash and content (names with spaces and pattern characters too).
    #[test]
    fn script_runs_locally_and_parses() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let file = |name: &str, data: &[u8], mode: u32| {
            let path = dir.path().join(name);
            std::fs::write(&path, data).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            path.display().to_string()
        };
        let (hashed, read) = (file("a b*", b"one\n", 0o600), file("c", b"two\tx", 0o644));
        let empty = file("e", b"", 0o640);
        let missing = dir.path().join("gone").display().to_string();
        let out = std::process::Command::new("sh")
            .args(["-c", PROBE.as_str(), "regboot", "h:/etc/os-release"])
            .args([
                format!("h:{hashed}"),
                format!("c:{read}"),
                format!("c:{empty}"),
            ])
            .args([format!("h:{missing}"), format!("c:{missing}")])
            .args(["x:sh", "x:no-such-command", "d:/etc", "d:/nonexistent-dir"])
            .env_remove("SUDO_USER")
            .output()
            .unwrap();
        assert!(out.status.success());
        let text = String::from_utf8_lossy(&out.stdout);
        let st = parse(&text).unwrap();
        let release = Os::from_release(&std::fs::read_to_string("/etc/os-release").unwrap());
        assert_eq!(st.facts.os, release);
        assert_eq!(st.facts.arch, std::env::consts::ARCH);
        assert!(st.files["/etc/os-release"].is_some() && st.commands["sh"]);
        assert!(!st.commands["no-such-command"]);
        assert!(st.dirs["/etc"] && !st.dirs["/nonexistent-dir"]);
        let sha = |data: &[u8]| hex::encode(Sha256::digest(data));
        let want = [
            (&hashed, 0o600, sha(b"one\n"), None),
            (&read, 0o644, sha(b"two\tx"), Some(b"two\tx".to_vec())),
            (&empty, 0o640, sha(b""), Some(Vec::new())),
        ];
        for (path, mode, sha256, content) in want {
            let got = st.files[path].clone();
            let want = FileState {
                mode,
                sha256,
                content,
            };
            assert_eq!(got, Some(want), "{path}: {text}");
        }
        assert_eq!(st.files[&missing], None);
    }

    /// Issue 26 item 10: a managed file the host grew huge is read only to just past the
    /// limit, then refused by name.
    #[test]
    fn the_probe_sends_at_most_a_mebibyte_of_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let (fits, huge) = (dir.path().join("fits"), dir.path().join("huge"));
        std::fs::write(&fits, vec![b'a'; FILE_LIMIT]).unwrap();
        std::fs::write(&huge, vec![b'b'; 8 * FILE_LIMIT]).unwrap();
        let run = |file: &std::path::Path| {
            let out = std::process::Command::new("sh")
                .arg("-c")
                .arg(PROBE.as_str())
                .arg("regboot")
                .arg(format!("c:{}", file.display()))
                .env_remove("SUDO_USER")
                .output()
                .unwrap();
            assert!(out.status.success());
            String::from_utf8(out.stdout).unwrap()
        };
        let st = parse(&run(&fits)).unwrap();
        let file = st.files[&fits.display().to_string()].as_ref().unwrap();
        assert_eq!(file.content.as_ref().unwrap().len(), FILE_LIMIT);
        let text = run(&huge);
        assert!(text.len() < 2 * FILE_LIMIT, "{} bytes sent", text.len());
        let err = format!("{:#}", parse(&text).unwrap_err());
        assert!(
            err.contains(&format!(
                "{} on the host is larger than 1 MiB",
                huge.display()
            )),
            "{err}"
        );
    }

    /// Images and containers by name, through a `docker` that answers like 20.10's: a blank
    /// line for a container that is missing, a failure for a missing image.
    #[test]
    fn images_and_containers_are_read_by_name() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let docker = dir.path().join("docker");
        std::fs::write(
            &docker,
            "#!/bin/sh\ncase \"$1 $2\" in\n\
             'info --format') printf '20.10.24\\tx=y \\n' ;;\n\
             'image inspect') [ \"$5\" = registry:2 ] && echo sha256:1 || exit 1 ;;\n\
             'inspect --type') echo; printf '/regboot-gc\\tsha256:2\\tfalse\\tnull\\n'; exit 1 ;;\n\
             esac\n",
        )
        .unwrap();
        std::fs::set_permissions(&docker, std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = format!(
            "{}:{}",
            dir.path().display(),
            std::env::var("PATH").unwrap()
        );
        let out = std::process::Command::new("sh")
            .args(["-c", PROBE.as_str(), "regboot", "i:registry:2", "i:gone:1"])
            .args(["k:regboot-registry", "k:regboot-gc"])
            .env("PATH", path)
            .env_remove("SUDO_USER")
            .output()
            .unwrap();
        assert!(out.status.success());
        let text = String::from_utf8_lossy(&out.stdout);
        let st = parse(&text).unwrap();
        assert!(st.facts.docker.running, "{text}");
        assert_eq!(st.images.len(), 1, "{text}");
        assert_eq!(st.images["registry:2"], "sha256:1");
        assert_eq!(st.containers.len(), 1, "{text}");
        let gc = &st.containers["regboot-gc"];
        assert!(!gc.running && gc.image_id == "sha256:2");
    }

    #[test]
    fn an_engine_left_to_its_api_is_installed_until_the_api_answers() {
        let st = parse("docker\tapi\n").unwrap();
        let d = &st.facts.docker;
        assert!(d.installed && !d.running && d.version.is_none());
    }

    #[test]
    fn parses_every_record() {
        let text = "arch\tx86_64\ninit\tsystemd\nos\tID=debian\nos\tVERSION_ID=\"12\"\nsudo\troot\n\
            file\t/etc/a\t644\t\nfile\t/etc/b\t-\nfile\t/etc/hosts\t600\t\taGk=\nsha256\t/etc/a\tabc\n\
            command\tnginx\t/usr/sbin/nginx\ncommand\tkeepalived\t-\nservice\tnginx\tactive\n\
            runtime\tcontainerd\t1.6.20~ds1\nruntime\tpodman\t-\nruntime\tbuildah\t1.28.2\nruntime\tcrio\t\n\
            containerd_config\tdmVyc2lvbj0yCltwbHVnaW5zLiJpby5jb250YWluZXJkLmdycGMudjEuY3JpIi5yZWdpc3RyeV0KY29uZmlnX3BhdGg9Ii9ldGMvY29udGFpbmVyZC9jZXJ0cy5kIgo=\n\
            kube\tk3s-agent\tactive\tv1.30.4+k3s1\n\
            docker\trunning\t20.10.24\ndocker_store\tcontainerd\n\
            image\tregistry:2\tsha256:1\nimage\tother:1\t-\n\
            container\tregboot-registry\tsha256:1\ttrue\t{\"regboot.config\":\"x\"}\n\
            container\tregboot-gc\tsha256:1\ttrue\tnull\n";
        let st = parse(text).unwrap();
        assert_eq!(st.facts.arch, "x86_64");
        assert_eq!(st.facts.init, InitSystem::Systemd);
        assert_eq!(st.facts.os.version.as_deref(), Some("12"));
        assert_eq!(st.facts.sudo, SudoAccess::Root);
        assert!(st.facts.docker.running && st.facts.containerd.runtime.installed);
        assert!(!st.facts.podman.installed && st.facts.buildah.installed);
        // Installed, its version not asked for.
        assert!(st.facts.crio.installed && st.facts.crio.version.is_none());
        assert!(st.facts.docker_containerd_store);
        let kube = st.facts.kubernetes.as_ref().unwrap();
        assert_eq!(
            (kube.service.as_str(), kube.role, kube.active),
            ("k3s-agent", Some(crate::facts::KubeRole::Agent), true)
        );
        assert_eq!(kube.version.as_deref(), Some("v1.30.4+k3s1"));
        let config = st.facts.containerd.config.as_ref().unwrap();
        assert_eq!((config.version, config.cri), (2, true));
        assert_eq!(
            config.config_path.as_deref(),
            Some("/etc/containerd/certs.d")
        );
        assert_eq!(st.facts.containerd.release(), (1, 6));
        let a = st.files["/etc/a"].as_ref().unwrap();
        assert_eq!(
            (a.mode, a.sha256.as_str(), &a.content),
            (0o644, "abc", &None)
        );
        assert_eq!(st.files["/etc/b"], None);
        let hosts = st.files["/etc/hosts"].as_ref().unwrap();
        assert_eq!(
            (hosts.mode, hosts.content.as_deref()),
            (0o600, Some(&b"hi"[..]))
        );
        // `printf hi | sha256sum`
        assert_eq!(
            hosts.sha256,
            "8f434346648f6b96df89dda901c5176b10a6d83961dd3c1ac88b59b2dc327aa4"
        );
        assert_eq!(st.images["registry:2"], "sha256:1");
        assert!(!st.images.contains_key("other:1"));
        assert!(st.commands["nginx"] && !st.commands["keepalived"]);
        assert_eq!(st.services["nginx"], "active");
        let c = &st.containers["regboot-registry"];
        assert!(c.running);
        assert_eq!(c.labels["regboot.config"], "x");
        assert!(st.containers["regboot-gc"].running);
    }
}
