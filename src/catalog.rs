//! What each registry replica serves: every repository, tag, manifest digest and size, read
//! from each replica directly (through its host's SSH connection, as the smoke test does), and
//! whether the replicas agree. Lists follow the registry's pagination (`n` and `last`, the
//! parameters of the `Link: <...?last=X&n=N>; rel="next"` header), so a catalog of more than
//! one page (distribution answers at most 1000 entries at once) is read whole.

use std::collections::{BTreeMap, HashSet};

use anyhow::{Context, Result, bail};
use futures::{StreamExt, TryStreamExt};
use serde::Serialize;

use crate::host::RemoteHost;
use crate::inventory::Inventory;
use crate::registry_http::{self, Request};

/// Entries asked per page; distribution refuses more than 1000.
pub const PAGE: usize = 1000;
/// A bound on pages per list (10 million entries).
const MAX_PAGES: usize = 10_000;
/// Manifests read at once from one replica (channels of its one SSH connection): each read is
/// a round trip through SSH and TLS, so waiting for them one by one made 1,000 tags slow.
const MANIFESTS_AT_ONCE: usize = 8;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Image {
    pub repository: String,
    pub tag: String,
    pub digest: String,
    /// Config plus layers (an image), or the sum of the listed manifests (an index).
    pub size: u64,
}

#[derive(Debug, Serialize)]
pub struct Replica {
    pub host: String,
    pub images: Vec<Image>,
    pub error: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub replicas: Vec<Replica>,
    /// Every replica answered and they serve the same images.
    pub agree: bool,
    /// What differs: `host: only here repo:tag@digest` / `host: missing repo:tag@digest`.
    pub differences: Vec<String>,
}

/// The next page's path for `base` after `last` (none: the first page).
pub fn page_path(base: &str, last: Option<&str>) -> String {
    match last {
        None => format!("{base}?n={PAGE}"),
        Some(l) => format!("{base}?n={PAGE}&last={l}"),
    }
}

/// The entries of one page (`key`: repositories or tags; null counts as none).
pub fn parse_page(body: &[u8], key: &str) -> Result<Vec<String>> {
    let v: serde_json::Value = serde_json::from_slice(body).context("the answer is not JSON")?;
    Ok(v.get(key)
        .and_then(|x| x.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default())
}

/// Add one page to a list; whether another page may follow (a full one). A registry that
/// ignores `n` and `last` (distribution 2.8's tags/list does) answers the whole list each
/// time: a page longer than asked for is the whole list, and an entry read before ends it.
pub fn add_page(all: &mut Vec<String>, seen: &mut HashSet<String>, page: Vec<String>) -> bool {
    let full = page.len() == PAGE;
    for entry in page {
        if !seen.insert(entry.clone()) {
            return false;
        }
        all.push(entry);
    }
    full
}

/// Digest and size of a manifest as served.
pub fn describe(body: &[u8]) -> Result<(String, u64)> {
    let digest = format!("sha256:{}", crate::modules::sha256_hex(body));
    let v: serde_json::Value = serde_json::from_slice(body).context("a manifest is not JSON")?;
    let size = |x: &serde_json::Value| x.get("size").and_then(|s| s.as_u64()).unwrap_or(0);
    let list = |key: &str| {
        v.get(key)
            .and_then(|l| l.as_array())
            .map(|l| l.iter().map(size).sum::<u64>())
            .unwrap_or(0)
    };
    let total = v.get("config").map(size).unwrap_or(0) + list("layers") + list("manifests");
    Ok((digest, total))
}

struct Reader<'a> {
    remote: &'a RemoteHost,
    inv: &'a Inventory,
    ca_pem: Option<&'a str>,
    auth: Option<(&'a str, &'a str)>,
}

impl Reader<'_> {
    async fn get(&self, path: &str) -> Result<Vec<u8>> {
        let req = Request {
            method: "GET",
            path,
            hostname: &self.inv.registry.hostname,
            port: self.inv.registry.port,
            ca_pem: self.ca_pem,
            basic_auth: self.auth,
        };
        match registry_http::fetch(&self.remote.session, &req).await? {
            (200, body) => Ok(body),
            (401, _) if self.auth.is_none() => bail!(
                "GET {path}: HTTP 401; the registry wants a login: give a user a password \
                 (password_env or password_file) in the inventory"
            ),
            (code, _) => bail!("GET {path}: HTTP {code}"),
        }
    }

    /// Every entry of a paginated list.
    async fn list(&self, base: &str, key: &str) -> Result<Vec<String>> {
        let mut all: Vec<String> = Vec::new();
        let mut seen = HashSet::new();
        for _ in 0..MAX_PAGES {
            let page = parse_page(
                &self
                    .get(&page_path(base, all.last().map(String::as_str)))
                    .await?,
                key,
            )?;
            if !add_page(&mut all, &mut seen, page) {
                return Ok(all);
            }
        }
        bail!("{base}: more than {MAX_PAGES} pages")
    }

    async fn images(&self) -> Result<Vec<Image>> {
        let mut images = Vec::new();
        for repo in self.list("/v2/_catalog", "repositories").await? {
            let tags = self.list(&format!("/v2/{repo}/tags/list"), "tags").await?;
            let repo = &repo;
            let read: Vec<Image> = futures::stream::iter(tags)
                .map(|tag| async move {
                    let body = self.get(&format!("/v2/{repo}/manifests/{tag}")).await?;
                    let (digest, size) = describe(&body)?;
                    Ok::<_, anyhow::Error>(Image {
                        repository: repo.clone(),
                        tag,
                        digest,
                        size,
                    })
                })
                .buffer_unordered(MANIFESTS_AT_ONCE)
                .try_collect()
                .await?;
            images.extend(read);
        }
        images.sort();
        Ok(images)
    }
}

/// Read every replica (`replicas`: registry host name and connection) and compare.
pub(crate) async fn read(
    inv: &Inventory,
    replicas: &[(&str, &RemoteHost)],
    ca_pem: Option<&str>,
    auth: Option<(&str, &str)>,
) -> Report {
    let reads = futures::future::join_all(replicas.iter().map(|(name, remote)| async move {
        let reader = Reader {
            remote,
            inv,
            ca_pem,
            auth,
        };
        match reader.images().await {
            Ok(images) => Replica {
                host: name.to_string(),
                images,
                error: None,
            },
            Err(e) => Replica {
                host: name.to_string(),
                images: Vec::new(),
                error: Some(format!("{e:#}")),
            },
        }
    }))
    .await;
    compare(reads)
}

/// `GET path` on one replica, as [`read`] reads it (the page's tag details and dates).
pub(crate) async fn get_on(
    inv: &Inventory,
    remote: &RemoteHost,
    ca_pem: Option<&str>,
    auth: Option<(&str, &str)>,
    path: &str,
) -> Result<Vec<u8>> {
    let reader = Reader {
        remote,
        inv,
        ca_pem,
        auth,
    };
    reader.get(path).await
}

/// Delete the manifest `digest` of `repo` on one replica (which deletes every tag pointing at
/// it); `Ok(false)`: it was already gone there (a storage shared with a replica that deleted
/// it first). The blobs stay until `regboot gc`.
pub(crate) async fn delete_on(
    inv: &Inventory,
    remote: &RemoteHost,
    ca_pem: Option<&str>,
    auth: Option<(&str, &str)>,
    repo: &str,
    digest: &str,
) -> Result<bool> {
    let path = format!("/v2/{repo}/manifests/{digest}");
    let req = Request {
        method: "DELETE",
        path: &path,
        hostname: &inv.registry.hostname,
        port: inv.registry.port,
        ca_pem,
        basic_auth: auth,
    };
    match registry_http::fetch(&remote.session, &req).await?.0 {
        202 | 200 => Ok(true),
        404 => Ok(false),
        405 => bail!(
            "DELETE {path}: HTTP 405: the registry does not allow deletes; set \
             registry.delete_enabled: true in the inventory and run `regboot apply`"
        ),
        code => bail!("DELETE {path}: HTTP {code}"),
    }
}

/// An image (repository:tag@digest) with the answering replicas that serve it and lack it.
#[derive(Debug, Serialize)]
pub struct Holding {
    #[serde(flatten)]
    pub image: Image,
    pub held_by: Vec<String>,
    pub missing_on: Vec<String>,
}

/// Every image an answering replica serves, with who holds and who lacks it (a replica that
/// failed to answer is neither).
pub fn holdings(replicas: &[Replica]) -> Vec<Holding> {
    let answered: Vec<&Replica> = replicas.iter().filter(|r| r.error.is_none()).collect();
    let mut seen: BTreeMap<&Image, Vec<&str>> = BTreeMap::new();
    for r in &answered {
        for i in &r.images {
            seen.entry(i).or_default().push(&r.host);
        }
    }
    seen.into_iter()
        .map(|(image, held)| Holding {
            image: image.clone(),
            missing_on: answered
                .iter()
                .filter(|r| !held.contains(&r.host.as_str()))
                .map(|r| r.host.clone())
                .collect(),
            held_by: held.into_iter().map(String::from).collect(),
        })
        .collect()
}

/// The verdict over replicas' reads.
pub fn compare(replicas: Vec<Replica>) -> Report {
    let differences: Vec<String> = holdings(&replicas)
        .iter()
        .flat_map(|h| {
            let i = &h.image;
            h.missing_on.iter().map(move |host| {
                format!(
                    "{host}: missing {}:{}@{} (served by {})",
                    i.repository,
                    i.tag,
                    i.digest,
                    h.held_by.join(", ")
                )
            })
        })
        .collect();
    let agree = differences.is_empty() && replicas.iter().all(|r| r.error.is_none());
    Report {
        replicas,
        agree,
        differences,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_digests_and_verdicts() {
        assert_eq!(page_path("/v2/_catalog", None), "/v2/_catalog?n=1000");
        assert_eq!(
            page_path("/v2/a/tags/list", Some("v1")),
            "/v2/a/tags/list?n=1000&last=v1"
        );
        assert_eq!(
            parse_page(br#"{"name":"a","tags":null}"#, "tags").unwrap(),
            Vec::<String>::new()
        );
        // Pages of a registry that pages, and of one that answers the whole list each time.
        let names = |r: std::ops::Range<usize>| r.map(|i| format!("t{i:04}")).collect::<Vec<_>>();
        let (mut all, mut seen) = (Vec::new(), HashSet::new());
        assert!(add_page(&mut all, &mut seen, names(0..PAGE)));
        assert!(!add_page(&mut all, &mut seen, names(PAGE..PAGE + 1)));
        assert_eq!(all, names(0..PAGE + 1));
        let (mut all, mut seen) = (Vec::new(), HashSet::new());
        assert!(!add_page(&mut all, &mut seen, names(0..PAGE + 1)));
        assert_eq!(all.len(), PAGE + 1);
        let (mut all, mut seen) = (Vec::new(), HashSet::new());
        assert!(add_page(&mut all, &mut seen, names(0..PAGE)));
        assert!(!add_page(&mut all, &mut seen, names(0..PAGE)));
        assert_eq!(all, names(0..PAGE));

        let m = br#"{"schemaVersion":2,"config":{"size":10},"layers":[{"size":100},{"size":5}]}"#;
        let (digest, size) = describe(m).unwrap();
        assert_eq!(size, 115);
        assert_eq!(digest, format!("sha256:{}", crate::modules::sha256_hex(m)));
        let img = |tag: &str| Image {
            repository: "r".into(),
            tag: tag.into(),
            digest: "sha256:1".into(),
            size: 1,
        };
        let rep = |host: &str, images: Vec<Image>| Replica {
            host: host.into(),
            images,
            error: None,
        };
        assert!(compare(vec![rep("a", vec![img("1")]), rep("b", vec![img("1")])]).agree);
        let r = compare(vec![
            rep("a", vec![img("1"), img("2")]),
            rep("b", vec![img("1")]),
        ]);
        assert!(!r.agree);
        assert_eq!(r.differences, ["b: missing r:2@sha256:1 (served by a)"]);
        let held = holdings(&r.replicas);
        assert_eq!(
            held.iter()
                .map(|h| (
                    h.image.tag.as_str(),
                    h.held_by.clone(),
                    h.missing_on.clone()
                ))
                .collect::<Vec<_>>(),
            [
                ("1", vec!["a".to_string(), "b".to_string()], vec![]),
                ("2", vec!["a".to_string()], vec!["b".to_string()]),
            ]
        );
        let mut down = rep("b", vec![]);
        down.error = Some("unreachable".into());
        assert!(!compare(vec![rep("a", vec![img("1")]), down]).agree);
    }
}
