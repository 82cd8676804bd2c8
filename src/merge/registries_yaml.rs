//! k3s's and RKE2's `registries.yaml` (`mirrors:` and `configs:` keyed by registry host):
//! regboot's entries set and taken out by editing the text, so every other entry, comment and
//! layout stays as the operator wrote it. Only the block style k3s and RKE2 document is edited;
//! every result is parsed again and must equal the operator's document with exactly regboot's
//! entries changed, or the file is left alone with an error saying what to do.

use anyhow::{Context, Result, bail};
use serde_yaml_ng::{Mapping, Value};

const SECTIONS: [&str; 2] = ["mirrors", "configs"];

/// One registry's entries: under `mirrors` and under `configs`, as YAML values.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub key: String,
    pub mirror: Value,
    pub config: Value,
}

fn parse(text: &str) -> Result<Mapping> {
    if text.trim().is_empty() {
        return Ok(Mapping::new());
    }
    match serde_yaml_ng::from_str::<Value>(text)
        .context("it is not valid YAML; regboot does not rewrite it: fix it, then run again")?
    {
        Value::Mapping(m) => Ok(m),
        Value::Null => Ok(Mapping::new()),
        _ => bail!("it is not a YAML mapping (mirrors:, configs:); fix it, then run again"),
    }
}

/// The value of `section.key` in `text`, when present.
pub fn get(text: &str, section: &str, key: &str) -> Result<Option<Value>> {
    let doc = parse(text)?;
    Ok(doc
        .get(section)
        .and_then(Value::as_mapping)
        .and_then(|m| m.get(key))
        .cloned())
}

fn indent(line: &str) -> usize {
    line.len() - line.trim_start_matches(' ').len()
}

/// A line that holds YAML content (not blank, not a comment).
fn content(line: &str) -> bool {
    let t = line.trim_start();
    !t.is_empty() && !t.starts_with('#')
}

/// The mapping key a block-style line starts with (`key:`, `"key":`, `'key':`).
fn line_key(line: &str) -> Option<String> {
    let t = line.trim_start();
    let (key, rest) = if let Some(q @ ('"' | '\'')) = t.chars().next() {
        let end = t[1..].find(q)? + 1;
        (t[1..end].to_string(), &t[end + 1..])
    } else {
        let colon = t.find(':')?;
        (t[..colon].trim_end().to_string(), &t[colon..])
    };
    let after = rest.strip_prefix(':')?;
    (after.is_empty() || after.starts_with([' ', '\t'])).then_some(key)
}

/// The lines of `section`'s block: (header index, end index exclusive), when present.
fn section(lines: &[&str], name: &str) -> Result<Option<(usize, usize)>> {
    let Some(head) = lines
        .iter()
        .position(|l| indent(l) == 0 && content(l) && line_key(l).as_deref() == Some(name))
    else {
        return Ok(None);
    };
    let value = lines[head].split_once(':').map_or("", |(_, v)| v).trim();
    if !(value.is_empty() || value.starts_with('#') || value == "{}") {
        bail!(
            "`{name}:` is written in flow style on one line; regboot edits only the block style \
             k3s documents (`{name}:` then one entry per indented line): rewrite it so, then run again"
        );
    }
    let end = (head + 1..lines.len())
        .find(|&i| indent(lines[i]) == 0 && content(lines[i]))
        .unwrap_or(lines.len());
    Ok(Some((head, end)))
}

/// The YAML lines of `key: value` at `indent`, nested blocks `step` further in.
fn render(key: &str, value: &Value, indent: usize, step: usize) -> Vec<String> {
    let pad = " ".repeat(indent);
    let k = serde_json::to_string(key).unwrap_or_default();
    match value {
        Value::Mapping(m) if !m.is_empty() => {
            let mut out = vec![format!("{pad}{k}:")];
            for (ck, cv) in m {
                out.extend(render(
                    ck.as_str().unwrap_or_default(),
                    cv,
                    indent + step,
                    step,
                ));
            }
            out
        }
        Value::Sequence(s) if !s.is_empty() => {
            let mut out = vec![format!("{pad}{k}:")];
            let inner = " ".repeat(indent + step);
            out.extend(s.iter().map(|v| format!("{inner}- {}", scalar(v))));
            out
        }
        v => vec![format!("{pad}{k}: {}", scalar(v))],
    }
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => serde_json::to_string(s).unwrap_or_default(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        _ => "{}".into(),
    }
}

/// The line range of `key`'s entry inside a section block `(head, end)`.
fn entry(lines: &[&str], (head, end): (usize, usize), key: &str) -> Option<(usize, usize)> {
    let child = (head + 1..end)
        .find(|&i| content(lines[i]))
        .map(|i| indent(lines[i]))?;
    let start = (head + 1..end).find(|&i| {
        indent(lines[i]) == child && content(lines[i]) && line_key(lines[i]).as_deref() == Some(key)
    })?;
    let stop = (start + 1..end)
        .find(|&i| content(lines[i]) && indent(lines[i]) <= child)
        .unwrap_or(end);
    // Blank lines and comments just before the next entry belong to it.
    let mut stop = stop;
    while stop > start + 1 && !content(lines[stop - 1]) {
        stop -= 1;
    }
    Some((start, stop))
}

/// `text` with `entry` under both sections (replacing regboot's earlier entry for that key),
/// every other line kept.
pub fn set(text: &str, new: &Entry) -> Result<String> {
    let mut expected = parse(text)?;
    for name in SECTIONS {
        if let Some(v) = expected.get(name)
            && !(v.is_mapping() || v.is_null())
        {
            bail!("`{name}:` is not a mapping of registries; fix it, then run again");
        }
    }
    let mut out = text.to_string();
    for (name, value) in SECTIONS.iter().zip([&new.mirror, &new.config]) {
        out = set_one(&out, name, &new.key, value)?;
        let sec = expected
            .entry(Value::from(*name))
            .or_insert_with(|| Value::Mapping(Mapping::new()));
        if !sec.is_mapping() {
            *sec = Value::Mapping(Mapping::new());
        }
        if let Value::Mapping(m) = sec {
            m.insert(Value::from(new.key.clone()), value.clone());
        }
    }
    check(&out, &expected)?;
    Ok(out)
}

fn set_one(text: &str, name: &str, key: &str, value: &Value) -> Result<String> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    match section(&lines, name)? {
        None => {
            out.push(format!("{name}:"));
            out.extend(render(key, value, 2, 2));
        }
        Some((head, end)) => {
            let child = (head + 1..end)
                .find(|&i| content(lines[i]))
                .map_or(2, |i| indent(lines[i]));
            let rendered = render(key, value, child, child.max(2));
            if lines[head]
                .split_once(':')
                .is_some_and(|(_, v)| v.trim() == "{}")
            {
                out[head] = format!("{name}:");
            }
            match entry(&lines, (head, end), key) {
                Some((s, e)) => {
                    out.splice(s..e, rendered);
                }
                None => {
                    let last = (head..end)
                        .rev()
                        .find(|&i| content(lines[i]))
                        .unwrap_or(head);
                    out.splice(last + 1..last + 1, rendered);
                }
            }
        }
    }
    Ok(out.join("\n") + "\n")
}

/// `text` without regboot's entries for `keys` (a section left empty by that goes too, when
/// it holds nothing else); `None` when none is there.
pub fn remove(text: &str, keys: &[String]) -> Result<Option<String>> {
    let mut expected = parse(text)?;
    let mut out = text.to_string();
    let mut removed = false;
    for name in SECTIONS {
        for key in keys {
            let lines: Vec<&str> = out.lines().collect();
            let Some(block) = section(&lines, name)? else {
                continue;
            };
            let Some((s, e)) = entry(&lines, block, key) else {
                continue;
            };
            let mut kept: Vec<&str> = lines.clone();
            kept.drain(s..e);
            // A section now empty (no entry, no comment) goes, with the blank line before it.
            let (head, _) = block;
            let rest_end = (head + 1..kept.len())
                .find(|&i| indent(kept[i]) == 0 && !kept[i].trim().is_empty())
                .unwrap_or(kept.len());
            if kept[head + 1..rest_end].iter().all(|l| l.trim().is_empty()) {
                kept.drain(head..rest_end);
                if head > 0 && head == kept.len() && kept[head - 1].trim().is_empty() {
                    kept.pop();
                }
            }
            if let Some(Value::Mapping(m)) = expected.get_mut(name) {
                m.remove(key.as_str());
            }
            out = if kept.is_empty() {
                String::new()
            } else {
                kept.join("\n") + "\n"
            };
            removed = true;
        }
    }
    if !removed {
        return Ok(None);
    }
    check(&out, &expected)?;
    Ok(Some(out))
}

/// The edited text must read as the operator's document with exactly regboot's change.
fn check(out: &str, expected: &Mapping) -> Result<()> {
    // A section with no entry reads the same whether absent, empty or null.
    let normal = |mut m: Mapping| {
        for name in SECTIONS {
            let empty = match m.get(name) {
                Some(Value::Null) => true,
                Some(Value::Mapping(s)) => s.is_empty(),
                _ => false,
            };
            if empty {
                m.remove(name);
            }
        }
        m
    };
    let got = parse(out).context("regboot's edit would not parse")?;
    if normal(got) != normal(expected.clone()) {
        bail!(
            "regboot could not edit it without changing other entries (an unusual layout: \
             anchors, flow style or tabs); put regboot's entries in by hand (docs/inventory.md \
             shows them), then run again"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// docs.k3s.io (installation/private-registry): a mirror for docker.io with a rewrite, and
    /// the configs example with its comments (the values left empty, as the docs show them).
    const K3S_DOCS: &str = r#"mirrors:
  docker.io:
    endpoint:
      - "https://registry.example.com:5000"
    rewrite:
      "^rancher/(.*)": "mirrorproject/rancher-images/$1"
configs:
  "registry.example.com:5000":
    auth:
      username: xxxxxx # this is the registry username
      password: xxxxxx # this is the registry password
    tls:
      cert_file: # path to the cert file used in the registry
      key_file:  # path to the key file used in the registry
      ca_file:   # path to the ca file used in the registry
"#;

    /// docs.rke2.io (install/private_registry), with a wildcard mirror (k3s docs) and a comment
    /// at the top.
    const RKE2_DOCS: &str = r#"# Managed by the platform team.
mirrors:
  "*":
    endpoint:
      - "https://mycustomreg.com:5000"

configs:
  "mycustomreg:5000":
    auth:
      username: xxxxxx # this is the registry username
      password: xxxxxx # this is the registry password
    tls:
      insecure_skip_verify: false # may be set to true to skip verifying the registry's certificate
"#;

    fn ours(key: &str) -> Entry {
        let mirror: Value =
            serde_yaml_ng::from_str(&format!("endpoint: [\"https://{key}\"]")).unwrap();
        let config: Value =
            serde_yaml_ng::from_str("tls: {ca_file: /etc/rancher/k3s/regboot-ca.pem}").unwrap();
        Entry {
            key: key.into(),
            mirror,
            config,
        }
    }

    #[test]
    fn set_keeps_every_other_line_and_remove_gives_the_file_back() {
        for original in [
            K3S_DOCS,
            RKE2_DOCS,
            "",
            "# only a comment\n",
            "mirrors: {}\n",
        ] {
            let keys = ["registry.lab:5000".to_string(), "10.0.0.5:5000".to_string()];
            let mut text = original.to_string();
            for k in &keys {
                text = set(&text, &ours(k)).unwrap();
            }
            // Every line of the operator's file is still there, in order.
            let mut rest = text.lines();
            for line in original.lines().filter(|l| *l != "mirrors: {}") {
                assert!(rest.any(|l| l == line), "{line:?} lost:\n{text}");
            }
            for k in &keys {
                let ca = get(&text, "configs", k).unwrap().unwrap();
                assert_eq!(ca["tls"]["ca_file"], "/etc/rancher/k3s/regboot-ca.pem");
                let m = get(&text, "mirrors", k).unwrap().unwrap();
                assert_eq!(m["endpoint"][0], format!("https://{k}").as_str());
            }
            // Set again: nothing moves.
            assert_eq!(set(&text, &ours(&keys[0])).unwrap(), text);
            let back = remove(&text, &keys).unwrap().unwrap();
            // `mirrors: {}` (no entry) comes back as no section.
            let want = if original == "mirrors: {}\n" {
                ""
            } else {
                original
            };
            assert_eq!(back, want, "from:\n{text}");
            assert_eq!(remove(&back, &keys).unwrap(), None);
        }
    }

    #[test]
    fn an_entry_regboot_wrote_before_is_replaced_in_place() {
        let text = set(K3S_DOCS, &ours("registry.lab:5000")).unwrap();
        let mut newer = ours("registry.lab:5000");
        newer.config["auth"] = serde_yaml_ng::from_str("{username: ci, password: pw}").unwrap();
        let out = set(&text, &newer).unwrap();
        assert_eq!(
            get(&out, "configs", "registry.lab:5000").unwrap().unwrap()["auth"]["username"],
            "ci"
        );
        assert_eq!(out.matches("registry.lab:5000\":").count(), 2, "{out}");
        assert!(out.starts_with(&K3S_DOCS[..K3S_DOCS.find("configs:").unwrap()]));
    }

    #[test]
    fn what_it_cannot_edit_safely_is_refused() {
        for (text, says) in [
            ("mirrors: {docker.io: {endpoint: [x]}}\n", "flow style"),
            ("mirrors:\n  - a\n", "not a mapping"),
            ("mirrors: [\n", "not valid YAML"),
            ("- a\n", "not a YAML mapping"),
        ] {
            let err = set(text, &ours("r:5000")).unwrap_err();
            assert!(format!("{err:#}").contains(says), "{text}: {err:#}");
        }
    }
}
