//! The registry image on a registry host: loaded from image_archive (air-gapped) or pulled,
//! only when the host does not have it.

use anyhow::{Context, Result};

use super::Ctx;
use crate::apply::change::Change;

const LOAD: &str = "docker load >/dev/null && docker image inspect \"$1\" >/dev/null 2>&1 \
    || { echo \"image_archive does not hold $1: set registry.image to the archive's tag\" >&2; exit 1; }";
const PULL: &str = "docker pull --quiet \"$1\" >/dev/null";

pub fn check(ctx: &Ctx) -> Result<Vec<Change>> {
    if ctx.state.image_id.is_some() {
        return Ok(Vec::new());
    }
    let reg = &ctx.inv.registry;
    Ok(vec![match &reg.image_archive {
        Some(archive) => {
            let data = std::fs::read(archive)
                .with_context(|| format!("cannot read image_archive {}", archive.display()))?;
            Change::script(
                format!("load {} from {}", reg.image, archive.display()),
                LOAD,
                &[&reg.image],
            )
            .with_stdin(data)
        }
        None => Change::script(format!("pull {}", reg.image), PULL, &[&reg.image]),
    }])
}
