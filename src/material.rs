//! What a run computes locally before it touches a host: the CA and the registry
//! certificate (from the state directory), the http secret, the users (with the smoke test's
//! own) and the registry's config.yml. Every module reads from this; none of it is printed.
//! A read-only state directory (`verify`) is only read: what is missing is an error.

use anyhow::{Context, Result, bail};
use time::OffsetDateTime;

use crate::inventory::{Inventory, Role, SMOKE_USER, Storage, TlsMode, UserSecret};
use crate::merge::htpasswd;
use crate::pki::rotation::{self, CaRole};
use crate::pki::{self, Ca, CaOutcome, LeafOutcome, StateDir};
use crate::render::{self, RegistryConfig, Templates};
use crate::tls_setup as setup;

/// The TLS files the registry serves and clients trust; `None` in tls.mode insecure.
pub struct Tls {
    pub ca_pem: String,
    /// Leaf then CA (or the provided chain).
    pub chain_pem: String,
    pub key_pem: String,
    /// CAs trusted beside `ca_pem` while a CA rotation is under way (see `pki::rotation`).
    pub extra_cas: Vec<(CaRole, String)>,
}

impl Tls {
    /// Every CA to trust now, as one PEM bundle: the current one and, during a CA rotation,
    /// the next or previous one (for clients that take a single CA file, like nginx).
    pub fn trusted_bundle(&self) -> String {
        let mut bundle = self.ca_pem.clone();
        for (_, pem) in &self.extra_cas {
            if !bundle.ends_with('\n') {
                bundle.push('\n');
            }
            bundle.push_str(pem);
        }
        bundle
    }
}

/// How the registry's config.yml lets clients in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RegistryMode {
    /// Pushes, pulls and deletes.
    #[default]
    Serving,
    /// `maintenance.readonly`: pulls only, while `regboot gc` collects garbage.
    ReadOnly,
}

pub struct Material {
    pub tls: Option<Tls>,
    /// The inventory's users, then (when there is any) the smoke test's own.
    pub users: Vec<htpasswd::User>,
    /// The smoke test's login: [`SMOKE_USER`] and its password; `None` without auth.
    pub smoke_login: Option<(String, String)>,
    pub registry_config: String,
    /// What changed in the state directory this run (printed before the host steps).
    pub notes: Vec<String>,
}

impl Material {
    /// Ensure the CA and certificate in `state` and gather everything else. `keep_state`
    /// (and a read-only `state`): use the state directory's CA and certificate as they are
    /// (a rotation prepared them; verify must not change them).
    pub fn prepare(
        inv: &Inventory,
        state: &StateDir,
        templates: &Templates,
        check: bool,
        keep_state: bool,
        mode: RegistryMode,
    ) -> Result<Material> {
        let mut notes = Vec::new();
        if !inv.tls.os_trust_store && inv.tls.mode != TlsMode::Insecure {
            notes.push(
                "tls.os_trust_store is false: the CA stays out of every host's OS trust store \
                 (docker trusts it through certs.d); curl, skopeo, containerd's CRI and podman \
                 without their own CA directory, and anything else reading the system store \
                 will not trust the registry"
                    .to_string(),
            );
        }
        let tls = match &inv.tls.mode {
            TlsMode::Insecure => None,
            TlsMode::SelfSigned if keep_state || state.is_read_only() => Some(stored(state)?),
            TlsMode::SelfSigned => Some(self_signed(inv, state, check, &mut notes)?),
            TlsMode::Provided { ca_cert, cert, key } => Some(provided(inv, ca_cert, cert, key)?),
        };
        let mut users = Vec::new();
        for u in &inv.registry.users {
            let secret = match (&u.secret, u.password()?) {
                (UserSecret::Hash(h), _) => htpasswd::Secret::BcryptHash(h.as_str().into()),
                (_, Some(pw)) => htpasswd::Secret::Password(pw.into()),
                (_, None) => bail!("user {}: no password found", u.name),
            };
            users.push(htpasswd::User {
                name: u.name.clone(),
                secret,
            });
        }
        // The smoke test logs in as its own user, so it runs even when every inventory user
        // has only a password_hash. Without users there is no auth, and no login.
        let smoke_login = if users.is_empty() {
            None
        } else {
            let password = smoke_password(state, check)?;
            users.push(htpasswd::User {
                name: SMOKE_USER.into(),
                secret: htpasswd::Secret::Generated(password.clone().into()),
            });
            Some((SMOKE_USER.to_string(), password))
        };
        let replicas = inv.hosts_with(Role::Registry).count();
        let registry = RegistryConfig {
            storage: storage(inv)?,
            delete_enabled: inv.registry.delete_enabled,
            http_secret: http_secret(state, check)?.into(),
            tls: tls.is_some(),
            auth_realm: (!users.is_empty()).then(|| "regboot registry".to_string()),
            blob_cache: !(inv.registry.delete_enabled && replicas > 1),
            read_only: mode == RegistryMode::ReadOnly,
        };
        Ok(Material {
            tls,
            users,
            smoke_login,
            registry_config: templates.registry_config(&registry)?,
            notes,
        })
    }
}

/// The shared http secret; in check mode (and read-only, which writes no config.yml) a
/// missing one is made up and not stored (config.yml is shown redacted anyway).
fn http_secret(state: &StateDir, check: bool) -> Result<String> {
    match state.read_secret(pki::state::HTTP_SECRET)? {
        Some(secret) => Ok(secret),
        None if check || state.is_read_only() => Ok(hex::encode(rand::random::<[u8; 32]>())),
        None => state.http_secret(),
    }
}

/// The smoke test user's password, made by the first apply. In check mode a missing one is
/// made up and not stored (htpasswd is shown as a digest); verify needs the stored one.
fn smoke_password(state: &StateDir, check: bool) -> Result<String> {
    match state.read_secret(pki::state::SMOKE_PASSWORD)? {
        Some(password) => Ok(password),
        None if state.is_read_only() => Err(missing(state, pki::state::SMOKE_PASSWORD)),
        None if check => Ok(hex::encode(rand::random::<[u8; 32]>())),
        None => state.smoke_password(),
    }
}

fn missing(state: &StateDir, name: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "{name} missing from {}: run `regboot apply` first",
        state.root().display()
    )
}

fn read_state(state: &StateDir, name: &str) -> Result<String> {
    state.read(name)?.ok_or_else(|| missing(state, name))
}

/// The CA, leaf and rotation CAs exactly as the state directory holds them.
fn stored(state: &StateDir) -> Result<Tls> {
    Ok(Tls {
        ca_pem: read_state(state, pki::state::CA_CERT)?,
        chain_pem: read_state(state, pki::state::REGISTRY_CHAIN)?,
        key_pem: read_state(state, pki::state::REGISTRY_KEY)?,
        extra_cas: rotation::extra_cas(state)?,
    })
}

/// The CA and leaf from the state directory, created or reissued when needed. In check mode
/// nothing is written: a missing CA or a due leaf is made in memory, to show the diffs.
fn self_signed(
    inv: &Inventory,
    state: &StateDir,
    check: bool,
    notes: &mut Vec<String>,
) -> Result<Tls> {
    let read = |name| read_state(state, name);
    if !check {
        let (ca, ensured) = setup::ensure(state, inv)?;
        if ensured.ca == CaOutcome::Created {
            notes.push(format!("created CA {:?}", ca.info().subject));
        }
        if let LeafOutcome::Issued { reason } = ensured.leaf {
            notes.push(format!("issued the registry certificate: {reason}"));
        }
        return Ok(Tls {
            ca_pem: ca.cert_pem().to_string(),
            chain_pem: read(pki::state::REGISTRY_CHAIN)?,
            key_pem: read(pki::state::REGISTRY_KEY)?,
            extra_cas: rotation::extra_cas(state)?,
        });
    }
    let ca = match Ca::load_from(state)? {
        Some(ca) => ca,
        None => {
            let ca = Ca::generate(&setup::ca_spec(inv))?;
            notes.push(format!("would create CA {:?}", ca.info().subject));
            ca
        }
    };
    let spec = setup::leaf_spec(inv);
    let outside = ca.names_outside(&spec);
    if !outside.is_empty() {
        bail!("{}", pki::leaf::NeedsNewCa { outside });
    }
    let (chain_pem, key_pem) =
        match pki::leaf::reissue_reason(state, &ca, &spec, OffsetDateTime::now_utc())? {
            None => (
                read(pki::state::REGISTRY_CHAIN)?,
                read(pki::state::REGISTRY_KEY)?,
            ),
            Some(reason) => {
                notes.push(format!("would issue the registry certificate: {reason}"));
                let leaf = pki::leaf::issue(&ca, &spec)?;
                (
                    pki::leaf::chain_pem(&leaf.cert_pem, ca.cert_pem()),
                    leaf.key_pem,
                )
            }
        };
    Ok(Tls {
        ca_pem: ca.cert_pem().to_string(),
        chain_pem,
        key_pem,
        extra_cas: rotation::extra_cas(state)?,
    })
}

fn provided(
    inv: &Inventory,
    ca_cert: &std::path::Path,
    cert: &std::path::Path,
    key: &std::path::Path,
) -> Result<Tls> {
    let files = pki::provided::ProvidedFiles {
        ca_cert: ca_cert.to_path_buf(),
        cert: cert.to_path_buf(),
        key: key.to_path_buf(),
    };
    let report = pki::provided::check(
        &files,
        &inv.cert_dns_sans(),
        &inv.cert_ip_sans(),
        setup::renew_before(&inv.tls),
        OffsetDateTime::now_utc(),
    )?;
    if !report.is_fit() {
        bail!(
            "the provided certificate cannot be used:\n  {}",
            report.problems.join("\n  ")
        );
    }
    let read = |p| crate::fsutil::read_text_limited(p, "tls.provided", crate::fsutil::PEM_LIMIT);
    let ca_pem = read(ca_cert)?;
    Ok(Tls {
        chain_pem: format!("{}{}", read(cert)?.trim_end(), format_args!("\n{}", ca_pem)),
        ca_pem,
        key_pem: read(key)?,
        extra_cas: Vec::new(),
    })
}

fn storage(inv: &Inventory) -> Result<render::Storage> {
    let env = |var: &str| {
        std::env::var(var).with_context(|| format!("environment variable {var} is not set"))
    };
    Ok(match &inv.registry.storage {
        Storage::Filesystem { .. } => render::Storage::Filesystem,
        Storage::S3(s3) => render::Storage::S3(render::S3Storage {
            bucket: s3.bucket.clone(),
            region: s3.region.clone(),
            endpoint: s3.endpoint.clone(),
            access_key: Some(env(&s3.access_key_env)?.into()),
            secret_key: Some(env(&s3.secret_key_env)?.into()),
            path_style: s3.path_style,
            v4auth: true,
            secure: !s3
                .endpoint
                .as_deref()
                .is_some_and(|e| e.starts_with("http://")),
            redirect: s3.redirect,
        }),
        Storage::Oss(oss) => render::Storage::Oss(render::OssStorage {
            bucket: oss.bucket.clone(),
            region: oss.region.clone(),
            endpoint: oss.endpoint.clone(),
            access_key_id: env(&oss.access_key_env)?.into(),
            access_key_secret: env(&oss.secret_key_env)?.into(),
            secure: oss.secure,
            redirect: false,
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::testing;

    const USERS: &str = "  users:\n    - name: ci\n      password_hash: \
        \"$2b$10$S8G05dafihOHo1.sAr.Z/.RoNEhpLNBgVN2Vku5hk.d21hD6I7xIO\"\n";

    fn prepare(inv: &Inventory, state: &StateDir, check: bool) -> Result<Material> {
        Material::prepare(
            inv,
            state,
            &Templates::embedded(),
            check,
            false,
            RegistryMode::Serving,
        )
    }

    /// The state directory's files with their contents.
    fn files(state: &StateDir) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = std::fs::read_dir(state.root())
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let name = e.file_name().to_string_lossy().into_owned();
                (name, std::fs::read_to_string(e.path()).unwrap_or_default())
            })
            .collect();
        out.sort();
        out
    }

    #[test]
    fn the_smoke_test_logs_in_as_its_own_user_even_with_only_hashes() {
        let tmp = tempfile::tempdir().unwrap();
        let state = StateDir::open(tmp.path()).unwrap();
        let inv = testing::inventory(USERS);
        let m = prepare(&inv, &state, false).unwrap();
        let password = state.read_secret(pki::state::SMOKE_PASSWORD).unwrap();
        let (user, login) = m.smoke_login.clone().expect("a smoke login");
        assert_eq!((user.as_str(), Some(login)), (SMOKE_USER, password));
        let names: Vec<&str> = m.users.iter().map(|u| u.name.as_str()).collect();
        assert_eq!(names, ["ci", SMOKE_USER]);
        // Kept from run to run, so htpasswd does not change.
        let again = prepare(&inv, &state, false).unwrap();
        assert_eq!(again.smoke_login, m.smoke_login);
    }

    #[test]
    fn without_users_there_is_no_login_and_no_credential() {
        let tmp = tempfile::tempdir().unwrap();
        let state = StateDir::open(tmp.path()).unwrap();
        let m = prepare(&testing::inventory(""), &state, false).unwrap();
        assert!(m.users.is_empty() && m.smoke_login.is_none());
        assert_eq!(state.read(pki::state::SMOKE_PASSWORD).unwrap(), None);
    }

    #[test]
    fn plan_and_verify_write_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let inv = testing::inventory(USERS);
        let state = StateDir::open(tmp.path()).unwrap();
        let planned = prepare(&inv, &state, true).unwrap();
        assert!(planned.smoke_login.is_some());
        assert!(files(&state).is_empty(), "{:?}", files(&state));

        let read_only = StateDir::existing(tmp.path()).unwrap();
        let err = format!("{:#}", prepare(&inv, &read_only, false).err().unwrap());
        assert!(
            err.contains("ca.crt missing") && err.contains("regboot apply"),
            "{err}"
        );

        // After an apply (here: one without users, so no credential yet), verify reads the
        // CA and says the credential is missing; after one with users it has what it needs.
        prepare(&testing::inventory(""), &state, false).unwrap();
        let err = format!("{:#}", prepare(&inv, &read_only, false).err().unwrap());
        assert!(err.contains("smoke-password missing"), "{err}");
        prepare(&inv, &state, false).unwrap();
        let before = files(&state);
        let verified = prepare(&inv, &read_only, false).unwrap();
        assert_eq!(files(&state), before);
        let stored = state.read_secret(pki::state::SMOKE_PASSWORD).unwrap();
        assert_eq!(verified.smoke_login.map(|(_, p)| p), stored);
    }

    /// plan (check mode) and apply both stop before a certificate the CA cannot vouch for.
    #[test]
    fn names_outside_the_ca_stop_plan_and_apply_with_rotate_ca() {
        let mut inv = crate::modules::testing::inventory("");
        let tmp = tempfile::tempdir().unwrap();
        let state = StateDir::open(tmp.path()).unwrap();
        prepare(&inv, &state, false).unwrap();
        inv.registry.aliases.push("hub.other.example".into());
        for check in [true, false] {
            let err = prepare(&inv, &state, check).err().unwrap().to_string();
            assert!(err.contains("needs a new CA"), "{err}");
            assert!(err.contains("hub.other.example"), "{err}");
            assert!(err.contains("rotate --ca"), "{err}");
        }
        // A subdomain of the hostname still fits: the CA stays, the leaf is reissued.
        inv.registry.aliases = vec!["mirror.registry.test".into()];
        let m = prepare(&inv, &state, false).unwrap();
        assert!(
            m.notes
                .iter()
                .any(|n| n.contains("issued the registry certificate")),
            "{:?}",
            m.notes
        );
    }
}
