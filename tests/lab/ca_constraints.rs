//! The constrained CA as the cluster's own clients see it. After `apply`, dockerd (Go's
//! verifier, through certs.d) pulls from the registry in the smoke test, and curl (OpenSSL,
//! through the OS trust store that regboot filled) reaches the registry with no `--cacert`.
//! Then a rogue HTTPS server inside the lab (`openssl s_server` on host3) serves a certificate
//! signed with the very same `ca.key`, for a name (`rogue.example`) and for an address (host3's,
//! not a registry address) outside the CA's constraints: curl and `docker pull` on host2 both
//! refuse it. Every connection goes to the lab's own containers.
//!
//! A second test walks an existing cluster over: an unconstrained CA (imported, as from an
//! older regboot) keeps working and is marked, `rotate --ca` replaces it with a constrained
//! one, a new alias in another domain stops `plan` and `apply` with "needs a new CA", and
//! `rotate --ca` again makes a CA that covers it.

use std::net::IpAddr;

use crate::support::cli::{regboot, run_json};
use crate::support::lab::TestLab;
use rcgen::{CertificateParams, DnType, ExtendedKeyUsagePurpose, Issuer, KeyPair, SanType};
use serde_json::Value;

const ROGUE_PORT: u16 = 5443;

/// A server certificate for `san`, signed with the CA key (as a thief of `ca.key` would).
fn rogue_cert(ca_pem: &str, ca_key_pem: &str, san: &str) -> (String, String) {
    let issuer = Issuer::from_ca_cert_pem(ca_pem, KeyPair::from_pem(ca_key_pem).unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::default();
    params.distinguished_name.push(DnType::CommonName, san);
    params.subject_alt_names = vec![match san.parse::<IpAddr>() {
        Ok(ip) => SanType::IpAddress(ip),
        Err(_) => SanType::DnsName(san.try_into().unwrap()),
    }];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let cert = params.signed_by(&key, &issuer).unwrap();
    (format!("{}{}", cert.pem(), ca_pem), key.serialize_pem())
}

fn write_on(lab: &TestLab, host: &str, path: &str, text: &str) {
    let tmp = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(tmp.path(), text).unwrap();
    let out = lab.ssh_with_stdin(
        lab.host(host),
        &format!("cat > {path} && chmod 600 {path}"),
        Some(tmp.path()),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// curl on host2 with only the OS trust store: (exit code, stderr + stdout).
fn curl_os_store(lab: &TestLab, resolve: &str, url: &str) -> (i32, String) {
    let out = lab.ssh(
        lab.host("host2"),
        &format!(
            "curl -sS --max-time 10 -o /dev/null -w '%{{http_code}}' --resolve {resolve} {url}"
        ),
    );
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn the_cluster_trusts_the_registry_and_refuses_a_rogue_server_signed_by_the_same_key() {
    let lab = TestLab::up("nc", 3);
    let inv = lab.lab.inventory_path.clone();
    let (code, report) = run_json(&inv, &["apply"]);
    assert_eq!(code, 0, "apply: {report:#}");
    let smoke = report["smoke"].as_array().expect("smoke results");
    assert!(smoke.iter().all(|s| s["ok"] == true), "{smoke:#?}");
    assert_eq!(
        smoke.iter().filter(|s| s["action"] == "pull").count(),
        2,
        "dockerd pulled on both other hosts: {smoke:#?}"
    );

    let state = inv.parent().unwrap().join(".regboot");
    let ca_pem = std::fs::read_to_string(state.join("ca.crt")).unwrap();
    let ca_key = std::fs::read_to_string(state.join("ca.key")).unwrap();
    let info = regboot::pki::cert_info(&ca_pem).unwrap();
    let constraints = info.name_constraints.expect("apply made a constrained CA");
    assert!(constraints.permits_dns("registry.lab"), "{constraints:?}");

    // curl on an agent, from the lab's bundle (the host image has none).
    let agent = lab.host("host2");
    lab.install(&agent.name, &["curl"]);
    let registry = lab.host("host1");
    let (code, out) = curl_os_store(
        &lab,
        &format!("registry.lab:5000:{}", registry.address),
        "https://registry.lab:5000/v2/",
    );
    assert_eq!(
        (code, out.as_str()),
        (0, "401"),
        "curl trusts the registry through the OS trust store"
    );

    // The rogue server on host3: one certificate per name, each on its own port.
    let rogue_host = lab.host("host3");
    let rogue_ip = rogue_host.address.clone();
    let ip: IpAddr = rogue_ip.parse().unwrap();
    assert!(
        !constraints.permits_ip(ip),
        "host3 is not a registry address"
    );
    let cases = [
        ("rogue.example", ROGUE_PORT),
        (rogue_ip.as_str(), ROGUE_PORT + 1),
    ];
    for (i, (name, port)) in cases.iter().enumerate() {
        let (chain, key) = rogue_cert(&ca_pem, &ca_key, name);
        write_on(&lab, "host3", &format!("/tmp/rogue{i}.crt"), &chain);
        write_on(&lab, "host3", &format!("/tmp/rogue{i}.key"), &key);
        lab.ssh_ok(
            rogue_host,
            &format!(
                "sudo -n systemd-run --unit rogue{i} openssl s_server -quiet -www \
                 -accept {port} -cert /tmp/rogue{i}.crt -key /tmp/rogue{i}.key"
            ),
        );
    }
    // Ready when host3 itself answers (no verification: only that it listens).
    for (_, port) in cases {
        lab.ssh_ok(
            rogue_host,
            &format!(
                "for i in $(seq 50); do openssl s_client -connect 127.0.0.1:{port} </dev/null \
                 >/dev/null 2>&1 && exit 0; sleep 0.2; done; exit 1"
            ),
        );
    }
    lab.ssh_ok(
        agent,
        &format!("echo '{rogue_ip} rogue.example' | sudo -n tee -a /etc/hosts >/dev/null"),
    );

    for (name, port) in cases {
        let (code, out) = curl_os_store(
            &lab,
            &format!("{name}:{port}:{rogue_ip}"),
            &format!("https://{name}:{port}/"),
        );
        eprintln!("curl https://{name}:{port}/ -> exit {code}: {out}");
        assert_eq!(code, 60, "curl must refuse the rogue certificate: {out}");
        assert!(out.contains("permitted subtree violation"), "{out}");

        let pull = lab.ssh(agent, &format!("sudo -n docker pull {name}:{port}/rogue:1"));
        let text = String::from_utf8_lossy(&pull.stderr).to_string();
        eprintln!("docker pull {name}:{port}/rogue:1 -> {text}");
        assert!(
            !pull.status.success(),
            "docker pulled from the rogue: {text}"
        );
        assert!(
            text.contains("not authorized to sign for this name")
                || text.contains("not permitted by any constraint"),
            "dockerd refuses it for the name constraint: {text}"
        );
    }

    // The registry itself is still fine for every host.
    let (code, report): (i32, Value) = run_json(&inv, &["verify"]);
    assert_eq!(code, 0, "verify after the rogue attempts: {report:#}");
}

fn smoke_ok(report: &Value) -> bool {
    report["smoke"]
        .as_array()
        .is_some_and(|s| !s.is_empty() && s.iter().all(|s| s["ok"] == true))
}

fn rotate_ca(inv: &std::path::Path) {
    let (code, runs) = run_json(inv, &["rotate", "--ca"]);
    assert_eq!(code, 0, "rotate --ca: {runs:#}");
    for run in runs["runs"].as_array().unwrap() {
        assert!(smoke_ok(&run["report"]), "{run:#}");
    }
}

fn constraints_of(state: &std::path::Path) -> Option<regboot::pki::Constraints> {
    let pem = std::fs::read_to_string(state.join("ca.crt")).unwrap();
    regboot::pki::cert_info(&pem).unwrap().name_constraints
}

#[test]
fn an_unconstrained_ca_is_replaced_and_a_foreign_alias_needs_a_new_ca() {
    let lab = TestLab::up("nc-rot", 3);
    let inv = lab.lab.inventory_path.clone();
    let state = inv.parent().unwrap().join(".regboot");

    // A CA from before name constraints, imported (as a backup would be).
    let old_dir = tempfile::tempdir().unwrap();
    let old_state = regboot::pki::StateDir::open(old_dir.path()).unwrap();
    regboot::pki::Ca::ensure(&old_state, &regboot::pki::CaSpec::default()).unwrap();
    let out = regboot(
        &inv,
        &[
            "certs",
            "import",
            "--ca-cert",
            old_dir.path().join("ca.crt").to_str().unwrap(),
            "--ca-key",
            old_dir.path().join("ca.key").to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{out:?}");
    assert_eq!(constraints_of(&state), None);

    // It keeps working, and certs check (hosts included) marks it.
    let (code, report) = run_json(&inv, &["apply"]);
    assert_eq!(code, 0, "apply: {report:#}");
    assert!(smoke_ok(&report), "{report:#}");
    let (code, check) = run_json(&inv, &["certs", "check"]);
    assert_eq!(code, 0, "{check:#}");
    let notes = check["certificates"][0]["warnings"].to_string();
    assert!(notes.contains("unconstrained"), "{check:#}");

    // rotate --ca replaces it with a constrained CA, pulls working throughout its stages.
    rotate_ca(&inv);
    let constraints = constraints_of(&state).expect("the new CA is constrained");
    assert!(constraints.permits_dns("registry.lab"), "{constraints:?}");
    assert!(!constraints.permits_dns("hub.other.example"));
    let (code, check) = run_json(&inv, &["certs", "check"]);
    assert_eq!(code, 0, "{check:#}");
    assert!(
        check["certificates"][0]["name_constraints"].is_object(),
        "{check:#}"
    );

    // An alias in another domain: plan and apply stop, nothing is issued.
    let text = std::fs::read_to_string(&inv).unwrap();
    let with_alias = text.replacen(
        "  hostname: registry.lab\n",
        "  hostname: registry.lab\n  aliases: [hub.other.example]\n",
        1,
    );
    assert_ne!(text, with_alias, "{text}");
    std::fs::write(&inv, with_alias).unwrap();
    let leaf_before = std::fs::read(state.join("registry.crt")).unwrap();
    for cmd in ["plan", "apply"] {
        let out = regboot(&inv, &[cmd]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{cmd}: {err}");
        assert!(
            err.contains("needs a new CA") && err.contains("hub.other.example"),
            "{cmd}: {err}"
        );
        assert!(err.contains("regboot rotate --ca"), "{cmd}: {err}");
    }
    assert_eq!(
        std::fs::read(state.join("registry.crt")).unwrap(),
        leaf_before
    );
    let (code, check) = run_json(&inv, &["certs", "check", "--local"]);
    assert_eq!(code, 2, "{check:#}");
    assert!(check.to_string().contains("rotate --ca"), "{check:#}");

    // rotate --ca makes a CA that covers the new alias; the cluster converges.
    rotate_ca(&inv);
    let constraints = constraints_of(&state).expect("constrained");
    assert!(
        constraints.permits_dns("hub.other.example"),
        "{constraints:?}"
    );
    let (code, check) = run_json(&inv, &["certs", "check"]);
    assert_eq!(code, 0, "{check:#}");

    // tls.os_trust_store: false takes the CA out of the OS trust store; dockerd (certs.d)
    // still pulls, apply says what stops working, and the next plan sees no drift.
    let text = std::fs::read_to_string(&inv).unwrap();
    let no_store = text.replacen(
        "  mode: self-signed\n",
        "  mode: self-signed\n  os_trust_store: false\n",
        1,
    );
    assert_ne!(text, no_store, "{text}");
    std::fs::write(&inv, no_store).unwrap();
    let (code, report) = run_json(&inv, &["apply"]);
    assert_eq!(code, 0, "apply: {report:#}");
    assert!(smoke_ok(&report), "{report:#}");
    assert!(
        report["notes"]
            .to_string()
            .contains("os_trust_store is false"),
        "{report:#}"
    );
    let ca_body: String = std::fs::read_to_string(state.join("ca.crt"))
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    for host in ["host1", "host2", "host3"] {
        let anchors = lab.ssh_ok(
            lab.host(host),
            "ls /usr/local/share/ca-certificates/ /etc/ssl/certs/ | grep -c regboot || true",
        );
        assert_eq!(anchors, "0", "{host} still has regboot anchors");
        let bundle = lab.ssh_ok(
            lab.host(host),
            "tr -d '\\n' < /etc/ssl/certs/ca-certificates.crt",
        );
        assert!(
            !bundle.contains(&ca_body[100..164]),
            "{host}: the CA is still in the system bundle"
        );
    }
    let (code, report) = run_json(&inv, &["plan"]);
    assert_eq!(code, 0, "no drift after apply: {report:#}");
    let (code, check) = run_json(&inv, &["certs", "check"]);
    assert_eq!(code, 0, "{check:#}");
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).to_string()
}
