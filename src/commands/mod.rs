//! One function per subcommand: load what it needs, call the library, print, pick the exit code.

mod apply;
mod certs;
mod inventory;
mod lab;

pub use apply::{Kind, run_playbook, user_hash};
pub use certs::{certs_check, certs_init, certs_show};
pub use inventory::inventory_check;
pub use lab::lab;
