//! The module contract: what every module implements (the playbook's `module:` names one)
//! and what it sees. Modules live in `src/modules/`; the runner knows only this trait.

use anyhow::{Result, bail};
use futures::future::BoxFuture;

use serde_json::Value;

use super::change::Change;
use super::memo::Memo;
use super::packages::Package;
use super::probe::{HostState, ProbeRequest};
use super::report::{Phase, Verification};
use crate::facts::Facts;
use crate::host::RemoteHost;
use crate::inventory::{Host, Inventory};
use crate::material::Material;
use crate::pki::StateDir;
use crate::pki::rotation::CaRole;
use crate::render::Templates;

/// A CA copy a module places: the current CA (`role: None`) or a rotation's extra one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CaFile {
    pub path: String,
    pub role: Option<CaRole>,
}

/// What a module may add to a host. With `state: None` (before the probe): everything it
/// might add anywhere, which the probe is asked about; with the host's state: what it adds
/// there.
#[derive(Debug, Clone, Default)]
pub(crate) struct Footprint {
    /// Directories it may create, parents first: recorded when missing.
    pub dirs: Vec<String>,
    /// Packages it may install: recorded when their command is missing.
    pub packages: Vec<Package>,
    /// Files it replaces wholesale: recorded with whether one was there, which is saved.
    pub files: Vec<String>,
    /// Keys it writes into JSON object files: the value before, and the one it writes.
    pub keys: Vec<JsonKey>,
    /// Anything else it needs to undo its work, kept from the first apply that has one.
    pub record: Option<Value>,
}

impl Footprint {
    pub(crate) fn is_empty(&self) -> bool {
        self.dirs.is_empty()
            && self.packages.is_empty()
            && self.files.is_empty()
            && self.keys.is_empty()
            && self.record.is_none()
    }
}

/// A key a module writes into a JSON object file.
#[derive(Debug, Clone)]
pub(crate) struct JsonKey {
    pub file: &'static str,
    pub key: String,
    pub value: Value,
    /// A list the module extends with its entries (the others kept), not a value it sets.
    pub list: bool,
}

pub(crate) trait Module: Sync {
    /// The playbook's `module:` key.
    fn name(&self) -> &'static str;

    /// What it needs read from `host` by the probe.
    fn want(&self, _inv: &Inventory, _host: &Host, _req: &mut ProbeRequest) {}

    /// The changes that make the host match the wish (`state: present`).
    fn present(&self, _cx: &Ctx) -> Result<Vec<Change>> {
        bail!(
            "module {} runs once for the fleet: its step needs `once: true`",
            self.name()
        )
    }

    /// The changes that remove what it placed (`state: absent`).
    fn absent(&self, _cx: &Ctx) -> Result<Vec<Change>> {
        bail!(
            "module {} cannot remove what it placed (state: absent)",
            self.name()
        )
    }

    /// Where it puts CA copies: on a host with these facts, or (`None`: before the probe)
    /// every path it might use. `certs check` and `rotate --ca` find every copy from this.
    fn ca_files(&self, _inv: &Inventory, _facts: Option<&Facts>) -> Vec<CaFile> {
        Vec::new()
    }

    /// What it adds to `host` (directories, packages, replaced files, JSON keys, a record of
    /// its own): on a host in `state`, or (`None`: before the probe) all it might add. The
    /// first step of apply records it on the host; its `absent` reads the record back
    /// (`footprint::recorded`) and undoes that. See `engine::footprint`.
    fn footprint(&self, _inv: &Inventory, _host: &Host, _state: Option<&HostState>) -> Footprint {
        Footprint::default()
    }

    /// Why `host` (read as `state`) cannot take its step to present, asked before any step
    /// runs (e.g. the container engine it needs is missing or stopped); the host then takes
    /// no step. `engine_coming`: an earlier step of the playbook may install or start the
    /// container engine (`provides_engine`).
    fn not_ready(
        &self,
        _inv: &Inventory,
        _host: &Host,
        _state: &HostState,
        _engine_coming: bool,
    ) -> Option<String> {
        None
    }

    /// Whether it installs or starts the container engine: the hosts it changed are probed
    /// again, and `not_ready` hears the engine may be coming.
    fn provides_engine(&self) -> bool {
        false
    }

    /// A `once` step in a plan: whether it talks to its hosts (a plan closes every other
    /// connection as soon as its host is read).
    fn plans_over_ssh(&self) -> bool {
        false
    }

    /// What it computes once for the run before any host is touched (a credential from the
    /// state directory, a rendered config), kept in `Material` under its name
    /// (`Material::prepared`): a missing credential stops the run before its first change.
    /// Asked of the modules of the playbook's steps that converge to present.
    fn prepare(&self, _cx: &PrepareCx) -> Result<Option<Prepared>> {
        Ok(None)
    }

    /// A `once` step: act on the fleet as a whole.
    fn once<'a>(&'a self, _cx: &'a FleetCx<'a>) -> BoxFuture<'a, Result<Outcome>> {
        let name = self.name();
        Box::pin(
            async move { bail!("module {name} runs per host: drop `once: true` from its step") },
        )
    }
}

/// What a module computed for the run (`Module::prepare`).
pub(crate) type Prepared = std::sync::Arc<dyn std::any::Any + Send + Sync>;

/// What `Module::prepare` sees.
pub(crate) struct PrepareCx<'a> {
    pub inv: &'a Inventory,
    /// Its secrets; read-only in `verify`, where what is missing is an error.
    pub state: &'a StateDir,
    pub templates: &'a Templates,
    /// Plan: write nothing (a missing secret is made up, not stored).
    pub check: bool,
}

/// What a module sees for one host.
pub(crate) struct Ctx<'a> {
    pub inv: &'a Inventory,
    pub host: &'a Host,
    pub material: &'a Material,
    pub state: &'a HostState,
    pub templates: &'a Templates,
    /// What modules computed for this host and share (e.g. registry files, hashed once).
    pub memo: &'a Memo,
    /// The modules of the playbook's per-host steps that converge this host to present
    /// (`footprint::record_playbook` records their footprints).
    pub modules: &'a [&'static dyn Module],
}

/// One reachable host, as a `once` step sees it.
pub(crate) struct Member<'a> {
    pub host: &'a Host,
    pub remote: &'a RemoteHost,
    pub state: &'a HostState,
}

/// What a `once` step sees: the reachable hosts of its role inside the limit.
pub(crate) struct FleetCx<'a> {
    pub inv: &'a Inventory,
    pub material: &'a Material,
    /// Plan: read, change nothing.
    pub check: bool,
    pub members: Vec<Member<'a>>,
    /// Told each verification the moment it is known (the run prints it then).
    pub on_verified: &'a (dyn Fn(&Verification) + Sync),
}

/// What a `once` step did.
#[derive(Default)]
pub(crate) struct Outcome {
    /// Printed and kept in the report's notes.
    pub notes: Vec<String>,
    /// Hosts that failed, with why.
    pub failed: Vec<(String, String)>,
    /// What it checked, when it verifies (the smoke test); a failed check fails its host.
    pub verified: Vec<Verification>,
    /// It verifies, and did not: why, and whether the inventory turned it off (`verify`
    /// then does not fail).
    pub not_verified: Option<(String, bool)>,
    /// Where its time went, in order (the smoke test's push, pulls, replica checks).
    pub phases: Vec<Phase>,
}
