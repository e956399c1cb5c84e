#!/usr/bin/env python3
"""Multi-rank checkpoints (docs/world.md): 4 ranks x SIZE/4 against 1 rank x SIZE, same
machine, same store, in one run.

    python3 bench/world.py [--size 1536] [--ranks 4] [--backends file,rgw] [--runs 2]

The workload is bench/gen_workload.c's (as run.py makes it): one rank saves the SIZE MiB
tree; in the world case each of the N mounts saves the SIZE/N MiB tree under rankR/, so
the union restored is as large as the one-rank checkpoint. Timed:
- save: every mount's `touch .save` started at once (a thread per rank), until the last
  returns (rank 0's returns when the generation is committed); the data is in save/
  beforehand (cp, not timed);
- restore: a fresh mount with --src, reading every file under prev/ (the union).
rgw is Ceph's radosgw on 127.0.0.1 (tests/tools/rgw-s3, as bench/s3_peers.py starts it;
moto is left out: it copies the whole object for every ranged GET, so a lazy restore of
1.5 GiB takes many minutes there and says nothing).
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run  # noqa: E402
from s3_peers import BUCKET  # noqa: E402


class RgwBackend:
    """radosgw with the daemon's environment in os.environ (run.Mount passes it on)."""
    name = "rgw"

    def __init__(self, work):
        import s3_peers
        self.rgw = s3_peers.Rgw(work)
        self.saved_env = dict(os.environ)
        os.environ.clear()
        os.environ.update(self.rgw.env())

    def uri(self, key):
        return f"s3://{BUCKET}/world/{key}"

    def stop(self):
        os.environ.clear()
        os.environ.update(self.saved_env)
        self.rgw.stop()


def mounts(work, be, key, n):
    if n == 1:
        return [run.Mount(work, be.uri(key))]
    return [run.Mount(work, be.uri(key), extra=["--world", str(n), "--rank", str(r)])
            for r in range(n)]


def fill(ms, data, n):
    def one(r, m):
        dst = os.path.join(m.mnt, "save", f"rank{r}") if n > 1 else os.path.join(m.mnt, "save")
        os.makedirs(dst, exist_ok=True)
        run.sh(["cp", "-r", data + "/.", dst])
    ts = [threading.Thread(target=one, args=(r, m)) for r, m in enumerate(ms)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()


def save_all(ms):
    rcs = [None] * len(ms)

    def one(r):
        rcs[r] = subprocess.run(["touch", os.path.join(ms[r].mnt, ".save")]).returncode
    ts = [threading.Thread(target=one, args=(r,)) for r in range(len(ms))]
    t0 = time.monotonic()
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    secs = time.monotonic() - t0
    if any(rcs):
        raise RuntimeError(f"a save failed: {rcs}; see {ms[0].log.name}")
    return secs


def one_case(work, be, data, n, key):
    ms = mounts(work, be, key, n)
    try:
        fill(ms, data, n)
        run.drop_caches()
        save_s = save_all(ms)
        obj = sum(m.status()["save"]["last"]["compressed_bytes"] for m in ms)
        rss = max(m.peak_rss_mib() for m in ms)
    finally:
        for m in ms:
            m.unmount()
    run.drop_caches()
    rd = run.Mount(work, be.uri(key + "-unused"), [be.uri(key)])
    try:
        restore_s = run.timed(lambda: run.read_all(os.path.join(rd.mnt, "prev")))
        st = rd.status()["prev"]
        if n > 1 and (st["world"] or {}).get("ranks") != n:
            raise RuntimeError(f"restore did not see {n} ranks: {st}")
    finally:
        rd.unmount()
    return {"save": save_s, "restore": restore_s, "bytes": obj, "rss": rss}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=1536)
    ap.add_argument("--ranks", type=int, default=4)
    ap.add_argument("--backends", default="file,rgw")
    ap.add_argument("--runs", type=int, default=2)
    args = ap.parse_args()
    base, whole = run.workload(args.size)
    _, part = run.workload(args.size // args.ranks)
    rows = []
    for name in args.backends.split(","):
        work = tempfile.mkdtemp(prefix="world-", dir=base)
        be = {"file": run.FileBackend, "rgw": RgwBackend}[name](work)
        try:
            res = {1: [], args.ranks: []}
            for i in range(args.runs):
                order = [1, args.ranks] if i % 2 == 0 else [args.ranks, 1]
                for n in order:
                    res[n].append(one_case(work, be, whole if n == 1 else part, n,
                                           f"ck{n}-{i}"))
            rows.append((name, res))
        finally:
            be.stop()
            shutil.rmtree(work, ignore_errors=True)
    print(f"{os.cpu_count()} cores; {args.size} MiB in all; best (median) of {args.runs}, "
          "alternating")
    print("| store | layout | save (all durable, committed) | whole restore of the union | "
          "object bytes | peak RSS per mount |")
    print("|---|---|---|---|---|---|")
    for name, res in rows:
        for n, rs in res.items():
            sv = [r["save"] for r in rs]
            rt = [r["restore"] for r in rs]
            layout = (f"1 rank x {args.size} MiB" if n == 1
                      else f"{n} ranks x {args.size // n} MiB")
            print(f"| {name} | {layout} | {min(sv):.2f} s ({statistics.median(sv):.2f}) | "
                  f"{min(rt):.2f} s ({statistics.median(rt):.2f}) | "
                  f"{rs[0]['bytes'] / 2**20:.0f} MiB | {max(r['rss'] for r in rs):.0f} MiB |")


if __name__ == "__main__":
    main()
