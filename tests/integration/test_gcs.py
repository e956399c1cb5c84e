"""The gs:// backend end to end: a real mount saving to and restoring from
tests/tools/fake_gcs.py (XML API, bearer tokens it issued, a token endpoint that checks
the JWT's RS256 signature with the test key's public half, STS token exchange, the
metadata server), with the fault proxy in front of it. The key pair is made with openssl
for each test and never committed."""
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request

from ckfs import TOOLS, FaultProxy, MountTest, make_sample_tree, tree
from test_roundtrip import extract_python

BUCKET = "ckit"
EMAIL = "ckptfs-test@example.iam.gserviceaccount.com"
AUDIENCE = "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/k"


def read(path):
    with open(path) as f:
        return f.read()


class FakeGcs:
    def __init__(self, base, ttl=3600, name="gcs"):
        self.dir = os.path.join(base, name)
        os.makedirs(self.dir)
        self.key = os.path.join(self.dir, "key.pem")
        self.pub = os.path.join(self.dir, "pub.pem")
        subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt",
                        "rsa_keygen_bits:2048", "-out", self.key], check=True, capture_output=True)
        subprocess.run(["openssl", "pkey", "-in", self.key, "-pubout", "-out", self.pub],
                       check=True, capture_output=True)
        self.subject = os.path.join(self.dir, "subject-token")
        with open(self.subject, "w") as f:
            f.write("eyJhbGciOiJSUzI1NiJ9.k8s-projected-token.sig\n")
        self.proc = subprocess.Popen(
            [sys.executable, os.path.join(TOOLS, "fake_gcs.py"), "--bucket", BUCKET, "--public",
             "pub", "--pubkey", self.pub, "--email", EMAIL, "--subject-token-file", self.subject,
             "--audience", AUDIENCE, "--ttl", str(ttl)], stdout=subprocess.PIPE, text=True)
        self.port = int(self.proc.stdout.readline())
        self.url = f"http://127.0.0.1:{self.port}"

    def sa_file(self, key=None):
        path = os.path.join(self.dir, "sa.json")
        with open(path, "w") as f:
            json.dump({"type": "service_account", "project_id": "p", "private_key_id": "k1",
                       "private_key": read(key or self.key), "client_email": EMAIL,
                       "token_uri": f"{self.url}/token"}, f)
        return path

    def external_file(self):
        path = os.path.join(self.dir, "external.json")
        with open(path, "w") as f:
            json.dump({"type": "external_account", "audience": AUDIENCE,
                       "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
                       "token_url": f"{self.url}/token",
                       "credential_source": {"file": self.subject,
                                             "format": {"type": "text"}}}, f)
        return path

    def state(self):
        with urllib.request.urlopen(f"{self.url}/__fake/state") as r:
            return json.load(r)

    def object(self, key, bucket=BUCKET):
        with urllib.request.urlopen(f"{self.url}/__fake/object/{bucket}/{key}") as r:
            return r.read()

    def stop(self):
        self.proc.kill()
        self.proc.wait()
        self.proc.stdout.close()


def gcs_env(**extra):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("GOOGLE_", "GCE_", "STORAGE_EMULATOR", "CLOUDSDK", "CKPTFS_GCS"))}
    env["HOME"] = "/nonexistent"
    env.update(extra)
    return env


class GcsTest(MountTest):
    def setUp(self):
        super().setUp()
        self.gcs = FakeGcs(self.base)
        self.addCleanup(self.gcs.stop)
        self.src = os.path.dirname(self.path("src", "x"))
        make_sample_tree(self.src)

    def proxy(self, plan=""):
        p = FaultProxy(self.base, self.gcs.port, plan)
        self.addCleanup(p.stop)
        return p

    def sa_env(self, endpoint=None, **extra):
        return gcs_env(GOOGLE_APPLICATION_CREDENTIALS=self.gcs.sa_file(),
                       CKPTFS_GCS_ENDPOINT=endpoint or self.gcs.url, **extra)

    def save(self, m, rc_expected=0):
        shutil.copytree(self.src, m.save, symlinks=True, dirs_exist_ok=True)
        self.assertEqual(m.touch_save(), rc_expected, m.logtext())

    def check_object(self, key, want, bucket=BUCKET):
        arc = self.path("dl", key.replace("/", "_"))
        with open(arc, "wb") as f:
            f.write(self.gcs.object(key, bucket))
        out = os.path.dirname(self.path("out-" + key.replace("/", "_"), "x"))
        extract_python(arc, out)
        self.assertEqual(tree(out), want)

    def test_service_account_small_and_large_round_trip(self):
        uri = f"gs://{BUCKET}/runs/1/_flytecheckpoints"
        proxy = self.proxy()
        env = self.sa_env(proxy.url, CKPTFS_GCS_PART_SIZE="5M", CKPTFS_GCS_CONCURRENCY="4")
        m = self.mount(uri, env=env, name="m1")
        self.save(m)
        # the object, then the sweep's listing of the key's open uploads
        self.assertEqual([r["method"] for r in proxy.records()], ["PUT", "GET"])
        self.check_object("runs/1/_flytecheckpoints", tree(self.src))
        with open(os.path.join(self.src, "weights.bin"), "wb") as f:
            f.write(os.urandom(26 << 20))
        shutil.copy2(os.path.join(self.src, "weights.bin"), m.save)
        # The initiate passes; the proxy holds the next two requests (parts) until both
        # wait there at once: only parts sent in parallel get through before the timeout.
        # (GCS cannot copy byte ranges: no index lookup comes first, docs/reuse.md.)
        proxy.set_plan("pass,hold=2*2")
        self.assertEqual(m.touch_save(), 0, m.logtext())
        m.unmount()
        want = tree(self.src)
        self.check_object("runs/1/_flytecheckpoints", want)
        parts = [r for r in proxy.records() if r["method"] == "PUT" and r["bytes_in"] >= 5 << 20]
        self.assertGreaterEqual(len(parts), 5)
        held = [r for r in proxy.records() if "held" in r]
        self.assertEqual(len(held), 2, held)
        self.assertTrue(all(r in parts for r in held), f"not all held requests are parts: {held}")
        self.assertTrue(all(r["held"] for r in held), f"parts were not uploaded in parallel: {held}")
        self.assertEqual(self.gcs.state()["open_uploads"], 0)
        m2 = self.mount(self.path("dest", "next"), [uri], env=env, name="m2")
        self.assertEqual(tree(m2.prev), want)
        self.assertEqual(m2.status()["prev"]["kind"], "tar")
        self.assertIn("service-account", m.logtext())

    def test_large_parts_are_spooled_under_the_memory_limit(self):
        # Issue 26: parts over --memory-limit / 4 go through the cache disk (part_body.h),
        # each with its Content-MD5 read back from the spool file.
        uri = f"gs://{BUCKET}/runs/1/spooled"
        env = self.sa_env(CKPTFS_GCS_PART_SIZE="5M", CKPTFS_GCS_CONCURRENCY="2",
                          CKPTFS_PART_GROWTH="1")
        m = self.mount(uri, env=env, name="m1", extra=["--memory-limit", "32M"])
        with open(os.path.join(self.src, "weights.bin"), "wb") as f:
            f.write(os.urandom(40 << 20))  # parts of 5, 10, 20 and 5 MiB: two spooled
        self.save(m)
        self.assertIn("go through spool files", m.logtext())
        m.unmount()
        self.check_object("runs/1/spooled", tree(self.src))
        self.assertEqual(self.gcs.state()["open_uploads"], 0)

    def test_restore_resumes_after_a_cut(self):
        with open(os.path.join(self.src, "weights.bin"), "wb") as f:
            f.write(os.urandom(3 << 20))
        proxy = self.proxy()
        env = self.sa_env(proxy.url)
        uri = f"gs://{BUCKET}/cut/ck"
        m = self.mount(uri, env=env, name="m0")
        self.save(m)
        m.unmount()
        # HEAD passes; the next four requests are cut after 100 kB of body: the first GET
        # is always the seek index's tail (256 KiB), the others the data fetches.
        proxy.set_plan("pass,truncate@100000*4")
        m2 = self.mount(self.path("dest", "cut"), [uri], env=env, name="m1")
        self.assertEqual(tree(m2.prev), tree(self.src))
        gets = [r for r in proxy.records() if r["method"] == "GET" and r["path"].endswith("cut/ck")]
        cut = gets[0]
        self.assertTrue(cut["action"].startswith("truncate@100000"), gets)
        start, end = map(int, cut["range"][len("bytes="):].split("-"))
        self.assertGreater(end - start + 1, 100000, cut)  # really cut mid-body
        self.assertIn(f"bytes={start + 100000}-{end}", [g["range"] for g in gets[1:]], gets)

    def test_missing_object_is_no_previous_checkpoint(self):
        m = self.mount(self.path("dest", "x"), [f"gs://{BUCKET}/nothing/here"], env=self.sa_env())
        self.assertEqual(os.listdir(m.prev), [])
        self.assertEqual(m.status()["prev"]["kind"], "none")

    def round_trip(self, env, key, bucket=BUCKET):
        m = self.mount(f"gs://{bucket}/{key}", env=env, name="m-" + key.replace("/", "-"))
        self.save(m)
        m.unmount()
        self.check_object(key, tree(self.src), bucket)
        m2 = self.mount(self.path("dest", key), [f"gs://{bucket}/{key}"], env=env,
                        name="r-" + key.replace("/", "-"))
        self.assertEqual(tree(m2.prev), tree(self.src))
        return m

    def test_external_account_file_source(self):
        env = gcs_env(GOOGLE_APPLICATION_CREDENTIALS=self.gcs.external_file(),
                      CKPTFS_GCS_ENDPOINT=self.gcs.url)
        m = self.round_trip(env, "wif/ck")
        self.assertIn("external-account", m.logtext())

    def test_metadata_server(self):
        env = gcs_env(GCE_METADATA_HOST=f"127.0.0.1:{self.gcs.port}",
                      CKPTFS_GCS_ENDPOINT=self.gcs.url)
        m = self.round_trip(env, "meta/ck")
        self.assertIn("credentials: metadata", m.logtext())

    def test_emulator_host_is_anonymous(self):
        env = gcs_env(STORAGE_EMULATOR_HOST=f"127.0.0.1:{self.gcs.port}")
        self.round_trip(env, "emu/ck", bucket="pub")
        self.assertEqual(self.gcs.state()["tokens"], 0)

    def test_token_refreshed_before_expiry(self):
        self.gcs.stop()
        self.gcs = FakeGcs(self.base, ttl=302, name="gcs-short")
        self.addCleanup(self.gcs.stop)
        env = self.sa_env()
        m = self.mount(f"gs://{BUCKET}/refresh/ck", env=env)
        self.save(m)
        first = self.gcs.state()["tokens"]
        time.sleep(3)  # now under 300 s left: the next request refreshes first
        with open(os.path.join(m.save, "more.txt"), "w") as f:
            f.write("more")
        self.assertEqual(m.touch_save(), 0, m.logtext())
        self.assertGreater(self.gcs.state()["tokens"], first)

    def test_wrong_key_is_refused_by_token_endpoint(self):
        other = os.path.join(self.base, "other.pem")
        subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-out", other], check=True,
                       capture_output=True)
        env = gcs_env(GOOGLE_APPLICATION_CREDENTIALS=self.gcs.sa_file(key=other),
                      CKPTFS_GCS_ENDPOINT=self.gcs.url)
        m = self.mount(f"gs://{BUCKET}/badkey/ck", env=env)
        self.save(m, rc_expected=1)
        err = m.status()["save"]["last"]["error"]
        self.assertIn("token request", err)
        self.assertIn("invalid_grant", err)
        m.unmount()
        pem_line = read(other).splitlines()[1]
        self.assertNotIn(pem_line, m.logtext())

    def test_failed_save_403_keeps_old_object(self):
        proxy = self.proxy()
        env = self.sa_env(proxy.url, CKPTFS_GCS_PART_SIZE="5M", CKPTFS_GCS_CONCURRENCY="1")
        m0 = self.mount(f"gs://{BUCKET}/fail/403", env=env, name="m0")
        self.save(m0)
        m0.unmount()
        old = self.gcs.object("fail/403")
        m = self.mount(f"gs://{BUCKET}/fail/403", env=env, name="m1")
        with open(os.path.join(self.src, "weights.bin"), "wb") as f:
            f.write(os.urandom(16 << 20))
        proxy.set_plan("pass*2,status=403")  # initiate and part 1 pass, part 2 is refused
        self.save(m, rc_expected=1)
        last = m.status()["save"]["last"]
        self.assertIn("403", last["error"])
        proxy.set_plan("")
        self.assertEqual(hashlib.sha256(self.gcs.object("fail/403")).hexdigest(),
                         hashlib.sha256(old).hexdigest(), "the old object changed")
        m.unmount()
        self.assertIn("DELETE", [r["method"] for r in proxy.records()])
        self.assertEqual(self.gcs.state()["open_uploads"], 0)
        self.assertNotIn("ya29.fake", m.logtext())

    def test_stale_uploads_of_the_key_are_swept(self):
        # Uploads left open by earlier daemons (killed mid-save, or a lost initiate reply):
        # more than a listing page (100) of the key's, plus uploads of other keys.
        def initiate(key):
            req = urllib.request.Request(f"{self.gcs.url}/pub/{key}?uploads", method="POST")
            with urllib.request.urlopen(req) as r:
                r.read()
        for _ in range(120):
            initiate("stale/ck")
        for key in ("stale/a", "stale/ck.old", "stale/ck.old", "stale/z"):
            initiate(key)
        proxy = self.proxy()
        env = gcs_env(STORAGE_EMULATOR_HOST=proxy.url)
        m = self.mount("gs://pub/stale/ck", env=env)
        self.save(m)  # a small object: one PUT, then the sweep
        left = sorted(u["key"] for u in self.gcs.state()["uploads"])
        self.assertEqual(left, ["stale/a", "stale/ck.old", "stale/ck.old", "stale/z"])
        recs = proxy.records()
        pages = [r for r in recs if r["method"] == "GET" and r["path"] == "/pub"]
        self.assertEqual(len(pages), 2, pages)  # 100 a page, prefix=stale/ck
        self.assertEqual(sum(r["method"] == "DELETE" for r in recs), 120)
        self.assertIn("aborted a stale multipart upload of gs://pub/stale/ck", m.logtext())
