#!/bin/bash
# deps.sh [build|test|package] - installs what ckptfs needs on Debian 12 (run as root).
#   build: compiler, CMake and the libraries ckptfs links.
#   package: build + dpkg-buildpackage's tools (scripts/build-deb.sh).
#   test:  build + what the test suite drives (and clang-format for scripts/lint.sh): FUSE tools, nginx, GNU tar, bsdtar,
#          compressors, check, Python 3, Ceph's S3 server (radosgw, tests/tools/rgw-s3),
#          PyTorch (python3-torch: real training programs in test_pytorch.py).
set -euo pipefail
what=${1:-build}
build_pkgs=(build-essential cmake pkg-config libfuse3-dev fuse3 libcurl4-openssl-dev
            libarchive-dev zlib1g-dev libssl-dev libisal-dev libxml2-dev)
test_pkgs=(check python3 nginx-light libarchive-tools tar gzip bzip2 xz-utils e2fsprogs
           procps coreutils valgrind clang clang-format libclang-rt-14-dev ceph-mon ceph-osd radosgw
           python3-torch)
package_pkgs=(debhelper dpkg-dev fakeroot)
pkgs=("${build_pkgs[@]}")
[ "$what" = test ] && pkgs+=("${test_pkgs[@]}" "${package_pkgs[@]}")
[ "$what" = package ] && pkgs+=("${package_pkgs[@]}")
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
# The S3 tests run moto_server with boto3 (Python packages, not in Debian 12's archive);
# test_examples.py reads the Kubernetes examples with PyYAML (which moto needs too).
# These machines have them with their Python; elsewhere they come from PyPI.
if [ "$what" = test ] && ! { command -v moto_server >/dev/null && python3 -c 'import boto3, yaml' 2>/dev/null; }; then
    echo "deps.sh: installing moto[server], boto3 and pyyaml with pip" >&2
    python3 -m pip --version >/dev/null 2>&1 || apt-get install -y -qq python3-pip >/dev/null
    python3 -m pip install -q 'moto[server]' boto3 pyyaml 2>/dev/null ||
        python3 -m pip install -q --break-system-packages 'moto[server]' boto3 pyyaml || {
        echo "deps.sh: moto_server and boto3 are needed for the S3 tests and could not be installed" >&2
        exit 1
    }
fi
# The Azure tests run Azurite, Microsoft's emulator (npm package azurite, Node >= 18),
# installed into /opt/ckptfs-node (tests/tools/azurite finds it there, or at $CK_AZURITE).
AZURITE_DIR=${CK_AZURITE_DIR:-/opt/ckptfs-node}
if [ "$what" = test ] && [ ! -x "$AZURITE_DIR/node_modules/.bin/azurite-blob" ]; then
    if ! command -v npm >/dev/null; then
        apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
    fi
    echo "deps.sh: installing azurite with npm into $AZURITE_DIR" >&2
    mkdir -p "$AZURITE_DIR"
    (cd "$AZURITE_DIR" && npm install --no-audit --no-fund --silent azurite@3.35.0) || {
        echo "deps.sh: azurite is needed for the Azure tests and could not be installed" >&2
        exit 1
    }
fi
