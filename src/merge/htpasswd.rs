//! The registry's htpasswd file (bcrypt only: distribution rejects other schemes). A hash that
//! still verifies its password is kept, so re-applying unchanged users rewrites nothing.

use std::collections::{BTreeMap, HashMap};

/// bcrypt cost for new hashes (htpasswd -B's default).
pub const COST: u32 = 10;

/// bcrypt cost for [`Secret::Generated`] passwords: the lowest bcrypt allows.
const GENERATED_COST: u32 = 4;

fn hash_cost(hash: &str) -> Option<u32> {
    hash.parse::<bcrypt::HashParts>().ok().map(|p| p.get_cost())
}

/// How the inventory gave a user's secret (`Debug` says which, never the value).
#[derive(Debug, Clone)]
pub enum Secret {
    Password(crate::secret::Secret),
    /// A random password of 256 bits regboot made (the smoke test's user): hashed at bcrypt's
    /// lowest cost, because the registry checks the hash on every request of every pull (at
    /// cost 10 that is most of a pull's CPU on the registry host) and no cost changes how
    /// hopeless guessing such a password is.
    Generated(crate::secret::Secret),
    /// A ready bcrypt hash (`$2a$`, `$2b$` or `$2y$`), written as given.
    BcryptHash(crate::secret::Secret),
}

#[derive(Debug, Clone)]
pub struct User {
    pub name: String,
    pub secret: Secret,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HtpasswdError {
    #[error("registry.users: {name:?} is not a valid user name (non-empty, no ':' or spaces)")]
    BadName { name: String },
    #[error("registry.users: {name} is listed twice")]
    Duplicate { name: String },
    #[error(
        "registry.users: {name}'s password is longer than 72 bytes, which bcrypt cannot hash \
         without silently truncating it; use a shorter password"
    )]
    PasswordTooLong { name: String },
    #[error(
        "registry.users: {name}'s password_hash is not a bcrypt hash ($2a$/$2b$/$2y$, 60 \
         characters); create one with `htpasswd -nbB user password`"
    )]
    BadHash { name: String },
    #[error("bcrypt failed for {name}: {message}")]
    Bcrypt { name: String, message: String },
}

/// The htpasswd file for exactly `users`, sorted by name (`name:hash\n` lines). `existing` is
/// the file on the host, if any: a user's hash there is reused when it verifies the password.
pub fn render(existing: Option<&str>, users: &[User]) -> Result<String, HtpasswdError> {
    let current: HashMap<&str, &str> = existing
        .unwrap_or_default()
        .lines()
        .filter_map(|line| line.trim_end_matches('\r').split_once(':'))
        .collect();
    let mut lines = BTreeMap::new();
    for user in users {
        let name = user.name.as_str();
        if name.is_empty()
            || name.contains(|c: char| c == ':' || c.is_whitespace() || c.is_control())
        {
            return Err(HtpasswdError::BadName {
                name: name.to_owned(),
            });
        }
        let hash = match &user.secret {
            Secret::BcryptHash(hash) => {
                let hash = hash.expose();
                if hash.parse::<bcrypt::HashParts>().is_err() {
                    return Err(HtpasswdError::BadHash {
                        name: name.to_owned(),
                    });
                }
                hash.to_owned()
            }
            Secret::Password(password) => {
                hash_password(name, password.expose(), COST, current.get(name))?
            }
            Secret::Generated(password) => {
                hash_password(name, password.expose(), GENERATED_COST, current.get(name))?
            }
        };
        if lines.insert(name, hash).is_some() {
            return Err(HtpasswdError::Duplicate {
                name: name.to_owned(),
            });
        }
    }
    Ok(lines
        .into_iter()
        .map(|(name, hash)| format!("{name}:{hash}\n"))
        .collect())
}

/// A hash of `password` at `cost`: the old one when it verifies (for a generated password,
/// only at its cost, so older, costlier hashes are replaced once).
fn hash_password(
    name: &str,
    password: &str,
    cost: u32,
    old: Option<&&str>,
) -> Result<String, HtpasswdError> {
    if password.len() > 72 {
        return Err(HtpasswdError::PasswordTooLong {
            name: name.to_owned(),
        });
    }
    // A malformed or foreign (non-bcrypt) old line simply does not verify.
    let kept_cost = |h: &str| cost != GENERATED_COST || hash_cost(h) == Some(cost);
    if let Some(old) = old
        && kept_cost(old)
        && bcrypt::verify(password, old).unwrap_or(false)
    {
        return Ok((*old).to_owned());
    }
    bcrypt::hash_with_result(password, cost)
        .map(|parts| parts.format_for_version(bcrypt::Version::TwoY))
        .map_err(|e| HtpasswdError::Bcrypt {
            name: name.to_owned(),
            message: e.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pw(name: &str, password: &str) -> User {
        User {
            name: name.into(),
            secret: Secret::Password(password.into()),
        }
    }

    fn hash_of<'a>(file: &'a str, name: &str) -> &'a str {
        file.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}:")))
            .unwrap_or_else(|| panic!("{name} not in {file}"))
    }

    #[test]
    fn new_file_has_verifying_2y_hashes_sorted_by_name() {
        let file = render(None, &[pw("zed", "pw-z"), pw("ci", "s3cret:with colon")]).unwrap();
        let names: Vec<&str> = file.lines().map(|l| l.split(':').next().unwrap()).collect();
        assert_eq!(names, ["ci", "zed"]);
        let ci = hash_of(&file, "ci");
        assert!(ci.starts_with("$2y$10$"), "{ci}");
        assert!(bcrypt::verify("s3cret:with colon", ci).unwrap());
        assert!(!bcrypt::verify("wrong", ci).unwrap());
        assert!(file.ends_with('\n'));
    }

    #[test]
    fn second_render_keeps_hashes_and_drops_removed_users() {
        let first = render(None, &[pw("ci", "one"), pw("old", "x")]).unwrap();
        let second = render(Some(&first), &[pw("ci", "one")]).unwrap();
        assert_eq!(second, format!("ci:{}\n", hash_of(&first, "ci")));
        // A changed password gets a new hash.
        let third = render(Some(&second), &[pw("ci", "two")]).unwrap();
        assert_ne!(hash_of(&third, "ci"), hash_of(&second, "ci"));
        assert!(bcrypt::verify("two", hash_of(&third, "ci")).unwrap());
    }

    #[test]
    fn an_existing_2b_hash_that_verifies_is_kept() {
        let old = bcrypt::hash("pw", 4).unwrap(); // $2b$, as htpasswd-compatible tools write
        let existing = format!("ci:{old}\r\n");
        assert_eq!(
            render(Some(&existing), &[pw("ci", "pw")]).unwrap(),
            format!("ci:{old}\n")
        );
    }

    #[test]
    fn a_generated_password_is_hashed_cheaply_and_an_older_costlier_hash_replaced() {
        let random = hex::encode([7u8; 32]);
        let user = User {
            name: "regboot-smoke".into(),
            secret: Secret::Generated(random.as_str().into()),
        };
        let file = render(None, std::slice::from_ref(&user)).unwrap();
        let hash = hash_of(&file, "regboot-smoke");
        assert!(hash.starts_with("$2y$04$"), "{hash}");
        assert!(bcrypt::verify(&random, hash).unwrap());
        assert_eq!(
            render(Some(&file), std::slice::from_ref(&user)).unwrap(),
            file
        );
        let costly = format!("regboot-smoke:{}\n", bcrypt::hash(&random, 10).unwrap());
        let again = render(Some(&costly), &[user]).unwrap();
        assert!(hash_of(&again, "regboot-smoke").starts_with("$2y$04$"));
    }

    #[test]
    fn ready_hashes_are_taken_as_given_and_checked() {
        let given = bcrypt::hash("pw", 4).unwrap();
        let user = User {
            name: "ci".into(),
            secret: Secret::BcryptHash(given.as_str().into()),
        };
        assert_eq!(render(None, &[user]).unwrap(), format!("ci:{given}\n"));
        let bad = User {
            name: "ci".into(),
            secret: Secret::BcryptHash("{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=".into()),
        };
        assert_eq!(
            render(None, &[bad]),
            Err(HtpasswdError::BadHash { name: "ci".into() })
        );
    }

    #[test]
    fn bad_input_is_refused_without_echoing_secrets() {
        assert!(matches!(
            render(None, &[pw("a:b", "x")]),
            Err(HtpasswdError::BadName { .. })
        ));
        assert!(matches!(
            render(None, &[pw("ci", "x"), pw("ci", "y")]),
            Err(HtpasswdError::Duplicate { .. })
        ));
        let long = "p".repeat(73);
        let err = render(None, &[pw("ci", &long)]).unwrap_err();
        assert!(!err.to_string().contains(&long));
        assert!(!format!("{:?}", pw("ci", "topsecret")).contains("topsecret"));
    }

    #[test]
    fn no_users_is_an_empty_file() {
        assert_eq!(render(Some("ci:$2y$10$x\n"), &[]).unwrap(), "");
    }
}
