//! What a host has now, read in one round trip: architecture, init, the managed files' hashes
//! (and contents where a module merges or diffs them), and the docker engine's image and
//! container.

use std::collections::HashMap;

use anyhow::{Context, Result, bail};
use base64::Engine;

use crate::host::RemoteHost;

const PROBE: &str = include_str!("probe.sh");

/// A file as the host has it (`None` in the map when missing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileState {
    pub mode: u32,
    pub sha256: String,
    /// Only for files probed with their content.
    pub content: Option<Vec<u8>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Docker {
    Missing,
    Stopped,
    Running { version: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Container {
    pub image_id: String,
    pub running: bool,
    pub labels: HashMap<String, String>,
}

#[derive(Debug, Clone)]
pub struct HostState {
    /// `uname -m`.
    pub arch: String,
    pub systemd: bool,
    pub files: HashMap<String, Option<FileState>>,
    pub docker: Docker,
    /// The registry image's id, when asked and present.
    pub image_id: Option<String>,
    pub container: Option<Container>,
    /// Commands asked about: name -> found on PATH.
    pub commands: HashMap<String, bool>,
    /// systemd units asked about: name -> `systemctl is-active` (active, inactive, failed...).
    pub services: HashMap<String, String>,
}

impl HostState {
    /// The text of a file probed with its content; empty when missing.
    pub fn text(&self, path: &str) -> Option<String> {
        let file = self.files.get(path)?.as_ref()?;
        Some(String::from_utf8_lossy(file.content.as_deref()?).into_owned())
    }
}

/// What to ask a host about.
#[derive(Debug, Default)]
pub struct ProbeRequest {
    pub image: Option<String>,
    pub hash: Vec<String>,
    pub content: Vec<String>,
    pub commands: Vec<String>,
    pub services: Vec<String>,
}

pub async fn probe(host: &RemoteHost, req: &ProbeRequest) -> Result<HostState> {
    let mut args: Vec<String> = vec![req.image.clone().unwrap_or_default()];
    args.extend(req.hash.iter().map(|p| format!("h:{p}")));
    args.extend(req.content.iter().map(|p| format!("c:{p}")));
    args.extend(req.commands.iter().map(|c| format!("x:{c}")));
    args.extend(req.services.iter().map(|s| format!("s:{s}")));
    let arg_refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = host
        .run("reading the host's state", PROBE, &arg_refs, None)
        .await?;
    parse(&out.stdout_text()).context("unexpected probe output")
}

fn parse(text: &str) -> Result<HostState> {
    let mut st = HostState {
        arch: String::new(),
        systemd: false,
        files: HashMap::new(),
        docker: Docker::Missing,
        image_id: None,
        container: None,
        commands: HashMap::new(),
        services: HashMap::new(),
    };
    for line in text.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        match f.as_slice() {
            ["arch", v] => st.arch = v.to_string(),
            ["init", v] => st.systemd = *v == "systemd",
            ["file", p, "-"] => {
                st.files.insert(p.to_string(), None);
            }
            ["file", p, mode, sha, rest @ ..] => {
                let content = match rest {
                    [] => None,
                    [b64] => Some(
                        base64::engine::general_purpose::STANDARD
                            .decode(b64)
                            .context("file content")?,
                    ),
                    _ => bail!("unrecognized line {line:?}"),
                };
                let file = FileState {
                    mode: u32::from_str_radix(mode, 8).context("file mode")?,
                    sha256: sha.to_string(),
                    content,
                };
                st.files.insert(p.to_string(), Some(file));
            }
            ["command", name, path] => {
                st.commands.insert(name.to_string(), *path != "-");
            }
            ["service", name, state] => {
                st.services.insert(name.to_string(), state.to_string());
            }
            ["docker", "missing"] => st.docker = Docker::Missing,
            ["docker", "stopped"] => st.docker = Docker::Stopped,
            ["docker", "running", v] => {
                st.docker = Docker::Running {
                    version: v.to_string(),
                }
            }
            ["image", "-"] => st.image_id = None,
            ["image", id] => st.image_id = Some(id.to_string()),
            ["container", image, running, labels] => {
                st.container = Some(Container {
                    image_id: image.to_string(),
                    running: *running == "true",
                    labels: serde_json::from_str::<Option<HashMap<String, String>>>(labels)
                        .context("container labels")?
                        .unwrap_or_default(),
                })
            }
            _ => bail!("unrecognized line {line:?}"),
        }
    }
    Ok(st)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_record() {
        let text = "arch\tx86_64\ninit\tsystemd\n\
            file\t/etc/a\t644\tabc\nfile\t/etc/b\t-\nfile\t/etc/hosts\t600\tx\taGk=\n\
            command\tnginx\t/usr/sbin/nginx\ncommand\tkeepalived\t-\nservice\tnginx\tactive\n\
            docker\trunning\t20.10.24\n\
            image\tsha256:1\ncontainer\tsha256:1\ttrue\t{\"regboot.config\":\"x\"}\n";
        let st = parse(text).unwrap();
        assert_eq!(st.arch, "x86_64");
        assert!(st.systemd);
        assert_eq!(st.files["/etc/a"].as_ref().unwrap().mode, 0o644);
        assert_eq!(st.files["/etc/b"], None);
        let hosts = st.files["/etc/hosts"].as_ref().unwrap();
        assert_eq!(
            (hosts.mode, hosts.content.as_deref()),
            (0o600, Some(&b"hi"[..]))
        );
        assert_eq!(st.image_id.as_deref(), Some("sha256:1"));
        assert!(st.commands["nginx"] && !st.commands["keepalived"]);
        assert_eq!(st.services["nginx"], "active");
        let c = st.container.unwrap();
        assert!(c.running);
        assert_eq!(c.labels["regboot.config"], "x");
    }
}
