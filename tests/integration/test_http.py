"""The http(s):// backend end to end: a real mount against Debian's nginx with WebDAV PUT
on 127.0.0.1, with the fault-injecting proxy in front for transient and permanent faults."""
import errno
import os
import shutil
import subprocess
import tarfile

from ckfs import FaultProxy, MountTest, Nginx, make_sample_tree, tree


class HttpTest(MountTest):
    def setUp(self):
        super().setUp()
        self.nginx = Nginx(self.base)
        self.addCleanup(self.nginx.stop)
        self.src = os.path.dirname(self.path("src", "x"))
        make_sample_tree(self.src, big=2 << 20)
        self.want = tree(self.src)

    def proxy(self, plan=""):
        p = FaultProxy(self.base, self.nginx.port, plan)
        self.addCleanup(p.stop)
        return p

    def save_tree(self, dest_url, name="m1"):
        m = self.mount(dest_url, name=name)
        shutil.copytree(self.src, m.save, symlinks=True, dirs_exist_ok=True)
        rc = m.touch_save()
        return m, rc

    def test_save_and_load_over_http(self):
        url = self.nginx.url + "/runs/1/_flytecheckpoints"
        m, rc = self.save_tree(url)
        self.assertEqual(rc, 0, m.logtext())
        obj = os.path.join(self.nginx.data, "runs", "1", "_flytecheckpoints")
        out = os.path.dirname(self.path("out", "x"))
        from test_roundtrip import extract_python
        extract_python(obj, out)
        self.assertEqual(tree(out), self.want)
        m.unmount()
        m2 = self.mount(self.path("dest", "next"), [url], name="m2")
        self.assertEqual(tree(m2.prev), self.want)
        st = m2.status()["prev"]
        self.assertEqual((st["state"], st["kind"], st["indexed"]), ("ready", "tar", True))
        # every member once, plus the tail read for the index
        self.assertGreaterEqual(st["bytes_done"], os.path.getsize(obj))
        self.assertLess(st["bytes_done"], os.path.getsize(obj) + (1 << 20))

    def test_sequential_read_uses_few_long_gets(self):
        """Read-ahead goes out in batches of long runs: reading a 40 MiB file from start to
        end (128 KiB reads, as cat does) takes a handful of ranged GETs, not one per 1 MiB
        member, and every byte is right."""
        url = self.nginx.url + "/seq.tgz"
        blob = os.urandom(40 << 20)  # incompressible: 40 stored members
        m = self.mount(url, name="m1")
        open(os.path.join(m.save, "weights.bin"), "wb").write(blob)
        self.assertEqual(m.touch_save(), 0, m.logtext())
        m.unmount()
        before = self.nginx.access_log().count("GET /seq.tgz")
        m2 = self.mount(self.path("dest", "x"), [url], name="m2")
        got = bytearray()
        with open(os.path.join(m2.prev, "weights.bin"), "rb") as f:
            while chunk := f.read(128 << 10):
                got += chunk
        self.assertTrue(got == blob, "prev/weights.bin differs")
        gets = self.nginx.access_log().count("GET /seq.tgz") - before
        # the tail, the first member on demand, then 40 MiB in runs of up to 8 MiB (lazy.c
        # RUN_MAX), a run cut short where a batch of read-ahead ends
        self.assertLessEqual(gets, 12, self.nginx.access_log())

    def test_nothing_is_fetched_before_the_first_access(self):
        url = self.nginx.url + "/ck.tgz"
        m, rc = self.save_tree(url)
        self.assertEqual(rc, 0)
        m.unmount()
        before = self.nginx.access_log().count("/ck.tgz")  # the first mount's requests
        m2 = self.mount(self.path("dest", "x"), [url], name="m2")
        os.listdir(m2.mnt)
        os.stat(m2.prev)
        open(os.path.join(m2.save, "f"), "w").write("x")
        self.assertEqual(self.nginx.access_log().count("/ck.tgz"), before,
                         self.nginx.access_log())  # no HEAD, no GET yet
        os.listdir(m2.prev)
        self.assertGreater(self.nginx.access_log().count("/ck.tgz"), before)

    def test_presigned_query_never_shows(self):
        secret = "X-Amz-Signature=0123456789abcdefSECRET"
        url = f"{self.nginx.url}/signed/ck?X-Amz-Expires=600&{secret}"
        m, rc = self.save_tree(url)
        self.assertEqual(rc, 0)
        self.assertTrue(os.path.exists(os.path.join(self.nginx.data, "signed", "ck")))
        status = open(os.path.join(m.mnt, ".status")).read()
        self.assertNotIn("SECRET", status)
        self.assertIn("/signed/ck", status)
        m.unmount()
        self.assertNotIn("SECRET", m.logtext())

    def test_missing_object_is_no_previous_checkpoint(self):
        m = self.mount(self.path("dest", "x"), [self.nginx.url + "/nothing/here"])
        self.assertEqual(os.listdir(m.prev), [])
        self.assertEqual(m.status()["prev"]["kind"], "none")

    def test_transient_faults_are_retried(self):
        p = self.proxy("status=503,retry-after=1,reset@4096,truncate@10000")
        url = p.url + "/flaky/ck.tgz"
        m, rc = self.save_tree(url)
        self.assertEqual(rc, 0, m.logtext())
        m.unmount()
        obj = os.path.join(self.nginx.data, "flaky", "ck.tgz")
        out = os.path.dirname(self.path("out", "x"))
        subprocess.run(["tar", "-xzf", obj, "-C", out], check=True)
        self.assertEqual(tree(out), self.want)
        p.set_plan("status=500,status=429,reset@5000,truncate@20000")
        m2 = self.mount(self.path("dest", "x"), [url], name="m2")
        self.assertEqual(tree(m2.prev), self.want, m2.logtext())
        actions = [r["action"] for r in p.records()]
        self.assertIn("truncate@20000", actions)

    def test_refused_put_fails_the_save_and_keeps_the_old_object(self):
        p = self.proxy()
        url = p.url + "/keep/ck.tgz"
        m, rc = self.save_tree(url)
        self.assertEqual(rc, 0)
        obj = os.path.join(self.nginx.data, "keep", "ck.tgz")
        old = open(obj, "rb").read()
        open(os.path.join(m.save, "new-file"), "w").write("new")
        p.set_plan("status=403*inf")
        with self.assertRaises(OSError) as cm:  # the store refused: EACCES, the truth
            os.close(os.open(os.path.join(m.mnt, ".save"), os.O_WRONLY))
        self.assertEqual(cm.exception.errno, errno.EACCES)
        self.assertEqual(open(obj, "rb").read(), old)
        last = m.status()["save"]["last"]
        self.assertEqual(last["result"], "failed")
        self.assertIn("403", last["error"])
        self.assertIn("/keep/ck.tgz", last["error"])
        p.set_plan("")
        self.assertEqual(m.touch_save(), 0)  # the daemon is up and the next save works
        self.assertNotEqual(open(obj, "rb").read(), old)

    def test_source_that_refuses_is_an_error_not_a_fresh_start(self):
        p = self.proxy("status=403*inf")
        m = self.mount(self.path("dest", "x"), [p.url + "/secret/ck.tgz"])
        with self.assertRaises(OSError) as cm:
            os.listdir(m.prev)
        self.assertEqual(cm.exception.errno, errno.EACCES)  # the store's 403, not EIO
        st = m.status()
        self.assertEqual(st["prev"]["state"], "failed")
        self.assertIn("403", st["prev"]["error"])
        # save/ and .status are unaffected
        open(os.path.join(m.save, "f"), "w").write("x")

    def test_refused_index_read_is_an_error_not_a_whole_download(self):
        """The seek index's ranged GET refused (403) fails the load with the store's error;
        only a damaged index (test_indexed) falls back to downloading the object whole."""
        p = self.proxy()
        url = p.url + "/ranged/ck.tgz"
        m, rc = self.save_tree(url)
        self.assertEqual(rc, 0, m.logtext())
        m.unmount()
        p.set_plan("status=403*inf", match=r"^GET \S* Range: ")
        m2 = self.mount(self.path("dest", "x"), [url], name="m2")
        with self.assertRaises(OSError) as cm:
            os.listdir(m2.prev)
        self.assertEqual(cm.exception.errno, errno.EACCES)
        st = m2.status()["prev"]
        self.assertEqual(st["state"], "failed")
        self.assertIn("403", st["error"])
        gets = [r for r in p.records() if r["method"] == "GET"]
        self.assertTrue(gets and all(r["range"] for r in gets), gets)
        self.assertNotIn("extracting it whole", m2.logtext())

    def test_foreign_archive_is_extracted_while_it_downloads(self):
        import tarfile
        import threading
        import time
        d = os.path.dirname(self.path("foreign", "x"))
        for i in range(4):
            with open(os.path.join(d, f"part{i}.bin"), "wb") as f:
                f.write(os.urandom(4 << 20))
        obj = os.path.join(self.nginx.data, "foreign.tgz")
        with tarfile.open(obj, "w:gz", compresslevel=1) as tar:  # flyte-sdk's format
            for child in sorted(os.listdir(d)):
                tar.add(os.path.join(d, child), arcname=child)
        os.chmod(obj, 0o644)
        size = os.path.getsize(obj)
        # The GET of the archive's first range (8 MiB; the later ranges come in parallel,
        # in any order) stalls at 6 MiB, past part0.bin, until the checks below release it
        # (a timed stall could end, and the load with it, before a slow run gets to check);
        # every other request passes.
        p = self.proxy()
        p.set_plan(f"stall=60@{6 << 20}", match=r"^GET \S* Range: bytes=0-8388607$")
        m = self.mount(self.path("dest", "x"), [p.url + "/foreign.tgz"])
        listing = {}
        t = threading.Thread(target=lambda: listing.setdefault("names", os.listdir(m.prev)))
        t.start()
        # a lookup waits only for its own entry: part0.bin is readable, whole, while the
        # rest of the archive is still downloading (the listing thread still waits)
        first = open(os.path.join(m.prev, "part0.bin"), "rb").read()
        stalled = [(r["method"], r["range"]) for r in p.records() if "stall" in r["action"]]
        self.assertEqual(stalled, [("GET", "bytes=0-8388607")],
                         "the stall is not on the archive's download")
        self.assertEqual(m.status()["prev"]["state"], "loading")
        self.assertTrue(t.is_alive(), "the listing did not wait for the whole archive")
        self.assertEqual(first, open(os.path.join(d, "part0.bin"), "rb").read())
        p.release()
        with self.assertRaises(FileNotFoundError):  # answered at the end: not in the archive
            os.stat(os.path.join(m.prev, "not-there"))
        t.join(30)
        self.assertEqual(sorted(listing["names"]), [f"part{i}.bin" for i in range(4)])
        self.assertEqual(tree(m.prev), tree(d))
        self.assertFalse(m.status()["prev"]["indexed"])

    def test_server_down_during_load_is_an_error(self):
        port = self.nginx.port
        self.nginx.stop()
        m = self.mount(self.path("dest", "x"), [f"http://127.0.0.1:{port}/ck.tgz"])
        with self.assertRaises(OSError) as cm:
            os.listdir(m.prev)
        self.assertEqual(cm.exception.errno, errno.EIO)
        self.assertIn("127.0.0.1", m.status()["prev"]["error"])
