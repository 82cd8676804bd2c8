//! `registry.login_agents` against the lab: the agent's root pulls without `docker login`
//! (its /root/.docker/config.json, 0600, holds the listed user's credentials); removing that
//! user from the inventory removes it from htpasswd and from the agent's config.

use crate::support::cli::{regboot_env, run_json};
use crate::support::lab::TestLab;

#[test]
fn agents_pull_without_login_until_the_user_is_removed() {
    let lab = TestLab::up("login", 2);
    let inv = lab.lab.inventory_path.clone();
    let original = std::fs::read_to_string(&inv).unwrap();
    let with_user = original.replace(
        "  users:\n",
        "  login_agents: [puller]\n  users:\n    - name: puller\n      password_env: PULLER_PW\n",
    );
    assert_ne!(with_user, original);
    std::fs::write(&inv, &with_user).unwrap();
    let env = vec![("PULLER_PW".to_string(), "pull-secret-1".to_string())];
    let out = regboot_env(&inv, &["apply", "-o", "json"], &env);
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let agent = lab.host("host2");
    assert_eq!(
        lab.ssh_ok(agent, "sudo -n stat -c %a /root/.docker/config.json"),
        "600"
    );
    // Something to pull: the registry image, pushed from host1 with a temporary login.
    let password = std::fs::read_to_string(lab.lab.dir.join("registry-password")).unwrap();
    lab.ssh_ok(
        lab.host("host1"),
        &format!(
            "export DOCKER_CONFIG=$(mktemp -d) && echo '{}' | docker login registry.lab:5000 -u lab --password-stdin >/dev/null \
             && img=$(docker image ls --format '{{{{.Repository}}}}:{{{{.Tag}}}}' | grep registry | head -n 1) \
             && docker tag \"$img\" registry.lab:5000/lab/copy:one && docker push -q registry.lab:5000/lab/copy:one >/dev/null \
             && rm -rf \"$DOCKER_CONFIG\"",
            password.trim()
        ),
    );
    lab.ssh_ok(
        agent,
        "sudo -n docker pull -q registry.lab:5000/lab/copy:one >/dev/null",
    );

    // The user leaves the inventory: gone from htpasswd and from the agent's config.
    std::fs::write(&inv, &original).unwrap();
    let (code, report) = run_json(&inv, &["apply"]);
    assert_eq!(code, 0, "{report:#}");
    let config = lab.ssh_ok(agent, "sudo -n cat /root/.docker/config.json");
    assert!(!config.contains("registry.lab:5000"), "{config}");
    let htpasswd = lab.ssh_ok(
        lab.host("host1"),
        "sudo -n cat /etc/regboot/registry/auth/htpasswd",
    );
    assert!(!htpasswd.contains("puller:"), "{htpasswd}");
    let out = lab.ssh(
        agent,
        "sudo -n docker image rm registry.lab:5000/lab/copy:one >/dev/null; sudo -n docker pull registry.lab:5000/lab/copy:one",
    );
    assert!(!out.status.success(), "pulled without credentials");
}
