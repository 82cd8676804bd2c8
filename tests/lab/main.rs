//! The lab scenarios: every test that starts containerized hosts, one binary (one link on 2
//! cores), a module per scenario. Each scenario names its own lab, so they run side by side.

#[path = "../support/mod.rs"]
mod support;

mod agent_login;
mod apply;
mod backup;
mod bundle;
mod ca_constraints;
mod catalog;
mod ci;
mod docker_install;
mod engine;
mod front;
mod gc;
mod ha;
mod lab_cmd;
mod output;
mod probe_api;
mod renew;
mod reset;
mod reset_ha;
mod reset_keeps;
mod rotate;
mod runtimes;
mod runtimes_cri22;
mod runtimes_k3s;
mod smoke;
mod swarm;
mod ui;
mod zero_downtime;
