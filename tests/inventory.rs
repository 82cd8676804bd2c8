//! The inventory contract (docs/inventory.md): good files load, every bad input is refused
//! with its own message naming file:line:column, and the CLI exits 1 without panicking.

use std::path::PathBuf;
use std::process::Command;

use regboot::inventory::{self, Role};

const GOOD: &str = "\
version: 1
defaults:
  user: root
hosts:
  - name: reg1
    address: 10.1.0.1
    roles: [registry]
  - name: node1
    address: node1.example.com
    roles: [agent]
registry:
  hostname: registry.example.com
  users:
    - name: ci
      password_env: CI_PASS
";

fn env(name: &str) -> Option<String> {
    match name {
        "CI_PASS" => Some("secret".into()),
        "PORT" => Some("2222".into()),
        _ => None,
    }
}

fn write(dir: &tempfile::TempDir, text: &str) -> PathBuf {
    let p = dir.path().join("inventory.yml");
    std::fs::write(&p, text).unwrap();
    p
}

/// Load `text` and return the whole error message (panics if it loads).
fn error_of(text: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let p = write(&dir, text);
    match inventory::load_with_env(&p, &env) {
        Ok(_) => panic!("inventory unexpectedly valid:\n{text}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn good_inventory_loads_with_defaults_and_sans() {
    let dir = tempfile::tempdir().unwrap();
    let inv = inventory::load_with_env(&write(&dir, GOOD), &env).unwrap();
    assert_eq!(inv.hosts.len(), 2);
    assert_eq!(inv.hosts[0].ssh.port, 22);
    assert!(!inv.hosts[0].ssh.sudo, "root needs no sudo");
    assert!(inv.hosts[0].has_role(Role::Registry));
    assert_eq!(inv.registry.port, 5000);
    assert_eq!(inv.registry.image, "registry:2");
    assert_eq!(
        inv.references(),
        ["registry.example.com:5000", "10.1.0.1:5000"]
    );
    assert_eq!(inv.cert_dns_sans(), ["registry.example.com", "localhost"]);
    let ips: Vec<String> = inv.cert_ip_sans().iter().map(|i| i.to_string()).collect();
    assert_eq!(ips, ["10.1.0.1", "127.0.0.1"]);
    assert_eq!(inv.state_dir(None), dir.path().join(".regboot"));
}

#[test]
fn variables_are_expanded_with_their_type() {
    let dir = tempfile::tempdir().unwrap();
    let text = GOOD.replace("  user: root\n", "  user: root\n  port: ${PORT}\n");
    let inv = inventory::load_with_env(&write(&dir, &text), &env).unwrap();
    assert_eq!(inv.hosts[1].ssh.port, 2222);
}

#[test]
fn unknown_field_is_located_with_the_nearest_name() {
    let e = error_of(&GOOD.replace("    address: 10.1.0.1", "    adress: 10.1.0.1"));
    assert!(
        e.contains("inventory.yml:6:5: hosts[0].adress: unknown field `adress`"),
        "{e}"
    );
    assert!(e.contains("did you mean `address`?"), "{e}");
}

#[test]
fn unknown_role_suggests_the_valid_ones() {
    let e = error_of(&GOOD.replace("[registry]", "[registy]"));
    assert!(
        e.contains(":7:13: hosts[0].roles[0]: unknown variant `registy`"),
        "{e}"
    );
    assert!(e.contains("did you mean `registry`?"), "{e}");
}

#[test]
fn duplicate_host_name() {
    let e = error_of(&GOOD.replace("name: node1", "name: reg1"));
    assert!(
        e.contains(":8:11: hosts[1].name: duplicate host name \"reg1\" (first at line 5)"),
        "{e}"
    );
}

#[test]
fn no_registry_host() {
    let e = error_of(&GOOD.replace("[registry]", "[agent]"));
    assert!(e.contains("hosts: no host has the role registry"), "{e}");
}

#[test]
fn plaintext_password_is_refused() {
    let e = error_of(&GOOD.replace("password_env: CI_PASS", "password: hunter2"));
    assert!(
        e.contains(
            ":15:17: registry.users[0].password: user ci: a plaintext password is not allowed"
        ),
        "{e}"
    );
    assert!(
        !e.contains("hunter2"),
        "the password must not be echoed: {e}"
    );
}

#[test]
fn the_smoke_test_user_name_is_reserved() {
    let e = error_of(&GOOD.replace("name: ci", "name: regboot-smoke"));
    assert!(
        e.contains(":14:13: registry.users[0].name: \"regboot-smoke\" is reserved"),
        "{e}"
    );
}

#[test]
fn the_smoke_test_is_skipped_only_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let inv = inventory::load_with_env(&write(&dir, GOOD), &env).unwrap();
    assert!(inv.smoke_test);
    let text = format!("{GOOD}smoke_test: false\n");
    let inv = inventory::load_with_env(&write(&dir, &text), &env).unwrap();
    assert!(!inv.smoke_test);
}

#[test]
fn smoke_pulls_at_once_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let inv = inventory::load_with_env(&write(&dir, GOOD), &env).unwrap();
    assert_eq!(inv.smoke_parallel_pulls, 8);
    let text = format!("{GOOD}smoke_parallel_pulls: 3\n");
    let inv = inventory::load_with_env(&write(&dir, &text), &env).unwrap();
    assert_eq!(inv.smoke_parallel_pulls, 3);
    let lines = GOOD.lines().count() + 1;
    for n in ["0", "257", "-1"] {
        let e = error_of(&format!("{GOOD}smoke_parallel_pulls: {n}\n"));
        let place = format!(":{lines}:23: smoke_parallel_pulls: {n} pulls at once is out of range");
        assert!(e.contains(&place), "{e}");
        assert!(e.contains("use 1 to 256"), "{e}");
    }
}

#[test]
fn port_out_of_range() {
    let e = error_of(&GOOD.replace("  user: root\n", "  user: root\n  port: 70000\n"));
    assert!(
        e.contains(":4:9: defaults.port: port 70000 is out of range"),
        "{e}"
    );
    assert!(e.contains("between 1 and 65535"), "{e}");
}

#[test]
fn bad_address() {
    let e = error_of(&GOOD.replace("node1.example.com", "node_1!"));
    assert!(
        e.contains(
            ":9:14: hosts[1].address: \"node_1!\" is neither an IP address nor a valid host name"
        ),
        "{e}"
    );
}

#[test]
fn unset_variable_is_named() {
    let e = error_of(&GOOD.replace("hostname: registry.example.com", "hostname: ${REG_NAME}"));
    assert!(
        e.contains(":12:13: registry.hostname: environment variable REG_NAME is not set"),
        "{e}"
    );
    let e = error_of(&GOOD.replace("CI_PASS", "NOT_SET_PASS"));
    assert!(
        e.contains("registry.users[0].password_env: environment variable NOT_SET_PASS is not set"),
        "{e}"
    );
}

#[test]
fn provided_tls_without_files() {
    let e = error_of(&format!("{GOOD}tls:\n  mode: provided\n"));
    assert!(
        e.contains("tls.mode: tls.mode provided needs tls.provided.ca_cert"),
        "{e}"
    );
    assert!(e.contains("tls.provided.key"), "{e}");
}

#[test]
fn missing_key_file() {
    let e = error_of(&GOOD.replace("  user: root\n", "  user: root\n  key: keys/nope\n"));
    assert!(e.contains(":4:8: defaults.key: SSH key"), "{e}");
    assert!(e.contains("keys/nope cannot be read"), "{e}");
}

#[test]
fn yaml_syntax_error_is_located() {
    let e = error_of("version: 1\nhosts:\n  - name: a\n   address: [\n");
    assert!(e.contains("YAML syntax error"), "{e}");
    assert!(e.contains("inventory.yml:4:"), "{e}");
}

#[test]
fn several_problems_are_reported_together() {
    let text = GOOD
        .replace("node1.example.com", "bad_name")
        .replace("registry.example.com", "reg_istry");
    let e = error_of(&text);
    assert!(e.contains("has 2 problems"), "{e}");
}

#[test]
fn shipped_examples_pass_the_check() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    inventory::load(&root.join("inventory/single.yml")).unwrap();
    // ha.yml names a key file in ~/.ssh and three secrets from the environment.
    let home = PathBuf::from(std::env::var("HOME").unwrap());
    let key = home.join(".ssh/id_ed25519");
    if !key.exists() {
        std::fs::create_dir_all(key.parent().unwrap()).unwrap();
        let status = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(&key)
            .status()
            .unwrap();
        assert!(status.success());
    }
    let ha_env = |n: &str| {
        ["S3_ACCESS_KEY", "S3_SECRET_KEY", "REGBOOT_CI_PASSWORD"]
            .contains(&n)
            .then(|| "x".to_string())
    };
    let inv = inventory::load_with_env(&root.join("inventory/ha.yml"), &ha_env).unwrap();
    assert_eq!(inv.hosts_with(Role::Registry).count(), 3);
    assert_eq!(inv.hosts_with(Role::Lb).count(), 2);
    assert!(inv.cert_ip_sans().contains(&"10.0.0.50".parse().unwrap()));
    assert_eq!(inv.references()[0], "registry.prod.example.com");
}

#[test]
fn cli_exits_1_with_located_errors_and_0_with_a_summary() {
    let dir = tempfile::tempdir().unwrap();
    let bin = env!("CARGO_BIN_EXE_regboot");
    let bad = write(&dir, &GOOD.replace("roles: [agent]", "roles: [agnet]"));
    let out = Command::new(bin)
        .args(["inventory", "check", "-i"])
        .arg(&bad)
        .env("CI_PASS", "x")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("inventory.yml:10:13: hosts[1].roles[0]: unknown variant `agnet`"),
        "{stderr}"
    );

    let good = write(&dir, GOOD);
    let out = Command::new(bin)
        .args(["inventory", "check", "-o", "json", "-i"])
        .arg(&good)
        .env("CI_PASS", "x")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["references"][0], "registry.example.com:5000");
}

#[test]
fn a_registry_host_cannot_also_be_an_lb() {
    let text =
        GOOD.replace("roles: [registry]", "roles: [registry, lb]") + "ha:\n  vip: 10.1.0.50\n";
    let err = error_of(&text);
    assert!(
        err.contains("host reg1 has the roles registry and lb") && err.contains("port 5000"),
        "{err}"
    );
}

#[test]
fn unknown_daemon_json_key_is_located_with_the_nearest_option() {
    let e = error_of(&format!(
        "{GOOD}docker:\n  daemon_json:\n    live-restore: true\n    insecure-registry: [a]\n    not-a-dockerd-option: true\n"
    ));
    assert!(
        e.contains(":19:5: docker.daemon_json.insecure-registry: `insecure-registry` is not a dockerd daemon.json option"),
        "{e}"
    );
    assert!(e.contains("did you mean `insecure-registries`?"), "{e}");
    assert!(
        e.contains(":20:5: docker.daemon_json.not-a-dockerd-option"),
        "{e}"
    );
    assert!(e.contains("has 2 problems"), "{e}");
}

#[test]
fn registry_image_must_be_an_image_reference() {
    let e = error_of(&GOOD.replace(
        "  hostname: registry.example.com\n",
        "  hostname: registry.example.com\n  image: --help\n",
    ));
    assert!(
        e.contains(":13:10: registry.image: \"--help\" is not an image reference"),
        "{e}"
    );
}

#[test]
fn tracing_names_an_exporter_distribution_knows() {
    let e = error_of(&GOOD.replace(
        "  hostname: registry.example.com\n",
        "  hostname: registry.example.com\n  tracing: { exporter: jaeger }\n",
    ));
    assert!(
        e.contains("registry.tracing.exporter: \"jaeger\" is not an exporter distribution knows"),
        "{e}"
    );
}

#[test]
fn two_hosts_on_one_address_and_port() {
    let text = GOOD.replace("node1.example.com", "10.1.0.1");
    let e = error_of(&text);
    assert!(
        e.contains(":9:14: hosts[1].address: host node1 has the same address and SSH port (10.1.0.1, 22) as hosts[0] (line 6)"),
        "{e}"
    );
    // Another SSH port is another machine (e.g. NAT port forwards).
    let dir = tempfile::tempdir().unwrap();
    let other_port = text.replace("    roles: [agent]", "    port: 2222\n    roles: [agent]");
    inventory::load_with_env(&write(&dir, &other_port), &env).unwrap();
}

#[test]
fn user_names_with_colons_or_control_characters() {
    let e = error_of(
        &GOOD
            .replace("  user: root", "  user: \"ro\\tot\"")
            .replace("    - name: ci", "    - name: \"c:i\""),
    );
    assert!(
        e.contains(":3:9: defaults.user: user name \"ro\\tot\" contains a control character"),
        "{e}"
    );
    assert!(
        e.contains("has 2 problems"),
        "reported once for both hosts: {e}"
    );
    assert!(
        e.contains(":14:13: registry.users[0].name: user name \"c:i\" contains ':'"),
        "{e}"
    );
}

/// What is not a small regular file is refused without reading it whole (or blocking on it).
#[test]
fn inventory_key_and_password_files_must_be_small_regular_files() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    let status = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(status.success());
    let big = dir.path().join("big");
    std::fs::write(&big, vec![b'#'; (1 << 20) + 1]).unwrap();
    for (path, message) in [
        (
            PathBuf::from("/dev/zero"),
            "/dev/zero is a device, not a regular file",
        ),
        (fifo.clone(), "fifo is a FIFO, not a regular file"),
        (
            dir.path().to_path_buf(),
            "is a directory, not a regular file",
        ),
        (big.clone(), "big is larger than 1048576 bytes"),
    ] {
        let e = inventory::load_with_env(&path, &env)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(&format!("the inventory {}", path.display())),
            "{e}"
        );
        assert!(e.contains(message), "{e}");
    }

    let small_big = dir.path().join("small-big");
    std::fs::write(&small_big, vec![b'k'; (64 << 10) + 1]).unwrap();
    let text = GOOD
        .replace("  user: root\n", "  user: root\n  key: /dev/zero\n")
        .replace(
            "      password_env: CI_PASS",
            &format!("      password_file: {}", small_big.display()),
        );
    let e = error_of(&text);
    assert!(
        e.contains(
            ":4:8: defaults.key: SSH key (`key:`) /dev/zero is a device, not a regular file"
        ),
        "{e}"
    );
    assert!(
        e.contains(":16:22: registry.users[0].password_file: password file (`password_file:`)"),
        "{e}"
    );
    assert!(e.contains("is larger than 65536 bytes"), "{e}");
}

#[test]
fn deep_nesting_is_refused_before_positions_are_indexed() {
    let e = error_of(&format!("{GOOD}extra: {}\n", "[".repeat(100_000)));
    assert!(
        e.contains("inventory.yml:16:263: the YAML nests more than 64 levels deep"),
        "{e}"
    );
}

#[test]
fn tls_name_constraints_and_trust_store_fields() {
    let good = format!(
        "{GOOD}  aliases: [hub.corp.example]\ntls:\n  permitted_domains: [example.com, corp.example.]\n  \
         permitted_ip_ranges: [10.1.0.0/16, 192.0.2.7]\n  os_trust_store: false\n"
    );
    let dir = tempfile::tempdir().unwrap();
    let inv = inventory::load_with_env(&write(&dir, &good), &env).unwrap();
    assert_eq!(inv.tls.permitted_domains, ["example.com", "corp.example"]);
    let ranges: Vec<String> = inv
        .tls
        .permitted_ip_ranges
        .iter()
        .map(|r| r.to_string())
        .collect();
    assert_eq!(ranges, ["10.1.0.0/16", "192.0.2.7/32"]);
    assert!(!inv.tls.os_trust_store);
    let defaults = inventory::load_with_env(&write(&dir, GOOD), &env).unwrap();
    assert!(defaults.tls.os_trust_store);
    assert!(defaults.tls.permitted_domains.is_empty());

    let err = error_of(&format!(
        "{GOOD}tls:\n  permitted_domains: [\"*.example.com\"]\n"
    ));
    assert!(
        err.contains("is not a domain") && err.contains(":"),
        "{err}"
    );
    let err = error_of(&format!(
        "{GOOD}tls:\n  permitted_ip_ranges: [10.0.0.0/40]\n"
    ));
    assert!(err.contains("longer than 32 bits"), "{err}");
    // The certificate's names must fit what the CA would be limited to.
    let err = error_of(&format!(
        "{GOOD}tls:\n  permitted_domains: [corp.example]\n"
    ));
    assert!(
        err.contains("registry.example.com") && err.contains("outside tls.permitted_domains"),
        "{err}"
    );
    let err = error_of(&format!(
        "{GOOD}tls:\n  permitted_ip_ranges: [10.9.0.0/16]\n"
    ));
    assert!(
        err.contains("10.1.0.1") && err.contains("outside tls.permitted_ip_ranges"),
        "{err}"
    );
}

#[test]
fn a_missing_or_broken_openssh_config_is_located() {
    let e = error_of(&format!("{GOOD}ssh_config: /nonexistent/ssh_config\n"));
    assert!(
        e.contains(": ssh_config: OpenSSH config /nonexistent/ssh_config: cannot read it"),
        "{e}"
    );
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("config");
    std::fs::write(&broken, "Host x\n  Port notaport\n").unwrap();
    let e = error_of(&format!("{GOOD}ssh_config: {}\n", broken.display()));
    assert!(e.contains(": ssh_config: OpenSSH config "), "{e}");
    assert!(e.contains("ssh_config: false"), "{e}");
}

#[test]
fn the_openssh_config_fills_what_the_inventory_leaves_out() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("ssh_config");
    std::fs::write(
        &config,
        "Host node1.example.com\n  HostName 10.1.0.2\n  User ops\n  Port 2200\n\
         \x20 ProxyJump jump@10.1.0.9:2222\n",
    )
    .unwrap();
    let text = format!("{GOOD}ssh_config: {}\n", config.display());
    let inv = inventory::load_with_env(&write(&dir, &text), &env).unwrap();
    let node1 = inv.hosts.iter().find(|h| h.name == "node1").unwrap();
    assert_eq!(
        (node1.address.as_str(), node1.ssh.address.as_str()),
        ("10.1.0.2", "10.1.0.2")
    );
    assert_eq!(node1.private_address, "10.1.0.2");
    assert_eq!(
        node1.ssh.user, "root",
        "defaults: user wins over the config"
    );
    assert_eq!(node1.ssh.port, 2200);
    let bastion = node1.ssh.bastion.as_ref().unwrap();
    assert_eq!(
        (bastion.user.as_str(), bastion.host.as_str(), bastion.port),
        ("jump", "10.1.0.9", 2222)
    );
    let reg1 = inv.hosts.iter().find(|h| h.name == "reg1").unwrap();
    assert_eq!((reg1.ssh.port, reg1.ssh.bastion.is_none()), (22, true));
}

#[test]
fn drain_needs_a_registry_host_behind_a_load_balancer() {
    let err = error_of(&GOOD.replace("roles: [agent]", "roles: [agent]\n    drain: true"));
    assert!(
        err.contains("host node1 is not a registry host")
            && err.contains("inventory.yml:11:12: hosts[1].drain")
            && !err.contains("no host has the role lb"),
        "{err}"
    );
    let err = error_of(&GOOD.replace("roles: [registry]", "roles: [registry]\n    drain: true"));
    assert!(err.contains("no host has the role lb"), "{err}");
    let ha = GOOD.replace(
        "    roles: [agent]",
        "    roles: [agent]\n  - name: lb1\n    address: 10.1.0.9\n    roles: [lb]",
    ) + "ha:\n  vip: 10.1.0.50\n";
    let err = error_of(&ha.replace("roles: [registry]", "roles: [registry]\n    drain: true"));
    assert!(err.contains("every registry host is drained"), "{err}");
    let err = error_of(&ha.replace("  user: root", "  user: root\n  drain: true"));
    assert!(err.contains("`drain` belongs to each host"), "{err}");
}

/// The field names the parser accepts at `path` (a flow-YAML nesting), read from the parser's
/// own refusal of an unknown field there; None when the value at `path` is not a struct.
fn fields_at(dir: &tempfile::TempDir, path: &[String]) -> Option<Vec<String>> {
    const PROBE: &str = "zz_probe_field";
    let mut yaml = format!("{{{PROBE}: 1}}");
    for seg in path.iter().rev() {
        yaml = match seg.strip_suffix("[]") {
            Some(list) => format!("{{{list}: [{yaml}]}}"),
            None => format!("{{{seg}: {yaml}}}"),
        };
    }
    let err = inventory::load_with_env(&write(dir, &yaml), &env).expect_err(&yaml);
    let d = &err.diagnostics[0];
    if !d.message.starts_with(&format!("unknown field `{PROBE}`")) {
        return None;
    }
    let valid = d.hint.as_deref()?.split("valid fields here: ").nth(1)?;
    Some(valid.split(", ").map(str::to_string).collect())
}

/// Every field the parser accepts, as `registry.storage.s3.create_bucket` (`[]` marks a
/// list of entries), found by walking the parser itself: a nested section is a field whose
/// value refuses an unknown field in turn, as a mapping or as a list of mappings.
fn parser_fields() -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let mut found = Vec::new();
    let mut todo = vec![Vec::<String>::new()];
    while let Some(path) = todo.pop() {
        let fields = fields_at(&dir, &path).expect("the top level is a struct");
        for f in fields {
            let mut child = path.clone();
            child.push(f.clone());
            found.push(child.join("."));
            if fields_at(&dir, &child).is_some() {
                todo.push(child);
            } else {
                let last = child.len() - 1;
                child[last] = format!("{f}[]");
                if fields_at(&dir, &child).is_some() {
                    todo.push(child);
                }
            }
        }
    }
    found.sort();
    found
}

#[test]
fn docs_inventory_md_documents_every_field_the_parser_accepts() {
    let fields = parser_fields();
    // The walk must reach the nested sections, or it would prove nothing.
    for deep in [
        "registry.storage.s3.create_bucket",
        "hosts[].key_passphrase_env",
        "tls.provided.ca_cert",
        "registry.users[].password_env",
    ] {
        assert!(fields.iter().any(|f| f == deep), "{deep} not in {fields:?}");
    }
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/inventory.md")).unwrap();
    let documented = |name: &str| {
        is_yaml_key(&doc, name)
            || doc.contains(&format!("`{name}`"))
            || doc.contains(&format!("`{name}:"))
    };
    let missing: Vec<&String> = fields
        .iter()
        .filter(|f| !documented(f.rsplit('.').next().unwrap()))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/inventory.md does not document these inventory fields: {missing:?}"
    );
}

/// `name:` as a YAML key in the document (block or flow style): not part of a longer name.
fn is_yaml_key(doc: &str, name: &str) -> bool {
    let pat = format!("{name}:");
    doc.match_indices(&pat).any(|(i, _)| {
        doc[..i]
            .chars()
            .next_back()
            .is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '_'))
    })
}

/// The example in docs/inventory.md is read by the parser: every key it shows exists, with a
/// value of the right type (what fails is only what this machine lacks: files, variables).
#[test]
fn docs_inventory_md_example_parses() {
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/inventory.md")).unwrap();
    let example = doc
        .split("```yaml\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("docs/inventory.md holds a ```yaml example");
    let dir = tempfile::tempdir().unwrap();
    let Err(err) = inventory::load_with_env(&write(&dir, example), &env) else {
        return;
    };
    for d in &err.diagnostics {
        for schema in [
            "unknown field",
            "unknown variant",
            "invalid type",
            "missing field",
        ] {
            assert!(!d.message.starts_with(schema), "{}: {}", d.field, d.message);
        }
    }
}
