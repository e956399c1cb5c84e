#!/bin/bash
# fuzz.sh [SECONDS] - builds the libFuzzer harnesses (clang, ASan+UBSan) into build-fuzz and
# runs each one for SECONDS (default 20), one per core at a time, on a scratch copy of its
# seed corpus (tests/fuzz/corpus/NAME stays as committed). A crash fails the run; the
# reproducer is kept as build-fuzz/crashes/NAME/crash-* (turn it into a regression test).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-20}
command -v clang >/dev/null || apt-get install -y -qq --no-install-recommends clang libclang-rt-14-dev >/dev/null
CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCKPTFS_FUZZ=ON \
    -DCKPTFS_TESTS=OFF >/dev/null
cmake --build build-fuzz -j"$(nproc)" >/dev/null
scratch=$(mktemp -d)
trap 'rm -rf "$scratch" /tmp/ckfuzz-extract-*' EXIT
# one harness; prints its result, fails on a crash
run_one() {
    local name=$1 corpus=tests/fuzz/corpus/$1/
    mkdir -p "$scratch/$name" "build-fuzz/crashes/$name"
    if ! ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
        "build-fuzz/tests/fuzz/fuzz_$name" -max_total_time="$secs" -rss_limit_mb=1024 \
        -timeout=10 -max_len=262144 -artifact_prefix="build-fuzz/crashes/$name/" \
        -print_final_stats=1 "$scratch/$name" "$corpus" >"build-fuzz/fuzz_$name.log" 2>&1; then
        echo "fuzz_$name: FAILED (see build-fuzz/fuzz_$name.log, build-fuzz/crashes/$name/)" >&2
        tail -30 "build-fuzz/fuzz_$name.log" >&2
        return 1
    fi
    echo "fuzz_$name: $(grep -m1 -o 'stat::number_of_executed_units: *[0-9]*' \
        "build-fuzz/fuzz_$name.log" | grep -o '[0-9]*$') inputs, no crash"
}
export -f run_one
export scratch secs
# one harness per core at a time (nothing else runs at this point of test.sh); every
# harness runs even after a crash, and any crash fails the whole run
ls tests/fuzz/corpus | xargs -P "$(nproc)" -I{} bash -c 'run_one {}'
