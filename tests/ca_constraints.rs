//! A constrained CA vouches for the registry and nothing else, as real verifiers see it:
//! `openssl verify`, `openssl s_client` and a rustls client accept the registry certificate
//! regboot issues, and refuse certificates for another name (`example.com`), for an address
//! outside the permitted ranges, or for a permitted name plus a foreign one, all signed by the
//! same CA key (as whoever stole `ca.key` would sign them). The same rogue certificates under
//! an unconstrained CA are accepted: the refusal is the constraint's doing.
//! Every server here listens on 127.0.0.1; the names verified are only names.

mod support;

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use rcgen::{CertificateParams, DnType, ExtendedKeyUsagePurpose, Issuer, KeyPair, SanType};
use regboot::pki::state::{CA_CERT, CA_KEY, REGISTRY_CHAIN, REGISTRY_KEY};
use regboot::pki::{Ca, CaSpec, Constraints, LeafSpec, StateDir, leaf};

use support::tls::{connect, dns, serve};

fn leaf_spec() -> LeafSpec {
    LeafSpec {
        dns: vec![
            "registry.lab".into(),
            "reg.corp.example".into(),
            "localhost".into(),
        ],
        ips: vec![
            "10.20.0.5".parse().unwrap(),
            "10.20.0.200".parse().unwrap(),
            "127.0.0.1".parse().unwrap(),
        ],
        validity: time::Duration::days(30),
        renew_before: time::Duration::days(1),
        key_algorithm: Default::default(),
    }
}

/// A state directory with a CA (constrained to the leaf's names unless `constrained` is
/// false) and the registry certificate regboot issues from it.
fn setup(dir: &Path, constrained: bool) -> StateDir {
    let state = StateDir::open(dir).unwrap();
    let spec = CaSpec {
        constraints: constrained.then(|| Constraints::for_leaf(&leaf_spec(), &[], &[])),
        ..CaSpec::default()
    };
    let (ca, _) = Ca::ensure(&state, &spec).unwrap();
    leaf::ensure(&state, &ca, &leaf_spec()).unwrap();
    state
}

/// A server certificate for `sans` signed with the state directory's CA key directly, the
/// way a thief of `ca.key` would (regboot itself refuses to issue it). Returns the chain and
/// key as PEM files in `dir`.
fn rogue(state: &StateDir, dir: &Path, tag: &str, sans: &[&str]) -> (PathBuf, PathBuf) {
    let ca_pem = state.read(CA_CERT).unwrap().unwrap();
    let ca_key = KeyPair::from_pem(&state.read(CA_KEY).unwrap().unwrap()).unwrap();
    let issuer = Issuer::from_ca_cert_pem(&ca_pem, ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::default();
    params.distinguished_name.push(DnType::CommonName, sans[0]);
    params.subject_alt_names = sans
        .iter()
        .map(|s| match s.parse::<IpAddr>() {
            Ok(ip) => SanType::IpAddress(ip),
            Err(_) => SanType::DnsName((*s).try_into().unwrap()),
        })
        .collect();
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    let cert = params.signed_by(&key, &issuer).unwrap();
    let chain = dir.join(format!("{tag}-chain.pem"));
    let key_path = dir.join(format!("{tag}.key"));
    std::fs::write(&chain, leaf::chain_pem(&cert.pem(), &ca_pem)).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    (chain, key_path)
}

fn openssl(args: &[&str]) -> (bool, String) {
    let out = Command::new("openssl")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("openssl is installed (scripts/install-deps.sh)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn verify(ca: &Path, chain: &Path, flag: &str, name: &str) -> (bool, String) {
    openssl(&[
        "verify",
        "-CAfile",
        &ca.display().to_string(),
        flag,
        name,
        &chain.display().to_string(),
    ])
}

/// The rogue certificates every test tries: (tag, SANs, name a client would verify).
const ROGUES: [(&str, &[&str], &str); 4] = [
    ("example", &["example.com"], "example.com"),
    ("ip", &["10.99.0.1"], "10.99.0.1"),
    // A permitted name does not launder a foreign one in the same certificate.
    ("mixed", &["registry.lab", "example.com"], "registry.lab"),
    // A look-alike is not a subdomain.
    ("lookalike", &["evilregistry.lab"], "evilregistry.lab"),
];

fn name_flag(name: &str) -> &'static str {
    if name.parse::<IpAddr>().is_ok() {
        "-verify_ip"
    } else {
        "-verify_hostname"
    }
}

#[test]
fn openssl_verify_accepts_the_registry_and_refuses_rogues() {
    let tmp = tempfile::tempdir().unwrap();
    let state = setup(tmp.path(), true);
    let ca = state.path(CA_CERT);
    let (_, text) = openssl(&["x509", "-in", &ca.display().to_string(), "-noout", "-text"]);
    assert!(text.contains("X509v3 Name Constraints: critical"), "{text}");
    assert!(text.contains("DNS:registry.lab"), "{text}");
    assert!(text.contains("IP:10.20.0.5/255.255.255.255"), "{text}");
    let chain = state.path(REGISTRY_CHAIN);
    for name in [
        "registry.lab",
        "reg.corp.example",
        "localhost",
        "10.20.0.5",
        "10.20.0.200",
    ] {
        let (ok, out) = verify(&ca, &chain, name_flag(name), name);
        assert!(ok && out.contains(": OK"), "{name}: {out}");
    }
    for (tag, sans, name) in ROGUES {
        let (rogue_chain, _) = rogue(&state, tmp.path(), tag, sans);
        let (ok, out) = verify(&ca, &rogue_chain, name_flag(name), name);
        assert!(!ok, "{tag}: a rogue certificate was accepted: {out}");
        assert!(out.contains("permitted subtree violation"), "{tag}: {out}");
    }

    // The control: the same rogue certificates under an unconstrained CA pass.
    let plain_tmp = tempfile::tempdir().unwrap();
    let plain = setup(plain_tmp.path(), false);
    for (tag, sans, name) in ROGUES {
        let (rogue_chain, _) = rogue(&plain, plain_tmp.path(), tag, sans);
        let (ok, out) = verify(&plain.path(CA_CERT), &rogue_chain, name_flag(name), name);
        assert!(ok, "{tag} under an unconstrained CA: {out}");
    }
}

#[tokio::test]
async fn rustls_accepts_the_registry_and_refuses_rogues() {
    let tmp = tempfile::tempdir().unwrap();
    let state = setup(tmp.path(), true);
    let ca = state.path(CA_CERT);
    let (addr, server) = serve(&state.path(REGISTRY_CHAIN), &state.path(REGISTRY_KEY)).await;
    for name in [
        "registry.lab",
        "reg.corp.example",
        "10.20.0.200",
        "127.0.0.1",
    ] {
        connect(addr, &ca, dns(name))
            .await
            .unwrap_or_else(|e| panic!("registry as {name}: {e}"));
    }
    server.abort();
    for (tag, sans, name) in ROGUES {
        let (chain, key) = rogue(&state, tmp.path(), tag, sans);
        let (addr, server) = serve(&chain, &key).await;
        let err = connect(addr, &ca, dns(name)).await.unwrap_err();
        assert!(err.contains("NameConstraint"), "{tag}: {err}");
        server.abort();
    }

    let plain_tmp = tempfile::tempdir().unwrap();
    let plain = setup(plain_tmp.path(), false);
    for (tag, sans, name) in ROGUES {
        let (chain, key) = rogue(&plain, plain_tmp.path(), tag, sans);
        let (addr, server) = serve(&chain, &key).await;
        connect(addr, &plain.path(CA_CERT), dns(name))
            .await
            .unwrap_or_else(|e| panic!("{tag} under an unconstrained CA: {e}"));
        server.abort();
    }
}

#[tokio::test]
async fn openssl_s_client_refuses_a_rogue_server() {
    let tmp = tempfile::tempdir().unwrap();
    let state = setup(tmp.path(), true);
    let ca = state.path(CA_CERT).display().to_string();
    let s_client = |addr: SocketAddr, name: &'static str| {
        let ca = ca.clone();
        tokio::task::spawn_blocking(move || {
            openssl(&[
                "s_client",
                "-connect",
                &addr.to_string(),
                "-CAfile",
                &ca,
                name_flag(name),
                name,
                "-verify_return_error",
                "-brief",
            ])
        })
    };
    let (addr, server) = serve(&state.path(REGISTRY_CHAIN), &state.path(REGISTRY_KEY)).await;
    let (ok, out) = s_client(addr, "registry.lab").await.unwrap();
    assert!(ok && out.contains("Verification: OK"), "{out}");
    server.abort();
    let (chain, key) = rogue(&state, tmp.path(), "example", &["example.com"]);
    let (addr, server) = serve(&chain, &key).await;
    let (ok, out) = s_client(addr, "example.com").await.unwrap();
    assert!(!ok, "a rogue server was accepted: {out}");
    assert!(out.contains("permitted subtree violation"), "{out}");
    server.abort();
}

#[test]
fn regboot_refuses_to_issue_outside_the_constraints() {
    let tmp = tempfile::tempdir().unwrap();
    let state = setup(tmp.path(), true);
    let ca = Ca::load_from(&state).unwrap().unwrap();
    let mut spec = leaf_spec();
    spec.dns.push("registry.other.example".into());
    spec.ips.push("10.20.1.9".parse().unwrap());
    let err = leaf::issue(&ca, &spec).unwrap_err().to_string();
    assert!(err.contains("needs a new CA"), "{err}");
    assert!(err.contains("registry.other.example, 10.20.1.9"), "{err}");
    assert!(err.contains("rotate --ca"), "{err}");
}
