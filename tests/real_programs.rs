//! The rendered files, run by the real programs on loopback: distribution's registry (Debian's
//! docker-registry) serving the rendered config.yml with the rendered htpasswd, nginx with the
//! rendered nginx.conf in front of it, keepalived's config test on keepalived.conf, and the
//! generated smoke image copied into the registry by skopeo, and nginx answering chunked to
//! regboot's own HTTP client.
//!
//! The registry runs outside a container here, so the in-container paths of config.yml are
//! pointed at temp files through distribution's REGISTRY_* environment overrides; nginx gets
//! its pid/log paths and a loopback listen address swapped in. Everything else is the rendered
//! text as a host would receive it.

mod support;

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
};
use regboot::merge::htpasswd::{self, Secret, User};
use regboot::render::{
    Keepalived, LoadBalancer, RegistryConfig, RegistryFront, S3Storage, Storage, Templates,
};
use regboot::smoke_image;
use sha2::{Digest, Sha256};
use support::free_port;

const HOSTNAME: &str = "registry.test";
const USER: &str = "ci";
const PASSWORD: &str = "pw: with \"quotes\" and #hash";

/// A process this test started, stopped on drop: SIGTERM (nginx and the registry shut down
/// cleanly on it), then SIGKILL if it is still there after 5 s.
struct Proc {
    child: Child,
    log: PathBuf,
}

impl Proc {
    fn spawn(cmd: &mut Command, log: PathBuf) -> Proc {
        let out = std::fs::File::create(&log).unwrap();
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e} (run scripts/install-deps.sh)"));
        Proc { child, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(pid) = i32::try_from(self.child.id()) {
            // SAFETY: kill(2) on the pid of our own child, which we have not reaped yet.
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Wait (at most 10 s) until `port` accepts connections, or fail with the process log.
fn wait_listening(port: u16, proc: &mut Proc) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        if let Ok(Some(status)) = proc.child.try_wait() {
            panic!("exited with {status} before listening:\n{}", proc.log());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("not listening on {port} after 10 s:\n{}", proc.log());
}

fn write(dir: &Path, name: &str, data: impl AsRef<[u8]>) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, data).unwrap();
    path
}

/// A CA and a server certificate for HOSTNAME and 127.0.0.1; returns (ca, chain, key) paths.
fn pki(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    // Distinct subjects: with rcgen's shared default, the leaf would look self-signed.
    ca_params.distinguished_name = DistinguishedName::new();
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "regboot test CA");
    let ca_key = KeyPair::generate().unwrap();
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let mut leaf_params =
        CertificateParams::new(vec![HOSTNAME.to_string(), "127.0.0.1".to_string()]).unwrap();
    leaf_params.distinguished_name = DistinguishedName::new();
    leaf_params
        .distinguished_name
        .push(DnType::CommonName, HOSTNAME);
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = leaf_params.signed_by(&leaf_key, &issuer).unwrap();
    (
        write(dir, "ca.crt", ca_cert.pem()),
        write(dir, "registry-chain.crt", leaf.pem() + &ca_cert.pem()),
        write(dir, "registry.key", leaf_key.serialize_pem()),
    )
}

/// Start the registry on `port` with the rendered config (TLS files given by `tls`).
fn start_registry(
    dir: &Path,
    cfg: &RegistryConfig,
    port: u16,
    tls: Option<(&Path, &Path)>,
) -> Proc {
    let config = Templates::embedded().registry_config(cfg).unwrap();
    let config_path = write(dir, "config.yml", &config);
    let mut cmd = Command::new("docker-registry");
    cmd.arg("serve")
        .arg(&config_path)
        // This machine's AWS_CA_BUNDLE makes the registry panic (LAB-NOTES).
        .env_remove("AWS_CA_BUNDLE")
        .env("REGISTRY_HTTP_ADDR", format!("127.0.0.1:{port}"));
    // Overrides only for sections the config has: an override creates its section.
    if matches!(cfg.storage, Storage::Filesystem) {
        cmd.env(
            "REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY",
            dir.join("data"),
        );
    }
    if cfg.auth_realm.is_some() {
        cmd.env("REGISTRY_AUTH_HTPASSWD_PATH", dir.join("htpasswd"));
    }
    if let Some((chain, key)) = tls {
        cmd.env("REGISTRY_HTTP_TLS_CERTIFICATE", chain)
            .env("REGISTRY_HTTP_TLS_KEY", key);
    }
    let mut proc = Proc::spawn(&mut cmd, dir.join("registry.log"));
    wait_listening(port, &mut proc);
    proc
}

/// One curl request; credentials go on stdin (`-K -`), never in arguments.
/// Returns (status, headers, body).
fn curl(ca: Option<&Path>, url: &str, auth: bool, extra: &[&str]) -> (u16, String, Vec<u8>) {
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "--max-time", "20", "-D", "/dev/stderr", "-K", "-"]);
    if let Some(ca) = ca {
        cmd.arg("--cacert").arg(ca);
    }
    if let Some(rest) = url.strip_prefix(&format!("https://{HOSTNAME}:")) {
        let port = rest.split('/').next().unwrap();
        cmd.arg("--resolve")
            .arg(format!("{HOSTNAME}:{port}:127.0.0.1"));
    }
    cmd.args(extra).arg(url);
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("curl (scripts/install-deps.sh installs it)");
    let mut stdin = child.stdin.take().unwrap();
    if auth {
        let escaped = PASSWORD.replace('\\', "\\\\").replace('"', "\\\"");
        writeln!(stdin, "user = \"{USER}:{escaped}\"").unwrap();
    }
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    let headers = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "curl {url} failed: {headers}");
    let status = headers
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("HTTP/"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {headers}"));
    (status, headers, out.stdout)
}

fn header<'a>(headers: &'a str, name: &str) -> Option<&'a str> {
    headers.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// nginx in the foreground with `conf` (checked by `nginx -t` first), listening on `port`.
fn start_nginx(dir: &Path, conf: &str, port: u16) -> Proc {
    let conf_path = write(dir, "nginx.conf", conf);
    let test = Command::new("nginx")
        .arg("-t")
        .arg("-c")
        .arg(&conf_path)
        .output()
        .expect("nginx (scripts/install-deps.sh installs nginx-light)");
    assert!(
        test.status.success(),
        "nginx -t: {}",
        String::from_utf8_lossy(&test.stderr)
    );
    let mut nginx = Proc::spawn(
        Command::new("nginx")
            .arg("-c")
            .arg(&conf_path)
            .args(["-g", "daemon off;"]),
        dir.join("nginx.log"),
    );
    wait_listening(port, &mut nginx);
    nginx
}

/// A rendered nginx.conf with its pid and log files in `dir` and its TLS listener on loopback.
fn on_loopback(conf: &str, dir: &Path, port: u16) -> String {
    let mut conf = conf.to_string();
    for (from, to) in [
        (
            "pid /run/nginx.pid;".to_string(),
            format!("pid {}/nginx.pid;", dir.display()),
        ),
        (
            "/var/log/nginx/access.log".to_string(),
            dir.join("access.log").display().to_string(),
        ),
        (
            "/var/log/nginx/error.log".to_string(),
            dir.join("error.log").display().to_string(),
        ),
        (
            format!("listen {port} ssl;"),
            format!("listen 127.0.0.1:{port} ssl;"),
        ),
    ] {
        conf = swap(&conf, &from, &to);
    }
    conf
}

/// Replace `from` (which must be there) with `to`.
fn swap(text: &str, from: &str, to: &str) -> String {
    assert!(
        text.contains(from),
        "{from:?} not in rendered text:\n{text}"
    );
    text.replace(from, to)
}

#[test]
fn registry_behind_nginx_serves_tls_auth_and_blob_uploads() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let (ca, chain, key) = pki(dir);
    let users = [User {
        name: USER.into(),
        secret: Secret::Password(PASSWORD.into()),
    }];
    write(dir, "htpasswd", htpasswd::render(None, &users).unwrap());

    let registry_port = free_port();
    let cfg = RegistryConfig {
        storage: Storage::Filesystem,
        delete_enabled: true,
        http_secret: "secret: with 'quotes'".into(),
        tls: true,
        auth_realm: Some("regboot test".into()),
        blob_cache: true,
        read_only: false,
    };
    let registry = start_registry(dir, &cfg, registry_port, Some((&chain, &key)));

    let lb_port = free_port();
    let drained_port = free_port();
    let lb = LoadBalancer {
        server_name: HOSTNAME.into(),
        listen_port: lb_port,
        // A drained replica on a port nothing listens on: nginx must never try it.
        replicas: vec![
            ("127.0.0.1".into(), registry_port, false),
            ("127.0.0.1".into(), drained_port, true),
        ],
        cert_path: chain.display().to_string(),
        key_path: key.display().to_string(),
        ca_path: ca.display().to_string(),
    };
    let conf = Templates::embedded().nginx_conf(&lb).unwrap();
    let nginx = start_nginx(dir, &on_loopback(&conf, dir, lb_port), lb_port);

    let base = format!("https://{HOSTNAME}:{lb_port}");
    let ca = Some(ca.as_path());

    // keepalived's probe path: 200 while a replica's storage is healthy.
    assert_eq!(curl(ca, &format!("{base}/"), false, &[]).0, 200);

    // htpasswd auth from the rendered config and file.
    let (status, headers, _) = curl(ca, &format!("{base}/v2/"), false, &[]);
    assert_eq!(status, 401, "{headers}");
    let challenge = header(&headers, "www-authenticate").unwrap_or_default();
    assert!(challenge.contains("realm=\"regboot test\""), "{headers}");
    assert_eq!(
        curl(ca, &format!("{base}/v2/"), true, &[]).0,
        200,
        "registry log:\n{}",
        registry.log()
    );

    // A 3 MB blob upload through nginx (over nginx's default 1 MB body limit). The upload URL
    // the registry hands out must point back at nginx: Host and X-Forwarded-Proto are passed.
    let blob: Vec<u8> = (0..3 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    let digest = format!("sha256:{}", hex::encode(Sha256::digest(&blob)));
    let (status, headers, _) = curl(
        ca,
        &format!("{base}/v2/smoke/blobs/uploads/"),
        true,
        &["-X", "POST"],
    );
    assert_eq!(status, 202, "{headers}");
    let location = header(&headers, "location").expect("upload location");
    assert!(
        location.starts_with(&format!("{base}/v2/smoke/blobs/uploads/")),
        "{location}"
    );
    let blob_path = write(dir, "blob", &blob);
    let (status, headers, _) = curl(
        ca,
        &format!("{location}&digest={digest}"),
        true,
        &[
            "-X",
            "PUT",
            "-H",
            "Content-Type: application/octet-stream",
            "--data-binary",
            &format!("@{}", blob_path.display()),
        ],
    );
    assert_eq!(status, 201, "{headers}\nregistry log:\n{}", registry.log());
    let (status, _, body) = curl(
        ca,
        &format!("{base}/v2/smoke/blobs/{digest}"),
        true,
        &["-L"],
    );
    assert_eq!(status, 200);
    assert!(body == blob, "blob read back through nginx differs");
    drop(nginx);

    // The access log names the replica that answered each request, never the drained one.
    let log = std::fs::read_to_string(dir.join("access.log")).unwrap();
    let answered = format!("upstream=127.0.0.1:{registry_port} upstream_status=");
    assert!(log.lines().count() >= 6, "{log}");
    for line in log.lines() {
        assert!(line.contains(&answered), "{line}");
    }
    assert!(!log.contains(&format!(":{drained_port}")), "{log}");
}

/// A TLS listener on loopback `port` with a self-signed certificate for HOSTNAME (what any
/// local user can start on a free backend port), answering 200 to every request; it records
/// the requests it was sent. Accepts for at most 60 s.
fn impostor(port: u16) -> std::sync::Arc<std::sync::Mutex<Vec<String>>> {
    use std::io::Read;
    use std::sync::{Arc, Mutex};
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec![HOSTNAME.to_string()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            rustls::pki_types::PrivatePkcs8KeyDer::from(key.serialize_der()).into(),
        )
        .unwrap();
    let config = Arc::new(config);
    let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
    listener.set_nonblocking(true).unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            let Ok((stream, _)) = listener.accept() else {
                std::thread::sleep(Duration::from_millis(20));
                continue;
            };
            stream.set_nonblocking(false).unwrap();
            stream
                .set_read_timeout(Some(Duration::from_secs(5)))
                .unwrap();
            let conn = rustls::ServerConnection::new(config.clone()).unwrap();
            let mut tls = rustls::StreamOwned::new(conn, stream);
            let mut buf = [0u8; 8192];
            if let Ok(n @ 1..) = tls.read(&mut buf) {
                record
                    .lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(&buf[..n]).into_owned());
                let _ = tls.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}");
                let _ = tls.flush();
            }
        }
    });
    seen
}

/// The registry's front (nginx on a registry host) passes requests only to a backend that
/// proves it holds a certificate of the registry's CA for the registry's name. With the
/// container gone, a local user's listener on the backend port (self-signed, same name) gets
/// no request, so no client's credentials, and the client gets 502, not its answer.
#[test]
fn registry_front_verifies_the_container_behind_it() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let (ca, chain, key) = pki(dir);
    let users = [User {
        name: USER.into(),
        secret: Secret::Password(PASSWORD.into()),
    }];
    write(dir, "htpasswd", htpasswd::render(None, &users).unwrap());
    let backend_port = free_port();
    let cfg = RegistryConfig {
        storage: Storage::Filesystem,
        delete_enabled: false,
        http_secret: "x".into(),
        tls: true,
        auth_realm: Some("regboot test".into()),
        blob_cache: true,
        read_only: false,
    };
    let registry = start_registry(dir, &cfg, backend_port, Some((&chain, &key)));
    let backend = write(
        dir,
        "backend.conf",
        format!(
            "upstream registry_backend {{ server 127.0.0.1:{backend_port}; }}\n\
             ssl_certificate {};\nssl_certificate_key {};\n",
            chain.display(),
            key.display()
        ),
    );
    let port = free_port();
    let conf = Templates::embedded()
        .registry_front_conf(&RegistryFront {
            server_name: HOSTNAME.into(),
            listen_port: port,
            tls: true,
            backend_path: backend.display().to_string(),
            ca_path: ca.display().to_string(),
        })
        .unwrap();
    let _nginx = start_nginx(dir, &on_loopback(&conf, dir, port), port);
    let url = format!("https://{HOSTNAME}:{port}/v2/");
    let ca = Some(ca.as_path());
    assert_eq!(
        curl(ca, &url, true, &[]).0,
        200,
        "the real container must pass: {}",
        registry.log()
    );

    drop(registry);
    let seen = impostor(backend_port);
    let (status, headers, _) = curl(ca, &url, true, &[]);
    let error_log = std::fs::read_to_string(dir.join("error.log")).unwrap_or_default();
    assert_eq!(status, 502, "{headers}\n{error_log}");
    assert!(
        seen.lock().unwrap().is_empty(),
        "the impostor was sent {:?}",
        seen.lock().unwrap()
    );
    assert!(
        error_log.contains("certificate verify failed")
            || error_log.contains("upstream SSL certificate verify error"),
        "{error_log}"
    );
}

/// nginx answers a page with SSI on chunked (SSI drops the length): the client regboot speaks
/// through its SSH tunnels reads it whole, as it must a registry's paged catalog.
#[tokio::test]
async fn chunked_answer_from_nginx_is_read_whole() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let page: String = (0..5000).map(|i| format!("line {i}\n")).collect();
    write(dir, "index.html", &page);
    let port = free_port();
    let conf = format!(
        "pid {d}/nginx.pid; error_log stderr; events {{}}\n\
         http {{ access_log off; server {{ listen 127.0.0.1:{port}; root {d}; ssi on; }} }}\n",
        d = dir.display()
    );
    let _nginx = start_nginx(dir, &conf, port);
    let url = format!("http://127.0.0.1:{port}/index.html");
    let (_, headers, _) = curl(None, &url, false, &[]);
    assert_eq!(
        header(&headers, "transfer-encoding"),
        Some("chunked"),
        "{headers}"
    );

    let io = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let req = hyper::Request::get("/index.html")
        .header("host", "127.0.0.1")
        .body(Default::default())
        .unwrap();
    let (status, body) = regboot::registry_http::send(io, req).await.unwrap();
    assert_eq!(status, 200);
    assert!(
        body == page.as_bytes(),
        "{} of {} bytes",
        body.len(),
        page.len()
    );
}

#[test]
fn insecure_config_serves_plain_http() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = RegistryConfig {
        storage: Storage::Filesystem,
        delete_enabled: false,
        http_secret: "x".into(),
        tls: false,
        auth_realm: None,
        blob_cache: true,
        read_only: false,
    };
    let _registry = start_registry(dir.path(), &cfg, port, None);
    let (status, _, _) = curl(None, &format!("http://127.0.0.1:{port}/v2/"), false, &[]);
    assert_eq!(status, 200);
}

#[test]
fn s3_config_is_accepted_by_the_registry() {
    // Nothing listens on the endpoint: this checks that distribution parses the s3 section
    // and starts (the lab exercises real S3 storage).
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = RegistryConfig {
        storage: Storage::S3(S3Storage {
            bucket: "registry".into(),
            region: "us-east-1".into(),
            endpoint: Some(format!("http://127.0.0.1:{}", free_port())),
            access_key: Some("key".into()),
            secret_key: Some("se:cret\"#".into()),
            path_style: true,
            v4auth: true,
            secure: false,
            redirect: false,
        }),
        delete_enabled: true,
        http_secret: "x".into(),
        tls: false,
        auth_realm: None,
        blob_cache: true,
        read_only: false,
    };
    let registry = start_registry(dir.path(), &cfg, port, None);
    let (status, _, _) = curl(None, &format!("http://127.0.0.1:{port}/"), false, &[]);
    assert_eq!(status, 200, "{}", registry.log());
}

#[test]
fn keepalived_accepts_the_rendered_config() {
    let dir = tempfile::tempdir().unwrap();
    let conf = Templates::embedded()
        .keepalived_conf(&Keepalived {
            // keepalived refuses loopback; the interface need not exist for the config test.
            interface: "eth0".into(),
            virtual_router_id: 55,
            priority: 100,
            vip: "192.0.2.50".parse().unwrap(),
            vip_prefix: Some(24),
            check_port: 5000,
        })
        .unwrap();
    // keepalived -t prints each problem on stderr (and ends by signalling itself, so its exit
    // status says nothing); a deliberately broken copy shows the check can fail.
    let check = |text: &str| {
        let path = write(dir.path(), "keepalived.conf", text);
        let out = Command::new("keepalived")
            .args(["-t", "-n", "-l", "-f"])
            .arg(&path)
            .output()
            .expect("keepalived (scripts/install-deps.sh installs it)");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    assert_eq!(check(&conf), "");
    let broken = swap(&conf, "virtual_router_id 55", "virtual_router_id 555");
    assert!(check(&broken).contains("555"));
}

#[test]
fn smoke_image_tarball_pushes_to_a_registry_with_its_config_digest() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = RegistryConfig {
        storage: Storage::Filesystem,
        delete_enabled: true,
        http_secret: "x".into(),
        tls: false,
        auth_realm: None,
        blob_cache: true,
        read_only: false,
    };
    let registry = start_registry(dir.path(), &cfg, port, None);
    let image = smoke_image::build(
        &format!("127.0.0.1:{port}/regboot-smoke:t1"),
        "amd64",
        "nonce-42",
    )
    .unwrap();
    let tarball = write(dir.path(), "smoke.tar", &image.tarball);

    // skopeo reads the docker-archive as docker load does (manifest.json, config, layers).
    let out = Command::new("skopeo")
        .args(["--insecure-policy", "copy", "--dest-tls-verify=false"])
        .arg(format!("docker-archive:{}", tarball.display()))
        .arg(format!("docker://127.0.0.1:{port}/regboot-smoke:t1"))
        .output()
        .expect("skopeo (scripts/install-deps.sh installs it)");
    assert!(
        out.status.success(),
        "skopeo copy: {}\nregistry log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        registry.log()
    );

    // The pushed manifest names our config by the digest build() returned (the image ID).
    let (status, _, body) = curl(
        None,
        &format!("http://127.0.0.1:{port}/v2/regboot-smoke/manifests/t1"),
        false,
        &[
            "-H",
            "Accept: application/vnd.docker.distribution.manifest.v2+json",
        ],
    );
    assert_eq!(status, 200);
    let manifest: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(manifest["config"]["digest"], image.config_digest.as_str());
    assert_eq!(manifest["layers"].as_array().map(Vec::len), Some(1));
}
