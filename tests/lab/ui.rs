//! `regboot ui` against the lab, in a real browser: two registry replicas, one of which has
//! lost its shared storage (an empty file system mounted over data_dir, as when an NFS mount
//! is missing on one host); an image pushed to the other. Headless chromium loads the printed
//! URL, the page's script fetches the catalog (read through the SSH connections), and the
//! rendered DOM shows the repository with its digest, held by host1 and marked missing on
//! host2. A second lab drives the page as an operator would: filter, sort by date, a tag's
//! details against `docker manifest inspect`, the pull command copied, a tag deleted, the trust
//! view marking a host that lost its CA copy, and the time the page takes to list 1,000 tags.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::support::cli::run_json;
use crate::support::lab::TestLab;
use crate::support::ui::{Browser, Ui};

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
        ">one</button></td>",
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

/// The page's DOM once its script has listed the images, as headless chromium renders `url`.
fn rendered_dom(url: &str, dir: &Path) -> String {
    let mut browser = Browser::start(dir);
    browser.open(url);
    browser.wait("document.querySelector('#rows td.digest')");
    browser
        .eval("document.documentElement.outerHTML")
        .as_str()
        .unwrap()
        .to_string()
}

/// One registry (host1) and a docker client (host2). Screenshots of each view go to a
/// directory the test prints and keeps.
#[test]
fn the_page_filters_opens_copies_deletes_and_marks_trust() {
    let start = Instant::now();
    let shots = tempfile::Builder::new()
        .prefix("regboot-ui-lab-")
        .tempdir()
        .unwrap()
        .keep();
    eprintln!("screenshots and chromium's log go to {}", shots.display());
    let lab = TestLab::up("ui-drive", 2);
    let inv = lab.lab.inventory_path.clone();
    let (code, report) = run_json(&inv, &["apply"]);
    assert_eq!(code, 0, "apply: {report:#}");
    eprintln!("lab up and applied: {:.0?}", start.elapsed());
    let password = std::fs::read_to_string(lab.lab.dir.join("registry-password")).unwrap();
    let login = format!(
        "export DOCKER_CONFIG=$(mktemp -d) && echo '{}' | docker login registry.lab:5000 -u lab --password-stdin >/dev/null",
        password.trim()
    );
    // lab/ui:one and lab/ui:two on one digest, lab/other:x the same image in another repository.
    let manifest = lab.ssh_ok(
        lab.host("host1"),
        &format!(
            "{login} && for ref in lab/ui:one lab/ui:two lab/other:x; do docker tag {image} registry.lab:5000/$ref \
             && docker push -q registry.lab:5000/$ref >/dev/null || exit 1; done \
             && docker manifest inspect registry.lab:5000/lab/ui:one; rc=$?; rm -rf \"$DOCKER_CONFIG\"; exit $rc",
            image = regboot::lab::REGISTRY_IMAGE,
        ),
    );
    let manifest: serde_json::Value = serde_json::from_str(&manifest).unwrap();

    let ui = Ui::start(&inv);
    let mut browser = Browser::start(&shots);
    browser.allow_clipboard(&ui.origin());
    browser.open(&ui.url);
    browser.wait("document.querySelectorAll('#rows tr[data-ref]').length === 3");
    browser.screenshot(&shots.join("1-catalog.png"));
    let shown = |b: &mut Browser| {
        b.eval("[...document.querySelectorAll('#rows tr[data-ref]')].map((r) => r.dataset.ref)")
    };

    // Filter.
    let filter = |b: &mut Browser, text: &str| {
        b.eval(&format!(
            "(() => {{ const f = document.getElementById('filter'); f.value = {text:?}; \
             f.dispatchEvent(new Event('input')); }})()"
        ));
    };
    filter(&mut browser, "two");
    assert_eq!(shown(&mut browser), serde_json::json!(["lab/ui:two"]));
    filter(&mut browser, "lab/ui");
    assert_eq!(
        shown(&mut browser),
        serde_json::json!(["lab/ui:one", "lab/ui:two"])
    );
    browser.screenshot(&shots.join("2-filtered.png"));

    // Sorting by date reads the created dates (once per digest) and shows them.
    browser.eval(
        "(() => { const s = document.getElementById('sort'); s.value = 'date'; \
         s.dispatchEvent(new Event('change')); })()",
    );
    let created = browser.wait("document.querySelector('#rows td.created').textContent");
    assert!(created.as_str().unwrap().starts_with("20"), "{created}");

    // A tag's details: layers (or, for an index, platforms) as docker reads them.
    browser.eval("document.querySelector('tr[data-ref=\"lab/ui:one\"] button.open').click()");
    browser.wait("document.querySelector('#details-images .image')");
    browser.screenshot(&shots.join("3-details.png"));
    if let Some(listed) = manifest["manifests"].as_array() {
        let want: Vec<String> = listed
            .iter()
            .map(|m| {
                let p = &m["platform"];
                [&p["os"], &p["architecture"], &p["variant"]]
                    .iter()
                    .filter_map(|v| v.as_str())
                    .collect::<Vec<_>>()
                    .join("/")
            })
            .collect();
        let got = browser
            .eval("[...document.querySelectorAll('#details-images .image')].map((i) => i.dataset.platform)");
        assert_eq!(got, serde_json::json!(want), "{manifest:#}");
    } else {
        let want: Vec<serde_json::Value> = manifest["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| serde_json::json!([l["digest"], l["size"].to_string()]))
            .collect();
        assert!(!want.is_empty(), "{manifest:#}");
        let got = browser.eval(
            "[...document.querySelectorAll('#details-images tr.layer')].map((r) => [r.dataset.digest, r.dataset.size])",
        );
        assert_eq!(got, serde_json::json!(want), "{manifest:#}");
        let platform =
            browser.eval("document.querySelector('#details-images .image').dataset.platform");
        let want = lab.ssh_ok(
            lab.host("host1"),
            &format!(
                "docker image inspect --format '{{{{.Os}}}}/{{{{.Architecture}}}}{{{{with .Variant}}}}/{{{{.}}}}{{{{end}}}}' {}",
                regboot::lab::REGISTRY_IMAGE
            ),
        );
        assert_eq!(platform, serde_json::json!(want));
    }

    // Created date and labels as docker reads the image's config.
    let config = lab.ssh_ok(
        lab.host("host1"),
        &format!(
            "docker image inspect --format '{{{{json .Created}}}} {{{{json .Config.Labels}}}}' {}",
            regboot::lab::REGISTRY_IMAGE
        ),
    );
    let (created, labels) = config.split_once(' ').unwrap();
    let labels: serde_json::Value = serde_json::from_str(labels).unwrap();
    assert!(!labels.as_object().unwrap().is_empty(), "{config}");
    let shown_labels = browser.eval(
        "Object.fromEntries([...document.querySelectorAll('#details-images tr.label')]\
         .map((r) => [r.cells[0].textContent, r.cells[1].textContent]))",
    );
    assert_eq!(shown_labels, labels);
    assert_eq!(
        browser.eval("document.querySelector('#details-images dd.created').textContent"),
        serde_json::from_str::<serde_json::Value>(created).unwrap()
    );

    // The pull command, copied.
    browser.eval("document.querySelector('button.copy').click()");
    browser.wait("document.querySelector('button.copy').textContent === 'copied'");
    assert_eq!(
        browser.eval("navigator.clipboard.readText()"),
        "docker pull registry.lab:5000/lab/ui:one"
    );

    // Delete: the confirmation names the digest and the other tag that goes with it.
    let digest =
        browser.eval("document.querySelector('tr[data-ref=\"lab/ui:one\"] td.digest').textContent");
    browser.eval("document.getElementById('delete').click()");
    let confirm = browser.wait(
        "document.getElementById('confirm').open && document.getElementById('confirm').innerText",
    );
    let confirm = confirm.as_str().unwrap();
    assert!(confirm.contains(digest.as_str().unwrap()), "{confirm}");
    assert!(confirm.contains("lab/ui:two"), "{confirm}");
    assert!(!confirm.contains("lab/other"), "{confirm}");
    browser.screenshot(&shots.join("4-confirm.png"));
    browser.eval("document.getElementById('confirm-delete').click()");
    let notice = browser.wait("document.getElementById('notice').textContent.includes('gc') && document.getElementById('notice').textContent");
    assert!(notice.as_str().unwrap().contains("regboot gc"), "{notice}");
    browser.wait("document.getElementById('status').className === 'agree'");
    browser.screenshot(&shots.join("5-deleted.png"));
    let (_, report) = run_json(&inv, &["catalog"]);
    let refs: Vec<String> = report["replicas"][0]["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            format!(
                "{}:{}",
                i["repository"].as_str().unwrap(),
                i["tag"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(refs, ["lab/other:x"], "{report:#}");

    // Trust: host2 loses its docker copy of the CA.
    browser.open(&format!("{}trust", ui.url));
    browser.wait(
        "document.querySelector('#rows tr[data-name=\"ca@host2\"]')?.dataset.status === 'valid'",
    );
    lab.root_script("host2", "rm -f /etc/docker/certs.d/*/ca.crt");
    browser.eval("document.getElementById('refresh').click()");
    let status = browser.wait(
        "document.querySelector('#rows tr[data-name=\"ca@host2\"]')?.dataset.status !== 'valid' \
         && document.getElementById('status').textContent.includes('attention') \
         && document.querySelector('#rows tr[data-name=\"ca@host2\"]').innerText",
    );
    let status = status.as_str().unwrap();
    assert!(status.contains("/etc/docker/certs.d/"), "{status}");
    assert_eq!(
        browser.eval("document.querySelector('#rows tr[data-name=\"ca@host1\"]').dataset.status"),
        "valid"
    );
    assert_eq!(
        browser.eval("document.querySelector('#rows tr[data-name=\"ca@host2\"]').className"),
        "marked"
    );
    browser.screenshot(&shots.join("6-trust.png"));
}

/// How long the page takes to list 1,001 tags of one registry: 1,000 tags of one tiny image
/// by manifest PUT (one curl, one connection). The registry has no login here: with one, every
/// request pays htpasswd's bcrypt, which this measures apart from the page's own cost.
#[test]
fn the_page_lists_a_thousand_tags() {
    let shots = tempfile::Builder::new()
        .prefix("regboot-ui-1000-")
        .tempdir()
        .unwrap()
        .keep();
    eprintln!("screenshots and chromium's log go to {}", shots.display());
    let lab = TestLab::up("ui-1000", 1);
    let inv = lab.lab.inventory_path.clone();
    let text = std::fs::read_to_string(&inv).unwrap();
    let users = text.find("  users:\n").unwrap();
    let end = users + text[users..].find("\n\n").unwrap() + 1;
    std::fs::write(&inv, format!("{}{}", &text[..users], &text[end..])).unwrap();
    let (code, report) = run_json(&inv, &["apply"]);
    assert_eq!(code, 0, "apply: {report:#}");
    lab.ssh_ok(
        lab.host("host1"),
        &format!(
            "docker tag {image} registry.lab:5000/lab/many:x && docker push -q registry.lab:5000/lab/many:x >/dev/null",
            image = regboot::lab::REGISTRY_IMAGE,
        ),
    );
    let work = tempfile::tempdir().unwrap();
    let (head, body) = (work.path().join("head"), work.path().join("manifest"));
    let curl = |args: &[&str]| {
        let status = std::process::Command::new("curl")
            .args(["-sf", "--cacert"])
            .arg(inv.parent().unwrap().join(".regboot/ca.crt"))
            .arg("--resolve")
            .arg(format!("registry.lab:5000:{}", lab.host("host1").address))
            .args(args)
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "curl {args:?}");
    };
    curl(&[
        "-H",
        "Accept: application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json",
        "-D",
        head.to_str().unwrap(),
        "-o",
        body.to_str().unwrap(),
        "https://registry.lab:5000/v2/lab/many/manifests/x",
    ]);
    let head = std::fs::read_to_string(&head).unwrap();
    let media_type = head
        .lines()
        .find_map(|l| {
            l.to_lowercase()
                .strip_prefix("content-type:")
                .map(|t| t.trim().to_string())
        })
        .unwrap();
    let put = Instant::now();
    curl(&[
        "-X",
        "PUT",
        "-H",
        &format!("Content-Type: {media_type}"),
        "--data-binary",
        &format!("@{}", body.display()),
        "https://registry.lab:5000/v2/lab/many/manifests/t[0001-1000]",
    ]);
    let put = put.elapsed();

    let cli = Instant::now();
    let (_, report) = run_json(&inv, &["catalog"]);
    let cli = cli.elapsed();
    assert_eq!(
        report["replicas"][0]["images"].as_array().unwrap().len(),
        1001,
        "{report:#}"
    );
    let ui = Ui::start(&inv);
    let mut browser = Browser::start(&shots);
    let opened = Instant::now();
    browser.open(&ui.url);
    browser.wait_for(
        "document.getElementById('range').textContent === '1–100 of 1001'",
        Duration::from_secs(600),
    );
    let page = opened.elapsed();
    browser.screenshot(&shots.join("1001-tags.png"));
    assert_eq!(
        browser.eval("document.querySelectorAll('#rows tr[data-ref]').length"),
        100
    );
    let filtered = Instant::now();
    browser.eval(
        "(() => { const f = document.getElementById('filter'); f.value = 't0999'; \
         f.dispatchEvent(new Event('input')); })()",
    );
    let filtered = filtered.elapsed();
    assert_eq!(
        browser
            .eval("[...document.querySelectorAll('#rows tr[data-ref]')].map((r) => r.dataset.ref)"),
        serde_json::json!(["lab/many:t0999"])
    );
    eprintln!(
        "1,001 tags: the page listed them {page:.1?} after opening (`regboot catalog`: {cli:.1?}); \
         filtering them took {filtered:.0?}; 1,000 manifest PUTs took {put:.1?}"
    );
}
