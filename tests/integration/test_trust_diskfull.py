"""A full cache disk (issue 5, SPEC 7): the --cache-dir is a small tmpfs. Writers get
ENOSPC, nothing already written is damaged, a save of what fits works, a save running
while the disk is full stays exact (copy-on-write falls back to waiting), the next save
after space is freed works, and a restore into a full cache disk fails cleanly (ENOSPC under
prev/, the error in .status) with the daemon staying up; a ckptfs archive larger than the
disk is served within half its free space instead (docs/cache.md)."""
import errno
import hashlib
import os
import subprocess
import tarfile

from ckfs import MountTest, tree
from test_trust_model import object_state

MIB = 1 << 20


def sha(b):
    return hashlib.sha256(b).hexdigest()


class DiskFullTest(MountTest):
    def setUp(self):
        super().setUp()
        self.cache = os.path.join(self.base, "cache")
        os.makedirs(self.cache)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", self.cache],
                       check=True)
        self.addCleanup(subprocess.run, ["umount", "-l", self.cache])
        self.dest = self.path("dest", "ck.tgz")

    def fill_until_full(self, path):
        """Writes 1 MiB blocks until ENOSPC; returns the bytes that write() accepted."""
        written = bytearray()
        with self.assertRaises(OSError) as cm:
            with open(path, "wb", buffering=0) as f:
                for i in range(1000):
                    block = bytes([i % 256]) * MIB
                    n = f.write(block)
                    written += block[:n]
        self.assertEqual(cm.exception.errno, errno.ENOSPC)
        return bytes(written)

    def test_writers_get_enospc_and_nothing_is_damaged(self):
        m = self.mount(self.dest, cache=self.cache)
        keep = os.urandom(4 * MIB)
        with open(os.path.join(m.save, "keep.bin"), "wb") as f:
            f.write(keep)
        self.assertEqual(m.touch_save(), 0, m.logtext())
        saved = open(self.dest, "rb").read()
        got = self.fill_until_full(os.path.join(m.save, "filler"))
        # every byte that write() accepted is there, the earlier file is untouched
        with open(os.path.join(m.save, "filler"), "rb") as f:
            on_disk = f.read(len(got))
        if on_disk != got:
            first = next((i for i in range(0, len(got), 4096)
                          if on_disk[i:i + 4096] != got[i:i + 4096]), None)
            self.fail(f"{len(got)} bytes were accepted by write(), but from byte {first} "
                      f"on ({len(on_disk)} bytes read back) they are not on disk")
        with open(os.path.join(m.save, "keep.bin"), "rb") as f:
            self.assertEqual(f.read(), keep)
        # more writers, new files and appends, all get ENOSPC, none damage anything
        for name in ("new1", "keep.bin"):
            with self.assertRaises(OSError) as cm:
                with open(os.path.join(m.save, name), "ab", buffering=0) as f:
                    f.write(os.urandom(2 * MIB))
            self.assertEqual(cm.exception.errno, errno.ENOSPC)
        with open(os.path.join(m.save, "keep.bin"), "rb") as f:
            self.assertEqual(f.read(len(keep)), keep)
        self.assertEqual(open(self.dest, "rb").read(), saved, "a failed write touched dest")
        # a save of the full area works (the snapshot is hard links: no space needed)
        want = {k: v for k, v in tree(m.save).items()}
        self.assertEqual(m.touch_save(), 0, m.logtext())
        objs = object_state(self.dest)
        self.assertEqual(objs["keep.bin"][3], sha(open(os.path.join(m.save, "keep.bin"),
                                                        "rb").read()))
        self.assertEqual(set(objs), set(want))
        # a save running while the disk is full, with writes to files it has not read:
        # the copy-on-write copy cannot be made, so the writer waits; the object stays
        # exactly the snapshot
        before = {k: v[3] for k, v in object_state(self.dest).items() if v[0] == "file"}
        subprocess.run(f"echo async > {m.mnt}/.save", shell=True, check=True)
        with open(os.path.join(m.save, "keep.bin"), "r+b") as f:
            f.write(b"CHANGED AFTER THE SNAPSHOT")
        from ckfs import wait_for
        wait_for(lambda: m.status()["save"]["current"] is None, 60, "the async save")
        self.assertEqual(m.status()["save"]["last"]["result"], "ok")
        after = {k: v[3] for k, v in object_state(self.dest).items() if v[0] == "file"}
        self.assertEqual(after, before, "a write after the snapshot leaked into the save")
        # free the space: the next save works and holds the change
        os.unlink(os.path.join(m.save, "filler"))
        with open(os.path.join(m.save, "after.bin"), "wb") as f:
            f.write(os.urandom(2 * MIB))
        self.assertEqual(m.touch_save(), 0, m.logtext())
        objs = object_state(self.dest)
        self.assertNotIn("filler", objs)
        with open(os.path.join(m.save, "keep.bin"), "rb") as f:
            self.assertEqual(objs["keep.bin"][3], sha(f.read()))
        self.assertEqual(m.unmount(), 0)

    def test_restore_into_a_full_cache_disk_fails_cleanly(self):
        src = self.path("src", "big.tgz")
        with tarfile.open(src, "w:gz", compresslevel=1) as t:
            for i in range(3):
                p = self.path("srcfiles", f"part{i}")
                with open(p, "wb") as f:
                    f.write(os.urandom(12 * MIB))
                t.add(p, arcname=f"part{i}")
        m = self.mount(self.dest, [src], cache=self.cache)
        with self.assertRaises(OSError) as cm:
            os.listdir(m.prev)
        self.assertEqual(cm.exception.errno, errno.ENOSPC)  # the truth, not EIO
        st = m.status()
        self.assertEqual(st["prev"]["state"], "failed")
        self.assertIn("space", (st["prev"]["error"] or "").lower(), st["prev"])
        # the daemon stays up, save/ works once space is back
        self.assertTrue(os.path.isdir(m.save))
        with open(os.path.join(m.save, "x"), "wb") as f:
            f.write(b"still here")
        self.assertEqual(m.touch_save(), 0, m.logtext())
        self.assertEqual(object_state(self.dest)["x"][3], sha(b"still here"))
        self.assertEqual(m.unmount(), 0)

    def test_ckptfs_archive_larger_than_the_disk_is_kept_to_half_its_space(self):
        data = {f"part{i}": os.urandom(12 * MIB) for i in range(3)}
        w = self.mount(self.dest, name="writer")  # its cache dir: the machine's disk
        for name, blob in data.items():
            with open(os.path.join(w.save, name), "wb") as f:
                f.write(blob)
        self.assertEqual(w.touch_save(), 0, w.logtext())
        w.unmount()
        m = self.mount(self.path("dest", "next.tgz"), [self.dest], cache=self.cache)
        for name, blob in data.items():  # 36 MiB through a 24 MiB disk
            with open(os.path.join(m.prev, name), "rb") as f:
                self.assertEqual(sha(f.read()), sha(blob), name)
        cache = m.status()["prev"]["cache"]
        self.assertGreater(cache["limit"], 4 * MIB)
        self.assertLessEqual(cache["limit"], 12 * MIB)
        self.assertLessEqual(cache["bytes"], cache["limit"])
        self.assertGreater(cache["evicted_bytes"], 0)
        self.assertIn("keeping at most", m.logtext())
        self.assertEqual(m.unmount(), 0)
