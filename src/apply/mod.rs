//! `regboot apply`, `plan` and `verify`: playbooks of modules run over SSH on every host.

mod change;
mod material;
pub(crate) mod modules;
pub mod playbook;
pub(crate) mod probe;
pub mod report;
mod runner;
mod smoke;
mod storage;

pub use playbook::Playbook;
pub use report::RunReport;
pub use runner::{Options, run};
