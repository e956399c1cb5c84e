#!/bin/bash
# deps.sh [build|test] - installs what ckptfs needs on Debian 12 (run as root).
#   build: compiler, CMake and the libraries ckptfs links.
#   test:  build + what the test suite drives: FUSE tools, nginx, GNU tar, bsdtar,
#          compressors, check, Python 3.
set -euo pipefail
what=${1:-build}
build_pkgs=(build-essential cmake pkg-config libfuse3-dev fuse3 libcurl4-openssl-dev
            libarchive-dev zlib1g-dev libssl-dev libisal-dev libxml2-dev)
test_pkgs=(check python3 nginx-light libarchive-tools tar gzip bzip2 xz-utils e2fsprogs
           procps coreutils)
pkgs=("${build_pkgs[@]}")
[ "$what" = test ] && pkgs+=("${test_pkgs[@]}")
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# nginx is only a test fixture: the tests start their own instances on 127.0.0.1.
if [ "$what" = test ] && command -v systemctl >/dev/null && systemctl is-active -q nginx 2>/dev/null; then
    systemctl stop nginx || true
fi
[ -e /dev/fuse ] || { echo "deps.sh: /dev/fuse is missing: ckptfs needs FUSE" >&2; exit 1; }
