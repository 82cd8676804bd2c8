//! The constrained CA as the cluster's own clients see it. After `apply`, dockerd (Go's
//! verifier, through certs.d) pulls from the registry in the smoke test, and curl (OpenSSL,
//! through the OS trust store that regboot filled) reaches the registry with no `--cacert`.
//! Then a rogue HTTPS server inside the lab (`openssl s_server` on host3) serves a certificate
//! signed with the very same `ca.key`, for a name (`rogue.example`) and for an address (host3's,
//! not a registry address) outside the CA's constraints: curl and `docker pull` on host2 both
//! refuse it. Every connection goes to the lab's own containers.

mod support;

use std::net::IpAddr;

use rcgen::{CertificateParams, DnType, ExtendedKeyUsagePurpose, Issuer, KeyPair, SanType};
use serde_json::Value;
use support::cli::run_json;
use support::lab::TestLab;

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

    // curl on an agent installs from Debian's mirror (the host image has none).
    let agent = lab.host("host2");
    lab.ssh_ok(
        agent,
        "command -v curl >/dev/null || { sudo -n apt-get update -qq >/dev/null && \
         sudo -n env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq curl >/dev/null; }",
    );
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
