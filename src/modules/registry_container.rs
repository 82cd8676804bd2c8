//! The `regboot-registry` container: created when missing, recreated only when its effective
//! config (image, files, port, data dir) changed, then waited for until /v2/ answers. The
//! config is recorded in labels, so the decision needs no state on this machine. htpasswd is
//! not among them: distribution re-reads it when its modification time changes, and it sits
//! in a directory mount (a renamed file is seen), so a user change needs no restart.

use anyhow::Result;
use sha2::{Digest, Sha256};

use super::registry_files::{self, ManagedFile};
use super::{Ctx, Module};
use crate::engine::change::Change;
use crate::engine::probe::ProbeRequest;
use crate::inventory::{Host, Inventory};

pub(crate) const NAME: &str = "regboot-registry";

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
fn labels(cx: &Ctx, files: &[ManagedFile]) -> Vec<(&'static str, &'static str, String)> {
    let reg = &cx.inv.registry;
    let file = |path| {
        files
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
    ]
}

/// Why the container must be (re)created, or `None` when it is as wanted.
fn reason(cx: &Ctx, labels: &[(&str, &str, String)]) -> Option<String> {
    let Some(c) = &cx.state.container else {
        return Some("create".into());
    };
    let changed: Vec<&str> = labels
        .iter()
        .filter(|(key, _, value)| c.labels.get(*key) != Some(value))
        .map(|(_, what, _)| *what)
        .collect();
    if !changed.is_empty() {
        Some(format!("recreate ({} changed)", changed.join(", ")))
    } else if cx.state.image_id.as_deref() != Some(c.image_id.as_str()) {
        Some("recreate (new image id)".into())
    } else if !c.running {
        Some("recreate (not running)".into())
    } else {
        None
    }
}

/// Shown when the registry does not answer in time.
pub(crate) const DIAGNOSE: &str = "docker logs --tail 15 regboot-registry 2>&1";

pub(crate) struct RegistryContainer;

impl Module for RegistryContainer {
    fn name(&self) -> &'static str {
        "registry_container"
    }

    fn want(&self, inv: &Inventory, _host: &Host, req: &mut ProbeRequest) {
        req.image = Some(inv.registry.image.clone());
    }

    fn needs_engine(&self) -> bool {
        true
    }

    fn present(&self, cx: &Ctx) -> Result<Vec<Change>> {
        let labels = labels(cx, &registry_files::desired(cx)?);
        let Some(why) = reason(cx, &labels) else {
            return Ok(Vec::new());
        };
        let reg = &cx.inv.registry;
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
        let wait = Change::wait_healthy(
            format!("wait until {NAME} answers on /v2/"),
            &reg.hostname,
            reg.port,
            cx.material.tls.as_ref().map(|t| t.ca_pem.clone()),
            DIAGNOSE,
        );
        Ok(vec![run, wait])
    }

    /// The container goes (its data stays), and the image when regboot brought it.
    fn absent(&self, cx: &Ctx) -> Result<Vec<Change>> {
        super::host_manifest::remove_container(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::testing::{self, StateBuilder};

    /// The labels a container made from `testing::material()` carries.
    fn current_labels(inv: &Inventory) -> Vec<(String, String)> {
        let changes =
            testing::run(&RegistryContainer, inv, "h1", &StateBuilder::new(), true).unwrap();
        let crate::engine::change::Action::Script { args, .. } = &changes[0].action else {
            panic!("a script first")
        };
        args.iter()
            .filter_map(|a| a.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn recreate_reasons() {
        let inv = testing::inventory("");
        let labels = current_labels(&inv);
        let mut old_image = labels.clone();
        old_image.retain(|(k, _)| k != "io.regboot.image");
        old_image.push(("io.regboot.image".into(), "registry:2.7".into()));
        let mut old_cert = labels.clone();
        old_cert.retain(|(k, _)| k != "io.regboot.cert");
        old_cert.push(("io.regboot.cert".into(), "0000".into()));
        let mut with_htpasswd = labels.clone();
        with_htpasswd.push(("io.regboot.htpasswd".into(), "an old user list".into()));
        // (state, the first change's summary prefix, or None: nothing to do)
        let cases = [
            (
                StateBuilder::new().image("sha256:1"),
                Some("create container"),
            ),
            (
                StateBuilder::new().container("sha256:1", true, &labels),
                None,
            ),
            // Users live in htpasswd, re-read by the registry: no recreate for them.
            (
                StateBuilder::new().container("sha256:1", true, &with_htpasswd),
                None,
            ),
            (
                StateBuilder::new().container("sha256:1", false, &labels),
                Some("recreate (not running)"),
            ),
            (
                StateBuilder::new().container("sha256:1", true, &old_image),
                Some("recreate (image changed)"),
            ),
            (
                StateBuilder::new().container("sha256:1", true, &old_cert),
                Some("recreate (certificate changed)"),
            ),
            (
                StateBuilder::new()
                    .container("sha256:1", true, &labels)
                    .image("sha256:2"),
                Some("recreate (new image id)"),
            ),
        ];
        for (state, want) in cases {
            let changes = testing::run(&RegistryContainer, &inv, "h1", &state, true).unwrap();
            let got = changes.first().map(|c| c.summary.clone());
            match want {
                None => assert!(changes.is_empty(), "{got:?}"),
                Some(prefix) => {
                    let got = got.unwrap_or_default();
                    assert!(
                        got.starts_with(prefix),
                        "{got} does not start with {prefix}"
                    );
                    assert!(changes[1].summary.starts_with("wait until"));
                }
            }
        }
    }
}
