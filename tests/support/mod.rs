//! Helpers shared by the integration tests. Each test file uses only some of them.
#![allow(dead_code)]

pub mod cli;
pub mod lab;
pub mod sshd;
pub mod tls;
pub mod ui;
