//! regboot: bootstrap a private Docker registry across a cluster over SSH.
//!
//! The binary in `main.rs` is a thin clap front end; everything it does lives here so tests
//! and later commands can call it directly.

pub mod apply;
pub mod cli;
mod commands;
pub mod deployed;
pub mod diff;
pub mod facts;
pub mod fsutil;
pub mod host;
pub mod inventory;
pub mod lab;
pub mod merge;
pub mod pki;
pub mod registry_http;
pub mod render;
pub mod rotate;
pub mod smoke_image;
pub mod ssh;
pub mod trust_store;
