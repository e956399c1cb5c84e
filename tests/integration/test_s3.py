"""The s3:// backend end to end: a real mount saving to and restoring from moto_server in
signature-checking mode on 127.0.0.1 (tests/tools/moto-s3 --auth), with the fault proxy in
front of it for failed saves. Objects are checked from outside with boto3 and tarfile.
Every test runs twice: on moto (S3Test) and on Ceph's radosgw (RgwS3Test, tests/tools/rgw-s3),
the S3 implementation real sites run."""
import atexit
import base64
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import threading
import urllib.parse
import zlib

from ckfs import BIN, TOOLS, FaultProxy, MountTest, make_sample_tree, tree, wait_for
from test_roundtrip import extract_python

BUCKET = "ckit"


class Moto:
    """moto_server with auth on 127.0.0.1 and an IAM user allowed everything."""

    def __init__(self, base):
        self.dir = os.path.join(base, "moto")
        out = subprocess.run([os.path.join(TOOLS, "moto-s3"), "start", self.dir, "--auth"],
                             capture_output=True, text=True)
        if out.returncode != 0:
            raise AssertionError(f"moto-s3 start failed: {out.stderr}")
        kv = dict(line.split("=", 1) for line in out.stdout.split())
        self.port = int(kv["PORT"])
        self.url = f"http://127.0.0.1:{self.port}"
        self.keys = (kv["AWS_ACCESS_KEY_ID"], kv["AWS_SECRET_ACCESS_KEY"])

    def client(self):
        import boto3
        return boto3.client("s3", endpoint_url=self.url, region_name="us-east-1",
                            aws_access_key_id=self.keys[0], aws_secret_access_key=self.keys[1])

    def env(self, endpoint=None, **extra):
        """The daemon's environment: static keys of the IAM user, the endpoint override."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "FLYTE_AWS_"))}
        env.update(AWS_ENDPOINT_URL=endpoint or self.url, AWS_ACCESS_KEY_ID=self.keys[0],
                   AWS_SECRET_ACCESS_KEY=self.keys[1], AWS_REGION="us-east-1",
                   AWS_EC2_METADATA_DISABLED="true")
        env.update(extra)
        return env

    def stop(self):
        subprocess.run([os.path.join(TOOLS, "moto-s3"), "stop", self.dir])


class Rgw(Moto):
    """Ceph's radosgw on 127.0.0.1 (tests/tools/rgw-s3): one per test process, started on
    first use (a one-node cluster takes about 15 s to start) and stopped at exit; tests keep
    apart by using buckets of their own (Rgw.bucket)."""

    _shared = None
    _lock = threading.Lock()
    _buckets = 0

    def __init__(self, d):
        self.dir = d
        out = subprocess.run([os.path.join(TOOLS, "rgw-s3"), "start", d],
                             capture_output=True, text=True)
        if out.returncode != 0:
            raise AssertionError(f"rgw-s3 start failed: {out.stderr}")
        kv = dict(line.split("=", 1) for line in out.stdout.split())
        self.port = int(kv["PORT"])
        self.url = f"http://127.0.0.1:{self.port}"
        self.keys = (kv["AWS_ACCESS_KEY_ID"], kv["AWS_SECRET_ACCESS_KEY"])

    @classmethod
    def shared(cls):
        with cls._lock:
            if cls._shared is None:
                d = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"ckit-rgw-{os.getpid()}")
                cls._shared = cls(d)
                atexit.register(cls._shared.stop)
            return cls._shared

    def bucket(self):
        """A new, empty bucket."""
        with Rgw._lock:
            Rgw._buckets += 1
            name = f"ckit-{Rgw._buckets}"
        self.client().create_bucket(Bucket=name)
        return name

    def stop(self):
        subprocess.run([os.path.join(TOOLS, "rgw-s3"), "stop", self.dir])
        shutil.rmtree(self.dir, ignore_errors=True)


class S3Test(MountTest):
    def start_server(self):
        """The server and the bucket of this test: a moto of its own, bucket BUCKET."""
        server = Moto(self.base)
        self.addCleanup(server.stop)
        server.client().create_bucket(Bucket=BUCKET)
        return server, BUCKET

    def setUp(self):
        super().setUp()
        self.moto, self.bucket = self.start_server()
        self.s3 = self.moto.client()
        self.src = os.path.dirname(self.path("src", "x"))
        make_sample_tree(self.src)

    def proxy(self, plan=""):
        p = FaultProxy(self.base, self.moto.port, plan)
        self.addCleanup(p.stop)
        return p

    def save(self, m, rc_expected=0):
        shutil.copytree(self.src, m.save, symlinks=True, dirs_exist_ok=True)
        rc = m.touch_save()
        self.assertEqual(rc, rc_expected, m.logtext())

    def object(self, key):
        return self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()

    def check_object(self, key, want):
        """The object read with boto3 extracts with Python's tarfile to want."""
        arc = self.path("dl", key.replace("/", "_"))
        with open(arc, "wb") as f:
            f.write(self.object(key))
        out = os.path.dirname(self.path("out-" + key.replace("/", "_"), "x"))
        extract_python(arc, out)
        self.assertEqual(tree(out), want)

    def open_uploads(self):
        return self.s3.list_multipart_uploads(Bucket=self.bucket).get("Uploads", [])

    def test_small_and_large_round_trip(self):
        uri = f"s3://{self.bucket}/runs/1/_flytecheckpoints"
        proxy = self.proxy()
        env = self.moto.env(proxy.url, CKPTFS_S3_PART_SIZE="5M", CKPTFS_S3_CONCURRENCY="4")
        # Small: one PUT.
        m = self.mount(uri, env=env, name="m1")
        self.save(m)
        # one PUT for the object, then the ListMultipartUploads sweep for leftovers of an
        # interrupted earlier save (s3_sweep.c, ck_mpu_sweep)
        self.assertEqual([r["method"] for r in proxy.records()], ["PUT", "GET"])
        self.check_object("runs/1/_flytecheckpoints", tree(self.src))
        # Large (incompressible 26 MiB): a multipart upload with parts in flight together.
        # CreateMultipartUpload passes; the proxy holds the next three requests (parts)
        # until all three wait there at once, which only happens if ckptfs sends them in
        # parallel (one at a time, the first would wait alone until the hold times out).
        with open(os.path.join(self.src, "weights.bin"), "wb") as f:
            f.write(os.urandom(26 << 20))
        shutil.copy2(os.path.join(self.src, "weights.bin"), m.save)
        # HEAD, the index's GET and HEAD again (the first save's members may be reused),
        # then CreateMultipartUpload pass
        proxy.set_plan("pass*4,hold=3*3")
        self.assertEqual(m.touch_save(), 0, m.logtext())
        m.unmount()
        want = tree(self.src)
        self.check_object("runs/1/_flytecheckpoints", want)
        parts = [r for r in proxy.records() if r["method"] == "PUT" and r["bytes_in"] >= 5 << 20]
        self.assertGreaterEqual(len(parts), 5)
        held = [r for r in proxy.records() if "held" in r]
        self.assertEqual(len(held), 3, held)
        self.assertTrue(all(r in parts for r in held), f"not all held requests are parts: {held}")
        self.assertTrue(all(r["held"] for r in held), f"parts were not uploaded in parallel: {held}")
        self.assertEqual(self.open_uploads(), [])
        # Restore through s3:// into prev/.
        m2 = self.mount(self.path("dest", "next"), [uri], env=env, name="m2")
        self.assertEqual(tree(m2.prev), want)
        self.assertEqual(m2.status()["prev"]["kind"], "tar")

    def peak_rss_mib(self, m):
        with open(f"/proc/{m.proc.pid}/status") as f:
            return [int(line.split()[1]) for line in f if line.startswith("VmHWM:")][0] / 1024

    def growing_parts(self, **more):
        """A proxy, and the environment of an upload through it whose parts start at 5 MiB
        and double every 2 parts (the test knob)."""
        proxy = self.proxy()
        return proxy, self.moto.env(proxy.url, CKPTFS_S3_PART_SIZE="5M",
                                    CKPTFS_S3_CONCURRENCY="4", CKPTFS_PART_GROWTH="2", **more)

    @staticmethod
    def parts_sent(proxy):
        """The sizes of the parts of 5 MiB or more that went through proxy, sorted."""
        return sorted(r["bytes_in"] for r in proxy.records()
                      if r["method"] == "PUT" and r["bytes_in"] >= 5 << 20)

    def save_growing_parts(self, name, memory_limit, blob):
        """blob saved by a mount with growing parts (growing_parts): the part sizes sent and
        the daemon's peak RSS."""
        proxy, env = self.growing_parts()
        key = f"runs/{name}/ckpt"
        m = self.mount(f"s3://{self.bucket}/{key}", env=env, name=name,
                       extra=["--memory-limit", memory_limit, "--compress", "store"])
        with open(os.path.join(m.save, "weights.bin"), "wb") as f:
            f.write(blob)
        self.assertEqual(m.touch_save(), 0, m.logtext())
        rss = self.peak_rss_mib(m)
        log = m.logtext()
        m.unmount()
        return key, self.parts_sent(proxy), rss, log

    def test_large_parts_go_through_the_cache_disk_under_the_memory_limit(self):
        # Issue 26: parts over half the part memory (--memory-limit / 2) are spooled to the
        # cache disk and sent from there, so the daemon's memory does not grow with them.
        blob = os.urandom(100 << 20)
        key, parts, rss, log = self.save_growing_parts("small", "32M", blob)
        self.assertGreaterEqual(parts[-1], 30 << 20, parts)  # the last of a 40 MiB buffer
        self.assertIn("go through spool files", log)
        want = {"weights.bin": ("file", None, None, blob)}
        got = {k: (v[0], None, None, v[3]) for k, v in self.saved_tree(key).items()}
        self.assertEqual(got, want)
        # the same save with room for every part in memory: its peak is higher by about
        # the parts it holds (buffers of 20 and 40 MiB)
        _, parts_mem, rss_mem, log_mem = self.save_growing_parts("large", "1G", blob)
        self.assertEqual(parts_mem[:-1], parts[:-1])  # the last: the tar header's mtime
        self.assertNotIn("go through spool files", log_mem)
        self.assertLess(rss + 40, rss_mem, f"peak RSS {rss:.0f} MiB spooled, "
                        f"{rss_mem:.0f} MiB in memory")
        self.assertEqual(self.open_uploads(), [])

    def put_growing_parts(self, name, memory_limit, src):
        """ckptfs put of src with parts growing as in save_growing_parts: the part sizes
        sent, the process's peak RSS (MiB) and its log."""
        proxy, env = self.growing_parts(CKPTFS_DEBUG="1")
        key = f"runs/{name}/ckpt"
        peak = ("import resource, subprocess, sys; r = subprocess.run(sys.argv[1:]); "
                "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); "
                "sys.exit(r.returncode)")
        out = subprocess.run([sys.executable, "-c", peak, BIN, "put", "--compress", "store",
                              "--memory-limit", memory_limit, src, f"s3://{self.bucket}/{key}"],
                             env=env, capture_output=True, text=True)
        self.assertEqual(out.returncode, 0, out.stderr[-3000:])
        return key, self.parts_sent(proxy), int(out.stdout) / 1024, out.stderr

    def test_put_spools_large_parts_under_its_memory_limit(self):
        # Issue 26: `ckptfs put` keeps a mount's memory budget (--memory-limit, 256M by
        # default): parts over half the part memory go through nameless files in $TMPDIR.
        src = os.path.dirname(self.path("put-src", "x"))
        blob = os.urandom(100 << 20)
        open(os.path.join(src, "weights.bin"), "wb").write(blob)
        key, parts, rss, log = self.put_growing_parts("put-small", "32M", src)
        self.assertGreaterEqual(parts[-1], 30 << 20, parts)
        self.assertIn("go through spool files in", log)
        got = {k: v[3] for k, v in self.saved_tree(key).items()}
        self.assertEqual(got, {"weights.bin": blob})
        _, parts_mem, rss_mem, log_mem = self.put_growing_parts("put-large", "1G", src)
        self.assertEqual(parts_mem, parts)
        self.assertNotIn("go through spool files", log_mem)
        self.assertLess(rss + 40, rss_mem, f"peak RSS {rss:.0f} MiB spooled, "
                        f"{rss_mem:.0f} MiB in memory")
        out = subprocess.run([BIN, "put", "--memory-limit", "8M", src, "/nowhere"],
                             capture_output=True, text=True)
        self.assertEqual(out.returncode, 2)
        self.assertIn("--memory-limit: '8M'", out.stderr)
        self.assertEqual(self.open_uploads(), [])

    def saved_tree(self, key):
        arc = self.path("dl", key.replace("/", "_"))
        with open(arc, "wb") as f:
            f.write(self.object(key))
        out = os.path.dirname(self.path("out-" + key.replace("/", "_"), "x"))
        extract_python(arc, out)
        return tree(out)

    def test_small_tree_exact_round_trip(self):
        # Issue 14.2: a small tree (KiB-MiB files, a symlink, modes, fixed mtimes) and one
        # multipart file saved to signed S3 and restored from it: names, types, modes,
        # mtimes (to the nanosecond) and bytes all as saved (tests/tools/treecmp.py).
        rnd = random.Random(14)
        modes = [0o664, 0o644, 0o755, 0o444, 0o600, 0o666, 0o775, 0o640]
        for i, size in enumerate([0, 5, 3000, 70_000, 1 << 20, (3 << 20) + 17, 4096, 511]):
            p = os.path.join(self.src, f"f{i}.bin")
            open(p, "wb").write(rnd.randbytes(size))
            os.chmod(p, modes[i])
            os.utime(p, ns=(1_600_000_000_123_456_789 + i, 1_600_000_000_123_456_789 + i))
        open(os.path.join(self.src, "weights.bin"), "wb").write(rnd.randbytes(12 << 20))
        os.utime(os.path.join(self.src, "weights.bin"), (1_600_000_100, 1_600_000_100))
        uri = f"s3://{self.bucket}/exact/_flytecheckpoints"
        env = self.moto.env(CKPTFS_S3_PART_SIZE="5M")
        m = self.mount(uri, env=env, name="w")
        subprocess.run(["cp", "-a", self.src + "/.", m.save], check=True)
        self.assertEqual(m.touch_save(), 0, m.logtext())
        m.unmount()
        m2 = self.mount(self.path("dest", "next"), [uri], env=env, name="r")
        out = subprocess.run([sys.executable, os.path.join(TOOLS, "treecmp.py"), self.src,
                              m2.prev, "--mtime-ns"], capture_output=True, text=True)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        self.assertTrue(m2.status()["prev"]["indexed"])
        self.assertEqual(m2.unmount(), 0)

    def parts_stored(self, proxy):
        """The UploadPart requests the store answered 200, by part number (the last of each)."""
        parts = {}
        for r in proxy.records():
            q = urllib.parse.parse_qs(r["query"], keep_blank_values=True)
            if r["method"] == "PUT" and "partNumber" in q and r.get("status") == 200:
                parts[int(q["partNumber"][0])] = r
        return parts

    def test_every_part_and_the_object_carry_their_crc32(self):
        """What the S3 path sends (issue 27): CreateMultipartUpload asks for full-object CRC32
        checksums, every UploadPart carries x-amz-checksum-crc32, the CRC-32 of exactly the
        bytes of the object it became, and CompleteMultipartUpload names the CRC-32 of the
        whole object (all checked against the object read back). moto reports that
        checksum as the object's own (radosgw reports none)."""
        proxy = self.proxy()
        env = self.moto.env(proxy.url, CKPTFS_S3_PART_SIZE="5M", CKPTFS_S3_CONCURRENCY="4")
        with open(os.path.join(self.src, "weights.bin"), "wb") as f:
            f.write(os.urandom(12 << 20))
        m = self.mount(f"s3://{self.bucket}/sums.tgz", env=env)
        self.save(m)

        def b64crc(data):
            return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()
        posts = {}
        for r in proxy.records():
            q = urllib.parse.parse_qs(r["query"], keep_blank_values=True)
            if r["method"] == "POST":
                posts["uploads" if "uploads" in q else "complete"] = r["checksums"]
        parts, obj = self.parts_stored(proxy), self.object("sums.tgz")
        self.assertEqual(posts, {
            "uploads": {"x-amz-checksum-algorithm": "CRC32", "x-amz-checksum-type": "FULL_OBJECT"},
            "complete": {"x-amz-checksum-crc32": b64crc(obj),
                         "x-amz-checksum-type": "FULL_OBJECT"}})
        self.assertEqual(sorted(parts), list(range(1, 4)))  # 5 + 5 + the rest
        off = 0
        for n in sorted(parts):
            piece = obj[off:off + parts[n]["bytes_in"]]
            self.assertEqual(parts[n]["checksums"], {"x-amz-checksum-crc32": b64crc(piece)},
                             f"part {n}")
            off += len(piece)
        self.assertEqual(off, len(obj))
        head = self.s3.head_object(Bucket=self.bucket, Key="sums.tgz", ChecksumMode="ENABLED")
        if "ChecksumCRC32" in head:  # moto
            self.assertEqual((head["ChecksumCRC32"], head["ChecksumType"]),
                             (b64crc(obj), "FULL_OBJECT"))

    def test_a_checksum_mismatch_the_store_reports_fails_the_save(self):
        """A part whose bytes the store checksums otherwise: a 400 BadDigest (S3's answer when
        the checksum sent is not that of the bytes received) is sent again; a store that
        keeps answering so, or that answers 200 naming another CRC-32 than the one sent,
        fails the save with the reason, and the destination keeps the object of the save
        before, with no upload left open. A store that reports another CRC-32 of the whole
        object than the one of the bytes sent (moto reports one; radosgw none) fails the
        save too, unless that object's ETag is not the one Complete made (another writer's
        object replaced ours since)."""
        proxy = self.proxy()
        env = self.moto.env(proxy.url, CKPTFS_S3_PART_SIZE="5M", CKPTFS_S3_CONCURRENCY="4")
        m = self.mount(f"s3://{self.bucket}/bad.tgz", env=env, extra=["--retries", "3"])
        self.save(m)
        part2 = r"^PUT [^ ]*[?&]partNumber=2&"
        cases = [("baddigest", part2, True, None),
                 ("baddigest*inf", part2, False, "BadDigest"),
                 ("badsum", part2, False, "CRC-32 differs")]
        if not isinstance(self.moto, Rgw):  # radosgw reports no checksum to check
            # every HEAD: the save's own before it (the reuse lookup) read no checksum
            cases.append(("badsum*inf", r"^HEAD ", False, "the store's CRC-32 of the object"))
            # another writer's object (another ETag) in the key since our Complete: its
            # checksum says nothing of our bytes, and our save did succeed
            cases.append(("replaced*inf", r"^HEAD ", True, None))
        for plan, match, ok, words in cases:
            with open(os.path.join(m.save, "weights.bin"), "wb") as f:
                f.write(os.urandom(12 << 20))
            before = self.object("bad.tgz")
            proxy._control("PUT", "/__fault/reset")
            proxy.set_plan(plan, match=match)
            rc = m.touch_save()
            proxy.set_plan("")
            last = m.status()["save"]["last"]
            hits = [r for r in proxy.records() if r["action"] != "pass"]
            self.assertTrue(hits, f"{plan}: no request met the fault")
            if ok:
                self.assertEqual((rc, last["result"]), (0, "ok"), last)
                if match == part2:
                    self.assertEqual(self.parts_stored(proxy)[2]["checksums"],
                                     hits[0]["checksums"])
                self.check_object("bad.tgz", tree(m.save))
            else:
                self.assertNotEqual(rc, 0, f"{plan}: a failed save looked like success")
                self.assertEqual(last["result"], "failed", plan)
                self.assertIn(words, last["error"], plan)
                if match == part2:
                    self.assertEqual(self.object("bad.tgz"), before, plan)
            self.assertEqual(self.open_uploads(), [], plan)

    def test_missing_object_is_no_previous_checkpoint(self):
        m = self.mount(self.path("dest", "x"), [f"s3://{self.bucket}/nothing/here"],
                       env=self.moto.env())
        self.assertEqual(os.listdir(m.prev), [])
        self.assertEqual(m.status()["prev"]["kind"], "none")

    def old_object(self, key, env):
        """Saves the sample tree to key; returns the object's bytes."""
        m = self.mount(f"s3://{self.bucket}/{key}", env=env, name="m0")
        self.save(m)
        m.unmount()
        return self.object(key)

    def write_shards(self, m, n, size, seed):
        """n files of size bytes in save/ (random, from seed), fixed mtimes; their bytes."""
        rnd = random.Random(seed)
        out = {}
        for i in range(n):
            data = rnd.randbytes(size)
            p = os.path.join(m.save, f"shard-{i:02d}.bin")
            with open(p, "wb") as f:
                f.write(data)
            os.utime(p, (1_700_000_000 + i, 1_700_000_000 + i))
            out[p] = data
        return out

    def sent(self, proxy):
        """Bytes the proxy saw going to the store (bodies of PUT and POST)."""
        return sum(r["bytes_in"] for r in proxy.records() if r["method"] in ("PUT", "POST"))

    def test_second_save_copies_what_did_not_change(self):
        """docs/reuse.md: 10 shards of 4 MiB, one rewritten: the 36 MiB that did not change
        are copied inside the store (UploadPartCopy), not sent again."""
        uri = f"s3://{self.bucket}/reuse/_flytecheckpoints"
        proxy = self.proxy()
        env = self.moto.env(proxy.url, CKPTFS_S3_PART_SIZE="5M", CKPTFS_S3_CONCURRENCY="4")
        m = self.mount(uri, env=env)
        self.write_shards(m, 10, 4 << 20, 1)
        self.assertEqual(m.touch_save(), 0, m.logtext())
        full = self.sent(proxy)
        self.assertGreater(full, 40 << 20)
        proxy._control("PUT", "/__fault/reset")
        p = os.path.join(m.save, "shard-05.bin")
        with open(p, "wb") as f:
            f.write(os.urandom(4 << 20))
        os.utime(p, (1_700_000_100, 1_700_000_100))
        self.assertEqual(m.touch_save(), 0, m.logtext())
        last = m.status()["save"]["last"]
        sent = self.sent(proxy)
        self.assertGreaterEqual(last["reused_bytes"], 32 << 20, last)
        # not even read (save/known.h): a shard whose run of copied members reaches 8 MiB
        # with it; shard-00 and shard-06 start runs, shard-05 changed
        self.assertEqual(last["files"]["not_read"], 7, last)
        self.assertLess(sent, full * 0.2, f"sent {sent} of {full} bytes again")
        copies = [r for r in proxy.records() if r["method"] == "PUT" and r["bytes_in"] == 0]
        self.assertTrue(copies, "no UploadPartCopy went to the store")
        want = tree(m.save)
        m.unmount()
        self.check_object("reuse/_flytecheckpoints", want)
        self.assertEqual(self.open_uploads(), [])

    def test_first_save_of_a_retry_copies_from_its_src(self):
        """docs/reuse.md: a retried attempt (new --dest key, the previous attempt's object
        as --src) copies what it restored and kept from the --src object; the new object
        stands alone. A --dest on another store sends every byte and says why."""
        k1, k2 = "attempt-1/_flytecheckpoints", "attempt-2/_flytecheckpoints"
        proxy = self.proxy()
        env = self.moto.env(proxy.url, CKPTFS_S3_PART_SIZE="5M", CKPTFS_S3_CONCURRENCY="4")
        m1 = self.mount(f"s3://{self.bucket}/{k1}", env=env, name="m1")
        self.write_shards(m1, 6, 4 << 20, 3)
        self.assertEqual(m1.touch_save(), 0, m1.logtext())
        full = self.sent(proxy)
        self.assertEqual(m1.unmount(), 0)
        proxy._control("PUT", "/__fault/reset")
        m2 = self.mount(f"s3://{self.bucket}/{k2}", [f"s3://{self.bucket}/{k1}"], env=env,
                        name="m2")
        subprocess.run(["cp", "-a", m2.prev + "/.", m2.save], check=True)
        with open(os.path.join(m2.save, "step.json"), "wb") as f:
            f.write(b'{"step": 2}')
        self.assertEqual(m2.touch_save(), 0, m2.logtext())
        last = m2.status()["save"]["last"]
        self.assertIsNone(last["reuse_note"], last)
        self.assertGreaterEqual(last["reused_bytes"], 20 << 20, last)
        sent = self.sent(proxy)
        self.assertLess(sent, full * 0.35, f"sent {sent} of {full} bytes again")
        want = tree(m2.save)
        self.assertEqual(m2.unmount(), 0)
        self.s3.delete_object(Bucket=self.bucket, Key=k1)
        self.check_object(k2, want)
        self.assertEqual(self.open_uploads(), [])
        m3 = self.mount(self.path("dest", "local.tgz"), [f"s3://{self.bucket}/{k2}"], env=env,
                        name="m3")
        subprocess.run(["cp", "-a", m3.prev + "/.", m3.save], check=True)
        self.assertEqual(m3.touch_save(), 0, m3.logtext())
        last = m3.status()["save"]["last"]
        self.assertEqual(last["reused_bytes"], 0, last)
        self.assertIn("another store", last["reuse_note"])

    def test_kill_9_while_parts_are_copied(self):
        """kill -9 of the daemon while a reusing save's parts (copied and written) are in
        flight (the first written part and a copied one held at the proxy): the old object
        stays whole; the next daemon on the same cache dir saves the tree and its sweep
        leaves no upload of the killed one open."""
        key = "killed/_flytecheckpoints"
        proxy = self.proxy()
        env = self.moto.env(proxy.url, CKPTFS_S3_PART_SIZE="5M", CKPTFS_S3_CONCURRENCY="4")
        cache = self.path("kcache")
        m = self.mount(f"s3://{self.bucket}/{key}", env=env, cache=cache, name="k1")
        self.write_shards(m, 4, 4 << 20, 4)
        self.assertEqual(m.touch_save(), 0, m.logtext())
        old = self.object(key)
        with open(os.path.join(m.save, "a-config.json"), "wb") as f:
            f.write(b'{"step": 3}')
        proxy._control("PUT", "/__fault/reset")
        proxy.set_plan("pass*6,gate=500*2")  # as in the test below: the first two parts
        t = threading.Thread(target=m.touch_save)
        t.start()
        wait_for(lambda: len([r for r in proxy.records() if r["action"].startswith("gate")]) == 2,
                 30, "two requests at the gate")
        m.kill()
        proxy.release()
        t.join(60)
        self.assertEqual(self.object(key), old, "the old object changed")
        proxy.set_plan("")
        m2 = self.mount(f"s3://{self.bucket}/{key}", env=env, cache=cache, name="k2")
        self.assertTrue(os.path.exists(os.path.join(m2.save, "a-config.json")))
        self.assertEqual(m2.touch_save(), 0, m2.logtext())
        want = tree(m2.save)
        self.assertEqual(m2.unmount(), 0)
        self.check_object(key, want)
        self.assertEqual(self.open_uploads(), [])

    def test_previous_object_replaced_during_the_save_is_saved_in_full(self):
        """The object whose members a save copies is replaced while the copy waits: the
        commit refuses the copied bytes (the source is checked again before Complete) and
        the save is made again without reuse; the object holds exactly the new tree."""
        uri = f"s3://{self.bucket}/replaced/_flytecheckpoints"
        proxy = self.proxy()
        env = self.moto.env(proxy.url, CKPTFS_S3_PART_SIZE="5M", CKPTFS_S3_CONCURRENCY="4")
        m = self.mount(uri, env=env)
        self.write_shards(m, 4, 4 << 20, 2)
        self.assertEqual(m.touch_save(), 0, m.logtext())
        with open(os.path.join(m.save, "a-config.json"), "wb") as f:
            f.write(b'{"step": 2}')
        # the index lookup (HEAD, GET, HEAD), the copy's HEAD of its source, the GET of the
        # range's head that tops up the first part, CreateMultipartUpload; then the first
        # part and the copied part are held at a gate (answered 500, sent again after)
        proxy._control("PUT", "/__fault/reset")
        proxy.set_plan("pass*6,gate=500*2")
        done = []
        t = threading.Thread(target=lambda: done.append(m.touch_save()))
        t.start()
        wait_for(lambda: len([r for r in proxy.records() if r["action"].startswith("gate")]) == 2,
                 30, "two requests at the gate")
        self.s3.put_object(Bucket=self.bucket, Key="replaced/_flytecheckpoints",
                           Body=b"someone else's object")
        proxy.release()
        t.join(120)
        self.assertEqual(done, [0], m.logtext())
        last = m.status()["save"]["last"]
        self.assertEqual(last["reused_bytes"], 0, last)
        self.assertIn("changed during the save", last["reuse_note"])
        self.assertIn("saving again without reusing it", m.logtext())
        want = tree(m.save)
        m.unmount()
        self.check_object("replaced/_flytecheckpoints", want)
        self.assertEqual(self.open_uploads(), [])

    def failed_save(self, key, plan, env_extra):
        proxy = self.proxy()
        env = self.moto.env(proxy.url, CKPTFS_S3_PART_SIZE="5M", **env_extra)
        old = self.old_object(key, env)
        m = self.mount(f"s3://{self.bucket}/{key}", env=env, name="m1")
        with open(os.path.join(self.src, "weights.bin"), "wb") as f:
            f.write(os.urandom(16 << 20))
        proxy.set_plan(plan)
        self.save(m, rc_expected=1)
        last = m.status()["save"]["last"]
        self.assertNotEqual(last["result"], "ok")
        proxy.set_plan("")
        self.assertEqual(hashlib.sha256(self.object(key)).hexdigest(),
                         hashlib.sha256(old).hexdigest(), "the old object changed")
        self.assertEqual(self.open_uploads(), [])
        status = json.dumps(m.status())
        self.assertNotIn(self.moto.keys[1], status)
        m.unmount()
        self.assertNotIn(self.moto.keys[1], m.logtext())
        return last, proxy

    def test_failed_save_403_keeps_old_object(self):
        last, _ = self.failed_save("fail/403", "status=403*inf", {})
        self.assertIn("403", last["error"])

    def test_failed_save_past_retry_budget_aborts_upload(self):
        # One part in flight: CreateMultipartUpload and part 1 pass, part 2 gets 503 until
        # the daemon's retry budget (8 attempts) is spent, then the abort goes through.
        last, proxy = self.failed_save("fail/budget", "pass*2,status=503*8",
                                       {"CKPTFS_S3_CONCURRENCY": "1"})
        self.assertIn("gave up after 8 attempts", last["error"])
        self.assertIn("DELETE", [r["method"] for r in proxy.records()])


class RgwS3Test(S3Test):
    """The same tests on radosgw, and what only a faithful server can show."""

    def start_server(self):
        server = Rgw.shared()
        return server, server.bucket()

    def test_put_spools_large_parts_under_its_memory_limit(self):
        self.skipTest("the part plan and spooling are the client's (part_upload.c): the run "
                      "on moto shows them; on radosgw it would add 20 s to every pass")

    def test_wrong_secret_is_refused_by_signature(self):
        env = self.moto.env(AWS_SECRET_ACCESS_KEY="wrong" + self.moto.keys[1])
        m = self.mount(f"s3://{self.bucket}/denied/ck", env=env)
        self.save(m, rc_expected=1)
        last = m.status()["save"]["last"]
        self.assertIn("403 SignatureDoesNotMatch", last["error"])
        self.assertNotIn(self.moto.keys[1], json.dumps(m.status()))
        self.assertEqual(self.s3.list_objects_v2(Bucket=self.bucket).get("KeyCount"), 0)
