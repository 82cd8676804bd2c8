//! `regboot ui`: the catalog page, served on 127.0.0.1 until Ctrl-C. Every read goes through
//! SSH connections opened for it and closed after (as `catalog` and `certs check` do).

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow};
use time::OffsetDateTime;

use super::catalog::Source;
use crate::catalog::{self, Report};
use crate::cli::{Cli, Output};
use crate::deployed;
use crate::engine::fleet;
use crate::host::RemoteHost;
use crate::inventory::TlsMode;
use crate::pki::StateDir;
use crate::pki::check;
use crate::tls_setup as setup;
use crate::ui::{Backend, Details, Trust, details};

pub fn ui(cli: &Cli, limit: Option<&str>, port: u16) -> Result<ExitCode> {
    let backend = Replicas {
        source: Source::load(cli, limit)?,
        state_dir: cli.state_dir.clone(),
        limit: limit.map(String::from),
    };
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async {
        // Loopback only, by address: the page is not for other machines.
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, port))
            .await
            .with_context(|| format!("cannot listen on 127.0.0.1:{port}"))?;
        let token = crate::ui::token();
        let url = format!("http://{}/{token}/", listener.local_addr()?);
        match cli.output {
            Output::Json => super::json::print(&serde_json::json!({ "url": url }))?,
            Output::Text => println!("{url}"),
        }
        eprintln!("the registry catalog page is served at that URL until Ctrl-C");
        tokio::select! {
            served = crate::ui::serve(listener, token, backend) => served?,
            stop = tokio::signal::ctrl_c() => stop.context("waiting for Ctrl-C")?,
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// The registry replicas of the inventory, read as `catalog` reads them.
struct Replicas {
    source: Source,
    state_dir: Option<PathBuf>,
    limit: Option<String>,
}

impl Replicas {
    fn auth(&self) -> Option<(&str, &str)> {
        self.source
            .auth
            .as_ref()
            .map(|(u, p)| (u.as_str(), p.as_str()))
    }

    /// `GET path` on one replica's registry.
    async fn get(&self, remote: &RemoteHost, path: String) -> Result<Vec<u8>> {
        let (inv, ca) = (&self.source.inv, self.source.ca.as_deref());
        catalog::get_on(inv, remote, ca, self.auth(), &path).await
    }

    /// Connect to the registry host `name`.
    async fn connect(&self, name: &str) -> Result<Vec<fleet::Node<'_>>> {
        let host = self
            .source
            .hosts
            .iter()
            .find(|h| h.name == name)
            .with_context(|| format!("{name} is not a registry host of the inventory"))?;
        let mut nodes = fleet::connect(&[host], 1).await;
        if nodes[0].remote.is_none() {
            let error = nodes[0].error.take().unwrap_or_default();
            fleet::close(&mut nodes).await;
            return Err(anyhow!("cannot connect to {name}: {error}"));
        }
        Ok(nodes)
    }
}

impl Backend for Replicas {
    async fn catalog(&self) -> Report {
        self.source.read().await
    }

    async fn details(&self, host: &str, repo: &str, reference: &str) -> Result<Details> {
        let mut nodes = self.connect(host).await?;
        let remote = nodes[0].remote.as_ref().expect("connected");
        let details = details::read(repo, reference, |path| self.get(remote, path)).await;
        fleet::close(&mut nodes).await;
        details
    }

    async fn dates(&self, wanted: Vec<(String, String, String)>) -> BTreeMap<String, String> {
        let mut dates = BTreeMap::new();
        let mut by_host: BTreeMap<&str, Vec<(&str, &str)>> = BTreeMap::new();
        for (host, repo, digest) in &wanted {
            by_host.entry(host).or_default().push((repo, digest));
        }
        for (host, images) in by_host {
            let Ok(mut nodes) = self.connect(host).await else {
                continue;
            };
            let remote = nodes[0].remote.as_ref().expect("connected");
            for (repo, digest) in images {
                let read = details::read(repo, digest, |path| self.get(remote, path));
                if let Some(created) = read
                    .await
                    .ok()
                    .and_then(|d| d.images.into_iter().find_map(|i| i.created))
                {
                    dates.insert(digest.to_string(), created);
                }
            }
            fleet::close(&mut nodes).await;
        }
        dates
    }

    async fn delete(&self, repo: &str, digest: &str) -> Vec<(String, Result<bool, String>)> {
        let hosts: Vec<_> = self.source.hosts.iter().collect();
        let mut nodes = fleet::connect(&hosts, 50).await;
        let (inv, ca) = (&self.source.inv, self.source.ca.as_deref());
        let mut results = Vec::new();
        // One replica after the other: on a shared storage the first deletes, the others
        // find it gone.
        for n in &nodes {
            let result = match &n.remote {
                Some(remote) => catalog::delete_on(inv, remote, ca, self.auth(), repo, digest)
                    .await
                    .map_err(|e| format!("{e:#}")),
                None => Err(n.error.clone().unwrap_or_default()),
            };
            results.push((n.host.name.clone(), result));
        }
        fleet::close(&mut nodes).await;
        results
    }

    async fn trust(&self) -> Result<Trust> {
        let inv = &self.source.inv;
        let renew_before = setup::renew_before(&inv.tls);
        if !matches!(inv.tls.mode, TlsMode::SelfSigned) {
            let mut trust = Trust::of(Vec::new(), renew_before);
            trust.note = Some(
                "tls.mode is not self-signed: regboot holds no CA of its own to check here; \
                 `regboot certs check -i` reads a provided certificate"
                    .into(),
            );
            return Ok(trust);
        }
        let now = OffsetDateTime::now_utc();
        let state = StateDir::at(&inv.state_dir(self.state_dir.as_deref()));
        let spec = setup::leaf_spec(inv);
        let mut rows = check::local_rows(&state, Some(&spec), renew_before, now)?;
        let survey = deployed::survey_hosts(inv, self.limit.as_deref(), 50).await?;
        rows.extend(deployed::check_rows(&survey, &state, renew_before, now)?);
        Ok(Trust::of(rows, renew_before))
    }

    fn delete_enabled(&self) -> bool {
        self.source.inv.registry.delete_enabled
    }

    fn registry(&self) -> String {
        let r = &self.source.inv.registry;
        match r.port {
            443 => r.hostname.clone(),
            port => format!("{}:{port}", r.hostname),
        }
    }
}
