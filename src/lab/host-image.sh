#!/bin/sh
# Builds the lab's host image: Debian (bookworm or trixie) with systemd as PID 1, OpenSSH server, the docker
# engine, sudo and ca-certificates. No public image can be pulled, so the root filesystem comes
# from debootstrap and is turned into an image with `docker import`.
#
# Usage: host-image.sh TAG WORKDIR RELEASE   (run as root; WORKDIR is scratch space, removed by the
# caller). The containerd-only and podman-only hosts derive from this image (src/lab/image.rs).
# Lines starting with "==> " name the step for the caller's progress display.
# The image is tagged by the sha256 of this file: editing it makes a new image.
set -eu

tag="$1"
rootfs="$2/rootfs"
release="$3"
mirror="${REGBOOT_LAB_MIRROR:-http://deb.debian.org/debian}"

cleanup() { umount "$rootfs/proc" 2>/dev/null || true; }
trap cleanup EXIT

# trixie ships the docker CLI apart from the engine.
cli=
[ "$release" = bookworm ] || cli=,docker-cli

echo "==> debootstrap $release (downloads ~150 MB of packages)"
debootstrap --variant=minbase \
  --include=openssh-server,docker.io$cli,ca-certificates,sudo,iproute2,procps,iptables \
  "$release" "$rootfs" "$mirror"

echo "==> install systemd as PID 1"
cp /etc/resolv.conf "$rootfs/etc/resolv.conf"
mount -t proc proc "$rootfs/proc"
# Nothing may start services inside the chroot.
printf '#!/bin/sh\nexit 101\n' >"$rootfs/usr/sbin/policy-rc.d"
chmod 755 "$rootfs/usr/sbin/policy-rc.d"
chroot "$rootfs" env DEBIAN_FRONTEND=noninteractive \
  apt-get install -y -q --no-install-recommends systemd systemd-sysv dbus
rm -f "$rootfs/usr/sbin/policy-rc.d"
umount "$rootfs/proc"

echo "==> configure the host"
# Each host makes its own SSH host keys on first boot (below); none may be shared.
rm -f "$rootfs"/etc/ssh/ssh_host_*
# systemd makes a fresh machine id per container when the file is empty.
: >"$rootfs/etc/machine-id"
rm -f "$rootfs/var/lib/dbus/machine-id"

# The non-root login with passwordless sudo. '*' (not '!') so sshd does not treat it as locked.
chroot "$rootfs" useradd --create-home --shell /bin/bash --uid 1000 --user-group ops
chroot "$rootfs" usermod -p '*' ops
chroot "$rootfs" usermod -p '*' root
printf 'ops ALL=(ALL) NOPASSWD:ALL\n' >"$rootfs/etc/sudoers.d/ops"
chmod 440 "$rootfs/etc/sudoers.d/ops"

# First boot (and every boot, idempotently): host keys if absent, the lab's authorized key for
# root and ops, and the SSH port, from files regboot copies into /etc/regboot-lab/ before start.
cat >"$rootfs/usr/local/sbin/regboot-lab-firstboot" <<'SCRIPT'
#!/bin/sh
set -eu
ls /etc/ssh/ssh_host_*_key >/dev/null 2>&1 || ssh-keygen -A
install -d -m 700 /root/.ssh
install -m 600 /etc/regboot-lab/authorized_keys /root/.ssh/authorized_keys
install -d -m 700 -o ops -g ops /home/ops/.ssh
install -m 600 -o ops -g ops /etc/regboot-lab/authorized_keys /home/ops/.ssh/authorized_keys
printf 'Port %s\n' "$(cat /etc/regboot-lab/ssh_port)" >/etc/ssh/sshd_config.d/regboot-lab.conf
SCRIPT
chmod 755 "$rootfs/usr/local/sbin/regboot-lab-firstboot"
cat >"$rootfs/etc/systemd/system/regboot-lab-firstboot.service" <<'UNIT'
[Unit]
Description=regboot lab: SSH host keys, authorized key and port
Before=ssh.service
ConditionPathExists=/etc/regboot-lab/authorized_keys

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/local/sbin/regboot-lab-firstboot

[Install]
WantedBy=multi-user.target
UNIT
ln -s /etc/systemd/system/regboot-lab-firstboot.service \
  "$rootfs/etc/systemd/system/multi-user.target.wants/regboot-lab-firstboot.service"

# cgroup v2 without --privileged: docker mounts the container's cgroup tree read-only, and
# systemd (and the inner dockerd) need it writable. With cgroup v1 the host tree is bind-mounted rw.
cat >"$rootfs/usr/local/sbin/regboot-lab-init" <<'SCRIPT'
#!/bin/sh
if [ "$(stat -fc %T /sys/fs/cgroup)" = cgroup2fs ] && grep -q ' /sys/fs/cgroup cgroup2 ro' /proc/self/mounts; then
  mount -o remount,rw /sys/fs/cgroup
fi
exec /sbin/init "$@"
SCRIPT
chmod 755 "$rootfs/usr/local/sbin/regboot-lab-init"

# Units that have nothing to do in a container and would only mark the system degraded.
for unit in getty@tty1.service console-getty.service systemd-remount-fs.service \
  systemd-udevd.service systemd-udev-trigger.service systemd-modules-load.service \
  systemd-sysctl.service sys-kernel-config.mount sys-kernel-debug.mount sys-kernel-tracing.mount \
  apt-daily.timer apt-daily-upgrade.timer; do
  ln -sf /dev/null "$rootfs/etc/systemd/system/$unit"
done

chroot "$rootfs" apt-get clean
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs/etc/resolv.conf"
: >"$rootfs/etc/resolv.conf"

echo "==> import the image as $tag"
tar --numeric-owner -C "$rootfs" -c . | docker import \
  -c 'ENTRYPOINT ["/usr/local/sbin/regboot-lab-init"]' \
  -c 'ENV container=docker' \
  -c 'LABEL io.regboot.lab.image=host' \
  -c "LABEL io.regboot.lab.release=$release" \
  -c 'LABEL io.regboot.lab.flavor=docker' \
  - "$tag" >/dev/null
