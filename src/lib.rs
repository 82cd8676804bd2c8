//! regboot: bootstrap a private Docker registry across a cluster over SSH.
//!
//! The binary in `main.rs` is a thin clap front end; everything it does lives here so tests
//! and later commands can call it directly.

pub(crate) mod backup;
pub mod bundle;
pub(crate) mod catalog;
pub mod cli;
mod commands;
pub use commands::{json_asked_for, print_json_error, run};
pub(crate) mod deployed;
pub(crate) mod diff;
pub(crate) mod duration;
pub mod engine;
pub mod facts;
pub(crate) mod fsutil;
pub(crate) mod gc;
pub mod host;
pub mod inventory;
pub mod lab;
pub(crate) mod marathon;
pub(crate) mod material;
pub mod merge;
pub(crate) mod metrics;
pub(crate) mod modules;
pub mod pki;
pub(crate) mod playbooks;
pub mod registry_http;
pub mod render;
pub(crate) mod renew;
pub(crate) mod rotate;
pub mod runtime_api;
pub(crate) mod s3;
pub mod secret;
/// The generated smoke-test image, public for the tests that push it to a real registry.
pub use modules::smoke_test::image as smoke_image;
pub mod ssh;
pub mod tls_setup;
pub(crate) mod trust_store;
pub(crate) mod ui;
