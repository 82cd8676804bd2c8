//! regboot: bootstrap a private Docker registry across a cluster over SSH.
//!
//! The binary in `main.rs` is a thin clap front end; everything it does lives here so tests
//! and later commands can call it directly.

pub mod cli;
mod commands;
pub use commands::run;
pub mod deployed;
pub mod diff;
pub mod engine;
pub mod facts;
pub mod fsutil;
pub mod host;
pub mod inventory;
pub mod lab;
pub(crate) mod material;
pub mod merge;
pub(crate) mod modules;
pub mod pki;
pub mod registry_http;
pub mod render;
pub mod rotate;
pub(crate) mod s3;
pub mod secret;
pub(crate) mod smoke;
pub mod smoke_image;
pub mod ssh;
pub mod trust_store;
