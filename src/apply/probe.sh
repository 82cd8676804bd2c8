# regboot's one-round-trip look at a host. Args: IMAGE then paths, each prefixed with
# h: (report sha256 and mode) or c: (also the content, base64), and names prefixed with
# x: (a command: is it on PATH) or s: (a systemd unit: is-active). One record per line:
# KIND<TAB>NAME<TAB>VALUE...
set -u
PATH=$PATH:/usr/sbin:/sbin
image=$1; shift
printf 'arch\t%s\n' "$(uname -m)"
if [ -d /run/systemd/system ]; then printf 'init\tsystemd\n'; else printf 'init\tother\n'; fi
for a in "$@"; do
  p=${a#?:}
  case $a in
    x:*) printf 'command\t%s\t%s\n' "$p" "$(command -v "$p" 2>/dev/null || echo -)"; continue ;;
    s:*) printf 'service\t%s\t%s\n' "$p" "$(systemctl is-active "$p" 2>/dev/null || true)"; continue ;;
  esac
  if [ ! -f "$p" ]; then printf 'file\t%s\t-\n' "$p"; continue; fi
  line=$(printf 'file\t%s\t%s\t%s' "$p" "$(stat -c %a "$p")" "$(sha256sum < "$p" | cut -d' ' -f1)")
  case $a in
    c:*) printf '%s\t%s\n' "$line" "$(base64 -w0 < "$p")" ;;
    *) printf '%s\n' "$line" ;;
  esac
done
if ! command -v docker >/dev/null 2>&1; then printf 'docker\tmissing\n'; exit 0; fi
v=$(docker version --format '{{.Server.Version}}' 2>/dev/null) || v=
if [ -z "$v" ]; then printf 'docker\tstopped\n'; exit 0; fi
printf 'docker\trunning\t%s\n' "$v"
if [ -n "$image" ]; then
  id=$(docker image inspect --format '{{.Id}}' "$image" 2>/dev/null) || id=-
  printf 'image\t%s\n' "$id"
  c=$(docker inspect --format '{{.Image}}	{{.State.Running}}	{{json .Config.Labels}}' regboot-registry 2>/dev/null) || c=
  [ -n "$c" ] && printf 'container\t%s\n' "$c"
fi
exit 0
