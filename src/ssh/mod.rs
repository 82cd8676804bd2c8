//! SSH transport: how regboot reaches a host.

mod target;

pub use target::{Bastion, HostKeyCheck, Target};
