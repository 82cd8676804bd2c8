//! `regboot reset` on the HA lab: a load balancer (nginx, keepalived and curl installed by
//! apply, then purged), a registry replica on S3 and an agent are, under /etc and
//! /usr/local/share/ca-certificates and in their containers, as they were before apply.

use std::process::Output;

use crate::support::lab::TestLab;
use regboot::lab::Profile;

const FINGERPRINT: &str = r#"set -eu
find /etc /usr/local/share/ca-certificates -xdev -printf '%y %m %p -> %l\n' | LC_ALL=C sort
find /etc /usr/local/share/ca-certificates -xdev -type f -exec sha256sum {} + | LC_ALL=C sort -k2
echo containers:; docker ps -a --format '{{.Names}} {{.Image}}' | LC_ALL=C sort
echo commands:; for c in nginx keepalived curl; do command -v $c || echo "no $c"; done
"#;

fn fingerprint(lab: &TestLab, host: &str) -> String {
    lab.root_script(host, FINGERPRINT)
}

fn regboot(lab: &TestLab, args: &[&str]) -> Output {
    let env_file = lab.lab.s3_env.as_ref().expect("the HA lab writes s3.env");
    let text = std::fs::read_to_string(env_file).unwrap();
    let env: Vec<(String, String)> = text
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    crate::support::cli::regboot_env(&lab.lab.inventory_path, args, &env)
}

fn ok(out: &Output) {
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn reset_returns_an_ha_cluster_to_what_it_was() {
    let lab = TestLab::up_profile("rha", 8, Profile::Ha);
    let hosts = ["host1", "host3", "host6"];
    let fresh: Vec<String> = hosts.iter().map(|h| fingerprint(&lab, h)).collect();
    ok(&regboot(&lab, &["apply"]));
    assert!(
        fingerprint(&lab, "host1").contains("/usr/sbin/nginx"),
        "apply installed nginx"
    );
    ok(&regboot(&lab, &["reset", "--yes"]));
    for (host, before) in hosts.iter().zip(&fresh) {
        let now = fingerprint(&lab, host);
        let only = |x: &str, y: &str| -> Vec<String> {
            x.lines()
                .filter(|l| !y.lines().any(|m| m == *l))
                .map(String::from)
                .collect()
        };
        assert!(
            &now == before,
            "{host} differs from before apply:\nonly before:\n  {}\nonly after:\n  {}",
            only(before, &now).join("\n  "),
            only(&now, before).join("\n  ")
        );
    }
}
