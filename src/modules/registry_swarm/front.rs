//! Each registry host's nginx front (`registry_front`) passes to the service's task on this
//! host's loopback slot, and to the tasks on the other registry hosts as backups: a task
//! killed or restarted on one host costs no request there (nginx retries a refused
//! connection on a backup). A roll points the front at the next service's slot once its task
//! answers, with a graceful reload, and the old service goes once nginx's old workers, which
//! finish what they hold with it, are gone.

use crate::inventory::{Host, Inventory, Role};
use crate::modules::{registry_files, registry_front};

/// Args: none; stdin: the backend file. Writes it, tests nginx (else puts the old one back),
/// starts or reloads nginx, and prints the old workers' pids (they finish with the old slot).
pub(super) const SWITCH: &str = r#"set -eu
b=/etc/nginx/regboot-backend.conf
old=
m=$(cat /run/nginx.pid 2>/dev/null) || m=
if [ -n "$m" ]; then
  for s in /proc/[0-9]*/stat; do
    set -- $(cat "$s" 2>/dev/null) x x x x
    if [ "$4" = "$m" ]; then old="$old $1"; fi
  done
fi
if [ -f "$b" ]; then cp -p "$b" "$b.prev"; fi
cat >"$b.tmp"
mv -f "$b.tmp" "$b"
if ! err=$(nginx -t -q 2>&1); then
  if [ -f "$b.prev" ]; then mv -f "$b.prev" "$b"; fi
  echo "nginx -t refused the new backend: $err" >&2
  exit 1
fi
rm -f "$b.prev"
systemctl enable --quiet nginx
systemctl reload-or-restart nginx
echo $old
"#;

/// Args: seconds, then pids. Exit 0 once they are all gone, 3 when time ran out first.
pub(super) const DRAINED: &str = r#"t=$(($1 * 10)); shift; i=0
for w in "$@"; do
  while [ -d "/proc/$w" ]; do
    [ "$i" -ge "$t" ] && exit 3
    sleep 0.1; i=$((i+1))
  done
done
exit 0
"#;

/// The other registry hosts, whose tasks back this host's up.
pub(super) fn backups<'a>(inv: &'a Inventory, host: &Host) -> Vec<&'a str> {
    inv.hosts_with(Role::Registry)
        .filter(|h| h.name != host.name)
        .map(|h| h.private_address.as_str())
        .collect()
}

/// The backend file naming this host's task on `port` first (`registry_front::current_port`
/// reads it), the others' as backups, and with TLS the certificate nginx serves (the registry
/// files' own: nginx re-reads them at the roll's reload).
pub(super) fn backend(port: u16, backups: &[&str], tls: bool) -> String {
    let certs = tls.then(|| format!("{}/certs", registry_files::BASE));
    let own = format!("    server 127.0.0.1:{port};\n");
    let mut with_backups = own.clone();
    for b in backups {
        let b = if b.contains(':') {
            format!("[{b}]")
        } else {
            b.to_string()
        };
        with_backups.push_str(&format!("    server {b}:{port} backup;\n"));
    }
    registry_front::backend(port, certs.as_deref()).replacen(&own, &with_backups, 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_front_reads_its_own_slot_first() {
        let text = backend(416, &["10.0.0.2", "fd00::3"], true);
        assert_eq!(registry_front::current_port(Some(&text)), 416);
        assert!(
            text.contains("ssl_certificate /etc/regboot/registry/certs/registry-chain.crt;"),
            "{text}"
        );
        assert!(text.contains("server 10.0.0.2:416 backup;"), "{text}");
        assert!(text.contains("server [fd00::3]:416 backup;"), "{text}");
    }

    #[test]
    fn scripts_parse() {
        for script in [SWITCH, DRAINED] {
            let out = std::process::Command::new("sh")
                .args(["-n", "-c", script])
                .output()
                .unwrap();
            assert!(out.status.success(), "{out:?}");
        }
    }
}
