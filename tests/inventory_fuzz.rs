//! Random YAML-like text, mutated inventories and random bytes fed to the inventory loader
//! (what `regboot inventory check` runs): it answers with an inventory or an error, never a
//! panic; nesting past the limit is always an error.

use proptest::prelude::*;
use regboot::inventory;

const GOOD: &str = "\
version: 1
hosts:
  - { name: reg1, address: 10.1.0.1, roles: [registry] }
  - name: node1
    address: node1.example.com
    port: ${PORT}
    roles: [agent]
registry:
  hostname: registry.example.com
  image: registry:2
  users:
    - { name: ci, password_env: CI_PASS }
docker:
  daemon_json: { live-restore: true }
";

/// Pieces of YAML syntax and of the inventory's vocabulary.
const TOKENS: &[&str] = &[
    "\n",
    "  ",
    "- ",
    ": ",
    ", ",
    "[",
    "]",
    "{",
    "}",
    "? ",
    "|\n",
    ">\n",
    "---\n",
    "...\n",
    "#",
    "\"",
    "'",
    "\\",
    "&a ",
    "*a",
    "!!str ",
    "!!binary ",
    "<<: ",
    "\t",
    "~",
    "null",
    "1",
    "-1",
    "1e9",
    "0x10",
    "99999999999999999999",
    "version: 1\n",
    "hosts:\n",
    "name: a",
    "address: ",
    "10.0.0.1",
    "::1",
    "roles: [registry]",
    "roles: [lb]",
    "port: 22",
    "user: ",
    "key: ",
    "password_file: ",
    "/dev/zero",
    "${PORT}",
    "${UNSET}",
    "$",
    "registry:\n",
    "hostname: r",
    "users:\n",
    "image: ",
    "--help",
    "docker:\n  daemon_json:\n",
    "tls:\n  mode: provided\n",
    "ha:\n  vip: 10.0.0.9\n",
    "é",
    "\u{feff}",
    "\u{0}",
    "\r\n",
];

fn yamlish() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(TOKENS), 0..120).prop_map(|t| t.concat())
}

/// GOOD with random tokens spliced in at one place.
fn mutated() -> impl Strategy<Value = String> {
    (0..=GOOD.len(), yamlish())
        .prop_map(|(at, text)| format!("{}{text}{}", &GOOD[..at], &GOOD[at..]))
}

fn load(bytes: &[u8]) -> Result<inventory::Inventory, inventory::InventoryError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("inventory.yml");
    std::fs::write(&path, bytes).unwrap();
    let env = |name: &str| match name {
        "PORT" => Some("2222".to_string()),
        "CI_PASS" => Some("x".to_string()),
        _ => None,
    };
    inventory::load_with_env(&path, &env)
}

#[test]
fn the_seed_inventory_loads() {
    load(GOOD.as_bytes()).unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn yaml_like_text_never_panics(text in yamlish()) {
        let _ = load(text.as_bytes());
    }

    #[test]
    fn mutated_inventories_never_panic(text in mutated()) {
        let _ = load(text.as_bytes());
    }

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..4096)) {
        let _ = load(&bytes);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Deeper than the limit (64) is an error whatever the brackets and whatever follows.
    #[test]
    fn deep_nesting_is_an_error(
        depth in 65usize..50_000,
        open in prop::sample::select(&["[", "{", "- ", "{a: "][..]),
        tail in yamlish(),
    ) {
        let text = format!("version: 1\nhosts: {}{tail}", open.repeat(depth));
        prop_assert!(load(text.as_bytes()).is_err());
    }
}

/// Issue 26 item 11: nesting with a line break after each bracket used to cost time in the
/// square of its depth (100,000 levels: 16 to 23 s). Every shape of a 1 MiB nest is refused
/// as too deep, in milliseconds.
#[test]
fn a_mebibyte_of_nesting_with_line_breaks_is_refused() {
    for open in ["[\n", "{\n", "[ \n", "  [\n", "{a:\n", "- [\n", "[#c\n"] {
        let depth = (1 << 20) / open.len() - 20;
        let text = format!("version: 1\nhosts: {}", open.repeat(depth));
        let started = std::time::Instant::now();
        let err = load(text.as_bytes()).expect_err(open);
        eprintln!("{open:?} x {depth}: {:?}", started.elapsed());
        assert!(
            err.to_string().contains("nests more than"),
            "{open:?}: {err}"
        );
    }
}
