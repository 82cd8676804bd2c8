//! A tiny image made in memory for the smoke test: one layer holding `/regboot-smoke.txt` with
//! a nonce, so every run pushes content the registry has never seen. Output is a `docker load`
//! tarball (the docker-archive layout of `docker save`: manifest.json, the config, the layer).

use serde_json::json;
use sha2::{Digest, Sha256};

/// The file inside the image.
pub const SMOKE_FILE: &str = "regboot-smoke.txt";

/// Fixed timestamps keep the image a function of its inputs (same nonce, same digest).
const CREATED: &str = "1970-01-01T00:00:00Z";

#[derive(Debug, Clone)]
pub struct SmokeImage {
    /// The tarball to feed `docker load` (on stdin).
    pub tarball: Vec<u8>,
    /// `sha256:<hex>` of the config: the image ID that `docker inspect --format {{.Id}}` shows
    /// (with the classic image store; the containerd store shows the manifest digest instead).
    pub config_digest: String,
    /// `sha256:<hex>` of the uncompressed layer (the config's only `rootfs.diff_ids` entry).
    pub layer_diff_id: String,
}

#[derive(Debug, thiserror::Error)]
pub enum SmokeImageError {
    #[error("smoke image tag {0:?} is empty or contains whitespace")]
    BadTag(String),
    #[error("building the smoke image tarball: {0}")]
    Tar(#[from] std::io::Error),
}

/// Build the image tagged `repo_tag` (e.g. `registry01.dev.com:5000/regboot-smoke:run-1a2b`)
/// for `architecture` (Go's name: see [`go_arch`]), with `nonce` in its file and label.
pub fn build(
    repo_tag: &str,
    architecture: &str,
    nonce: &str,
) -> Result<SmokeImage, SmokeImageError> {
    if repo_tag.is_empty() || repo_tag.contains(|c: char| c.is_whitespace() || c.is_control()) {
        return Err(SmokeImageError::BadTag(repo_tag.to_owned()));
    }
    let content = format!("regboot smoke test {nonce}\n");
    let layer = tar_of(&[(SMOKE_FILE, content.as_bytes())])?;
    let layer_hex = sha256_hex(&layer);

    let config = json!({
        "architecture": architecture,
        "os": "linux",
        "created": CREATED,
        "config": { "Labels": { "io.regboot.smoke": nonce } },
        "rootfs": { "type": "layers", "diff_ids": [format!("sha256:{layer_hex}")] },
        "history": [{ "created": CREATED, "created_by": "regboot smoke test" }],
    });
    let config = serde_json::to_vec(&config).unwrap_or_default();
    let config_hex = sha256_hex(&config);
    let config_name = format!("{config_hex}.json");
    let layer_name = format!("{layer_hex}/layer.tar");

    let manifest = json!([{
        "Config": config_name,
        "RepoTags": [repo_tag],
        "Layers": [layer_name],
    }]);
    let manifest = serde_json::to_vec(&manifest).unwrap_or_default();

    let tarball = tar_of(&[
        (config_name.as_str(), &config),
        (layer_name.as_str(), &layer),
        ("manifest.json", &manifest),
    ])?;
    Ok(SmokeImage {
        tarball,
        config_digest: format!("sha256:{config_hex}"),
        layer_diff_id: format!("sha256:{layer_hex}"),
    })
}

/// Go's GOARCH for `uname -m` output (what image configs and docker call the architecture).
pub fn go_arch(uname_m: &str) -> Option<&'static str> {
    Some(match uname_m.trim() {
        "x86_64" | "amd64" => "amd64",
        "aarch64" | "arm64" => "arm64",
        "armv7l" | "armv6l" | "armhf" => "arm",
        "i386" | "i686" => "386",
        "ppc64le" => "ppc64le",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        _ => return None,
    })
}

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// An uncompressed tar of regular files (directories implied by the paths), root-owned, 0644,
/// mtime 0.
fn tar_of(files: &[(&str, &[u8])]) -> std::io::Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, data) in files {
        let mut header = tar::Header::new_ustar();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        header.set_entry_type(tar::EntryType::Regular);
        builder.append_data(&mut header, path, *data)?;
    }
    builder.into_inner()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn tar_list(path: &std::path::Path) -> Vec<String> {
        let out = Command::new("tar").arg("-tf").arg(path).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn tarball_is_a_docker_archive_with_consistent_digests() {
        let tag = "registry01.dev.com:5000/regboot-smoke:t1";
        let image = build(tag, "amd64", "nonce-123").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let tarball = dir.path().join("image.tar");
        std::fs::write(&tarball, &image.tarball).unwrap();

        // Read it back with the system tar, as docker load would see it.
        let config_hex = image.config_digest.strip_prefix("sha256:").unwrap();
        let layer_hex = image.layer_diff_id.strip_prefix("sha256:").unwrap();
        let config_name = format!("{config_hex}.json");
        let layer_name = format!("{layer_hex}/layer.tar");
        let mut listed = tar_list(&tarball);
        listed.sort();
        let mut expected = vec![
            config_name.clone(),
            layer_name.clone(),
            "manifest.json".into(),
        ];
        expected.sort();
        assert_eq!(listed, expected);

        let unpacked = dir.path().join("x");
        std::fs::create_dir(&unpacked).unwrap();
        let status = Command::new("tar")
            .arg("-xf")
            .arg(&tarball)
            .arg("-C")
            .arg(&unpacked)
            .status()
            .unwrap();
        assert!(status.success());

        let manifest: serde_json::Value =
            serde_json::from_slice(&std::fs::read(unpacked.join("manifest.json")).unwrap())
                .unwrap();
        assert_eq!(manifest[0]["Config"], config_name);
        assert_eq!(manifest[0]["RepoTags"][0], tag);
        assert_eq!(manifest[0]["Layers"][0], layer_name);

        // The image ID is the config's sha256, and the config names the layer's sha256.
        let config_bytes = std::fs::read(unpacked.join(&config_name)).unwrap();
        assert_eq!(sha256_hex(&config_bytes), config_hex);
        let config: serde_json::Value = serde_json::from_slice(&config_bytes).unwrap();
        assert_eq!(
            config["rootfs"]["diff_ids"][0],
            image.layer_diff_id.as_str()
        );
        assert_eq!(config["architecture"], "amd64");
        assert_eq!(config["os"], "linux");
        let layer_path = unpacked.join(&layer_name);
        assert_eq!(sha256_hex(&std::fs::read(&layer_path).unwrap()), layer_hex);

        // The layer holds the file with the nonce.
        assert_eq!(tar_list(&layer_path), [SMOKE_FILE]);
        let out = Command::new("tar")
            .arg("-xOf")
            .arg(&layer_path)
            .arg(SMOKE_FILE)
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8(out.stdout).unwrap(),
            "regboot smoke test nonce-123\n"
        );
    }

    #[test]
    fn nonce_makes_the_image_unique_and_inputs_make_it_reproducible() {
        let a = build("r/s:1", "amd64", "a").unwrap();
        let b = build("r/s:1", "amd64", "b").unwrap();
        assert_ne!(a.config_digest, b.config_digest);
        assert_ne!(a.layer_diff_id, b.layer_diff_id);
        let a2 = build("r/s:1", "amd64", "a").unwrap();
        assert_eq!(a.config_digest, a2.config_digest);
        assert_eq!(a.tarball, a2.tarball);
    }

    #[test]
    fn bad_tags_are_refused() {
        assert!(build("", "amd64", "n").is_err());
        assert!(build("r/s:1 extra", "amd64", "n").is_err());
    }

    #[test]
    fn uname_machine_maps_to_go_arch() {
        assert_eq!(go_arch("x86_64\n"), Some("amd64"));
        assert_eq!(go_arch("aarch64"), Some("arm64"));
        assert_eq!(go_arch("mips"), None);
    }
}
