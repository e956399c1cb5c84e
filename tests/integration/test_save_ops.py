"""save/ is a full writable tree: every operation SPEC 2 lists, through a real mount."""
import os
import stat
import subprocess
import tarfile

from ckfs import MountTest


class SaveOpsTest(MountTest):
    def setUp(self):
        super().setUp()
        self.dest = self.path("dest", "ck.tar.gz")
        self.m = self.mount(self.dest)
        self.s = self.m.save

    def p(self, *parts):
        return os.path.join(self.s, *parts)

    def test_create_write_read_at_offsets(self):
        with open(self.p("f"), "wb") as f:
            f.write(b"a" * 100)
        fd = os.open(self.p("f"), os.O_RDWR)
        os.pwrite(fd, b"XYZ", 50)
        os.pwrite(fd, b"end", 200)  # past EOF: a hole
        os.close(fd)
        with open(self.p("f"), "rb") as f:
            data = f.read()
        self.assertEqual(len(data), 203)
        self.assertEqual(data[50:53], b"XYZ")
        self.assertEqual(data[100:200], b"\0" * 100)
        # the data is on the cache disk as soon as write() returned
        with open(os.path.join(self.m.cache, "save", "f"), "rb") as f:
            self.assertEqual(f.read(), data)

    def test_truncate_grow_and_shrink(self):
        with open(self.p("t"), "wb") as f:
            f.write(b"0123456789")
        os.truncate(self.p("t"), 4)
        self.assertEqual(open(self.p("t"), "rb").read(), b"0123")
        with open(self.p("t"), "r+b") as f:
            f.truncate(8)
        self.assertEqual(open(self.p("t"), "rb").read(), b"0123\0\0\0\0")
        subprocess.run(["truncate", "-s", "0", self.p("t")], check=True)
        self.assertEqual(os.path.getsize(self.p("t")), 0)

    def test_rename_and_rename_over_existing(self):
        open(self.p("a"), "w").write("A")
        open(self.p("b"), "w").write("B")
        os.mkdir(self.p("d"))
        os.rename(self.p("a"), self.p("d", "a2"))
        self.assertEqual(open(self.p("d", "a2")).read(), "A")
        os.replace(self.p("b"), self.p("d", "a2"))  # over an existing file
        self.assertEqual(open(self.p("d", "a2")).read(), "B")
        self.assertFalse(os.path.exists(self.p("b")))
        subprocess.run(["mv", self.p("d"), self.p("e")], check=True)
        self.assertEqual(sorted(os.listdir(self.s)), ["e"])

    def test_unlink_while_open(self):
        fd = os.open(self.p("u"), os.O_CREAT | os.O_RDWR, 0o644)
        os.write(fd, b"still here")
        os.unlink(self.p("u"))
        self.assertFalse(os.path.exists(self.p("u")))
        os.write(fd, b", and more")
        self.assertEqual(os.pread(fd, 100, 0), b"still here, and more")
        os.close(fd)
        self.assertEqual(os.listdir(self.s), [])

    def test_mkdir_rmdir_symlink_hardlink(self):
        os.makedirs(self.p("x", "y", "z"))
        os.rmdir(self.p("x", "y", "z"))
        with self.assertRaises(OSError):
            os.rmdir(self.p("x"))  # not empty
        os.symlink("../target", self.p("x", "ln"))
        self.assertEqual(os.readlink(self.p("x", "ln")), "../target")
        open(self.p("h1"), "w").write("hard")
        os.link(self.p("h1"), self.p("h2"))
        self.assertEqual(os.stat(self.p("h1")).st_nlink, 2)
        self.assertEqual(open(self.p("h2")).read(), "hard")
        os.mkfifo(self.p("fifo"))  # made, and left out of the archive (test_users)
        self.assertTrue(stat.S_ISFIFO(os.lstat(self.p("fifo")).st_mode))
        with self.assertRaises(PermissionError):
            os.mknod(self.p("dev"), 0o600 | stat.S_IFCHR, os.makedev(1, 3))  # no devices

    def test_chmod_utimens_fsync(self):
        open(self.p("m"), "w").write("mode")
        os.chmod(self.p("m"), 0o600)
        self.assertEqual(stat.S_IMODE(os.stat(self.p("m")).st_mode), 0o600)
        os.utime(self.p("m"), (1_600_000_000, 1_600_000_123))
        self.assertEqual(int(os.stat(self.p("m")).st_mtime), 1_600_000_123)
        subprocess.run(["touch", "-d", "2020-01-02 03:04:05 UTC", self.p("m")], check=True)
        self.assertEqual(int(os.stat(self.p("m")).st_mtime), 1577934245)
        fd = os.open(self.p("m"), os.O_WRONLY | os.O_APPEND)
        os.write(fd, b"+")
        os.fsync(fd)
        os.fdatasync(fd)
        os.close(fd)
        self.assertEqual(open(self.p("m")).read(), "mode+")

    def test_dd_large_file(self):
        subprocess.run(["dd", "if=/dev/urandom", f"of={self.p('big')}", "bs=1M", "count=32",
                        "status=none"], check=True)
        self.assertEqual(os.path.getsize(self.p("big")), 32 << 20)
        a = subprocess.run(["sha256sum", self.p("big")], capture_output=True, text=True)
        b = subprocess.run(["sha256sum", os.path.join(self.m.cache, "save", "big")],
                           capture_output=True, text=True)
        self.assertEqual(a.stdout.split()[0], b.stdout.split()[0])

    def test_write_only_opens_stay_coherent(self):
        """Write-only opens bypass the mount's page cache (direct I/O): readers that cached
        the file, through read() or a shared mapping, still see every write, appends land
        at the end, and read-write opens can still be mapped shared (numpy.memmap)."""
        import mmap
        with open(self.p("f"), "wb") as f:
            f.write(b"A" * 65536)
        r = os.open(self.p("f"), os.O_RDONLY)
        m = mmap.mmap(r, 65536, mmap.MAP_SHARED, mmap.PROT_READ)
        self.assertEqual(os.pread(r, 4, 0), b"AAAA")
        self.assertEqual(m[8:12], b"AAAA")
        w = os.open(self.p("f"), os.O_WRONLY)
        os.pwrite(w, b"BBBB", 0)
        os.pwrite(w, b"DDDD", 8)
        os.close(w)
        self.assertEqual(os.pread(r, 4, 0), b"BBBB")
        self.assertEqual(m[8:12], b"DDDD")
        w = os.open(self.p("f"), os.O_WRONLY | os.O_APPEND)
        os.write(w, b"CCCC")
        os.close(w)
        self.assertEqual(os.fstat(r).st_size, 65540)
        self.assertEqual(os.pread(r, 4, 65536), b"CCCC")
        m.close()
        os.close(r)
        rw = os.open(self.p("f"), os.O_RDWR)
        m = mmap.mmap(rw, 65540, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        m[0:4] = b"EEEE"
        m.flush()
        m.close()
        os.close(rw)
        with open(os.path.join(self.m.cache, "save", "f"), "rb") as f:
            data = f.read()
        self.assertEqual(data[:12], b"EEEEAAAADDDD")
        self.assertEqual(data[-4:], b"CCCC")

    def test_shell_tools(self):
        script = f"""
            set -e
            cd {self.s}
            mkdir -p run/1 && echo step=1 > run/1/meta
            cp run/1/meta run/1/meta.bak
            printf 'abc' >> run/1/meta
            sed -i 's/step=1/step=2/' run/1/meta
            ln -sf run/1 current
            rm run/1/meta.bak
            cat current/meta
        """
        out = subprocess.run(["bash", "-c", script], capture_output=True, text=True)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(out.stdout, "step=2\nabc")

    def test_top_level_is_fixed(self):
        self.assertEqual(sorted(os.listdir(self.m.mnt)), [".save", ".status", "prev", "save"])
        with self.assertRaises(OSError):
            open(os.path.join(self.m.mnt, "newfile"), "w")
        with self.assertRaises(OSError):
            os.mkdir(os.path.join(self.m.mnt, "newdir"))
        with self.assertRaises(OSError):
            os.rename(self.p(), os.path.join(self.m.mnt, "other"))

    def test_all_ops_land_in_the_saved_object(self):
        os.makedirs(self.p("a", "b"))
        open(self.p("a", "b", "f"), "w").write("content")
        os.symlink("b/f", self.p("a", "l"))
        os.chmod(self.p("a", "b", "f"), 0o640)
        os.utime(self.p("a", "b", "f"), (1_650_000_000, 1_650_000_000))
        self.assertEqual(self.m.touch_save(), 0)
        with tarfile.open(self.dest, "r:*") as t:
            names = {m.name: m for m in t.getmembers()}
            self.assertEqual(set(names), {"a", "a/b", "a/b/f", "a/l"})
            self.assertEqual(names["a/b/f"].mode & 0o7777, 0o640)
            self.assertEqual(names["a/b/f"].mtime, 1_650_000_000)
            self.assertEqual(names["a/l"].linkname, "b/f")
            self.assertEqual(t.extractfile("a/b/f").read(), b"content")
