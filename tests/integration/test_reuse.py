"""Saves that reuse what did not change (issue 25). The format: a regular file of 1 MiB or
more starts its own gzip member(s), and the entry after it starts another, so its
compressed bytes depend on its bytes alone (docs/format.md "Member-aligned files"). The
save: members whose identity (length, CRC-32, CRC-64) the previous object at the
destination has are copied from it, not sent (save/splice.h). Checked with the independent
index reader (tests/tools/ckindex.py) and the real readers."""
import os
import re
import subprocess
import sys

from ckfs import BIN, MountTest, tree, wait_for
from test_roundtrip import extract_bsdtar, extract_gnutar, extract_python

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tools"))
import ckindex  # noqa: E402  (the independent reader of docs/format.md)

MiB = 1 << 20
ALIGN_MIN = MiB


def put(src, obj):
    r = subprocess.run([BIN, "put", src, obj], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr


def file_members(obj_path, name):
    """The compressed bytes of the members holding entry name's data, and whether they
    start at its first data byte and end at the end of its 512-byte records."""
    obj = open(obj_path, "rb").read()
    _, _, members, entries = ckindex.read_index(obj)
    e = next(e for e in entries if e["name"] == name.encode())
    start, end = e["data_off"], e["data_off"] + (e["size"] + 511) // 512 * 512
    mine = [m for m in members if start <= m[0] < end]  # (in_off, out_off, in_len, out_len)
    aligned = bool(mine) and mine[0][0] == start and mine[-1][0] + mine[-1][2] == end
    return b"".join(obj[m[1]:m[1] + m[3]] for m in mine), aligned


class MemberAlignedTest(MountTest):
    def write(self, rel, data):
        p = os.path.join(self.src, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb") as f:
            f.write(data)

    def setUp(self):
        super().setUp()
        self.src = os.path.dirname(self.path("src", "x"))
        self.big = {"big.bin": os.urandom(3 * MiB + 123), "d/mid.bin": os.urandom(2 * MiB),
                    "d/edge.bin": os.urandom(ALIGN_MIN)}
        for rel, data in self.big.items():
            self.write(rel, data)
        self.write("a.txt", b"a" * 100)
        self.write("d/small.txt", b"s" * 700)
        self.write("z.txt", b"z" * 10)

    def test_large_files_members_do_not_move_when_earlier_files_change(self):
        o1, o2 = self.path("o1.tgz"), self.path("o2.tgz")
        put(self.src, o1)
        self.write("a.txt", b"A" * 5000)  # every later byte of the tar stream moves
        self.write("d/small.txt", b"")
        self.write("z.txt", os.urandom(300 * 1024))  # after the large files
        put(self.src, o2)
        for rel in self.big:
            m1, aligned1 = file_members(o1, rel)
            m2, aligned2 = file_members(o2, rel)
            self.assertTrue(aligned1 and aligned2, rel)
            self.assertEqual(m1, m2, f"{rel}: its members changed though its bytes did not")
        # below the threshold nothing is aligned: small files stay packed together
        _, aligned = file_members(o2, "d/small.txt")
        self.assertFalse(aligned)

    def test_every_reader_reads_the_aligned_object(self):
        obj = self.path("o.tgz")
        put(self.src, obj)
        want = tree(self.src)
        for extract in (extract_python, extract_gnutar, extract_bsdtar):
            out = os.path.dirname(self.path(extract.__name__, "x"))
            extract(obj, out)
            self.assertEqual(tree(out), want, extract.__name__)
        subprocess.run(["gzip", "-t", obj], check=True)
        got = os.path.dirname(self.path("got", "x"))
        r = subprocess.run([BIN, "get", obj, got], capture_output=True, text=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(tree(got), want)


def check_readers(test, obj, want):
    """Every reader, and ckptfs get, gives back want (a tree())."""
    for extract in (extract_python, extract_gnutar, extract_bsdtar):
        out = os.path.dirname(test.path(extract.__name__ + "-" + os.path.basename(obj), "x"))
        extract(obj, out)
        test.assertEqual(tree(out), want, extract.__name__)
    subprocess.run(["gzip", "-t", obj], check=True)
    got = os.path.dirname(test.path("got-" + os.path.basename(obj), "x"))
    r = subprocess.run([BIN, "get", obj, got], capture_output=True, text=True, timeout=120)
    test.assertEqual(r.returncode, 0, r.stderr)
    test.assertEqual(tree(got), want)


class ReuseTest(MountTest):
    """Two saves of one mount to a file:// destination, the second after a change."""

    def save(self, m):
        self.assertEqual(m.touch_save(), 0, m.logtext())
        return m.status()["save"]["last"]

    def test_unchanged_members_are_copied_not_sent(self):
        obj = self.path("dest", "ck.tgz")
        prom = self.path("m", "ckptfs.prom")
        m = self.mount(obj, extra=["--metrics", prom])
        w1, w2 = os.urandom(12 * MiB), bytearray(os.urandom(12 * MiB))
        files = {"a/w1.bin": w1, "a/w2.bin": bytes(w2), "cfg.json": b'{"step": 1}',
                 "z.txt": b"z" * 4000}
        for rel, data in files.items():
            os.makedirs(os.path.dirname(os.path.join(m.save, rel)), exist_ok=True)
            with open(os.path.join(m.save, rel), "wb") as f:
                f.write(data)
        first = self.save(m)
        self.assertEqual(first["reused_bytes"], 0)
        self.assertIn("no earlier save of this mount", first["reuse_note"])
        self.assertIsNone(first["files"])  # nothing to compare with
        w1_members, _ = file_members(obj, "a/w1.bin")
        # a 1 MiB stretch of w2 changes, and a small file: w1 is one run of 12 members
        # (copied), which goes on into w2's first 6 MiB when w2's header did not change
        # (its mtime is whole seconds); the 5 MiB after the change are a run under 8 MiB
        # (written)
        w2[6 * MiB:7 * MiB] = os.urandom(MiB)
        with open(os.path.join(m.save, "a/w2.bin"), "r+b") as f:
            f.seek(6 * MiB)
            f.write(w2[6 * MiB:7 * MiB])
        with open(os.path.join(m.save, "cfg.json"), "wb") as f:
            f.write(b'{"step": 2}')
        second = self.save(m)
        self.assertIsNone(second["reuse_note"])
        self.assertGreaterEqual(second["reused_bytes"], 12 * MiB)
        self.assertLessEqual(second["reused_bytes"], 18 * MiB + 64 * 1024)
        self.assertEqual(second["uploaded_bytes"],
                         second["compressed_bytes"] - second["reused_bytes"])
        self.assertIn("reused", m.logtext())
        # w1 is copied whole, and not even read: nothing wrote it since the first save
        # (save/known.h); w2 has a changed stretch; cfg.json changed, and z.txt shares its
        # 1 MiB block with it
        self.assertEqual(second["files"], {"unchanged": 1, "reused": 1, "not_read": 1,
                                           "not_reused": {"changed": 3, "short_run": 0}})
        self.assertIn("files: 1 reused (1 of them not read), 0 unchanged but sent, 3 changed",
                      m.logtext())

        def metric(name):
            found = re.search(re.escape(name) + r" (\d+)\n", open(prom).read())
            return int(found.group(1)) if found else None
        wait_for(lambda: metric("ckptfs_save_reused_bytes_total") == second["reused_bytes"], 10,
                 "the metrics of the second save")
        self.assertEqual(metric("ckptfs_save_uploaded_bytes_total"),
                         metric("ckptfs_save_compressed_bytes_total") - second["reused_bytes"])
        self.assertEqual(metric('ckptfs_save_files_total{outcome="reused"}'), 1)
        self.assertEqual(metric('ckptfs_save_files_total{outcome="changed"}'), 3)
        self.assertEqual(metric("ckptfs_save_files_not_read_total"), 1)
        again, aligned = file_members(obj, "a/w1.bin")
        self.assertTrue(aligned)
        self.assertEqual(again, w1_members)
        want = tree(m.save)
        m.unmount()
        check_readers(self, obj, want)
        # the new object's index serves prev/ (lazily, file by file)
        m2 = self.mount(self.path("dest", "next.tgz"), [obj], name="m2")
        with open(os.path.join(m2.prev, "a/w2.bin"), "rb") as f:
            self.assertEqual(f.read(), bytes(w2))
        self.assertTrue(m2.status()["prev"]["indexed"])
        self.assertEqual(tree(m2.prev), want)

    def test_an_object_without_member_identities_is_not_reused(self):
        obj = self.path("dest", "ck.tgz")
        m = self.mount(obj)
        with open(os.path.join(m.save, "w.bin"), "wb") as f:
            f.write(os.urandom(10 * MiB))
        self.save(m)
        subprocess.run([sys.executable, os.path.join(os.path.dirname(ckindex.__file__),
                                                     "ckindex.py"), "downgrade", obj, "1"],
                       check=True)
        with open(os.path.join(m.save, "x.txt"), "wb") as f:
            f.write(b"x")
        second = self.save(m)
        self.assertEqual(second["reused_bytes"], 0)
        self.assertIn("no earlier ckptfs object", second["reuse_note"])
        want = tree(m.save)
        m.unmount()
        check_readers(self, obj, want)


class UnreadTest(MountTest):
    """A large file nothing wrote since the last save is not read at all: its members are
    copied from the object that save made (save/known.h). Whatever changed it (a write, an
    mmap, a truncate, new times) makes it read again, and so does a previous object that is
    not the one the daemon made, or a restarted daemon."""

    def write(self, m, rel, data):
        with open(os.path.join(m.save, rel), "wb") as f:
            f.write(data)

    def save(self, m, obj):
        """A save; the object must read back as save/ is now."""
        self.assertEqual(m.touch_save(), 0, m.logtext())
        got = os.path.dirname(self.path("got", "x"))
        subprocess.run(["rm", "-rf", got])
        r = subprocess.run([BIN, "get", obj, got], capture_output=True, text=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(tree(got), tree(m.save))
        return m.status()["save"]["last"]

    def test_only_files_nothing_changed_are_left_unread(self):
        import mmap
        obj = self.path("dest", "ck.tgz")
        m = self.mount(obj)
        for rel in ("a.bin", "b.bin", "c.bin"):
            self.write(m, rel, os.urandom(12 * MiB))
        self.write(m, "step.txt", b"1")
        self.assertIsNone(self.save(m, obj)["files"])
        with open(os.path.join(m.save, "a.bin"), "r+b") as f:  # a write in the middle
            f.seek(5 * MiB)
            f.write(b"changed")
        os.rename(os.path.join(m.save, "b.bin"), os.path.join(m.save, "b2.bin"))
        os.utime(os.path.join(m.save, "c.bin"), (1e9, 1e9))  # new times, same bytes
        second = self.save(m, obj)
        self.assertEqual(second["files"]["not_read"], 1, second)  # the renamed one
        # copied: b2 and c, whose bytes match, and step.txt, which follows c in both objects
        self.assertEqual(second["files"]["reused"], 3, second)
        self.assertEqual(second["files"]["not_reused"]["changed"], 1, second)  # a
        self.write(m, "step.txt", b"2")
        third = self.save(m, obj)
        self.assertEqual(third["files"]["not_read"], 3, third)
        self.assertGreaterEqual(third["reused_bytes"], 36 * MiB)
        with open(os.path.join(m.save, "b2.bin"), "r+b") as f:  # through a shared mapping
            mm = mmap.mmap(f.fileno(), 0)
            mm[7 * MiB] ^= 0xFF
            mm.flush()
            mm.close()
        os.truncate(os.path.join(m.save, "a.bin"), 12 * MiB)  # the same size: still a change
        fourth = self.save(m, obj)
        self.assertEqual(fourth["files"]["not_read"], 1, fourth)  # c
        self.assertIn("(1 of them not read)", m.logtext())
        want = tree(m.save)
        self.assertEqual(m.unmount(), 0)
        check_readers(self, obj, want)

    def test_an_object_the_daemon_did_not_make_is_read_again(self):
        obj, old = self.path("dest", "ck.tgz"), self.path("old.tgz")
        m = self.mount(obj)
        self.write(m, "w.bin", os.urandom(12 * MiB))
        self.write(m, "step.txt", b"1")
        self.save(m, obj)
        subprocess.run(["cp", obj, old], check=True)
        self.write(m, "step.txt", b"2")
        self.assertEqual(self.save(m, obj)["files"]["not_read"], 1)
        os.replace(old, obj)  # someone puts another object there
        self.write(m, "step.txt", b"3")
        third = self.save(m, obj)
        self.assertEqual(third["files"]["not_read"], 0, third)
        self.assertEqual(third["files"]["reused"], 1, third)  # read, and its members copied
        self.assertEqual(m.unmount(), 0)

    def test_a_restarted_daemon_reads_everything_once(self):
        obj, cache = self.path("dest", "ck.tgz"), self.path("cache", "x")
        cache = os.path.dirname(cache)
        m = self.mount(obj, cache=cache, name="m1")
        self.write(m, "w.bin", os.urandom(12 * MiB))
        self.save(m, obj)
        self.assertEqual(m.unmount(), 0)
        m = self.mount(obj, cache=cache, name="m2")  # save/ is still there, on the cache disk
        self.write(m, "step.txt", b"1")
        first = self.save(m, obj)
        self.assertIn("no earlier save of this mount", first["reuse_note"])
        self.write(m, "step.txt", b"2")
        self.assertEqual(self.save(m, obj)["files"]["not_read"], 1)
        self.assertEqual(m.unmount(), 0)


class SrcReuseTest(MountTest):
    """A retried attempt saves to a new --dest: its first save copies what it shares with
    the previous attempt's checkpoint (--src), which it restored, instead of sending it."""

    def test_first_save_copies_from_the_src_checkpoint(self):
        a, b = self.path("dest", "attempt-1.tgz"), self.path("dest", "attempt-2.tgz")
        m1 = self.mount(a, name="m1")
        files = {"base/w1.bin": os.urandom(12 * MiB), "base/w2.bin": os.urandom(9 * MiB),
                 "cfg.json": b'{"step": 100}', "tok.txt": b"t" * 5000}
        for rel, data in files.items():
            os.makedirs(os.path.dirname(os.path.join(m1.save, rel)), exist_ok=True)
            with open(os.path.join(m1.save, rel), "wb") as f:
                f.write(data)
        self.assertEqual(m1.touch_save(), 0, m1.logtext())
        self.assertEqual(m1.unmount(), 0)
        # the next attempt resumes as users do: copies prev/ into save/, trains, saves
        m2 = self.mount(b, [a], name="m2")
        subprocess.run(["cp", "-a", m2.prev + "/.", m2.save], check=True)
        with open(os.path.join(m2.save, "cfg.json"), "wb") as f:
            f.write(b'{"step": 200}')
        self.assertEqual(m2.touch_save(), 0, m2.logtext())
        last = m2.status()["save"]["last"]
        self.assertIsNone(last["reuse_note"], last)
        self.assertGreaterEqual(last["reused_bytes"], 21 * MiB, last)
        self.assertLess(last["uploaded_bytes"], MiB, last)
        want = tree(m2.save)
        self.assertEqual(m2.unmount(), 0)
        os.unlink(a)  # the new object stands alone
        check_readers(self, b, want)

    def test_a_foreign_src_archive_is_not_copied(self):
        """A --src written by GNU tar has no seek index (prev/ extracts it whole): the first
        save looks for nothing to copy, sends every byte and says why."""
        src = os.path.dirname(self.path("src", "x"))
        with open(os.path.join(src, "x.bin"), "wb") as f:
            f.write(os.urandom(2 * MiB))
        a = self.path("dest", "gnu.tgz")
        subprocess.run(["tar", "czf", a, "-C", src, "."], check=True)
        m = self.mount(self.path("dest", "b.tgz"), [a], name="m")
        subprocess.run(["cp", "-a", m.prev + "/.", m.save], check=True)
        self.assertEqual(m.touch_save(), 0, m.logtext())
        last = m.status()["save"]["last"]
        self.assertEqual(last["reused_bytes"], 0, last)
        self.assertIn("no ckptfs --src checkpoint loaded in prev/", last["reuse_note"])


if __name__ == "__main__":
    import unittest
    unittest.main()
