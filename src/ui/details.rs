//! A tag's details for the page, read when the tag is opened (never for the whole list): its
//! manifest, and for an index each listed manifest, with the config blob of each image
//! (created date, platform, labels) and its layers. Names from the page are checked against
//! the registry's grammar before they go into a request path.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use serde::Serialize;
use serde_json::Value;

/// At most this many manifests of an index are read (a multi-platform image lists a handful).
const MAX_MANIFESTS: usize = 64;

#[derive(Debug, PartialEq, Serialize)]
pub struct Layer {
    pub digest: String,
    pub size: u64,
    pub media_type: String,
}

/// One image: the tag's own manifest, or one manifest listed by an index.
#[derive(Debug, Default, Serialize)]
pub struct Image {
    pub digest: String,
    /// `os/architecture[/variant]`, from the index entry or else the image's config.
    pub platform: String,
    pub created: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub config_digest: String,
    pub layers: Vec<Layer>,
    /// Config plus layers.
    pub size: u64,
    /// What could not be read (a listed manifest, the config blob), with the reason.
    pub error: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Details {
    pub repository: String,
    pub reference: String,
    pub digest: String,
    pub media_type: String,
    /// A manifest list / OCI index: `images` are its manifests.
    pub index: bool,
    pub images: Vec<Image>,
}

/// A repository name as distribution accepts it: lowercase components of letters and digits
/// joined by single separators (`.`, `_`, `__`, `-`), separated by `/`.
pub fn repository_ok(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && name.split('/').all(|part| {
            let b = part.as_bytes();
            !b.is_empty()
                && b.iter()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || b"._-".contains(c))
                && b[0].is_ascii_alphanumeric()
                && b[b.len() - 1].is_ascii_alphanumeric()
        })
}

/// A tag (`[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`) or a digest (`algorithm:hex`).
pub fn reference_ok(r: &str) -> bool {
    digest_ok(r)
        || (!r.is_empty()
            && r.len() <= 128
            && !r.starts_with(['.', '-'])
            && r.bytes()
                .all(|c| c.is_ascii_alphanumeric() || b"._-".contains(&c)))
}

/// `sha256:` and 64 lowercase hex digits (or another algorithm with its hex).
pub fn digest_ok(d: &str) -> bool {
    d.split_once(':').is_some_and(|(alg, hex)| {
        !alg.is_empty()
            && alg
                .bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
            && hex.len() >= 32
            && hex
                .bytes()
                .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
    })
}

/// Read the details of `repo:reference` with `get` (a GET of a registry path on one replica).
pub async fn read<F: Future<Output = Result<Vec<u8>>>>(
    repo: &str,
    reference: &str,
    get: impl Fn(String) -> F,
) -> Result<Details> {
    let body = get(format!("/v2/{repo}/manifests/{reference}")).await?;
    let (digest, _) = crate::catalog::describe(&body)?;
    let manifest: Value = serde_json::from_slice(&body).context("the manifest is not JSON")?;
    let media_type = text(&manifest, "mediaType");
    let mut details = Details {
        repository: repo.to_string(),
        reference: reference.to_string(),
        digest: digest.clone(),
        media_type,
        index: manifest.get("manifests").is_some(),
        images: Vec::new(),
    };
    if !details.index {
        let mut image = image_of(&manifest, digest);
        read_config(repo, &mut image, &get).await;
        details.images.push(image);
        return Ok(details);
    }
    let listed = manifest["manifests"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for entry in listed.iter().take(MAX_MANIFESTS) {
        let digest = text(entry, "digest");
        let mut image = Image {
            platform: platform(entry.get("platform").unwrap_or(&Value::Null)),
            ..Image::default()
        };
        if !digest_ok(&digest) {
            image.error = Some(format!("the index lists a bad digest {digest:?}"));
            details.images.push(image);
            continue;
        }
        match get(format!("/v2/{repo}/manifests/{digest}"))
            .await
            .and_then(|b| serde_json::from_slice::<Value>(&b).context("not JSON"))
        {
            Ok(child) => {
                let listed_platform = std::mem::take(&mut image.platform);
                image = image_of(&child, digest);
                read_config(repo, &mut image, &get).await;
                if !listed_platform.is_empty() {
                    image.platform = listed_platform;
                }
            }
            Err(e) => {
                image.digest = digest;
                image.error = Some(format!("{e:#}"));
            }
        }
        details.images.push(image);
    }
    Ok(details)
}

/// The layers and config digest of an image manifest.
fn image_of(manifest: &Value, digest: String) -> Image {
    let size = |v: &Value| v.get("size").and_then(Value::as_u64).unwrap_or(0);
    let config = manifest.get("config").unwrap_or(&Value::Null);
    let layers: Vec<Layer> = manifest
        .get("layers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|l| Layer {
            digest: text(l, "digest"),
            size: size(l),
            media_type: text(l, "mediaType"),
        })
        .collect();
    Image {
        digest,
        config_digest: text(config, "digest"),
        size: size(config) + layers.iter().map(|l| l.size).sum::<u64>(),
        layers,
        ..Image::default()
    }
}

/// Fill created, platform and labels from the image's config blob.
async fn read_config<F: Future<Output = Result<Vec<u8>>>>(
    repo: &str,
    image: &mut Image,
    get: &impl Fn(String) -> F,
) {
    if !digest_ok(&image.config_digest) {
        image.error = Some("the manifest names no config blob".into());
        return;
    }
    let config = match get(format!("/v2/{repo}/blobs/{}", image.config_digest))
        .await
        .and_then(|b| serde_json::from_slice::<Value>(&b).context("the config is not JSON"))
    {
        Ok(config) => config,
        Err(e) => {
            image.error = Some(format!("config {}: {e:#}", image.config_digest));
            return;
        }
    };
    image.created = config
        .get("created")
        .and_then(Value::as_str)
        .map(String::from);
    image.platform = platform(&config);
    image.labels = config
        .pointer("/config/Labels")
        .and_then(Value::as_object)
        .map(|labels| {
            labels
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default();
}

/// `os/architecture[/variant]` of an index entry's platform or an image config.
fn platform(v: &Value) -> String {
    let parts: Vec<String> = ["os", "architecture", "variant"]
        .iter()
        .map(|k| text(v, k))
        .filter(|s| !s.is_empty())
        .collect();
    parts.join("/")
}

fn text(v: &Value, key: &str) -> String {
    v.get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_outside_the_grammar_are_refused() {
        for ok in ["a", "lab/ui", "a.b_c-d/e__f"] {
            assert!(repository_ok(ok), "{ok}");
        }
        for bad in ["", "A", "a//b", "../a", "a/", "-a", "a?b", "a%2fb", "a b"] {
            assert!(!repository_ok(bad), "{bad}");
        }
        assert!(reference_ok("v1.2_3-x"));
        assert!(reference_ok(&format!("sha256:{}", "a".repeat(64))));
        for bad in ["", ".x", "-x", "a/b", "a?b", "sha256:XYZ", &"a".repeat(129)] {
            assert!(!reference_ok(bad), "{bad}");
        }
    }

    /// A registry of one index over two images (amd64 with a label, arm64 without a config).
    async fn registry_get(path: String) -> Result<Vec<u8>> {
        let d = |c: char| format!("sha256:{}", c.to_string().repeat(64));
        let body = match path.as_str() {
            "/v2/r/manifests/multi" => serde_json::json!({
                "mediaType": "application/vnd.oci.image.index.v1+json",
                "manifests": [
                    {"digest": d('a'), "size": 9, "platform": {"os": "linux", "architecture": "amd64"}},
                    {"digest": d('b'), "size": 9, "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
                ]
            }),
            p if p == format!("/v2/r/manifests/{}", d('a')) => serde_json::json!({
                "config": {"digest": d('c'), "size": 10},
                "layers": [{"digest": d('1'), "size": 100, "mediaType": "tar+gzip"}, {"digest": d('2'), "size": 5, "mediaType": "tar+gzip"}]
            }),
            p if p == format!("/v2/r/manifests/{}", d('b')) => serde_json::json!({
                "config": {"digest": d('e'), "size": 10}, "layers": []
            }),
            p if p == format!("/v2/r/blobs/{}", d('c')) => serde_json::json!({
                "created": "2026-01-02T03:04:05Z", "os": "linux", "architecture": "amd64",
                "config": {"Labels": {"org.opencontainers.image.title": "<b>x</b>"}}
            }),
            _ => anyhow::bail!("GET {path}: HTTP 404"),
        };
        Ok(serde_json::to_vec(&body).unwrap())
    }

    #[tokio::test]
    async fn an_index_lists_each_image_with_its_layers_and_config() {
        let details = read("r", "multi", registry_get).await.unwrap();
        assert!(details.index);
        assert_eq!(details.images.len(), 2);
        let amd = &details.images[0];
        assert_eq!(amd.platform, "linux/amd64");
        assert_eq!(amd.created.as_deref(), Some("2026-01-02T03:04:05Z"));
        assert_eq!(amd.labels["org.opencontainers.image.title"], "<b>x</b>");
        assert_eq!(amd.layers.len(), 2);
        assert_eq!(amd.size, 115);
        assert!(amd.error.is_none());
        let arm = &details.images[1];
        assert_eq!(arm.platform, "linux/arm64/v8");
        assert!(arm.error.as_ref().unwrap().contains("HTTP 404"), "{arm:?}");

        let one = read("r", &format!("sha256:{}", "a".repeat(64)), registry_get)
            .await
            .unwrap();
        assert!(!one.index);
        assert_eq!(one.images[0].platform, "linux/amd64");
        assert!(read("r", "missing", registry_get).await.is_err());
    }
}
