//! The `regboot-registry` container: created when missing, recreated only when its effective
//! config (image, files, port, data dir) changed, then waited for until /v2/ answers. The
//! config is recorded as a label, so the decision needs no state on this machine.

use sha2::{Digest, Sha256};

use super::registry_files::{self, ManagedFile};
use super::{Ctx, certs_d};
use crate::apply::change::Change;

pub const NAME: &str = "regboot-registry";
pub const CONFIG_LABEL: &str = "io.regboot.config";

/// Args: image, port, data dir, config label value, base dir. The mount targets are those of
/// `render::container`, which config.yml names. Secrets stay in mounted files (0600), never
/// in the environment, so `docker inspect` shows none.
const RUN: &str = r#"set -eu
image=$1; port=$2; data=$3; label=$4; base=$5
mkdir -p "$data"
docker rm -f regboot-registry >/dev/null 2>&1 || true
docker run -d --name regboot-registry --restart unless-stopped -p "$port:5000" \
  -v "$base/config.yml:/etc/docker/registry/config.yml:ro" \
  -v "$base/config.yml:/etc/distribution/config.yml:ro" \
  -v "$base/certs:/certs:ro" -v "$base/auth:/auth:ro" -v "$data:/var/lib/registry" \
  --label "io.regboot.config=$label" "$image" >/dev/null
"#;

/// Args: scheme, hostname, port, CA file. Waits (bounded: 60 s) for /v2/ to answer 200 or 401.
const WAIT_HEALTHY: &str = r#"scheme=$1; name=$2; port=$3; ca=$4
command -v curl >/dev/null || { echo "curl is needed on registry hosts for the health check: install it" >&2; exit 1; }
i=0; code=
while [ $i -lt 120 ]; do
  code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 ${ca:+--cacert "$ca"} \
    --resolve "$name:$port:127.0.0.1" "$scheme://$name:$port/v2/") || true
  case $code in 200|401) exit 0 ;; esac
  i=$((i+1)); sleep 0.5
done
echo "the registry did not answer on /v2/ within 60 s (last status: ${code:-none}); last log lines:" >&2
docker logs --tail 15 regboot-registry >&2 2>&1
exit 1
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
        &[&reg.image, &port, &reg.data_dir, &label, registry_files::BASE],
    );
    let (scheme, ca) = match ctx.material.tls {
        Some(_) => ("https", certs_d::ca_path(&ctx.inv.reference(&reg.hostname))),
        None => ("http", String::new()),
    };
    let wait = Change::script(
        format!("wait until {NAME} answers on /v2/"),
        WAIT_HEALTHY,
        &[scheme, &reg.hostname, &port, &ca],
    );
    vec![run, wait]
}
