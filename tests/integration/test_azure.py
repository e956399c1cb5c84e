"""The Azure Blob backend end to end: a real mount saving to and restoring from Azurite
(npm package azurite, which checks Shared Key signatures) on 127.0.0.1, with the fault
proxy in front of it for failed saves, and tests/tools/azbearer.py (Entra ID and IMDS
stand-ins, and a gate that checks the bearer token) for workload and managed identity.
Blobs are checked from outside with tests/tools/azblob.py (its own Shared Key code)."""
import hashlib
import json
import os
import shutil
import subprocess
import sys
import urllib.request

from ckfs import TOOLS, FaultProxy, MountTest, make_sample_tree, tree

sys.path.insert(0, TOOLS)
import azblob  # noqa: E402
from test_roundtrip import extract_python  # noqa: E402

CONTAINER = "ckit"
ACCOUNT = azblob.ACCOUNT


class Azurite:
    def __init__(self, base):
        self.dir = os.path.join(base, "azurite")
        out = subprocess.run([os.path.join(TOOLS, "azurite"), "start", self.dir],
                             capture_output=True, text=True)
        if out.returncode != 0:
            raise AssertionError(f"azurite start failed: {out.stderr}")
        self.port = int(out.stdout.strip().split("=")[1])
        self.url = f"http://127.0.0.1:{self.port}"

    def stop(self):
        subprocess.run([os.path.join(TOOLS, "azurite"), "stop", self.dir])


def az_env(**extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "CKPTFS_AZURE"))}
    # Never reach a real IMDS from a test.
    env["AZURE_POD_IDENTITY_AUTHORITY_HOST"] = "http://127.0.0.1:9"
    env.update(extra)
    return env


class AzureTest(MountTest):
    def setUp(self):
        super().setUp()
        self.az = Azurite(self.base)
        self.addCleanup(self.az.stop)
        azblob.create_container(self.az.port, CONTAINER)
        self.src = os.path.dirname(self.path("src", "x"))
        make_sample_tree(self.src)

    def connstr(self, endpoint=None, key=azblob.KEY):
        return (f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={key};"
                f"BlobEndpoint={endpoint or self.az.url}/{ACCOUNT};")

    def proxy(self, plan=""):
        p = FaultProxy(self.base, self.az.port, plan)
        self.addCleanup(p.stop)
        return p

    def save(self, m, rc_expected=0):
        shutil.copytree(self.src, m.save, symlinks=True, dirs_exist_ok=True)
        self.assertEqual(m.touch_save(), rc_expected, m.logtext())

    def check_blob(self, blob, want):
        arc = self.path("dl", blob.replace("/", "_"))
        with open(arc, "wb") as f:
            f.write(azblob.get_blob(self.az.port, CONTAINER, blob))
        out = os.path.dirname(self.path("out-" + blob.replace("/", "_"), "x"))
        extract_python(arc, out)
        self.assertEqual(tree(out), want)

    def round_trip(self, env, uri, blob, name):
        m = self.mount(uri, env=env, name="m-" + name)
        self.save(m)
        m.unmount()
        self.check_blob(blob, tree(self.src))
        m2 = self.mount(self.path("dest", name), [uri], env=env, name="r-" + name)
        self.assertEqual(tree(m2.prev), tree(self.src))
        return m

    def test_small_and_large_round_trip(self):
        uri = f"az://{CONTAINER}/runs/1/_flytecheckpoints"
        proxy = self.proxy()
        env = az_env(AZURE_STORAGE_CONNECTION_STRING=self.connstr(proxy.url),
                     CKPTFS_AZURE_BLOCK_SIZE="4M", CKPTFS_AZURE_CONCURRENCY="4")
        m = self.mount(uri, env=env, name="m1")
        self.save(m)
        self.assertEqual([r["method"] for r in proxy.records()], ["PUT"])
        self.check_blob("runs/1/_flytecheckpoints", tree(self.src))
        with open(os.path.join(self.src, "weights.bin"), "wb") as f:
            f.write(os.urandom(26 << 20))
        shutil.copy2(os.path.join(self.src, "weights.bin"), m.save)
        # The proxy holds the first two requests (Put Block) until both wait there at once:
        # only blocks sent in parallel get through before the hold times out. (Azure
        # copies no byte ranges here: no index lookup comes first, docs/reuse.md.)
        proxy.set_plan("hold=2*2")
        self.assertEqual(m.touch_save(), 0, m.logtext())
        m.unmount()
        want = tree(self.src)
        self.check_blob("runs/1/_flytecheckpoints", want)
        blocks = [r for r in proxy.records() if r["method"] == "PUT" and r["bytes_in"] >= 4 << 20]
        self.assertGreaterEqual(len(blocks), 6)
        held = [r for r in proxy.records() if "held" in r]
        self.assertEqual(len(held), 2, held)
        self.assertTrue(all(r in blocks for r in held), f"not all held requests are blocks: {held}")
        self.assertTrue(all(r["held"] for r in held), f"blocks were not uploaded in parallel: {held}")
        committed, uncommitted = azblob.block_list(self.az.port, CONTAINER,
                                                   "runs/1/_flytecheckpoints")
        self.assertEqual((len(committed), uncommitted), (len(blocks) + 1, []))
        m2 = self.mount(self.path("dest", "next"), [uri], env=env, name="m2")
        self.assertEqual(tree(m2.prev), want)
        self.assertEqual(m2.status()["prev"]["kind"], "tar")

    def test_large_blocks_are_spooled_under_the_memory_limit(self):
        # Issue 26: blocks over --memory-limit / 4 go through the cache disk (part_body.h),
        # each with its Content-MD5 read back from the spool file.
        uri = f"az://{CONTAINER}/runs/1/spooled"
        env = az_env(AZURE_STORAGE_CONNECTION_STRING=self.connstr(),
                     CKPTFS_AZURE_BLOCK_SIZE="4M", CKPTFS_AZURE_CONCURRENCY="2",
                     CKPTFS_PART_GROWTH="1")
        m = self.mount(uri, env=env, name="m1", extra=["--memory-limit", "32M"])
        with open(os.path.join(self.src, "weights.bin"), "wb") as f:
            f.write(os.urandom(40 << 20))  # blocks of 4, 8, 16 and 12 MiB: two spooled
        self.save(m)
        self.assertIn("go through spool files", m.logtext())
        m.unmount()
        self.check_blob("runs/1/spooled", tree(self.src))

    def test_restore_resumes_after_a_cut_with_a_fresh_signature(self):
        # The GET is cut mid-body; the retry asks for the rest with a smaller Range, which
        # Shared Key must sign (Azurite refuses a signature over the first Range).
        with open(os.path.join(self.src, "weights.bin"), "wb") as f:
            f.write(os.urandom(3 << 20))
        proxy = self.proxy()
        env = az_env(AZURE_STORAGE_CONNECTION_STRING=self.connstr(proxy.url))
        uri = f"az://{CONTAINER}/cut/ck"
        m = self.mount(uri, env=env, name="m0")
        self.save(m)
        m.unmount()
        # HEAD passes; the next four requests are cut after 100 kB of body: the first is
        # always the seek index's tail (256 KiB), the others the data fetches, in any order.
        proxy.set_plan("pass,truncate@100000*4")
        m2 = self.mount(self.path("dest", "cut"), [uri], env=env, name="m1")
        self.assertEqual(tree(m2.prev), tree(self.src))
        gets = [r for r in proxy.records() if r["method"] == "GET"]  # the save only PUTs
        cut = gets[0]
        self.assertTrue(cut["action"].startswith("truncate@100000"), gets)
        start, end = map(int, cut["range"][len("bytes="):].split("-"))
        self.assertGreater(end - start + 1, 100000, cut)  # really cut mid-body
        want = f"bytes={start + 100000}-{end}"  # the rest only, signed anew
        self.assertIn(want, [g["range"] for g in gets[1:]], gets)

    def test_missing_blob_is_no_previous_checkpoint(self):
        env = az_env(AZURE_STORAGE_CONNECTION_STRING=self.connstr())
        m = self.mount(self.path("dest", "x"), [f"az://{CONTAINER}/nothing/here"], env=env)
        self.assertEqual(os.listdir(m.prev), [])
        self.assertEqual(m.status()["prev"]["kind"], "none")

    def test_abfs_uri_with_account_key(self):
        env = az_env(AZURE_STORAGE_KEY=azblob.KEY,
                     CKPTFS_AZURE_BLOB_ENDPOINT=f"{self.az.url}/{ACCOUNT}")
        uri = f"abfss://{CONTAINER}@{ACCOUNT}.dfs.core.windows.net/abfs/ck"
        m = self.round_trip(env, uri, "abfs/ck", "abfs")
        self.assertIn("shared-key", m.logtext())

    def test_sas_token(self):
        env = az_env(AZURE_STORAGE_ACCOUNT=ACCOUNT, AZURE_STORAGE_SAS_TOKEN=azblob.account_sas(),
                     CKPTFS_AZURE_BLOB_ENDPOINT=f"{self.az.url}/{ACCOUNT}")
        m = self.round_trip(env, f"az://{CONTAINER}/sas/ck", "sas/ck", "sas")
        self.assertIn("credentials: sas", m.logtext())

    def test_wrong_key_fails_with_service_error(self):
        bad = azblob.KEY[:10] + ("A" if azblob.KEY[10] != "A" else "B") + azblob.KEY[11:]
        env = az_env(AZURE_STORAGE_CONNECTION_STRING=self.connstr(key=bad))
        m = self.mount(f"az://{CONTAINER}/bad/ck", env=env)
        self.save(m, rc_expected=1)
        err = m.status()["save"]["last"]["error"]
        self.assertIn("az://ckit/bad/ck", err)
        self.assertIn("403", err)
        self.assertIn("Authorization", err)
        m.unmount()
        self.assertNotIn(bad, m.logtext())
        self.assertFalse(azblob.blob_exists(self.az.port, CONTAINER, "bad/ck"))

    def test_failed_save_403_keeps_old_blob(self):
        proxy = self.proxy()
        env = az_env(AZURE_STORAGE_CONNECTION_STRING=self.connstr(proxy.url),
                     CKPTFS_AZURE_BLOCK_SIZE="4M", CKPTFS_AZURE_CONCURRENCY="1")
        m0 = self.mount(f"az://{CONTAINER}/fail/403", env=env, name="m0")
        self.save(m0)
        m0.unmount()
        old = azblob.get_blob(self.az.port, CONTAINER, "fail/403")
        m = self.mount(f"az://{CONTAINER}/fail/403", env=env, name="m1")
        with open(os.path.join(self.src, "weights.bin"), "wb") as f:
            f.write(os.urandom(16 << 20))
        proxy.set_plan("pass*2,status=403*inf")
        self.save(m, rc_expected=1)
        self.assertIn("403", m.status()["save"]["last"]["error"])
        proxy.set_plan("")
        self.assertEqual(hashlib.sha256(azblob.get_blob(self.az.port, CONTAINER, "fail/403"))
                         .hexdigest(), hashlib.sha256(old).hexdigest(), "the old blob changed")
        committed, _ = azblob.block_list(self.az.port, CONTAINER, "fail/403")
        self.assertEqual(committed, [])  # the old blob was one Put Blob: no new blocks in it
        m.unmount()
        self.assertNotIn(azblob.KEY, m.logtext())


class AzureBearerTest(AzureTest):
    """Workload identity and managed identity: tokens from azbearer.py's stand-ins."""

    def setUp(self):
        super().setUp()
        self.assertion = self.path("token")
        with open(self.assertion, "w") as f:
            f.write("eyJhbGciOiJSUzI1NiJ9.projected-sa-token.sig\n")
        self.gate = subprocess.Popen(
            [sys.executable, os.path.join(TOOLS, "azbearer.py"), "--upstream", str(self.az.port),
             "--assertion-file", self.assertion], stdout=subprocess.PIPE, text=True)
        self.addCleanup(self.gate.wait)
        self.addCleanup(self.gate.kill)
        self.gate_url = f"http://127.0.0.1:{int(self.gate.stdout.readline())}"
        self.gate.stdout.close()

    def state(self):
        with urllib.request.urlopen(f"{self.gate_url}/__fake/state") as r:
            return json.load(r)

    def test_workload_identity(self):
        env = az_env(AZURE_FEDERATED_TOKEN_FILE=self.assertion,
                     AZURE_CLIENT_ID="00000000-0000-0000-0000-00000000c1d0",
                     AZURE_TENANT_ID="72f988bf-86f1-41af-91ab-2d7cd011db47",
                     AZURE_AUTHORITY_HOST=self.gate_url + "/",
                     CKPTFS_AZURE_BLOB_ENDPOINT=f"{self.gate_url}/{ACCOUNT}")
        m = self.round_trip(env, f"abfs://{CONTAINER}@{ACCOUNT}.dfs.core.windows.net/wi/ck",
                            "wi/ck", "wi")
        self.assertIn("workload-identity", m.logtext())
        self.assertGreater(self.state()["gated"], 0)
        self.assertNotIn("projected-sa-token", m.logtext())

    def test_workload_identity_bad_assertion_fails_clearly(self):
        bad = self.path("bad-token")
        with open(bad, "w") as f:
            f.write("not-the-token")
        env = az_env(AZURE_FEDERATED_TOKEN_FILE=bad, AZURE_CLIENT_ID="00000000-0000-0000-0000-00000000c1d0",
                     AZURE_TENANT_ID="t1", AZURE_AUTHORITY_HOST=self.gate_url,
                     CKPTFS_AZURE_BLOB_ENDPOINT=f"{self.gate_url}/{ACCOUNT}")
        m = self.mount(f"az://{CONTAINER}/wi-bad/ck", env=dict(env, AZURE_STORAGE_ACCOUNT=ACCOUNT))
        self.save(m, rc_expected=1)
        err = m.status()["save"]["last"]["error"]
        self.assertIn("workload identity", err)
        self.assertIn("invalid_client", err)

    def test_managed_identity(self):
        env = az_env(AZURE_STORAGE_ACCOUNT=ACCOUNT, AZURE_POD_IDENTITY_AUTHORITY_HOST=self.gate_url,
                     CKPTFS_AZURE_BLOB_ENDPOINT=f"{self.gate_url}/{ACCOUNT}")
        m = self.round_trip(env, f"az://{CONTAINER}/mi/ck", "mi/ck", "mi")
        self.assertIn("managed-identity", m.logtext())
        self.assertGreater(self.state()["tokens"], 0)

    def test_no_credentials_lists_what_was_tried(self):
        env = az_env(AZURE_STORAGE_ACCOUNT=ACCOUNT)
        m = self.mount(f"az://{CONTAINER}/none/ck", env=env)
        self.save(m, rc_expected=1)
        err = m.status()["save"]["last"]["error"]
        self.assertIn("no Azure credentials found", err)
