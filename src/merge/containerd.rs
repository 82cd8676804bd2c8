//! containerd's `config.toml`: where its CRI plugin reads registry hosts (`config_path`), read
//! and set with every other setting, comment and layout kept (toml_edit).
//!
//! The registry table moved between config versions: version 1 (or no `version`)
//! `plugins.cri.registry`, version 2 `plugins."io.containerd.grpc.v1.cri".registry`, version 3
//! (containerd 2.x) `plugins."io.containerd.cri.v1.images".registry`.

use anyhow::{Context, Result, bail};
use toml_edit::{DocumentMut, Item, Table, TableLike, value};

/// The CRI plugin's registry table, by config version.
fn registry_path(version: i64) -> [&'static str; 3] {
    match version {
        3 => ["plugins", "io.containerd.cri.v1.images", "registry"],
        2 => ["plugins", "io.containerd.grpc.v1.cri", "registry"],
        _ => ["plugins", "cri", "registry"],
    }
}

/// The names under which `disabled_plugins` turns the CRI image service off.
const CRI_PLUGINS: [&str; 3] = [
    "cri",
    "io.containerd.grpc.v1.cri",
    "io.containerd.cri.v1.images",
];

/// What regboot needs to know of a containerd config.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Config {
    pub version: i64,
    /// The CRI plugin is on (not in `disabled_plugins`).
    pub cri: bool,
    /// The CRI plugin's registry `config_path`, when set.
    pub config_path: Option<String>,
}

fn parse(text: &str) -> Result<DocumentMut> {
    text.parse::<DocumentMut>()
        .context("it is not valid TOML; regboot does not rewrite it: fix it, then run again")
}

fn version(doc: &DocumentMut) -> i64 {
    doc.get("version").and_then(Item::as_integer).unwrap_or(1)
}

fn registry(doc: &DocumentMut, version: i64) -> Option<&dyn TableLike> {
    let mut table: &dyn TableLike = doc.as_table();
    for key in registry_path(version) {
        table = table.get(key)?.as_table_like()?;
    }
    Some(table)
}

/// Reads `text` (a config.toml).
pub fn read(text: &str) -> Result<Config> {
    let doc = parse(text)?;
    let version = version(&doc);
    let disabled = doc.get("disabled_plugins").and_then(Item::as_array);
    let cri = !disabled.is_some_and(|d| {
        d.iter()
            .any(|p| CRI_PLUGINS.contains(&p.as_str().unwrap_or("")))
    });
    let config_path = registry(&doc, version)
        .and_then(|r| r.get("config_path"))
        .and_then(Item::as_str)
        .filter(|p| !p.is_empty())
        .map(str::to_string);
    Ok(Config {
        version,
        cri,
        config_path,
    })
}

/// `text` (`None`: no config file, containerd's defaults; then a config of the version that
/// `major`, containerd's major version, reads natively) with the CRI plugin's `config_path`
/// set to `dir`. Refused when the registry table holds `mirrors` or `configs` TLS settings,
/// which containerd rejects beside `config_path` (its CRI plugin would not load).
pub fn set_config_path(text: Option<&str>, major: u32, dir: &str) -> Result<String> {
    let mut doc = match text {
        Some(t) => parse(t)?,
        None => {
            let mut d = DocumentMut::new();
            d["version"] = value(if major >= 2 { 3 } else { 2 });
            d
        }
    };
    let version = version(&doc);
    let [plugins, plugin, reg] = registry_path(version);
    if let Some(r) = registry(&doc, version) {
        let has = |key: &str| {
            r.get(key)
                .and_then(Item::as_table_like)
                .is_some_and(|t| !t.is_empty())
        };
        let tls = r
            .get("configs")
            .and_then(Item::as_table_like)
            .is_some_and(|c| c.iter().any(|(_, v)| v.get("tls").is_some()));
        if has("mirrors") || tls {
            bail!(
                "[{plugins}.\"{plugin}\".{reg}] sets mirrors or configs TLS, which containerd \
                 refuses beside config_path: move them to hosts.toml files under {dir} \
                 (https://github.com/containerd/containerd/blob/main/docs/hosts.md), then run again"
            );
        }
    }
    let mut table = doc.as_table_mut();
    for key in [plugins, plugin, reg] {
        let entry = table.entry(key).or_insert_with(|| {
            let mut t = Table::new();
            t.set_implicit(true);
            Item::Table(t)
        });
        table = match entry {
            Item::Table(t) => t,
            _ => bail!("{key} in the containerd config is not a table; set config_path by hand"),
        };
    }
    table.set_implicit(false);
    table.insert("config_path", value(dir));
    Ok(doc.to_string())
}

/// The CRI plugin's `config_path` value in `doc`, to edit in place.
fn config_path_mut(doc: &mut DocumentMut) -> Option<&mut toml_edit::Value> {
    let [plugins, plugin, reg] = registry_path(version(doc));
    doc.get_mut(plugins)?
        .get_mut(plugin)?
        .get_mut(reg)?
        .get_mut("config_path")?
        .as_value_mut()
}

/// `text` with the CRI plugin's `config_path` (a string) replaced by `dir`, its spacing and
/// comment kept, and the value it held as written (`'/a:/b'`), for [`restore_config_path`].
pub fn replace_config_path(text: &str, dir: &str) -> Result<(String, String)> {
    let mut doc = parse(text)?;
    let Some(v) = config_path_mut(&mut doc) else {
        bail!("it sets no CRI config_path to replace");
    };
    let toml_edit::Value::String(old) = &*v else {
        bail!("its CRI config_path is not a string; set it by hand");
    };
    let previous = old.display_repr().into_owned();
    let decor = v.decor().clone();
    *v = toml_edit::Value::from(dir);
    *v.decor_mut() = decor;
    Ok((doc.to_string(), previous))
}

/// `text` with the CRI plugin's `config_path` set back to `previous` (as
/// [`replace_config_path`] returned it); `None` when it has none.
pub fn restore_config_path(text: &str, previous: &str) -> Result<Option<String>> {
    let mut doc = parse(text)?;
    let Some(v) = config_path_mut(&mut doc) else {
        return Ok(None);
    };
    let mut back: toml_edit::Value = previous
        .parse()
        .with_context(|| format!("the recorded config_path {previous} is not a TOML value"))?;
    *back.decor_mut() = v.decor().clone();
    *v = back;
    Ok(Some(doc.to_string()))
}

/// `text` with the CRI plugin's `config_path` taken out again, and whether nothing else is
/// left in it (only `version`: a file regboot created can go); `None` when it has none.
pub fn unset_config_path(text: &str) -> Result<Option<(String, bool)>> {
    let mut doc = parse(text)?;
    let [plugins, plugin, reg] = registry_path(version(&doc));
    let removed = doc
        .get_mut(plugins)
        .and_then(|p| p.get_mut(plugin))
        .and_then(|p| p.get_mut(reg))
        .and_then(Item::as_table_like_mut)
        .and_then(|r| r.remove("config_path"));
    if removed.is_none() {
        return Ok(None);
    }
    // Drop the tables left empty, innermost first.
    let path = [plugins, plugin, reg];
    for depth in (1..=3).rev() {
        let (last, parents) = path[..depth].split_last().expect("depth >= 1");
        let mut item = doc.as_item_mut();
        for key in parents {
            item = item.get_mut(key).expect("the path to config_path exists");
        }
        let empty = item
            .get(last)
            .and_then(Item::as_table_like)
            .is_some_and(|t| t.is_empty());
        if let Some(t) = item.as_table_like_mut().filter(|_| empty) {
            t.remove(last);
        }
    }
    let bare = doc.iter().all(|(k, _)| k == "version");
    Ok(Some((doc.to_string(), bare)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIR: &str = "/etc/containerd/certs.d";

    #[test]
    fn reads_every_version() {
        let v2 = "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry]\n  config_path = \"/x\"\n";
        assert_eq!(read(v2).unwrap().config_path.as_deref(), Some("/x"));
        let v3 =
            "version = 3\n[plugins.'io.containerd.cri.v1.images'.registry]\nconfig_path = '/y'\n";
        assert_eq!(read(v3).unwrap().config_path.as_deref(), Some("/y"));
        let v1 = "[plugins.cri.registry]\nconfig_path = \"/z\"\n";
        assert_eq!(read(v1).unwrap().config_path.as_deref(), Some("/z"));
        // A v2 key in a v3 file is not where containerd 2 looks.
        let wrong =
            "version = 3\n[plugins.\"io.containerd.grpc.v1.cri\".registry]\nconfig_path = \"/x\"\n";
        assert_eq!(read(wrong).unwrap().config_path, None);
        let empty = read("version = 2\nconfig_path = \"\"\n").unwrap();
        assert_eq!((empty.config_path, empty.cri), (None, true));
        // docker-ce's containerd.io package turns CRI off.
        assert!(!read("disabled_plugins = [\"cri\"]\n").unwrap().cri);
        assert!(read("version = 2\n[plugins\n").is_err());
    }

    #[test]
    fn sets_the_path_and_keeps_everything_else() {
        let v2 = "# mine\nversion = 2\nroot = \"/var/lib/containerd\"\n\n\
                  [plugins.\"io.containerd.grpc.v1.cri\"]\n  sandbox_image = \"pause:3.9\" # keep\n";
        let out = set_config_path(Some(v2), 1, DIR).unwrap();
        assert!(out.starts_with(v2), "{out}");
        assert!(out.ends_with(
            "[plugins.\"io.containerd.grpc.v1.cri\".registry]\nconfig_path = \"/etc/containerd/certs.d\"\n"
        ), "{out}");
        assert_eq!(read(&out).unwrap().config_path.as_deref(), Some(DIR));
        let v3 = "version = 3\n[plugins.'io.containerd.cri.v1.images'.registry]\nfoo = 1\n";
        let out = set_config_path(Some(v3), 2, DIR).unwrap();
        assert_eq!(read(&out).unwrap().config_path.as_deref(), Some(DIR));
        assert!(out.contains("foo = 1"), "{out}");
        // No file: the version containerd reads natively, with only the path.
        let fresh = set_config_path(None, 1, DIR).unwrap();
        assert_eq!(
            fresh,
            "version = 2\n\n[plugins.\"io.containerd.grpc.v1.cri\".registry]\nconfig_path = \"/etc/containerd/certs.d\"\n"
        );
        let fresh3 = set_config_path(None, 2, DIR).unwrap();
        assert_eq!(read(&fresh3).unwrap().version, 3);
        assert_eq!(read(&fresh3).unwrap().config_path.as_deref(), Some(DIR));
        // Mirrors beside config_path would stop containerd's CRI plugin: refused.
        let mirrors = "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry.mirrors.\"docker.io\"]\nendpoint = [\"https://m\"]\n";
        let err = set_config_path(Some(mirrors), 1, DIR).unwrap_err();
        assert!(format!("{err:#}").contains("hosts.toml"), "{err:#}");
    }

    #[test]
    fn unset_takes_out_only_the_path() {
        let fresh = set_config_path(None, 1, DIR).unwrap();
        assert!(unset_config_path(&fresh).unwrap().unwrap().1);
        let v2 = "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\"]\nsandbox_image = \"p\"\n";
        let set = set_config_path(Some(v2), 1, DIR).unwrap();
        assert_eq!(
            unset_config_path(&set).unwrap(),
            Some((v2.to_string(), false))
        );
        // Debian's own file comes back byte for byte (reset compares every file under /etc).
        let debian = "version = 2\n\n[plugins]\n  [plugins.\"io.containerd.grpc.v1.cri\"]\n    \
            [plugins.\"io.containerd.grpc.v1.cri\".cni]\n      bin_dir = \"/usr/lib/cni\"\n      \
            conf_dir = \"/etc/cni/net.d\"\n  [plugins.\"io.containerd.internal.v1.opt\"]\n    \
            path = \"/var/lib/containerd/opt\"\n";
        let set = set_config_path(Some(debian), 1, DIR).unwrap();
        assert_eq!(
            unset_config_path(&set).unwrap(),
            Some((debian.to_string(), false))
        );
        // No config_path: nothing to take out.
        assert_eq!(unset_config_path(v2).unwrap(), None);
    }

    /// containerd 2.2's default as its `config dump` prints it: replaced by one directory and
    /// put back byte for byte, quotes, spacing and comment included.
    #[test]
    fn replace_and_restore_keep_every_byte() {
        let shipped = "version = 3\n\n[plugins]\n  [plugins.'io.containerd.cri.v1.images']\n    \
            [plugins.'io.containerd.cri.v1.images'.registry]\n      \
            config_path = '/etc/containerd/certs.d:/etc/docker/certs.d'  # the default\n      \
            headers = {}\n";
        let (out, previous) = replace_config_path(shipped, DIR).unwrap();
        assert_eq!(previous, "'/etc/containerd/certs.d:/etc/docker/certs.d'");
        assert_eq!(
            out,
            shipped.replace(
                "'/etc/containerd/certs.d:/etc/docker/certs.d'",
                "\"/etc/containerd/certs.d\""
            )
        );
        assert_eq!(read(&out).unwrap().config_path.as_deref(), Some(DIR));
        assert_eq!(
            restore_config_path(&out, &previous).unwrap().as_deref(),
            Some(shipped)
        );
        assert!(replace_config_path("version = 3\n", DIR).is_err());
        assert_eq!(
            restore_config_path("version = 3\n", &previous).unwrap(),
            None
        );
    }
}
