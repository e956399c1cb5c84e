"""Hostile and broken archives as --src (SPEC 7): a clear error naming the entry, EIO
under prev/, nothing written outside the cache dir, and a daemon that stays up."""
import errno
import os
import subprocess

from ckfs import TOOLS, MountTest

HOSTILE = {
    "dotdot.tar.gz": "../evil",
    "inner_dotdot.tar.gz": "a/../../evil",
    "absolute.tar.gz": "/abs/evil",
    "symlink_abs.tar.gz": "link",
    "symlink_up.tar.gz": "sub/link",
    "dot_then_dotdot.tar.gz": "link/../../evil",
    "dot_then_through.tar.gz": "link/evil",
    "tmp_then_through.tar.gz": "'d'",  # the link to /tmp is refused first
    "hardlink_abs.tar.gz": "x",
    "hardlink_up.tar.gz": "x",
    "chardev.tar.gz": "tty",
    "fifo.tar.gz": "pipe",
    "huge.tar.gz": "big",
}
CORRUPT = ["truncated.tar.gz", "truncated.tar", "small_cut.tar.gz", "small_cut.tar.bz2",
           "small_cut.tar.xz", "bitflip.tar.gz", "crcflip.tar.gz", "badsum.tar"]
CACHE_ENTRIES = {"clean", "lock", "prev", "save", "spool", "work"}


class HostileArchiveTest(MountTest):
    def setUp(self):
        super().setUp()
        self.fixtures = os.path.join(self.base, "fixtures")
        subprocess.run(["python3", os.path.join(TOOLS, "mkarchives.py"), self.fixtures],
                       check=True, capture_output=True)
        for p in ("/tmp/evil", "/abs"):
            self.assertFalse(os.path.exists(p), f"{p} exists before the test")

    def check_refused(self, name, needle):
        m = self.mount(self.path("dest", name), [os.path.join(self.fixtures, name)],
                       name="m-" + name.replace(".", "-"))
        with self.assertRaises(OSError) as cm:
            os.listdir(m.prev)
        self.assertEqual(cm.exception.errno, errno.EIO, name)
        st = m.status()
        self.assertEqual(st["prev"]["state"], "failed", name)
        self.assertEqual(st["state"], "error")
        self.assertIn(needle, st["prev"]["error"], name)
        self.assertIn(name, st["prev"]["error"], "the error names the source")
        # nothing outside the cache dir, nothing left in prev/
        self.assertEqual(set(os.listdir(m.cache)) - CACHE_ENTRIES, set(), name)
        self.assertEqual(os.listdir(os.path.join(m.cache, "prev")), [], name)
        self.assertFalse(os.path.exists("/tmp/evil"))
        self.assertFalse(os.path.exists("/abs"))
        self.assertFalse(os.path.exists(os.path.join(self.base, "evil")))
        # the daemon is up: save/ works, a save works, prev/ keeps failing cleanly
        open(os.path.join(m.save, "ok"), "w").write("still up")
        self.assertEqual(m.touch_save(), 0, name)
        with self.assertRaises(OSError):
            os.stat(os.path.join(m.prev, "anything"))
        self.assertEqual(m.unmount(), 0)

    def test_hostile_entries_are_refused(self):
        for name, needle in HOSTILE.items():
            with self.subTest(name=name):
                self.check_refused(name, needle)

    def test_corrupt_archives_are_errors_not_fresh_starts(self):
        for name in CORRUPT:
            with self.subTest(name=name):
                self.check_refused(name, name)

    def test_gzip_of_non_tar_is_a_payload(self):
        src = os.path.join(self.fixtures, "gzip_nontar.gz")
        m = self.mount(self.path("dest", "x"), [src])
        self.assertEqual(os.listdir(m.prev), ["payload"])
        self.assertEqual(open(os.path.join(m.prev, "payload"), "rb").read(),
                         open(src, "rb").read())

    def test_duplicate_entries_later_wins(self):
        m = self.mount(self.path("dest", "x"), [os.path.join(self.fixtures, "dup_file.tar.gz")])
        # Listing waits for the whole archive; after it prev/ holds the later copy, as tar
        # leaves it. (A program that opens a duplicated name while the archive is still
        # streaming in may get the earlier copy: docs/format.md.)
        self.assertEqual(os.listdir(m.prev), ["f"])
        self.assertEqual(open(os.path.join(m.prev, "f")).read(), "second")

    def test_missing_source_server_side_error_is_not_a_fresh_start(self):
        # a source that exists but cannot be read (a directory) is an error, not "none"
        d = os.path.dirname(self.path("adir", "x"))
        m = self.mount(self.path("dest", "x"), [d])
        with self.assertRaises(OSError) as cm:
            os.listdir(m.prev)
        self.assertEqual(cm.exception.errno, errno.EIO)
        self.assertEqual(m.status()["prev"]["state"], "failed")
