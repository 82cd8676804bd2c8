//! `regboot catalog`: what every registry replica serves, and whether they agree.

use std::process::ExitCode;

use anyhow::{Context, Result};

use crate::catalog::{self, Replica, Report, printable};
use crate::cli::{Cli, Output};
use crate::engine::{fleet, limit};
use crate::host::RemoteHost;
use crate::inventory::{self, Host, Inventory, Role};
use crate::material::Material;
use crate::pki::StateDir;

/// What `catalog` and `ui` read: the registry hosts inside the limit, the CA to trust and a
/// login (read only: nothing is created in the state directory).
pub(super) struct Source {
    pub(super) inv: Inventory,
    pub(super) hosts: Vec<Host>,
    pub(super) ca: Option<String>,
    pub(super) auth: Option<(String, String)>,
}

impl Source {
    pub fn load(cli: &Cli, limit: Option<&str>) -> Result<Source> {
        let inv = inventory::load(cli.inventory_path()?)?;
        let hosts: Vec<Host> = limit::select(&inv, limit)?
            .into_iter()
            .filter(|h| h.has_role(Role::Registry))
            .cloned()
            .collect();
        anyhow::ensure!(!hosts.is_empty(), "no registry host inside --limit");
        let state = StateDir::at(&inv.state_dir(cli.state_dir.as_deref()));
        let material = Material::prepare(&inv, &state, true, false)?;
        Ok(Source {
            ca: material.tls.map(|t| t.ca_pem),
            auth: crate::modules::smoke_test::login(&inv, &state, true)?,
            inv,
            hosts,
        })
    }

    /// Connect to every replica (one connection each), read them all, and close.
    pub async fn read(&self) -> Report {
        let hosts: Vec<&Host> = self.hosts.iter().collect();
        let mut nodes = fleet::connect(&hosts, 50).await;
        let replicas: Vec<(&str, &RemoteHost)> = nodes
            .iter()
            .filter_map(|n| n.remote.as_ref().map(|r| (n.host.name.as_str(), r)))
            .collect();
        let auth = self.auth.as_ref().map(|(u, p)| (u.as_str(), p.as_str()));
        let mut report = catalog::read(&self.inv, &replicas, self.ca.as_deref(), auth).await;
        for n in nodes.iter().filter(|n| n.remote.is_none()) {
            report.replicas.push(Replica {
                host: n.host.name.clone(),
                images: Vec::new(),
                error: n.error.clone(),
            });
            report.agree = false;
        }
        fleet::close(&mut nodes).await;
        report
    }
}

pub fn catalog(cli: &Cli, limit: Option<&str>) -> Result<ExitCode> {
    let source = Source::load(cli, limit)?;
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    let report = runtime.block_on(source.read());
    match cli.output {
        Output::Json => super::json::print(&report)?,
        Output::Text => {
            for r in &report.replicas {
                // Names and errors carry what the registry answered: escaped for the terminal.
                match &r.error {
                    Some(e) => println!("{}: FAILED: {}", r.host, printable(e)),
                    None => {
                        println!("{}: {} image(s)", r.host, r.images.len());
                        for i in &r.images {
                            println!(
                                "  {}:{}  {}  {} bytes",
                                printable(&i.repository),
                                printable(&i.tag),
                                printable(&i.digest),
                                i.size
                            );
                        }
                    }
                }
            }
            for d in &report.differences {
                println!("differs: {}", printable(d));
            }
            println!(
                "{}",
                if report.agree {
                    "the replicas agree"
                } else {
                    "the replicas do NOT agree"
                }
            );
        }
    }
    Ok(if report.agree {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
