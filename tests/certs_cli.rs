//! `regboot certs init | check | show` as a user runs them: the files and their modes, reuse
//! without change, reissue on a SAN change, the exit codes of `certs check`, provided mode
//! naming the missing SANs, the run lock, and no key material in any output. `certs check`
//! runs with --local: these hosts do not exist (tests/lab/rotate.rs checks deployed ones).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use regboot::inventory;
use regboot::pki::state::{CA_CERT, CA_KEY, REGISTRY_CERT, REGISTRY_CHAIN, REGISTRY_KEY};
use regboot::pki::{Ca, CaSpec, StateDir, leaf};
use regboot::tls_setup as setup;
use time::Duration;

#[path = "support/tls.rs"]
#[allow(dead_code)]
mod tls;

fn inventory_text(aliases: &str, tls: &str) -> String {
    format!(
        "\
version: 1
hosts:
  - name: reg1
    address: 10.1.0.1
    private_address: 10.2.0.1
    roles: [registry]
  - name: node1
    address: 10.1.0.2
    roles: [agent]
registry:
  hostname: registry.example.com
  aliases: [{aliases}]
  extra_ips: [192.0.2.7]
  users:
    - name: ci
      password_hash: \"$2b$10$S8G05dafihOHo1.sAr.Z/.RoNEhpLNBgVN2Vku5hk.d21hD6I7xIO\"
tls:
{tls}"
    )
}

const SELF_SIGNED: &str = "  mode: self-signed\n";

struct Lab {
    dir: tempfile::TempDir,
}

impl Lab {
    fn new(text: &str) -> Self {
        let lab = Self {
            dir: tempfile::tempdir().unwrap(),
        };
        lab.write_inventory(text);
        lab
    }

    fn write_inventory(&self, text: &str) {
        std::fs::write(self.inventory(), text).unwrap();
    }

    fn inventory(&self) -> PathBuf {
        self.dir.path().join("inventory.yml")
    }

    fn state_path(&self) -> PathBuf {
        self.dir.path().join(".regboot")
    }

    fn state(&self) -> StateDir {
        StateDir::at(&self.state_path())
    }

    fn run(&self, args: &[&str]) -> Output {
        let out = Command::new(env!("CARGO_BIN_EXE_regboot"))
            .args(args)
            .arg("-i")
            .arg(self.inventory())
            .env_remove("REGBOOT_STATE_DIR")
            .output()
            .unwrap();
        for key in [CA_KEY, REGISTRY_KEY] {
            if let Ok(pem) = std::fs::read_to_string(self.state_path().join(key)) {
                let body = pem.lines().nth(1).unwrap_or("-");
                for stream in [&out.stdout, &out.stderr] {
                    let text = String::from_utf8_lossy(stream);
                    assert!(
                        !text.contains("PRIVATE KEY") && !text.contains(body),
                        "key material in the output of {args:?}"
                    );
                }
            }
        }
        out
    }

    /// Replace the registry certificate and key with `leaf`.
    fn put_leaf(&self, leaf: &leaf::IssuedLeaf) {
        let state = self.state();
        state.write_secret(REGISTRY_KEY, &leaf.key_pem).unwrap();
        state.write_public(REGISTRY_CERT, &leaf.cert_pem).unwrap();
    }

    fn spec(&self) -> regboot::pki::LeafSpec {
        setup::leaf_spec(&inventory::load(&self.inventory()).unwrap())
    }
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn code(out: &Output) -> i32 {
    out.status.code().unwrap()
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

fn state_files(lab: &Lab) -> Vec<Vec<u8>> {
    [CA_CERT, CA_KEY, REGISTRY_CERT, REGISTRY_KEY, REGISTRY_CHAIN]
        .iter()
        .map(|n| std::fs::read(lab.state_path().join(n)).unwrap())
        .collect()
}

#[test]
fn init_creates_with_modes_then_keeps_byte_identical() {
    let lab = Lab::new(&inventory_text("registry.local", SELF_SIGNED));
    let out = lab.run(&["certs", "init"]);
    assert_eq!(code(&out), 0, "{out:?}");
    let text = stdout(&out);
    assert!(text.contains("CA: created"), "{text}");
    assert!(
        text.contains("server certificate: issued (no certificate yet)"),
        "{text}"
    );
    assert!(
        text.contains("registry.example.com, registry.local, localhost, 10.1.0.1, 10.2.0.1, 192.0.2.7, 127.0.0.1"),
        "{text}"
    );
    let state = lab.state_path();
    assert_eq!(mode(&state), 0o700);
    assert_eq!(mode(&state.join(CA_KEY)), 0o600);
    assert_eq!(mode(&state.join(REGISTRY_KEY)), 0o600);
    assert_eq!(mode(&state.join(CA_CERT)), 0o644);
    let before = state_files(&lab);

    let out = lab.run(&["certs", "init"]);
    assert_eq!(code(&out), 0);
    assert!(stdout(&out).contains("CA: kept"));
    assert!(stdout(&out).contains("server certificate: kept"));
    assert_eq!(
        state_files(&lab),
        before,
        "nothing changed, nothing rewritten"
    );

    // A new alias inside the CA's constraints (a subdomain of the hostname): the CA stays,
    // the certificate is reissued with exactly that difference.
    lab.write_inventory(&inventory_text(
        "registry.local, hub.registry.example.com",
        SELF_SIGNED,
    ));
    let out = lab.run(&["certs", "init", "-o", "json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["ca"]["outcome"], "kept");
    assert_eq!(json["registry"]["outcome"], "issued");
    assert_eq!(
        json["registry"]["reason"],
        "SANs changed; added: hub.registry.example.com"
    );
    let after = state_files(&lab);
    assert_eq!(after[..2], before[..2], "CA unchanged");
    assert_ne!(after[2], before[2]);

    // An alias in another domain: the CA cannot vouch for it, so nothing is issued and the
    // way out is named; `certs check` says the same.
    lab.write_inventory(&inventory_text(
        "registry.local, hub.registry.example.com, hub.other.example",
        SELF_SIGNED,
    ));
    let out = lab.run(&["certs", "init"]);
    assert_ne!(code(&out), 0);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("needs a new CA") && err.contains("hub.other.example"),
        "{err}"
    );
    assert!(err.contains("regboot rotate --ca"), "{err}");
    assert_eq!(state_files(&lab), after, "nothing issued");
    let out = lab.run(&["certs", "check", "--local"]);
    assert_eq!(code(&out), 2);
    let text = stdout(&out);
    assert!(
        text.contains("names of the inventory outside its name constraints: hub.other.example"),
        "{text}"
    );
    assert!(
        text.contains("may sign only for DNS: registry.example.com"),
        "{text}"
    );
}

#[test]
fn an_unconstrained_ca_keeps_working_and_is_marked() {
    let lab = Lab::new(&inventory_text("registry.local", SELF_SIGNED));
    // A CA from before name constraints (or imported): no extension.
    let old = Ca::generate(&CaSpec::default()).unwrap();
    let state = StateDir::open(&lab.state_path()).unwrap();
    old.store(&state).unwrap();
    let out = lab.run(&["certs", "init"]);
    assert_eq!(code(&out), 0, "{out:?}");
    let out = lab.run(&["certs", "check", "--local", "-o", "json"]);
    assert_eq!(code(&out), 0, "{}", stdout(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(json["certificates"][0]["name_constraints"].is_null());
    let notes = json["certificates"][0]["warnings"].to_string();
    assert!(
        notes.contains("unconstrained") && notes.contains("rotate --ca"),
        "{notes}"
    );
    // Any new name still works with it (it is unconstrained).
    lab.write_inventory(&inventory_text(
        "registry.local, hub.other.example",
        SELF_SIGNED,
    ));
    assert_eq!(code(&lab.run(&["certs", "init"])), 0);
    let out = lab.run(&["certs", "show"]);
    assert!(
        stdout(&out).contains("constraints:  none"),
        "{}",
        stdout(&out)
    );
}

/// A CA as regboot made it before issue 26 item 14: constrained to the registry's DNS names
/// and addresses, but with no extended key usage and no constraint on e-mail and URI names.
fn older_regboot_ca(lab: &Lab) -> Ca {
    use rcgen::{
        BasicConstraints, CertificateParams, CidrSubnet, GeneralSubtree, IsCa, KeyPair,
        KeyUsagePurpose, NameConstraints,
    };
    let inv = inventory::load(&lab.inventory()).unwrap();
    let names = setup::ca_spec(&inv).constraints.unwrap();
    let mut params = CertificateParams::default();
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.name_constraints =
        Some(NameConstraints {
            permitted_subtrees: names
                .dns
                .iter()
                .map(|d| GeneralSubtree::DnsName(d.clone()))
                .chain(names.ips.iter().map(|r| {
                    GeneralSubtree::IpAddress(r.to_string().parse::<CidrSubnet>().unwrap())
                }))
                .collect(),
            excluded_subtrees: Vec::new(),
        });
    let key = KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    Ca::load(&cert.pem(), &key.serialize_pem(), "test").unwrap()
}

/// Issue 26 item 14: a CA an older regboot made (no serverAuth-only extended key usage, e-mail
/// and URI names open) keeps working, and `certs check` warns about it with the fix (`rotate
/// --ca`), without failing: the certificates are valid, the exit code stays 0.
#[test]
fn an_older_regboots_ca_is_warned_about_with_the_fix() {
    let lab = Lab::new(&inventory_text("registry.local", SELF_SIGNED));
    let state = StateDir::open(&lab.state_path()).unwrap();
    older_regboot_ca(&lab).store(&state).unwrap();
    assert_eq!(code(&lab.run(&["certs", "init"])), 0);

    let out = lab.run(&["certs", "check", "--local", "-o", "json"]);
    assert_eq!(code(&out), 0, "{}", stdout(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let ca = &json["certificates"][0];
    assert_eq!(ca["status"], "valid", "{ca:#}");
    let warnings = ca["warnings"].to_string();
    for what in [
        "serverAuth",
        "client certificates",
        "e-mail and URI",
        "rotate --ca",
    ] {
        assert!(warnings.contains(what), "{what} in {ca:#}");
    }
    let out = lab.run(&["certs", "check", "--local"]);
    assert_eq!(code(&out), 0);
    let text = stdout(&out);
    assert!(
        text.contains("ca: warning: ") && text.contains("regboot rotate --ca"),
        "{text}"
    );

    // A CA made now: no warning.
    Ca::generate(&setup::ca_spec(&inventory::load(&lab.inventory()).unwrap()))
        .unwrap()
        .store(&state)
        .unwrap();
    assert_eq!(code(&lab.run(&["certs", "init"])), 0);
    let out = lab.run(&["certs", "check", "--local", "-o", "json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let ca = &json["certificates"][0];
    assert!(
        ca["warnings"].as_array().is_some_and(Vec::is_empty),
        "{ca:#}"
    );
}

#[test]
fn a_key_readable_by_others_is_refused_and_show_prints_the_modes() {
    let lab = Lab::new(&inventory_text("registry.local", SELF_SIGNED));
    assert_eq!(code(&lab.run(&["certs", "init"])), 0);
    let out = lab.run(&["certs", "show"]);
    let text = stdout(&out);
    assert!(text.contains("state directory:"), "{text}");
    assert!(text.contains("0700"), "{text}");
    assert!(text.contains("0600  uid"), "{text}");
    assert!(
        text.contains("constraints:  critical; may sign only for"),
        "{text}"
    );
    for key in [CA_KEY, REGISTRY_KEY] {
        let path = lab.state_path().join(key);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let out = lab.run(&["certs", "init"]);
        assert_ne!(code(&out), 0, "{key}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("mode 0644"), "{err}");
        assert!(
            err.contains(&format!("chmod 600 {}", path.display())),
            "{err}"
        );
        let out = lab.run(&["certs", "show"]);
        assert!(stdout(&out).contains("PROBLEM"), "{}", stdout(&out));
        let out = lab.run(&["certs", "check", "--local"]);
        assert_eq!(code(&out), 2);
        assert!(stdout(&out).contains("chmod 600"), "{}", stdout(&out));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(code(&lab.run(&["certs", "init"])), 0);
    }
}

#[test]
fn check_exit_codes_follow_renew_before_and_validity() {
    let lab = Lab::new(&inventory_text("registry.local", SELF_SIGNED));
    // Nothing yet: missing certificates are invalid.
    let out = lab.run(&["certs", "check", "--local"]);
    assert_eq!(code(&out), 2, "{out:?}");
    assert!(stdout(&out).contains("run `regboot certs init`"));
    assert!(
        !lab.state_path().exists(),
        "check must not create the state directory"
    );

    assert_eq!(code(&lab.run(&["certs", "init"])), 0);
    let out = lab.run(&["certs", "check", "--local"]);
    assert_eq!(code(&out), 0, "{}", stdout(&out));
    let header = stdout(&out).lines().next().unwrap().to_string();
    for column in [
        "CERTIFICATE",
        "SUBJECT",
        "SANS",
        "EXPIRES",
        "RESIDUAL TIME",
        "ISSUER",
    ] {
        assert!(header.contains(column), "{header}");
    }

    let ca = Ca::load_from(&lab.state()).unwrap().unwrap();
    let mut spec = lab.spec();

    spec.validity = Duration::days(10);
    lab.put_leaf(&leaf::issue(&ca, &spec).unwrap());
    let out = lab.run(&["certs", "check", "--local", "-o", "json"]);
    assert_eq!(code(&out), 1, "{}", stdout(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["certificates"][0]["status"], "valid");
    assert_eq!(json["certificates"][1]["status"], "expires-soon");

    // The same certificate once expired (issued already past its end: no waiting).
    let current = leaf::issue(&ca, &spec).unwrap();
    let read = |f: &str| std::fs::read_to_string(lab.state_path().join(f)).unwrap();
    lab.put_leaf(&leaf::IssuedLeaf {
        cert_pem: tls::expired_copy(
            &current.cert_pem,
            &current.key_pem,
            &read(CA_CERT),
            &read(CA_KEY),
        ),
        key_pem: current.key_pem,
    });
    let out = lab.run(&["certs", "check", "--local"]);
    assert_eq!(code(&out), 2, "{}", stdout(&out));
    assert!(stdout(&out).contains("EXPIRED"));

    spec.validity = Duration::days(365);
    let stranger = Ca::generate(&CaSpec::default()).unwrap();
    lab.put_leaf(&leaf::issue(&stranger, &spec).unwrap());
    let out = lab.run(&["certs", "check", "--local"]);
    assert_eq!(code(&out), 2);
    assert!(
        stdout(&out).contains("not signed by the CA"),
        "{}",
        stdout(&out)
    );

    // init repairs it, and check is happy again.
    let out = lab.run(&["certs", "init"]);
    assert!(
        stdout(&out).contains("issued (not signed by the current CA)"),
        "{}",
        stdout(&out)
    );
    assert_eq!(code(&lab.run(&["certs", "check", "--local"])), 0);
}

#[test]
fn show_prints_details_and_no_key() {
    let lab = Lab::new(&inventory_text("registry.local", SELF_SIGNED));
    assert_ne!(code(&lab.run(&["certs", "show"])), 0, "nothing to show yet");
    lab.run(&["certs", "init"]);
    let out = lab.run(&["certs", "show"]);
    assert_eq!(code(&out), 0);
    let text = stdout(&out);
    for field in [
        "subject:",
        "issuer:",
        "serial:",
        "not after:",
        "SHA-256:",
        "is a CA:      yes",
    ] {
        assert!(text.contains(field), "{text}");
    }
    let out = lab.run(&["certs", "show", "-o", "json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        json["certificates"][1]["certificate"]["dns_sans"][0],
        "registry.example.com"
    );
    // The fingerprint is the one openssl computes.
    let openssl = Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
        .arg(lab.state_path().join(REGISTRY_CERT))
        .output()
        .unwrap();
    let fp = String::from_utf8_lossy(&openssl.stdout).replace(':', "");
    let ours = json["certificates"][1]["certificate"]["fingerprint_sha256"]
        .as_str()
        .unwrap();
    assert!(fp.contains(ours), "{fp} vs {ours}");
}

#[test]
fn provided_mode_lists_exactly_the_missing_sans() {
    let lab = Lab::new(&inventory_text("registry.local", SELF_SIGNED));
    let ca = Ca::generate(&CaSpec::default()).unwrap();
    let mut spec = lab.spec();
    // The user's certificate lacks the alias and the private address.
    spec.dns.retain(|d| d != "registry.local");
    spec.ips.retain(|ip| ip.to_string() != "10.2.0.1");
    let issued = leaf::issue(&ca, &spec).unwrap();
    let pki = lab.dir.path().join("pki");
    std::fs::create_dir(&pki).unwrap();
    std::fs::write(pki.join("ca.crt"), ca.cert_pem()).unwrap();
    std::fs::write(pki.join("registry.crt"), &issued.cert_pem).unwrap();
    std::fs::write(pki.join("registry.key"), &issued.key_pem).unwrap();
    let provided = "  mode: provided\n  provided: { ca_cert: pki/ca.crt, cert: pki/registry.crt, key: pki/registry.key }\n";
    lab.write_inventory(&inventory_text("registry.local", provided));

    let out = lab.run(&["certs", "init", "-o", "json"]);
    assert_eq!(code(&out), 1, "{out:?}");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        json["missing_sans"],
        serde_json::json!(["registry.local", "10.2.0.1"])
    );
    assert!(!lab.state_path().exists(), "provided mode writes no state");
    let out = lab.run(&["certs", "check", "--local"]);
    assert_eq!(code(&out), 2);
    assert!(
        stdout(&out).contains("registry.local, 10.2.0.1"),
        "{}",
        stdout(&out)
    );

    // With the full names it is fit.
    let issued = leaf::issue(&ca, &lab.spec()).unwrap();
    std::fs::write(pki.join("registry.crt"), &issued.cert_pem).unwrap();
    std::fs::write(pki.join("registry.key"), &issued.key_pem).unwrap();
    let out = lab.run(&["certs", "init"]);
    assert_eq!(code(&out), 0, "{}", stdout(&out));
    assert_eq!(code(&lab.run(&["certs", "check", "--local"])), 0);
}

#[test]
fn insecure_mode_has_nothing_to_create() {
    let lab = Lab::new(&inventory_text("registry.local", "  mode: insecure\n"));
    let out = lab.run(&["certs", "init"]);
    assert_eq!(code(&out), 1);
    assert!(String::from_utf8_lossy(&out.stderr).contains("tls.mode is insecure"));
    assert_eq!(code(&lab.run(&["certs", "check", "--local"])), 0);
}

#[test]
fn a_second_run_is_refused_while_the_lock_is_held() {
    let lab = Lab::new(&inventory_text("registry.local", SELF_SIGNED));
    let state = StateDir::open(&lab.state_path()).unwrap();
    let held = state.lock().unwrap();
    let out = lab.run(&["certs", "init"]);
    assert_eq!(code(&out), 1);
    assert!(String::from_utf8_lossy(&out.stderr).contains("another regboot run holds the lock"));
    assert!(!lab.state_path().join(CA_KEY).exists());
    drop(held);
    assert_eq!(code(&lab.run(&["certs", "init"])), 0);
}

/// Runs promtool (Debian's prometheus package) on an exposition text: its parser and its
/// lint both have to accept it.
fn promtool_check(text: &str) {
    use std::io::Write;
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool (apt-get install prometheus; scripts/install-deps.sh)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool: {}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The value of the sample of `metric` whose labels contain `label`.
fn sample(text: &str, metric: &str, label: &str) -> Option<i64> {
    text.lines()
        .filter(|l| l.starts_with(&format!("{metric}{{")) && l.contains(label))
        .find_map(|l| l.rsplit(' ').next()?.parse().ok())
}

#[test]
fn check_as_prometheus_metrics_passes_promtool_and_matches_json() {
    let lab = Lab::new(&inventory_text("registry.local", SELF_SIGNED));
    // A state directory whose path needs the exposition format's escapes.
    let state = lab.dir.path().join("st\"ate\\dir");
    let state_arg = state.to_str().unwrap();
    assert_eq!(
        code(&lab.run(&["certs", "init", "--state-dir", state_arg])),
        0
    );
    let textfile = lab.dir.path().join("metrics").join("regboot.prom");
    std::fs::create_dir(textfile.parent().unwrap()).unwrap();
    let out = lab.run(&[
        "certs",
        "check",
        "--local",
        "--state-dir",
        state_arg,
        "-o",
        "prometheus",
        "--textfile",
        textfile.to_str().unwrap(),
    ]);
    assert_eq!(code(&out), 0, "{out:?}");
    let text = stdout(&out);
    promtool_check(&text);
    let file = std::fs::read_to_string(&textfile).unwrap();
    promtool_check(&file);
    assert_eq!(mode(&textfile), 0o644, "node_exporter's user reads it");
    let names: Vec<_> = std::fs::read_dir(textfile.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["regboot.prom"], "no temp file left beside it");
    assert!(
        text.contains(r#"path="/"#) && text.contains(r#"st\"ate\\dir/ca.crt""#),
        "{text}"
    );
    assert!(text.contains("regboot_cert_check_success 1\n"), "{text}");
    assert!(
        text.lines().filter(|l| !l.starts_with('#')).all(|l| l
            .rsplit_once('}')
            .map_or(l, |(_, v)| v)
            .split_whitespace()
            .count()
            == if l.contains('}') { 1 } else { 2 }),
        "no sample carries a timestamp: {text}"
    );

    let out = lab.run(&[
        "certs",
        "check",
        "--local",
        "--state-dir",
        state_arg,
        "-o",
        "json",
    ]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for (row, kind) in json["certificates"]
        .as_array()
        .unwrap()
        .iter()
        .zip(["ca", "registry"])
    {
        let not_after = time::OffsetDateTime::parse(
            row["not_after"].as_str().unwrap(),
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap()
        .unix_timestamp();
        let label = format!("kind=\"{kind}\"");
        for t in [&text, &file] {
            assert_eq!(
                sample(t, "regboot_cert_not_after_timestamp_seconds", &label),
                Some(not_after),
                "{kind}: {t}"
            );
        }
        assert_eq!(sample(&text, "regboot_cert_valid", &label), Some(1));
    }
    let out = lab.run(&["certs", "show", "--state-dir", state_arg, "-o", "json"]);
    let shown: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let leaf = &shown["certificates"][1]["certificate"];
    let labels = format!(
        r#"subject_cn="registry.example.com",issuer_cn="{}",serial_number="{}""#,
        leaf["issuer"]
            .as_str()
            .unwrap()
            .split(", ")
            .next()
            .unwrap()
            .trim_start_matches("CN="),
        leaf["serial"].as_str().unwrap()
    );
    assert!(text.contains(&labels), "{labels} in {text}");

    // -o prometheus belongs to certs check only.
    let out = lab.run(&[
        "certs",
        "show",
        "--state-dir",
        state_arg,
        "-o",
        "prometheus",
    ]);
    assert_eq!(code(&out), 1);
    assert!(String::from_utf8_lossy(&out.stderr).contains("-o prometheus is for `certs check`"));
}

#[test]
fn a_short_lived_ca_for_rehearsals_and_when_renew_rotates_it() {
    let lab = Lab::new(&inventory_text("registry.local", SELF_SIGNED));
    let out = lab.run(&["certs", "init", "--ca-validity", "30m"]);
    assert_eq!(code(&out), 0, "{out:?}");
    assert!(stdout(&out).contains("CA: created"), "{}", stdout(&out));
    let ca = regboot::pki::cert_info(&lab.state().read(CA_CERT).unwrap().unwrap()).unwrap();
    let left = ca.not_after - time::OffsetDateTime::now_utc();
    assert!((29..=30).contains(&left.whole_minutes()), "{left}");

    // A third of its lifetime by default: renew starts the rotation 10 minutes before the end.
    let out = lab.run(&["certs", "check", "--local", "-o", "json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rotation = &json["ca_rotation"];
    assert_eq!(rotation["step"]["action"], "not-due", "{json}");
    let at = |v: &serde_json::Value| {
        time::OffsetDateTime::parse(
            v.as_str().unwrap(),
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap()
    };
    let window = at(&rotation["not_after"]) - at(&rotation["renew_after"]);
    assert_eq!(window, (ca.not_after - ca.not_before) / 3);
    assert_eq!(
        json["certificates"][0]["renew_after"],
        rotation["renew_after"]
    );
    let text = stdout(&lab.run(&["certs", "check", "--local"]));
    assert!(text.contains("RENEWAL"), "{text}");
    assert!(
        text.contains("CA rotation: none under way; `regboot renew` starts one from"),
        "{text}"
    );

    // Inside tls.ca_renew_before_days, stage 1 is due.
    lab.write_inventory(&inventory_text(
        "registry.local",
        "  mode: self-signed\n  ca_renew_before_days: 1\n  ca_stage_soak: 10m\n",
    ));
    let out = lab.run(&["certs", "check", "--local", "-o", "json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["ca_rotation"]["step"]["action"], "run", "{json}");
    assert_eq!(json["ca_rotation"]["step"]["stage"], 1, "{json}");

    // A second short-lived CA would replace the one hosts trust: refused, with the way.
    let out = lab.run(&["certs", "init", "--ca-validity", "30m"]);
    assert_eq!(code(&out), 1);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("holds one already") && err.contains("rotate --ca"),
        "{err}"
    );

    // A soak that is no duration is located in the inventory.
    lab.write_inventory(&inventory_text(
        "registry.local",
        "  mode: self-signed\n  ca_stage_soak: soon\n",
    ));
    let out = lab.run(&["certs", "check", "--local"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("ca_stage_soak") && err.contains("24h"),
        "{err}"
    );
}

#[test]
fn schedule_systemd_units_pass_systemd_analyze_verify() {
    let lab = Lab::new(&inventory_text("registry.local", SELF_SIGNED));
    let out = lab.run(&["schedule", "systemd", "--print"]);
    assert_eq!(code(&out), 0, "{out:?}");
    let text = stdout(&out);
    let (service, timer) = text
        .strip_prefix("# regboot-renew.service\n")
        .and_then(|t| t.split_once("\n# regboot-renew.timer\n"))
        .unwrap_or_else(|| panic!("{text}"));
    let inventory = lab.inventory();
    assert!(
        service.contains(&format!(
            "renew -i \"{}\" --state-dir \"{}\"",
            inventory.display(),
            lab.state_path().display()
        )),
        "{service}"
    );
    assert!(service.contains("SuccessExitStatus=3"), "{service}");
    for line in [
        "OnCalendar=daily",
        "RandomizedDelaySec=1h",
        "Persistent=true",
    ] {
        assert!(timer.lines().any(|l| l == line), "{line} in {timer}");
    }

    let dir = lab.dir.path().join("units");
    std::fs::create_dir(&dir).unwrap();
    let out = lab.run(&["schedule", "systemd", "--dir", dir.to_str().unwrap()]);
    assert_eq!(code(&out), 0, "{out:?}");
    let written = std::fs::read_to_string(dir.join("regboot-renew.service")).unwrap();
    assert_eq!(written, service, "--print shows what is written");
    let verify = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(dir.join("regboot-renew.service"))
        .arg(dir.join("regboot-renew.timer"))
        .output()
        .expect("systemd-analyze (Debian's systemd package)");
    assert!(verify.status.success(), "{verify:?}");
    let err = String::from_utf8_lossy(&verify.stderr);
    assert!(
        !err.contains("regboot-renew"),
        "systemd-analyze complains: {err}"
    );

    // A timer systemd cannot parse is refused the same way (the check can fail).
    let out = lab.run(&[
        "schedule",
        "systemd",
        "--dir",
        dir.to_str().unwrap(),
        "--on-calendar",
        "every blue moon",
    ]);
    assert_eq!(code(&out), 0);
    let verify = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(dir.join("regboot-renew.timer"))
        .output()
        .unwrap();
    assert!(!verify.status.success(), "{verify:?}");
}
