//! SSH transport: how regboot reaches a host. One russh connection per host per run; commands
//! run on channels over it, built with [`quote`] and checked against known_hosts.

mod auth;
pub(crate) use auth::read_tty_without_echo;
mod dial;
mod error;
mod fanout;
mod heard;
pub mod known_hosts;
pub mod quote;
mod session;
mod target;
mod verifier;

pub use error::{ConnectError, ExecError};
pub use fanout::{connect_all, run_all, run_timed};
pub use quote::{RemoteCommand, quote};
pub use session::{ExecOutput, OUTPUT_LIMIT, Session};
pub use target::{Bastion, GLOBAL_KNOWN_HOSTS, HostKeyCheck, Target};
