//! The CA in `/etc/containers/certs.d/<reference>/ca.crt` on hosts with podman, buildah or
//! CRI-O: containers/image reads that directory on every pull and push (every `*.crt` is a
//! trusted CA, so a CA rotation's second file works as in docker's certs.d) and no service
//! needs a restart.

use super::certs_d::{CaTree, CertsDModule};

pub(crate) const CONTAINERS: CaTree = CaTree {
    root: "/etc/containers/certs.d",
};

pub(crate) const CONTAINERS_CERTS_D: CertsDModule = CertsDModule {
    name: "containers_certs_d",
    tree: CONTAINERS,
    read_by: crate::facts::Facts::containers_runtime,
    docker: false,
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::Module;
    use crate::modules::testing::{self, StateBuilder, summaries};

    #[test]
    fn only_where_podman_buildah_or_crio_runs() {
        let inv = testing::inventory("");
        let run = |state: &StateBuilder| {
            summaries(&testing::run(&CONTAINERS_CERTS_D, &inv, "h2", state, true).unwrap())
        };
        let docker_only = StateBuilder::new();
        assert!(run(&docker_only).is_empty());
        assert!(
            CONTAINERS_CERTS_D
                .ca_files(&inv, Some(&docker_only.0.facts))
                .is_empty()
        );
        for runtime in ["podman", "buildah", "crio"] {
            let mut state = StateBuilder::new();
            let r = match runtime {
                "podman" => &mut state.0.facts.podman,
                "buildah" => &mut state.0.facts.buildah,
                _ => &mut state.0.facts.crio,
            };
            r.installed = true;
            let want: Vec<String> = inv
                .references()
                .iter()
                .map(|r| format!("write /etc/containers/certs.d/{r}/ca.crt"))
                .collect();
            assert_eq!(run(&state), want, "{runtime}");
        }
    }
}
