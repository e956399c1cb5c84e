#!/usr/bin/env python3
"""Whole restore across checkpoint sizes: ckptfs's prev/ against flyte-sdk's
download-then-extractall, alternating, on file:// (SPEC 5: at least 3x at every size).

    python3 bench/restore_sizes.py [--sizes 256,512,1536] [--runs 4]

For each size: the SPEC 5 workload (bench/gen_workload.c, as run.py makes it), saved once
through a ckptfs mount and once with flyte-sdk's algorithm (kept under $CKBENCH_DIR as
flyte-SIZE.tgz, since level-9 gzip of 1.5 GiB takes minutes); then --runs rounds, each
timing one ckptfs restore (mount, read every file under prev/) and one flyte-sdk restore
(copy the object, extractall(filter="data"), read every file), in alternating order so
neither always runs right after the other's writes. A sync precedes every timed run.
Reports the best and the median of each, their ratio, and the fixed costs of the mount
(mount ready, first byte of a small file, bytes fetched for it).
"""
import argparse
import os
import shutil
import statistics
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run  # noqa: E402


def flyte_object(base, work, be, data, size):
    keep = os.path.join(base, f"flyte-{size}.tgz")
    if not os.path.exists(keep):
        run.flyte_save(work, be, data, {})
        shutil.copyfile(os.path.join(be.dir, "flyte.tgz"), keep)
    else:
        be.upload(keep, "flyte.tgz")


def one_size(size, runs):
    base, data = run.workload(size)
    work = tempfile.mkdtemp(prefix="rs-", dir=base)
    try:
        be = run.FileBackend(work)
        run.REPEAT = 1
        saved = {}
        run.ckptfs_save(work, be, data, saved)
        flyte_object(base, work, be, data, size)
        ck, fl, fixed = [], [], []
        for i in range(runs):
            r = {}
            order = [run.ckptfs_restore, run.flyte_restore]
            for fn in order if i % 2 == 0 else reversed(order):
                fn(work, be, r)
            ck.append(r["ckptfs_restore"])
            fl.append(r["flyte_restore"])
            fixed.append(r)
        return {"size_mib": size, "ckptfs": ck, "flyte": fl,
                "mount_ms": min(f["ckptfs_mount_s"] for f in fixed) * 1000,
                "first_byte_ms": min(f["ckptfs_first_byte"] for f in fixed) * 1000,
                "partial_bytes": fixed[0]["ckptfs_partial_fetched_bytes"],
                "rss_mib": max(f["ckptfs_restore_rss_mib"] for f in fixed)}
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="256,512,1536")
    ap.add_argument("--runs", type=int, default=4)
    args = ap.parse_args()
    rows = [one_size(int(s), args.runs) for s in args.sizes.split(",")]
    print(f"{os.cpu_count()} cores; seconds; best (median) of {args.runs} alternating runs")
    print("| size | ckptfs restore | flyte-sdk restore | ratio best (median) | mount | "
          "first byte | fetched for it | peak RSS |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        c, f = r["ckptfs"], r["flyte"]
        cm, fm = statistics.median(c), statistics.median(f)
        print(f"| {r['size_mib']} MiB | {min(c):.2f} ({cm:.2f}) | {min(f):.2f} ({fm:.2f}) | "
              f"{min(f) / min(c):.1f}x ({fm / cm:.1f}x) | {r['mount_ms']:.0f} ms | "
              f"{r['first_byte_ms']:.0f} ms | {r['partial_bytes'] / 1024:.0f} KiB | "
              f"{r['rss_mib']:.0f} MiB |")
    print("all runs:", [(r["size_mib"], [round(x, 2) for x in r["ckptfs"]],
                         [round(x, 2) for x in r["flyte"]]) for r in rows])


if __name__ == "__main__":
    main()
