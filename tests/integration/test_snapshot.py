"""The copy-on-write snapshot (SPEC 4): `echo async > .save` returns at the snapshot, the
save then archives exactly the tree at that point while writers keep changing save/ in
every way (write, append, truncate, chmod, utime, rename, unlink, hard links, the file
being archived right now), and the live tree keeps every change."""
import os
import subprocess
import tarfile
import time

from ckfs import MountTest, wait_for

MIB = 1 << 20


def members(path):
    out = {}
    with tarfile.open(path, "r:*") as t:
        for m in t:
            out[m.name] = (m.mode & 0o7777, int(m.mtime),
                           t.extractfile(m).read() if m.isfile() else m.linkname)
    return out


class SnapshotTest(MountTest):
    def setUp(self):
        super().setUp()
        self.dest = self.path("dest", "ck.tgz")
        # gzip-6 goes through zlib, slow enough that the save is still reading while the
        # test changes the tree; "a_big" sorts first, so the small files are not yet read
        self.m = self.mount(self.dest, extra=["--compress", "gzip-6"])
        self.s = self.m.save
        with open(os.path.join(self.s, "a_big"), "wb") as f:
            f.write(os.urandom(40 * MIB))
        for name in ("z_write", "z_trunc", "z_chmod", "z_utime", "z_rename", "z_unlink",
                     "z_hard"):
            with open(os.path.join(self.s, name), "w") as f:
                f.write(f"old {name}\n")
        os.link(os.path.join(self.s, "z_hard"), os.path.join(self.s, "z_hard2"))
        os.utime(os.path.join(self.s, "z_utime"), (1_600_000_000, 1_600_000_000))
        self.before = None

    def async_save(self):
        t0 = time.monotonic()
        subprocess.run(f"echo async > {self.m.mnt}/.save", shell=True, check=True)
        return time.monotonic() - t0

    def wait_saved(self, n=1):
        wait_for(lambda: self.m.status()["save"]["saves_ok"] >= n, 120, "the save")

    def test_changes_after_the_snapshot_stay_out(self):
        p = lambda n: os.path.join(self.s, n)  # noqa: E731
        self.async_save()
        self.assertEqual(self.m.status()["save"]["current"]["phase"], "archiving")
        with open(p("z_write"), "r+") as f:
            f.write("NEW")
        with open(p("z_write"), "a") as f:
            f.write("appended\n")
        os.truncate(p("z_trunc"), 0)
        os.chmod(p("z_chmod"), 0o600)
        os.utime(p("z_utime"), (1_700_000_000, 1_700_000_000))
        os.rename(p("z_rename"), p("z_renamed"))
        os.unlink(p("z_unlink"))
        with open(p("z_hard"), "a") as f:  # through one name of a hard-linked file
            f.write("via hard link\n")
        with open(p("z_new"), "w") as f:
            f.write("created after")
        with open(p("a_big"), "r+b") as f:  # the file the save may be reading right now
            f.write(b"X" * 10)
        self.wait_saved()
        got = members(self.dest)
        self.assertEqual(got["z_write"][2], b"old z_write\n")
        self.assertEqual(got["z_trunc"][2], b"old z_trunc\n")
        self.assertEqual(got["z_chmod"][0], 0o644)
        self.assertEqual(got["z_utime"][1], 1_600_000_000)
        self.assertIn("z_rename", got)
        self.assertNotIn("z_renamed", got)
        self.assertIn("z_unlink", got)
        self.assertNotIn("z_new", got)
        self.assertEqual(got["z_hard"][2], b"old z_hard\n")
        self.assertEqual(got["z_hard2"][2], b"old z_hard\n")
        self.assertNotEqual(got["a_big"][2][:10], b"X" * 10)
        self.assertEqual(len(got["a_big"][2]), 40 * MIB)
        # the live tree has every change
        self.assertEqual(open(p("z_write")).read(), "NEW z_write\nappended\n")
        self.assertEqual(os.path.getsize(p("z_trunc")), 0)
        self.assertEqual(open(p("z_hard2")).read(), "old z_hard\nvia hard link\n")
        self.assertEqual(open(p("a_big"), "rb").read(10), b"X" * 10)
        # and the next save takes them all
        self.assertEqual(self.m.touch_save(), 0)
        got = members(self.dest)
        self.assertEqual(got["z_write"][2], b"NEW z_write\nappended\n")
        self.assertIn("z_new", got)
        self.assertNotIn("z_unlink", got)
        self.assertEqual(got["a_big"][2][:10], b"X" * 10)

    def test_snapshot_is_quick_and_writers_are_not_held_back(self):
        # Not a timing assertion: the report says how long the gate was closed, and a new
        # file written while the save runs is complete long before the save ends.
        self.async_save()
        with open(os.path.join(self.s, "during"), "wb") as f:
            f.write(b"y" * MIB)
        st = self.m.status()["save"]
        self.assertIsNotNone(st["current"], "the save ended before the write: too fast to test")
        self.wait_saved()
        last = self.m.status()["save"]["last"]
        self.assertIn("snapshot_ms", last)
        self.assertNotIn("during", members(self.dest))
        # nothing of the snapshot is left behind
        self.assertEqual(os.listdir(os.path.join(self.m.cache, "snap")), [])


class ReplaySnapshotTest(MountTest):
    """An http PUT cannot resume: the backend keeps only a window of the archive, and a
    failed PUT has the save archive the snapshot again (a replay). Files the first pass
    already archived and that writers change before the replay must still go out as they
    were at the snapshot: the snapshot is held for the whole save."""

    def test_replay_reads_the_snapshot_not_the_live_files(self):
        from ckfs import FaultProxy, Nginx
        nginx = Nginx(self.base)
        self.addCleanup(nginx.stop)
        proxy = FaultProxy(self.base, nginx.port)
        self.addCleanup(proxy.stop)
        env = dict(os.environ, CKPTFS_HTTP_WINDOW="256K")
        m = self.mount(f"{proxy.url}/ck.tgz", env=env, extra=["--compress", "store"])
        s = m.save
        p = lambda n: os.path.join(s, n)  # noqa: E731
        big = os.urandom(8 * MIB)  # far beyond the window: a failed PUT needs a replay
        with open(p("a_mod"), "w") as f:
            f.write("old a_mod\n")
        with open(p("b_big"), "wb") as f:
            f.write(big)
        with open(p("c_gone"), "w") as f:
            f.write("old c_gone\n")
        # The proxy takes the whole first PUT, then holds its reply until released and
        # answers 503: by then the first pass has archived every file.
        proxy.set_plan("gate=503")
        subprocess.run(f"echo async > {m.mnt}/.save", shell=True, check=True)
        wait_for(lambda: any(r["method"] == "PUT" for r in proxy.records()), 60,
                 "the first PUT at the proxy")
        with open(p("a_mod"), "r+") as f:
            f.write("NEW")
        with open(p("b_big"), "r+b") as f:
            f.write(b"X" * 4096)
        os.truncate(p("c_gone"), 0)
        os.unlink(p("c_gone"))
        with open(p("d_new"), "w") as f:
            f.write("created during the save")
        proxy._control("PUT", "/__fault/release")  # the first PUT fails
        wait_for(lambda: m.status()["save"]["saves_ok"] >= 1, 120, "the save")
        self.assertIn("pass 2", m.logtext())
        puts = [r for r in proxy.records() if r["method"] == "PUT"]
        self.assertGreaterEqual(len(puts), 2, puts)
        got = members(os.path.join(nginx.data, "ck.tgz"))
        self.assertEqual(got["a_mod"][2], b"old a_mod\n")
        self.assertEqual(got["b_big"][2], big)
        self.assertEqual(got["c_gone"][2], b"old c_gone\n")
        self.assertNotIn("d_new", got)
        # the live tree has every change, and nothing of the snapshot is left behind
        self.assertEqual(open(p("a_mod")).read(), "NEW a_mod\n")
        self.assertEqual(open(p("b_big"), "rb").read(4096), b"X" * 4096)
        self.assertFalse(os.path.exists(p("c_gone")))
        self.assertEqual(os.listdir(os.path.join(m.cache, "snap")), [])
