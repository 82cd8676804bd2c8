//! The `regboot-registry` container: created when missing, recreated only when its effective
//! config (image, files, port, data dir) changed, then waited for until /v2/ answers. The
//! config is recorded as a label, so the decision needs no state on this machine.

use sha2::{Digest, Sha256};

use super::Ctx;
use super::registry_files::{self, ManagedFile};
use crate::apply::change::{Action, Change};

pub const NAME: &str = "regboot-registry";
pub const CONFIG_LABEL: &str = "io.regboot.config";

/// Args: image, port, data dir, config label value, base dir. The mount targets are those of
/// `render::container`, which config.yml names. Secrets stay in mounted files (0600), never
/// in the environment, so `docker inspect` shows none.
const RUN: &str = r#"set -eu
image=$1; port=$2; data=$3; label=$4; base=$5
mkdir -p "$data"
# A graceful stop first: the registry drains requests in flight (http.draintimeout).
docker stop --time 15 regboot-registry >/dev/null 2>&1 || true
docker rm -f regboot-registry >/dev/null 2>&1 || true
docker run -d --name regboot-registry --restart unless-stopped -p "$port:5000" \
  -v "$base/config.yml:/etc/docker/registry/config.yml:ro" \
  -v "$base/config.yml:/etc/distribution/config.yml:ro" \
  -v "$base/certs:/certs:ro" -v "$base/auth:/auth:ro" -v "$data:/var/lib/registry" \
  --label "io.regboot.config=$label" "$image" >/dev/null
"#;

/// A digest of everything the container's behaviour depends on.
fn config_hash(ctx: &Ctx, files: &[ManagedFile]) -> String {
    let mut h = Sha256::new();
    let reg = &ctx.inv.registry;
    for part in [reg.image.as_str(), &reg.port.to_string(), &reg.data_dir] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    for f in files {
        h.update(f.path.as_bytes());
        h.update([0]);
        h.update(&f.data);
        h.update([0]);
    }
    hex::encode(h.finalize())[..16].to_string()
}

/// Why the container must be (re)created, or `None` when it is as wanted.
fn reason(ctx: &Ctx, label: &str) -> Option<&'static str> {
    let Some(c) = &ctx.state.container else {
        return Some("create");
    };
    if c.labels.get(CONFIG_LABEL).map(String::as_str) != Some(label) {
        Some("recreate (config changed)")
    } else if ctx.state.image_id.as_deref() != Some(c.image_id.as_str()) {
        Some("recreate (image changed)")
    } else if !c.running {
        Some("recreate (not running)")
    } else {
        None
    }
}

pub fn check(ctx: &Ctx) -> Vec<Change> {
    let label = config_hash(ctx, ctx.registry_files);
    let Some(why) = reason(ctx, &label) else {
        return Vec::new();
    };
    let reg = &ctx.inv.registry;
    let port = reg.port.to_string();
    let run = Change::script(
        format!("{why} container {NAME} ({}, port {port})", reg.image),
        RUN,
        &[
            &reg.image,
            &port,
            &reg.data_dir,
            &label,
            registry_files::BASE,
        ],
    );
    let wait = Change {
        summary: format!("wait until {NAME} answers on /v2/"),
        diff: None,
        action: Action::WaitHealthy {
            hostname: reg.hostname.clone(),
            port: reg.port,
            ca_pem: ctx.material.tls.as_ref().map(|t| t.ca_pem.clone()),
        },
    };
    vec![run, wait]
}
