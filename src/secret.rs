//! A value that must stay out of logs, `{:?}` output and error messages.

use serde::Serialize;

/// `Debug` prints `Secret(..)`; `Serialize` gives the value, for the templates that write it
/// into a host's files (which are 0600 and shown redacted in plan). [`Secret::expose`] is the
/// only other way in.
#[derive(Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Secret(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Secret(value.to_string())
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_and_serialize_gives_the_value() {
        let s = Secret::from("hunter2");
        assert_eq!(
            format!("{s:?} {:?}", Some(&s)),
            "Secret(..) Some(Secret(..))"
        );
        assert_eq!(serde_json::to_string(&s).unwrap(), "\"hunter2\"");
        assert_eq!(s.expose(), "hunter2");
    }
}
