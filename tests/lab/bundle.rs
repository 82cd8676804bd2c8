//! Air-gapped hosts (issue 31): the lab's hosts have no route out of the lab network (no
//! package mirror). A plan without a bundle names the packages each host lacks and changes
//! nothing; apply with the lab's bundle (`packages.bundle`) sets up the registry host's front
//! and an HA pair of lbs (nginx, keepalived, curl) from the bundle's files, the smoke test
//! passes through the VIP, a second plan is clean, and reset purges what was installed.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::support::cli::{self, regboot, run_json};
use crate::support::lab::TestLab;
use regboot::lab::{self, LabOptions};

/// How long the "no package source" answer may take (apt itself would wait minutes).
const CHECK_BOUND: Duration = Duration::from_secs(60);

/// The basic lab's inventory with host2 and host3 as lbs around `vip`, host4 an agent.
fn ha_inventory(text: &str, vip: &str) -> String {
    let mut out = String::new();
    let mut host = "";
    for line in text.lines() {
        if let Some(name) = line.trim().strip_prefix("- name: ") {
            host = if name == "host2" || name == "host3" {
                "lb"
            } else {
                ""
            };
        }
        match (host, line.trim()) {
            ("lb", "roles: [agent]") => out.push_str("    roles: [lb]\n"),
            _ => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    out.push_str(&format!(
        "\nha:\n  vip: {vip}\n  interface: eth0\n  virtual_router_id: 61\n"
    ));
    out
}

fn installed(lab: &TestLab, host: &str, package: &str) -> bool {
    lab.root_script(
        host,
        &format!("dpkg-query -W -f '${{db:Status-Abbrev}}' {package} 2>/dev/null || true"),
    )
    .starts_with("ii")
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).expect("write the inventory");
}

#[test]
fn air_gapped_fleet_installs_from_the_bundle() {
    let started = Instant::now();
    let bundle = lab::bundle::ensure(lab::Release::Bookworm).expect("the lab's bundle");
    eprintln!(
        "lab bundle ready in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let lab = TestLab::up_options(
        "bundle",
        LabOptions {
            hosts: 4,
            air_gapped: true,
            ..LabOptions::default()
        },
    );
    // The host's own first package source does not answer (apt's downloader, bounded).
    let reach = lab.root_script(
        "host1",
        "u=$(apt-get --print-uris update 2>/dev/null | sed -n \"s/^'\\([^']*InRelease\\)'.*/\\1/p\" | head -n1); \
         echo \"$u\"; timeout 10 /usr/lib/apt/apt-helper -o Acquire::Retries=0 download-file \"$u\" /tmp/r \
         >/dev/null 2>&1 && echo REACHED || echo unreachable",
    );
    assert!(
        reach.ends_with("unreachable") && reach.contains("InRelease"),
        "{reach}"
    );
    let vip = lab.lab.network.spare_address(0).unwrap().to_string();
    // Without the bundle every test lab's inventory names.
    let base = std::fs::read_to_string(&lab.lab.inventory_path)
        .unwrap()
        .replace(&lab::bundle::inventory_section(&bundle), "");
    assert!(!base.contains("packages:"), "{base}");
    let text = ha_inventory(&base, &vip);
    let without = lab.lab.dir.join("no-bundle.yml");
    write(&without, &text);
    let with = lab.lab.dir.join("bundle.yml");
    write(
        &with,
        &format!("{text}\npackages:\n  bundle: {}\n", bundle.display()),
    );

    // Without the bundle: each host that must install says so, naming the packages, and
    // nothing changes (not even regboot's manifest).
    let before: Vec<String> = ["host1", "host2"]
        .iter()
        .map(|h| lab.fingerprint(h, "ls /var/cache/regboot 2>&1 || true"))
        .collect();
    let t = Instant::now();
    for cmd in ["plan", "apply"] {
        let out = regboot(&without, &[cmd, "--limit", "host1,host2,host3"]);
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.status.code(), Some(1), "{cmd} without a bundle:\n{all}");
        for (host, pkgs) in [("host1", "nginx"), ("host2", "nginx, keepalived, curl")] {
            assert!(
                all.lines()
                    .any(|l| l.contains(host) && l.contains(&format!("must install {pkgs}"))),
                "{cmd} must name {host} and {pkgs}:\n{all}"
            );
        }
    }
    let elapsed = t.elapsed();
    eprintln!(
        "plan and apply without a bundle stopped in {:.1} s",
        elapsed.as_secs_f64()
    );
    assert!(elapsed < CHECK_BOUND * 2, "plan + apply took {elapsed:?}");
    for (h, was) in ["host1", "host2"].iter().zip(&before) {
        let now = lab.fingerprint(h, "ls /var/cache/regboot 2>&1 || true");
        assert_eq!(&now, was, "{h} changed without a bundle");
    }

    // With the bundle: a cold apply from the bundle's files only.
    let t = Instant::now();
    let (code, report) = run_json(&with, &["apply"]);
    eprintln!(
        "cold apply with the bundle: {:.1} s",
        t.elapsed().as_secs_f64()
    );
    assert_eq!(code, 0, "apply with the bundle: {report:#}");
    cli::assert_smoke_passed(&report);
    assert!(installed(&lab, "host1", "nginx"));
    for h in ["host2", "host3"] {
        for p in ["nginx", "keepalived", "curl"] {
            assert!(installed(&lab, h, p), "{p} on {h}");
        }
    }
    let holders: Vec<&str> = ["host2", "host3"]
        .into_iter()
        .filter(|h| {
            lab.root_script(h, "ip -4 -o addr show")
                .contains(&format!(" {vip}/"))
        })
        .collect();
    assert_eq!(holders.len(), 1, "one lb holds the VIP: {holders:?}");
    assert_eq!(
        lab.root_script("host1", "ls -A /var/cache/regboot 2>/dev/null || true"),
        "",
        "the bundle's files are removed once installed"
    );
    let out = regboot(&with, &["plan"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "a plan after apply finds nothing:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );

    // Reset purges what the bundle installed.
    let out = regboot(&with, &["reset", "--yes"]);
    assert!(
        out.status.success(),
        "reset: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!installed(&lab, "host1", "nginx"));
    for h in ["host2", "host3"] {
        for p in ["nginx", "keepalived", "curl"] {
            assert!(!installed(&lab, h, p), "{p} still on {h} after reset");
        }
    }
}
