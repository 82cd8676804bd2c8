//! The certificates work with real TLS clients, not only when parsed: `openssl verify` accepts
//! the chain and the names, and a TLS handshake against a rustls server serving the issued
//! certificate succeeds for every SAN (with a client that trusts only the CA) and fails for a
//! name outside them. `openssl s_client` is a second, independent client.

mod support;

use std::path::Path;
use std::process::{Command, Stdio};

use regboot::pki::state::{CA_CERT, REGISTRY_CERT, REGISTRY_CHAIN, REGISTRY_KEY};
use regboot::pki::{Ca, CaSpec, KeyAlgorithm, LeafSpec, StateDir, leaf};

use support::tls::{connect, dns, ip, serve};

const DNS_SANS: [&str; 3] = ["registry01.dev.com", "registry.local", "localhost"];
const IP_SANS: [&str; 4] = ["127.0.0.1", "192.168.23.51", "10.0.0.51", "::1"];

fn issue_into(dir: &Path, alg: KeyAlgorithm) -> StateDir {
    let state = StateDir::open(dir).unwrap();
    let spec = CaSpec {
        key_algorithm: alg,
        ..CaSpec::default()
    };
    let (ca, _) = Ca::ensure(&state, &spec).unwrap();
    let leaf_spec = LeafSpec {
        dns: DNS_SANS.iter().map(|s| s.to_string()).collect(),
        ips: IP_SANS.iter().map(|s| s.parse().unwrap()).collect(),
        validity: time::Duration::days(365),
        renew_before: time::Duration::days(30),
        key_algorithm: alg,
    };
    leaf::ensure(&state, &ca, &leaf_spec).unwrap();
    state
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

fn p(state: &StateDir, name: &str) -> String {
    state.path(name).display().to_string()
}

#[test]
fn openssl_verifies_chain_purpose_and_names() {
    for alg in [KeyAlgorithm::EcdsaP256, KeyAlgorithm::Rsa2048] {
        let tmp = tempfile::tempdir().unwrap();
        let state = issue_into(tmp.path(), alg);
        let ca = p(&state, CA_CERT);
        let chain = p(&state, REGISTRY_CHAIN);
        let (ok, out) = openssl(&[
            "verify",
            "-CAfile",
            &ca,
            "-untrusted",
            &chain,
            "-purpose",
            "sslserver",
            &chain,
        ]);
        assert!(ok && out.contains(": OK"), "{alg:?}: {out}");
        for name in DNS_SANS {
            let (ok, out) = openssl(&["verify", "-CAfile", &ca, "-verify_hostname", name, &chain]);
            assert!(ok, "{alg:?} {name}: {out}");
        }
        for ip in IP_SANS {
            let (ok, out) = openssl(&["verify", "-CAfile", &ca, "-verify_ip", ip, &chain]);
            assert!(ok, "{alg:?} {ip}: {out}");
        }
        let (ok, _) = openssl(&[
            "verify",
            "-CAfile",
            &ca,
            "-verify_hostname",
            "other.dev.com",
            &chain,
        ]);
        assert!(!ok, "{alg:?}: a name outside the SANs must fail");
        let (ok, _) = openssl(&["verify", "-CAfile", &ca, "-verify_ip", "10.9.9.9", &chain]);
        assert!(!ok, "{alg:?}: an IP outside the SANs must fail");

        // The CA itself: CA:TRUE with pathlen 0, keyCertSign + cRLSign.
        let (_, text) = openssl(&["x509", "-in", &ca, "-noout", "-text"]);
        assert!(text.contains("CA:TRUE, pathlen:0"), "{text}");
        assert!(text.contains("Certificate Sign, CRL Sign"), "{text}");
        let (_, text) = openssl(&["x509", "-in", &p(&state, REGISTRY_CERT), "-noout", "-text"]);
        assert!(text.contains("TLS Web Server Authentication"), "{text}");
        // openssl reads the key and it is the certificate's.
        let (ok, key_pub) = openssl(&["pkey", "-in", &p(&state, REGISTRY_KEY), "-pubout"]);
        let (_, cert_pub) = openssl(&[
            "x509",
            "-in",
            &p(&state, REGISTRY_CERT),
            "-noout",
            "-pubkey",
        ]);
        assert!(
            ok && key_pub == cert_pub,
            "{alg:?}: key and certificate differ"
        );
    }
}

#[test]
fn openssl_rejects_the_chain_under_another_ca() {
    let tmp = tempfile::tempdir().unwrap();
    let state = issue_into(tmp.path(), KeyAlgorithm::EcdsaP256);
    let other_tmp = tempfile::tempdir().unwrap();
    let other = issue_into(other_tmp.path(), KeyAlgorithm::EcdsaP256);
    let (ok, out) = openssl(&[
        "verify",
        "-CAfile",
        &p(&other, CA_CERT),
        &p(&state, REGISTRY_CERT),
    ]);
    assert!(!ok, "{out}");
}

#[tokio::test]
async fn rustls_client_accepts_every_san_and_only_those() {
    for alg in [KeyAlgorithm::EcdsaP256, KeyAlgorithm::Rsa2048] {
        let tmp = tempfile::tempdir().unwrap();
        let state = issue_into(tmp.path(), alg);
        let (addr, server) = serve(&state.path(REGISTRY_CHAIN), &state.path(REGISTRY_KEY)).await;
        let ca = state.path(CA_CERT);
        for name in DNS_SANS {
            connect(addr, &ca, dns(name))
                .await
                .unwrap_or_else(|e| panic!("{alg:?} DNS SAN {name}: {e}"));
        }
        for addr_san in IP_SANS {
            connect(addr, &ca, ip(addr_san))
                .await
                .unwrap_or_else(|e| panic!("{alg:?} IP SAN {addr_san}: {e}"));
        }
        let err = connect(addr, &ca, dns("other.dev.com")).await.unwrap_err();
        assert!(err.contains("not valid for name"), "{alg:?}: {err}");
        let err = connect(addr, &ca, ip("10.9.9.9")).await.unwrap_err();
        assert!(err.contains("not valid for name"), "{alg:?}: {err}");

        // A client trusting another CA refuses the same server for a valid name.
        let other_tmp = tempfile::tempdir().unwrap();
        let other = issue_into(other_tmp.path(), alg);
        let err = connect(addr, &other.path(CA_CERT), dns(DNS_SANS[0]))
            .await
            .unwrap_err();
        assert!(err.contains("UnknownIssuer"), "{alg:?}: {err}");
        server.abort();
    }
}

#[tokio::test]
async fn openssl_s_client_completes_the_handshake() {
    let tmp = tempfile::tempdir().unwrap();
    let state = issue_into(tmp.path(), KeyAlgorithm::EcdsaP256);
    let (addr, server) = serve(&state.path(REGISTRY_CHAIN), &state.path(REGISTRY_KEY)).await;
    let ca = p(&state, CA_CERT);
    let s_client = |flag: &'static str, name: &'static str| {
        let ca = ca.clone();
        let target = addr.to_string();
        tokio::task::spawn_blocking(move || {
            openssl(&[
                "s_client",
                "-connect",
                &target,
                "-CAfile",
                &ca,
                flag,
                name,
                "-verify_return_error",
                "-brief",
            ])
        })
    };
    let (ok, out) = s_client("-verify_hostname", "registry01.dev.com")
        .await
        .unwrap();
    assert!(ok && out.contains("Verification: OK"), "{out}");
    let (ok, out) = s_client("-verify_ip", "127.0.0.1").await.unwrap();
    assert!(ok && out.contains("Verification: OK"), "{out}");
    let (ok, out) = s_client("-verify_hostname", "other.dev.com").await.unwrap();
    assert!(!ok, "a name outside the SANs must fail: {out}");
    server.abort();
}
