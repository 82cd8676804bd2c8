//! The registry image on a registry host: loaded from image_archive (air-gapped) or pulled,
//! only when the host does not have it.

use anyhow::Result;

use super::{Ctx, Module};
use crate::engine::change::Change;
use crate::engine::probe::ProbeRequest;
use crate::inventory::{Host, Inventory};

const LOAD: &str = "docker load >/dev/null && docker image inspect \"$1\" >/dev/null 2>&1 \
    || { echo \"image_archive does not hold $1: set registry.image to the archive's tag\" >&2; exit 1; }";
const PULL: &str = "docker pull --quiet \"$1\" >/dev/null";

pub(crate) struct RegistryImage;

impl Module for RegistryImage {
    fn name(&self) -> &'static str {
        "registry_image"
    }

    fn want(&self, inv: &Inventory, _host: &Host, req: &mut ProbeRequest) {
        req.image = Some(inv.registry.image.clone());
    }

    fn needs_engine(&self) -> bool {
        true
    }

    fn present(&self, cx: &Ctx) -> Result<Vec<Change>> {
        if cx.state.image_id.is_some() {
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
