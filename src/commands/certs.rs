//! `regboot certs init | check | show`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use time::{Duration, OffsetDateTime};

use crate::cli::{Cli, Format, Output};
use crate::deployed;
use crate::inventory::{self, Inventory, TlsMode};
use crate::metrics::{self, Metrics};
use crate::pki::check::{self, CheckRow};
use crate::pki::leaf::LeafOutcome;
use crate::pki::provided::{self, ProvidedFiles, ProvidedReport};
use crate::pki::state::{CA_CERT, REGISTRY_CERT, REGISTRY_CHAIN};
use crate::pki::{CaOutcome, CertInfo, StateDir};
use crate::renew;
use crate::tls_setup as setup;

/// renew_before_days when only a state directory is given (the inventory's default).
const DEFAULT_RENEW_BEFORE_DAYS: i64 = 30;

/// Where the certificates to look at come from.
enum Source {
    /// regboot's own CA and server certificate in the state directory.
    SelfSigned {
        state: StateDir,
        renew_before: Duration,
    },
    Provided {
        files: ProvidedFiles,
        inv: Box<Inventory>,
    },
    Insecure,
}

fn source(cli: &Cli) -> Result<Source> {
    let Some(path) = &cli.inventory else {
        let dir = cli.state_dir.as_ref().context(
            "no inventory given: pass -i inventory.yml (or --state-dir DIR to look at a state directory alone)",
        )?;
        return Ok(Source::SelfSigned {
            state: StateDir::at(dir),
            renew_before: Duration::days(DEFAULT_RENEW_BEFORE_DAYS),
        });
    };
    let inv = inventory::load(path)?;
    Ok(match &inv.tls.mode {
        TlsMode::SelfSigned => Source::SelfSigned {
            state: StateDir::at(&inv.state_dir(cli.state_dir.as_deref())),
            renew_before: setup::renew_before(&inv.tls),
        },
        TlsMode::Provided { ca_cert, cert, key } => Source::Provided {
            files: ProvidedFiles {
                ca_cert: ca_cert.clone(),
                cert: cert.clone(),
                key: key.clone(),
            },
            inv: Box::new(inv),
        },
        TlsMode::Insecure => Source::Insecure,
    })
}

const INSECURE_NOTE: &str = "tls.mode is insecure: the registry serves plain HTTP and has no \
certificates (set tls.mode: self-signed to have regboot create them)";

pub fn certs_init(cli: &Cli, ca_validity: Option<Duration>) -> Result<ExitCode> {
    let inv = inventory::load(cli.inventory_path()?)?;
    if ca_validity.is_some() && inv.tls.mode != TlsMode::SelfSigned {
        bail!("--ca-validity makes regboot's own CA: it needs tls.mode self-signed");
    }
    match &inv.tls.mode {
        TlsMode::SelfSigned => init_self_signed(cli, &inv, ca_validity),
        TlsMode::Provided { ca_cert, cert, key } => {
            let files = ProvidedFiles {
                ca_cert: ca_cert.clone(),
                cert: cert.clone(),
                key: key.clone(),
            };
            let report = check_provided(&files, &inv)?;
            print_provided(cli, &files, &report)?;
            Ok(ExitCode::from(u8::from(!report.is_fit())))
        }
        TlsMode::Insecure => bail!("{INSECURE_NOTE}"),
    }
}

fn init_self_signed(cli: &Cli, inv: &Inventory, ca_validity: Option<Duration>) -> Result<ExitCode> {
    let state = StateDir::open(&inv.state_dir(cli.state_dir.as_deref()))?;
    let _lock = state.lock()?;
    if let Some(validity) = ca_validity {
        if state.read(CA_CERT)?.is_some() {
            bail!(
                "--ca-validity makes a new CA, and {} holds one already: `regboot rotate --ca` \
                 replaces it (or use another --state-dir for the rehearsal)",
                state.root().display()
            );
        }
        let spec = crate::pki::CaSpec {
            validity,
            ..setup::ca_spec(inv)
        };
        crate::pki::Ca::ensure(&state, &spec)?;
    }
    let (ca, ensured) = setup::ensure(&state, inv)?;
    let leaf_pem = state
        .read(REGISTRY_CERT)?
        .context("the registry certificate was not written")?;
    let leaf = crate::pki::cert_info(&leaf_pem)?;
    let ca_outcome = match ensured.ca {
        _ if ca_validity.is_some() => "created",
        CaOutcome::Created => "created",
        CaOutcome::Kept => "kept",
    };
    let (leaf_outcome, reason) = match &ensured.leaf {
        LeafOutcome::Kept => ("kept", None),
        LeafOutcome::Issued { reason } => ("issued", Some(reason.to_string())),
    };
    match cli.output {
        Output::Json => {
            let value = json!({
                "state_dir": state.root(),
                "ca": { "outcome": ca_outcome, "path": state.path(CA_CERT), "certificate": ca.info() },
                "registry": {
                    "outcome": leaf_outcome,
                    "reason": reason,
                    "path": state.path(REGISTRY_CERT),
                    "chain": state.path(REGISTRY_CHAIN),
                    "certificate": leaf,
                },
            });
            super::json::print(&value)?;
        }
        Output::Text => {
            println!("state directory: {}", state.root().display());
            println!(
                "CA: {ca_outcome} ({}, {}, valid until {})",
                ca.info().subject,
                ca.info().key_algorithm,
                crate::pki::inspect::date(ca.info().not_after)
            );
            match &ca.info().name_constraints {
                Some(c) => println!("  may sign only for {}", c.summary()),
                None => println!(
                    "  unconstrained: it may sign for any name; `regboot rotate --ca` replaces it \
                     with a CA limited to the registry's names"
                ),
            }
            if ca.info().key_algorithm != inv.tls.key_algorithm.label() {
                println!(
                    "  note: the existing CA keeps its {} key; tls.key_algorithm ({}) applies to the \
                     server certificate and to a new CA only",
                    ca.info().key_algorithm,
                    inv.tls.key_algorithm.label()
                );
            }
            match reason {
                Some(reason) => println!("server certificate: issued ({reason})"),
                None => println!("server certificate: kept (it fits the inventory)"),
            }
            println!("  SANs: {}", leaf.sans().join(", "));
            println!(
                "  valid until {}",
                crate::pki::inspect::date(leaf.not_after)
            );
            println!(
                "  chain (certificate + CA): {}",
                state.path(REGISTRY_CHAIN).display()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn check_provided(files: &ProvidedFiles, inv: &Inventory) -> Result<ProvidedReport> {
    provided::check(
        files,
        &inv.cert_dns_sans(),
        &inv.cert_ip_sans(),
        setup::renew_before(&inv.tls),
        OffsetDateTime::now_utc(),
    )
}

fn print_provided(cli: &Cli, files: &ProvidedFiles, report: &ProvidedReport) -> Result<()> {
    match cli.output {
        Output::Json => {
            let value = json!({
                "mode": "provided",
                "fit": report.is_fit(),
                "cert": report.cert,
                "ca": report.ca,
                "missing_sans": report.missing_sans,
                "problems": report.problems,
                "warnings": report.warnings,
            });
            super::json::print(&value)?;
        }
        Output::Text => {
            println!(
                "tls.mode is provided: regboot issues nothing and checks {} against {}",
                files.cert.display(),
                files.ca_cert.display()
            );
            if report.is_fit() {
                println!(
                    "ok: signed by the CA, key matches, covers every name ({}), valid until {}",
                    report.cert.sans().join(", "),
                    crate::pki::inspect::date(report.cert.not_after)
                );
            }
            for p in &report.problems {
                println!("problem: {p}");
            }
            for w in &report.warnings {
                println!("warning: {w}");
            }
        }
    }
    Ok(())
}

/// What `certs check` found for regboot's own CA: the rows, and what the metrics need.
pub(super) struct Checked {
    pub rows: Vec<CheckRow>,
    survey: Option<deployed::Survey>,
    known: Vec<String>,
    rotation: Option<renew::CaPlan>,
}

impl Checked {
    pub fn metrics(&self) -> Metrics {
        Metrics::of(&self.rows, self.survey.as_ref(), &self.known)
    }
}

/// The state directory's rows and, with an inventory and `hosts` (a `--limit` or none),
/// what the hosts hold and serve.
pub(super) fn check_self_signed(
    state: &StateDir,
    inv: Option<&Inventory>,
    renew_before: Duration,
    hosts: Option<Option<&str>>,
    now: OffsetDateTime,
) -> Result<Checked> {
    let spec = inv.map(setup::leaf_spec);
    let mut rows = check::local_rows(state, spec.as_ref(), renew_before, now)?;
    let mut survey = None;
    if let (Some(inv), Some(limit)) = (inv, hosts) {
        let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
        let found = runtime.block_on(deployed::survey_hosts(inv, limit, 50))?;
        rows.extend(deployed::check_rows(&found, state, renew_before, now)?);
        survey = Some(found);
    }
    let mut rotation = None;
    if let Some(inv) = inv
        && state.read(CA_CERT)?.is_some()
    {
        ca_renewal(&mut rows, inv);
        rotation = Some(renew::ca_plan(state, inv, now)?);
    }
    Ok(Checked {
        rows,
        survey,
        known: known_cas(state)?,
        rotation,
    })
}

pub fn certs_check(
    cli: &Cli,
    local: bool,
    limit: Option<&str>,
    textfile: Option<&Path>,
) -> Result<ExitCode> {
    let now = OffsetDateTime::now_utc();
    let (checked, renew_before) = match source(cli)? {
        Source::Insecure => return note_insecure(cli),
        Source::SelfSigned {
            state,
            renew_before,
            ..
        } => {
            let inv = cli
                .inventory
                .as_ref()
                .map(|p| inventory::load(p))
                .transpose()?;
            let hosts = (!local).then_some(limit);
            let checked = check_self_signed(&state, inv.as_ref(), renew_before, hosts, now)?;
            (checked, renew_before)
        }
        Source::Provided { files, inv } => {
            let renew_before = setup::renew_before(&inv.tls);
            let checked = Checked {
                rows: provided_rows(&files, &inv, now)?,
                survey: None,
                known: Vec::new(),
                rotation: None,
            };
            (checked, renew_before)
        }
    };
    if let Some(path) = textfile {
        metrics::write_textfile(path, &checked.metrics())?;
    }
    let rows = &checked.rows;
    match cli.format {
        Format::Json => {
            let value = json!({
                "renew_before_days": renew_before.whole_days(),
                "certificates": rows,
                "ca_rotation": checked.rotation,
            });
            super::json::print(&value)?;
        }
        Format::Text => {
            print!("{}", check::table(rows));
            if let Some(plan) = &checked.rotation {
                println!("\n{}", rotation_line(plan));
            }
        }
        Format::Prometheus => {
            let m = checked.metrics();
            let last = (m.success == Some(true)).then(|| now.unix_timestamp());
            print!("{}", m.render(last));
        }
    }
    Ok(ExitCode::from(check::exit_code(rows)))
}

/// A CA row's renewal date is the start of the CA's own window (tls.ca_renew_before_days).
fn ca_renewal(rows: &mut [CheckRow], inv: &Inventory) {
    for row in rows {
        if let Some(info) = row.info.as_ref().filter(|i| i.is_ca) {
            row.renew_after = Some(info.not_after - renew::ca_window(&inv.tls, info));
        }
    }
}

/// Where the CA is in its rotation and when `renew` takes the next step.
fn rotation_line(plan: &renew::CaPlan) -> String {
    let date = crate::pki::inspect::date;
    let reached = plan.stage.as_ref().map_or(String::new(), |r| {
        format!("stage {} reached at {}; ", r.stage, r.at)
    });
    match &plan.step {
        renew::CaStep::NotDue => format!(
            "CA rotation: none under way; `regboot renew` starts one from {}",
            date(plan.renew_after)
        ),
        renew::CaStep::Run { stage, why } => {
            format!("CA rotation: {reached}stage {stage} may run now ({why})")
        }
        renew::CaStep::Wait { stage, until, .. } => {
            format!(
                "CA rotation: {reached}stage {stage} may run from {}",
                date(*until)
            )
        }
    }
}

/// The fingerprints of the CAs a host may hold: the current one and a rotation's other.
fn known_cas(state: &StateDir) -> Result<Vec<String>> {
    let mut pems: Vec<String> = state.read(CA_CERT)?.into_iter().collect();
    pems.extend(
        crate::pki::rotation::extra_cas(state)?
            .into_iter()
            .map(|(_, p)| p),
    );
    Ok(pems
        .iter()
        .filter_map(|p| crate::pki::cert_info(p).ok())
        .map(|i| i.fingerprint_sha256)
        .collect())
}

/// The `certs check` rows for tls.mode provided: the CA, and the server certificate judged by
/// the provided checks (signer, key, usage, SANs); dates are judged by the row itself.
fn provided_rows(
    files: &ProvidedFiles,
    inv: &Inventory,
    now: OffsetDateTime,
) -> Result<Vec<CheckRow>> {
    let renew_before = setup::renew_before(&inv.tls);
    let read = |p: &PathBuf| -> Result<Option<String>> {
        match std::fs::read_to_string(p) {
            Ok(t) => Ok(Some(t)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", p.display())),
        }
    };
    let ca_pem = read(&files.ca_cert)?;
    let cert_pem = read(&files.cert)?;
    let ca_row = check::row(
        "ca",
        &files.ca_cert,
        ca_pem.as_deref(),
        renew_before,
        now,
        |info| {
            (!info.is_ca).then(|| "not a CA certificate (basicConstraints CA:true missing)".into())
        },
    );
    let cert_row = check::row(
        "registry",
        &files.cert,
        cert_pem.as_deref(),
        renew_before,
        now,
        |_| match provided::check(
            files,
            &inv.cert_dns_sans(),
            &inv.cert_ip_sans(),
            renew_before,
            now,
        ) {
            Ok(report) if report.problems.is_empty() => None,
            Ok(report) => Some(report.problems.join("; ")),
            Err(e) => Some(format!("{e:#}")),
        },
    );
    Ok(vec![ca_row, cert_row])
}

pub fn certs_import(cli: &Cli, cert: &std::path::Path, key: &std::path::Path) -> Result<ExitCode> {
    let dir = match &cli.inventory {
        Some(path) => inventory::load(path)?.state_dir(cli.state_dir.as_deref()),
        None => cli
            .state_dir
            .clone()
            .context("no inventory given: pass -i inventory.yml or --state-dir DIR")?,
    };
    let read = |p: &std::path::Path| {
        std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))
    };
    let state = StateDir::open(&dir)?;
    let _lock = state.lock()?;
    let origin = format!("{} (with key {})", cert.display(), key.display());
    let outcome = crate::pki::rotation::import(&state, &read(cert)?, &read(key)?, &origin)?;
    let info = crate::pki::cert_info(&read(cert)?)?;
    let said = match outcome {
        crate::pki::rotation::Imported::Same => "already held",
        crate::pki::rotation::Imported::Written => "imported",
    };
    match cli.output {
        Output::Json => super::json::print(
            &json!({ "outcome": said, "state_dir": state.root(), "certificate": info }),
        )?,
        Output::Text => println!(
            "{said} CA {} (SHA-256 {}) into {}; `regboot apply` issues the registry certificate from it when needed",
            info.subject,
            info.fingerprint_sha256,
            state.root().display()
        ),
    }
    Ok(ExitCode::SUCCESS)
}

fn note_insecure(cli: &Cli) -> Result<ExitCode> {
    match cli.output {
        Output::Json => super::json::print(&json!({ "mode": "insecure", "certificates": [] }))?,
        Output::Text => println!("{INSECURE_NOTE}"),
    }
    Ok(ExitCode::SUCCESS)
}

pub fn certs_show(cli: &Cli) -> Result<ExitCode> {
    let mut permissions = None;
    let certs: Vec<(&str, PathBuf)> = match source(cli)? {
        Source::Insecure => return note_insecure(cli),
        Source::SelfSigned { state, .. } => {
            permissions = Some((state.root().to_path_buf(), state.permissions()));
            vec![
                ("ca", state.path(CA_CERT)),
                ("registry", state.path(REGISTRY_CERT)),
            ]
        }
        Source::Provided { files, .. } => vec![("ca", files.ca_cert), ("registry", files.cert)],
    };
    let mut shown = Vec::new();
    for (name, path) in &certs {
        let text = std::fs::read_to_string(path).with_context(|| {
            format!(
                "cannot read the {name} certificate {}: run `regboot certs init` first",
                path.display()
            )
        })?;
        let info = crate::pki::cert_info(&text).with_context(|| path.display().to_string())?;
        shown.push((*name, path, info));
    }
    match cli.output {
        Output::Json => {
            let certificates: Vec<_> = shown
                .iter()
                .map(
                    |(name, path, info)| json!({ "name": name, "path": path, "certificate": info }),
                )
                .collect();
            let state_dir = match &permissions {
                Some((root, Ok(perms))) => json!({ "path": root, "permissions": perms }),
                _ => Value::Null,
            };
            super::json::print(&json!({ "certificates": certificates, "state_dir": state_dir }))?;
        }
        Output::Text => {
            let now = OffsetDateTime::now_utc();
            for (i, (name, path, info)) in shown.iter().enumerate() {
                if i > 0 {
                    println!();
                }
                print_cert(name, path, info, now);
            }
            if let Some((root, perms)) = &permissions {
                println!("\nstate directory: {}", root.display());
                match perms {
                    Ok(perms) => print_permissions(perms),
                    Err(e) => println!("  cannot read its permissions: {e:#}"),
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_permissions(perms: &[crate::pki::state::Permission]) {
    for p in perms {
        let name = p
            .path
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        let shown = if std::ptr::eq(p, &perms[0]) {
            ".".to_string()
        } else {
            name
        };
        match &p.problem {
            None => println!("  {}  uid {:<6} {shown}", p.mode, p.uid),
            Some(problem) => println!(
                "  {}  uid {:<6} {shown}   PROBLEM: {problem}",
                p.mode, p.uid
            ),
        }
    }
}

fn print_cert(name: &str, path: &std::path::Path, info: &CertInfo, now: OffsetDateTime) {
    let sans = info.sans();
    println!("{name}: {}", path.display());
    println!("  subject:      {}", info.subject);
    println!("  issuer:       {}", info.issuer);
    println!("  serial:       {}", info.serial);
    println!("  key:          {}", info.key_algorithm);
    println!("  is a CA:      {}", if info.is_ca { "yes" } else { "no" });
    println!(
        "  not before:   {}",
        crate::pki::inspect::date(info.not_before)
    );
    let left = match check::residual(info.not_after - now) {
        expired if info.not_after <= now => expired,
        left => format!("{left} left"),
    };
    println!(
        "  not after:    {} ({left})",
        crate::pki::inspect::date(info.not_after)
    );
    println!(
        "  SANs:         {}",
        if sans.is_empty() {
            "-".to_string()
        } else {
            sans.join(", ")
        }
    );
    println!("  SHA-256:      {}", info.fingerprint_sha256);
    if info.is_ca {
        match &info.name_constraints {
            Some(c) => println!(
                "  constraints:  critical; may sign only for {}",
                c.summary()
            ),
            None => println!("  constraints:  none (may sign for any name)"),
        }
    }
}
