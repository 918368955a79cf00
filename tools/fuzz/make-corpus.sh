#!/bin/bash
# Rebuilds the seed corpora of the fuzz targets (tests/fuzz/corpus/<target>)
# from a real store: builds a small store with the real tusk (an import of
# small, large, compressible, random and sparse files, hard links, xattrs,
# a symlink, a fifo, a socket and a device node, a directory large enough to
# need index pages; a second import; a tag and a branch; a workspace with a
# partial copy-up through a mount), cuts it into per-target seeds
# (tools/fuzz/cut_seeds.cc) and minimizes each target's seeds together with
# the inputs already checked in (libFuzzer -merge=1, so a regression input
# stays unless a smaller one covers the same code).
#
#   tools/fuzz/make-corpus.sh          # needs build/ (tools/build.sh) and build-fuzz/ (tools/fuzz/build.sh)
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
tusk=$root/build/tusk
cutter=$root/build/tests/fuzz/fuzz_cut_seeds
fuzzdir=$root/build-fuzz/tests/fuzz
for f in "$tusk" "$cutter"; do [ -x "$f" ] || { echo "missing $f: run tools/build.sh" >&2; exit 1; }; done
[ -d "$fuzzdir" ] || { echo "missing $fuzzdir: run tools/fuzz/build.sh" >&2; exit 1; }

work=$(mktemp -d /tmp/tusk-corpus-XXXXXX)
mnt=$work/mnt
cleanup() {
  mountpoint -q "$mnt" 2>/dev/null && { "$tusk" umount "$mnt" || fusermount3 -uz "$mnt"; }
  rm -rf "$work"
}
trap cleanup EXIT
export TUSK_STORE=$work/store TUSK_AUTHOR=make-corpus

data=$work/data
mkdir -p "$data/small" "$data/many"
python3 - "$data" <<'PY'
import os, random, socket, sys
d = sys.argv[1]
rng = random.Random(20261206)
for i in range(4):
    with open(f"{d}/small/part-{i}.csv", "w") as f:
        f.write("id,label\n" + "".join(f"{j},{j % 7}\n" for j in range(i * 40)))
with open(f"{d}/big.csv", "w") as f:  # compressible, several chunks, zstd frames
    f.write("".join(f"{j},{j * j % 1009},sample-{j % 97}\n" for j in range(9000)))
with open(f"{d}/random.bin", "wb") as f:  # incompressible: raw records with CRC tables
    f.write(rng.randbytes(100 * 1024))
with open(f"{d}/sparse.bin", "wb") as f:  # holes around 8 KiB of data
    f.truncate(1 << 20)
    f.seek(512 * 1024)
    f.write(rng.randbytes(8192))
for i in range(1100):  # more than one leaf page
    open(f"{d}/many/f{i:04d}", "w").close()
os.link(f"{d}/small/part-1.csv", f"{d}/small/hard-link.csv")
os.setxattr(f"{d}/small/part-2.csv", "user.origin", b"make-corpus")
os.setxattr(f"{d}/big.csv", "user.schema", b"id,square,name")
os.symlink("small/part-1.csv", f"{d}/link")
os.mkfifo(f"{d}/fifo")
s = socket.socket(socket.AF_UNIX)
s.bind(f"{d}/socket")
s.close()
if os.geteuid() == 0:
    os.mknod(f"{d}/null-dev", 0o20644, os.makedev(1, 3))
PY

"$tusk" init --chunk-min 4K --chunk-avg 16K --chunk-max 64K >/dev/null
"$tusk" dataset create seeds
"$tusk" import "$data" seeds@main -m "corpus v1" --meta source=make-corpus.sh >/dev/null
"$tusk" tag seeds@v1 seeds@main
echo "appended" >>"$data/big.csv"
rm "$data/small/part-0.csv"
echo "new" >"$data/small/new.txt"
"$tusk" import "$data" seeds@main -m "corpus v2" --from seeds@v1 >/dev/null
"$tusk" branch seeds@dev seeds@main
# A run record (with a read set and a listed directory) and an output commit
# that names it (commit format 2).
"$tusk" branch seeds@derived >/dev/null
"$tusk" run --in v1=seeds@v1 --out seeds@derived -m "corpus run" --meta step=seed --env TUSK_AUTHOR -- \
  sh -c 'cat "$TUSK_IN_v1/small/part-1.csv" >"$TUSK_OUT/copy.csv"; ls "$TUSK_IN_v1/many" >/dev/null' 2>/dev/null

# A workspace with a partial copy-up: a write into the middle of a committed
# file leaves a sidecar; a new file and a deletion stage more changes.
mkdir -p "$mnt"
"$tusk" mount "$mnt"
printf 'patched' | dd of="$mnt/seeds/dev/big.csv" bs=1 seek=70000 conv=notrunc status=none
echo "staged" >"$mnt/seeds/dev/small/staged.txt"
rm "$mnt/seeds/dev/small/part-3.csv"
"$tusk" status seeds@dev >/dev/null
"$tusk" umount "$mnt"

"$cutter" "$TUSK_STORE" "$work/seeds"

for dir in "$work"/seeds/*/; do
  name=$(basename "$dir")
  target=$fuzzdir/${name}_fuzz
  [ -x "$target" ] || { echo "no fuzz target for seeds '$name'" >&2; exit 1; }
  corpus=$root/tests/fuzz/corpus/$name
  mkdir -p "$corpus"
  merged=$work/merged-$name
  mkdir -p "$merged"
  "$target" -merge=1 -max_len=1048576 -rss_limit_mb=4096 "$merged" "$corpus" "$dir" 2>"$work/merge-$name.log" ||
    { tail -n 30 "$work/merge-$name.log" >&2; exit 1; }
  rm -rf "$corpus"
  mv "$merged" "$corpus"
  echo "$name: $(ls "$corpus" | wc -l) inputs, $(du -sk "$corpus" | cut -f1) KiB"
done
echo "corpus total: $(du -sk "$root/tests/fuzz/corpus" | cut -f1) KiB"
