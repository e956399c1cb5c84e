"""kill -9 of the daemon at random points (issue 5, SPEC 4 and 7): while a program writes,
while a save waits for writers (before the snapshot), while it archives (compression and
upload) and while it commits, for file://, http:// (nginx), s3:// (moto, radosgw), gs://
(fake_gcs.py) and az:// (Azurite). After each kill:
  - the remote object is byte for byte the old one or a complete new one (which must be
    exactly the tree at the snapshot), never a partial one;
  - S3 and GCS have no multipart upload left open once the restarted daemon has saved;
  - a restart with the same --cache-dir shows the same save/ (nothing lost) and saves it.

Kill delays are random (seeded: CK_TRUST_SEED); the checks hold for any delay."""
import hashlib
import os
import random
import subprocess
import tarfile
import threading
import time
import unittest

from ckfs import Mount, MountTest, Nginx, tree, wait_for
from test_s3 import BUCKET, Moto, Rgw
from test_trust_model import object_state

MIB = 1 << 20


def sha(b):
    return hashlib.sha256(b).hexdigest()


class Backend:
    """One destination: uri, env for the daemon, and a way to read the object."""

    def __init__(self, test, kind):
        self.kind = kind
        self.env = None
        if kind == "file":
            self.path = test.path("dest", "ck.tgz")
            self.uri = "file://" + self.path
        elif kind == "http":
            self.ng = Nginx(test.base)
            test.addCleanup(self.ng.stop)
            self.uri = f"{self.ng.url}/ck/obj.tgz"
            self.path = os.path.join(self.ng.data, "ck", "obj.tgz")
        elif kind == "gcs":
            from test_gcs import BUCKET as GBUCKET, FakeGcs, gcs_env
            self.gcs = FakeGcs(test.base)
            test.addCleanup(self.gcs.stop)
            self.uri = f"gs://{GBUCKET}/run/ck"
            self.env = gcs_env(GOOGLE_APPLICATION_CREDENTIALS=self.gcs.sa_file(),
                               CKPTFS_GCS_ENDPOINT=self.gcs.url, CKPTFS_GCS_PART_SIZE="5M",
                               CKPTFS_GCS_CONCURRENCY="2")
        elif kind == "azure":
            from test_azure import ACCOUNT, CONTAINER, Azurite, az_env, azblob
            self.az = Azurite(test.base)
            test.addCleanup(self.az.stop)
            azblob.create_container(self.az.port, CONTAINER)
            self.uri = f"az://{CONTAINER}/run/ck"
            conn = (f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};"
                    f"AccountKey={azblob.KEY};BlobEndpoint=http://127.0.0.1:{self.az.port}/"
                    f"{ACCOUNT};")
            self.env = az_env(AZURE_STORAGE_CONNECTION_STRING=conn,
                              CKPTFS_AZURE_BLOCK_SIZE="4M", CKPTFS_AZURE_CONCURRENCY="2")
        elif kind == "rgw":  # radosgw, shared by the tests of this process
            self.moto = Rgw.shared()
            self.s3 = self.moto.client()
            self.bucket = self.moto.bucket()
        else:
            self.moto = Moto(test.base)
            test.addCleanup(self.moto.stop)
            self.s3 = self.moto.client()
            self.bucket = BUCKET
            self.s3.create_bucket(Bucket=BUCKET)
        if kind in ("s3", "rgw"):
            self.uri = f"s3://{self.bucket}/run/ck"
            self.env = self.moto.env(CKPTFS_S3_PART_SIZE="5M", CKPTFS_S3_CONCURRENCY="2")

    def read(self):
        """The object's bytes, or None if there is none."""
        if self.kind in ("file", "http"):
            if not os.path.exists(self.path):
                return None
            with open(self.path, "rb") as f:
                return f.read()
        if self.kind == "gcs":
            import urllib.error
            try:
                return self.gcs.object("run/ck")
            except urllib.error.HTTPError as e:
                if e.code == 404:
                    return None
                raise
        if self.kind == "azure":
            from test_azure import CONTAINER, azblob
            if not azblob.blob_exists(self.az.port, CONTAINER, "run/ck"):
                return None
            return azblob.get_blob(self.az.port, CONTAINER, "run/ck")
        try:
            return self.s3.get_object(Bucket=self.bucket, Key="run/ck")["Body"].read()
        except self.s3.exceptions.NoSuchKey:
            return None

    def open_uploads(self):
        """The key's open multipart uploads (S3, GCS; Azure has none to leave: blocks
        never committed are dropped by the next commit)."""
        if self.kind == "gcs":
            return self.gcs.state()["uploads"]
        if self.kind not in ("s3", "rgw"):
            return []
        return self.s3.list_multipart_uploads(Bucket=self.bucket).get("Uploads", [])


def object_tree(data, tmp):
    """{rel: (kind, mode, mtime, sha256|target)} of an object's bytes (tar.gz)."""
    with open(tmp, "wb") as f:
        f.write(data)
    return object_state(tmp)


class CrashTest(MountTest):
    def setUp(self):
        super().setUp()
        self.seed = int(os.environ.get("CK_TRUST_SEED") or random.randrange(1 << 32))
        self.rng = random.Random(self.seed)
        self.cache = os.path.join(self.base, "cache")
        self.n = 0
        self.leftover_uploads = 0

    def mount_b(self, b, **kw):
        self.n += 1
        return self.mount(b.uri, cache=self.cache, name=f"m{self.n}", env=b.env,
                          extra=["--compress", "gzip-6", "--no-save-on-unmount"], **kw)

    def fill(self, root, gen):
        """Generation gen of the tree: a big mostly incompressible file, small files."""
        rng = random.Random(self.seed * 31 + gen)
        os.makedirs(os.path.join(root, "sub"), exist_ok=True)
        with open(os.path.join(root, "weights.bin"), "wb") as f:
            f.write(rng.randbytes(12 * MIB) + bytes(4 * MIB))
        for i in range(20):
            with open(os.path.join(root, "sub", f"f{i}"), "wb") as f:
                f.write(f"gen {gen} file {i}\n".encode() * (i + 1))
        with open(os.path.join(root, "step"), "w") as f:
            f.write(str(gen))

    def check_old_or_new(self, b, old, new_tree, what):
        got = b.read()
        self.assertIsNotNone(got, f"{what}: the object vanished")
        if got == old:
            return "old"
        state = object_tree(got, os.path.join(self.base, "got.tgz"))
        self.assertEqual(state, new_tree, f"{what}: the object is neither the old one nor "
                         f"the complete new one (seed {self.seed})")
        return "new"

    def crash_cycle(self, b, phase, until_upload=False):
        """Save generation 1, write generation 2, ask for a save, kill -9 in phase,
        restart on the same cache, check, save again, check."""
        m = self.mount_b(b)
        self.fill(m.save, 1)
        self.assertEqual(m.touch_save(), 0, m.logtext())
        old = b.read()
        self.fill(m.save, 2)
        want_live = tree(m.save)
        hold = None
        if phase == "waiting_writers":
            hold = open(os.path.join(m.save, "held-open"), "wb")  # the save waits for it
            hold.write(b"half")
            hold.flush()
        new_tree = None
        # async returns at the snapshot; while the save waits for held-open it blocks
        threading.Thread(target=lambda: subprocess.run(f"echo async > {m.mnt}/.save",
                                                       shell=True)).start()
        target = phase

        def in_phase():
            cur = m.status()["save"]["current"]
            last = m.status()["save"]["last"]
            return (cur is not None and cur["phase"] == target) or \
                (last is not None and last["generation"] >= 2)
        wait_for(in_phase, 60, f"phase {target}")
        if phase == "archiving" and until_upload:
            wait_for(lambda: b.open_uploads(), 60, "a multipart upload in flight")
        elif phase == "archiving":
            time.sleep(self.rng.uniform(0, 0.5))
        m.kill()
        if hold:
            try:
                hold.close()
            except OSError:
                pass
            with open(os.path.join(self.cache, "save", "held-open"), "rb") as f:
                self.assertEqual(f.read(), b"half", "a write that returned was lost")
            want_live = None  # held-open is in save/ now
        # the snapshot is the tree that was asked for (held-open never gets archived
        # half-written: the save waited for it and was killed while waiting)
        live_now = os.path.join(self.base, "expect")
        new_tree = object_tree_of_dir(self.cache, live_now)
        if phase == "waiting_writers":
            new_tree = None
        res = self.check_old_or_new(b, old, new_tree, f"{b.kind} killed in {phase}") \
            if new_tree is not None else self.check_is_old(b, old, phase)
        # restart on the same cache dir: save/ re-attaches with nothing lost
        m2 = self.mount_b(b)
        got_live = tree(m2.save)
        if want_live is not None:
            self.assertEqual(got_live, want_live, "save/ changed across the crash")
        if res == "old":  # else the restart would believe save/ is saved and skip it
            self.assertTrue(m2.status()["save"]["dirty"], "unsaved changes look saved")
        self.assertEqual(m2.touch_save(), 0, m2.logtext())
        final = object_tree(b.read(), os.path.join(self.base, "final.tgz"))
        self.assertEqual(final, object_tree_of_dir(self.cache, live_now + "2"))
        self.leftover_uploads += len(b.open_uploads())
        m2.unmount()
        return res

    def check_is_old(self, b, old, phase):
        self.assertEqual(sha(b.read() or b""), sha(old), f"{b.kind} killed in {phase}: "
                         "the object changed before the snapshot was even taken")
        return "old"

    def run_backend(self, kind):
        b = Backend(self, kind)
        seen = {}
        for phase in ("waiting_writers", "archiving", "committing"):
            seen[phase] = self.crash_cycle(b, phase)
        print(f"\n{kind} (seed {self.seed}): {seen}")

    def test_kill_file(self):
        self.run_backend("file")

    def test_kill_http(self):
        self.run_backend("http")

    def test_kill_s3(self):
        self.run_backend("s3")

    def test_kill_rgw(self):
        self.run_backend("rgw")

    def test_kill_gcs(self):
        self.run_backend("gcs")

    def test_kill_azure(self):
        self.run_backend("azure")

    def test_kill_gcs_leaves_no_open_upload(self):
        """As on S3: the restarted daemon's next save sweeps the killed one's upload."""
        b = Backend(self, "gcs")
        self.crash_cycle(b, "archiving", until_upload=True)
        self.assertEqual(self.leftover_uploads, 0, "a multipart upload was left open")

    def test_kill_s3_leaves_no_open_upload(self):
        """A daemon killed mid-multipart leaves its upload open; the restarted daemon's
        next save lists the key's uploads and aborts the stale one."""
        b = Backend(self, "s3")
        self.crash_cycle(b, "archiving", until_upload=True)
        self.assertEqual(self.leftover_uploads, 0, "a multipart upload was left open")

    def test_kill_while_writing(self):
        """Every write() that returned survives kill -9 and the restart."""
        b = Backend(self, "file")
        m = self.mount_b(b)
        done = []
        stop = threading.Event()

        def writer():
            try:
                with open(os.path.join(m.save, "log.bin"), "wb", buffering=0) as f:
                    i = 0
                    while not stop.is_set():
                        f.write(bytes([i % 251]) * 65536)
                        done.append(i)
                        i += 1
            except OSError:
                pass
        th = threading.Thread(target=writer)
        th.start()
        wait_for(lambda: len(done) > 20, 30, "writes")
        time.sleep(self.rng.uniform(0, 0.3))
        m.kill()
        stop.set()
        th.join()
        n = len(done)
        with open(os.path.join(self.cache, "save", "log.bin"), "rb") as f:
            data = f.read()
        self.assertGreaterEqual(len(data), n * 65536, "a write that returned was lost")
        for i in range(n):
            self.assertEqual(data[i * 65536:(i + 1) * 65536], bytes([i % 251]) * 65536)
        m2 = self.mount_b(b)
        with open(os.path.join(m2.save, "log.bin"), "rb") as f:
            self.assertEqual(f.read(), data)
        self.assertEqual(m2.touch_save(), 0, m2.logtext())
        self.assertEqual(object_tree(b.read(), os.path.join(self.base, "o.tgz"))["log.bin"][3],
                         sha(data))


def object_tree_of_dir(cache, scratch):
    """What a save of cache/save would hold: pack it with Python's tarfile, read it back
    the same way as an object (modes, mtimes, contents, link targets)."""
    path = scratch + ".tar"
    root = os.path.join(cache, "save")
    with tarfile.open(path, "w") as t:
        for name in sorted(os.listdir(root)):
            t.add(os.path.join(root, name), arcname=name)
    return object_state(path)
