//! The inventory (docs/inventory.md): read, `${VAR}`-expanded, validated with located
//! errors, and turned into the typed model everything else uses.

mod error;
mod expand;
mod locate;
mod model;
mod raw;
mod ssh_config;
mod summary;
mod validate;

use std::path::Path;

pub use error::{Diagnostic, InventoryError};
pub use locate::Pos;
pub use model::*;
pub use summary::Summary;
pub use validate::is_hostname;

use crate::fsutil::{INVENTORY_LIMIT, read_text_limited};
use locate::{Locations, Seg, YamlPath};

/// Load and validate the inventory at `path`, reading `${VAR}`s from the process environment.
pub fn load(path: &Path) -> Result<Inventory, InventoryError> {
    load_with_env(path, &|name| std::env::var(name).ok())
}

/// Like `load`, with the environment given by `env` (tests use a fixed one).
pub fn load_with_env(
    path: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Inventory, InventoryError> {
    let fail = |diagnostics| InventoryError {
        file: path.to_path_buf(),
        diagnostics,
    };
    let text = read_text_limited(path, "the inventory", INVENTORY_LIMIT).map_err(|e| {
        fail(vec![Diagnostic {
            pos: None,
            field: String::new(),
            message: format!("{e:#}"),
            hint: Some("check the path given with -i".into()),
        }])
    })?;
    if let Some(pos) = locate::too_deep(&text) {
        return Err(fail(vec![Diagnostic {
            pos: Some(pos),
            field: String::new(),
            message: format!("the YAML nests more than {} levels deep", locate::MAX_DEPTH),
            hint: Some("an inventory needs a few levels: look for unclosed brackets".into()),
        }]));
    }
    let locs = Locations::index(&text);

    let mut value: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).map_err(|e| {
        fail(vec![Diagnostic {
            pos: e.location().map(|l| Pos {
                line: l.line(),
                column: l.column(),
            }),
            field: String::new(),
            message: format!("YAML syntax error: {}", strip_location(&e.to_string())),
            hint: Some("fix the YAML at that place (indentation, a missing ':' or quote)".into()),
        }])
    })?;

    let mut expand_errors = Vec::new();
    expand::expand_tree(&mut value, &YamlPath::default(), env, &mut expand_errors);
    if !expand_errors.is_empty() {
        return Err(fail(
            expand_errors
                .into_iter()
                .map(|e| Diagnostic {
                    pos: locs.value(&e.path),
                    field: e.path.to_string(),
                    message: e.message,
                    hint: None,
                })
                .collect(),
        ));
    }

    let raw: raw::RawInventory = serde_path_to_error::deserialize(value)
        .map_err(|e| fail(vec![schema_diagnostic(&e, &locs)]))?;

    let mut checker = validate::Checker::new(&locs, path, env);
    let inventory = checker.inventory(raw, path);
    if checker.diagnostics.is_empty() {
        Ok(inventory)
    } else {
        Err(fail(checker.diagnostics))
    }
}

/// serde_yaml's messages end with " at line L column C"; the location is printed separately.
fn strip_location(msg: &str) -> &str {
    msg.find(" at line ").map_or(msg, |i| &msg[..i])
}

/// Turn a serde error (unknown field, wrong type, missing field) into a located diagnostic,
/// suggesting the nearest valid name for a misspelt field or value.
fn schema_diagnostic(
    err: &serde_path_to_error::Error<serde_yaml_ng::Error>,
    locs: &Locations,
) -> Diagnostic {
    let mut path = YamlPath::default();
    for seg in err.path().iter() {
        match seg {
            serde_path_to_error::Segment::Seq { index } => path.0.push(Seg::Index(*index)),
            serde_path_to_error::Segment::Map { key } => path.0.push(Seg::Key(key.clone())),
            _ => {}
        }
    }
    let message = strip_location(&err.inner().to_string()).to_string();
    let (pos, hint) = match unknown_name(&message) {
        Some((kind, bad, valid)) => {
            let nearest = validate::nearest(&bad, valid.iter().map(String::as_str))
                .map(|v| format!("did you mean `{v}`? "))
                .unwrap_or_default();
            let pos = if kind == "field" {
                locs.key(&path)
            } else {
                locs.value(&path)
            };
            (
                pos,
                Some(format!("{nearest}valid {kind}s here: {}", valid.join(", "))),
            )
        }
        None => (locs.value(&path), None),
    };
    Diagnostic {
        pos,
        field: path.to_string(),
        message,
        hint,
    }
}

/// From "unknown field `x`, expected one of `a`, `b`" (or "unknown variant ..."): the kind,
/// the bad name and the valid ones.
fn unknown_name(message: &str) -> Option<(&'static str, String, Vec<String>)> {
    let kind = if message.starts_with("unknown field") {
        "field"
    } else if message.starts_with("unknown variant") {
        "value"
    } else {
        return None;
    };
    let mut quoted = message.split('`').skip(1).step_by(2).map(str::to_string);
    let bad = quoted.next()?;
    Some((kind, bad, quoted.collect()))
}
