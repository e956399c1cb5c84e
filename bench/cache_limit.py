#!/usr/bin/env python3
"""Whole restores under --cache-limit beside an unlimited cache (issue 26, docs/cache.md).

    python3 bench/cache_limit.py [--size 6144] [--limit 1G] [--runs 3] [--out FILE]

The SPEC 5 workload of SIZE MiB (bench/gen_workload.c, as run.py makes it) is saved once
with `ckptfs put` to a file:// object; then RUNS rounds, alternating which goes first, of
a whole restore (a new mount with --src, every file under prev/ read and hashed) with no
limit and with --cache-limit LIMIT. Reports the median times and their ratio (goal: within
1.3x), whether every file's SHA-256 matched the workload's, the largest cache use seen in
.status while reading (polled every 20 ms) and the bytes the cache dir's prev/ held at the
end (st_blocks), beside the limit (goal: never over it by more than one fetch run). Needs
root (FUSE) and the build.
"""
import argparse
import hashlib
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run as R  # noqa: E402  (workload, Mount, sh, timed, drop_caches, BIN)



def hashes(root):
    out = {}
    for dirpath, _, files in os.walk(root):
        for name in files:
            p = os.path.join(dirpath, name)
            h = hashlib.sha256()
            with open(p, "rb") as f:
                while True:
                    b = f.read(1 << 20)
                    if not b:
                        break
                    h.update(b)
            out[os.path.relpath(p, root)] = h.hexdigest()
    return out


def disk_bytes(root):
    return sum(os.lstat(os.path.join(p, f)).st_blocks * 512
               for p, _, fs in os.walk(root) for f in fs)


def restore(work, obj, want, extra):
    m = R.Mount(work, "file://" + os.path.join(work, "unused.tgz"), ["file://" + obj],
                extra=extra)
    peak, stop = [0], threading.Event()

    def poll():
        while not stop.is_set():
            try:
                peak[0] = max(peak[0], m.status()["prev"]["cache"]["bytes"])
            except (OSError, ValueError, KeyError):
                pass
            time.sleep(0.02)
    t = threading.Thread(target=poll)
    t.start()
    try:
        t0 = time.monotonic()
        got = hashes(os.path.join(m.mnt, "prev"))
        secs = time.monotonic() - t0
        stop.set()
        t.join()
        cache = m.status()["prev"]["cache"]
        on_disk = disk_bytes(os.path.join(m.cache, "prev"))
        return {"s": secs, "same": got == want, "peak_status": peak[0], "disk_end": on_disk,
                "evicted": cache["evicted_bytes"], "rss_mib": m.peak_rss_mib()}
    finally:
        stop.set()
        m.unmount()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=6144)
    ap.add_argument("--limit", default="1G")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--out", default="bench-cache-limit.json")
    a = ap.parse_args()
    base, data = R.workload(a.size)
    work = tempfile.mkdtemp(prefix="cl-", dir=base)
    try:
        obj = os.path.join(work, "ck.tgz")
        R.sh([R.BIN, "put", data, "file://" + obj])
        want = hashes(data)
        runs = {"unlimited": [], "limited": []}
        for i in range(a.runs):
            order = [("unlimited", []), ("limited", ["--cache-limit", a.limit])]
            for name, extra in order if i % 2 == 0 else reversed(order):
                R.drop_caches()
                runs[name].append(restore(work, obj, want, extra))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    med = {k: statistics.median(r["s"] for r in v) for k, v in runs.items()}
    lim = runs["limited"]
    print(f"{a.size} MiB, --cache-limit {a.limit}, {a.runs} alternating runs each:")
    print("| whole restore | median s | runs | bytes identical |\n|---|---|---|---|")
    for k, v in runs.items():
        times = ", ".join(f"{r['s']:.2f}" for r in v)
        print(f"| {k} | {med[k]:.2f} | {times} | {all(r['same'] for r in v)} |")
    print(f"\nratio limited / unlimited: {med['limited'] / med['unlimited']:.2f}x")
    print(f"cache under the limit: .status peak {max(r['peak_status'] for r in lim) / 2**20:.0f} "
          f"MiB, disk at the end {max(r['disk_end'] for r in lim) / 2**20:.0f} MiB, evicted "
          f"{lim[0]['evicted'] / 2**20:.0f} MiB a run; RSS peak "
          f"{max(r['rss_mib'] for r in lim):.0f} MiB (unlimited: "
          f"{max(r['rss_mib'] for r in runs['unlimited']):.0f} MiB)")
    with open(a.out, "w") as f:
        json.dump({"size_mib": a.size, "limit": a.limit, "runs": runs}, f, indent=1)


if __name__ == "__main__":
    main()
