#!/bin/bash
# test.sh - installs what the tests need, builds ckptfs three times (release, ASan+UBSan,
# and ThreadSanitizer with clang) and runs the whole suite (unit and real-mount integration
# tests) on each build, then the Debian package's smoke test, one integration test under
# valgrind and every fuzz harness briefly (scripts/fuzz.sh).
# The TSan run (build-tsan, about 6 minutes) fails on any report: TSAN_OPTIONS exitcode=66
# fails a unit test (the check suites fork each test: "Early exit with return value 66"),
# and tests/integration/ckfs.py sends the reports of every ckptfs process a test starts
# (daemons, also ones the test kills) to files (log_path) and fails the test after which
# one appears. False positives in libraries go in tests/tools/tsan.supp (one comment
# each). CK_TEST_TSAN=0 skips the TSan run.
# Before building: scripts/lint.sh (formatting, banned calls); every build uses -Werror.
# Run as root on Debian 12 (FUSE mounts, nginx on 127.0.0.1).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh test
bash scripts/lint.sh # clang-format and banned calls; the builds below use -Werror
jobs=$(nproc)
extra=(-DCKPTFS_WERROR=ON)
[ -n "${CI:-}" ] && extra+=(-DCKPTFS_REQUIRE_DATA_FILTER=ON)
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCKPTFS_TESTS=ON "${extra[@]}" >/dev/null
cmake --build build -j"$jobs"
(cd build && ctest --output-on-failure -j2)
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DCKPTFS_SANITIZE=ON -DCKPTFS_TESTS=ON "${extra[@]}" >/dev/null
cmake --build build-asan -j"$jobs"
# quarantine_size_mb=64: freed memory is still poisoned for use-after-free checks, but the
# quarantine fills in the first round of test_trust_load, whose RSS check (memory must not
# grow from round to round) would otherwise measure ASan's quarantine filling up.
(cd build-asan && ASAN_OPTIONS=detect_leaks=1:quarantine_size_mb=64 UBSAN_OPTIONS=print_stacktrace=1 \
    ctest --output-on-failure -j2)
if [ "${CK_TEST_TSAN:-1}" != 0 ]; then
    CC=clang cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCKPTFS_TSAN=ON \
        -DCKPTFS_TESTS=ON "${extra[@]}" >/dev/null
    cmake --build build-tsan -j"$jobs"
    tsan="halt_on_error=0 exitcode=66 second_deadlock_stack=1"
    tsan+=" suppressions=$PWD/tests/tools/tsan.supp"
    # Not under TSan, to keep CI near 40 minutes: the radosgw store contract (the same
    # client code runs it on moto here, on radosgw in the two builds above) and the PyTorch
    # clients (the mount's code paths they use run in the other integration tests here).
    (cd build-tsan && TSAN_OPTIONS="$tsan" ctest --output-on-failure -j2 \
        -E '^(unit_store_contract_rgw|it_pytorch)$')
fi
# The Debian package: built with dpkg-buildpackage, unpacked with dpkg -x, smoke-tested
# (a separate step: building it takes a minute or two; ctest skips test_package.py).
bash scripts/build-deb.sh build-deb
(cd tests/integration && CK_DEB=$(ls -t ../../build-deb/ckptfs_*.deb | head -1) \
    CKPTFS_BIN=../../build/ckptfs python3 -W ignore::ResourceWarning -m unittest -v test_package)
# One real-mount test under valgrind (memcheck of the daemon itself: the tests start
# CKPTFS_BIN, here a wrapper). Errors make the daemon exit 99; leaks are reported in the
# log but do not fail (libfuse and libcurl keep global state until exit).
# tests/tools/valgrind.supp explains the one suppression (ISA-L's assembly).
cat >build/ckptfs-valgrind <<VG
#!/bin/sh
exec valgrind -q --error-exitcode=99 --trace-children=no --leak-check=no \
    --suppressions=$PWD/tests/tools/valgrind.supp \
    --log-file=$PWD/build/valgrind-%p.log $PWD/build/ckptfs "\$@"
VG
chmod +x build/ckptfs-valgrind
rm -f build/valgrind-*.log
(cd tests/integration && CKPTFS_BIN=$PWD/../../build/ckptfs-valgrind CK_TEST_TOOLS=$PWD/../tools \
    CK_PY_DATA_FILTER=1 python3 -W ignore::ResourceWarning -m unittest test_save_ops)
if grep -l "ERROR SUMMARY: [1-9]\|Invalid \|uninitialised" build/valgrind-*.log 2>/dev/null; then
    echo "valgrind found errors (build/valgrind-*.log)" >&2
    exit 1
fi
bash scripts/fuzz.sh "${CK_FUZZ_SECONDS:-20}"
