//! One function per subcommand: load what it needs, call the library, print, pick the exit code.

mod inventory;
mod lab;

pub use inventory::inventory_check;
pub use lab::lab;
