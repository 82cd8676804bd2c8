//! `lab up --k3s PATH`: a k3s binary brought by the user (no k3s, RKE2 or kubelet package is
//! reachable from the machines this lab was written on) installed on the runtimes profile's
//! containerd-only host (host3) as a single-node k3s server under systemd, the way k3s's
//! install script lays it out (`/usr/local/bin/k3s`, `/etc/systemd/system/k3s.service`), so
//! regboot's facts see a k3s server there and apply merges registries.yaml and restarts it.
//! k3s runs with the native snapshotter (overlayfs inside the lab's containers is not assumed)
//! and without its bundled add-ons.

use std::path::Path;

use anyhow::{Context, Result, bail};

use super::docker;

/// The host it goes on (1-based), in the runtimes profile.
pub const HOST: usize = 3;

const UNIT: &str = "[Unit]
Description=Lightweight Kubernetes (regboot lab)
Wants=network-online.target
After=network-online.target

[Service]
Type=notify
ExecStart=/usr/local/bin/k3s server --snapshotter=native --disable=traefik,servicelb,metrics-server,local-storage --write-kubeconfig-mode=644
KillMode=process
Delegate=yes
LimitNOFILE=1048576
TasksMax=infinity
Restart=always
RestartSec=5s

[Install]
WantedBy=multi-user.target
";

/// Starts k3s and waits (bounded: 180 s) until its node is Ready.
const START: &str = r#"systemctl daemon-reload
systemctl enable --now k3s
i=0
until /usr/local/bin/k3s kubectl get nodes 2>/dev/null | grep -q ' Ready '; do
  i=$((i+1)); [ $i -ge 180 ] && { echo "k3s: no Ready node within 180 s; see journalctl -u k3s" >&2; exit 1; }
  sleep 1
done"#;

/// The binary at `path` must be a regular, executable file.
pub fn check(path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path)
        .with_context(|| format!("--k3s {}: cannot read it", path.display()))?;
    if !meta.is_file() || meta.permissions().mode() & 0o111 == 0 {
        bail!(
            "--k3s {}: not an executable file; give the path of a k3s binary \
             (https://github.com/k3s-io/k3s/releases, k3s for amd64)",
            path.display()
        );
    }
    Ok(())
}

/// Copies `binary` into `container` and starts k3s there, unless it runs already.
pub fn install(container: &str, binary: &Path) -> Result<()> {
    check(binary)?;
    if docker::succeeds(&[
        "exec",
        container,
        "systemctl",
        "is-active",
        "--quiet",
        "k3s",
    ]) {
        return Ok(());
    }
    let bin = binary.to_str().context("--k3s: the path is not UTF-8")?;
    docker::run(["cp", bin, &format!("{container}:/usr/local/bin/k3s")])?;
    docker::run_with_stdin(
        [
            "exec",
            "-i",
            container,
            "sh",
            "-c",
            "cat > /etc/systemd/system/k3s.service",
        ],
        UNIT.as_bytes(),
    )?;
    docker::run(["exec", container, "sh", "-c", START])
        .with_context(|| format!("{container}: starting k3s"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_executable_file_is_taken() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("k3s");
        std::fs::write(&bin, "#!/bin/sh\n").unwrap();
        let err = check(&bin).unwrap_err();
        assert!(
            format!("{err:#}").contains("not an executable file"),
            "{err:#}"
        );
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
        check(&bin).unwrap();
        assert!(check(dir.path()).is_err());
        assert!(check(&dir.path().join("missing")).is_err());
    }
}
