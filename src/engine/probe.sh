# regboot's one-round-trip look at a host, run as root (directly or through sudo) or, when sudo
# wants a password, as the login user (facts only). Args: paths, each prefixed with
# h: (report sha256 and mode) or c: (also the content, base64), and names prefixed with
# x: (a command: is it on PATH), s: (a systemd unit: is-active), d: (is it a directory),
# i: (an image: its id) or k: (a container: image, running, labels; both when dockerd runs), and
# v: (print every runtime's version), a: (the caller reads dockerd over its socket beside this
# script, GET /info and the images and containers: where the socket is, no docker CLI starts).
# One record per line: KIND<TAB>NAME<TAB>VALUE... Never fails: what it cannot read, it says.
# (regboot sends it without its comment lines.) A file's content is sent up to 1 MiB and one
# byte, whatever it grows to: regboot refuses more.
set -u
PATH=$PATH:/usr/sbin:/sbin
versions=
api=
printf 'arch\t%s\n' "$(uname -m)"
if [ -d /run/systemd/system ]; then init=systemd
elif [ -d /run/openrc ] || command -v openrc >/dev/null 2>&1; then init=openrc
else init=other; fi
printf 'init\t%s\n' "$init"
for f in /etc/os-release /usr/lib/os-release; do
  [ -r "$f" ] || continue
  while IFS= read -r l || [ -n "$l" ]; do printf 'os\t%s\n' "$l"; done < "$f"
  break
done
uid=$(id -u)
if [ "$uid" = 0 ] && [ -z "${SUDO_USER:-}" ]; then sudo=root
elif [ "$uid" = 0 ]; then
  # Reached through sudo -n: a PTY means sudoers wants requiretty.
  if [ -t 1 ]; then sudo=requiretty; else sudo=nopasswd; fi
elif ! command -v sudo >/dev/null 2>&1; then sudo=missing
else sudo=password; fi
printf 'sudo\t%s\n' "$sudo"
# Every process started here costs the host CPU (a fork and an exec, about a millisecond,
# which adds up on a fleet): builtins where they do, and one stat, one sha256sum and one
# systemctl for all the files and units asked, not one each. Lists are one name a line.
set -f
nl='
'
hashed= read= units=
for a in "$@"; do
  p=${a#?:}
  case $a in
    x:*) if command -v "$p" >/dev/null 2>&1; then printf 'command\t%s\tyes\n' "$p"
      else printf 'command\t%s\t-\n' "$p"; fi ;;
    s:*) units=$units$p$nl ;;
    d:*) if [ -d "$p" ]; then printf 'dir\t%s\tyes\n' "$p"; else printf 'dir\t%s\tno\n' "$p"; fi ;;
    v:*) versions=1 ;;
    a:*) api=1 ;;
    h:*|c:*) if [ ! -f "$p" ]; then printf 'file\t%s\t-\n' "$p"
      elif [ "${a%%:*}" = c ]; then read=$read$p$nl; else hashed=$hashed$p$nl; fi ;;
  esac
done
IFS=$nl
if [ -n "$units" ]; then
  states=$(systemctl is-active $units 2>/dev/null)$nl
  for u in $units; do printf 'service\t%s\t%s\n' "$u" "${states%%$nl*}"; states=${states#*$nl}; done
fi
# A file with its content: its mode, then the content (regboot hashes it); without: its mode,
# then its hash in a record of its own.
if [ -n "$hashed$read" ]; then
  modes=$(stat -c '%a	%s	%n' -- $hashed $read 2>/dev/null)
  while IFS='	' read -r m z p; do
    case $nl$read in
      *"$nl$p$nl"*) printf 'file\t%s\t%s\t\t' "$p" "$m"
        if [ "$z" -le 1048576 ]; then base64 -w0 < "$p"; else head -c 1048577 < "$p" | base64 -w0; fi
        echo ;;
      *) printf 'file\t%s\t%s\t\n' "$p" "$m" ;;
    esac
  done <<EOF
$modes
EOF
fi
if [ -n "$hashed" ]; then
  sums=$(sha256sum -- $hashed 2>/dev/null)
  while IFS=' ' read -r sum p; do printf 'sha256\t%s\t%s\n' "$p" "$sum"; done <<EOF
$sums
EOF
fi
unset IFS
set +f
# Each `--version` starts a large Go binary (tens of ms of CPU, which add up on a fleet): read
# only when asked, and containerd's when its config sets no config_path or a list of them (then
# what to set depends on the release). An empty version: installed, version not read.
for r in containerd podman buildah crio; do
  v=-
  if command -v "$r" >/dev/null 2>&1; then
    v=
    if [ -n "$versions" ] || { [ "$r" = containerd ] \
      && ! grep -qs '^[[:space:]]*config_path[[:space:]]*=[^:]*$' /etc/containerd/config.toml; }; then
      v=$("$r" --version 2>/dev/null | sed -n 's/.* \(v\{0,1\}[0-9][0-9.]*[^ ]*\).*/\1/p' | head -n 1)
      [ -n "$v" ] || v=unknown
    fi
  fi
  printf 'runtime\t%s\t%s\n' "$r" "$v"
done
# containerd's config (parsed by regboot: CRI on, registry config_path); '-': no file; 'file':
# its file record above has it.
if command -v containerd >/dev/null 2>&1; then
  f=/etc/containerd/config.toml
  case $nl$read in
    *"$nl$f$nl"*) printf 'containerd_config\tfile\n' ;;
    *) if [ -f "$f" ]; then printf 'containerd_config\t%s\n' "$(head -c 1048577 "$f" | base64 -w0)"
      else printf 'containerd_config\t-\n'; fi ;;
  esac
fi
# A Kubernetes node: the first unit (or OpenRC script) of k3s, RKE2 or kubeadm's kubelet found,
# its state and version (k3s/rke2/kubelet --version print `v1.30.4+k3s1` among other words).
for u in k3s k3s-agent rke2-server rke2-agent kubelet; do
  found=
  for d in /etc/systemd/system /usr/local/lib/systemd/system /usr/lib/systemd/system /lib/systemd/system /etc/init.d; do
    if [ -f "$d/$u.service" ] || [ -f "$d/$u" ]; then found=1; break; fi
  done
  [ -n "$found" ] || continue
  b=${u%%-*}
  if [ "$init" = systemd ]; then st=$(systemctl is-active "$u" 2>/dev/null)
  elif rc-service "$u" status >/dev/null 2>&1; then st=active; else st=inactive; fi
  v=$(PATH=$PATH:/usr/local/bin "$b" --version 2>/dev/null | sed -n '1s/.*[ ]\(v[0-9][^ ]*\).*/\1/p')
  printf 'kube\t%s\t%s\t%s\n' "$u" "${st:--}" "${v:--}"
  break
done
if ! command -v docker >/dev/null 2>&1 && ! command -v dockerd >/dev/null 2>&1; then
  printf 'docker\tmissing\n'; exit 0
fi
# One `docker info` (each docker CLI start costs the host tens of ms of CPU, which adds up on a
# fleet): the engine's version, then whether it keeps its images in containerd (its
# containerd-snapshotter store) or in its own. Without v:, only whether dockerd runs matters
# (the version and store are for `regboot facts`): its pid file naming a live dockerd says so.
pid= comm=
[ -z "$versions" ] && [ -r /var/run/docker.pid ] && { read -r pid < /var/run/docker.pid || :; } \
  && [ -n "$pid" ] && [ -r "/proc/$pid/comm" ] && read -r comm < "/proc/$pid/comm"
if [ -n "$api" ] && [ -S /var/run/docker.sock ]; then info=api
elif [ "$comm" = dockerd ]; then info='-	'
else
info=$(docker info --format '{{.ServerVersion}}	{{range .DriverStatus}}{{index . 0}}={{index . 1}} {{end}}' 2>/dev/null) || info=
fi
v=${info%%	*}
if [ -z "$v" ]; then
  v=$( (dockerd --version || docker --version) 2>/dev/null | sed -n 's/^Docker version \([^,]*\).*/\1/p' | head -n 1)
  printf 'docker\tstopped\t%s\n' "${v:--}"; exit 0
fi
# Left to the API: the caller reads the images and containers asked for there too.
if [ "$info" = api ]; then printf 'docker\tapi\n'; exit 0; fi
printf 'docker\trunning\t%s\n' "$v"
case ${info#*	} in *io.containerd.snapshotter*) printf 'docker_store\tcontainerd\n' ;; esac
for a in "$@"; do
  case $a in
    i:*) id=$(docker image inspect --format '{{.Id}}' "${a#i:}" 2>/dev/null) || id=-
      printf 'image\t%s\t%s\n' "${a#i:}" "$id" ;;
  esac
done
# One docker call for every container asked for (their names appended, the rest shifted off);
# a missing one prints an empty line, skipped.
n=$#
for a in "$@"; do case $a in k:*) set -- "$@" "${a#k:}" ;; esac; done
shift "$n"
if [ $# -gt 0 ]; then
  docker inspect --type container --format '{{.Name}}	{{.Image}}	{{.State.Running}}	{{json .Config.Labels}}' \
    "$@" 2>/dev/null | while IFS= read -r c; do
    case $c in /*) printf 'container\t%s\n' "${c#/}" ;; esac
  done
fi
exit 0
