//! The smoke test: a tiny unique image pushed from one agent (through docker, else podman) and
//! pulled on every host through every runtime it has: docker, containerd (`ctr` with the hosts
//! directory regboot keeps) and podman, each with its own trust (certs.d trees, /etc/hosts,
//! real auth), digests compared, and everything cleaned up. It logs in as regboot's own user
//! (`inventory::SMOKE_USER`), the password always through stdin, never in a command line: into
//! a temporary DOCKER_CONFIG or podman auth file, or through a terminal for ctr. Its artefacts
//! have fixed names (the `regboot-smoke` repository, `/run/regboot-smoke*` config dirs and
//! marker, ctr's `regboot` namespace), so a host removes what an earlier, interrupted run left
//! when that run's config dir or marker is still there. Where the login user may open dockerd's
//! or containerd's socket, the push and the pulls go through their APIs instead
//! (`api_push.rs`, `api_pull.rs`): no CLI starts on the host.

use std::time::Instant;

use anyhow::{Context, Result};

use futures::StreamExt;

use super::api_pull;
use super::api_push;
use super::image as smoke_image;
use super::outcome::{digest_of, failure, retry_name_lookup};
use crate::engine::report::{Phase, Verification as SmokeHost};
use crate::host::RemoteHost;
use crate::inventory::Inventory;
use crate::material::Material;
use crate::registry_http::{self, Request};

/// The repository every smoke image is pushed to, on every registry.
const REPOSITORY: &str = "regboot-smoke";

/// Every script's args: reference, image (`<reference>/regboot-smoke:<nonce>`), user
/// (empty: no auth). Stdin: the password (the image tarball for the load).
const ARGS: &str = "ref=$1; image=$2; user=$3\n";

/// Removes what an interrupted smoke test left on this host: tags of the smoke repository and
/// temporary DOCKER_CONFIG dirs. Runs before this run places either on the host, and leaves
/// stdin (the password, or the image) to the commands after it.
const SWEEP: &str = r#"docker image ls --format '{{.Repository}}:{{.Tag}}' "${image%:*}" </dev/null \
  | grep -v ':<none>$' | xargs -r docker rmi >/dev/null 2>&1
rm -rf /run/regboot-smoke.*
"#;

/// The credential goes into a temporary DOCKER_CONFIG's config.json, the file `docker login`
/// would write, without a login's CLI start and registry round trip (each pull's cost counts
/// on a large fleet). The config dir is in /run: root's only, and on tmpfs, so the credential
/// never reaches a disk.
const LOGIN: &str = r#"IFS= read -r pw || pw=
DOCKER_CONFIG=$(mktemp -d /run/regboot-smoke.XXXXXX) || exit 1
export DOCKER_CONFIG
trap 'rm -rf "$DOCKER_CONFIG"' EXIT
if [ -n "$user" ]; then
  auth=$(printf '%s:%s' "$user" "$pw" | base64 | tr -d '\n')
  (umask 077; printf '{"auths": {"%s": {"auth": "%s"}}}\n' "$ref" "$auth" > "$DOCKER_CONFIG/config.json") || exit 1
fi
"#;

/// Loads the image from stdin (after the password's line) and pushes it; the digest comes from
/// the push's own `<tag>: digest:` line. On exit the image goes, as after a pull ([`PULL`]),
/// so nothing is left for the end of the run.
const PUSH: &str = r#"trap 'docker rmi "$image" >/dev/null 2>&1 && rm -rf "$DOCKER_CONFIG" || rm -f "$DOCKER_CONFIG/config.json"' EXIT
docker load >/dev/null || exit 1
out=$(docker push "$image" 2>&1) || { printf '%s\n' "$out" | tail -n 5 >&2; exit 1; }
printf '%s\n' "$out" | sed -n "s|^${image##*:}: digest: \(sha256:[0-9a-f]*\).*|${image%:*}@\1|p"
"#;

/// Sets `left` when an earlier push or pull was interrupted or failed: its DOCKER_CONFIG dir is
/// still there. Only then does a host sweep ([`SWEEP`]): each docker CLI start costs the host tens
/// of ms of CPU, which add up on a fleet.
const LEFT: &str = r#"left=
for d in /run/regboot-smoke.*; do [ -e "$d" ] && left=1; break; done
"#;

/// The digest comes from the pull's own `Digest:` line. On exit the image goes, then the
/// DOCKER_CONFIG dir: left (without the credential) when the image could not be removed, so
/// the next pull sweeps.
const PULL: &str = r#"trap 'docker rmi "$image" >/dev/null 2>&1 && rm -rf "$DOCKER_CONFIG" || rm -f "$DOCKER_CONFIG/config.json"' EXIT
out=$(docker pull "$image" 2>&1) || { printf '%s\n' "$out" | tail -n 5 >&2; exit 1; }
printf '%s\n' "$out" | sed -n "s|^Digest: |${image%:*}@|p"
"#;

/// ctr pulls into its own namespace, `regboot` (apart from docker's moby and the CRI's
/// k8s.io), removed again when empty. A marker file lives from before the pull until its
/// image is removed: when one is there, an earlier pull was interrupted or failed, and its
/// images are swept first. ctr takes a password only as `--user user:password` (seen by
/// anyone running ps) or, given a user alone, from a terminal: script(1) gives it one, fed
/// from stdin with echo off, so the password appears in no command line and no output.
/// `--hosts-dir` makes ctr read the hosts.toml files regboot placed (ctr reads none without it).
const CTR_PULL: &str = r#"ns=regboot
marker=/run/regboot-smoke-ctr
if [ -e "$marker" ]; then
  ctr -n "$ns" images ls -q 2>/dev/null </dev/null | grep -F "${image%:*}:" | xargs -r ctr -n "$ns" images rm >/dev/null 2>&1
fi
: > "$marker" || exit 1
trap 'ctr -n "$ns" images rm --sync "$image" >/dev/null 2>&1 && rm -f "$marker"; ctr namespaces rm "$ns" >/dev/null 2>&1' EXIT
if [ -n "$user" ]; then
  out=$(SMOKE_USER=$user SMOKE_IMAGE=$image script -q -e -E never -c     'exec ctr -n regboot images pull --hosts-dir /etc/containerd/certs.d --user "$SMOKE_USER" "$SMOKE_IMAGE"' /dev/null 2>&1)
else
  out=$(ctr -n "$ns" images pull --hosts-dir /etc/containerd/certs.d "$image" </dev/null 2>&1)
fi || { printf '%s\n' "$out" | tr '\r' '\n' | grep -v '^ *$' | tail -n 5 >&2; exit 1; }
ctr -n "$ns" images ls "name==$image" | awk 'NR > 1 { print $3 }'
"#;

/// podman's credential goes into a temporary auth file (0600, on tmpfs) through stdin, whose
/// first line is the password (the rest, for a push, the image).
const PODMAN_LOGIN: &str = r#"IFS= read -r pw || pw=
podman images --format '{{.Repository}}:{{.Tag}}' </dev/null | grep -F "${image%:*}:" | xargs -r podman rmi >/dev/null 2>&1
rm -rf /run/regboot-smoke-podman.*
dir=$(mktemp -d /run/regboot-smoke-podman.XXXXXX) || exit 1
auth=$dir/auth.json
trap 'rm -rf "$dir"' EXIT
if [ -n "$user" ]; then
  printf '%s\n' "$pw" | podman login --authfile "$auth" --tls-verify=true --username "$user" --password-stdin "$ref" >/dev/null || exit 1
else
  echo '{}' > "$auth"
fi
"#;

const PODMAN_PULL: &str = r#"trap 'rm -rf "$dir"; podman rmi "$image" >/dev/null 2>&1' EXIT
podman pull --quiet --tls-verify=true --authfile "$auth" "$image" >/dev/null || exit 1
podman image inspect --format '{{.Digest}}' "$image"
"#;

const PODMAN_PUSH: &str = r#"trap 'rm -rf "$dir"; podman rmi "$image" >/dev/null 2>&1' EXIT
cat > "$dir/image.tar"
podman load --quiet --input "$dir/image.tar" >/dev/null || exit 1
podman push --quiet --tls-verify=true --authfile "$auth" --digestfile "$dir/digest" "$image" || exit 1
cat "$dir/digest"
"#;

/// A client that pulls (and docker or podman, pushes) on a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Client {
    Docker,
    Containerd,
    /// containerd's CRI image service (`smoke_test::api_pull`); ctr where it cannot be reached.
    Cri,
    Podman,
}

impl Client {
    /// The report's action for a pull through it.
    fn pull_action(self) -> &'static str {
        match self {
            Client::Docker => "pull",
            Client::Containerd => "ctr pull",
            Client::Cri => "cri pull",
            Client::Podman => "podman pull",
        }
    }

    /// The runtime API it pulls through, where the host lets the login user open its socket.
    fn api(self) -> Option<api_pull::Via> {
        match self {
            Client::Cri => Some(api_pull::Via::Cri),
            Client::Docker => Some(api_pull::Via::Docker),
            Client::Containerd | Client::Podman => None,
        }
    }

    /// The client whose commands pull where this one's API cannot be reached.
    fn without_api(self) -> Client {
        match self {
            Client::Cri => Client::Containerd,
            c => c,
        }
    }

    /// The script that pulls `$image` and prints its digest (args: [`ARGS`]; stdin: the password).
    fn pull_script(self) -> String {
        match self {
            Client::Docker => {
                format!("{ARGS}{LEFT}if [ -n \"$left\" ]; then\n{SWEEP}fi\n{LOGIN}{PULL}")
            }
            Client::Containerd | Client::Cri => format!("{ARGS}{CTR_PULL}"),
            Client::Podman => format!("{ARGS}{PODMAN_LOGIN}{PODMAN_PULL}"),
        }
    }

    /// The report's action and the script that loads the image from stdin (after the
    /// password's line), pushes it, prints its digest and removes it (args: [`ARGS`]).
    fn push_script(self) -> (&'static str, String) {
        match self {
            Client::Podman => ("podman push", format!("{ARGS}{PODMAN_LOGIN}{PODMAN_PUSH}")),
            _ => (
                "docker push",
                format!("{ARGS}{LEFT}if [ -n \"$left\" ]; then\n{SWEEP}fi\n{LOGIN}{PUSH}"),
            ),
        }
    }

    /// A digest as this client prints it.
    fn digest(self, out: &str, repo: &str) -> Option<String> {
        match self {
            Client::Docker => digest_of(out, repo),
            Client::Containerd | Client::Cri | Client::Podman => out
                .lines()
                .map(str::trim)
                .find(|l| l.starts_with("sha256:"))
                .map(str::to_string),
        }
    }
}

pub struct SmokeTarget<'a> {
    pub name: &'a str,
    pub remote: &'a RemoteHost,
    pub arch: &'a str,
    /// Every client it has, docker first.
    pub clients: Vec<Client>,
}

impl SmokeTarget<'_> {
    /// The client it pushes with: docker, else podman.
    pub fn pusher(&self) -> Option<Client> {
        [Client::Docker, Client::Podman]
            .into_iter()
            .find(|c| self.clients.contains(c))
    }
}

/// Delete the smoke manifest through a registry host (the repository itself stays: the
/// registry API cannot delete repositories; its blobs go at the next garbage collection).
async fn delete_manifest(
    inv: &Inventory,
    material: &Material,
    registry: &RemoteHost,
    digest: &str,
    auth: Option<(&str, &str)>,
) -> Result<()> {
    let ca = material.tls.as_ref().map(|t| t.ca_pem.as_str());
    crate::catalog::delete_on(inv, registry, ca, auth, REPOSITORY, digest).await?;
    Ok(())
}

/// What the smoke test found, and where its time went.
pub struct Smoke {
    pub results: Vec<SmokeHost>,
    pub phases: Vec<Phase>,
}

/// Collects results, telling `on_result` each one as it comes, and phases.
struct Found<'a> {
    smoke: Smoke,
    on_result: &'a (dyn Fn(&SmokeHost) + Sync),
}

impl Found<'_> {
    fn result(&mut self, r: SmokeHost) {
        (self.on_result)(&r);
        self.smoke.results.push(r);
    }

    fn phase(&mut self, phase: String, started: Instant) {
        self.smoke.phases.push(Phase {
            phase,
            seconds: started.elapsed().as_secs_f64(),
        });
    }
}

/// Push from `pusher`, pull on every host of `pullers` (`smoke_parallel_pulls` hosts at a
/// time), read the manifest and the catalog on every replica directly, clean up. `replicas`:
/// the registry hosts (name, connection); the manifest is deleted through the first.
/// `on_result` hears each result as it is known.
pub async fn run(
    inv: &Inventory,
    material: &Material,
    pusher: &SmokeTarget<'_>,
    pullers: &[SmokeTarget<'_>],
    replicas: &[(&str, &RemoteHost)],
    on_result: &(dyn Fn(&SmokeHost) + Sync),
) -> Smoke {
    let registry = replicas.first().map(|(_, r)| *r);
    let (user, password) = super::login::of(material).unwrap_or_default();
    let reference = inv.reference(&inv.registry.hostname);
    let repo = format!("{reference}/{REPOSITORY}");
    let nonce = hex::encode(rand::random::<[u8; 6]>());
    let image = format!("{repo}:{nonce}");
    let args = [reference.as_str(), image.as_str(), user.as_str()];
    let pw = format!("{password}\n").into_bytes();
    let mut found = Found {
        smoke: Smoke {
            results: Vec::new(),
            phases: Vec::new(),
        },
        on_result,
    };

    let start = Instant::now();
    let push_client = pusher.pusher().unwrap_or(Client::Docker);
    let arch = smoke_image::go_arch(pusher.arch).unwrap_or("amd64");
    let built = smoke_image::build(&image, arch, &nonce);
    // dockerd's API where the login user may open its socket. Either way the pusher removes
    // the image once pushed.
    let through_api = match (&built, push_client) {
        (Ok(b), Client::Docker) => {
            api_push::push(&pusher.remote.session, &b.tarball, &args, &pw).await
        }
        _ => None,
    };
    let pushed = async {
        if let Some(pushed) = through_api {
            return pushed;
        }
        // stdin: the password's line, then the image.
        let mut input = pw.clone();
        input.extend_from_slice(&built?.tarball);
        let (action, push) = push_client.push_script();
        let out =
            retry_name_lookup(|| pusher.remote.run(action, &push, &args, Some(&input))).await?;
        push_client
            .digest(&out.stdout_text(), &repo)
            .context("the push reported no digest")
    }
    .await;
    let (ok, detail) = match &pushed {
        Ok(d) => (true, format!("pushed {image} ({d})")),
        Err(e) => (false, failure(e)),
    };
    found.result(SmokeHost {
        host: pusher.name.to_string(),
        action: "push",
        ok,
        seconds: start.elapsed().as_secs_f64(),
        detail,
    });
    found.phase("push".into(), start);
    let Ok(digest) = pushed else {
        return found.smoke;
    };

    // Every host pulls through each of its clients, one after the other (they share the
    // host's /run/regboot-smoke.* sweep); the pusher through those it did not push with. At
    // most `smoke_parallel_pulls` hosts pull at once, so a large fleet does not ask the
    // registry for everything at the same moment.
    let start = Instant::now();
    let at_once = inv.smoke_parallel_pulls.max(1);
    let hosts = std::iter::once((pusher, push_client))
        .chain(pullers.iter().map(|p| (p, Client::Docker)))
        .map(|(h, pushed_with)| {
            let (args, pw, repo, digest) = (&args, &pw, &repo, &digest);
            let is_pusher = std::ptr::eq(h, pusher);
            async move {
                let mut done = Vec::new();
                for &client in &h.clients {
                    if is_pusher && client == pushed_with {
                        continue;
                    }
                    let result = pull(h, client, args, pw, repo, digest).await;
                    on_result(&result);
                    done.push(result);
                }
                done
            }
        })
        .collect::<Vec<_>>();
    let pulled: Vec<Vec<SmokeHost>> = futures::stream::iter(hosts)
        .buffer_unordered(at_once)
        .collect()
        .await;
    found.smoke.results.extend(pulled.into_iter().flatten());
    found.phase(format!("pulls ({at_once} hosts at once)"), start);

    let start = Instant::now();
    let auth = (!user.is_empty()).then_some((user.as_str(), password.as_str()));
    for r in check_replicas(inv, material, replicas, &digest, auth).await {
        found.result(r);
    }
    found.phase("replica checks".into(), start);

    let start = Instant::now();
    let cleanup = async {
        match (inv.registry.delete_enabled, registry) {
            (true, Some(reg)) => delete_manifest(inv, material, reg, &digest, auth).await,
            _ => Ok(()),
        }
    };
    if let Err(e) = cleanup.await {
        found.result(SmokeHost {
            host: pusher.name.to_string(),
            action: "cleanup",
            ok: false,
            seconds: start.elapsed().as_secs_f64(),
            detail: format!("{e:#}"),
        });
    }
    found.phase("cleanup".into(), start);
    found.smoke
}

/// A pull of the pushed image on `h` through `client`, its digest compared with the push's.
async fn pull(
    h: &SmokeTarget<'_>,
    client: Client,
    args: &[&str; 3],
    pw: &[u8],
    repo: &str,
    digest: &str,
) -> SmokeHost {
    let start = Instant::now();
    let through_api = match client.api() {
        Some(via) => api_pull::pull(&h.remote.session, via, args, pw, repo, digest).await,
        None => None,
    };
    if let Some((ok, detail)) = through_api {
        return SmokeHost {
            host: h.name.to_string(),
            action: client.pull_action(),
            ok,
            seconds: start.elapsed().as_secs_f64(),
            detail,
        };
    }
    let client = client.without_api();
    let script = client.pull_script();
    let action = client.pull_action();
    let out = retry_name_lookup(|| h.remote.run(action, &script, args, Some(pw))).await;
    let (ok, detail) = match out {
        Ok(o) => match client.digest(&o.stdout_text(), repo) {
            Some(d) if d == digest => (true, format!("pulled, digest matches ({d})")),
            Some(d) => (
                false,
                format!("pulled digest {d} differs from pushed {digest}"),
            ),
            None => (false, format!("pulled, but {action} reports no digest")),
        },
        Err(e) => (false, failure(&e)),
    };
    SmokeHost {
        host: h.name.to_string(),
        action,
        ok,
        seconds: start.elapsed().as_secs_f64(),
        detail,
    }
}

fn replica_request<'a>(
    inv: &'a Inventory,
    material: &'a Material,
    path: &'a str,
    auth: Option<(&'a str, &'a str)>,
) -> Request<'a> {
    Request {
        method: "GET",
        path,
        hostname: &inv.registry.hostname,
        port: inv.registry.port,
        ca_pem: material.tls.as_ref().map(|t| t.ca_pem.as_str()),
        basic_auth: auth,
    }
}

/// Every replica answers for the pushed manifest itself (not through the load balancer): the
/// image pushed through one replica is readable on all, so their storage is shared. Their
/// catalogs must be equal too.
async fn check_replicas(
    inv: &Inventory,
    material: &Material,
    replicas: &[(&str, &RemoteHost)],
    digest: &str,
    auth: Option<(&str, &str)>,
) -> Vec<SmokeHost> {
    let manifest = format!("/v2/{REPOSITORY}/manifests/{digest}");
    // distribution answers at most 1000 entries per page (more is HTTP 400).
    let catalog = "/v2/_catalog?n=1000";
    let checks = replicas.iter().map(|(name, remote)| {
        let manifest = &manifest;
        async move {
            let start = Instant::now();
            let read = registry_http::status(
                &remote.session,
                &replica_request(inv, material, manifest, auth),
            )
            .await;
            let (ok, detail) = match read {
                Ok(200) => (true, format!("this replica serves {digest}")),
                Ok(code) => (
                    false,
                    format!("GET {manifest} on this replica: HTTP {code}"),
                ),
                Err(e) => (false, format!("{e:#}")),
            };
            let manifest_result = SmokeHost {
                host: name.to_string(),
                action: "replica",
                ok,
                seconds: start.elapsed().as_secs_f64(),
                detail,
            };
            let listed = registry_http::fetch(
                &remote.session,
                &replica_request(inv, material, catalog, auth),
            )
            .await;
            let repos = match listed {
                Ok((200, body)) => parse_catalog(&body),
                Ok((code, _)) => Err(format!("GET {catalog}: HTTP {code}")),
                Err(e) => Err(format!("{e:#}")),
            };
            (manifest_result, repos)
        }
    });
    let answers = futures::future::join_all(checks).await;
    let first = answers
        .iter()
        .zip(replicas)
        .find_map(|((_, r), (name, _))| r.as_ref().ok().map(|r| (*name, r.clone())));
    let mut results = Vec::new();
    for ((manifest_result, repos), (name, _)) in answers.into_iter().zip(replicas) {
        results.push(manifest_result);
        let (ok, detail) = match (repos, &first) {
            (Err(e), _) => (false, e),
            (Ok(r), Some((first_name, _))) if first_name == name => {
                (true, format!("catalog of {} repositories", r.len()))
            }
            (Ok(r), Some((first_name, first_repos))) if &r == first_repos => (
                true,
                format!(
                    "catalog of {} repositories, equal to {first_name}'s",
                    r.len()
                ),
            ),
            (Ok(r), Some((first_name, first_repos))) => (
                false,
                format!(
                    "catalog differs from {first_name}'s: only here {:?}, missing here {:?}",
                    r.iter()
                        .filter(|x| !first_repos.contains(x))
                        .collect::<Vec<_>>(),
                    first_repos
                        .iter()
                        .filter(|x| !r.contains(x))
                        .collect::<Vec<_>>()
                ),
            ),
            (Ok(_), None) => unreachable!("a readable catalog makes `first` Some"),
        };
        results.push(SmokeHost {
            host: name.to_string(),
            action: "catalog",
            ok,
            seconds: 0.0,
            detail,
        });
    }
    results
}

/// The sorted repository names of a `/v2/_catalog` answer.
fn parse_catalog(body: &[u8]) -> std::result::Result<Vec<String>, String> {
    #[derive(serde::Deserialize)]
    struct Catalog {
        repositories: Option<Vec<String>>,
    }
    let c: Catalog =
        serde_json::from_slice(body).map_err(|e| format!("the catalog is not JSON: {e}"))?;
    let mut repos = c.repositories.unwrap_or_default();
    repos.sort();
    Ok(repos)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_client_script_parses() {
        let pushes = [Client::Docker, Client::Podman].map(|c| c.push_script().1);
        let pulls = [Client::Docker, Client::Containerd, Client::Podman].map(Client::pull_script);
        for script in pulls.iter().chain(&pushes) {
            let out = std::process::Command::new("sh")
                .args(["-n", "-c", script])
                .output()
                .unwrap();
            assert!(out.status.success(), "{script}: {out:?}");
        }
        // ctr reads the password from script(1)'s terminal: never on a command line.
        assert!(!CTR_PULL.contains("$user:") && CTR_PULL.contains("-E never"));
    }

    #[test]
    fn a_docker_push_prints_its_digest_as_a_pull_does() {
        let last = PUSH.lines().last().unwrap();
        let out = "The push refers to repository [r.lab:5000/regboot-smoke]\n\
                   5f70bf18a086: Pushed\n\
                   ab12: digest: sha256:6d2e size: 527";
        let run = std::process::Command::new("sh")
            .args(["-c", &format!("image=$1; out=$2\n{last}"), "sh"])
            .args(["r.lab:5000/regboot-smoke:ab12", out])
            .output()
            .unwrap();
        let printed = String::from_utf8_lossy(&run.stdout);
        assert_eq!(
            Client::Docker.digest(&printed, "r.lab:5000/regboot-smoke"),
            Some("sha256:6d2e".to_string()),
            "{printed}"
        );
    }

    #[test]
    fn catalogs_are_compared_sorted() {
        let a = parse_catalog(br#"{"repositories":["b","a"]}"#).unwrap();
        assert_eq!(a, ["a", "b"]);
        assert_eq!(parse_catalog(br#"{"repositories":null}"#).unwrap().len(), 0);
        assert!(parse_catalog(b"<html>").is_err());
    }
}
