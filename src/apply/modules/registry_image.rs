//! The registry image on a registry host: loaded from image_archive (air-gapped) or pulled,
//! only when the host does not have it.

use super::Ctx;
use crate::apply::change::Change;

const LOAD: &str = "docker load >/dev/null && docker image inspect \"$1\" >/dev/null 2>&1 \
    || { echo \"image_archive does not hold $1: set registry.image to the archive's tag\" >&2; exit 1; }";
const PULL: &str = "docker pull --quiet \"$1\" >/dev/null";

pub fn check(ctx: &Ctx) -> Vec<Change> {
    if ctx.state.image_id.is_some() {
        return Vec::new();
    }
    let reg = &ctx.inv.registry;
    vec![match &reg.image_archive {
        Some(archive) => Change::script(
            format!("load {} from {}", reg.image, archive.display()),
            LOAD,
            &[&reg.image],
        )
        .with_stdin_file(archive),
        None => Change::script(format!("pull {}", reg.image), PULL, &[&reg.image]),
    }]
}
