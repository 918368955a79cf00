#!/bin/bash
# The run command: installs what is missing, builds tusk, creates the default
# store (or reuses it) with a generated sample dataset in two versions, shows
# log, diff and stats, then mounts the store in the foreground until Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install-deps.sh
dir=$(tools/build.sh)
tusk="$dir/tusk"
store=${TUSK_STORE:-$HOME/.local/share/tusk}
export TUSK_STORE=$store
samples=${TUSK_SAMPLE_DIR:-$HOME/.cache/tusk-sample}

echo "== sample data in $samples"
tools/make-sample-data.sh "$samples"
[ -f "$store/config" ] || "$tusk" init
"$tusk" dataset list | cut -f1 | grep -qx sample || "$tusk" dataset create sample
echo "== import v1 and v2 into sample@main"
"$tusk" import "$samples/v1" sample@main -m "sample v1: 150 images and labels" --meta source=make-sample-data.sh
"$tusk" tag sample@v1 sample@main 2>/dev/null || true
"$tusk" import "$samples/v2" sample@main -m "sample v2: relabel class 3, add 20, drop 10, rename one"
echo "== tusk log sample"
"$tusk" log sample -n 2
echo "== tusk diff sample@main~1 sample@main"
"$tusk" diff sample@main~1 sample@main | tail -n 8
echo "== tusk stats"
"$tusk" stats
mnt=${TUSK_DEMO_MOUNT:-/tmp/tusk-demo}
mkdir -p "$mnt"
if mountpoint -q "$mnt"; then "$tusk" umount "$mnt"; fi
cat <<EOF

== mounting the whole store on $mnt. In another terminal try:
   ls $mnt/sample                                  # branches, and @tags
   ls -l $mnt/sample/main/images/train | head
   diff -r $mnt/sample/@v1 $mnt/sample/main        # what changed between two versions
   head $mnt/sample/main/labels.csv
   getfattr -n user.tusk.commit $mnt/sample/main/labels.csv
   sed -i 's/,1\$/,7/' $mnt/sample/main/labels.csv   # branches are writable workspaces
   TUSK_STORE=$store $tusk status sample@main      # what is staged
   TUSK_STORE=$store $tusk commit sample@main -m "relabel 1 as 7"
   $tusk mount sample@v1 /mnt/x                    # one version alone, read-only, as a training job would
Press Ctrl-C here to unmount.
EOF
exec "$tusk" mount --foreground "$mnt"
