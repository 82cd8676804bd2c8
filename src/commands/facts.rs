use std::process::ExitCode;

use anyhow::{Context, Result};
use serde::Serialize;

use crate::cli::{Cli, Output};
use crate::engine::fleet;
use crate::engine::limit;
use crate::engine::probe::ProbeRequest;
use crate::engine::report::Failure;
use crate::facts::Facts;
use crate::inventory;
use crate::ssh::ExecError;

const DAEMON_JSON: &str = "/etc/docker/daemon.json";

/// One host's line of `regboot facts`.
#[derive(Debug, Serialize)]
struct Row {
    host: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    facts: Option<HostFacts>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<Failure>,
}

#[derive(Debug, Serialize)]
struct HostFacts {
    #[serde(flatten)]
    facts: Facts,
    /// Root, or sudo without a password (with or without a PTY).
    sudo_nopasswd: bool,
    daemon_json_exists: bool,
    /// From TCP connect to authenticated, in milliseconds.
    connect_ms: u64,
}

/// `regboot facts`: the fleet layer's probe, printed.
pub fn facts(cli: &Cli, forks: usize, limit: Option<&str>) -> Result<ExitCode> {
    let inv = inventory::load(cli.inventory_path()?)?;
    let hosts = limit::select(&inv, limit)?;
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    let rows: Vec<Row> = runtime.block_on(async {
        let request = |_: &_| ProbeRequest {
            hash: vec![DAEMON_JSON.into()],
            versions: true,
            ..ProbeRequest::default()
        };
        let mut nodes = fleet::connect_probe(&hosts, forks, request, |_| false).await;
        let rows = nodes
            .iter()
            .map(|n| {
                let facts = n.state.as_ref().map(|st| HostFacts {
                    sudo_nopasswd: st.facts.sudo_nopasswd(),
                    daemon_json_exists: st.files.get(DAEMON_JSON).is_some_and(Option::is_some),
                    connect_ms: u64::try_from(n.connect_time.as_millis()).unwrap_or(u64::MAX),
                    facts: st.facts.clone(),
                });
                // regboot cannot manage a non-root host whose sudo wants a password.
                let error = match (n.failure(), &facts) {
                    (Some(f), _) => Some(f),
                    (None, Some(f)) if !f.sudo_nopasswd => Some(Failure::new(
                        "sudo-needs-password",
                        &n.host.name,
                        &ExecError::SudoPasswordRequired {
                            host: n.host.name.clone(),
                            user: n.host.ssh.user.clone(),
                        }
                        .to_string(),
                        None,
                    )),
                    _ => None,
                };
                Row {
                    host: n.host.name.clone(),
                    facts,
                    error,
                }
            })
            .collect();
        fleet::close(&mut nodes).await;
        rows
    });

    match cli.output {
        Output::Json => super::json::print(&serde_json::json!({ "hosts": rows }))?,
        Output::Text => print_table(&rows),
    }
    let failed: Vec<&Row> = rows.iter().filter(|r| r.error.is_some()).collect();
    if failed.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    eprintln!("\n{} of {} host(s) failed:", failed.len(), rows.len());
    for row in failed {
        if let Some(e) = &row.error {
            eprintln!("  {}: {}", row.host, e.message);
            if let Some(hint) = &e.hint {
                eprintln!("    fix: {hint}");
            }
        }
    }
    Ok(ExitCode::from(1))
}

fn print_table(rows: &[Row]) {
    let header = [
        "HOST",
        "OS",
        "FAMILY",
        "INIT",
        "DOCKER",
        "OTHER RUNTIMES",
        "KUBERNETES",
        "SUDO",
        "DAEMON.JSON",
        "CONNECT",
    ];
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let Some(HostFacts {
                facts: f,
                daemon_json_exists,
                connect_ms,
                ..
            }) = &r.facts
            else {
                let kind = r.error.as_ref().map_or("", |e| e.code);
                return vec![r.host.clone(), format!("FAILED ({kind})")];
            };
            let docker = match (&f.docker.version, f.docker.installed, f.docker.running) {
                (_, false, _) => "absent".to_string(),
                (v, true, running) => format!(
                    "{} {}",
                    v.as_deref().unwrap_or("?"),
                    if running { "running" } else { "stopped" }
                ),
            };
            vec![
                r.host.clone(),
                format!("{} {}", f.os.id, f.os.version.as_deref().unwrap_or(""))
                    .trim()
                    .to_string(),
                f.os.family
                    .map_or("other".to_string(), |fam| json_word(&fam)),
                json_word(&f.init),
                docker,
                other_runtimes(f),
                kubernetes(f.kubernetes.as_ref()),
                json_word(&f.sudo),
                if *daemon_json_exists { "yes" } else { "no" }.to_string(),
                format!("{connect_ms} ms"),
            ]
        })
        .collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    // A failed host's one wide cell must not stretch the OS column.
    for row in cells.iter().filter(|r| r.len() == header.len()) {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.len());
        }
    }
    let line = |cols: Vec<&str>| {
        let padded: Vec<String> = cols
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        println!("{}", padded.join("  ").trim_end());
    };
    line(header.to_vec());
    for row in &cells {
        line(row.iter().map(String::as_str).collect());
    }
}

/// containerd (and where its CRI plugin reads registry hosts), podman, buildah, CRI-O.
fn other_runtimes(f: &crate::facts::Facts) -> String {
    let version = |r: &crate::facts::Runtime| r.version.clone().unwrap_or_else(|| "?".into());
    let mut out = Vec::new();
    let c = &f.containerd;
    if c.runtime.installed {
        let cri = match (&c.config, &c.config_error) {
            (_, Some(_)) => "config unreadable".to_string(),
            (Some(cfg), _) if !cfg.cri => "CRI off".to_string(),
            (Some(cfg), _) => match &cfg.config_path {
                Some(p) => format!("config_path {p}"),
                None => "config_path unset".to_string(),
            },
            (None, _) => "no config file".to_string(),
        };
        out.push(format!("containerd {} ({cri})", version(&c.runtime)));
    }
    for (name, r) in [
        ("podman", &f.podman),
        ("buildah", &f.buildah),
        ("cri-o", &f.crio),
    ] {
        if r.installed {
            out.push(format!("{name} {}", version(r)));
        }
    }
    if out.is_empty() {
        "-".to_string()
    } else {
        out.join(", ")
    }
}

/// The Kubernetes node a host is: `k3s server v1.30.4+k3s1 running`, `kubelet stopped`, `-`.
fn kubernetes(k: Option<&crate::facts::Kubernetes>) -> String {
    let Some(k) = k else {
        return "-".to_string();
    };
    let mut words = vec![k.distribution.name().to_string()];
    words.extend(k.role.map(|r| json_word(&r)));
    words.extend(k.version.clone());
    words.push(if k.active { "running" } else { "stopped" }.to_string());
    words.join(" ")
}

/// An enum's serde name (debian, systemd, nopasswd...), so text and JSON say the same.
fn json_word(v: &impl Serialize) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::Kubernetes;

    #[test]
    fn the_kubernetes_column_names_distribution_role_version_and_state() {
        let k3s = Kubernetes::from_unit("k3s-agent", "active", "v1.30.4+k3s1").unwrap();
        assert_eq!(kubernetes(Some(&k3s)), "k3s agent v1.30.4+k3s1 running");
        let kubelet = Kubernetes::from_unit("kubelet", "inactive", "").unwrap();
        assert_eq!(kubernetes(Some(&kubelet)), "kubelet stopped");
        assert_eq!(kubernetes(None), "-");
    }
}
