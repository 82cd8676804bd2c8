//! The embedded playbooks (playbooks/*.yml), their modules taken from `modules::REGISTRY`.

use anyhow::Result;

use crate::engine::Playbook;
use crate::modules::REGISTRY;

/// `apply` and `plan`.
pub fn apply() -> Result<Playbook> {
    Playbook::parse(
        "apply.yml",
        include_str!("../playbooks/apply.yml"),
        REGISTRY,
    )
}

/// The apply playbook, parsed once: where `certs check`, `rotate --ca` and `--replace-ca`
/// look up, per host, the CA copies apply places.
pub(crate) fn apply_steps() -> &'static Playbook {
    static APPLY: std::sync::LazyLock<Playbook> =
        std::sync::LazyLock::new(|| apply().expect("the embedded apply.yml parses (unit-tested)"));
    &APPLY
}

/// `rotate --leaf` and every stage of `rotate --ca`.
pub fn rotate() -> Result<Playbook> {
    Playbook::parse(
        "rotate.yml",
        include_str!("../playbooks/rotate.yml"),
        REGISTRY,
    )
}

/// `verify`: the smoke test alone.
pub fn verify() -> Result<Playbook> {
    Playbook::parse(
        "verify.yml",
        include_str!("../playbooks/verify.yml"),
        REGISTRY,
    )
}

/// `gc`: the registry's config and containers, rolled to read-only and back.
pub fn gc() -> Result<Playbook> {
    Playbook::parse("gc.yml", include_str!("../playbooks/gc.yml"), REGISTRY)
}

/// `reset`: what apply added, removed; `purge_data` keeps the registry_data step (which
/// deletes the registry's data), else it is left out.
pub fn reset(purge_data: bool) -> Result<Playbook> {
    let mut playbook = Playbook::parse(
        "reset.yml",
        include_str!("../playbooks/reset.yml"),
        REGISTRY,
    )?;
    if !purge_data {
        playbook
            .steps
            .retain(|s| s.module.name() != "registry_data");
    }
    Ok(playbook)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_playbooks_parse() {
        let apply = apply().unwrap();
        let last = apply.steps.last().unwrap();
        assert_eq!((last.module.name(), last.once), ("smoke_test", true));
        let container = apply
            .steps
            .iter()
            .find(|s| s.module.name() == "registry_container")
            .unwrap();
        assert_eq!(container.serial, Some(1));
        assert_eq!(verify().unwrap().steps.len(), 1);
        assert_eq!(gc().unwrap().steps[1].serial, Some(1));
        let rotate = rotate().unwrap();
        assert!(rotate.steps.iter().any(|s| s.serial == Some(1)));
        let reset = reset(false).unwrap();
        assert!(
            reset
                .steps
                .iter()
                .all(|s| s.state == crate::engine::playbook::State::Absent)
        );
        assert_eq!(reset.steps.last().unwrap().module.name(), "host_manifest");
        assert!(
            !reset
                .steps
                .iter()
                .any(|s| s.module.name() == "registry_data")
        );
        assert_eq!(
            super::reset(true).unwrap().steps.len(),
            reset.steps.len() + 1
        );
    }
}
