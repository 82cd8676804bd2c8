//! The smoke test and users end to end against one lab: the smoke test logs in with its own
//! credential when every user has only a password_hash, verify never writes the state
//! directory, leftovers of an interrupted smoke test are removed, user changes apply without
//! restarting the registry, `smoke_test: false` makes every run say it did not verify, and the
//! smoke test goes through dockerd's API where the login user may open its socket.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::SystemTime;

use crate::support::cli::{assert_smoke_ok, json_of, regboot, regboot_env, run_json};
use crate::support::lab::TestLab;

const REPO: &str = "registry.lab:5000/regboot-smoke";

/// The state directory's files with their modification times.
fn state_files(dir: &Path) -> BTreeMap<String, SystemTime> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let name = e.file_name().to_string_lossy().into_owned();
            (name, e.metadata().unwrap().modified().unwrap())
        })
        .collect()
}

/// When the registry container last started.
fn registry_started(lab: &TestLab) -> String {
    lab.ssh_ok(
        lab.host("host1"),
        "sudo -n docker inspect -f '{{.State.StartedAt}}' regboot-registry",
    )
}

/// HTTP status of GET /v2/ as `user:password`, from this machine, trusting only the CA.
fn status_as(lab: &TestLab, ca: &Path, user_password: &str) -> String {
    let out = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "--cacert"])
        .arg(ca)
        .arg("--resolve")
        .arg(format!("registry.lab:5000:{}", lab.host("host1").address))
        .arg("-u")
        .arg(user_password)
        .arg("https://registry.lab:5000/v2/")
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// The lab's inventory with its users replaced by `users` (YAML list items, indented by
/// four). They end at the blank line before `tls:`.
fn with_users(original: &str, users: &str) -> String {
    let start = original
        .find("  users:\n")
        .expect("the lab inventory has users");
    let end = start
        + original[start..]
            .find("\n\n")
            .expect("a blank line after users")
        + 1;
    format!(
        "{}  users:\n{users}{}",
        &original[..start],
        &original[end..]
    )
}

/// An empty image tagged `image` on `host` (`docker import` of an empty tar).
fn fake_image(lab: &TestLab, host: &str, image: &str) {
    lab.ssh_ok(
        lab.host(host),
        &format!("tar cf - -T /dev/null | sudo -n docker import - {image} >/dev/null"),
    );
}

/// The docker CLI's subcommands run on `host` since [`watch_docker_cli`], one a line.
fn docker_cli_runs(lab: &TestLab, host: &str) -> Vec<String> {
    let log = lab.root_script(
        host,
        "cat /run/docker-cli.log 2>/dev/null; : > /run/docker-cli.log",
    );
    log.lines().map(str::to_string).collect()
}

/// A docker CLI that notes each start's subcommand, ahead of the real one on every PATH.
fn watch_docker_cli(lab: &TestLab, on: bool) {
    let script = if on {
        "printf '#!/bin/sh\necho \"$1\" >> /run/docker-cli.log\nexec /usr/bin/docker \"$@\"\n' \
         > /usr/local/bin/docker && chmod 755 /usr/local/bin/docker && : > /run/docker-cli.log"
    } else {
        "rm -f /usr/local/bin/docker /run/docker-cli.log"
    };
    for host in ["host1", "host2", "host3"] {
        lab.root_script(host, script);
    }
}

/// The smoke test loads, pushes, pulls and removes through dockerd's API where the login user
/// may open its socket (root): no docker CLI starts for them on any host. host2, the pusher,
/// logs in as ops (sudo, outside the docker group): there the commands run, and -v says so once.
fn api_or_commands(lab: &TestLab, inv: &Path, original: &str) {
    let cli_work = ["load", "push", "pull", "rmi"];
    watch_docker_cli(lab, true);
    let as_root = original.replacen("    user: ops\n", "", 1);
    assert_ne!(as_root, original, "host2 logs in as ops");
    std::fs::write(inv, &as_root).unwrap();
    let (code, verify) = run_json(inv, &["verify"]);
    assert_eq!(code, 0, "{verify:#}");
    assert_smoke_ok(&verify, 3);
    assert_eq!(verify["smoke"][0]["host"], "host2", "{verify:#}");
    for host in ["host1", "host2", "host3"] {
        let runs = docker_cli_runs(lab, host);
        assert!(
            !runs.iter().any(|r| cli_work.contains(&r.as_str())),
            "{host} started the docker CLI for the smoke test: {runs:?}"
        );
    }

    std::fs::write(inv, original).unwrap();
    let out = regboot(inv, &["verify", "-v", "-o", "json"]);
    let (code, verify) = json_of(&["verify"], &out);
    let runs = docker_cli_runs(lab, "host2");
    watch_docker_cli(lab, false);
    assert_eq!(code, 0, "{verify:#}");
    assert_smoke_ok(&verify, 3);
    assert!(
        runs.iter().any(|r| r == "load") && runs.iter().any(|r| r == "push"),
        "host2 pushed without the docker CLI: {runs:?}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let said: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("the smoke test runs `docker"))
        .collect();
    assert_eq!(said.len(), 1, "{stderr}");
    assert!(
        said[0].contains("host2: the smoke test runs `docker load` and `docker push` instead"),
        "{stderr}"
    );
}

#[test]
fn smoke_credential_leftovers_and_user_changes() {
    let lab = TestLab::up("smoke", 3);
    let inv = lab.lab.inventory_path.clone();
    let state = inv.parent().unwrap().join(".regboot");
    let ca = state.join("ca.crt");
    let original = std::fs::read_to_string(&inv).unwrap();
    let lab_password = std::fs::read_to_string(&lab.lab.password_path).unwrap();
    let lab_password = lab_password.trim();

    // Before any apply, verify fails clearly and leaves no state directory behind.
    let out = regboot(&inv, &["verify"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("run `regboot apply` first"), "{stderr}");
    assert!(!state.exists(), "verify created {}", state.display());

    // Every user has only a password_hash: the smoke test still logs in, as its own user.
    let lab_user = format!(
        "    - name: lab\n      password_hash: \"{}\"\n",
        bcrypt::hash(lab_password, 4).unwrap()
    );
    let hashed = with_users(&original, &lab_user);
    std::fs::write(&inv, &hashed).unwrap();
    let out = regboot(&inv, &["apply", "-v", "--diff"]);
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains(": push ok") && !text.contains("NOT VERIFIED"),
        "{text}"
    );
    let password = std::fs::read_to_string(state.join("smoke-password")).unwrap();
    assert!(
        !text.contains(password.trim()),
        "apply printed the smoke password"
    );
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(state.join("smoke-password"))
            .unwrap()
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    assert_eq!(
        status_as(&lab, &ca, &format!("regboot-smoke:{}", password.trim())),
        "200"
    );
    let plan = regboot(&inv, &["plan"]);
    assert_eq!(plan.status.code(), Some(0), "a converged plan");
    assert!(!String::from_utf8_lossy(&plan.stdout).contains(password.trim()));

    // Leftovers of an interrupted smoke test on the pusher (an agent, host2) and a puller
    // (host3): an image tag of the smoke repository and, where the pulls run commands (host2
    // logs in as ops, who may not open the runtimes' sockets), a temporary DOCKER_CONFIG dir
    // and ctr's image in its namespace with its marker; where they go through the runtimes'
    // APIs (root on host3: dockerd's, containerd's CRI), a tag in the CRI's namespace. verify
    // removes them, and does not touch the state directory.
    for host in ["host2", "host3"] {
        fake_image(&lab, host, &format!("{REPO}:leftover"));
        let (ns, commands) = match host {
            "host2" => (
                "regboot",
                "sudo -n mkdir /run/regboot-smoke.left && sudo -n touch /run/regboot-smoke-ctr && ",
            ),
            _ => ("k8s.io", ""),
        };
        lab.ssh_ok(
            lab.host(host),
            &format!(
                "{commands}sudo -n docker save {REPO}:leftover | sudo -n ctr -n {ns} images import - >/dev/null"
            ),
        );
    }
    let before = state_files(&state);
    let (code, verify) = run_json(&inv, &["verify"]);
    assert_eq!(code, 0, "{verify:#}");
    assert_smoke_ok(&verify, 3);
    assert_eq!(
        state_files(&state),
        before,
        "verify changed the state directory"
    );
    for host in ["host1", "host2", "host3"] {
        let left = lab.ssh_ok(
            lab.host(host),
            &format!(
                "sudo -n docker image ls -q {REPO}; sudo -n ctr -n regboot images ls -q 2>/dev/null; \
                 sudo -n ctr -n k8s.io images ls -q | grep -F {REPO}; \
                 ls -d /run/regboot-smoke* 2>/dev/null || true"
            ),
        );
        assert_eq!(left, "", "{host} keeps smoke leftovers");
    }

    api_or_commands(&lab, &inv, &hashed);

    // Registry hosts that lack the smoke user (set up by an older regboot): verify fails
    // and says what to do.
    lab.ssh_ok(
        lab.host("host1"),
        "sudo -n sed -i '/^regboot-smoke:/d' /etc/regboot/registry/auth/htpasswd",
    );
    let (code, verify) = run_json(&inv, &["verify"]);
    assert_eq!(code, 1, "{verify:#}");
    let push = &verify["smoke"][0];
    assert_eq!(
        (&push["action"], &push["ok"]),
        (&"push".into(), &false.into())
    );
    assert!(
        push["detail"]
            .as_str()
            .unwrap()
            .contains("run `regboot apply`"),
        "{push:#}"
    );

    // A new user (password_env): the registry is not restarted, the user logs in and pushes.
    let started = registry_started(&lab);
    let alice_password = "alice-pw-7f3c";
    let alice = "    - name: alice\n      password_env: ALICE_PW\n";
    std::fs::write(&inv, with_users(&original, &format!("{lab_user}{alice}"))).unwrap();
    let env = [("ALICE_PW".to_string(), alice_password.to_string())];
    let (code, added) = json_of(
        &["apply"],
        &regboot_env(&inv, &["apply", "-o", "json"], &env),
    );
    assert_eq!(code, 0, "{added:#}");
    assert_smoke_ok(&added, 3);
    assert_eq!(
        registry_started(&lab),
        started,
        "adding a user restarted it"
    );
    let pw_file = lab.lab.dir.join("alice-password");
    std::fs::write(&pw_file, alice_password).unwrap();
    fake_image(&lab, "host2", "registry.lab:5000/alice/probe:1");
    let push = lab.ssh_with_stdin(
        lab.host("host2"),
        "sudo -n sh -c 'export DOCKER_CONFIG=$(mktemp -d); trap \"rm -rf $DOCKER_CONFIG\" EXIT; \
         docker login -u alice --password-stdin registry.lab:5000 \
         && docker push registry.lab:5000/alice/probe:1'",
        Some(&pw_file),
    );
    assert!(
        push.status.success(),
        "alice's login and push: {}",
        String::from_utf8_lossy(&push.stderr)
    );
    assert_eq!(
        status_as(&lab, &ca, &format!("alice:{alice_password}")),
        "200"
    );

    // The user removed: 401 for them, still no restart.
    std::fs::write(&inv, &hashed).unwrap();
    let (code, removed) = run_json(&inv, &["apply"]);
    assert_eq!(code, 0, "{removed:#}");
    assert_eq!(
        registry_started(&lab),
        started,
        "removing a user restarted it"
    );
    assert_eq!(
        status_as(&lab, &ca, &format!("alice:{alice_password}")),
        "401"
    );

    // smoke_test: false is the only way to skip it, and every run then says so.
    std::fs::write(&inv, format!("{hashed}\nsmoke_test: false\n")).unwrap();
    let out = regboot(&inv, &["verify"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert_eq!(
        text.trim_end().lines().last(),
        Some("NOT VERIFIED: the smoke test did not run (smoke_test: false in the inventory)"),
        "{text}"
    );
    let (code, apply) = run_json(&inv, &["apply"]);
    assert_eq!(code, 0, "{apply:#}");
    assert_eq!(apply["smoke_skipped"], "smoke_test: false in the inventory");
}
