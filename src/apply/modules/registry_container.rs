//! The `regboot-registry` container: created when missing, recreated only when its effective
//! config (image, files, port, data dir) changed, then waited for until /v2/ answers. The
//! config is recorded in labels, so the decision needs no state on this machine.

use sha2::{Digest, Sha256};

use super::Ctx;
use super::registry_files;
use crate::apply::change::{Action, Change};

pub const NAME: &str = "regboot-registry";

/// Args: image, port, data dir, base dir, then `--label k=v` pairs. The mount targets are
/// those of `render::container`, which config.yml names. Secrets stay in mounted files
/// (0600), never in the environment, so `docker inspect` shows none.
const RUN: &str = r#"set -eu
image=$1; port=$2; data=$3; base=$4; shift 4
mkdir -p "$data"
# A graceful stop first: the registry drains requests in flight (http.draintimeout).
docker stop --time 15 regboot-registry >/dev/null 2>&1 || true
docker rm -f regboot-registry >/dev/null 2>&1 || true
docker run -d --name regboot-registry --restart unless-stopped -p "$port:5000" \
  -v "$base/config.yml:/etc/docker/registry/config.yml:ro" \
  -v "$base/config.yml:/etc/distribution/config.yml:ro" \
  -v "$base/certs:/certs:ro" -v "$base/auth:/auth:ro" -v "$data:/var/lib/registry" \
  "$@" "$image" >/dev/null
"#;

fn digest(parts: &[&[u8]]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
        h.update([0]);
    }
    hex::encode(h.finalize())[..16].to_string()
}

/// What the container runs with, one label per input (a hash for files), so the container
/// itself says whether it is current and plan can say what changed.
fn labels(ctx: &Ctx) -> Vec<(&'static str, &'static str, String)> {
    let reg = &ctx.inv.registry;
    let file = |path| {
        ctx.registry_files
            .iter()
            .find(|f| f.path == path)
            .map_or(&[][..], |f| f.data.as_slice())
    };
    vec![
        ("io.regboot.image", "image", reg.image.clone()),
        (
            "io.regboot.config",
            "config",
            digest(&[
                file(registry_files::CONFIG),
                reg.port.to_string().as_bytes(),
                reg.data_dir.as_bytes(),
            ]),
        ),
        (
            "io.regboot.cert",
            "certificate",
            digest(&[file(registry_files::CHAIN), file(registry_files::KEY)]),
        ),
        (
            "io.regboot.htpasswd",
            "htpasswd",
            digest(&[file(registry_files::HTPASSWD)]),
        ),
    ]
}

/// Why the container must be (re)created, or `None` when it is as wanted.
fn reason(ctx: &Ctx, labels: &[(&str, &str, String)]) -> Option<String> {
    let Some(c) = &ctx.state.container else {
        return Some("create".into());
    };
    let changed: Vec<&str> = labels
        .iter()
        .filter(|(key, _, value)| c.labels.get(*key) != Some(value))
        .map(|(_, what, _)| *what)
        .collect();
    if !changed.is_empty() {
        Some(format!("recreate ({} changed)", changed.join(", ")))
    } else if ctx.state.image_id.as_deref() != Some(c.image_id.as_str()) {
        Some("recreate (new image id)".into())
    } else if !c.running {
        Some("recreate (not running)".into())
    } else {
        None
    }
}

pub fn check(ctx: &Ctx) -> Vec<Change> {
    let labels = labels(ctx);
    let Some(why) = reason(ctx, &labels) else {
        return Vec::new();
    };
    let reg = &ctx.inv.registry;
    let port = reg.port.to_string();
    let mut args = vec![
        reg.image.clone(),
        port.clone(),
        reg.data_dir.clone(),
        registry_files::BASE.to_string(),
    ];
    for (key, _, value) in &labels {
        args.push("--label".into());
        args.push(format!("{key}={value}"));
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let run = Change::script(
        format!("{why} container {NAME} ({}, port {port})", reg.image),
        RUN,
        &args,
    );
    let wait = Change {
        summary: format!("wait until {NAME} answers on /v2/"),
        diff: None,
        action: Action::WaitHealthy {
            hostname: reg.hostname.clone(),
            port: reg.port,
            ca_pem: ctx.material.tls.as_ref().map(|t| t.ca_pem.clone()),
            diagnose: "docker logs --tail 15 regboot-registry 2>&1",
        },
    };
    vec![run, wait]
}
