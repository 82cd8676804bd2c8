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
