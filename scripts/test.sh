#!/bin/bash
# test.sh - installs what the tests need, builds ckptfs twice (release, and ASan+UBSan)
# and runs the whole suite (unit and real-mount integration tests) on both builds.
# Run as root on Debian 12 (FUSE mounts, nginx on 127.0.0.1).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh test
jobs=$(nproc)
extra=()
[ -n "${CI:-}" ] && extra+=(-DCKPTFS_REQUIRE_DATA_FILTER=ON)
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCKPTFS_TESTS=ON "${extra[@]}" >/dev/null
cmake --build build -j"$jobs"
(cd build && ctest --output-on-failure -j2)
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DCKPTFS_SANITIZE=ON -DCKPTFS_TESTS=ON "${extra[@]}" >/dev/null
cmake --build build-asan -j"$jobs"
(cd build-asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
    ctest --output-on-failure -j2)
