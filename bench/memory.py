#!/usr/bin/env python3
"""The daemon's peak memory under --memory-limit while saving to S3 and restoring (issue 26,
docs/storage.md "Part memory and spooled parts").

    python3 bench/memory.py [--size 4096] [--store rgw] [--growth 4] [--limits 64M,256M,8G]
                            [--out FILE]
    RGW_STORE=bluestore python3 bench/memory.py --size 20480 --limits 64M,256M

The SPEC 5 workload of SIZE MiB (bench/gen_workload.c) is copied into the save/ of a mount
whose --dest is an S3 object on radosgw (tests/tools/rgw-s3; or moto), with the part size
growth forced early (CKPTFS_PART_GROWTH=GROWTH: parts double every GROWTH parts, so a few
GiB already reach the part sizes of a checkpoint of hundreds of GiB), and saved once under
each --memory-limit: 64M, 256M (the default) and 8G (room for every part in memory: what
the daemon did before the limit existed). Then each object is restored through a new mount
(every file under prev/ read). Reports the daemon's peak RSS (VmHWM) for each save and
restore, the largest part sent (counted at tests/tools/faultproxy.py) and the save's time.
radosgw keeps objects in the OSD's memory unless RGW_STORE=bluestore (tests/tools/rgw-s3: a
sparse file on the disk), which checkpoints larger than the machine's memory need.
Needs root (FUSE), the build, boto3 and ceph-mon/ceph-osd/radosgw (or moto_server).
"""
import argparse
import json
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reuse  # noqa: E402  (Store: radosgw or moto behind the fault proxy)
import run as R  # noqa: E402  (workload, Mount, sh, read_all)

LIMITS = ["64M", "256M", "8G"]


def with_env(env, fn):
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        return fn()
    finally:
        os.environ.clear()
        os.environ.update(saved)


def largest_part(store):
    log = store.control("GET", "/__fault/log").decode()
    store.control("PUT", "/__fault/reset")
    recs = [json.loads(line) for line in log.splitlines() if line.strip()]
    return max((r["bytes_in"] for r in recs if r["method"] == "PUT"), default=0)


def save(work, store, data, limit, growth):
    uri = f"s3://{reuse.BUCKET}/mem-{limit}.tgz"

    def go():
        m = R.Mount(work, uri, extra=["--memory-limit", limit])
        try:
            R.sh(["cp", "-r", data + "/.", m.mnt + "/save"])
            secs = R.timed(lambda: R.sh(["touch", m.mnt + "/.save"]))
            return {"save_s": secs, "save_rss_mib": m.peak_rss_mib()}
        finally:
            m.unmount()
    env = dict(store.env(), CKPTFS_PART_GROWTH=str(growth))
    store.control("PUT", "/__fault/reset")
    res = with_env(env, go)
    res["largest_part_mib"] = largest_part(store) / 2**20
    return res


def restore(work, store, limit):
    uri = f"s3://{reuse.BUCKET}/mem-{limit}.tgz"

    def go():
        m = R.Mount(work, "file://" + os.path.join(work, "unused.tgz"), [uri],
                    extra=["--memory-limit", limit])
        try:
            secs = R.timed(lambda: R.read_all(m.mnt + "/prev"))
            return {"restore_s": secs, "restore_rss_mib": m.peak_rss_mib()}
        finally:
            m.unmount()
    return with_env(store.env(), go)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=4096)
    ap.add_argument("--store", default="rgw", choices=["rgw", "moto"])
    ap.add_argument("--growth", type=int, default=4)
    ap.add_argument("--limits", default=",".join(LIMITS),
                    help="--memory-limit values, comma-separated")
    ap.add_argument("--out", default="bench-memory.json")
    a = ap.parse_args()
    base, data = R.workload(a.size)
    work = tempfile.mkdtemp(prefix="mem-", dir=base)
    store = reuse.Store(a.store, work)
    results = {}
    try:
        for limit in a.limits.split(","):
            r = save(work, store, data, limit, a.growth)
            r.update(restore(work, store, limit))
            results[limit] = r
            import boto3  # free the store's memory (radosgw's memstore) for the next one
            boto3.client("s3", endpoint_url=f"http://127.0.0.1:{store.port}",
                         region_name="us-east-1", aws_access_key_id=store.keys[0],
                         aws_secret_access_key=store.keys[1]).delete_object(
                Bucket=reuse.BUCKET, Key=f"mem-{limit}.tgz")
            time.sleep(1)
    finally:
        store.stop()
        shutil.rmtree(work, ignore_errors=True)
    print(f"{a.size} MiB to {a.store}, parts doubling every {a.growth}:")
    print("| --memory-limit | largest part | save | save peak RSS | restore | restore peak RSS |")
    print("|---|---|---|---|---|---|")
    for limit, r in results.items():
        print(f"| {limit} | {r['largest_part_mib']:.0f} MiB | {r['save_s']:.1f} s | "
              f"{r['save_rss_mib']:.0f} MiB | {r['restore_s']:.1f} s | "
              f"{r['restore_rss_mib']:.0f} MiB |")
    with open(a.out, "w") as f:
        json.dump({"size_mib": a.size, "store": a.store, "growth": a.growth,
                   "results": results}, f, indent=1)


if __name__ == "__main__":
    main()
