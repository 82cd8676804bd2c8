use std::process::ExitCode;

use anyhow::Result;
use serde::Serialize;

use crate::cli::{Cli, Output};
use crate::facts::{self, Facts};
use crate::inventory;
use crate::ssh::{self, ExecError};

/// One host's line of `regboot facts`.
#[derive(Debug, Serialize)]
struct Row {
    host: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    facts: Option<Facts>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<Failure>,
}

#[derive(Debug, Serialize)]
struct Failure {
    kind: &'static str,
    message: String,
}

pub fn facts(cli: &Cli, forks: usize) -> Result<ExitCode> {
    let inv = inventory::load(cli.inventory_path()?)?;
    let targets = inv.ssh_targets();
    let results = tokio::runtime::Runtime::new()?.block_on(ssh::run_all(
        &targets,
        forks,
        |session| async move {
            let facts = facts::gather(&session).await;
            session.close().await;
            facts
        },
    ));
    let rows: Vec<Row> = results
        .into_iter()
        .map(|(target, result)| {
            let (facts, error) = match result {
                Err(e) => (
                    None,
                    Some(Failure {
                        kind: e.kind(),
                        message: e.to_string(),
                    }),
                ),
                Ok(Err(e)) => (
                    None,
                    Some(Failure {
                        kind: "facts",
                        message: e.to_string(),
                    }),
                ),
                // regboot cannot manage a non-root host whose sudo wants a password.
                Ok(Ok(f)) if target.sudo && !f.sudo_nopasswd => {
                    let e = ExecError::SudoPasswordRequired {
                        host: target.name.clone(),
                        user: target.user.clone(),
                    };
                    (
                        Some(f),
                        Some(Failure {
                            kind: "sudo-needs-password",
                            message: e.to_string(),
                        }),
                    )
                }
                Ok(Ok(f)) => (Some(f), None),
            };
            Row {
                host: target.name,
                facts,
                error,
            }
        })
        .collect();

    match cli.output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&rows)?),
        Output::Text => print_table(&rows),
    }
    let failed: Vec<&Row> = rows.iter().filter(|r| r.error.is_some()).collect();
    if failed.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    eprintln!("\n{} of {} host(s) failed:", failed.len(), rows.len());
    for row in failed {
        if let Some(e) = &row.error {
            eprintln!("  {}", e.message);
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
        "SUDO",
        "DAEMON.JSON",
        "CONNECT",
    ];
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let Some(f) = &r.facts else {
                let kind = r.error.as_ref().map_or("", |e| e.kind);
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
                json_word(&f.sudo),
                if f.daemon_json_exists { "yes" } else { "no" }.to_string(),
                format!("{} ms", f.connect_ms),
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

/// An enum's serde name (debian, systemd, nopasswd...), so text and JSON say the same.
fn json_word(v: &impl Serialize) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}
