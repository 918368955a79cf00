#!/bin/bash
# Installs the Debian 12 packages tusk needs to build and test, and only
# those that are missing. Idempotent; needs root (or sudo).
set -euo pipefail
PACKAGES=(cmake g++ make pkg-config libfuse3-dev fuse3 liblmdb-dev libzstd-dev libssl-dev libcli11-dev
          libgtest-dev libgit2-dev nlohmann-json3-dev python3 rsync git sqlite3 clang libclang-rt-14-dev
          libcurl4-openssl-dev libpugixml-dev)
# The S3 test server (tests/s3/rgw.sh: Ceph radosgw), installed without recommends, which
# would bring in ceph-mds and a time daemon (chrony) that the tests do not need. Checked with
# dpkg-query: `dpkg -s` also succeeds for a removed package whose config files are left.
NO_RECOMMENDS=(ceph-mon ceph-osd radosgw ceph-common curl)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
missing_norec=()
for p in "${NO_RECOMMENDS[@]}"; do
  [ "$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null)" = "ii " ] || missing_norec+=("$p")
done
[ ${#missing[@]} -eq 0 ] && [ ${#missing_norec[@]} -eq 0 ] && exit 0
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "installing: ${missing[*]} ${missing_norec[*]}" >&2
$SUDO apt-get update -qq
if [ ${#missing[@]} -gt 0 ]; then
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if [ ${#missing_norec[@]} -gt 0 ]; then
  $SUDO env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends "${missing_norec[@]}" >/dev/null
fi
