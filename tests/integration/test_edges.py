"""Edges a user meets in the first week (issue 22 item 5): two daemons on one cache dir,
signals that must not take a mount down, a relative mountpoint."""
import os
import signal
import subprocess
import tarfile
import time

from ckfs import BIN, MountTest, is_mounted, wait_for


class EdgesTest(MountTest):
    def test_a_second_daemon_on_the_same_cache_dir_is_refused(self):
        m = self.mount(self.path("d", "one.tgz"))
        open(os.path.join(m.save, "mine"), "w").write("1")
        mnt2 = os.path.join(self.base, "mnt2")
        r = subprocess.run([BIN, "-f", "--cache-dir", m.cache, "--dest", self.path("d", "two"),
                            mnt2], capture_output=True, text=True, timeout=30)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("in use by another ckptfs (pid %d)" % m.proc.pid, r.stderr)
        self.assertFalse(is_mounted(mnt2))
        self.assertEqual(m.touch_save(), 0)  # the first one is untouched
        m.unmount()
        # once it is gone, the cache dir can be used again (and re-attaches save/)
        m2 = self.mount(self.path("d", "two.tgz"), cache=m.cache, name="mnt3")
        self.assertEqual(open(os.path.join(m2.save, "mine")).read(), "1")

    def test_sighup_and_user_signals_do_not_unmount(self):
        dest = self.path("d", "ck.tgz")
        m = self.mount(dest)
        open(os.path.join(m.save, "f"), "w").write("x")
        for sig in (signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2):
            m.proc.send_signal(sig)
        time.sleep(0.5)
        self.assertIsNone(m.proc.poll())
        self.assertTrue(is_mounted(m.mnt))
        self.assertEqual(m.touch_save(), 0)
        with tarfile.open(dest) as t:
            self.assertEqual(t.getnames(), ["f"])

    def test_a_relative_mountpoint_is_unmounted_on_sigterm(self):
        dest = self.path("d", "ck.tgz")
        log = open(self.path("rel.log"), "wb")
        p = subprocess.Popen([os.path.abspath(BIN), "--dest", dest, "m/k2"], cwd=self.base,
                             stdout=log, stderr=log)
        mnt = os.path.join(self.base, "m", "k2")
        try:
            self.assertEqual(p.wait(30), 0)  # detached: the parent returns once mounted
            wait_for(lambda: is_mounted(mnt), 10, "the mount")
            open(os.path.join(mnt, "save", "f"), "w").write("x")
            out = subprocess.run(["pgrep", "-f", "ckptfs --dest %s m/k2" % dest],
                                 capture_output=True, text=True).stdout.split()
            self.assertEqual(len(out), 1, out)
            os.kill(int(out[0]), signal.SIGTERM)
            wait_for(lambda: not is_mounted(mnt), 30, "the unmount")
            wait_for(lambda: os.path.exists(dest), 30, "the unmount save")
        finally:
            if is_mounted(mnt):
                subprocess.run(["fusermount3", "-uz", mnt])
            log.close()


class NamesTest(MountTest):
    def test_nfc_and_nfd_names_stay_two_files_for_every_reader(self):
        """A non-ASCII name that fits ustar's fields is written there as raw UTF-8 (no pax
        `path` record, which bsdtar NFC-normalizes); one too long for them keeps its pax
        record. GNU tar, bsdtar, Python (filter="data") and prev/ see the same tree."""
        import unicodedata
        dest = self.path("d", "ck.tgz")
        m = self.mount(dest)
        names = [unicodedata.normalize(f, "café-ünï.pt") for f in ("NFC", "NFD")]
        self.assertNotEqual(names[0], names[1])
        deep = "é" * 60 + "/" + "ü" * 45  # 120 + 90 bytes: split over prefix and name
        long = "ö" * 70  # 140 bytes: only a pax path record holds it
        os.makedirs(os.path.join(m.save, os.path.dirname(deep)))
        files = names + [os.path.join("dïr", n) for n in names] + [deep, long]
        os.makedirs(os.path.join(m.save, "dïr"))
        for n in files:
            open(os.path.join(m.save, n), "w").write(n)
        os.symlink(os.path.join("dïr", names[1]), os.path.join(m.save, "lïnk"))
        self.assertEqual(m.touch_save(), 0)
        m.unmount()
        with tarfile.open(dest) as t:
            pax = {x.name: set(x.pax_headers) for x in t.getmembers()}
        for n in names + ["dïr", "lïnk", deep]:
            self.assertNotIn("path", pax[n], n)
        self.assertIn("path", pax[long])
        want = sorted(files + ["dïr", "lïnk", os.path.dirname(deep)])
        for i, cmd in enumerate((["tar", "-xzf", dest], ["bsdtar", "-xf", dest], None)):
            out = self.path("x%d" % i, "")
            if cmd:
                subprocess.run(cmd, cwd=out, check=True, capture_output=True)
            else:
                with tarfile.open(dest) as t:
                    if hasattr(tarfile, "data_filter"):
                        t.extractall(out, filter="data")
                    else:
                        t.extractall(out)
            got = sorted(os.path.relpath(os.path.join(d, f), out)
                         for d, ds, fs in os.walk(out) for f in ds + fs)
            self.assertEqual(got, want, cmd)
            for n in files:
                self.assertEqual(open(os.path.join(out, n)).read(), n, (cmd, n))
            self.assertEqual(os.readlink(os.path.join(out, "lïnk")),
                             os.path.join("dïr", names[1]))
        rd = self.mount(self.path("d", "next.tgz"), [dest], name="rd")
        for n in files:
            self.assertEqual(open(os.path.join(rd.prev, n)).read(), n)
        self.assertEqual(sorted(os.listdir(os.path.join(rd.prev, "dïr"))), sorted(names))


class SparseTest(MountTest):
    def test_a_sparse_file_saves_fast_and_restores_without_filling_the_disk(self):
        """A 512 MiB file with 1 MiB of data: archived as a pax sparse entry (GNU.sparse
        1.0: only the data is stored), which Python's tarfile (filter="data"), GNU tar and
        bsdtar extract, and restored under prev/ with its holes left holes in the cache."""
        m = self.mount(self.path("d", "ck.tgz"))
        big = os.path.join(m.save, "big.bin")
        data = os.urandom(1 << 20)
        with open(big, "wb") as f:
            f.truncate(512 << 20)
            f.seek(300 << 20)
            f.write(data)
        self.assertEqual(m.touch_save(), 0, m.logtext())
        obj = self.path("d", "ck.tgz")
        with tarfile.open(obj) as t:
            member = t.getmember("big.bin")
            self.assertEqual(member.size, 512 << 20)
            self.assertEqual(member.sparse, [(300 << 20, 1 << 20), (512 << 20, 0)])
        for i, cmd in enumerate((["tar", "-xzf", obj], ["bsdtar", "-xf", obj], None)):
            out = self.path(f"x{i}", "")
            if cmd:
                subprocess.run(cmd, cwd=out, check=True)
            else:  # what flyte-sdk's loader does (tests/CMakeLists.txt: CI has the filter)
                with tarfile.open(obj) as t:
                    if hasattr(tarfile, "data_filter"):
                        t.extractall(out, filter="data")
                    else:
                        t.extractall(out)
            with open(os.path.join(out, "big.bin"), "rb") as f:
                f.seek(300 << 20)
                self.assertEqual(f.read(1 << 20), data)
                self.assertEqual(os.fstat(f.fileno()).st_size, 512 << 20)
        r = self.mount(self.path("d", "next.tgz"), [self.path("d", "ck.tgz")], name="r")
        got = os.path.join(r.prev, "big.bin")
        self.assertEqual(os.path.getsize(got), 512 << 20)
        with open(got, "rb") as f:
            self.assertEqual(f.read(4096), bytes(4096))
            f.seek(300 << 20)
            self.assertEqual(f.read(1 << 20), data)
            f.seek((512 << 20) - 4096)
            self.assertEqual(f.read(), bytes(4096))
        with open(got, "rb") as f:  # the whole file, through the mount
            n = 0
            while chunk := f.read(8 << 20):
                n += len(chunk)
            self.assertEqual(n, 512 << 20)
        self.assertLess(r.status()["prev"]["bytes_done"], 2 << 20)  # no hole was fetched
        cached = os.path.join(r.cache, "prev", "big.bin")
        used = os.stat(cached).st_blocks * 512
        self.assertLess(used, 4 << 20, f"the cache holds {used} bytes of a sparse file")


class DescriptorLimitTest(MountTest):
    """More entries than the descriptor limit (SPEC 5): the node table keeps file handles,
    not one descriptor per inode the kernel remembers."""

    def test_more_files_than_the_descriptor_limit(self):
        import resource
        dest = self.path("d", "ck.tgz")
        mnt = os.path.join(self.base, "mnt")
        os.makedirs(mnt)
        log = open(self.path("daemon.log"), "wb")

        def limit():
            resource.setrlimit(resource.RLIMIT_NOFILE, (1024, 1024))
        p = subprocess.Popen([BIN, "-f", "--dest", dest, "--cache-dir", self.path("cache"),
                              mnt], stdout=log, stderr=log, preexec_fn=limit)
        try:
            wait_for(lambda: is_mounted(mnt), 10, "the mount")
            src = self.path("src")
            os.makedirs(src)
            for d in range(20):
                os.makedirs(os.path.join(src, "d%02d" % d))
                for f in range(150):
                    with open(os.path.join(src, "d%02d" % d, "f%03d" % f), "w") as fh:
                        fh.write("%d-%d" % (d, f))
            r = subprocess.run(["cp", "-a", src + "/.", os.path.join(mnt, "save")],
                               capture_output=True, text=True)
            self.assertEqual(r.returncode, 0, r.stderr[-2000:])
            fds = len(os.listdir("/proc/%d/fd" % p.pid))
            self.assertLess(fds, 1024)
            self.assertEqual(sum(len(fs) for _, _, fs in os.walk(os.path.join(mnt, "save"))),
                             3000)
            r = subprocess.run(["touch", os.path.join(mnt, ".save")], capture_output=True,
                               text=True)
            self.assertEqual(r.returncode, 0, r.stderr)
            with tarfile.open(dest) as t:
                names = t.getnames()
            self.assertEqual(len(names), 3020)
            self.assertEqual(open(os.path.join(mnt, "save", "d07", "f123")).read(), "7-123")
        finally:
            if is_mounted(mnt):
                subprocess.run(["fusermount3", "-u", mnt])
            p.wait(60)
            log.close()


class ListingTest(MountTest):
    """Folders are listed with their entries' attributes (READDIRPLUS): what `ls -l`
    shows after one listing is what each entry's own stat says, in save/ and in prev/,
    and an entry changed or removed after a listing shows its new state."""

    def listing(self, folder):
        out = subprocess.run(["ls", "-ln", "--time-style=+%s", folder], check=True,
                             capture_output=True, text=True).stdout.splitlines()[1:]
        rows = [line.split(None, 6) for line in out]  # mode links uid gid size time name
        return {r[6].split(" -> ")[0]: (r[0], int(r[4]), int(r[5])) for r in rows}

    def expected(self, folder):
        out = {}
        for name in os.listdir(folder):
            st = os.lstat(os.path.join(folder, name))
            out[name] = (subprocess.run(["stat", "-c", "%A", os.path.join(folder, name)],
                                        check=True, capture_output=True,
                                        text=True).stdout.strip(),
                         st.st_size, int(st.st_mtime))
        return out

    def test_listing_matches_each_stat(self):
        m = self.mount(self.path("dest", "ck.tgz"))
        for i, mode in enumerate([0o600, 0o644, 0o755, 0o400]):
            p = os.path.join(m.save, f"f{i}")
            with open(p, "wb") as f:
                f.write(b"x" * (1000 * i + 7))
            os.chmod(p, mode)
            os.utime(p, (1_500_000_000 + i, 1_500_000_000 + i))
        os.mkdir(os.path.join(m.save, "sub"))
        os.symlink("f1", os.path.join(m.save, "link"))
        first = self.listing(m.save)
        self.assertEqual(first, self.expected(m.save))
        self.assertEqual(first["f3"][1], 3007)
        # changed and removed after the listing: the next listing shows it
        with open(os.path.join(m.save, "f2"), "ab") as f:
            f.write(b"more")
        os.unlink(os.path.join(m.save, "f0"))
        again = self.listing(m.save)
        self.assertEqual(again["f2"][1], 2011)
        self.assertNotIn("f0", again)
        self.assertEqual(m.touch_save(), 0)
        want = self.expected(m.save)
        m.unmount()
        m2 = self.mount(self.path("dest", "next.tgz"), [self.path("dest", "ck.tgz")], name="m2")
        self.assertEqual(self.listing(m2.prev), want)
        self.assertEqual(open(os.path.join(m2.prev, "f3"), "rb").read(), b"x" * 3007)
