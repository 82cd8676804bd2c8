//! `regboot ui` against the lab, in a real browser: two registry replicas, one of which has
//! lost its shared storage (an empty file system mounted over data_dir, as when an NFS mount
//! is missing on one host); an image pushed to the other. Headless chromium loads the printed
//! URL, the page's script fetches the catalog (read through the SSH connections), and the
//! rendered DOM shows the repository with its digest, held by host1 and marked missing on
//! host2.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::cli::run_json;
use crate::support::lab::TestLab;
use crate::support::ui::Ui;

const DATA_DIR: &str = "/srv/regboot-shared/registry";
const IMAGE: &str = "registry.lab:5000/lab/ui:one";

#[test]
fn the_page_shows_each_image_and_the_replica_that_lacks_it() {
    let start = Instant::now();
    let lab = TestLab::up("ui", 2);
    let inv = lab.lab.inventory_path.clone();
    let text = std::fs::read_to_string(&inv)
        .unwrap()
        .replacen("roles: [agent]", "roles: [registry]", 1)
        .replace(
            "  users:\n",
            &format!(
                "  data_dir: {DATA_DIR}\n  storage:\n    driver: filesystem\n    shared: true\n  users:\n"
            ),
        );
    assert_eq!(text.matches("roles: [registry]").count(), 2, "{text}");
    std::fs::write(&inv, text).unwrap();
    let (code, report) = run_json(&inv, &["apply"]);
    assert_eq!(code, 0, "apply: {report:#}");
    eprintln!("lab up and applied: {:.0?}", start.elapsed());

    // host2's registry restarts on an empty file system instead of the shared one.
    lab.root_script(
        "host2",
        &format!(
            "mount -t tmpfs -o size=16m lost-nfs {DATA_DIR} && docker restart regboot-registry >/dev/null"
        ),
    );
    let password = std::fs::read_to_string(lab.lab.dir.join("registry-password")).unwrap();
    let digest = lab.ssh_ok(
        lab.host("host1"),
        &format!(
            "export DOCKER_CONFIG=$(mktemp -d) && echo '{}' | docker login registry.lab:5000 -u lab --password-stdin >/dev/null \
             && docker tag {image} {IMAGE} && docker push -q {IMAGE} >/dev/null && rm -rf \"$DOCKER_CONFIG\" \
             && docker image inspect --format '{{{{range .RepoDigests}}}}{{{{println .}}}}{{{{end}}}}' {IMAGE} \
             | sed -n 's|^registry.lab:5000/lab/ui@||p'",
            password.trim(),
            image = regboot::lab::REGISTRY_IMAGE,
        ),
    );
    assert!(digest.starts_with("sha256:"), "{digest:?}");
    wait_until_host2_answers(&inv);

    let ui = Ui::start(&inv);
    assert!(ui.url.starts_with("http://127.0.0.1:"), "{}", ui.url);
    let shown = Instant::now();
    let dom = rendered_dom(&ui.url, lab.lab.dir.as_path());
    eprintln!(
        "the page rendered in chromium in {:.1?}; the whole test took {:.0?}",
        shown.elapsed(),
        start.elapsed()
    );

    assert!(dom.contains("the replicas do NOT agree"), "{dom}");
    let row = dom
        .split("<tr")
        .find(|r| r.contains("<td>lab/ui</td>"))
        .unwrap_or_else(|| panic!("no row for lab/ui in\n{dom}"));
    for part in [
        "<td>one</td>",
        &format!("<td class=\"digest\">{digest}</td>"),
        "<td class=\"held\" data-host=\"host1\">",
        "<td class=\"missing\" data-host=\"host2\">missing</td>",
    ] {
        assert!(row.contains(part), "{part} not in the row {row}");
    }
    assert!(row.starts_with(" class=\"partial\""), "{row}");
}

/// host2's restarted registry answers (`regboot catalog` reads it without an error) and, as
/// set up, lacks the image host1 serves.
fn wait_until_host2_answers(inv: &Path) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, report) = run_json(inv, &["catalog"]);
        let answered = report["replicas"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["error"].is_null());
        if answered {
            let differences = report["differences"].to_string();
            assert!(
                differences.contains("host2: missing lab/ui:one@"),
                "{report:#}"
            );
            return;
        }
        assert!(
            Instant::now() < deadline,
            "a replica did not answer: {report:#}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// The page's DOM once its script has run, as headless chromium renders `url`. Chromium gets
/// a fresh profile in `dir`, resolves no names and sends anything not on loopback to a
/// closed local port, so it dials nothing but the page; it runs in its own process group,
/// which is killed when it is done or after two minutes.
fn rendered_dom(url: &str, dir: &Path) -> String {
    let (dom, log) = (dir.join("dom.html"), dir.join("chromium.log"));
    let mut child = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-default-apps",
            "--disable-extensions",
            "--proxy-server=http://127.0.0.1:9",
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
            "--virtual-time-budget=30000",
            "--dump-dom",
        ])
        .arg(format!(
            "--user-data-dir={}",
            dir.join("chromium-profile").display()
        ))
        .arg(url)
        .stdout(std::fs::File::create(&dom).unwrap())
        .stderr(std::fs::File::create(&log).unwrap())
        .process_group(0)
        .spawn()
        .expect("start chromium (scripts/install-deps.sh installs it)");
    let group = child.id() as i32;
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        match child.try_wait().unwrap() {
            Some(status) => break Some(status),
            None if Instant::now() > deadline => break None,
            None => std::thread::sleep(Duration::from_millis(100)),
        }
    };
    // SAFETY: kill(2) on the process group this test started: chromium's helpers too.
    unsafe { libc::kill(-group, libc::SIGKILL) };
    let _ = child.wait();
    let dom = std::fs::read_to_string(&dom).unwrap();
    assert!(
        dom.contains("</html>"),
        "chromium rendered nothing (exit: {status:?}):\n{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    dom
}
