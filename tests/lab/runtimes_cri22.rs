//! containerd 2.2's default registry `config_path` on a Kubernetes-style node (issue 27 item
//! 3), proved on the runtimes lab's containerd 2.1 host (host3: trixie, containerd from Debian
//! unstable) configured the way 2.2 ships: its CRI images table's `config_path` set to the list
//! `/etc/containerd/certs.d:/etc/docker/certs.d` (2.2's default when unset). containerd 2.x's
//! CRI pulls through its transfer service, which takes that list as one literal directory, so
//! hosts.toml is ignored; with the OS trust store off the CRI pull then fails on the
//! certificate. apply replaces the list by certs.d alone (restart announced in plan), the CRI
//! pull passes, and reset puts the file back byte for byte. Item 5 on the same lab: the
//! containerd-only and podman-only hosts get no /etc/docker/certs.d; with a running kubelet
//! unit on host3 (a stand-in service: no kubelet package is reachable here), facts name it a
//! Kubernetes node and plan refuses `docker.install` there until its entry says
//! `docker_on_kubernetes: true`.

use crate::support::cli::{changes, host_error, run_json};
use crate::support::lab::TestLab;
use regboot::lab::{ContainerdLine, LabOptions, Profile, Release};
use serde_json::Value;

const CONFIG: &str = "/etc/containerd/config.toml";
const LIST: &str = "/etc/containerd/certs.d:/etc/docker/certs.d";

/// host3's containerd config as `containerd config dump` writes it (version 3), its CRI images
/// registry `config_path` set to 2.2's default list; containerd restarted to read it.
const AS_22_SHIPS: &str = r#"containerd config dump > /tmp/dump.toml
awk -v list="$LIST" '
  /^ *\[plugins\.'"'"'io\.containerd\.cri\.v1\.images'"'"'\.registry\]/ { reg = 1; print; next }
  /^ *\[/ { reg = 0 }
  reg && /^ *config_path *=/ { sub(/=.*/, "= '"'"'" list "'"'"'") }
  { print }' /tmp/dump.toml > /etc/containerd/config.toml
systemctl restart containerd
i=0; until ctr version >/dev/null 2>&1; do i=$((i+1)); [ $i -lt 60 ] || exit 1; sleep 1; done
sha256sum /etc/containerd/config.toml"#;

fn cri_row(report: &Value) -> &Value {
    report["smoke"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["host"] == "host3" && s["action"] == "cri pull")
        .unwrap_or_else(|| panic!("no cri pull on host3: {report:#}"))
}

#[test]
fn containerd_22_default_config_path_is_made_effective_for_cri_pulls() {
    let test = "rt-cri22";
    let lab = TestLab::up_options(
        test,
        LabOptions {
            profile: Profile::Runtimes,
            release: Release::Trixie,
            containerd: ContainerdLine::Two,
            ..LabOptions::default()
        },
    );
    let version = lab.root_script("host3", "containerd --version");
    eprintln!("{test}: host3 runs {version}");
    assert!(version.contains(" 2."), "{version}");
    let inv = lab.lab.inventory_path.clone();
    let text = std::fs::read_to_string(&inv).unwrap();
    std::fs::write(&inv, format!("{text}  os_trust_store: false\n")).unwrap();
    let shipped_sum = lab.root_script("host3", &format!("LIST='{LIST}'\n{AS_22_SHIPS}"));
    let shipped = lab.root_script("host3", &format!("cat {CONFIG}"));
    assert!(
        shipped.contains(&format!("config_path = '{LIST}'")),
        "{shipped}"
    );

    // plan announces the replacement and containerd's restart on host3.
    let (code, plan) = run_json(&inv, &["plan"]);
    assert_eq!(code, 2, "{plan:#}");
    let planned = changes(&plan);
    for want in [
        format!(
            "set the CRI plugin's registry config_path to /etc/containerd/certs.d in {CONFIG} instead of '{LIST}'"
        ),
        "RESTART containerd".to_string(),
    ] {
        assert!(
            planned
                .iter()
                .any(|(h, c)| h == "host3" && c.starts_with(&want)),
            "{want}: {planned:#?}"
        );
    }

    let (code, report) = run_json(&inv, &["apply"]);
    assert_eq!(code, 0, "{report:#}");
    let cri = cri_row(&report);
    assert!(cri["ok"] == true, "{cri:#}");
    let config = lab.root_script("host3", &format!("cat {CONFIG}"));
    assert_eq!(
        config,
        shipped.replace(&format!("'{LIST}'"), "\"/etc/containerd/certs.d\""),
        "only config_path changed"
    );
    // Item 5: no docker on host3 (containerd) and host4 (podman), no docker certs.d there.
    for host in ["host3", "host4"] {
        lab.root_script(host, "! test -e /etc/docker/certs.d");
    }
    lab.root_script(
        "host2",
        "test -e /etc/docker/certs.d/registry.lab:5000/ca.crt",
    );

    // Before: the same host with regboot's hosts.toml and CA in place and the list back (what
    // regboot left before this change): the CRI pull fails on the certificate.
    lab.root_script(
        "host3",
        &format!(
            "sed -i \"s|config_path = \\\"/etc/containerd/certs.d\\\"|config_path = '{LIST}'|\" {CONFIG}\n\
             systemctl restart containerd\n\
             i=0; until ctr version >/dev/null 2>&1; do i=$((i+1)); [ $i -lt 60 ] || exit 1; sleep 1; done"
        ),
    );
    let (code, broken) = run_json(&inv, &["verify"]);
    assert_eq!(code, 1, "{broken:#}");
    let cri = cri_row(&broken);
    let detail = cri["detail"].as_str().unwrap_or_default();
    assert!(cri["ok"] == false && detail.contains("x509"), "{cri:#}");
    eprintln!("{test}: host3's CRI pull with the list: {detail}");

    // apply repairs it (restart again), and the CRI pull passes.
    let (code, repaired) = run_json(&inv, &["apply"]);
    assert_eq!(code, 0, "{repaired:#}");
    assert!(cri_row(&repaired)["ok"] == true, "{repaired:#}");
    assert!(
        changes(&repaired)
            .iter()
            .any(|(h, c)| h == "host3" && c.starts_with("RESTART containerd")),
        "{:?}",
        changes(&repaired)
    );
    let (code, again) = run_json(&inv, &["apply"]);
    assert_eq!(code, 0, "{again:#}");
    assert!(changes(&again).is_empty(), "{:?}", changes(&again));

    // reset: the file as 2.2 shipped it, byte for byte.
    let (code, reset) = run_json(&inv, &["reset", "--yes"]);
    assert_eq!(code, 0, "{reset:#}");
    assert_eq!(
        lab.root_script("host3", &format!("sha256sum {CONFIG}")),
        shipped_sum
    );

    // Item 5: a kubelet unit (the probe reads units, not binaries' behaviour) makes host3 a
    // Kubernetes node: docker.install is refused there, by name, until its entry asks.
    lab.root_script(
        "host3",
        "printf '[Service]\\nExecStart=/bin/sleep infinity\\n' > /etc/systemd/system/kubelet.service\n\
         systemctl daemon-reload && systemctl start kubelet",
    );
    let (code, facts) = run_json(&inv, &["facts", "--limit", "host3"]);
    assert_eq!(code, 0, "{facts:#}");
    let kube = &facts["hosts"][0]["facts"]["kubernetes"];
    assert!(
        kube["distribution"] == "kubelet" && kube["active"] == true,
        "{facts:#}"
    );
    let text = std::fs::read_to_string(&inv).unwrap();
    std::fs::write(&inv, format!("{text}docker:\n  install: true\n")).unwrap();
    let (_, refused) = run_json(&inv, &["plan", "--limit", "host3"]);
    let err = host_error(&refused, "host3").unwrap_or_default();
    assert!(
        err.contains("host3 is a Kubernetes node (kubelet runs")
            && err.contains("docker_on_kubernetes: true"),
        "{refused:#}"
    );
    let text = std::fs::read_to_string(&inv).unwrap();
    let asked = text.replacen(
        "- name: host3\n",
        "- name: host3\n    docker_on_kubernetes: true\n",
        1,
    );
    assert_ne!(asked, text);
    std::fs::write(&inv, asked).unwrap();
    let (code, plan) = run_json(&inv, &["plan", "--limit", "host3"]);
    assert_eq!(code, 2, "{plan:#}");
    assert!(
        changes(&plan)
            .iter()
            // "... from the bundle: up to N .debs": the lab installs from its bundle.
            .any(|(h, c)| h == "host3" && c.starts_with("install docker.io (docker.install)")),
        "{:?}",
        changes(&plan)
    );
}
