//! The inventory a lab writes (docs/inventory.md's format): host 1 is the registry, the others are
//! agents, every path absolute so the file works from any working directory.

use std::path::Path;

use super::hosts::LabHost;
use super::labdir;
use super::registry_image;

/// The registry's hostname in a lab; hosts reach it through apply's /etc/hosts entry.
pub const REGISTRY_HOSTNAME: &str = "registry.lab";
pub const REGISTRY_USER: &str = "lab";

pub fn render(lab: &str, dir: &Path, network: &str, hosts: &[LabHost]) -> String {
    let path = |name: &str| yaml_str(&dir.join(name).to_string_lossy());
    let mut out = format!(
        "# Written by `regboot lab up --name {lab}`: {} containerized hosts on the docker network\n\
         # {network}. `regboot lab down --name {lab}` removes them and this directory.\n\
         version: 1\n\n\
         defaults:\n  user: root\n  port: 22\n  key: {}\n  known_hosts: {}\n  host_key_check: strict\n\n\
         hosts:\n",
        hosts.len(),
        path(labdir::KEY),
        path(labdir::KNOWN_HOSTS),
    );
    for (i, host) in hosts.iter().enumerate() {
        out.push_str(&host_entry(host, if i == 0 { "registry" } else { "agent" }));
    }
    out.push_str(&format!(
        "\nregistry:\n  hostname: {REGISTRY_HOSTNAME}\n  port: 5000\n  image: {}\n  image_archive: {}\n  \
         users:\n    - name: {REGISTRY_USER}\n      password_file: {}\n\n\
         tls:\n  mode: self-signed\n",
        registry_image::IMAGE,
        path(labdir::ARCHIVE),
        path(labdir::PASSWORD),
    ));
    out
}

/// One `hosts:` entry; user and port only where they differ from the defaults.
fn host_entry(host: &LabHost, role: &str) -> String {
    let mut entry = format!("  - name: {}\n    address: {}\n", host.name, host.address);
    if host.user != "root" {
        entry.push_str(&format!("    user: {}\n", host.user));
    }
    if host.port != 22 {
        entry.push_str(&format!("    port: {}\n", host.port));
    }
    entry.push_str(&format!("    roles: [{role}]\n"));
    entry
}

/// The HA profile's inventory: two lb hosts holding `vip`, three registry replicas on the
/// storage host's S3 (the bucket made by apply), two agents. The storage host is not in it.
pub fn render_ha(lab: &str, dir: &Path, network: &str, hosts: &[LabHost], vip: &str) -> String {
    let profile = super::Profile::Ha;
    let mut out = header(lab, "ha", dir, network);
    for (i, host) in hosts.iter().enumerate() {
        let role = profile.role(i + 1);
        if role == "storage" {
            continue;
        }
        out.push_str(&host_entry(host, role));
    }
    out.push_str(&s3_registry(dir, hosts, profile, ""));
    out.push_str(&format!(
        "\nha:\n  vip: {vip}\n  interface: eth0\n  virtual_router_id: 55\n"
    ));
    out
}

/// The swarm profile's inventory: host1 and host2 run the registry as a Swarm service
/// (`deploy: swarm`) on host3's S3, host3 is an agent outside the swarm.
pub fn render_swarm(lab: &str, dir: &Path, network: &str, hosts: &[LabHost]) -> String {
    let profile = super::Profile::Swarm;
    let mut out = header(lab, "swarm", dir, network);
    for (i, host) in hosts.iter().enumerate() {
        out.push_str(&host_entry(host, profile.role(i + 1)));
    }
    out.push_str(&s3_registry(dir, hosts, profile, "  deploy: swarm\n"));
    out
}

/// The comment and SSH defaults of an S3 profile's inventory, up to `hosts:`.
fn header(lab: &str, profile: &str, dir: &Path, network: &str) -> String {
    let path = |name: &str| yaml_str(&dir.join(name).to_string_lossy());
    format!(
        "# Written by `regboot lab up --profile {profile} --name {lab}`: containerized hosts on the docker\n\
         # network {network}. The S3 keys are in {env} (export them before apply:\n\
         #   set -a; . {env}; set +a). `regboot lab down --name {lab}` removes it all.\n\
         version: 1\n\n\
         defaults:\n  user: root\n  port: 22\n  key: {}\n  known_hosts: {}\n  host_key_check: strict\n\n\
         hosts:\n",
        path(labdir::KEY),
        path(labdir::KNOWN_HOSTS),
        env = dir.join(super::seaweed::ENV_FILE).display(),
    )
}

/// The `registry:` section (with `extra` lines) on the S3 storage of the host whose role is
/// `storage` (else the last host: the swarm profile's agent serves it), and `tls:`.
fn s3_registry(dir: &Path, hosts: &[LabHost], profile: super::Profile, extra: &str) -> String {
    let path = |name: &str| yaml_str(&dir.join(name).to_string_lossy());
    let endpoint = hosts
        .iter()
        .enumerate()
        .find(|(i, _)| profile.role(i + 1) == "storage")
        .or(hosts.iter().enumerate().next_back())
        .map(|(_, h)| h.address.as_str())
        .unwrap_or_default();
    format!(
        "\nregistry:\n  hostname: {REGISTRY_HOSTNAME}\n  port: 5000\n{extra}  image: {}\n  image_archive: {}\n  \
         storage:\n    driver: s3\n    s3:\n      bucket: {}\n      region: us-east-1\n      \
         endpoint: http://{endpoint}:{}\n      access_key_env: {}\n      secret_key_env: {}\n      \
         path_style: true\n      redirect: false\n      create_bucket: true\n  \
         users:\n    - name: {REGISTRY_USER}\n      password_file: {}\n\n\
         tls:\n  mode: self-signed\n",
        registry_image::IMAGE,
        path(labdir::ARCHIVE),
        super::seaweed::BUCKET,
        super::seaweed::PORT,
        super::seaweed::ACCESS_KEY_ENV,
        super::seaweed::SECRET_KEY_ENV,
        path(labdir::PASSWORD),
    )
}

/// `text` with `section` after its `version:` line: near the top, so tests that append lines
/// to the last section (`tls:`) still extend that one.
pub(super) fn with_section(text: &str, section: &str) -> String {
    const AFTER: &str = "version: 1\n\n";
    match text.find(AFTER) {
        Some(at) => {
            let at = at + AFTER.len();
            format!("{}{section}{}", &text[..at], &text[at..])
        }
        None => format!("{text}\n{section}"),
    }
}

/// A YAML scalar for any string (quoted when it needs to be).
fn yaml_str(s: &str) -> String {
    serde_yaml_ng::to_string(s)
        .map(|y| y.trim_end().to_string())
        .unwrap_or_else(|_| format!("{s:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(n: usize, user: &str, port: u16) -> LabHost {
        LabHost {
            name: format!("host{n}"),
            container: format!("c{n}"),
            address: format!("10.231.0.{}", n + 1),
            port,
            user: user.into(),
            flavor: crate::lab::Flavor::Docker,
        }
    }

    #[test]
    fn first_host_is_registry_and_overrides_only_when_needed() {
        let hosts = [
            host(1, "root", 22),
            host(2, "ops", 22),
            host(3, "root", 2222),
        ];
        let text = render("t", Path::new("/tmp/my lab"), "net", &hosts);
        let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).unwrap();
        assert_eq!(doc["hosts"][0]["roles"][0].as_str(), Some("registry"));
        assert_eq!(doc["hosts"][1]["user"].as_str(), Some("ops"));
        assert!(doc["hosts"][0].get("user").is_none());
        assert_eq!(doc["hosts"][2]["port"].as_u64(), Some(2222));
        assert_eq!(
            doc["defaults"]["key"].as_str(),
            Some("/tmp/my lab/id_ed25519")
        );
        assert_eq!(
            doc["registry"]["image"].as_str(),
            Some("regboot-lab/registry:2.8")
        );
    }

    #[test]
    fn ha_inventory_has_lbs_replicas_agents_and_no_storage_host() {
        let hosts: Vec<LabHost> = (1..=8).map(|n| host(n, "root", 22)).collect();
        let text = render_ha("t", Path::new("/tmp/lab"), "net", &hosts, "10.231.0.200");
        let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).unwrap();
        let roles: Vec<&str> = doc["hosts"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|h| h["roles"][0].as_str().unwrap())
            .collect();
        assert_eq!(
            roles,
            [
                "lb", "lb", "registry", "registry", "registry", "agent", "agent"
            ]
        );
        assert_eq!(doc["ha"]["vip"].as_str(), Some("10.231.0.200"));
        let s3 = &doc["registry"]["storage"]["s3"];
        assert_eq!(s3["endpoint"].as_str(), Some("http://10.231.0.9:8333"));
        assert_eq!(s3["create_bucket"].as_bool(), Some(true));
    }

    #[test]
    fn swarm_inventory_has_two_registry_hosts_on_the_agents_s3() {
        let hosts: Vec<LabHost> = (1..=3).map(|n| host(n, "root", 22)).collect();
        let text = render_swarm("t", Path::new("/tmp/lab"), "net", &hosts);
        let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).unwrap();
        let roles: Vec<&str> = doc["hosts"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|h| h["roles"][0].as_str().unwrap())
            .collect();
        assert_eq!(roles, ["registry", "registry", "agent"]);
        assert_eq!(doc["registry"]["deploy"].as_str(), Some("swarm"));
        let s3 = &doc["registry"]["storage"]["s3"];
        assert_eq!(s3["endpoint"].as_str(), Some("http://10.231.0.4:8333"));
    }

    /// The bundle's section goes near the top of every profile's inventory: the file ends as
    /// before, so a line a test appends (`  os_trust_store: false` after `tls:`) still
    /// belongs to the last section.
    #[test]
    fn the_bundle_section_sits_after_the_version() {
        let hosts: Vec<LabHost> = (1..=8).map(|n| host(n, "root", 22)).collect();
        let section = crate::lab::bundle::inventory_section(Path::new("/c/my bundle"));
        for text in [
            render("t", Path::new("/tmp/lab"), "net", &hosts[..3]),
            render_ha("t", Path::new("/tmp/lab"), "net", &hosts, "10.231.0.200"),
            render_swarm("t", Path::new("/tmp/lab"), "net", &hosts[..3]),
        ] {
            let with = with_section(&text, &section);
            assert_eq!(with.replace(&section, ""), text);
            assert!(with.contains(&format!("version: 1\n\n{section}defaults:")));
            let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&with).unwrap();
            assert_eq!(doc["packages"]["bundle"].as_str(), Some("/c/my bundle"));
        }
        let basic = with_section(&render("t", Path::new("/l"), "n", &hosts[..3]), &section);
        let appended = format!("{basic}  os_trust_store: false\n");
        let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&appended).unwrap();
        assert_eq!(doc["tls"]["os_trust_store"].as_bool(), Some(false));
    }
}
