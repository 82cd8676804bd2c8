//! The files regboot writes on hosts, rendered from minijinja templates embedded in the binary
//! (`templates/`). One typed function per template: callers pass plain values, this module
//! validates what would break the target syntax and quotes what the syntax can quote.

use std::net::IpAddr;

use minijinja::syntax::SyntaxConfig;
use minijinja::value::Serde;
use minijinja::{Environment, UndefinedBehavior, context};
use serde::Serialize;

use crate::secret::Secret;

/// Paths and port inside the registry container; the registry module mounts files there.
pub mod container {
    /// The registry listens here inside the container (`http.addr`).
    pub const PORT: u16 = 5000;
    pub const CONFIG_PATH: &str = "/etc/docker/registry/config.yml";
    pub const CERT_PATH: &str = "/certs/registry-chain.crt";
    pub const KEY_PATH: &str = "/certs/registry.key";
    pub const HTPASSWD_PATH: &str = "/auth/htpasswd";
    /// Filesystem storage root; the host's `registry.data_dir` is mounted here.
    pub const DATA_PATH: &str = "/var/lib/registry";
}

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("{field}: {value:?} {reason}")]
    Invalid {
        field: &'static str,
        value: String,
        reason: &'static str,
    },
    #[error("template {name}: {source}")]
    Template {
        name: &'static str,
        source: minijinja::Error,
    },
}

/// The registry's `config.yml`.
#[derive(Debug, Clone, Serialize)]
pub struct RegistryConfig {
    pub storage: Storage,
    pub delete_enabled: bool,
    /// Secret shared by all replicas (signs upload state).
    pub http_secret: Secret,
    /// TLS with the certificate and key at [`container::CERT_PATH`] / [`container::KEY_PATH`];
    /// false only for `tls.mode: insecure`.
    pub tls: bool,
    /// htpasswd auth at [`container::HTPASSWD_PATH`] with this realm; `None`: no auth.
    pub auth_realm: Option<String>,
    /// Each replica keeps an in-memory blob descriptor cache. Off where several replicas
    /// share storage with deletes on: one replica's cache would answer for a blob another
    /// replica (or `regboot gc`) deleted.
    pub blob_cache: bool,
    /// `maintenance.readonly`: pushes and deletes are refused, pulls served (`regboot gc`).
    pub read_only: bool,
}

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "driver", rename_all = "lowercase")]
pub enum Storage {
    /// Blobs under [`container::DATA_PATH`].
    Filesystem,
    S3(S3Storage),
    Oss(OssStorage),
}

#[derive(Debug, Clone, Serialize)]
pub struct S3Storage {
    pub bucket: String,
    pub region: String,
    /// `regionendpoint`: the URL of a non-AWS S3 service (minio, seaweedfs, ceph).
    pub endpoint: Option<String>,
    /// Without keys the driver uses the instance's IAM role.
    pub access_key: Option<Secret>,
    pub secret_key: Option<Secret>,
    pub path_style: bool,
    pub v4auth: bool,
    pub secure: bool,
    /// false: the registry serves blobs itself instead of redirecting clients to the bucket.
    pub redirect: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct OssStorage {
    pub bucket: String,
    pub region: String,
    pub endpoint: Option<String>,
    pub access_key_id: Secret,
    pub access_key_secret: Secret,
    pub secure: bool,
    pub redirect: bool,
}

/// One `/etc/hosts` line: `ip name alias...`.
#[derive(Debug, Clone, Serialize)]
pub struct HostsEntry {
    pub ip: IpAddr,
    pub names: Vec<String>,
}

/// nginx in front of the replicas on an lb host.
#[derive(Debug, Clone)]
pub struct LoadBalancer {
    /// The registry hostname: `server_name`, and the name checked on the replicas' certificate.
    pub server_name: String,
    pub listen_port: u16,
    /// Replica addresses (IP or DNS name), the port each publishes, and whether it is
    /// drained (nginx passes it nothing).
    pub replicas: Vec<(String, u16, bool)>,
    /// Paths on the lb host.
    pub cert_path: String,
    pub key_path: String,
    pub ca_path: String,
}

/// nginx in front of the registry container on a registry host (blue/green rolls).
#[derive(Debug, Clone)]
pub struct RegistryFront {
    /// The registry hostname: `server_name`, and the name sent to the container (SNI).
    pub server_name: String,
    pub listen_port: u16,
    /// TLS with the registry's certificate (false only for `tls.mode: insecure`).
    pub tls: bool,
    /// The file holding `upstream registry_backend` and the certificate nginx serves (the
    /// serving container's own copy), rewritten by each roll.
    pub backend_path: String,
    /// The CA(s) the container's certificate must chain to (both during a CA rotation).
    pub ca_path: String,
}

/// keepalived on one lb host.
#[derive(Debug, Clone)]
pub struct Keepalived {
    pub interface: String,
    pub virtual_router_id: u8,
    /// Higher wins the first election; give each lb host a different one.
    pub priority: u8,
    pub vip: IpAddr,
    /// Prefix length of the VIP on the interface; `None` adds it as a single address.
    pub vip_prefix: Option<u8>,
    /// The port nginx listens on (the registry port), probed by the health check.
    pub check_port: u16,
}

const REGISTRY_CONFIG: &str = "registry-config.yml";
const HOSTS_BLOCK: &str = "hosts-block";
const NGINX_CONF: &str = "nginx.conf";
const KEEPALIVED_CONF: &str = "keepalived.conf";
const REGISTRY_FRONT: &str = "registry-front.conf";

/// The template set. Built once per run; an override directory can plug in here later.
pub struct Templates {
    env: Environment<'static>,
}

impl Default for Templates {
    fn default() -> Self {
        Self::embedded()
    }
}

impl Templates {
    /// The templates compiled into the binary.
    pub fn embedded() -> Self {
        let mut env = Environment::new();
        env.set_syntax(
            SyntaxConfig::builder()
                .trim_blocks(true)
                .lstrip_blocks(true)
                .keep_trailing_newline(true)
                .build()
                .expect("default delimiters are valid"),
        );
        // A misspelt variable is a bug in regboot, not an empty string in a config file.
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.add_filter("yaml", yaml);
        let sources = [
            (
                REGISTRY_CONFIG,
                include_str!("../templates/registry-config.yml.j2"),
            ),
            (HOSTS_BLOCK, include_str!("../templates/hosts-block.j2")),
            (NGINX_CONF, include_str!("../templates/nginx.conf.j2")),
            ("nginx-limits", include_str!("../templates/nginx-limits.j2")),
            ("nginx-log", include_str!("../templates/nginx-log.j2")),
            (
                KEEPALIVED_CONF,
                include_str!("../templates/keepalived.conf.j2"),
            ),
            (
                REGISTRY_FRONT,
                include_str!("../templates/registry-front.conf.j2"),
            ),
        ];
        for (name, source) in sources {
            // The embedded templates are part of the binary; the unit tests render every one.
            env.add_template(name, source)
                .expect("embedded template parses");
        }
        Self { env }
    }

    fn render(&self, name: &'static str, ctx: minijinja::Value) -> Result<String, RenderError> {
        self.env
            .get_template(name)
            .and_then(|t| t.render(ctx))
            .map_err(|source| RenderError::Template { name, source })
    }

    /// The registry `config.yml` (contains secrets: write it 0600).
    pub fn registry_config(&self, cfg: &RegistryConfig) -> Result<String, RenderError> {
        if cfg.http_secret.expose().is_empty() {
            // distribution would pick a random one per replica, breaking uploads across them.
            return Err(invalid("registry http secret", String::new(), "is empty"));
        }
        self.render(
            REGISTRY_CONFIG,
            context! {
                storage => Serde(&cfg.storage),
                delete_enabled => cfg.delete_enabled,
                http_secret => cfg.http_secret.expose(),
                tls => cfg.tls,
                auth_realm => &cfg.auth_realm,
                blob_cache => cfg.blob_cache,
                read_only => cfg.read_only,
                container_port => container::PORT,
                data_path => container::DATA_PATH,
                cert_path => container::CERT_PATH,
                key_path => container::KEY_PATH,
                htpasswd_path => container::HTPASSWD_PATH,
            },
        )
    }

    /// The lines between the markers of regboot's `/etc/hosts` block (see
    /// [`crate::merge::hosts_block`]), without line endings.
    pub fn hosts_block(&self, entries: &[HostsEntry]) -> Result<Vec<String>, RenderError> {
        for entry in entries {
            if entry.names.is_empty() {
                return Err(invalid("hosts entry", entry.ip.to_string(), "has no names"));
            }
            for name in &entry.names {
                check_hostname("hosts entry name", name)?;
            }
        }
        let text = self.render(HOSTS_BLOCK, context! { entries => Serde(entries) })?;
        Ok(text.lines().map(str::to_owned).collect())
    }

    /// `nginx.conf` for an lb host: TLS on the registry port, re-encrypted to the replicas.
    pub fn nginx_conf(&self, lb: &LoadBalancer) -> Result<String, RenderError> {
        check_hostname("registry.hostname", &lb.server_name)?;
        if lb.replicas.is_empty() {
            return Err(invalid(
                "replicas",
                String::new(),
                "is empty: no registry host",
            ));
        }
        let mut endpoints = Vec::with_capacity(lb.replicas.len());
        for (address, port, drain) in &lb.replicas {
            let endpoint = match address.parse::<IpAddr>() {
                Ok(IpAddr::V6(v6)) => format!("[{v6}]:{port}"),
                Ok(IpAddr::V4(v4)) => format!("{v4}:{port}"),
                Err(_) => {
                    check_hostname("registry host address", address)?;
                    format!("{address}:{port}")
                }
            };
            endpoints.push(context! { endpoint, drain });
        }
        for (field, path) in [
            ("lb cert path", &lb.cert_path),
            ("lb key path", &lb.key_path),
            ("lb ca path", &lb.ca_path),
        ] {
            check_config_token(field, path)?;
        }
        self.render(
            NGINX_CONF,
            context! {
                server_name => &lb.server_name,
                listen_port => lb.listen_port,
                replicas => endpoints,
                cert_path => &lb.cert_path,
                key_path => &lb.key_path,
                ca_path => &lb.ca_path,
            },
        )
    }

    /// `nginx.conf` for a registry host: the registry port, passed to the container that
    /// the backend file names.
    pub fn registry_front_conf(&self, f: &RegistryFront) -> Result<String, RenderError> {
        check_hostname("registry.hostname", &f.server_name)?;
        for (field, path) in [
            ("front backend path", &f.backend_path),
            ("front ca path", &f.ca_path),
        ] {
            check_config_token(field, path)?;
        }
        self.render(
            REGISTRY_FRONT,
            context! {
                server_name => &f.server_name,
                listen_port => f.listen_port,
                tls => f.tls,
                backend_path => &f.backend_path,
                ca_path => &f.ca_path,
            },
        )
    }

    /// `keepalived.conf` for one lb host.
    pub fn keepalived_conf(&self, k: &Keepalived) -> Result<String, RenderError> {
        check_config_token("ha.interface", &k.interface)?;
        if k.virtual_router_id == 0 {
            return Err(invalid(
                "ha.virtual_router_id",
                "0".into(),
                "must be 1..255",
            ));
        }
        if k.priority == 0 || k.priority == 255 {
            // 255 is reserved for the address owner, 0 means "master is leaving".
            return Err(invalid(
                "keepalived priority",
                k.priority.to_string(),
                "must be 1..254",
            ));
        }
        let max_prefix = if k.vip.is_ipv4() { 32 } else { 128 };
        let vip = match k.vip_prefix {
            Some(p) if p > max_prefix => {
                return Err(invalid("ha.vip prefix", p.to_string(), "is too long"));
            }
            Some(p) => format!("{}/{p}", k.vip),
            None => k.vip.to_string(),
        };
        self.render(
            KEEPALIVED_CONF,
            context! {
                interface => &k.interface,
                virtual_router_id => k.virtual_router_id,
                priority => k.priority,
                vip,
                check_port => k.check_port,
            },
        )
    }
}

/// A YAML scalar written as JSON (valid YAML): strings come out double-quoted, so colons,
/// quotes, `#` and leading `*`/`&`/`!` in a value cannot change the document's structure;
/// booleans come out as `true`/`false`.
fn yaml(value: minijinja::Value) -> Result<String, minijinja::Error> {
    serde_json::to_string(&value).map_err(|e| {
        minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, "not a YAML scalar")
            .with_source(e)
    })
}

fn invalid(field: &'static str, value: String, reason: &'static str) -> RenderError {
    RenderError::Invalid {
        field,
        value,
        reason,
    }
}

/// A DNS name as clients type it: labels of letters, digits, `-` and `_`, at most 253 bytes.
fn check_hostname(field: &'static str, name: &str) -> Result<(), RenderError> {
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && l.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if name.len() <= 253 && name.split('.').all(label_ok) {
        Ok(())
    } else {
        Err(invalid(
            field,
            name.to_owned(),
            "is not a valid host name (letters, digits, '-', '_' and dots)",
        ))
    }
}

/// A bare word in nginx/keepalived syntax (a path, an interface): nothing that would end the
/// directive, open a block, start a comment or expand a variable.
fn check_config_token(field: &'static str, value: &str) -> Result<(), RenderError> {
    let bad = |c: char| c.is_whitespace() || c.is_control() || ";{}\"'#\\$".contains(c);
    if value.is_empty() || value.contains(bad) {
        Err(invalid(
            field,
            value.to_owned(),
            "must be non-empty without spaces, quotes or any of ;{}#\\$",
        ))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_yaml_ng::Value as Yaml;

    fn yaml(text: &str) -> Yaml {
        serde_yaml_ng::from_str(text).unwrap_or_else(|e| panic!("{e}\n{text}"))
    }

    fn get<'a>(doc: &'a Yaml, path: &str) -> &'a Yaml {
        path.split('.')
            .try_fold(doc, |v, key| v.get(key))
            .unwrap_or_else(|| panic!("no {path} in {doc:?}"))
    }

    fn base(storage: Storage) -> RegistryConfig {
        RegistryConfig {
            storage,
            delete_enabled: true,
            http_secret: "s3cr3t: \"quoted\" # not a comment".into(),
            tls: true,
            auth_realm: Some("regboot".into()),
            blob_cache: true,
            read_only: false,
        }
    }

    #[test]
    fn registry_config_filesystem_tls_auth() {
        let text = Templates::embedded()
            .registry_config(&base(Storage::Filesystem))
            .unwrap();
        let doc = yaml(&text);
        assert_eq!(get(&doc, "version").as_f64(), Some(0.1));
        assert_eq!(
            get(&doc, "storage.filesystem.rootdirectory").as_str(),
            Some(container::DATA_PATH)
        );
        assert_eq!(get(&doc, "storage.delete.enabled").as_bool(), Some(true));
        assert!(get(&doc, "storage").get("redirect").is_none());
        assert_eq!(get(&doc, "http.addr").as_str(), Some(":5000"));
        assert_eq!(
            get(&doc, "http.secret").as_str(),
            Some("s3cr3t: \"quoted\" # not a comment")
        );
        assert_eq!(
            get(&doc, "http.tls.certificate").as_str(),
            Some(container::CERT_PATH)
        );
        assert_eq!(
            get(&doc, "http.tls.key").as_str(),
            Some(container::KEY_PATH)
        );
        assert_eq!(
            get(&doc, "http.headers.X-Content-Type-Options")[0].as_str(),
            Some("nosniff")
        );
        assert_eq!(get(&doc, "auth.htpasswd.realm").as_str(), Some("regboot"));
        assert_eq!(
            get(&doc, "auth.htpasswd.path").as_str(),
            Some(container::HTPASSWD_PATH)
        );
        assert_eq!(
            get(&doc, "health.storagedriver.enabled").as_bool(),
            Some(true)
        );
    }

    #[test]
    fn registry_config_cache_and_read_only() {
        let t = Templates::embedded();
        let doc = yaml(&t.registry_config(&base(Storage::Filesystem)).unwrap());
        assert_eq!(
            get(&doc, "storage.cache.blobdescriptor").as_str(),
            Some("inmemory")
        );
        assert!(get(&doc, "storage").get("maintenance").is_none());
        let mut cfg = base(Storage::Filesystem);
        cfg.blob_cache = false;
        cfg.read_only = true;
        let doc = yaml(&t.registry_config(&cfg).unwrap());
        assert!(get(&doc, "storage").get("cache").is_none());
        assert_eq!(
            get(&doc, "storage.maintenance.readonly.enabled").as_bool(),
            Some(true)
        );
    }

    #[test]
    fn registry_config_insecure_without_auth_has_no_tls_or_auth() {
        let mut cfg = base(Storage::Filesystem);
        cfg.tls = false;
        cfg.auth_realm = None;
        cfg.delete_enabled = false;
        let doc = yaml(&Templates::embedded().registry_config(&cfg).unwrap());
        assert!(get(&doc, "http").get("tls").is_none());
        assert!(doc.get("auth").is_none());
        assert_eq!(get(&doc, "storage.delete.enabled").as_bool(), Some(false));
        assert!(get(&doc, "http").get("secret").is_some());
    }

    #[test]
    fn registry_config_s3() {
        let s3 = S3Storage {
            bucket: "registry".into(),
            region: "us-east-1".into(),
            endpoint: Some("http://10.0.0.9:8333".into()),
            access_key: Some("AKIA'odd\"key".into()),
            secret_key: Some("abc/def:+ghi#".into()),
            path_style: true,
            v4auth: true,
            secure: false,
            redirect: false,
        };
        let text = Templates::embedded()
            .registry_config(&base(Storage::S3(s3)))
            .unwrap();
        // Booleans in YAML's canonical lowercase, not minijinja's Python-style `True`.
        assert!(text.contains("forcepathstyle: true\n"), "{text}");
        let doc = yaml(&text);
        let s3 = get(&doc, "storage.s3");
        assert_eq!(get(s3, "bucket").as_str(), Some("registry"));
        assert_eq!(get(s3, "region").as_str(), Some("us-east-1"));
        assert_eq!(
            get(s3, "regionendpoint").as_str(),
            Some("http://10.0.0.9:8333")
        );
        assert_eq!(get(s3, "accesskey").as_str(), Some("AKIA'odd\"key"));
        assert_eq!(get(s3, "secretkey").as_str(), Some("abc/def:+ghi#"));
        assert_eq!(get(s3, "forcepathstyle").as_bool(), Some(true));
        assert_eq!(get(s3, "v4auth").as_bool(), Some(true));
        assert_eq!(get(s3, "secure").as_bool(), Some(false));
        assert_eq!(get(&doc, "storage.redirect.disable").as_bool(), Some(true));
        assert!(get(&doc, "storage").get("filesystem").is_none());
    }

    #[test]
    fn registry_config_s3_with_iam_role_and_redirects() {
        let s3 = S3Storage {
            bucket: "b".into(),
            region: "eu-west-1".into(),
            endpoint: None,
            access_key: None,
            secret_key: None,
            path_style: false,
            v4auth: true,
            secure: true,
            redirect: true,
        };
        let doc = yaml(
            &Templates::embedded()
                .registry_config(&base(Storage::S3(s3)))
                .unwrap(),
        );
        let s3 = get(&doc, "storage.s3");
        for absent in ["regionendpoint", "accesskey", "secretkey"] {
            assert!(s3.get(absent).is_none(), "{absent} rendered");
        }
        assert!(get(&doc, "storage").get("redirect").is_none());
    }

    #[test]
    fn registry_config_oss() {
        let oss = OssStorage {
            bucket: "reg".into(),
            region: "oss-cn-hangzhou".into(),
            endpoint: Some("oss-cn-hangzhou-internal.aliyuncs.com".into()),
            access_key_id: "id".into(),
            access_key_secret: "se: cret".into(),
            secure: true,
            redirect: false,
        };
        let doc = yaml(
            &Templates::embedded()
                .registry_config(&base(Storage::Oss(oss)))
                .unwrap(),
        );
        let oss = get(&doc, "storage.oss");
        assert_eq!(get(oss, "accesskeyid").as_str(), Some("id"));
        assert_eq!(get(oss, "accesskeysecret").as_str(), Some("se: cret"));
        assert_eq!(get(oss, "region").as_str(), Some("oss-cn-hangzhou"));
        assert_eq!(
            get(oss, "endpoint").as_str(),
            Some("oss-cn-hangzhou-internal.aliyuncs.com")
        );
        assert_eq!(get(oss, "bucket").as_str(), Some("reg"));
        assert_eq!(get(oss, "secure").as_bool(), Some(true));
        assert_eq!(get(&doc, "storage.redirect.disable").as_bool(), Some(true));
    }

    #[test]
    fn registry_config_debug_hides_secrets_and_empty_secret_is_refused() {
        let s3 = S3Storage {
            bucket: "b".into(),
            region: "r".into(),
            endpoint: None,
            access_key: Some("AKIDSECRET".into()),
            secret_key: Some("SKSECRET".into()),
            path_style: false,
            v4auth: true,
            secure: true,
            redirect: true,
        };
        let mut cfg = base(Storage::S3(s3));
        let shown = format!("{cfg:?}");
        for secret in ["AKIDSECRET", "SKSECRET", "s3cr3t"] {
            assert!(!shown.contains(secret), "{shown}");
        }
        cfg.http_secret = "".into();
        assert!(Templates::embedded().registry_config(&cfg).is_err());
    }

    #[test]
    fn hosts_block_lines() {
        let lines = Templates::embedded()
            .hosts_block(&[
                HostsEntry {
                    ip: "192.168.23.50".parse().unwrap(),
                    names: vec!["registry01.dev.com".into(), "registry.local".into()],
                },
                HostsEntry {
                    ip: "fd00::5".parse().unwrap(),
                    names: vec!["reg6".into()],
                },
            ])
            .unwrap();
        assert!(lines[0].starts_with('#'));
        assert_eq!(
            &lines[1..],
            [
                "192.168.23.50 registry01.dev.com registry.local",
                "fd00::5 reg6"
            ]
        );
    }

    #[test]
    fn hosts_block_rejects_names_that_would_inject_lines() {
        let err = Templates::embedded()
            .hosts_block(&[HostsEntry {
                ip: "10.0.0.1".parse().unwrap(),
                names: vec!["evil\n10.6.6.6 github.com".into()],
            }])
            .unwrap_err();
        assert!(err.to_string().contains("not a valid host name"), "{err}");
    }

    fn lb() -> LoadBalancer {
        LoadBalancer {
            server_name: "registry01.dev.com".into(),
            listen_port: 5000,
            replicas: vec![
                ("10.0.0.51".into(), 5000, false),
                ("10.0.0.52".into(), 5000, true),
                ("fd00::53".into(), 5001, false),
            ],
            cert_path: "/etc/regboot/registry-chain.crt".into(),
            key_path: "/etc/regboot/registry.key".into(),
            ca_path: "/etc/regboot/ca.crt".into(),
        }
    }

    #[test]
    fn nginx_conf_proxies_to_every_replica() {
        let text = Templates::embedded().nginx_conf(&lb()).unwrap();
        let lines: Vec<&str> = text.lines().map(str::trim).collect();
        let has = |l: &str| lines.contains(&l);
        for line in [
            "server 10.0.0.51:5000 max_fails=1 fail_timeout=5s;",
            "server 10.0.0.52:5000 max_fails=1 fail_timeout=5s down;",
            "server [fd00::53]:5001 max_fails=1 fail_timeout=5s;",
            "listen 5000 ssl;",
            "client_max_body_size 0;",
            "chunked_transfer_encoding on;",
            "proxy_request_buffering off;",
            "proxy_read_timeout 900;",
            "proxy_set_header Host $http_host;",
            "proxy_set_header X-Real-IP $remote_addr;",
            "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
            "proxy_set_header X-Forwarded-Proto $scheme;",
            "ssl_certificate /etc/regboot/registry-chain.crt;",
            "ssl_certificate_key /etc/regboot/registry.key;",
            "proxy_ssl_trusted_certificate /etc/regboot/ca.crt;",
            "proxy_ssl_name registry01.dev.com;",
            "location /v2/ {",
            "proxy_pass https://registry_replicas;",
            "worker_rlimit_nofile 51200;",
            "worker_connections 16384;",
            "access_log /var/log/nginx/access.log regboot;",
        ] {
            assert!(has(line), "missing {line:?} in\n{text}");
        }
        assert!(text.contains("upstream=$upstream_addr"), "{text}");
        let servers = lines.iter().filter(|l| l.contains("max_fails=")).count();
        assert_eq!(servers, 3);
        assert_eq!(text.matches('{').count(), text.matches('}').count());
    }

    #[test]
    fn nginx_conf_rejects_directive_injection() {
        let mut bad = lb();
        bad.ca_path = "/x; include /etc/shadow".into();
        assert!(Templates::embedded().nginx_conf(&bad).is_err());
        let mut none = lb();
        none.replicas.clear();
        assert!(Templates::embedded().nginx_conf(&none).is_err());
    }

    #[test]
    fn registry_front_passes_everything_to_the_backend() {
        let mut front = RegistryFront {
            server_name: "registry.lab".into(),
            listen_port: 5000,
            tls: true,
            backend_path: "/etc/nginx/regboot-backend.conf".into(),
            ca_path: "/etc/nginx/regboot-registry-ca.crt".into(),
        };
        let t = Templates::embedded();
        let text = t.registry_front_conf(&front).unwrap();
        let lines: Vec<&str> = text.lines().map(str::trim).collect();
        for line in [
            "include /etc/nginx/regboot-backend.conf;",
            "listen 5000 ssl;",
            "client_max_body_size 0;",
            "proxy_request_buffering off;",
            "proxy_set_header Host $http_host;",
            "proxy_set_header X-Forwarded-Proto $scheme;",
            "proxy_ssl_name registry.lab;",
            "proxy_ssl_verify on;",
            "proxy_ssl_trusted_certificate /etc/nginx/regboot-registry-ca.crt;",
            "proxy_pass https://registry_backend;",
        ] {
            assert!(lines.contains(&line), "missing {line:?} in\n{text}");
        }
        assert_eq!(text.matches('{').count(), text.matches('}').count());
        front.tls = false;
        let text = t.registry_front_conf(&front).unwrap();
        assert!(text.contains("listen 5000;") && !text.contains("ssl_certificate"));
        assert!(text.contains("proxy_pass http://registry_backend;"));
        front.backend_path = "/x; include /etc/shadow".into();
        assert!(t.registry_front_conf(&front).is_err());
    }

    fn keepalived() -> Keepalived {
        Keepalived {
            interface: "eth0".into(),
            virtual_router_id: 55,
            priority: 100,
            vip: "192.168.23.50".parse().unwrap(),
            vip_prefix: Some(24),
            check_port: 5000,
        }
    }

    #[test]
    fn keepalived_conf_has_vip_router_id_and_check() {
        let text = Templates::embedded()
            .keepalived_conf(&keepalived())
            .unwrap();
        let lines: Vec<&str> = text.lines().map(str::trim).collect();
        for line in [
            "192.168.23.50/24",
            "virtual_router_id 55",
            "priority 100",
            "interface eth0",
            "advert_int 1",
            "state BACKUP",
            "nopreempt",
            "chk_registry",
            "script \"/usr/bin/curl -skf -o /dev/null --max-time 3 https://127.0.0.1:5000/\"",
        ] {
            assert!(lines.contains(&line), "missing {line:?} in\n{text}");
        }
        assert_eq!(text.matches('{').count(), text.matches('}').count());
    }

    #[test]
    fn keepalived_conf_rejects_bad_values() {
        let t = Templates::embedded();
        let mut k = keepalived();
        k.priority = 255;
        assert!(t.keepalived_conf(&k).is_err());
        let mut k = keepalived();
        k.virtual_router_id = 0;
        assert!(t.keepalived_conf(&k).is_err());
        let mut k = keepalived();
        k.vip_prefix = Some(33);
        assert!(t.keepalived_conf(&k).is_err());
        let mut k = keepalived();
        k.interface = "eth0 }".into();
        assert!(t.keepalived_conf(&k).is_err());
    }
}
