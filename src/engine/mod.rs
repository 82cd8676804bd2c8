//! The engine: playbooks of modules run over one fleet layer. See docs/ARCHITECTURE.md.

pub(crate) mod ca_guard;
pub(crate) mod change;
pub(crate) mod fleet;
pub(crate) mod footprint;
pub(crate) mod limit;
pub(crate) mod memo;
pub(crate) mod module;
pub(crate) mod packages;
mod pipeline;
pub mod playbook;
mod printer;
pub(crate) mod probe;
pub mod progress;
pub mod report;
pub(crate) mod runner;
mod sources;
mod step;

pub use playbook::Playbook;
pub use probe::facts;
pub use report::RunReport;
pub use runner::{Options, run};
