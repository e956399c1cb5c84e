#!/bin/bash
# build-deb.sh [OUTDIR] - builds the Debian binary package from this tree with
# dpkg-buildpackage (packaging/debian is the debian/ folder) and puts ckptfs_*.deb into
# OUTDIR (default: build-deb/). Needs: bash scripts/deps.sh package.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(realpath -m "${1:-build-deb}")
version=$(sed -n '1s/^ckptfs (\([^)-]*\).*/\1/p' packaging/debian/changelog)
work=$(mktemp -d "${TMPDIR:-/tmp}/ckptfs-deb-XXXXXX")
trap 'rm -rf "$work"' EXIT
src="$work/ckptfs-$version"
mkdir -p "$src" "$out"
# The tree as it is (tracked and new files, not build output).
git ls-files -co --exclude-standard -z | grep -zv '^packaging/debian/' |
    xargs -0 cp --parents -t "$src"
cp -r packaging/debian "$src/debian"
(cd "$src" && dpkg-buildpackage -us -uc -b -j"$(nproc)" >"$work/build.log" 2>&1) || {
    tail -40 "$work/build.log" >&2
    exit 1
}
cp "$work"/ckptfs_*.deb "$out"/
ls "$out"/ckptfs_*.deb
