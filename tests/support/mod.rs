//! Helpers shared by the integration tests. Each test file uses only some of them.
#![allow(dead_code)]

pub mod cli;
pub mod lab;
pub mod sshd;
pub mod tls;
pub mod ui;

/// A loopback port nothing listens on now (the system's pick): for a server to start on, or
/// for a connection that must be refused.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap()
}
