//! What people read, on a real lab: progress lines on a stderr that is not a terminal, and
//! `plan` on a converged and on a drifted cluster compared with the expected text under
//! `tests/snapshots/` (volatile parts normalized; `REGBOOT_BLESS=1` rewrites the files after
//! a deliberate change of the output).

use std::path::Path;

use crate::support::cli::regboot;
use crate::support::lab::TestLab;

#[test]
fn progress_and_plan_output_on_a_converged_and_a_drifted_lab() {
    let lab = TestLab::up("output", 3);
    let inv = lab.lab.inventory_path.clone();
    let out = regboot(&inv, &["apply"]);
    assert!(out.status.success(), "apply: {out:?}");
    assert_progress(&String::from_utf8_lossy(&out.stderr));
    let out = regboot(&inv, &["plan", "-q"]);
    assert!(out.stderr.is_empty(), "-q printed progress: {out:?}");

    let out = regboot(&inv, &["plan"]);
    assert_eq!(out.status.code(), Some(0), "converged plan: {out:?}");
    snapshot("plan_converged.txt", &normalize(&lab, &stdout(&out)));

    // Drift: two agents lost the CA file (the same change on both), one its /etc/hosts block,
    // and the registry serves a certificate that another issuer signed.
    for host in ["host2", "host3"] {
        lab.root_script(host, "rm /etc/docker/certs.d/registry.lab:5000/ca.crt");
    }
    // In place: docker bind-mounts /etc/hosts, a rename over it fails.
    lab.root_script(
        "host3",
        "t=$(grep -v -e regboot -e registry.lab /etc/hosts); echo \"$t\" > /etc/hosts",
    );
    let ca = std::fs::read_to_string(lab.lab.dir.join(".regboot/ca.crt")).unwrap();
    let chain = format!("{}{ca}", foreign_leaf());
    lab.root_script(
        "host1",
        &format!("cat > /etc/regboot/registry/certs/registry-chain.crt <<'EOF'\n{chain}EOF\n"),
    );
    let out = regboot(&inv, &["plan"]);
    assert_eq!(out.status.code(), Some(2), "drifted plan: {out:?}");
    let text = stdout(&out);
    assert!(
        !text.contains("MII"),
        "base64 in a plan without --diff:\n{text}"
    );
    snapshot("plan_drifted.txt", &normalize(&lab, &text));

    // --diff adds the raw lines of the certificate file.
    let out = regboot(&inv, &["plan", "--diff"]);
    let text = stdout(&out);
    assert!(
        text.contains("      +MII"),
        "no raw certificate diff:\n{text}"
    );
}

/// Each host says when it starts connecting, which change it is making, and when it is done,
/// on timestamped lines ("12:34:56 host1: registry image: load ...").
fn assert_progress(stderr: &str) {
    let events: Vec<(&str, &str)> = stderr
        .lines()
        .filter_map(|l| {
            let (clock, rest) = l.split_once(' ')?;
            let is_clock = clock.len() == 8 && clock.bytes().filter(|b| *b == b':').count() == 2;
            rest.split_once(": ").filter(|_| is_clock)
        })
        .collect();
    for host in ["host1", "host2", "host3"] {
        let said: Vec<&str> = events
            .iter()
            .filter(|(h, _)| *h == host)
            .map(|(_, w)| *w)
            .collect();
        assert_eq!(said.first(), Some(&"connecting"), "{host}:\n{stderr}");
        assert!(said.contains(&"reading its state"), "{host}:\n{stderr}");
        assert!(
            said.iter()
                .any(|w| w.starts_with("CA in docker certs.d: write "))
        );
        assert!(
            said.last().unwrap().starts_with("done ("),
            "{host}:\n{stderr}"
        );
    }
    assert!(
        events
            .iter()
            .any(|(h, w)| *h == "host1" && w.starts_with("registry image: load ")),
        "{stderr}"
    );
    // Hosts wait for each other only where a step has something to do: the k3s roll (no k3s
    // here) holds no agent back, so the agents are through their CA steps while the registry
    // host still installs nginx (apt-get: seconds).
    let at = |host: &str, what: &str| {
        (events.iter())
            .position(|(h, w)| *h == host && w.starts_with(what))
            .unwrap_or_else(|| panic!("no {host}: {what}... in:\n{stderr}"))
    };
    let nginx_in = at("host1", "registry front: write /etc/nginx/nginx.conf");
    for agent in ["host2", "host3"] {
        assert!(
            at(agent, "CA in the OS trust store: ") < nginx_in,
            "{agent} waited for host1's nginx:\n{stderr}"
        );
    }
}

/// A certificate for the registry's name that regboot's CA did not sign.
fn foreign_leaf() -> String {
    let mut params = rcgen::CertificateParams::new(vec!["registry.lab".to_string()]).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "registry.lab");
    let key = rcgen::KeyPair::generate().unwrap();
    params.self_signed(&key).unwrap().pem()
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Compare `actual` with `tests/snapshots/NAME`, or write it there under `REGBOOT_BLESS=1`.
fn snapshot(name: &str, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/snapshots")
        .join(name);
    if std::env::var_os("REGBOOT_BLESS").is_some() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (REGBOOT_BLESS=1 writes it)", path.display()));
    assert!(
        actual == expected,
        "{name} differs from {}; got:\n{actual}",
        path.display()
    );
}

/// The output with what differs from run to run replaced: the lab's network, the CA's name,
/// serials, dates, fingerprints and the seconds column.
fn normalize(lab: &TestLab, text: &str) -> String {
    let address = &lab.host("host1").address;
    let net = &address[..address.rfind('.').unwrap()];
    text.replace(net, "NET")
        .lines()
        .map(normalize_line)
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

fn normalize_line(line: &str) -> String {
    let mut line = line.to_string();
    if let Some(at) = line.find("regboot CA ") {
        let id = at + "regboot CA ".len();
        line.replace_range(id..(id + 8).min(line.len()), "ID");
    }
    for field in ["serial", "not before", "not after", "SHA-256"] {
        // "  serial      0A:..", also "- serial" and "+ serial".
        let t = line.trim_start();
        let body = t.strip_prefix("- ").or(t.strip_prefix("+ ")).unwrap_or(t);
        if body.starts_with(&format!("{field:<11} ")) {
            let keep = line.len() - body.len() + 12;
            line.replace_range(keep.., "*");
        }
    }
    // The summary table: "host1   10        0       0      0.4".
    let cols: Vec<&str> = line.split_whitespace().collect();
    if cols.len() == 5 && cols[0].starts_with("host") && cols[4].parse::<f64>().is_ok() {
        line = format!("{} *", line.trim_end_matches(|c: char| c != ' ').trim_end());
    }
    line
}
