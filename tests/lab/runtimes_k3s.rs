//! k3s on a lab host (issue 27 item 4), for the day a k3s binary is at hand: none can be
//! installed on the machines this was written on, so this scenario is ignored unless run with
//! `REGBOOT_LAB_K3S=/path/to/k3s cargo test --test lab -- runtimes_k3s:: --ignored`. host3 of
//! the runtimes profile runs a k3s server (`lab up --k3s`); with the OS trust store off, apply
//! merges the registry into /etc/rancher/k3s/registries.yaml, restarts k3s once (announced), and
//! a pull through k3s's own CRI socket (as its kubelet pulls, with the lab user's credential in
//! the request) succeeds; a second apply changes nothing; reset removes the file regboot
//! created and k3s keeps running.

use std::path::PathBuf;

use crate::support::cli::{changes, run_json};
use crate::support::lab::TestLab;
use regboot::lab::{LabOptions, Profile, Release};
use regboot::runtime_api::Auth;
use regboot::runtime_api::cri::Cri;
use regboot::ssh::Session;

const K3S_SOCKET: &str = "/run/k3s/containerd/containerd.sock";
const REGISTRIES: &str = "/etc/rancher/k3s/registries.yaml";

#[test]
#[ignore = "needs a k3s binary: REGBOOT_LAB_K3S=/path/to/k3s ... -- runtimes_k3s:: --ignored"]
fn a_k3s_server_pulls_through_registries_yaml() {
    let binary = PathBuf::from(
        std::env::var("REGBOOT_LAB_K3S").expect("REGBOOT_LAB_K3S: the path of a k3s binary"),
    );
    let lab = TestLab::up_options(
        "rt-k3s",
        LabOptions {
            profile: Profile::Runtimes,
            release: Release::Trixie,
            k3s: Some(binary),
            ..LabOptions::default()
        },
    );
    let inv = lab.lab.inventory_path.clone();
    let text = std::fs::read_to_string(&inv).unwrap();
    std::fs::write(&inv, format!("{text}  os_trust_store: false\n")).unwrap();
    let (code, facts) = run_json(&inv, &["facts", "--limit", "host3"]);
    assert_eq!(code, 0, "{facts:#}");
    let kube = &facts["hosts"][0]["facts"]["kubernetes"];
    assert_eq!(
        (kube["distribution"].as_str(), kube["role"].as_str()),
        (Some("k3s"), Some("server")),
        "{facts:#}"
    );

    let (code, report) = run_json(&inv, &["apply"]);
    assert_eq!(code, 0, "{report:#}");
    assert!(
        changes(&report)
            .iter()
            .any(|(h, c)| h == "host3" && c.starts_with("RESTART k3s")),
        "{:?}",
        changes(&report)
    );
    let yaml = lab.root_script("host3", &format!("cat {REGISTRIES}"));
    assert!(
        yaml.contains("ca_file: \"/etc/rancher/k3s/regboot-ca.pem\""),
        "{yaml}"
    );

    // Push an image from host2, pull it through k3s's CRI on host3.
    let password = std::fs::read_to_string(&lab.lab.password_path).unwrap();
    let password = password.trim().to_string();
    lab.root_script(
        "host2",
        &format!(
            "tar cf - -T /dev/null | docker import - registry.lab:5000/k3s:1 >/dev/null\n\
             echo '{password}' | docker login -u lab --password-stdin registry.lab:5000 >/dev/null\n\
             docker push -q registry.lab:5000/k3s:1 >/dev/null"
        ),
    );
    let target = lab.lab.target(lab.host("host3"));
    let pulled = tokio::runtime::Runtime::new().unwrap().block_on(async {
        let session = Session::connect(&target).await.expect("SSH to host3");
        let mut cri = Cri::connect(&session, K3S_SOCKET).await.expect("k3s's CRI");
        let auth = Auth {
            username: "lab",
            password: &password,
            registry: "registry.lab:5000",
        };
        cri.pull("registry.lab:5000/k3s:1", Some(auth)).await
    });
    assert!(pulled.is_ok(), "{pulled:?}");

    let (code, again) = run_json(&inv, &["apply"]);
    assert_eq!(code, 0, "{again:#}");
    assert!(changes(&again).is_empty(), "{:?}", changes(&again));
    let (code, reset) = run_json(&inv, &["reset", "--yes"]);
    assert_eq!(code, 0, "{reset:#}");
    lab.root_script(
        "host3",
        &format!("! test -e {REGISTRIES} && systemctl is-active --quiet k3s"),
    );
}
