//! The registry, its storage and its users, and the docker daemon.json keys.

use super::super::model::*;
use super::super::raw::*;
use super::syntax::{is_bcrypt_hash, is_hostname, is_image_reference, nearest};
use super::{Checker, at};
use crate::fsutil::SECRET_LIMIT;
use crate::merge::daemon_json::KNOWN_KEYS;

impl Checker<'_> {
    pub(super) fn registry(&mut self, r: RawRegistry, hosts: &[Host]) -> Registry {
        let rp = at(&["registry"]);
        if !is_hostname(&r.hostname) {
            self.error(
                &rp.key("hostname"),
                format!("{:?} is not a valid DNS name", r.hostname),
                Some("clients put this name in image references: use a DNS name like registry.example.com".into()),
            );
        }
        for (i, a) in r.aliases.iter().enumerate() {
            if !is_hostname(a) {
                self.error(
                    &rp.key("aliases").index(i),
                    format!("{a:?} is not a valid DNS name"),
                    None,
                );
            }
        }
        let mut extra_ips = Vec::new();
        for (i, ip) in r.extra_ips.iter().enumerate() {
            match ip.parse() {
                Ok(ip) => extra_ips.push(ip),
                Err(_) => self.error(
                    &rp.key("extra_ips").index(i),
                    format!("{ip:?} is not an IP address"),
                    None,
                ),
            }
        }
        let port = self.port(&rp.key("port"), r.port, 5000);
        if let Some(image) = r.image.as_deref().filter(|i| !is_image_reference(i)) {
            self.error(
                &rp.key("image"),
                format!("{image:?} is not an image reference"),
                Some("write it like registry:2 or mirror.example.com:5000/library/registry:2.8.3 (lowercase, optional @sha256:digest)".into()),
            );
        }
        let image_archive = r
            .image_archive
            .as_ref()
            .map(|a| self.readable_file(&rp.key("image_archive"), a, "image archive", None));
        let data_dir = r
            .data_dir
            .unwrap_or_else(|| "/var/lib/regboot/registry".into());
        if !data_dir.starts_with('/') {
            self.error(
                &rp.key("data_dir"),
                format!("data_dir {data_dir:?} is not an absolute path"),
                Some("use a path on the registry hosts starting with /".into()),
            );
        }
        let storage = self.storage(r.storage, hosts);
        let users = self.users(&r.users);
        for (i, name) in r.login_agents.iter().enumerate() {
            if !users.iter().any(|u| &u.name == name) {
                self.error(
                    &rp.key("login_agents").index(i),
                    format!("login_agents names {name:?}, which is not in registry.users"),
                    Some("list only users defined under registry.users".into()),
                );
            }
        }
        let tracing = r.tracing.map(|t| {
            if !["otlp", "console"].contains(&t.exporter.as_str()) {
                self.error(
                    &rp.key("tracing").key("exporter"),
                    format!("{:?} is not an exporter distribution knows", t.exporter),
                    Some("otlp or console; leave out `tracing` to keep it off".into()),
                );
            }
            if let Some(why) = t.endpoint.as_deref().and_then(Tracing::exposed_secret) {
                let hint = "point it at a collector that needs no credentials (one on the host, or a relay that adds them)";
                self.error(&rp.key("tracing").key("endpoint"), why, Some(hint.into()));
            }
            Tracing {
                exporter: t.exporter,
                endpoint: t.endpoint,
            }
        });
        Registry {
            hostname: r.hostname,
            port,
            aliases: r.aliases,
            extra_ips,
            hosts_file: r.hosts_file.unwrap_or(true),
            image: r.image.unwrap_or_else(|| "registry:2".into()),
            image_archive,
            data_dir,
            delete_enabled: r.delete_enabled.unwrap_or(true),
            storage,
            users,
            login_agents: r.login_agents,
            tracing,
            read_only: false,
        }
    }

    pub(super) fn storage(&mut self, s: RawStorage, hosts: &[Host]) -> Storage {
        let sp = at(&["registry", "storage"]);
        let driver = s.driver.unwrap_or(StorageDriver::Filesystem);
        let missing = |this: &mut Self, section: &str| {
            this.error(
                &sp,
                format!("storage driver {section} needs a `{section}:` section"),
                Some(format!("add registry.storage.{section} with bucket, region and the key variables (see docs/inventory.md)")),
            );
        };
        match driver {
            StorageDriver::Filesystem => {
                let shared = s.shared.unwrap_or(false);
                let replicas = hosts.iter().filter(|h| h.has_role(Role::Registry)).count();
                if replicas > 1 && !shared {
                    self.error(
                        &sp.key("driver"),
                        format!("{replicas} registry hosts with filesystem storage would each keep their own images"),
                        Some("use s3 or oss storage, or mount shared storage at data_dir and set `shared: true`".into()),
                    );
                }
                Storage::Filesystem { shared }
            }
            StorageDriver::S3 => match s.s3 {
                None => {
                    missing(self, "s3");
                    Storage::Filesystem { shared: false }
                }
                Some(s3) => {
                    self.env_set(&sp.key("s3").key("access_key_env"), &s3.access_key_env);
                    self.env_set(&sp.key("s3").key("secret_key_env"), &s3.secret_key_env);
                    Storage::S3(S3Storage {
                        bucket: s3.bucket,
                        region: s3.region.unwrap_or_else(|| "us-east-1".into()),
                        endpoint: s3.endpoint,
                        access_key_env: s3.access_key_env,
                        secret_key_env: s3.secret_key_env,
                        path_style: s3.path_style.unwrap_or(true),
                        redirect: s3.redirect.unwrap_or(false),
                        create_bucket: s3.create_bucket.unwrap_or(false),
                    })
                }
            },
            StorageDriver::Oss => match s.oss {
                None => {
                    missing(self, "oss");
                    Storage::Filesystem { shared: false }
                }
                Some(oss) => {
                    self.env_set(&sp.key("oss").key("access_key_env"), &oss.access_key_env);
                    self.env_set(&sp.key("oss").key("secret_key_env"), &oss.secret_key_env);
                    Storage::Oss(OssStorage {
                        bucket: oss.bucket,
                        region: oss.region,
                        endpoint: oss.endpoint,
                        access_key_env: oss.access_key_env,
                        secret_key_env: oss.secret_key_env,
                        secure: oss.secure.unwrap_or(true),
                    })
                }
            },
        }
    }

    pub(super) fn users(&mut self, raw: &[RawUser]) -> Vec<User> {
        let mut users: Vec<User> = Vec::new();
        for (i, u) in raw.iter().enumerate() {
            let up = at(&["registry", "users"]).index(i);
            if u.password.is_some() {
                self.error(
                    &up.key("password"),
                    format!("user {}: a plaintext password is not allowed in the inventory", u.name),
                    Some("use password_env (a variable name), password_file (a path), or password_hash (from `regboot user hash`)".into()),
                );
                continue;
            }
            self.user_name(&up.key("name"), &u.name);
            if u.name == SMOKE_USER {
                self.error(
                    &up.key("name"),
                    format!("{SMOKE_USER:?} is reserved for regboot's smoke test"),
                    Some("choose another user name".into()),
                );
                continue;
            }
            if users.iter().any(|x| x.name == u.name) {
                self.error(
                    &up.key("name"),
                    format!("duplicate user {:?}", u.name),
                    None,
                );
                continue;
            }
            let secret = match (&u.password_env, &u.password_file, &u.password_hash) {
                (Some(var), None, None) => {
                    self.env_set(&up.key("password_env"), var);
                    UserSecret::Env(var.clone())
                }
                (None, Some(file), None) => UserSecret::File(self.readable_file(
                    &up.key("password_file"),
                    file,
                    "password file (`password_file:`)",
                    Some(SECRET_LIMIT),
                )),
                (None, None, Some(hash)) => {
                    if !is_bcrypt_hash(hash) {
                        self.error(
                            &up.key("password_hash"),
                            "password_hash is not a bcrypt hash ($2b$/$2y$...)",
                            Some(
                                "create one with `regboot user hash` (reads the password on stdin)"
                                    .into(),
                            ),
                        );
                    }
                    UserSecret::Hash(hash.clone())
                }
                _ => {
                    self.error(
                        &up,
                        format!("user {} needs exactly one of password_env, password_file, password_hash", u.name),
                        None,
                    );
                    continue;
                }
            };
            users.push(User {
                name: u.name.clone(),
                secret,
            });
        }
        users
    }

    /// dockerd refuses to start with a key it does not know, so catch typos here.
    pub(super) fn daemon_json_keys(&mut self, keys: &serde_json::Map<String, serde_json::Value>) {
        for key in keys.keys().filter(|k| !KNOWN_KEYS.contains(&k.as_str())) {
            let hint = match nearest(key, KNOWN_KEYS.iter().copied()) {
                Some(n) => format!("did you mean `{n}`? "),
                None => String::new(),
            } + "dockerd refuses to start with a key it does not know (see its reference, \"daemon configuration file\")";
            self.key_error(
                &at(&["docker", "daemon_json", key]),
                format!("`{key}` is not a dockerd daemon.json option"),
                Some(hint),
            );
        }
    }
}
