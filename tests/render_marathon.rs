//! `regboot render marathon`: the Marathon app for seed 004's DC/OS deployment. Its fields
//! are what Marathon needs (checked one by one), and no secret of the inventory (a user's
//! password, the S3 keys) nor the http secret appears in it: the registry reads them from the
//! files apply placed on the registry hosts.

use std::process::Command;

use serde_json::Value;

const INVENTORY: &str = "\
version: 1
defaults:
  user: root
hosts:
  - { name: reg1, address: 10.0.0.51, roles: [registry] }
  - { name: reg2, address: reg2.example.com, roles: [registry] }
  - { name: lb1, address: 10.0.0.41, roles: [lb] }
  - { name: node1, address: 10.0.0.61, roles: [agent] }
registry:
  hostname: registry.example.com
  port: 5000
  image: registry:2.8.3
  storage:
    driver: s3
    s3:
      bucket: registry
      region: us-east-1
      endpoint: http://10.0.0.9:8333
      access_key_env: S3_ACCESS_KEY
      secret_key_env: S3_SECRET_KEY
  users:
    - name: ci
      password_env: CI_PASSWORD
ha:
  vip: 10.0.0.50
";

const SECRETS: [(&str, &str); 3] = [
    ("S3_ACCESS_KEY", "AKIAMARATHONTESTKEY"),
    ("S3_SECRET_KEY", "s3-secret-value-never-rendered"),
    ("CI_PASSWORD", "ci-password-never-rendered"),
];

fn render(dir: &tempfile::TempDir, inventory: &str) -> (Value, String) {
    let path = dir.path().join("inventory.yml");
    std::fs::write(&path, inventory).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_regboot"))
        .args(["render", "marathon", "-i"])
        .arg(&path)
        .envs(SECRETS)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (serde_json::from_str(&text).expect("JSON"), text)
}

#[test]
fn marathon_app_has_the_fields_and_no_secret() {
    let dir = tempfile::tempdir().unwrap();
    let (app, text) = render(&dir, INVENTORY);
    assert_eq!(app["id"], "/regboot-registry");
    assert_eq!(app["instances"], 2);
    assert_eq!(
        app["constraints"][0],
        serde_json::json!(["hostname", "UNIQUE"])
    );
    assert_eq!(
        app["constraints"][1],
        serde_json::json!(["hostname", "LIKE", "10\\.0\\.0\\.51|reg2\\.example\\.com"])
    );
    let c = &app["container"];
    assert_eq!(c["type"], "DOCKER");
    assert_eq!(c["docker"]["image"], "registry:2.8.3");
    let port = &c["portMappings"][0];
    assert_eq!(
        (port["containerPort"].as_u64(), port["hostPort"].as_u64()),
        (Some(5000), Some(5000))
    );
    assert_eq!(port["labels"]["VIP_0"], "10.0.0.50:5000");
    let volumes: Vec<(&str, &str, &str)> = c["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["containerPath"].as_str().unwrap(),
                v["hostPath"].as_str().unwrap(),
                v["mode"].as_str().unwrap(),
            )
        })
        .collect();
    for want in [
        (
            "/etc/docker/registry/config.yml",
            "/etc/regboot/registry/config.yml",
            "RO",
        ),
        ("/certs", "/etc/regboot/registry/certs", "RO"),
        ("/auth", "/etc/regboot/registry/auth", "RO"),
        ("/var/lib/registry", "/var/lib/regboot/registry", "RW"),
    ] {
        assert!(volumes.contains(&want), "{want:?} not in {volumes:?}");
    }
    assert_eq!(
        app["env"]["REGISTRY_HTTP_TLS_CERTIFICATE"],
        "/certs/registry-chain.crt"
    );
    assert_eq!(app["env"]["REGISTRY_HTTP_TLS_KEY"], "/certs/registry.key");
    let health = &app["healthChecks"][0];
    assert_eq!(
        (health["protocol"].as_str(), health["path"].as_str()),
        (Some("MESOS_HTTPS"), Some("/"))
    );

    // No secret, by value or by the environment variable that would carry one.
    for (_, value) in SECRETS {
        assert!(!text.contains(value), "{value} leaked:\n{text}");
    }
    for key in ["REGISTRY_HTTP_SECRET", "SECRET", "PASSWORD", "ACCESSKEY"] {
        assert!(!text.to_uppercase().contains(key), "{key} in\n{text}");
    }
    assert!(
        !dir.path().join(".regboot").exists(),
        "render creates no state directory"
    );
}

#[test]
fn marathon_app_without_a_vip_uses_a_named_vip_and_plain_http_when_insecure() {
    let dir = tempfile::tempdir().unwrap();
    let single = INVENTORY
        .replace(
            "  - { name: reg2, address: reg2.example.com, roles: [registry] }\n",
            "",
        )
        .replace("  - { name: lb1, address: 10.0.0.41, roles: [lb] }\n", "")
        .replace("ha:\n  vip: 10.0.0.50\n", "tls:\n  mode: insecure\n");
    let (app, _) = render(&dir, &single);
    assert_eq!(app["instances"], 1);
    assert_eq!(
        app["container"]["portMappings"][0]["labels"]["VIP_0"],
        "/regboot-registry:5000"
    );
    assert_eq!(app["healthChecks"][0]["protocol"], "MESOS_HTTP");
    assert!(app["env"].as_object().unwrap().is_empty());
}
