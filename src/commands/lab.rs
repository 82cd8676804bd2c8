use std::process::ExitCode;
use std::time::Instant;

use anyhow::Result;

use crate::cli::{Cli, LabCommand, Output};
use crate::lab::{self, LabOptions};

pub fn lab(cli: &Cli, cmd: &LabCommand) -> Result<ExitCode> {
    match cmd {
        LabCommand::Up {
            hosts,
            profile,
            release,
            containerd,
            k3s,
            name,
            dir,
            air_gapped,
            bundle,
        } => {
            let started = Instant::now();
            let lab = lab::up(&LabOptions {
                name: name.clone(),
                hosts: *hosts,
                profile: *profile,
                release: *release,
                containerd: *containerd,
                dir: dir.clone(),
                k3s: k3s.clone(),
                air_gapped: *air_gapped,
                bundle: *bundle,
            })?;
            if cli.output == Output::Json {
                super::json::print(&lab)?;
                return Ok(ExitCode::SUCCESS);
            }
            println!(
                "lab {:?} is up ({:.1}s): {} hosts on docker network {} ({})",
                lab.name,
                started.elapsed().as_secs_f64(),
                lab.hosts.len(),
                lab.network.name,
                lab.network.subnet
            );
            for (i, h) in lab.hosts.iter().enumerate() {
                println!(
                    "  {:<8} {:<16} port {:<5} user {:<5} {:<9} {:<11} container {}",
                    h.name,
                    h.address,
                    h.port,
                    h.user,
                    lab.profile.role(i + 1),
                    h.flavor.name(),
                    h.container
                );
            }
            println!("files in {}:", lab.dir.display());
            for (what, path) in [
                ("inventory", &lab.inventory_path),
                ("SSH key", &lab.key_path),
                ("known_hosts", &lab.known_hosts_path),
                ("registry password", &lab.password_path),
                ("registry image", &lab.image_archive),
            ] {
                println!("  {what:<18} {}", path.display());
            }
            if let Some(h) = lab.hosts.first() {
                println!(
                    "reach a host: ssh -i {} -o UserKnownHostsFile={} -o StrictHostKeyChecking=yes -p {} {}@{}",
                    lab.key_path.display(),
                    lab.known_hosts_path.display(),
                    h.port,
                    h.user,
                    h.address
                );
            }
            if let Some(vip) = &lab.vip {
                println!("VIP {vip}");
            }
            if let Some(env) = &lab.s3_env {
                println!("the inventory reads the S3 keys from the environment:");
                println!("  set -a; . {}; set +a", env.display());
            }
            println!("next: regboot apply -i {}", lab.inventory_path.display());
        }
        LabCommand::Status { name } => {
            let labs = lab::status(name.as_deref())?;
            if cli.output == Output::Json {
                super::json::print(&serde_json::json!({ "labs": labs }))?;
                return Ok(ExitCode::SUCCESS);
            }
            if labs.is_empty() {
                println!("no lab runs on this docker engine (start one with `regboot lab up`)");
            }
            for l in &labs {
                let net = l
                    .network
                    .as_ref()
                    .map(|n| format!("{} ({})", n.name, n.subnet))
                    .unwrap_or_else(|| "no network".into());
                let dir = l
                    .dir
                    .as_ref()
                    .map(|d| d.display().to_string())
                    .unwrap_or_else(|| "-".into());
                println!(
                    "lab {:?}: {} hosts, {net}, files in {dir}",
                    l.name,
                    l.hosts.len()
                );
                for (h, state) in &l.hosts {
                    println!(
                        "  {:<8} {:<9} {:<16} port {:<5} user {:<5} container {}",
                        h.name, state, h.address, h.port, h.user, h.container
                    );
                }
            }
        }
        LabCommand::Down { name, dir, purge } => {
            let report = lab::down(name, dir.as_deref(), *purge)?;
            if cli.output == Output::Json {
                super::json::print(&report)?;
                return Ok(ExitCode::SUCCESS);
            }
            println!(
                "lab {name:?} is down: removed {} containers{}{}",
                report.containers.len(),
                report
                    .network
                    .as_ref()
                    .map(|n| format!(", network {n}"))
                    .unwrap_or_default(),
                report
                    .dir
                    .as_ref()
                    .map(|d| format!(", files in {}", d.display()))
                    .unwrap_or_default()
            );
            for image in &report.images {
                println!("  removed image {image}");
            }
            for kept in &report.images_kept {
                println!("  kept image {kept}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
