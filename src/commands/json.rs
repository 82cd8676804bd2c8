//! Every `-o json` document (docs/json.md): one object on stdout with `schema_version`
//! first. A command that fails prints an error document instead, with the exit code text
//! mode has, so a script reads stdout the same way whatever happened.

use anyhow::{Result, bail};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::inventory::InventoryError;
use crate::ssh::ConnectError;

/// Raised when a document changes in a way that breaks readers (a field renamed, removed or
/// retyped); new fields do not raise it.
pub const SCHEMA_VERSION: u32 = 1;

/// Print `value`, which serializes to an object, as a versioned document.
pub fn print(value: &impl Serialize) -> Result<()> {
    let Value::Object(fields) = serde_json::to_value(value)? else {
        bail!("internal: a JSON document must be an object");
    };
    let mut doc = Map::new();
    doc.insert("schema_version".into(), SCHEMA_VERSION.into());
    doc.extend(fields);
    println!("{}", serde_json::to_string_pretty(&doc)?);
    Ok(())
}

/// The error document: a stable code, the host it concerns (or null), the message and what
/// to do; a bad inventory also lists each problem with its place in the file.
#[derive(Debug, Serialize)]
struct ErrorDoc {
    code: &'static str,
    host: Option<String>,
    message: String,
    hint: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    problems: Vec<Value>,
}

/// Whether the raw command line asks for JSON: a usage error comes before clap has read it.
pub fn asked_for(args: &[String]) -> bool {
    args.iter().enumerate().any(|(i, a)| {
        matches!(a.as_str(), "-ojson" | "--output=json")
            || (matches!(a.as_str(), "-o" | "--output")
                && args.get(i + 1).is_some_and(|v| v == "json"))
    })
}

/// Print the error document for `err`.
pub fn print_error(err: &anyhow::Error) -> Result<()> {
    print(&error_doc(err))
}

fn error_doc(err: &anyhow::Error) -> ErrorDoc {
    for cause in err.chain() {
        if let Some(e) = cause.downcast_ref::<InventoryError>() {
            return inventory_doc(e);
        }
        if let Some(e) = cause.downcast_ref::<clap::Error>() {
            let text = e.to_string();
            return ErrorDoc {
                code: "usage",
                host: None,
                message: text
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .trim_start_matches("error: ")
                    .to_string(),
                hint: Some("see `regboot help` (or `regboot help COMMAND`)".into()),
                problems: Vec::new(),
            };
        }
        if let Some(e) = cause.downcast_ref::<ConnectError>() {
            return ErrorDoc {
                code: e.kind(),
                host: Some(e.host().to_string()),
                message: e.message(),
                hint: e.hint(),
                problems: Vec::new(),
            };
        }
    }
    ErrorDoc {
        code: "error",
        host: None,
        message: format!("{err:#}"),
        hint: None,
        problems: Vec::new(),
    }
}

fn inventory_doc(e: &InventoryError) -> ErrorDoc {
    let problems = e
        .diagnostics
        .iter()
        .map(|d| {
            serde_json::json!({
                "file": e.file,
                "line": d.pos.map(|p| p.line),
                "column": d.pos.map(|p| p.column),
                "field": d.field,
                "message": d.message,
                "hint": d.hint,
            })
        })
        .collect();
    let hint = match e.diagnostics.as_slice() {
        [only] => only.hint.clone(),
        _ => Some("fix each of the problems listed, then run again".into()),
    };
    ErrorDoc {
        code: "inventory-invalid",
        host: None,
        message: summary(e),
        hint,
        problems,
    }
}

/// One problem: where and what ("inv.yml:2:20: hosts[0].adress: unknown field ..."); more:
/// how many ("inv.yml has 3 problems").
fn summary(e: &InventoryError) -> String {
    let text = e.to_string();
    let mut lines = text.lines();
    let head = lines.next().unwrap_or_default().trim_end_matches(':');
    match (e.diagnostics.len(), lines.next()) {
        (1, Some(only)) => only.trim().to_string(),
        _ => head.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_connection_error_keeps_its_code_host_and_hint_through_context() {
        let e = ConnectError::Unreachable {
            host: "node1".into(),
            addr: "127.0.0.1:1".into(),
            reason: "refused the TCP connection".into(),
            after: Duration::from_millis(3),
        };
        let err = anyhow::Error::new(e).context("connecting");
        let doc = serde_json::to_value(error_doc(&err)).unwrap();
        assert_eq!(doc["code"], "unreachable");
        assert_eq!(doc["host"], "node1");
        assert!(doc["message"].as_str().unwrap().contains("127.0.0.1:1"));
        assert!(doc["hint"].as_str().unwrap().contains("sshd runs there"));
    }

    #[test]
    fn json_is_asked_for_in_every_spelling_of_the_flag() {
        let args = |s: &str| s.split(' ').map(String::from).collect::<Vec<_>>();
        for yes in [
            "regboot -o json x",
            "regboot x --output json",
            "regboot -ojson",
            "regboot --output=json",
        ] {
            assert!(asked_for(&args(yes)), "{yes}");
        }
        for no in ["regboot -o text x", "regboot x json", "regboot -i json"] {
            assert!(!asked_for(&args(no)), "{no}");
        }
    }

    #[test]
    fn any_other_error_is_code_error_without_host() {
        let doc = serde_json::to_value(error_doc(&anyhow::anyhow!("boom"))).unwrap();
        assert_eq!(doc["code"], "error");
        assert!(doc["host"].is_null() && doc["hint"].is_null());
        assert_eq!(doc["message"], "boom");
    }
}
