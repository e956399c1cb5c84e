#!/usr/bin/env python3
"""Saves that reuse the previous object (issue 25, docs/reuse.md): bytes sent and time.

    python3 bench/reuse.py [--size MIB] [--change FRACTION] [--stores rgw,moto] [--out FILE]

On the SPEC 5 workload (bench/gen_workload.c, default 1536 MiB: six 256 MiB shards and
small JSON files), for each store, through tests/tools/faultproxy.py (which counts the
bytes of every request body, so "sent" is what crossed the wire to the store):

  full       ckptfs put TREE s3://bench/KEY            (the first save)
  reuse      FRACTION of every shard rewritten in place (one contiguous stretch per
             shard, as updated tensors are), then ckptfs put TREE s3://bench/KEY again:
             the unchanged members are copied inside the store (UploadPartCopy)
  baseline   the same changed TREE put to a new key: what a save without reuse sends
  retry      the next attempt of a task: a mount with --src s3://bench/KEY (the full
             save's object, before the change) and a new --dest; `cp -a prev/. save/`,
             the same change made in save/, then touch .save: what it copies from --src

and the ratios reuse/baseline of bytes sent and of time. Stores: rgw (Ceph's radosgw,
tests/tools/rgw-s3) and moto (tests/tools/moto-s3, signatures checked). Needs the build,
boto3, and for rgw ceph-mon/ceph-osd/radosgw.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run as R  # noqa: E402  (workload, sh, TOOLS, BIN)

BUCKET = "bench"


class Store:
    def __init__(self, kind, work):
        self.kind = kind
        self.dir = os.path.join(work, kind)
        tool = {"rgw": "rgw-s3", "moto": "moto-s3"}[kind]
        args = [os.path.join(R.TOOLS, tool), "start", self.dir] + (["--auth"] if kind == "moto"
                                                                   else [])
        env = dict(os.environ, MEMSTORE_BYTES=str(12 << 30))
        out = R.sh(args, capture_output=True, text=True, env=env)
        kv = dict(line.split("=", 1) for line in out.stdout.split())
        self.port = int(kv["PORT"])
        self.keys = (kv["AWS_ACCESS_KEY_ID"], kv["AWS_SECRET_ACCESS_KEY"])
        import boto3
        boto3.client("s3", endpoint_url=f"http://127.0.0.1:{self.port}", region_name="us-east-1",
                     aws_access_key_id=self.keys[0],
                     aws_secret_access_key=self.keys[1]).create_bucket(Bucket=BUCKET)
        self.proxy = subprocess.Popen(
            [sys.executable, os.path.join(R.TOOLS, "faultproxy.py"), "--upstream", str(self.port),
             "--plan", "", "--log", os.path.join(work, kind + "-proxy.log")],
            stdout=subprocess.PIPE, text=True)
        self.proxy_port = int(self.proxy.stdout.readline())

    def env(self):
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(AWS_ENDPOINT_URL=f"http://127.0.0.1:{self.proxy_port}",
                   AWS_ACCESS_KEY_ID=self.keys[0], AWS_SECRET_ACCESS_KEY=self.keys[1],
                   AWS_REGION="us-east-1", AWS_EC2_METADATA_DISABLED="true")
        return env

    def control(self, method, path):
        import http.client
        c = http.client.HTTPConnection("127.0.0.1", self.proxy_port, timeout=30)
        c.request(method, path)
        data = c.getresponse().read()
        c.close()
        return data

    def sent(self):
        """Bytes of request bodies sent to the store since the last call."""
        log = self.control("GET", "/__fault/log").decode()
        self.control("PUT", "/__fault/reset")
        recs = [json.loads(line) for line in log.splitlines() if line.strip()]
        return sum(r["bytes_in"] for r in recs)

    def stop(self):
        self.proxy.kill()
        tool = {"rgw": "rgw-s3", "moto": "moto-s3"}[self.kind]
        subprocess.run([os.path.join(R.TOOLS, tool), "stop", self.dir])


def put(store, tree, key):
    t0 = time.monotonic()
    r = subprocess.run([R.BIN, "put", tree, f"s3://{BUCKET}/{key}"], env=store.env(),
                       capture_output=True, text=True)
    secs = time.monotonic() - t0
    if r.returncode != 0:
        raise SystemExit(f"ckptfs put failed: {r.stderr}")
    return secs, store.sent(), r.stderr.strip().splitlines()[-1]


def change(tree, fraction):
    """Rewrites a contiguous fraction of every file of 1 MiB or more, in its middle."""
    changed = 0
    for p, _, fs in os.walk(tree):
        for f in fs:
            path = os.path.join(p, f)
            size = os.path.getsize(path)
            if size < (1 << 20):
                continue
            n = int(size * fraction)
            with open(path, "r+b") as fh:
                fh.seek((size - n) // 2)
                fh.write(os.urandom(n))
            changed += n
    return changed


def retry(store, work, fraction):
    """A mount of the next attempt (--src the first object, copied before the change),
    cp -a prev/. save/, the change in save/, a save: (seconds, bytes sent, .status last)."""
    m = R.Mount(work, f"s3://{BUCKET}/attempt-2.tgz", srcs=[f"s3://{BUCKET}/first.tgz"],
                env=store.env())
    try:
        R.sh(["cp", "-a", os.path.join(m.mnt, "prev") + "/.", os.path.join(m.mnt, "save")])
        change(os.path.join(m.mnt, "save"), fraction)
        store.sent()  # what the restore and the copy-in sent does not count
        t0 = time.monotonic()
        R.sh(["touch", os.path.join(m.mnt, ".save")])
        secs = time.monotonic() - t0
        return secs, store.sent(), m.status()["save"]["last"]
    finally:
        m.unmount()


def client(store):
    import boto3
    return boto3.client("s3", endpoint_url=f"http://127.0.0.1:{store.port}",
                        region_name="us-east-1", aws_access_key_id=store.keys[0],
                        aws_secret_access_key=store.keys[1])


def bench_store(kind, work, data, fraction):
    tree = os.path.join(work, "tree-" + kind)
    shutil.rmtree(tree, ignore_errors=True)
    R.sh(["cp", "-a", data + "/.", tree])
    store = Store(kind, work)
    try:
        full = put(store, tree, "ck.tgz")
        s3 = client(store)
        s3.copy({"Bucket": BUCKET, "Key": "ck.tgz"}, BUCKET, "first.tgz")  # for retry
        changed = change(tree, fraction)
        reuse = put(store, tree, "ck.tgz")
        base = put(store, tree, "new.tgz")
        s3.delete_object(Bucket=BUCKET, Key="new.tgz")  # room in the store's memory
        nxt = retry(store, work, fraction)
    finally:
        store.stop()
        shutil.rmtree(tree, ignore_errors=True)
    return {"full": full[:2], "reuse": reuse[:2], "baseline": base[:2], "retry": nxt[:2],
            "changed": changed, "reuse_line": reuse[2], "retry_last": nxt[2]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=1536)
    ap.add_argument("--change", type=float, default=0.10)
    ap.add_argument("--stores", default="rgw,moto")
    ap.add_argument("--out")
    a = ap.parse_args()
    _, data = R.workload(a.size)
    work = tempfile.mkdtemp(prefix="ckbench-reuse-", dir=os.environ.get("CKBENCH_DIR", "/var/tmp"))
    results = {}
    try:
        for kind in a.stores.split(","):
            results[kind] = r = bench_store(kind, work, data, a.change)
            print(f"{kind}: {r['reuse_line']}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"\n{a.size} MiB, {a.change:.0%} of every shard rewritten\n")
    print("| store | full save | same tree, new key | reusing save | sent / new key "
          "| time / new key | retry (cp -a prev/. save/) | sent / new key | time / new key |")
    print("|---|---|---|---|---|---|---|---|---|")
    for kind, r in results.items():
        (tf, bf), (tr, br), (tb, bb), (tn, bn) = r["full"], r["reuse"], r["baseline"], r["retry"]
        print(f"| {kind} | {tf:.1f} s, {bf / 1e6:.0f} MB | {tb:.1f} s, {bb / 1e6:.0f} MB "
              f"| {tr:.1f} s, {br / 1e6:.0f} MB | **{br / bb:.3f}** | **{tr / tb:.2f}x** "
              f"| {tn:.1f} s, {bn / 1e6:.0f} MB | **{bn / bb:.3f}** | **{tn / tb:.2f}x** |")
    if a.out:
        with open(a.out, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
