//! `regboot reset` on the HA lab: a load balancer (nginx, keepalived and curl installed by
//! apply, then purged), a registry replica on S3 and an agent are, under /etc and
//! /usr/local/share/ca-certificates and in their containers, as they were before apply.

use std::process::Output;

use crate::support::lab::TestLab;
use regboot::lab::Profile;

/// Besides the paths (`TestLab::fingerprint`): the containers and the lb packages' commands.
const FINGERPRINT: &str = r#"echo containers:; docker ps -a --format '{{.Names}} {{.Image}}' | LC_ALL=C sort
echo commands:; for c in nginx keepalived curl; do command -v $c || echo "no $c"; done
"#;

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
    let fresh: Vec<String> = hosts
        .iter()
        .map(|h| lab.fingerprint(h, FINGERPRINT))
        .collect();
    ok(&lab.regboot_s3(&["apply"]));
    assert!(
        lab.fingerprint("host1", FINGERPRINT)
            .contains("/usr/sbin/nginx"),
        "apply installed nginx"
    );
    ok(&lab.regboot_s3(&["reset", "--yes"]));
    for (host, before) in hosts.iter().zip(&fresh) {
        let now = lab.fingerprint(host, FINGERPRINT);
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
