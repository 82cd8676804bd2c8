//! What a host has now, read in one round trip: OS family, init, the managed files' hashes,
//! the contents of the files regboot merges into, and the docker engine's image and container.

use std::collections::HashMap;

use anyhow::{Context, Result, bail};
use base64::Engine;

use crate::host::RemoteHost;

const PROBE: &str = include_str!("probe.sh");

/// A file as the host has it (`None` when missing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileState {
    pub sha256: String,
    pub mode: u32,
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
    pub os_id: String,
    pub os_like: String,
    pub systemd: bool,
    pub files: HashMap<String, Option<FileState>>,
    pub contents: HashMap<String, Option<Vec<u8>>>,
    pub docker: Docker,
    /// The registry image's id, when asked and present.
    pub image_id: Option<String>,
    pub container: Option<Container>,
}

/// What to ask a host about.
#[derive(Debug, Default)]
pub struct ProbeRequest {
    pub image: Option<String>,
    pub hash: Vec<String>,
    pub content: Vec<String>,
}

pub async fn probe(host: &RemoteHost, req: &ProbeRequest) -> Result<HostState> {
    let mut args: Vec<String> = vec![req.image.clone().unwrap_or_default()];
    args.extend(req.hash.iter().map(|p| format!("h:{p}")));
    args.extend(req.content.iter().map(|p| format!("c:{p}")));
    let arg_refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = host
        .run("reading the host's state", PROBE, &arg_refs, None)
        .await?;
    parse(&out.stdout_text()).with_context(|| format!("{}: unexpected probe output", host.name))
}

fn parse(text: &str) -> Result<HostState> {
    let mut st = HostState {
        os_id: String::new(),
        os_like: String::new(),
        systemd: false,
        files: HashMap::new(),
        contents: HashMap::new(),
        docker: Docker::Missing,
        image_id: None,
        container: None,
    };
    for line in text.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        match f.as_slice() {
            ["os", "id", v] => st.os_id = v.to_string(),
            ["os", "like", v] => st.os_like = v.to_string(),
            ["os", "version", _] => {}
            ["init", v] => st.systemd = *v == "systemd",
            ["hash", p, "-", "-"] => {
                st.files.insert(p.to_string(), None);
            }
            ["hash", p, sha, mode] => {
                let mode = u32::from_str_radix(mode, 8).context("file mode")?;
                st.files.insert(
                    p.to_string(),
                    Some(FileState {
                        sha256: sha.to_string(),
                        mode,
                    }),
                );
            }
            ["content", p, "-"] => {
                st.contents.insert(p.to_string(), None);
            }
            ["content", p, b64] => {
                let data = base64::engine::general_purpose::STANDARD
                    .decode(b64)
                    .context("file content")?;
                st.contents.insert(p.to_string(), Some(data));
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
        let text = "os\tid\tdebian\nos\tlike\t\nos\tversion\t12\ninit\tsystemd\n\
            hash\t/etc/a\tabc\t644\nhash\t/etc/b\t-\t-\ncontent\t/etc/hosts\taGk=\n\
            content\t/etc/docker/daemon.json\t-\ndocker\trunning\t20.10.24\n\
            image\tsha256:1\ncontainer\tsha256:1\ttrue\t{\"regboot.config\":\"x\"}\n";
        let st = parse(text).unwrap();
        assert_eq!(st.os_id, "debian");
        assert!(st.systemd);
        assert_eq!(st.files["/etc/a"].as_ref().unwrap().mode, 0o644);
        assert_eq!(st.files["/etc/b"], None);
        assert_eq!(st.contents["/etc/hosts"].as_deref(), Some(&b"hi"[..]));
        assert_eq!(st.contents["/etc/docker/daemon.json"], None);
        assert_eq!(st.image_id.as_deref(), Some("sha256:1"));
        let c = st.container.unwrap();
        assert!(c.running);
        assert_eq!(c.labels["regboot.config"], "x");
    }
}
