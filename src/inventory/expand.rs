//! `${VAR}` in any string of the inventory is replaced from the environment. `$${` stands for
//! a literal `${`. A string that is exactly one `${VAR}` takes the variable's YAML type, so
//! `port: ${SSH_PORT}` reads as a number.

use serde_yaml_ng::Value;

use super::locate::YamlPath;

/// A `${VAR}` problem: where, and which variable.
#[derive(Debug, PartialEq, Eq)]
pub struct ExpandError {
    pub path: YamlPath,
    pub message: String,
}

/// Expand every string in `value` in place, reading variables through `lookup`.
pub fn expand_tree(
    value: &mut Value,
    path: &YamlPath,
    lookup: &dyn Fn(&str) -> Option<String>,
    errors: &mut Vec<ExpandError>,
) {
    match value {
        Value::String(s) if s.contains('$') => match expand_str(s, lookup) {
            Ok(expanded) => {
                let whole_var =
                    s.starts_with("${") && s.ends_with('}') && s.matches("${").count() == 1;
                *value = if whole_var {
                    serde_yaml_ng::from_str(&expanded).unwrap_or(Value::String(expanded))
                } else {
                    Value::String(expanded)
                };
            }
            Err(message) => errors.push(ExpandError {
                path: path.clone(),
                message,
            }),
        },
        Value::Sequence(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                expand_tree(item, &path.index(i), lookup, errors);
            }
        }
        Value::Mapping(map) => {
            for (k, v) in map.iter_mut() {
                let key = k.as_str().map(str::to_string).unwrap_or_default();
                expand_tree(v, &path.key(&key), lookup, errors);
            }
        }
        Value::Tagged(tagged) => expand_tree(&mut tagged.value, path, lookup, errors),
        _ => {}
    }
}

fn expand_str(s: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(tail) = after.strip_prefix("${") {
            out.push_str("${");
            rest = tail;
        } else if let Some(body) = after.strip_prefix('{') {
            let end = body
                .find('}')
                .ok_or_else(|| format!("`${{` without a closing `}}` in {s:?}"))?;
            let name = &body[..end];
            let valid = !name.is_empty()
                && !name.starts_with(|c: char| c.is_ascii_digit())
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                return Err(format!("`${{{name}}}` is not a valid variable name"));
            }
            let val = lookup(name).ok_or_else(|| {
                format!("environment variable {name} is not set (export {name}=... before running regboot)")
            })?;
            out.push_str(&val);
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "PORT" => Some("2222".into()),
            "USER_NAME" => Some("ops".into()),
            _ => None,
        }
    }

    #[test]
    fn replaces_variables_and_keeps_literal_dollars() {
        assert_eq!(expand_str("a-${USER_NAME}-b", &env).unwrap(), "a-ops-b");
        assert_eq!(
            expand_str("cost $5 and $${HOME}", &env).unwrap(),
            "cost $5 and ${HOME}"
        );
    }

    #[test]
    fn unset_and_malformed_variables_are_errors() {
        assert!(
            expand_str("${NOPE}", &env)
                .unwrap_err()
                .contains("NOPE is not set")
        );
        assert!(expand_str("${OPEN", &env).unwrap_err().contains("closing"));
        assert!(
            expand_str("${1X}", &env)
                .unwrap_err()
                .contains("not a valid")
        );
    }

    #[test]
    fn whole_variable_takes_its_yaml_type() {
        let mut v: Value = serde_yaml_ng::from_str("port: ${PORT}\nuser: x${USER_NAME}\n").unwrap();
        let mut errors = vec![];
        expand_tree(&mut v, &YamlPath::default(), &env, &mut errors);
        assert!(errors.is_empty());
        assert_eq!(v["port"], Value::from(2222));
        assert_eq!(v["user"], Value::from("xops"));
    }
}
