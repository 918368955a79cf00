#!/bin/bash
# Installs the Debian 12 packages tusk needs to build and test, and only
# those that are missing. Idempotent; needs root (or sudo). The S3 test
# server's packages (Ceph radosgw) are installed by tests/s3/rgw.sh itself
# when the test command starts it: building and the demo do not need them.
set -euo pipefail
PACKAGES=(cmake g++ make pkg-config libfuse3-dev fuse3 liblmdb-dev libzstd-dev libssl-dev libcli11-dev
          libgtest-dev libgit2-dev nlohmann-json3-dev python3 rsync git sqlite3 clang libclang-rt-14-dev
          libcurl4-openssl-dev libpugixml-dev)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "installing: ${missing[*]}" >&2
$SUDO apt-get update -qq
# env: sudo drops DEBIAN_FRONTEND from the environment it passes on.
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
