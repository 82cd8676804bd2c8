//! The CA in the OS trust store (for curl, skopeo, containerd, podman), and the update
//! command run only when a file changed. During a CA rotation the store holds a second
//! anchor beside `regboot-ca.crt`: `regboot-ca-next.crt` or `regboot-ca-previous.crt`.
//! With `tls.os_trust_store: false` the module keeps regboot's anchors out of the store (and
//! removes ones an earlier run placed): only docker's certs.d trusts the CA then.

use anyhow::{Result, bail};

use super::{CaFile, Ctx, Module, ca_files};
use crate::engine::change::Change;
use crate::engine::probe::ProbeRequest;
use crate::facts::Facts;
use crate::inventory::{Host, Inventory};
use crate::pki::rotation::CaRole;
use crate::trust_store::{OsFamily, TrustStore as Store};

/// Every family, since before the probe the family is not known.
const FAMILIES: [OsFamily; 5] = [
    OsFamily::Debian,
    OsFamily::Rhel,
    OsFamily::Suse,
    OsFamily::Arch,
    OsFamily::Alpine,
];

/// The anchor file for the current CA (`None`) or a rotation's extra CA.
fn anchor(store: &Store, role: Option<CaRole>) -> String {
    match role {
        None => store.anchor_path.to_string(),
        Some(r) => store
            .anchor_path
            .replace("regboot-ca.crt", &format!("regboot-ca-{}.crt", r.suffix())),
    }
}

fn anchors(store: &Store) -> impl Iterator<Item = CaFile> + '_ {
    std::iter::once(None)
        .chain(CaRole::ALL.map(Some))
        .map(|role| CaFile {
            path: anchor(store, role),
            role,
        })
}

/// The host's trust store, from its os-release.
fn store_of(facts: &Facts) -> Result<Store> {
    match facts.os.family {
        Some(family) => Ok(family.trust_store()),
        None => bail!(
            "cannot tell the OS family from os-release (ID {:?}; supported: Debian/Ubuntu, RHEL \
             family, SUSE, Arch, Alpine); add the CA to this host's trust store by hand",
            facts.os.id
        ),
    }
}

pub(crate) struct TrustStore;

impl Module for TrustStore {
    fn name(&self) -> &'static str {
        "trust_store"
    }

    fn want(&self, _inv: &Inventory, _host: &Host, req: &mut ProbeRequest) {
        // Every anchor, also with os_trust_store: false (to remove what an earlier run placed).
        req.content
            .extend(all_anchors(None).into_iter().map(|f| f.path));
    }

    fn present(&self, cx: &Ctx) -> Result<Vec<Change>> {
        if !cx.inv.tls.os_trust_store {
            return self.absent(cx);
        }
        let Some(tls) = &cx.material.tls else {
            return Ok(Vec::new());
        };
        let store = store_of(&cx.state.facts)?;
        let mut changes = ca_files(cx.state, tls, |role| anchor(&store, role));
        if !changes.is_empty() {
            let removes = changes.iter().any(Change::removes_file);
            changes.push(update_after(&store, cx, removes));
        }
        Ok(changes)
    }

    fn absent(&self, cx: &Ctx) -> Result<Vec<Change>> {
        let store = store_of(&cx.state.facts)?;
        let mut changes: Vec<Change> = anchors(&store)
            .filter(|f| cx.state.file(&f.path).is_some())
            .map(|f| Change::remove_file(&f.path))
            .collect();
        if !changes.is_empty() {
            changes.push(update_after(&store, cx, true));
            // Alpine's update-ca-certificates (Debian's without --fresh) leaves the links it
            // made for a removed anchor behind, dangling: those to regboot's anchors go.
            changes.push(Change::script(
                "remove the dangling links to regboot's CA in /etc/ssl/certs",
                r#"[ -d /etc/ssl/certs ] || exit 0
find /etc/ssl/certs -maxdepth 1 -xtype l \( -lname 'regboot-ca*' -o -lname '*/regboot-ca*' \) -delete"#,
                &[],
            ));
        }
        Ok(changes)
    }

    fn ca_files(&self, inv: &Inventory, facts: Option<&Facts>) -> Vec<CaFile> {
        if !inv.tls.os_trust_store {
            return Vec::new();
        }
        all_anchors(facts)
    }
}

/// The anchor paths of the host's store (every family's before the probe).
fn all_anchors(facts: Option<&Facts>) -> Vec<CaFile> {
    let stores: Vec<Store> = match facts {
        Some(f) => f.os.family.map(|f| f.trust_store()).into_iter().collect(),
        None => FAMILIES.iter().map(|f| f.trust_store()).collect(),
    };
    let mut files: Vec<CaFile> = Vec::new();
    for f in stores.iter().flat_map(anchors) {
        // Debian and Alpine share a path: listed once.
        if !files.contains(&f) {
            files.push(f);
        }
    }
    files
}

/// The update after the anchors changed. Debian's update-ca-certificates keeps a removed
/// anchor's links in /etc/ssl/certs (dangling, still listed): after a removal `--fresh`
/// rebuilds them all.
fn update_after(store: &Store, cx: &Ctx, removes: bool) -> Change {
    if removes && cx.state.facts.os.family == Some(OsFamily::Debian) {
        return Change::script(
            "run update-ca-certificates --fresh",
            r#"exec update-ca-certificates --fresh"#,
            &[],
        );
    }
    update(store)
}

/// The command that rebuilds the system bundle, run after the anchors changed.
fn update(store: &Store) -> Change {
    let (program, args) = store
        .update_command
        .split_first()
        .expect("every trust store has an update command");
    Change::script(
        format!("run {}", store.update_command.join(" ")),
        r#"exec "$@""#,
        &std::iter::once(*program)
            .chain(args.iter().copied())
            .collect::<Vec<_>>(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extra_anchors_sit_beside_the_main_one() {
        let store = OsFamily::Rhel.trust_store();
        assert_eq!(
            anchor(&store, Some(CaRole::Next)),
            "/etc/pki/ca-trust/source/anchors/regboot-ca-next.crt"
        );
        // Debian and Alpine share a path: listed once.
        assert_eq!(
            TrustStore
                .ca_files(&crate::modules::testing::inventory(""), None)
                .len(),
            4 * 3
        );
        // Kept out of the store: no copy there counts as one regboot placed.
        let mut inv = crate::modules::testing::inventory("");
        inv.tls.os_trust_store = false;
        assert!(TrustStore.ca_files(&inv, None).is_empty());
    }

    #[test]
    fn os_trust_store_false_places_nothing_and_removes_what_was_placed() {
        use crate::modules::testing::{StateBuilder, run};
        let mut inv = crate::modules::testing::inventory("");
        let anchor = "/usr/local/share/ca-certificates/regboot-ca.crt";
        let summaries = |c: Vec<Change>| c.into_iter().map(|c| c.summary).collect::<Vec<_>>();
        let empty = StateBuilder::new();
        let placed = StateBuilder::new().file(anchor, "CA\n");
        assert_eq!(
            summaries(run(&TrustStore, &inv, "h1", &empty, true).unwrap()),
            [
                format!("write {anchor}"),
                "run update-ca-certificates".into()
            ]
        );
        // Stage 3 of a CA rotation removes the previous anchor: its links go too.
        let previous = "/usr/local/share/ca-certificates/regboot-ca-previous.crt";
        let rotated = StateBuilder::new()
            .file(anchor, "CA\n")
            .file(previous, "OLD\n");
        assert_eq!(
            summaries(run(&TrustStore, &inv, "h1", &rotated, true).unwrap()),
            [
                format!("remove {previous}"),
                "run update-ca-certificates --fresh".into()
            ]
        );
        inv.tls.os_trust_store = false;
        assert!(
            run(&TrustStore, &inv, "h1", &empty, true)
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            summaries(run(&TrustStore, &inv, "h1", &placed, true).unwrap()),
            [
                format!("remove {anchor}"),
                "run update-ca-certificates --fresh".into(),
                "remove the dangling links to regboot's CA in /etc/ssl/certs".into()
            ]
        );
    }
}
