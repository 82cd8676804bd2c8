//! `regboot ui`: the catalog page, served on 127.0.0.1 until Ctrl-C.

use std::net::Ipv4Addr;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};

use super::catalog::Source;
use crate::cli::{Cli, Output};

pub fn ui(cli: &Cli, limit: Option<&str>, port: u16) -> Result<ExitCode> {
    let source = Arc::new(Source::load(cli, limit)?);
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
        let read = move || {
            let source = source.clone();
            async move { source.read().await }
        };
        tokio::select! {
            served = crate::ui::serve(listener, token, read) => served?,
            stop = tokio::signal::ctrl_c() => stop.context("waiting for Ctrl-C")?,
        }
        Ok(ExitCode::SUCCESS)
    })
}
