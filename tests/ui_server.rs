//! `regboot ui` without a lab: every request without the printed token (or with a wrong one,
//! or another Host) is refused, the page itself answers with its security headers, and the
//! server listens on 127.0.0.1 and no other address. No request here reads the replicas.

mod support;

use support::ui::{Ui, get};

const INVENTORY: &str = "\
version: 1
hosts:
  - { name: reg1, address: 127.0.0.1, port: 1, roles: [registry] }
registry:
  hostname: registry.example.com
tls:
  mode: insecure
";

#[test]
fn only_the_token_opens_the_page_and_only_on_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let inventory = dir.path().join("inventory.yml");
    std::fs::write(&inventory, INVENTORY).unwrap();
    let ui = Ui::start(&inventory);
    let token = ui.token().to_string();
    assert_eq!(token.len(), 64, "{}", ui.url);
    assert!(token.bytes().all(|b| b.is_ascii_hexdigit()), "{}", ui.url);

    let (status, head, body) = ui.get(&format!("/{token}/"));
    assert_eq!(status, 200, "{head}");
    assert!(body.contains("<script src=\"app.js\""), "{body}");
    assert!(!body.contains(&token), "the page holds no secret");
    for header in [
        "content-security-policy: default-src 'none'; script-src 'self';",
        "x-content-type-options: nosniff",
        "referrer-policy: no-referrer",
        "cache-control: no-store",
    ] {
        assert!(head.contains(header), "{header} missing in\n{head}");
    }
    for path in ["app.js", "style.css"] {
        assert_eq!(ui.get(&format!("/{token}/{path}")).0, 200, "{path}");
    }

    let mut wrong = token.clone().into_bytes();
    wrong[63] = if wrong[63] == b'0' { b'1' } else { b'0' };
    let wrong = String::from_utf8(wrong).unwrap();
    for path in [
        "/".to_string(),
        "/catalog.json".to_string(),
        format!("/?token={token}"),
        format!("/{wrong}/"),
        format!("/{wrong}/catalog.json"),
        format!("/{}/", &token[..32]),
    ] {
        let (status, head, _) = ui.get(&path);
        assert_eq!(status, 403, "{path}: {head}");
        assert!(head.contains("cache-control: no-store"), "{head}");
    }
    // The right token with another Host (a DNS-rebound name) is refused too.
    let addr = format!("127.0.0.1:{}", ui.port());
    let (status, _, _) = get(
        &addr,
        &format!("evil.example:{}", ui.port()),
        &format!("/{token}/"),
    );
    assert_eq!(status, 403);

    // Every listening socket on the port is 127.0.0.1's (/proc/net/tcp: 0100007F), and there
    // is none on IPv6.
    let port = format!(":{:04X}", ui.port());
    let listening = |table: &str| -> Vec<String> {
        // A kernel without IPv6 has no tcp6 table.
        std::fs::read_to_string(table)
            .unwrap_or_default()
            .lines()
            .skip(1)
            .filter_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                (f[1].ends_with(&port) && f[3] == "0A").then(|| f[1].to_string())
            })
            .collect()
    };
    assert_eq!(listening("/proc/net/tcp"), [format!("0100007F{port}")]);
    assert_eq!(listening("/proc/net/tcp6"), Vec::<String>::new());
}

/// A delete is refused on the server whatever the page shows: without delete_enabled, and
/// with it unless it is a POST from the page's origin with the page's CSRF token.
#[test]
fn deletes_are_refused_without_delete_enabled_origin_or_csrf_token() {
    let dir = tempfile::tempdir().unwrap();
    let digest = format!("sha256%3A{}", "a".repeat(64));
    let path = |token: &str| format!("/{token}/delete?repo=lab%2Fui&digest={digest}");
    for delete_enabled in [false, true] {
        let inventory = dir.path().join(format!("inventory-{delete_enabled}.yml"));
        std::fs::write(
            &inventory,
            INVENTORY.replace(
                "  hostname: registry.example.com\n",
                &format!("  hostname: registry.example.com\n  delete_enabled: {delete_enabled}\n"),
            ),
        )
        .unwrap();
        let ui = Ui::start(&inventory);
        let token = ui.token().to_string();
        // The catalog read fails (nothing listens on port 1) but names the flag and the token.
        let (status, _, body) = ui.get(&format!("/{token}/catalog.json"));
        assert_eq!(status, 200, "{body}");
        let view: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(view["delete_enabled"], delete_enabled, "{body}");
        let csrf = view["csrf"].as_str().unwrap().to_string();
        let origin = ui.origin();
        let (status, _, body) = ui.post(
            &path(&token),
            &[("Origin", &origin), ("x-regboot-csrf", &csrf)],
        );
        if !delete_enabled {
            assert_eq!(status, 403, "{body}");
            assert!(body.contains("delete_enabled"), "{body}");
            continue;
        }
        // Allowed: the delete is tried and fails on the unreachable replica.
        assert_eq!(status, 502, "{body}");
        assert!(body.contains("reg1"), "{body}");
        for headers in [
            vec![("Origin", origin.as_str())],
            vec![("x-regboot-csrf", csrf.as_str())],
            vec![("Origin", "http://evil.example"), ("x-regboot-csrf", &csrf)],
        ] {
            let (status, _, body) = ui.post(&path(&token), &headers);
            assert_eq!(status, 403, "{headers:?}: {body}");
        }
        assert_eq!(ui.get(&path(&token)).0, 405);
    }
}

/// The page in headless chromium under its own CSP: the scripts run, the catalog read's
/// failure is shown as text, and the trust view is linked and opens.
#[test]
fn the_page_runs_in_chromium_and_links_the_trust_view() {
    let dir = tempfile::tempdir().unwrap();
    let inventory = dir.path().join("inventory.yml");
    std::fs::write(&inventory, INVENTORY).unwrap();
    let ui = Ui::start(&inventory);
    let mut browser = support::ui::Browser::start(dir.path());
    browser.open(&ui.url);
    let failed = browser.wait("document.querySelector('#replicas li.error')?.textContent");
    assert!(
        failed.as_str().unwrap().starts_with("reg1: cannot be read"),
        "{failed}"
    );
    assert_eq!(
        browser.eval("document.querySelector('#filter') !== null"),
        true
    );
    browser.leave_by("document.getElementById('trust-link').click()");
    let note = browser.wait(
        "location.pathname.endsWith('/trust') && document.getElementById('note').textContent",
    );
    assert!(note.as_str().unwrap().contains("not self-signed"), "{note}");
}
