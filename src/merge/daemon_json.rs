//! Merging regboot's keys into `/etc/docker/daemon.json` without clobbering the user's, and
//! deciding whether dockerd then needs nothing, a reload (SIGHUP) or a restart.

use serde_json::{Map, Value};

/// Keys dockerd re-reads on SIGHUP, from the dockerd reference, "Configuration reload behavior"
/// (https://docs.docker.com/reference/cli/dockerd/#configuration-reload-behavior). Any other
/// changed key needs a restart, which stops the host's containers unless live-restore is on.
pub const RELOADABLE_KEYS: &[&str] = &[
    "debug",
    "labels",
    "live-restore",
    "max-concurrent-downloads",
    "max-concurrent-uploads",
    "max-download-attempts",
    "default-runtime",
    "runtimes",
    "authorization-plugins",
    "allow-nondistributable-artifacts",
    "insecure-registries",
    "registry-mirrors",
    "shutdown-timeout",
    "features",
];

/// Every top-level key dockerd accepts in daemon.json on Linux: the json tags of moby's
/// daemon/config (config.go, config_linux.go, registry config) at master, with the flag
/// spelling `containerd-plugins-namespace` that dockerd's unknown-key check compares against,
/// plus the keys dockerd 20.10 to 25 accepted and later versions dropped (api-cors-header,
/// cluster-store, graph, ...): a host may run an older dockerd (Debian 12 ships 20.10). Any
/// key outside this list makes every dockerd refuse to start.
pub const KNOWN_KEYS: &[&str] = &[
    "allow-direct-routing",
    "allow-nondistributable-artifacts",
    "api-cors-header",
    "authorization-plugins",
    "bip",
    "bip6",
    "bridge",
    "bridge-accept-fwmark",
    "builder",
    "cdi-spec-dirs",
    "cgroup-parent",
    "cluster-advertise",
    "cluster-store",
    "cluster-store-opts",
    "containerd",
    "containerd-namespace",
    "containerd-plugins-namespace",
    "cpu-rt-period",
    "cpu-rt-runtime",
    "cri-containerd",
    "data-root",
    "debug",
    "default-address-pools",
    "default-cgroupns-mode",
    "default-gateway",
    "default-gateway-v6",
    "default-init",
    "default-ipc-mode",
    "default-network-opts",
    "default-runtime",
    "default-shm-size",
    "default-stop-timeout",
    "default-ulimits",
    "deprecated-key-path",
    "dns",
    "dns-opts",
    "dns-search",
    "exec-opts",
    "exec-root",
    "experimental",
    "features",
    "firewall-backend",
    "fixed-cidr",
    "fixed-cidr-v6",
    "graph",
    "group",
    "host-gateway-ip",
    "host-gateway-ips",
    "hosts",
    "http-proxy",
    "https-proxy",
    "icc",
    "init",
    "init-path",
    "insecure-registries",
    "ip",
    "ip-forward",
    "ip-forward-no-drop",
    "ip-masq",
    "ip6tables",
    "iptables",
    "ipv6",
    "labels",
    "live-restore",
    "log-driver",
    "log-format",
    "log-level",
    "log-opts",
    "max-concurrent-downloads",
    "max-concurrent-uploads",
    "max-download-attempts",
    "metrics-addr",
    "min-api-version",
    "mtu",
    "network-control-plane-mtu",
    "network-diagnostic-port",
    "no-new-privileges",
    "no-proxy",
    "node-generic-resources",
    "nri-opts",
    "oom-score-adjust",
    "pidfile",
    "proxies",
    "raw-logs",
    "registry-mirrors",
    "resolv-conf",
    "rootless",
    "runtimes",
    "seccomp-profile",
    "selinux-enabled",
    "shutdown-timeout",
    "storage-driver",
    "storage-opts",
    "swarm-default-advertise-addr",
    "swarm-raft-election-tick",
    "swarm-raft-heartbeat-tick",
    "tls",
    "tlscacert",
    "tlscert",
    "tlskey",
    "tlsverify",
    "userland-proxy",
    "userland-proxy-path",
    "userns-remap",
];

/// List keys whose wanted entries are added to the user's, never replacing them.
pub const UNION_KEYS: &[&str] = &[
    "insecure-registries",
    "registry-mirrors",
    "allow-nondistributable-artifacts",
];

/// What dockerd needs after the new file is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Nothing,
    /// Only reloadable keys changed: `systemctl reload docker` / SIGHUP.
    Reload,
    /// These changed keys are not reloadable: dockerd must restart.
    Restart {
        keys: Vec<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MergeOutcome {
    /// The file's new content; the existing text verbatim when nothing changed.
    pub text: String,
    pub changed: bool,
    pub action: Action,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DaemonJsonError {
    #[error(
        "daemon.json is not valid JSON at line {line}, column {column}: {message}; dockerd \
         would not start with it either. Fix the file by hand, then re-run (regboot does not \
         overwrite a file it cannot parse)"
    )]
    Invalid {
        line: usize,
        column: usize,
        message: String,
    },
    #[error("daemon.json must hold a JSON object at the top level; fix the file by hand")]
    NotAnObject,
    #[error("daemon.json: \"{key}\" must be a list to add {wanted}; fix the file by hand")]
    NotAList { key: String, wanted: String },
}

/// Merge `wanted` into the existing file (`None`: no file yet). Keys already there keep their
/// place and unrelated keys are untouched; objects merge key by key, the registry lists
/// ([`UNION_KEYS`]) gain the missing entries, other values are replaced.
pub fn merge(
    existing: Option<&str>,
    wanted: &Map<String, Value>,
) -> Result<MergeOutcome, DaemonJsonError> {
    let current = match existing {
        Some(text) if !text.trim().is_empty() => parse(text)?,
        _ => Map::new(),
    };
    let mut merged = current.clone();
    for (key, value) in wanted {
        let slot = merged.entry(key.clone()).or_insert(Value::Null);
        if UNION_KEYS.contains(&key.as_str()) {
            union_into(key, slot, value)?;
        } else {
            merge_value(slot, value);
        }
    }
    let changed_keys: Vec<&String> = merged
        .iter()
        .filter(|(k, v)| current.get(*k) != Some(*v))
        .map(|(k, _)| k)
        .collect();
    if changed_keys.is_empty() {
        return Ok(MergeOutcome {
            text: existing.map_or_else(|| render(&merged), str::to_owned),
            changed: false,
            action: Action::Nothing,
        });
    }
    let restart: Vec<String> = changed_keys
        .iter()
        .filter(|k| !RELOADABLE_KEYS.contains(&k.as_str()))
        .map(|k| k.to_string())
        .collect();
    Ok(MergeOutcome {
        text: render(&merged),
        changed: true,
        action: if restart.is_empty() {
            Action::Reload
        } else {
            Action::Restart { keys: restart }
        },
    })
}

fn parse(text: &str) -> Result<Map<String, Value>, DaemonJsonError> {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(DaemonJsonError::NotAnObject),
        Err(e) => Err(DaemonJsonError::Invalid {
            line: e.line(),
            column: e.column(),
            message: e.to_string(),
        }),
    }
}

fn render(map: &Map<String, Value>) -> String {
    // Serializing a map of JSON values cannot fail.
    let mut text = serde_json::to_string_pretty(map).unwrap_or_default();
    text.push('\n');
    text
}

/// Objects merge recursively (user keys survive); anything else is replaced.
fn merge_value(slot: &mut Value, wanted: &Value) {
    match (slot, wanted) {
        (Value::Object(have), Value::Object(want)) => {
            for (k, v) in want {
                merge_value(have.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
        (slot, wanted) => *slot = wanted.clone(),
    }
}

fn union_into(key: &str, slot: &mut Value, wanted: &Value) -> Result<(), DaemonJsonError> {
    let add: Vec<&Value> = match wanted {
        Value::Array(items) => items.iter().collect(),
        other => vec![other],
    };
    if slot.is_null() {
        *slot = Value::Array(Vec::new());
    }
    let Value::Array(have) = slot else {
        return Err(DaemonJsonError::NotAList {
            key: key.to_owned(),
            wanted: Value::Array(add.into_iter().cloned().collect()).to_string(),
        });
    };
    for item in add {
        if !have.contains(item) {
            have.push(item.clone());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn known_keys_are_sorted_and_cover_the_reloadable_ones() {
        assert!(KNOWN_KEYS.windows(2).all(|w| w[0] < w[1]));
        for k in RELOADABLE_KEYS.iter().chain(UNION_KEYS) {
            assert!(KNOWN_KEYS.contains(k), "{k}");
        }
    }

    fn wanted(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => unreachable!("test input is an object"),
        }
    }

    #[test]
    fn creates_the_file_when_missing() {
        let out = merge(
            None,
            &wanted(json!({"insecure-registries": ["10.0.0.5:5000"]})),
        )
        .unwrap();
        assert!(out.changed);
        assert_eq!(out.action, Action::Reload);
        assert_eq!(
            out.text,
            "{\n  \"insecure-registries\": [\n    \"10.0.0.5:5000\"\n  ]\n}\n"
        );
    }

    #[test]
    fn nothing_wanted_and_no_file_changes_nothing() {
        let out = merge(None, &Map::new()).unwrap();
        assert!(!out.changed);
        assert_eq!(out.action, Action::Nothing);
    }

    #[test]
    fn union_keeps_user_entries_and_key_order() {
        let existing = r#"{
    "storage-driver": "overlay2",
    "insecure-registries": ["user.local:5000"],
    "log-opts": {"max-size": "10m"},
    "zzz-last": 1
}"#;
        let out = merge(
            Some(existing),
            &wanted(json!({
                "insecure-registries": ["user.local:5000", "registry01.dev.com:5000"],
                "log-opts": {"max-file": "3"}
            })),
        )
        .unwrap();
        assert!(out.changed);
        assert!(out.text.ends_with("}\n"));
        let v: Value = serde_json::from_str(&out.text).unwrap();
        assert_eq!(
            v["insecure-registries"],
            json!(["user.local:5000", "registry01.dev.com:5000"])
        );
        assert_eq!(v["log-opts"], json!({"max-size": "10m", "max-file": "3"}));
        let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            [
                "storage-driver",
                "insecure-registries",
                "log-opts",
                "zzz-last"
            ]
        );
        // insecure-registries reloads, log-opts does not.
        assert_eq!(
            out.action,
            Action::Restart {
                keys: vec!["log-opts".into()]
            }
        );
    }

    #[test]
    fn a_second_merge_changes_nothing_and_keeps_user_formatting() {
        let want = wanted(json!({"registry-mirrors": ["https://m.local"], "debug": true}));
        let first = merge(Some("{\"debug\": false}"), &want).unwrap();
        assert_eq!(first.action, Action::Reload);
        let second = merge(Some(&first.text), &want).unwrap();
        assert!(!second.changed);
        assert_eq!(second.action, Action::Nothing);
        assert_eq!(second.text, first.text);
        // Semantically equal but formatted by the user: left alone.
        let user = "{ \"debug\":true,\"registry-mirrors\":[\"https://m.local\"] }";
        let third = merge(Some(user), &want).unwrap();
        assert!(!third.changed);
        assert_eq!(third.text, user);
    }

    #[test]
    fn invalid_json_reports_line_and_column() {
        let err = merge(Some("{\n  \"debug\": true,\n  \"oops\"\n}\n"), &Map::new()).unwrap_err();
        match &err {
            DaemonJsonError::Invalid { line, .. } => assert_eq!(*line, 4),
            other => panic!("unexpected {other:?}"),
        }
        assert!(err.to_string().contains("line 4"), "{err}");
        assert_eq!(
            merge(Some("[1]"), &Map::new()),
            Err(DaemonJsonError::NotAnObject)
        );
    }

    #[test]
    fn a_non_list_registry_key_is_refused() {
        let err = merge(
            Some(r#"{"insecure-registries": "oops"}"#),
            &wanted(json!({"insecure-registries": ["r:5000"]})),
        )
        .unwrap_err();
        assert!(matches!(err, DaemonJsonError::NotAList { .. }), "{err}");
    }

    #[test]
    fn empty_file_counts_as_empty_object() {
        let out = merge(Some("  \n"), &wanted(json!({"live-restore": true}))).unwrap();
        assert_eq!(out.action, Action::Reload);
        assert_eq!(out.text, "{\n  \"live-restore\": true\n}\n");
    }

    #[test]
    fn non_reloadable_keys_need_a_restart() {
        let out = merge(
            Some(r#"{"debug": true}"#),
            &wanted(json!({"data-root": "/srv/docker", "debug": false, "bip": "10.9.0.1/24"})),
        )
        .unwrap();
        assert_eq!(
            out.action,
            Action::Restart {
                keys: vec!["data-root".into(), "bip".into()]
            }
        );
    }
}
