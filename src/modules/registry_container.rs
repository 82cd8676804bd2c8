//! The `regboot-registry` container: created when missing, rolled only when its effective
//! config (image, files, port, data dir) changed. The config is recorded in labels, so the
//! decision needs no state on this machine. htpasswd is not among them: distribution re-reads
//! it when its modification time changes, and it sits in a directory mount (a renamed file
//! is seen), so a user change needs no restart.
//!
//! A roll is blue/green behind nginx (`registry_front`), which holds the registry port: the
//! new container starts beside the old one on the other loopback slot, and only once it
//! answers `GET /v2/` does nginx switch to it (a graceful reload) and the new one takes the
//! name; nginx's old workers finish what they hold with the old container, which goes once
//! they are done (bounded, in the background). Clients keep being served throughout. A new
//! container that never answers is removed and the old one keeps serving (the step fails).
//! A roll cut off midway (the probe sees `regboot-registry-next`, or nginx passing to another
//! port than the container's) is drift: plan says "finish or undo the interrupted roll", and
//! the next run finishes it (nginx already passes to the new one) or undoes it (it does not).

use anyhow::{Result, bail};

use super::registry_files::{self, ManagedFile, digest};
use super::registry_front::{self, BACKEND, CERT_LABEL, SET_LABEL};
use super::{Ctx, Module};
use crate::engine::change::Change;
use crate::engine::footprint::{self, Footprint};
use crate::engine::probe::{Container, HostState, ProbeRequest};
use crate::inventory::{Host, Inventory};

pub(crate) const NAME: &str = registry_files::CONTAINER;
/// The container a roll starts beside the serving one; it takes `NAME` once nginx passes to it.
pub(crate) const NEXT: &str = "regboot-registry-next";
/// The label with a container's loopback port (the backend file names the one nginx uses).
const BACKEND_LABEL: &str = "io.regboot.backend";
/// The label naming the front (absent on containers that published the port themselves).
const FRONT_LABEL: &str = "io.regboot.front";

/// What START and SWITCH share: one roll at a time on a host (a killed regboot's script may
/// still run there: the next run waits for it), and `finish`, which points nginx at the
/// container the backend file names (a graceful reload) and gives that container the name.
/// nginx's old workers finish the requests they hold (a layer upload may take minutes) with
/// the old container, renamed `regboot-registry-old`: a job of its own on the host (`drain`)
/// removes it once those workers are gone, bounded by their `worker_shutdown_timeout` (900 s)
/// plus 10 s, and prunes the config sets no container mounts any more.
macro_rules! roll_common {
    () => {
        r#"set -eu
backend=/etc/nginx/regboot-backend.conf
if command -v flock >/dev/null 2>&1; then
  exec 8>>/run/regboot-roll.lock
  flock -w 300 8 || { echo "another roll on this host held /run/regboot-roll.lock for 300 s" >&2; exit 1; }
fi
current() { sed -n 's/^ *server 127\.0\.0\.1:\([0-9]*\);.*/\1/p' "$backend" 2>/dev/null | head -n 1; }
# Args: a container. The directory of the certificate it serves: its config set's copy (the
# base dir's for a container from before config sets); none without TLS.
certs_of() {
  s=$(docker inspect -f '{{index .Config.Labels "io.regboot.set"}}' "$1" 2>/dev/null) || s=
  d=/etc/regboot/registry/certs
  [ -z "$s" ] || d=/etc/regboot/registry/sets/$s/certs
  if [ -f "$d/registry-chain.crt" ]; then echo "$d"; fi
}
# Args: a loopback port and the container serving there: nginx passes to it and serves the
# certificate it serves (as `registry_front::backend` writes the file).
point() {
  d=$(certs_of "$2")
  printf '# Written by regboot: the registry container nginx passes requests to now.\nupstream registry_backend {\n    server 127.0.0.1:%s;\n    keepalive 16;\n}\n' "$1" >"$backend.tmp"
  if [ -n "$d" ]; then
    printf 'ssl_certificate %s/registry-chain.crt;\nssl_certificate_key %s/registry.key;\n' "$d" "$d" >>"$backend.tmp"
  fi
  mv -f "$backend.tmp" "$backend"
}
workers() {
  m=$(cat /run/nginx.pid 2>/dev/null) || return 0
  for s in /proc/[0-9]*/stat; do
    set -- $(cat "$s" 2>/dev/null) x x x x
    [ "$4" = "$m" ] && echo "$1"
  done
  return 0
}
# The config sets no regboot container mounts go.
prune() {
  keep=$(docker inspect -f '{{index .Config.Labels "io.regboot.set"}}' regboot-registry regboot-registry-old 2>/dev/null) || true
  for d in /etc/regboot/registry/sets/*; do
    if [ -d "$d" ] && ! printf '%s\n' "$keep" | grep -qxF "${d##*/}"; then rm -rf "$d"; fi
  done
}
# Args: the old workers' pids. Waits until they are gone (at most 910 s), then the old container
# drains (`http.draintimeout`) and goes.
drain() {
  i=0
  for w in "$@"; do
    while [ -d "/proc/$w" ] && [ "$i" -lt 9100 ]; do sleep 0.1; i=$((i+1)); done
  done
  docker stop --time 15 regboot-registry-old >/dev/null 2>&1 || true
  docker rm -f regboot-registry-old >/dev/null 2>&1 || true
  prune
}
# A previous roll's old container still serving what nginx's old workers hold: bounded wait.
drained() {
  i=0
  while docker inspect regboot-registry-old >/dev/null 2>&1; do
    p=$(cat /run/regboot-drain.pid 2>/dev/null) || p=
    if [ -z "$p" ] || [ ! -d "/proc/$p" ]; then
      # Its job is gone (a reboot, a roll cut off): nothing holds it any more.
      docker rm -f regboot-registry-old >/dev/null 2>&1 || true
      prune
      break
    fi
    i=$((i+1))
    if [ "$i" -gt 90 ]; then
      echo "regboot-registry-old still serves transfers that nginx's old workers hold since the last roll (they end within 15 min of it): run again later" >&2
      exit 1
    fi
    sleep 1
  done
}
finish() {
  # An older regboot published the registry port from the container itself: it gives the
  # port up now, the one moment the port refuses connections (plan said so).
  if docker port regboot-registry 5000/tcp 2>/dev/null | grep -qv '^127\.0\.0\.1:'; then
    docker stop --time 15 regboot-registry >/dev/null || true
  fi
  old=$(workers)
  systemctl enable --quiet nginx
  systemctl reload-or-restart nginx
  if docker inspect regboot-registry >/dev/null 2>&1; then
    docker rename regboot-registry regboot-registry-old
  fi
  docker rename regboot-registry-next regboot-registry
  # Its own job: the roll ends now; the lock and the channel's output are not held.
  ( trap '' HUP; drain $old ) </dev/null >/dev/null 2>&1 8>&- &
  echo $! >/run/regboot-drain.pid
}
# A roll cut off midway: finished when nginx passes to its new container already, else undone;
# then nginx is pointed back at the container serving if it passes elsewhere (a hand edit).
settle() {
  if docker inspect regboot-registry-next >/dev/null 2>&1; then
    was=$(docker inspect -f '{{index .Config.Labels "io.regboot.backend"}}' regboot-registry-next)
    if [ "$was" = "$(current)" ]; then finish; else docker rm -f regboot-registry-next >/dev/null; fi
  fi
  own=$(docker inspect -f '{{index .Config.Labels "io.regboot.backend"}}' regboot-registry 2>/dev/null) || own=
  if [ -n "$own" ] && [ "$own" != "$(current)" ]; then
    point "$own" regboot-registry
    nginx -t -q
    systemctl enable --quiet nginx
    systemctl reload-or-restart nginx
  fi
}
"#
    };
}

/// Args: image, loopback port, data dir, base dir, config set id, then `--label k=v` and
/// `--env K=V` pairs. Finishes or undoes a roll killed midway, copies config.yml and the
/// certificates into the set's own directory (once: the id is their digest), then starts the
/// next container on the loopback port with that directory mounted: an apply that rewrites
/// the base dir before its roll reaches this host (or halts before) changes nothing the
/// containers here load, even at their next restart. The set goes once no container mounts
/// it (`finish`). htpasswd stays in the base dir, re-read when it changes. The mount targets
/// are those of `render::container`, which config.yml names; config.yml is mounted where
/// distribution 2.x (`/etc/docker/registry/`) and 3.x (`/etc/distribution/`) images read it.
/// Secrets stay in mounted files (0600), never in the environment (which holds only the
/// OpenTelemetry settings), so `docker inspect` shows none.
const START: &str = concat!(
    roll_common!(),
    r#"image=$1; port=$2; data=$3; base=$4; set=$5; shift 5
drained
settle
dir=$base/sets/$set
if [ ! -d "$dir" ]; then
  rm -rf "$dir.tmp"
  mkdir -p -m 700 "$base/sets"
  mkdir -p "$dir.tmp/certs"
  cp -p "$base/config.yml" "$dir.tmp/"
  if [ -d "$base/certs" ]; then cp -pR "$base/certs/." "$dir.tmp/certs/"; fi
  mv "$dir.tmp" "$dir"
fi
# Without TLS nginx cannot check who answers on the port: only root may bind it.
if ! grep -q '^ *certificate:' "$dir/config.yml"; then
  low=$(cat /proc/sys/net/ipv4/ip_unprivileged_port_start 2>/dev/null) || low=1024
  if [ "$low" -le "$port" ]; then
    echo "net.ipv4.ip_unprivileged_port_start is $low on this host: any local user may listen on 127.0.0.1:$port, where nginx passes the registry's requests (and credentials) without TLS to check who answers. Raise it to 1024 (sysctl -w net.ipv4.ip_unprivileged_port_start=1024, and in /etc/sysctl.d; a container host: docker run --sysctl net.ipv4.ip_unprivileged_port_start=1024), or use tls.mode self-signed or provided" >&2
    exit 1
  fi
fi
if [ "$(current)" = "$port" ]; then
  echo "nginx passes to 127.0.0.1:$port already: a roll of an interrupted run finished after this run read the host; run again" >&2
  exit 1
fi
mkdir -p "$data"
# Five tries: the proxy of a container just removed from this port may hold it a moment.
n=0
until docker run -d --name regboot-registry-next --restart unless-stopped \
  -p "127.0.0.1:$port:5000" --label "io.regboot.backend=$port" \
  -v "$dir/config.yml:/etc/docker/registry/config.yml:ro" \
  -v "$dir/config.yml:/etc/distribution/config.yml:ro" \
  -v "$dir/certs:/certs:ro" -v "$base/auth:/auth:ro" -v "$data:/var/lib/registry" \
  "$@" "$image" >/dev/null; do
  # It could not start: nothing is left behind, the old container keeps serving.
  docker rm -f regboot-registry-next >/dev/null 2>&1 || true
  n=$((n+1)); [ "$n" -lt 5 ] || exit 1
  sleep 1
done
"#
);

/// Finishes or undoes a roll cut off midway (see `settle`), with nothing to roll after it.
const SETTLE: &str = concat!(roll_common!(), "drained\nsettle\n");

/// Args: the next container's loopback port. Points nginx at it and finishes the roll.
const SWITCH: &str = concat!(
    roll_common!(),
    r#"port=$1
if ! docker inspect regboot-registry-next >/dev/null 2>&1; then
  echo "regboot-registry-next is gone: another run changed this host meanwhile; run again" >&2
  exit 1
fi
cp -p "$backend" "$backend.was" 2>/dev/null || true
point "$port" regboot-registry-next
if ! nginx -t -q; then
  if [ -f "$backend.was" ]; then mv -f "$backend.was" "$backend"; fi
  exit 1
fi
rm -f "$backend.was"
finish
"#
);

/// What the container runs with, one label per input (a hash for files), so the container
/// itself says whether it is current and plan can say what changed.
fn labels(cx: &Ctx, files: &[ManagedFile]) -> Vec<(&'static str, &'static str, String)> {
    let reg = &cx.inv.registry;
    let file = |path| {
        files
            .iter()
            .find(|f| f.path == path)
            .map_or(&[][..], |f| f.data.as_slice())
    };
    vec![
        ("io.regboot.image", "image", reg.image.clone()),
        (
            "io.regboot.config",
            "config",
            digest(&[
                file(registry_files::CONFIG),
                reg.port.to_string().as_bytes(),
                reg.data_dir.as_bytes(),
            ]),
        ),
        (
            CERT_LABEL,
            "certificate",
            digest(&[file(registry_files::CHAIN), file(registry_files::KEY)]),
        ),
        (FRONT_LABEL, "front", "nginx".into()),
        ("io.regboot.env", "environment", reg.env().join(" ")),
    ]
}

/// The config set's id: the config and certificate labels (each a digest of its files).
fn set_id(labels: &[(&str, &str, String)]) -> String {
    let value = |key| {
        labels
            .iter()
            .find(|(k, _, _)| *k == key)
            .map_or("", |(_, _, v)| v.as_str())
    };
    format!("{}-{}", value("io.regboot.config"), value(CERT_LABEL))
}

/// Why the container must be (re)created, or `None` when it is as wanted.
fn reason(
    cx: &Ctx,
    serving: Option<&Container>,
    labels: &[(&str, &str, String)],
) -> Option<String> {
    let Some(c) = serving else {
        return Some("create".into());
    };
    let changed: Vec<&str> = labels
        .iter()
        .filter(|(key, _, value)| c.labels.get(*key) != Some(value))
        .map(|(_, what, _)| *what)
        .collect();
    if !changed.is_empty() {
        Some(format!("{} changed", changed.join(", ")))
    } else if !c.labels.contains_key(SET_LABEL) {
        Some("config files move to a directory of their own".into())
    } else if !c
        .labels
        .get(BACKEND_LABEL)
        .and_then(|p| p.parse().ok())
        .is_some_and(|p| registry_front::SLOTS.contains(&p))
    {
        let [blue, green] = registry_front::SLOTS;
        Some(format!(
            "its loopback port moves to {blue} or {green}, which only root may bind"
        ))
    } else if cx.state.image_id(&cx.inv.registry.image) != Some(c.image_id.as_str()) {
        Some("new image id".into())
    } else if !c.running {
        Some("not running".into())
    } else {
        None
    }
}

/// Where a roll cut off midway (a reboot, a lost connection, a failed reload) left the host:
/// the container nginx passes to, its loopback port, and what is amiss (`None`: nothing).
struct Serving<'a> {
    container: Option<&'a Container>,
    port: u16,
    amiss: Option<String>,
}

fn serving<'a>(cx: &'a Ctx<'_>) -> Serving<'a> {
    let backend = registry_front::current_port(cx.state.text(BACKEND).as_deref());
    let port_of = |c: &Container| {
        c.labels
            .get(BACKEND_LABEL)
            .and_then(|p| p.parse::<u16>().ok())
    };
    let current = cx.state.container(NAME);
    if let Some(next) = cx.state.container(NEXT) {
        // Cut off after its switch: the next container serves, the roll is finished;
        // before it: the next one goes.
        return if port_of(next) == Some(backend) {
            Serving {
                container: Some(next),
                port: backend,
                amiss: Some(format!("{NEXT} is still there and nginx passes to it")),
            }
        } else {
            Serving {
                container: current,
                port: current.and_then(port_of).unwrap_or(backend),
                amiss: Some(format!("{NEXT} is still there; nginx does not pass to it")),
            }
        };
    }
    match current.and_then(port_of) {
        Some(own) if own != backend => Serving {
            container: current,
            port: own,
            amiss: Some(format!(
                "nginx passes to 127.0.0.1:{backend}, {NAME} listens on 127.0.0.1:{own}"
            )),
        },
        _ => Serving {
            container: current,
            port: backend,
            amiss: None,
        },
    }
}

/// Shown when the registry does not answer in time.
pub(crate) const DIAGNOSE: &str = "docker logs --tail 15 regboot-registry 2>&1";

/// Run when the next container does not answer in time: its last log lines, then it goes,
/// so the old one keeps serving and nothing is left behind.
const GIVE_UP_NEXT: &str = "docker logs --tail 15 regboot-registry-next 2>&1; \
    docker rm -f regboot-registry-next >/dev/null 2>&1 || true";

pub(crate) struct RegistryContainer;

impl Module for RegistryContainer {
    fn name(&self) -> &'static str {
        "registry_container"
    }

    fn want(&self, inv: &Inventory, host: &Host, req: &mut ProbeRequest) {
        super::want_registry(inv, host, req);
        req.content.push(BACKEND.into());
        // Its labels hash the registry files.
        registry_files::want_desired(req);
    }

    fn not_ready(
        &self,
        inv: &Inventory,
        host: &Host,
        state: &HostState,
        engine_coming: bool,
    ) -> Option<String> {
        super::docker_not_ready(inv, host, state, engine_coming)
    }

    fn present(&self, cx: &Ctx) -> Result<Vec<Change>> {
        let labels = labels(cx, &registry_files::desired(cx)?);
        let serving = serving(cx);
        let why = reason(cx, serving.container, &labels);
        if why.is_none() && serving.amiss.is_none() {
            return Ok(Vec::new());
        }
        registry_files::refuse_while_collecting(cx)?;
        let reg = &cx.inv.registry;
        let port = reg.port;
        let ca = cx.material.tls.as_ref().map(|t| t.ca_pem.clone());
        let through_nginx = Change::wait_healthy(
            format!("wait until the registry answers through nginx on port {port}"),
            &reg.hostname,
            port,
            ca.clone(),
            DIAGNOSE,
        );
        let settle = serving
            .amiss
            .map(|amiss| format!("finish or undo the interrupted roll ({amiss})"));
        let Some(why) = why else {
            let settle = settle.unwrap_or_default();
            return Ok(vec![Change::script(settle, SETTLE, &[]), through_nginx]);
        };
        let next = registry_front::next_port(serving.port);
        let mut args = vec![
            reg.image.clone(),
            next.to_string(),
            reg.data_dir.clone(),
            registry_files::BASE.to_string(),
            set_id(&labels),
        ];
        for (key, value) in labels
            .iter()
            .map(|(key, _, value)| (*key, value.clone()))
            .chain([(SET_LABEL, set_id(&labels))])
        {
            args.push("--label".into());
            args.push(format!("{key}={value}"));
        }
        for var in reg.env() {
            args.push("--env".into());
            args.push(var);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let image = &reg.image;
        let summary = match serving.container {
            None => format!(
                "create container {NAME} ({image}) on 127.0.0.1:{next}, behind nginx on port {port}"
            ),
            Some(c) if !c.labels.contains_key(FRONT_LABEL) => format!(
                "move port {port} from container {NAME} to nginx in front of a new one ({image} on 127.0.0.1:{next}): \
                 port {port} refuses connections for about a second, once"
            ),
            Some(_) => format!(
                "roll {NAME} blue/green ({why}): start the new one ({image}) on 127.0.0.1:{next} beside the old; \
                 clients keep being served"
            ),
        };
        let summary = match settle {
            Some(settle) => format!("{settle}; then {summary}"),
            None => summary,
        };
        Ok(vec![
            Change::script(summary, START, &args),
            Change::wait_healthy(
                "wait until the new container answers on /v2/ (else remove it; the old one keeps serving)",
                &reg.hostname,
                next,
                ca,
                GIVE_UP_NEXT,
            ),
            Change::script(
                format!(
                    "switch nginx to 127.0.0.1:{next} (graceful reload); the old container serves what nginx's \
                     old workers still hold, then goes (at most 15 min, in the background)"
                ),
                SWITCH,
                &[&next.to_string()],
            ),
            through_nginx,
        ])
    }

    /// data_dir and its parents, created when missing (`mkdir -p` in the roll).
    fn footprint(&self, inv: &Inventory, _host: &Host, _state: Option<&HostState>) -> Footprint {
        let data = inv.registry.data_dir.trim_end_matches('/');
        let mut dirs: Vec<String> = std::path::Path::new(data)
            .ancestors()
            .filter(|p| p.components().count() > 2)
            .map(|p| p.display().to_string())
            .collect();
        dirs.reverse();
        Footprint {
            dirs,
            ..Footprint::default()
        }
    }

    /// The container goes; its data stays, with a note in data_dir of the directories
    /// regboot created for it (the manifest goes with /etc/regboot; a later
    /// `reset --purge-data` reads the note).
    fn absent(&self, cx: &Ctx) -> Result<Vec<Change>> {
        let docker = &cx.state.facts.docker;
        if docker.installed && !docker.running {
            // Its container (restart policy unless-stopped) would come back with the engine.
            bail!(
                "the docker engine is stopped, so the registry container cannot be seen or \
                 removed: start it (`systemctl start docker`) and run reset again"
            );
        }
        let data = cx.inv.registry.data_dir.trim_end_matches('/');
        let mut changes = Vec::new();
        if cx.state.container(NAME).is_some() {
            changes.push(Change::script(
                format!("remove container {NAME} (its data in {data} stays)"),
                // A roll cut off midway may have left the next (green) container, and the
                // old one may still serve what nginx's old workers hold.
                r#"docker rm -f "$1" >/dev/null; docker rm -f "$1-next" "$1-old" >/dev/null 2>&1 || true"#,
                &[NAME],
            ));
        }
        let created = footprint::recorded(cx, self)?.dirs_created;
        if !created.is_empty() {
            let mut args = vec![data];
            args.extend(created.iter().map(String::as_str));
            changes.push(Change::script(
                format!("note in {data} which directories regboot created (for --purge-data)"),
                r#"d=$1; shift; [ -d "$d" ] || exit 0; printf '%s\n' "$@" > "$d/.regboot-created-dirs""#,
                &args,
            ));
        }
        Ok(changes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::testing::{self, StateBuilder};

    /// The labels a container made from `testing::material()` carries.
    fn current_labels(inv: &Inventory) -> Vec<(String, String)> {
        let changes =
            testing::run(&RegistryContainer, inv, "h1", &StateBuilder::new(), true).unwrap();
        let crate::engine::change::Action::Script { args, .. } = &changes[0].action else {
            panic!("a script first")
        };
        // The script adds the port's label; the container serves on the front's first slot.
        let port = (
            BACKEND_LABEL.to_string(),
            registry_front::SLOTS[0].to_string(),
        );
        args.iter()
            .filter(|a| a.starts_with("io.regboot."))
            .filter_map(|a| a.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .chain([port])
            .collect()
    }

    /// distribution 3.x exports no traces unless the inventory configures it; 2.x ignores the
    /// variable. A changed setting rolls the container.
    #[test]
    fn tracing_is_off_unless_configured() {
        let env_of = |inv: &Inventory| {
            let changes =
                testing::run(&RegistryContainer, inv, "h1", &StateBuilder::new(), true).unwrap();
            let crate::engine::change::Action::Script { args, .. } = &changes[0].action else {
                panic!("a script first")
            };
            args.windows(2)
                .filter(|w| w[0] == "--env")
                .map(|w| w[1].clone())
                .collect::<Vec<_>>()
        };
        let off = testing::inventory("");
        assert_eq!(env_of(&off), ["OTEL_TRACES_EXPORTER=none"]);
        let on =
            testing::inventory("  tracing: { exporter: otlp, endpoint: \"http://otel:4318\" }\n");
        assert_eq!(
            env_of(&on),
            [
                "OTEL_TRACES_EXPORTER=otlp",
                "OTEL_EXPORTER_OTLP_ENDPOINT=http://otel:4318"
            ]
        );
        let before = current_labels(&off);
        let state = StateBuilder::new().container("sha256:1", true, &before);
        let changes = testing::run(&RegistryContainer, &on, "h1", &state, true).unwrap();
        assert!(
            changes[0].summary.contains("environment changed"),
            "{}",
            changes[0].summary
        );
    }

    /// A gc cut off leaves its collector sweeping: no roll (which would lift read-only) while
    /// it is there, and the error says which container and what to do.
    #[test]
    fn no_roll_while_the_collector_is_there() {
        let inv = testing::inventory("");
        let labels = current_labels(&inv);
        let collector = Container {
            image_id: "sha256:1".into(),
            running: true,
            labels: Default::default(),
        };
        let mut stale = StateBuilder::new().container("sha256:1", false, &labels);
        stale
            .0
            .containers
            .insert(registry_files::COLLECTOR.into(), collector.clone());
        let err = testing::run(&RegistryContainer, &inv, "h1", &stale, true).unwrap_err();
        let err = format!("{err:#}");
        assert!(
            err.contains("container regboot-gc") && err.contains("docker rm -f regboot-gc"),
            "{err}"
        );
        // Nothing to change: nothing to refuse.
        let mut current = StateBuilder::new().container("sha256:1", true, &labels);
        current
            .0
            .containers
            .insert(registry_files::COLLECTOR.into(), collector);
        assert!(
            testing::run(&RegistryContainer, &inv, "h1", &current, true)
                .unwrap()
                .is_empty()
        );
    }

    /// A roll cut off midway is drift, whatever the labels say: plan names it, apply settles it
    /// (and rolls on only when the container serving is not as wanted).
    #[test]
    fn an_interrupted_roll_is_drift() {
        let inv = testing::inventory("");
        let labels = current_labels(&inv);
        let with_port = |labels: &[(String, String)], port: u16| {
            let mut l = labels.to_vec();
            l.push((BACKEND_LABEL.into(), port.to_string()));
            l
        };
        let container = |labels: &[(String, String)]| Container {
            image_id: "sha256:1".into(),
            running: true,
            labels: labels.iter().cloned().collect(),
        };
        let [blue, green] = registry_front::SLOTS;
        let mut old_image = labels.clone();
        old_image.retain(|(k, _)| k != "io.regboot.image");
        old_image.push(("io.regboot.image".into(), "registry:2.7".into()));
        let state = |own: &[(String, String)], front: u16, next: Option<Container>| {
            let mut st = StateBuilder::new()
                .container("sha256:1", true, own)
                .file(BACKEND, &registry_front::backend(front, None));
            if let Some(next) = next {
                st.0.containers.insert(NEXT.into(), next);
            }
            st
        };
        let settled = "finish or undo the interrupted roll";
        // (state, the summaries' beginnings)
        let cases = [
            (state(&with_port(&labels, blue), blue, None), vec![]),
            // The front switched by hand (or a roll cut off between its switch and its rename).
            (
                state(&with_port(&labels, blue), green, None),
                vec![format!(
                    "{settled} (nginx passes to 127.0.0.1:{green}, regboot-registry listens on 127.0.0.1:{blue})"
                )],
            ),
            // Cut off before its switch: the next container goes.
            (
                state(
                    &with_port(&labels, blue),
                    blue,
                    Some(container(&with_port(&labels, green))),
                ),
                vec![format!(
                    "{settled} (regboot-registry-next is still there; nginx does not pass to it)"
                )],
            ),
            // Cut off after it: the next container, as wanted, serves; finishing is all.
            (
                state(
                    &with_port(&old_image, blue),
                    green,
                    Some(container(&with_port(&labels, green))),
                ),
                vec![format!(
                    "{settled} (regboot-registry-next is still there and nginx passes to it)"
                )],
            ),
            // Cut off before its switch, and the container is not as wanted: settle, then roll.
            (
                state(
                    &with_port(&old_image, blue),
                    blue,
                    Some(container(&with_port(&labels, green))),
                ),
                vec![format!(
                    "{settled} (regboot-registry-next is still there; nginx does not pass to it); \
                     then roll regboot-registry blue/green (image changed): start the new one \
                     (registry:2) on 127.0.0.1:{green}"
                )],
            ),
        ];
        for (state, want) in cases {
            let changes = testing::run(&RegistryContainer, &inv, "h1", &state, true).unwrap();
            let first: Vec<String> = changes.iter().take(1).map(|c| c.summary.clone()).collect();
            assert_eq!(first.len(), want.len(), "{first:?}");
            for (got, want) in first.iter().zip(&want) {
                assert!(got.starts_with(want.as_str()), "{got}\nwanted {want}");
            }
        }
    }

    /// `prune` removes the sets under the base dir the container's files come from.
    #[test]
    fn sets_live_under_the_base_dir() {
        assert!(START.contains(&format!("{}/sets/*", registry_files::BASE)));
    }

    #[test]
    fn roll_scripts_parse() {
        for script in [START, SWITCH, SETTLE] {
            let out = std::process::Command::new("sh")
                .args(["-n", "-c", script])
                .output()
                .unwrap();
            assert!(out.status.success(), "{out:?}");
        }
    }

    #[test]
    fn recreate_reasons() {
        let inv = testing::inventory("");
        let labels = current_labels(&inv);
        let mut old_image = labels.clone();
        old_image.retain(|(k, _)| k != "io.regboot.image");
        old_image.push(("io.regboot.image".into(), "registry:2.7".into()));
        let mut old_cert = labels.clone();
        old_cert.retain(|(k, _)| k != "io.regboot.cert");
        old_cert.push(("io.regboot.cert".into(), "0000".into()));
        let mut unfronted = labels.clone();
        unfronted.retain(|(k, _)| k != FRONT_LABEL);
        let mut unversioned = labels.clone();
        unversioned.retain(|(k, _)| k != SET_LABEL);
        // Issue 26 item 1: on a port any user may bind (before the front's slots were).
        let mut unprivileged = labels.clone();
        unprivileged.retain(|(k, _)| k != BACKEND_LABEL);
        unprivileged.push((BACKEND_LABEL.into(), "41500".into()));
        let mut with_htpasswd = labels.clone();
        with_htpasswd.push(("io.regboot.htpasswd".into(), "an old user list".into()));
        // (state, the first change's summary prefix, or None: nothing to do)
        let cases = [
            (
                StateBuilder::new().image("sha256:1"),
                Some("create container"),
            ),
            (
                StateBuilder::new().container("sha256:1", true, &labels),
                None,
            ),
            // Users live in htpasswd, re-read by the registry: no recreate for them.
            (
                StateBuilder::new().container("sha256:1", true, &with_htpasswd),
                None,
            ),
            (
                StateBuilder::new().container("sha256:1", false, &labels),
                Some("roll regboot-registry blue/green (not running)"),
            ),
            (
                StateBuilder::new().container("sha256:1", true, &old_image),
                Some("roll regboot-registry blue/green (image changed)"),
            ),
            (
                StateBuilder::new().container("sha256:1", true, &old_cert),
                Some("roll regboot-registry blue/green (certificate changed)"),
            ),
            // Mounts the base dir's files (before config sets): rolled once.
            (
                StateBuilder::new().container("sha256:1", true, &unversioned),
                Some(
                    "roll regboot-registry blue/green (config files move to a directory of their own)",
                ),
            ),
            (
                StateBuilder::new()
                    .container("sha256:1", true, &unprivileged)
                    .file(BACKEND, &registry_front::backend(41500, None)),
                Some(
                    "roll regboot-registry blue/green (its loopback port moves to 415 or 416, \
                     which only root may bind): start the new one (registry:2) on 127.0.0.1:415",
                ),
            ),
            // Published the port itself (before the front): the one roll that interrupts.
            (
                StateBuilder::new().container("sha256:1", true, &unfronted),
                Some("move port 5000 from container regboot-registry to nginx"),
            ),
            (
                StateBuilder::new()
                    .container("sha256:1", true, &labels)
                    .image("sha256:2"),
                Some("roll regboot-registry blue/green (new image id)"),
            ),
        ];
        for (state, want) in cases {
            let changes = testing::run(&RegistryContainer, &inv, "h1", &state, true).unwrap();
            let got = changes.first().map(|c| c.summary.clone());
            match want {
                None => assert!(changes.is_empty(), "{got:?}"),
                Some(prefix) => {
                    let got = got.unwrap_or_default();
                    assert!(
                        got.starts_with(prefix),
                        "{got} does not start with {prefix}"
                    );
                    assert!(changes[1].summary.starts_with("wait until"));
                }
            }
        }
    }
}
