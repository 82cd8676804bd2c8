//! containerd: `/etc/containerd/certs.d/<reference>/hosts.toml` (containerd's hosts.md format)
//! with the CA file beside it, for every reference docker's certs.d gets. containerd reads
//! that directory on every pull (ctr with `--hosts-dir`, the CRI plugin through `config_path`),
//! so files and CA rotations need no restart; during a rotation `ca` names both CA files.
//!
//! containerd before 2.2 has no default `config_path`: where its CRI plugin runs without one,
//! regboot sets it once in `config.toml` (every other setting kept; a missing file gets only
//! that) and restarts containerd when it runs, one host at a time and announced in plan (a
//! stopped one reads it when it starts). The host manifest
//! records it, so `reset` takes out only what regboot set (no restart: containerd's running
//! config keeps reading a directory regboot has emptied until its next restart).

use anyhow::{Context, Result, bail};

use serde::{Deserialize, Serialize};

use super::certs_d::CaTree;
use super::{CaFile, Ctx, Module, file_change};
use crate::diff;
use crate::engine::change::{Action, Change};
use crate::engine::footprint::{self, Footprint};
use crate::engine::probe::{HostState, ProbeRequest};
use crate::facts::{Facts, InitSystem};
use crate::host::Mode;
use crate::inventory::{Host, Inventory};
use crate::merge::containerd as config;
use crate::pki::rotation::CaRole;

pub(crate) const ROOT: &str = "/etc/containerd/certs.d";
pub(crate) const CONTAINERD: CaTree = CaTree { root: ROOT };
pub(crate) const CONFIG: &str = "/etc/containerd/config.toml";
const HOSTS_TOML: &str = "hosts.toml";
const SERVICE: &str = "containerd";

const RESTART: &str = "if [ -d /run/systemd/system ]; then systemctl restart containerd; \
    else service containerd restart; fi";

/// Polls `ctr version` until containerd answers (bounded: 60 tries, one a second).
const WAIT: &str = r#"i=0
until ctr version >/dev/null 2>&1; do
  i=$((i+1)); [ $i -ge 60 ] && { echo "containerd did not answer ctr version within 60 s" >&2; exit 1; }
  sleep 1
done"#;

/// The hosts.toml of `reference`, trusting the CA files `cas`.
fn hosts_toml(reference: &str, cas: &[String]) -> String {
    let quoted: Vec<String> = cas.iter().map(|c| format!("{c:?}")).collect();
    format!(
        "# Written by regboot: how containerd reaches the registry as {reference}.\n\
         server = \"https://{reference}\"\n\n\
         [host.\"https://{reference}\"]\n  \
         capabilities = [\"pull\", \"resolve\", \"push\"]\n  \
         ca = [{}]\n",
        quoted.join(", ")
    )
}

/// The CA file changes of `reference` with its hosts.toml written between them, so that
/// hosts.toml names only files that exist and never stops naming a CA the registry may still
/// serve: the new CA files, then (when existing ones are overwritten, as `ca.crt` is at a CA
/// rotation's stage 2) a hosts.toml naming every CA file there, the overwrites, the hosts.toml
/// naming `wanted`, and last the removals.
fn with_hosts_toml(
    state: &HostState,
    reference: &str,
    ca: Vec<Change>,
    wanted: &[String],
) -> Vec<Change> {
    let path = format!("{}/{HOSTS_TOML}", CONTAINERD.dir(reference));
    let exists = |p: &str| state.file(p).is_some();
    let (writes, removals): (Vec<Change>, Vec<Change>) = ca
        .into_iter()
        .partition(|c| matches!(c.action, Action::PutFile { .. }));
    let (added, overwrites): (Vec<Change>, Vec<Change>) = writes
        .into_iter()
        .partition(|c| matches!(&c.action, Action::PutFile { path, .. } if !exists(path)));
    let mut interim = wanted.to_vec();
    let others = std::iter::once(None).chain(CaRole::ALL.map(Some));
    interim.extend(
        others
            .map(|role| CONTAINERD.ca_path(reference, role))
            .filter(|p| exists(p) && !wanted.contains(p)),
    );
    let toml = hosts_toml(reference, wanted);
    let mut changes = added;
    let last = if overwrites.is_empty() || interim == wanted {
        file_change(state, &path, toml.as_bytes(), 0o644, false)
    } else {
        let between = hosts_toml(reference, &interim);
        changes.extend(file_change(state, &path, between.as_bytes(), 0o644, false));
        let d = diff::unified(&path, &between, &toml);
        Some(Change::put_file(
            &path,
            toml.into_bytes(),
            Mode::Set(0o644),
            Some(d),
        ))
    };
    changes.extend(overwrites);
    let rewrites = last.is_some();
    changes.extend(last);
    // ctr reads hosts.toml, then the CA files it names: one that read the old hosts.toml an
    // instant before the rewrite still opens the file removed here (seen during rotate --ca).
    if rewrites && !removals.is_empty() {
        changes.push(Change::script(
            "wait 1 s for pulls that read the previous hosts.toml to load its CA files",
            "sleep 1",
            &[],
        ));
    }
    changes.extend(removals);
    changes
}

/// A new `config.toml`: its text, and the `config_path` it replaces (as written), if any.
pub(crate) struct ConfigSet {
    pub text: String,
    pub replaced: Option<String>,
}

/// The new `config.toml` when containerd's CRI plugin has no `config_path` that reads
/// [`ROOT`] on every pull path; `None` when nothing is to be set (no containerd, CRI off, set
/// already).
///
/// containerd 2.x's CRI pulls through its transfer service (unless `use_local_image_pull` or a
/// setting it cannot take turns it back), passing the CRI `config_path` as one host directory
/// (`registry.WithHostDir`, then `HostDirFromRoot`): several directories joined with ':' are read
/// as one literal directory that does not exist, and hosts.toml is ignored (containerd issues
/// 12415, 12636, 12808; still so in 2.2.7 and in main of August 2026). containerd 2.2's
/// default, where config_path is unset, is exactly such a list
/// (`/etc/containerd/certs.d:/etc/docker/certs.d`). So on 2.x a list is replaced by [`ROOT`]
/// alone, and an unset path is set on every version. The transfer plugin's own `config_path`
/// is read into its config and used by nothing in those versions: regboot leaves it alone.
pub(crate) fn config_change(state: &HostState) -> Result<Option<ConfigSet>> {
    let c = &state.facts.containerd;
    if !c.runtime.installed {
        return Ok(None);
    }
    if let Some(e) = &c.config_error {
        bail!("{CONFIG}: {e}");
    }
    let (cri, path, version) = match &c.config {
        Some(cfg) => (cfg.cri, cfg.config_path.as_deref(), cfg.version),
        None => (true, None, 0),
    };
    // A version-3 config runs only on containerd 2.x.
    let transfer = c.release() >= (2, 0) || version >= 3;
    let root = |d: &str| d.trim_end_matches('/') == ROOT;
    match path {
        // With the CRI plugin off nothing reads it; ctr is given --hosts-dir.
        _ if !cri => Ok(None),
        Some(p) if root(p) => Ok(None),
        Some(p) if p.split(':').any(root) && !transfer => Ok(None),
        Some(p) if p.split(':').any(root) => {
            let current = state.text(CONFIG).unwrap_or_default();
            let (text, replaced) = config::replace_config_path(&current, ROOT).context(CONFIG)?;
            Ok(Some(ConfigSet {
                text,
                replaced: Some(replaced),
            }))
        }
        Some(p) => bail!(
            "{CONFIG} sets the CRI plugin's config_path to {p:?}, which leaves out {ROOT} where \
             regboot places hosts.toml: add it (directories are separated by ':') and run again"
        ),
        None => {
            let current = state.text(CONFIG);
            let text =
                config::set_config_path(current.as_deref(), c.release().0, ROOT).context(CONFIG)?;
            Ok(Some(ConfigSet {
                text,
                replaced: None,
            }))
        }
    }
}

/// Its own record in the host's manifest (the field name a version-1 manifest used).
#[derive(Debug, Default, Serialize, Deserialize)]
struct Own {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    containerd_config: Option<ConfigRecord>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct ConfigRecord {
    /// There was no config.toml: reset removes it when nothing but regboot's key is left.
    created: bool,
    /// The config_path regboot replaced (as written: `'/a:/b'`): reset puts it back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    replaced: Option<String>,
}

pub(crate) struct ContainerdHosts;

impl Module for ContainerdHosts {
    fn name(&self) -> &'static str {
        "containerd_hosts"
    }

    fn want(&self, inv: &Inventory, host: &Host, req: &mut ProbeRequest) {
        CONTAINERD.want(inv, &[HOSTS_TOML], req);
        req.content.push(CONFIG.into());
        req.services.push(SERVICE.into());
        super::want_registry(inv, host, req);
    }

    fn present(&self, cx: &Ctx) -> Result<Vec<Change>> {
        if !cx.state.facts.containerd.runtime.installed {
            return Ok(Vec::new());
        }
        let config = config_change(cx.state)?;
        let mut changes = Vec::new();
        if let Some(tls) = &cx.material.tls {
            for r in cx.inv.references() {
                let roles =
                    std::iter::once(None).chain(tls.extra_cas.iter().map(|(r, _)| Some(*r)));
                let cas: Vec<String> = roles.map(|role| CONTAINERD.ca_path(&r, role)).collect();
                changes.extend(with_hosts_toml(
                    cx.state,
                    &r,
                    CONTAINERD.present(cx, &r),
                    &cas,
                ));
            }
        }
        if let Some(ConfigSet { text, replaced }) = config {
            let d = diff::unified(CONFIG, &cx.state.text(CONFIG).unwrap_or_default(), &text);
            let mut write = Change::put_file(CONFIG, text.into_bytes(), Mode::Keep, Some(d));
            write.summary = match replaced {
                None => format!("set the CRI plugin's registry config_path to {ROOT} in {CONFIG}"),
                Some(was) => format!(
                    "set the CRI plugin's registry config_path to {ROOT} in {CONFIG} instead of \
                     {was}: containerd 2.x's CRI pulls through its transfer service, which reads \
                     a list as one directory"
                ),
            };
            changes.push(write);
            // A stopped containerd (systemd says so) reads it when it starts: not started here.
            let systemd = cx.state.facts.init == InitSystem::Systemd;
            if systemd && cx.state.service(SERVICE) != Some("active") {
                return Ok(changes);
            }
            let restart = Change::script(
                "RESTART containerd: its CRI plugin reads config_path only at start (running \
                 containers keep running)",
                RESTART,
                &[],
            );
            let mut waits = vec![Change::script(
                "wait until containerd answers ctr version",
                WAIT,
                &[],
            )];
            if cx.state.facts.docker.running {
                waits.push(Change::wait_docker());
            }
            changes.extend(super::restart(cx, restart, waits, true));
        }
        Ok(changes)
    }

    /// Its tree (directories, CA files, hosts.toml: an operator's hosts.toml is saved before
    /// regboot's replaces it) where containerd is installed, and whether it sets config_path
    /// in config.toml: docker.install brings containerd with the engine (its package's
    /// config.toml, without config_path), so that counts too.
    fn footprint(&self, inv: &Inventory, host: &Host, state: Option<&HostState>) -> Footprint {
        let Some(state) = state else {
            let mut fp = CONTAINERD.footprint(inv, &[HOSTS_TOML]);
            fp.record = Some(serde_json::to_value(Own::default()).unwrap_or_default());
            return fp;
        };
        let installed = state.facts.containerd.runtime.installed;
        let brings = super::docker_install::installs(inv, host, &state.facts) && !installed;
        // Recorded now, before docker.install brings containerd in this same run.
        let mut fp = if installed || brings {
            CONTAINERD.footprint(inv, &[HOSTS_TOML])
        } else {
            Footprint::default()
        };
        // Errors stop the containerd step, with what to do; nothing to record then.
        let set = config_change(state).ok().flatten();
        if set.is_some() || brings {
            let created = state.file(CONFIG).is_none() && !brings;
            let replaced = set.and_then(|s| s.replaced);
            let own = Own {
                containerd_config: Some(ConfigRecord { created, replaced }),
            };
            fp.record = serde_json::to_value(own).ok();
        }
        fp
    }

    /// The CA files and hosts.toml (an operator's original put back), then the config_path
    /// regboot set (as its record says), without a restart.
    fn absent(&self, cx: &Ctx) -> Result<Vec<Change>> {
        let record = footprint::recorded(cx, self)?;
        let mut changes = CONTAINERD.absent(cx, &record, &[HOSTS_TOML])?;
        let config = record.own::<Own>().and_then(|o| o.containerd_config);
        let (Some(rec), Some(text)) = (config, cx.state.text(CONFIG)) else {
            return Ok(changes);
        };
        let later = "(containerd reads it at its next restart)";
        if let Some(was) = &rec.replaced {
            if let Some(back) = config::restore_config_path(&text, was).context(CONFIG)?
                && back != text
            {
                let d = diff::unified(CONFIG, &text, &back);
                let mut c = Change::put_file(CONFIG, back.into_bytes(), Mode::Keep, Some(d));
                c.summary = format!("put the CRI config_path {was} back in {CONFIG} {later}");
                changes.push(c);
            }
            return Ok(changes);
        }
        let Some((rest, bare)) = config::unset_config_path(&text).context(CONFIG)? else {
            return Ok(changes);
        };
        changes.push(if bare && rec.created {
            Change::script(
                format!("remove {CONFIG}: regboot created it for config_path alone {later}"),
                r#"rm -f -- "$1""#,
                &[CONFIG],
            )
        } else {
            let d = diff::unified(CONFIG, &text, &rest);
            let mut c = Change::put_file(CONFIG, rest.into_bytes(), Mode::Keep, Some(d));
            c.summary = format!("take the config_path regboot set out of {CONFIG} {later}");
            c
        });
        Ok(changes)
    }

    fn ca_files(&self, inv: &Inventory, facts: Option<&Facts>) -> Vec<CaFile> {
        match facts {
            Some(f) if !f.containerd.runtime.installed => Vec::new(),
            _ => CONTAINERD.ca_files(inv),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::{Containerd, Runtime};
    use crate::modules::testing::{self, StateBuilder, summaries};

    fn containerd(state: StateBuilder, version: &str, config: Option<&str>) -> StateBuilder {
        let mut s = match config {
            Some(text) => state.file(CONFIG, text),
            None => state,
        };
        let runtime = Runtime {
            installed: true,
            running: false,
            version: Some(version.into()),
        };
        s.0.facts.containerd = Containerd::with_config(runtime, config);
        s.0.facts.init = InitSystem::Systemd;
        s.service(SERVICE, "active")
    }

    /// The CA files a hosts.toml names.
    fn named(toml: &str) -> Vec<String> {
        let doc: toml_edit::DocumentMut = toml.parse().unwrap();
        let host = doc["host"].as_table_like().unwrap();
        let (_, h) = host.iter().next().unwrap();
        h["ca"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect()
    }

    const DEBIAN: &str = "version = 2\n\n[plugins]\n  [plugins.\"io.containerd.grpc.v1.cri\"]\n    \
        [plugins.\"io.containerd.grpc.v1.cri\".cni]\n      bin_dir = \"/usr/lib/cni\"\n";

    #[test]
    fn hosts_toml_names_every_ca_file() {
        let toml = hosts_toml(
            "registry.lab:5000",
            &["/a/ca.crt".into(), "/a/ca-next.crt".into()],
        );
        let doc: toml_edit::DocumentMut = toml.parse().unwrap();
        assert_eq!(doc["server"].as_str(), Some("https://registry.lab:5000"));
        let host = &doc["host"]["https://registry.lab:5000"];
        let caps: Vec<&str> = host["capabilities"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(caps, ["pull", "resolve", "push"]);
        assert_eq!(named(&toml), ["/a/ca.crt", "/a/ca-next.crt"]);
    }

    #[test]
    fn config_path_is_set_once_and_the_restart_goes_one_host_at_a_time() {
        let inv = testing::inventory("");
        let refs = inv.references();
        let run =
            |state: &StateBuilder| testing::run(&ContainerdHosts, &inv, "h2", state, true).unwrap();
        // No containerd: nothing.
        assert!(run(&StateBuilder::new()).is_empty());
        // Debian's containerd 1.6: the CRI plugin without config_path.
        let fresh = containerd(StateBuilder::new(), "1.6.20", Some(DEBIAN));
        let changes = run(&fresh);
        let s = summaries(&changes);
        let dir = |r: &str| format!("{ROOT}/{r}");
        assert_eq!(s[0], format!("write {}/ca.crt", dir(&refs[0])));
        assert_eq!(s[1], format!("write {}/hosts.toml", dir(&refs[0])));
        assert_eq!(s.len(), 2 * refs.len() + 4, "{s:#?}");
        let config = testing::written(&changes, CONFIG).unwrap();
        assert!(config.starts_with(DEBIAN), "{config}");
        assert_eq!(
            config::read(&config).unwrap().config_path.as_deref(),
            Some(ROOT)
        );
        assert!(s[s.len() - 3].starts_with("RESTART containerd"));
        // Docker runs here (the builder's default): dockerd answers again before the next host.
        assert_eq!(s[s.len() - 1], "wait until dockerd answers docker info");
        assert!(
            changes[2 * refs.len()..]
                .iter()
                .skip(1)
                .all(|c| c.one_at_a_time)
        );
        assert!(changes[..2 * refs.len()].iter().all(|c| !c.one_at_a_time));
        // Converged: nothing, and no restart.
        let mut done = containerd(StateBuilder::new(), "1.6.20", Some(&config));
        for r in &refs {
            let hosts = testing::written(&changes, &format!("{}/hosts.toml", dir(r))).unwrap();
            done = done
                .file(&CONTAINERD.ca_path(r, None), "CA\n")
                .file(&format!("{}/hosts.toml", dir(r)), &hosts);
        }
        assert!(run(&done).is_empty(), "{:#?}", summaries(&run(&done)));
        // No config file: a minimal one of the version containerd reads natively.
        let bare = containerd(StateBuilder::new(), "1.7.24", None);
        let written = testing::written(&run(&bare), CONFIG).unwrap();
        assert!(written.starts_with("version = 2\n"), "{written}");
        let v2 = containerd(StateBuilder::new(), "2.1.4", None);
        assert!(
            testing::written(&run(&v2), CONFIG)
                .unwrap()
                .starts_with("version = 3\n")
        );
        // A stopped containerd gets the config, and no start.
        let mut stopped = containerd(StateBuilder::new(), "1.6.20", Some(DEBIAN));
        stopped.0.services.insert(SERVICE.into(), "inactive".into());
        let s = summaries(&run(&stopped));
        assert!(
            s.last().unwrap().starts_with("set the CRI plugin's"),
            "{s:?}"
        );
        // containerd 2.2's default list is read as one directory by its CRI pulls: set too.
        let v22 = containerd(StateBuilder::new(), "2.2.0", None);
        let written = testing::written(&run(&v22), CONFIG).unwrap();
        assert_eq!(
            config::read(&written).unwrap().config_path.as_deref(),
            Some(ROOT)
        );
        // CRI off reads nothing: files only.
        let off = containerd(
            StateBuilder::new(),
            "1.6.20",
            Some("disabled_plugins = [\"cri\"]\n"),
        );
        assert!(testing::written(&run(&off), CONFIG).is_none());
        // A config_path elsewhere, or an unreadable config, stops the host.
        let elsewhere = "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry]\nconfig_path = \"/opt/hosts\"\n";
        for text in [elsewhere, "version = [\n"] {
            let state = containerd(StateBuilder::new(), "1.6.20", Some(text));
            assert!(testing::run(&ContainerdHosts, &inv, "h2", &state, true).is_err());
        }
    }

    #[test]
    fn a_rotation_names_both_cas_and_reset_takes_out_what_regboot_set() {
        let inv = testing::inventory("");
        let r = &inv.references()[0];
        let mut material = testing::material();
        material.tls.as_mut().unwrap().extra_cas = vec![(CaRole::Next, "NEXT\n".into())];
        let set = config::set_config_path(Some(DEBIAN), 1, ROOT).unwrap();
        let state = containerd(StateBuilder::new(), "1.6.20", Some(&set))
            .file(&CONTAINERD.ca_path(r, None), "CA\n");
        let changes =
            testing::run_with(&ContainerdHosts, &inv, "h2", &state, &material, true).unwrap();
        let hosts = testing::written(&changes, &format!("{ROOT}/{r}/hosts.toml")).unwrap();
        assert_eq!(
            named(&hosts),
            [
                CONTAINERD.ca_path(r, None),
                CONTAINERD.ca_path(r, Some(CaRole::Next))
            ]
        );
        // Reset: the files, then the config_path the manifest says regboot set.
        let manifest = r#"{"version": 2, "modules": {"containerd_hosts": {"record": {"containerd_config": {"created": false}}}}}"#;
        let placed = state
            .file(&format!("{ROOT}/{r}/hosts.toml"), &hosts)
            .file(footprint::MANIFEST, manifest);
        let changes = testing::run(&ContainerdHosts, &inv, "h2", &placed, false).unwrap();
        assert_eq!(
            summaries(&changes).last().unwrap(),
            &format!(
                "take the config_path regboot set out of {CONFIG} (containerd reads it at its next restart)"
            )
        );
        assert_eq!(testing::written(&changes, CONFIG).unwrap(), DEBIAN);
    }

    /// An operator's hosts.toml (a mirror for the registry's name) is saved by apply's first
    /// step and put back by reset; the CA file regboot added beside it goes.
    #[test]
    fn an_operator_s_hosts_toml_comes_back() {
        let inv = testing::inventory("");
        let r = &inv.references()[0];
        let toml = format!("{ROOT}/{r}/hosts.toml");
        let theirs = "server = \"https://registry.test:5000\"\n[host.\"https://mirror:5000\"]\n";
        let set = config::set_config_path(Some(DEBIAN), 1, ROOT).unwrap();
        let apply = crate::playbooks::apply().unwrap();
        let before = containerd(StateBuilder::new(), "1.6.20", Some(&set)).file(&toml, theirs);
        let changes = testing::run_in(
            &crate::modules::host_manifest::HostManifest,
            &inv,
            "h2",
            &before,
            &testing::material(),
            true,
            &apply,
        )
        .unwrap();
        let saved = footprint::saved_path(&toml);
        assert!(
            summaries(&changes).contains(&format!("keep the original {toml} in {saved}")),
            "{:?}",
            summaries(&changes)
        );
        let manifest = testing::written(&changes, footprint::MANIFEST).unwrap();
        let applied = containerd(StateBuilder::new(), "1.6.20", Some(&set))
            .file(&toml, &hosts_toml(r, &[CONTAINERD.ca_path(r, None)]))
            .file(&CONTAINERD.ca_path(r, None), "CA\n")
            .file(&saved, theirs)
            .file(footprint::MANIFEST, &manifest);
        let changes = testing::run(&ContainerdHosts, &inv, "h2", &applied, false).unwrap();
        assert_eq!(
            summaries(&changes)[0],
            format!(
                "put back the original {toml}; remove {}",
                CONTAINERD.ca_path(r, None)
            )
        );
    }

    /// Walks a CA rotation's three stages change by change: after each one, every file a
    /// hosts.toml names exists and the CAs the registry may serve (old and new) are named.
    #[test]
    fn a_ca_rotation_never_names_a_missing_file_or_drops_a_served_ca() {
        let inv = testing::inventory("");
        let refs = inv.references();
        let set = config::set_config_path(Some(DEBIAN), 1, ROOT).unwrap();
        let mut files: std::collections::BTreeMap<String, String> = refs
            .iter()
            .flat_map(|r| {
                let toml = hosts_toml(r, &[CONTAINERD.ca_path(r, None)]);
                [
                    (CONTAINERD.ca_path(r, None), "OLD\n".to_string()),
                    (format!("{ROOT}/{r}/hosts.toml"), toml),
                ]
            })
            .collect();
        // Each stage's CA, extra CA, and the CAs the registry may serve meanwhile.
        let stages = [
            ("OLD\n", Some((CaRole::Next, "NEW\n")), ["OLD\n"].as_slice()),
            (
                "NEW\n",
                Some((CaRole::Previous, "OLD\n")),
                &["OLD\n", "NEW\n"],
            ),
            ("NEW\n", None, &["NEW\n"]),
        ];
        for (ca, extra, served) in stages {
            let mut material = testing::material();
            let tls = material.tls.as_mut().unwrap();
            tls.ca_pem = ca.into();
            tls.extra_cas = extra.map(|(r, p)| (r, p.to_string())).into_iter().collect();
            let mut state = containerd(StateBuilder::new(), "1.6.20", Some(&set));
            for (path, text) in &files {
                state = state.file(path, text);
            }
            let changes =
                testing::run_with(&ContainerdHosts, &inv, "h2", &state, &material, true).unwrap();
            assert!(!changes.is_empty());
            for change in changes {
                match change.action {
                    Action::PutFile { path, data, .. } => {
                        files.insert(path, String::from_utf8(data).unwrap());
                    }
                    // A removal names its file; the wait before removals names none.
                    Action::Script { args, .. } => {
                        if let Some(path) = args.first() {
                            files.remove(path);
                        }
                    }
                    Action::RemoveFile { path } => {
                        files.remove(&path);
                    }
                    Action::WaitHealthy { .. } | Action::Bundle(_) | Action::Detached(_) => {
                        unreachable!()
                    }
                }
                for r in &refs {
                    let named = named(&files[&format!("{ROOT}/{r}/hosts.toml")]);
                    let trusted: Vec<&str> = named
                        .iter()
                        .map(|p| files.get(p).map(String::as_str))
                        .collect::<Option<_>>()
                        .unwrap_or_else(|| panic!("{named:?} names a missing file"));
                    for pem in served {
                        assert!(trusted.contains(pem), "after {:?}", change.summary);
                    }
                }
            }
            let hosts = &files[&format!("{ROOT}/{}/hosts.toml", refs[0])];
            assert_eq!(named(hosts).len(), 1 + usize::from(extra.is_some()));
        }
    }

    /// containerd 2.2's default `config_path` written out (a list): on 2.x it is replaced by
    /// certs.d alone, with the restart announced; reset puts the list back byte for byte. On
    /// 1.x (local pulls split the list) it is left.
    #[test]
    fn a_list_of_directories_is_replaced_on_2x_and_put_back() {
        let inv = testing::inventory("");
        let list = "version = 3\n\n[plugins]\n  [plugins.'io.containerd.cri.v1.images'.registry]\n    \
            config_path = '/etc/containerd/certs.d:/etc/docker/certs.d'\n";
        let state = containerd(StateBuilder::new(), "2.1.9", Some(list));
        let changes = testing::run(&ContainerdHosts, &inv, "h2", &state, true).unwrap();
        let s = summaries(&changes);
        assert!(
            s.iter()
                .any(|c| c.contains("instead of '/etc/containerd/certs.d:/etc/docker/certs.d'")),
            "{s:#?}"
        );
        assert!(
            s.iter().any(|c| c.starts_with("RESTART containerd")),
            "{s:#?}"
        );
        let set = testing::written(&changes, CONFIG).unwrap();
        assert_eq!(
            set,
            list.replace(
                "'/etc/containerd/certs.d:/etc/docker/certs.d'",
                "\"/etc/containerd/certs.d\""
            )
        );
        // The version is unknown (not read): a version-3 config says 2.x all the same.
        let unknown = containerd(StateBuilder::new(), "", Some(list));
        assert!(
            testing::written(
                &testing::run(&ContainerdHosts, &inv, "h2", &unknown, true).unwrap(),
                CONFIG
            )
            .is_some()
        );
        // 1.7 with a version-2 list: its CRI pulls locally and reads every directory.
        let v2 = "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry]\nconfig_path = \"/etc/containerd/certs.d:/etc/docker/certs.d\"\n";
        let old = containerd(StateBuilder::new(), "1.7.24", Some(v2));
        assert!(
            testing::written(
                &testing::run(&ContainerdHosts, &inv, "h2", &old, true).unwrap(),
                CONFIG
            )
            .is_none()
        );
        // The record apply's first step writes, then reset.
        let fp = ContainerdHosts.footprint(&inv, &inv.hosts[1], Some(&state.0));
        let record = fp.record.unwrap();
        assert_eq!(
            record["containerd_config"]["replaced"],
            "'/etc/containerd/certs.d:/etc/docker/certs.d'"
        );
        let manifest =
            serde_json::json!({"version": 2, "modules": {"containerd_hosts": {"record": record}}});
        let placed = containerd(StateBuilder::new(), "2.1.9", Some(&set))
            .file(footprint::MANIFEST, &manifest.to_string());
        let changes = testing::run(&ContainerdHosts, &inv, "h2", &placed, false).unwrap();
        assert_eq!(testing::written(&changes, CONFIG).unwrap(), list);
        assert!(summaries(&changes).last().unwrap().starts_with(
            "put the CRI config_path '/etc/containerd/certs.d:/etc/docker/certs.d' back"
        ));
    }
}
