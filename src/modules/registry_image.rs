//! The registry image on a registry host: loaded from image_archive (air-gapped) or pulled,
//! only when the host does not have it.

use anyhow::Result;
use serde::{Deserialize, Serialize};

use super::{Ctx, Module};
use crate::engine::change::Change;
use crate::engine::footprint::{self, Footprint};
use crate::engine::probe::{HostState, ProbeRequest};
use crate::inventory::{Host, Inventory};

/// Its record in the host's manifest (the field name a version-1 manifest used).
#[derive(Debug, Default, Serialize, Deserialize)]
struct Own {
    /// The image regboot loaded or pulled.
    image_loaded: Option<String>,
}

const LOAD: &str = "docker load >/dev/null && docker image inspect \"$1\" >/dev/null 2>&1 \
    || { echo \"image_archive does not hold $1: set registry.image to the archive's tag\" >&2; exit 1; }";
const PULL: &str = "docker pull --quiet \"$1\" >/dev/null";

pub(crate) struct RegistryImage;

impl Module for RegistryImage {
    fn name(&self) -> &'static str {
        "registry_image"
    }

    fn want(&self, inv: &Inventory, _host: &Host, req: &mut ProbeRequest) {
        req.images.push(inv.registry.image.clone());
    }

    fn not_ready(
        &self,
        inv: &Inventory,
        host: &Host,
        state: &HostState,
        engine_coming: bool,
    ) -> Option<String> {
        super::docker_not_ready(inv, host, state, engine_coming)
    }

    /// The image, when the host has none yet (so reset removes only an image it brought).
    fn footprint(&self, inv: &Inventory, _host: &Host, state: Option<&HostState>) -> Footprint {
        let brings = state
            .is_none_or(|s| s.facts.docker.running && s.image_id(&inv.registry.image).is_none());
        let own = Own {
            image_loaded: Some(inv.registry.image.clone()),
        };
        Footprint {
            record: brings.then(|| serde_json::to_value(own).unwrap_or_default()),
            ..Footprint::default()
        }
    }

    /// The image goes when regboot brought it (after the registry container's step removed
    /// the container; kept while another container uses it).
    fn absent(&self, cx: &Ctx) -> Result<Vec<Change>> {
        let reg = &cx.inv.registry;
        let own: Option<Own> = footprint::recorded(cx, self)?.own();
        let ours = own.and_then(|o| o.image_loaded).as_deref() == Some(reg.image.as_str());
        if !ours || cx.state.image_id(&cx.inv.registry.image).is_none() {
            return Ok(Vec::new());
        }
        Ok(vec![Change::script(
            format!(
                "remove image {} (regboot brought it; kept if another container uses it)",
                reg.image
            ),
            r#"docker image rm "$1" >/dev/null 2>&1 || true"#,
            &[&reg.image],
        )])
    }

    fn present(&self, cx: &Ctx) -> Result<Vec<Change>> {
        if cx.state.image_id(&cx.inv.registry.image).is_some() {
            return Ok(Vec::new());
        }
        let reg = &cx.inv.registry;
        Ok(vec![match &reg.image_archive {
            Some(archive) => Change::script(
                format!("load {} from {}", reg.image, archive.display()),
                LOAD,
                &[&reg.image],
            )
            .with_stdin_file(archive),
            None => Change::script(format!("pull {}", reg.image), PULL, &[&reg.image]),
        }])
    }
}
