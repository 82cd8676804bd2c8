//! One function per subcommand: load what it needs, call the library, print, pick the exit code.

mod certs;
mod inventory;

pub use certs::{certs_check, certs_init, certs_show};
pub use inventory::inventory_check;
