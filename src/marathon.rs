//! `regboot render marathon`: the Marathon app (DC/OS, seed 004) that runs the registry on the
//! inventory's registry hosts, for `dcos marathon app add`. DC/OS is at end of life, so regboot
//! renders and does not deploy. The app carries no secret: the registry reads its config.yml
//! (http secret, storage keys), certificate, key and htpasswd from the files `regboot apply`
//! placed on each registry host under /etc/regboot/registry, mounted read-only, so Marathon's
//! API and `docker inspect` show paths, never values. The agents' trust comes from apply too.

use serde_json::{Value, json};

use crate::inventory::{Inventory, Role, TlsMode};
use crate::modules::registry_files;
use crate::render::container;

/// The app's id in Marathon (and the name of its named VIP when there is no `ha.vip`).
const APP_ID: &str = "/regboot-registry";

/// A Marathon `LIKE` constraint (a Java regex, matched whole) for exactly these hostnames.
fn hostname_regex<'a>(names: impl Iterator<Item = &'a str>) -> String {
    let mut escaped: Vec<String> = names
        .map(|n| n.replace('.', "\\.").replace(':', "\\:"))
        .collect();
    escaped.dedup();
    escaped.join("|")
}

/// The Marathon app JSON for `inv`.
pub fn app(inv: &Inventory) -> Value {
    let reg = &inv.registry;
    let replicas: Vec<_> = inv.hosts_with(Role::Registry).collect();
    let tls = inv.tls.mode != TlsMode::Insecure;
    // The layer-4 VIP clients use: the inventory's VIP on the registry port (its certificate
    // has the VIP as a SAN), else a named VIP: regboot-registry.marathon.l4lb.thisdcos.directory.
    let vip = match &inv.ha {
        Some(ha) => format!("{}:{}", ha.vip, reg.port),
        None => format!("{APP_ID}:{}", reg.port),
    };
    let base = registry_files::BASE;
    let volume = |container_path: &str, host_path: String, mode: &str| json!({ "containerPath": container_path, "hostPath": host_path, "mode": mode });
    let mut volumes = vec![
        volume(container::CONFIG_PATH, format!("{base}/config.yml"), "RO"),
        // distribution 3.x reads its config here.
        volume(
            "/etc/distribution/config.yml",
            format!("{base}/config.yml"),
            "RO",
        ),
        volume("/auth", format!("{base}/auth"), "RO"),
        volume(container::DATA_PATH, reg.data_dir.clone(), "RW"),
    ];
    let mut env = serde_json::Map::new();
    if tls {
        volumes.push(volume("/certs", format!("{base}/certs"), "RO"));
        env.insert(
            "REGISTRY_HTTP_TLS_CERTIFICATE".into(),
            container::CERT_PATH.into(),
        );
        env.insert("REGISTRY_HTTP_TLS_KEY".into(), container::KEY_PATH.into());
    }
    json!({
        "id": APP_ID,
        "instances": replicas.len(),
        "cpus": 0.5,
        "mem": 256,
        "disk": 0,
        // One replica per registry host: the hosts apply prepared (files, trust, data_dir).
        "constraints": [
            ["hostname", "UNIQUE"],
            ["hostname", "LIKE", hostname_regex(replicas.iter().map(|h| h.private_address.as_str()))],
        ],
        "networks": [{ "mode": "container/bridge" }],
        "container": {
            "type": "DOCKER",
            "docker": { "image": reg.image, "forcePullImage": false, "privileged": false },
            "portMappings": [{
                "name": "registry",
                "containerPort": container::PORT,
                "hostPort": reg.port,
                "protocol": "tcp",
                "labels": { "VIP_0": vip },
            }],
            "volumes": volumes,
        },
        "env": env,
        // The registry answers 200 on / while its storage driver is healthy.
        "healthChecks": [{
            "protocol": if tls { "MESOS_HTTPS" } else { "MESOS_HTTP" },
            "path": "/",
            "portIndex": 0,
            "gracePeriodSeconds": 60,
            "intervalSeconds": 30,
            "timeoutSeconds": 20,
            "maxConsecutiveFailures": 3,
        }],
        // The host port is fixed, so a replica is replaced in place: at most half go at once.
        "upgradeStrategy": { "minimumHealthCapacity": 0.5, "maximumOverCapacity": 0 },
        // marathon-lb (seed 004) exposes apps of this group outside the cluster.
        "labels": { "HAPROXY_GROUP": "external" },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostnames_are_matched_literally() {
        assert_eq!(
            hostname_regex(["10.0.0.51", "reg-2.example.com"].into_iter()),
            "10\\.0\\.0\\.51|reg-2\\.example\\.com"
        );
    }
}
