#!/bin/bash
# demo.sh - builds ckptfs and runs its main job end to end on a file:// destination:
# mount, write a checkpoint into save/, save it, remount with it as --src, read it back
# from prev/. Run as root on Debian 12.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh build
cmake -S . -B build-demo -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCKPTFS_TESTS=OFF >/dev/null
cmake --build build-demo -j"$(nproc)" >/dev/null
bin=$PWD/build-demo/ckptfs
work=$(mktemp -d /tmp/ckptfs-demo-XXXXXX)
mnt=$work/mnt
mkdir -p "$mnt"
cleanup() { fusermount3 -uz "$mnt" 2>/dev/null || true; }
trap cleanup EXIT
dest="file://$work/bucket/attempt-1/_flytecheckpoints"

echo "== attempt 1: mount, write a checkpoint, save"
"$bin" --dest "$dest" --cache-dir "$work/cache1" "$mnt"
mkdir -p "$mnt/save/shards"
head -c 8M /dev/urandom >"$mnt/save/shards/model-00001.bin"
echo '{"step": 1200, "lr": 0.0003}' >"$mnt/save/trainer_state.json"
touch "$mnt/.save" && echo "saved: $(stat -c %s "$work/bucket/attempt-1/_flytecheckpoints") bytes"
cat "$mnt/.status"
fusermount3 -u "$mnt"
sleep 1

echo "== attempt 2: mount with attempt 1 as --src, read it back from prev/"
"$bin" --dest "file://$work/bucket/attempt-2/_flytecheckpoints" --src "$dest" \
    --cache-dir "$work/cache2" "$mnt"
ls -lR "$mnt/prev"
cat "$mnt/prev/trainer_state.json"
cmp "$mnt/prev/shards/model-00001.bin" "$work/cache1/save/shards/model-00001.bin" 2>/dev/null ||
    sha256sum "$mnt/prev/shards/model-00001.bin"
tar -tzvf "$work/bucket/attempt-1/_flytecheckpoints"
fusermount3 -u "$mnt"
echo "== demo ok (files in $work)"
