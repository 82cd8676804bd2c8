//! One function per subcommand: load what it needs, call the library, print, pick the exit code.

mod apply;
mod certs;
mod facts;
mod inventory;
mod known_hosts;
mod lab;
mod rotate;

pub use apply::{Kind, run_playbook, user_hash};
pub use certs::{certs_check, certs_import, certs_init, certs_show};
pub use facts::facts;
pub use inventory::inventory_check;
pub use known_hosts::forget as known_hosts_forget;
pub use lab::lab;
pub use rotate::rotate;
