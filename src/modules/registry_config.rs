//! What the registry's files are made from, computed once per run before any host is touched
//! (`Module::prepare` of registry_files): the users' htpasswd entries (with the smoke test's
//! own) and config.yml (the http secret from the state directory, storage credentials from
//! the environment). A missing credential stops the run before its first change.

use anyhow::{Context, Result, anyhow, bail};

use crate::engine::module::PrepareCx;
use crate::inventory::{Inventory, Role, SMOKE_USER, Storage, TlsMode, UserSecret};
use crate::material::Material;
use crate::merge::htpasswd;
use crate::pki::{self, StateDir};
use crate::render::{self, RegistryConfig};

/// The registry's users and config.yml for this run.
pub(crate) struct RegistryData {
    /// The inventory's users, then (when there is any) the smoke test's own.
    pub users: Vec<htpasswd::User>,
    pub config: String,
}

/// What registry_files prepared; an error names the missing step.
pub(crate) fn of(material: &Material) -> Result<&RegistryData> {
    material
        .prepared::<RegistryData>("registry_files")
        .ok_or_else(|| {
            anyhow!("the playbook has no registry_files step to prepare the registry's files")
        })
}

pub(crate) fn prepare(cx: &PrepareCx) -> Result<RegistryData> {
    let inv = cx.inv;
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
    if let Some((_, password)) = super::smoke_test::login(inv, cx.state, cx.check)? {
        users.push(htpasswd::User {
            name: SMOKE_USER.into(),
            secret: htpasswd::Secret::Generated(password.into()),
        });
    }
    let replicas = inv.hosts_with(Role::Registry).count();
    let registry = RegistryConfig {
        storage: storage(inv)?,
        delete_enabled: inv.registry.delete_enabled,
        http_secret: http_secret(cx.state, cx.check)?.into(),
        tls: inv.tls.mode != TlsMode::Insecure,
        auth_realm: (!users.is_empty()).then(|| "regboot registry".to_string()),
        blob_cache: !(inv.registry.delete_enabled && replicas > 1),
        read_only: inv.registry.read_only,
    };
    Ok(RegistryData {
        users,
        config: cx.templates.registry_config(&registry)?,
    })
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
    use crate::render::Templates;

    const USERS: &str = "  users:\n    - name: ci\n      password_hash: \
        \"$2b$10$S8G05dafihOHo1.sAr.Z/.RoNEhpLNBgVN2Vku5hk.d21hD6I7xIO\"\n";

    fn prepare_in(inv: &Inventory, state: &StateDir, check: bool) -> Result<RegistryData> {
        let templates = Templates::embedded();
        prepare(&PrepareCx {
            inv,
            state,
            templates: &templates,
            check,
        })
    }

    #[test]
    fn the_smoke_test_logs_in_as_its_own_user_even_with_only_hashes() {
        let tmp = tempfile::tempdir().unwrap();
        let state = StateDir::open(tmp.path()).unwrap();
        let inv = testing::inventory(USERS);
        let data = prepare_in(&inv, &state, false).unwrap();
        let password = state.read_secret(pki::state::SMOKE_PASSWORD).unwrap();
        let login = super::super::smoke_test::login(&inv, &state, false).unwrap();
        assert_eq!(login, Some((SMOKE_USER.to_string(), password.unwrap())));
        let names: Vec<&str> = data.users.iter().map(|u| u.name.as_str()).collect();
        assert_eq!(names, ["ci", SMOKE_USER]);
        // Kept from run to run, so htpasswd does not change.
        let again = super::super::smoke_test::login(&inv, &state, false).unwrap();
        assert_eq!(again, login);
    }

    #[test]
    fn without_users_there_is_no_login_and_no_credential() {
        let tmp = tempfile::tempdir().unwrap();
        let state = StateDir::open(tmp.path()).unwrap();
        let inv = testing::inventory("");
        let data = prepare_in(&inv, &state, false).unwrap();
        assert!(data.users.is_empty());
        assert_eq!(
            super::super::smoke_test::login(&inv, &state, false).unwrap(),
            None
        );
        assert_eq!(state.read(pki::state::SMOKE_PASSWORD).unwrap(), None);
    }

    #[test]
    fn plan_and_verify_write_no_secret() {
        let tmp = tempfile::tempdir().unwrap();
        let inv = testing::inventory(USERS);
        let state = StateDir::open(tmp.path()).unwrap();
        let planned = prepare_in(&inv, &state, true).unwrap();
        assert_eq!(planned.users.len(), 2);
        assert!(std::fs::read_dir(tmp.path()).unwrap().next().is_none());
        // Verify needs the stored credential: before an apply made it, it says so.
        let read_only = StateDir::existing(tmp.path()).unwrap();
        let err = format!(
            "{:#}",
            super::super::smoke_test::login(&inv, &read_only, false).unwrap_err()
        );
        assert!(
            err.contains("smoke-password missing") && err.contains("regboot apply"),
            "{err}"
        );
        prepare_in(&inv, &state, false).unwrap();
        let stored = state.read_secret(pki::state::SMOKE_PASSWORD).unwrap();
        let login = super::super::smoke_test::login(&inv, &read_only, false).unwrap();
        assert_eq!(login.map(|(_, p)| p), stored);
    }
}
