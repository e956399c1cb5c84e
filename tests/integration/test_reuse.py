"""Saves that can reuse what did not change (issue 25). Step 1, the format: a regular file
of 1 MiB or more starts its own gzip member(s), and the entry after it starts another, so
its compressed bytes depend on its bytes alone (docs/format.md "Member-aligned files").
Checked with the independent index reader (tests/tools/ckindex.py) and the real readers."""
import os
import subprocess
import sys

from ckfs import BIN, MountTest, tree
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


if __name__ == "__main__":
    import unittest
    unittest.main()
