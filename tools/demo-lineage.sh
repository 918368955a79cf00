#!/bin/bash
# The lineage demo of README.md ("Runs: record what a job really read, and what is stale"), step
# by step, in a fresh directory: import raw data, run a cleaning and a "training" step, change an
# unread and then a read file, stale, update --all, lineage --down of the changed file.
#
#   tools/demo-lineage.sh [WORKDIR]     # default: a new directory under /tmp; needs build/tusk and root
#                                       # (or unprivileged user namespaces) for tusk run
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
tusk_bin=${TUSK_BIN:-$repo/build/tusk}
[ -x "$tusk_bin" ] || { echo "build tusk first (tools/build.sh), or set TUSK_BIN" >&2; exit 1; }
work=${1:-$(mktemp -d /tmp/tusk-lineage-demo-XXXXXX)}
mkdir -p "$work" && cd "$work"
tusk() { echo "\$ tusk $*" >&2; "$tusk_bin" "$@"; }
export TUSK_STORE=$PWD/store

tusk init && for d in raw clean model; do tusk dataset create $d; done
mkdir -p raw/labels raw/notes
printf 'id,label\n1,cat\n' > raw/labels/a.csv; printf 'id,label\n2,dog\n' > raw/labels/b.csv
echo 'nobody reads this' > raw/notes/readme.txt
tusk import raw raw@main -m "raw data"
tusk run --in raw=raw@main --out clean@main -m clean -- \
    sh -c 'cat "$TUSK_IN_raw"/labels/*.csv | tr a-z A-Z > "$TUSK_OUT/labels.csv"'
tusk run --in clean=clean@main --out model@main -m train -- \
    sh -c 'wc -l < "$TUSK_IN_clean/labels.csv" > "$TUSK_OUT/model.txt"'
tusk lineage model@main
echo 'still nobody' > raw/notes/readme.txt && tusk import raw raw@main -m "notes"
tusk stale
printf 'id,label\n2,wolf\n' > raw/labels/b.csv && tusk import raw raw@main -m "relabel b"
tusk stale
tusk update --all
tusk lineage --down raw@main~1 labels/b.csv
echo "demo store: $TUSK_STORE" >&2
