"""save/ behaves like a local filesystem for every user and every writer (SPEC 2, issue 22).

A root daemon mounted with -o allow_other, driven by a process of another uid (nobody, by
setpriv), as a training program in a container runs: entries belong to their creator,
modes are the ones asked for, --uid/--gid give the mount's own entries to that user,
direct I/O works, and what readers refuse (fifos, sockets, absolute or escaping symlinks)
is left out of the object with a warning, so the object extracts everywhere.
"""
import json
import os
import shutil
import stat
import subprocess
import sys
import tarfile
import textwrap

from ckfs import MountTest

NOBODY = 65534
NOGROUP = 65534


# Debian's own Python: another user cannot run the one under /root (pyenv).
PY = "/usr/bin/python3"


def as_user(cmd, uid=NOBODY, gid=NOGROUP, umask=None, check=True, text=True, **kw):
    """Runs cmd (a list) as uid:gid with no supplementary groups."""
    pre = ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", "--"]
    if umask is not None:
        cmd = ["sh", "-c", f'umask {umask:03o} && exec "$@"', "sh"] + list(cmd)
    return subprocess.run(pre + list(cmd), capture_output=True, text=text, check=check, **kw)


def py_as_user(code, *args, **kw):
    return as_user([PY, "-c", textwrap.dedent(code)] + list(args), **kw)


class UsersTest(MountTest):
    def setUp(self):
        super().setUp()
        os.chmod(self.base, 0o755)  # nobody must reach the mountpoint
        self.dest = self.path("dest", "ck.tar.gz")

    def mount_for_nobody(self, **kw):
        extra = ["-o", "allow_other", "--uid", str(NOBODY), "--gid", str(NOGROUP)]
        return self.mount(self.dest, extra=extra + list(kw.pop("extra", ())), **kw)

    def test_top_level_belongs_to_uid_gid(self):
        m = self.mount_for_nobody()
        for name in ("", "save", "prev", ".save", ".status"):
            st = os.stat(os.path.join(m.mnt, name))
            self.assertEqual((st.st_uid, st.st_gid), (NOBODY, NOGROUP), name)

    def test_nobody_uses_save_like_a_local_filesystem(self):
        m = self.mount_for_nobody()
        s = m.save
        script = """
            import os, sys
            s = sys.argv[1]
            os.mkdir(os.path.join(s, "run1"))
            p = os.path.join(s, "run1", "log.txt")
            with open(p, "w") as f:               # a file in its own new folder
                f.write("a")
            with open(p, "a") as f:               # reopened for append
                f.write("b")
            tmp = os.path.join(s, "run1", "ckpt.tmp")
            with open(tmp, "wb") as f:
                f.write(b"weights")
            os.rename(tmp, os.path.join(s, "run1", "ckpt.pt"))   # write-then-rename
            with open(tmp, "wb") as f:
                f.write(b"weights2")
            os.replace(tmp, os.path.join(s, "run1", "ckpt.pt"))  # rename over
            os.chmod(os.path.join(s, "run1", "ckpt.pt"), 0o640)
            os.chown(os.path.join(s, "run1", "ckpt.pt"), -1, os.getgid())
            os.link(os.path.join(s, "run1", "ckpt.pt"), os.path.join(s, "run1", "hard"))
            os.symlink("ckpt.pt", os.path.join(s, "run1", "latest"))
            os.utime(os.path.join(s, "run1", "ckpt.pt"), (1_600_000_000, 1_600_000_000))
            os.mkfifo(os.path.join(s, "run1", "pipe"))
            print("ok")
        """
        out = py_as_user(script, s)
        self.assertEqual(out.stdout.strip(), "ok", out.stderr)
        for rel in ("run1", "run1/log.txt", "run1/ckpt.pt", "run1/latest", "run1/pipe"):
            st = os.lstat(os.path.join(s, rel))
            self.assertEqual((st.st_uid, st.st_gid), (NOBODY, NOGROUP), rel)
        self.assertEqual(open(os.path.join(s, "run1", "log.txt")).read(), "ab")
        # .save as that user, from the shell and from Python
        self.assertEqual(as_user(["touch", os.path.join(m.mnt, ".save")]).returncode, 0)
        py_as_user("import pathlib, sys; pathlib.Path(sys.argv[1]).touch()",
                   os.path.join(m.mnt, ".save"))
        self.assertEqual(m.status()["save"]["saves_ok"], 2)
        with tarfile.open(self.dest, "r:*") as t:
            names = {x.name: x for x in t.getmembers()}
        self.assertEqual(set(names),
                         {"run1", "run1/log.txt", "run1/ckpt.pt", "run1/hard", "run1/latest"})
        self.assertEqual(names["run1/ckpt.pt"].mode & 0o7777, 0o640)
        self.assertEqual(names["run1/ckpt.pt"].uid, NOBODY)
        self.assertEqual(names["run1/ckpt.pt"].mtime, 1_600_000_000)
        last = m.status()["save"]["last"]
        self.assertEqual(last["skipped"], 1)
        self.assertIn("run1/pipe", last["warnings"])

    def test_modes_are_the_callers_not_cut_by_the_daemons_umask(self):
        m = self.mount_for_nobody()
        d, f = os.path.join(m.save, "open"), os.path.join(m.save, "f")
        as_user(["mkdir", "-m", "0777", d], umask=0)
        py_as_user("import os, sys; os.close(os.open(sys.argv[1], os.O_CREAT | os.O_WRONLY, 0o666))",
                   f, umask=0)
        self.assertEqual(stat.S_IMODE(os.stat(d).st_mode), 0o777)
        self.assertEqual(stat.S_IMODE(os.stat(f).st_mode), 0o666)
        # the caller's umask is applied, by the kernel
        g = os.path.join(m.save, "g")
        py_as_user("import os, sys; os.close(os.open(sys.argv[1], os.O_CREAT | os.O_WRONLY, 0o666))",
                   g, umask=0o027)
        self.assertEqual(stat.S_IMODE(os.stat(g).st_mode), 0o640)

    def test_permissions_are_checked_as_on_a_local_filesystem(self):
        m = self.mount_for_nobody()
        os.mkdir(os.path.join(m.save, "roots"), 0o755)  # root's, not writable by nobody
        open(os.path.join(m.save, "roots", "secret"), "w").write("x")
        os.chmod(os.path.join(m.save, "roots", "secret"), 0o600)
        r = as_user(["touch", os.path.join(m.save, "roots", "new")], check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("Permission denied", r.stderr)
        r = as_user(["cat", os.path.join(m.save, "roots", "secret")], check=False)
        self.assertIn("Permission denied", r.stderr)

    def test_setgid_directory_gives_its_group(self):
        m = self.mount_for_nobody()
        d = os.path.join(m.save, "shared")
        os.mkdir(d)
        os.chown(d, NOBODY, 4242)
        os.chmod(d, 0o2775)
        as_user(["mkdir", os.path.join(d, "sub")], gid=NOGROUP)
        as_user(["touch", os.path.join(d, "f")], gid=NOGROUP)
        self.assertEqual(os.stat(os.path.join(d, "f")).st_gid, 4242)
        st = os.stat(os.path.join(d, "sub"))
        self.assertEqual(st.st_gid, 4242)
        self.assertTrue(st.st_mode & stat.S_ISGID)

    def test_write_by_another_user_clears_setuid_and_setgid(self):
        m = self.mount_for_nobody()
        for flags in ("O_WRONLY", "O_RDWR"):
            f = os.path.join(m.save, "tool-" + flags)
            open(f, "w").write("#!/bin/sh\n")
            os.chmod(f, 0o6777)
            py_as_user(f"import os, sys; fd = os.open(sys.argv[1], os.{flags}); "
                       "os.write(fd, b'x'); os.close(fd)", f)
            self.assertEqual(stat.S_IMODE(os.stat(f).st_mode), 0o777, flags)

    def test_prev_files_of_mode_0600_are_readable_by_uid(self):
        src = self.path("src", "ck.tar.gz")
        first = self.mount(src, name="first")
        open(os.path.join(first.save, "secret.pt"), "w").write("tensor")
        os.chmod(os.path.join(first.save, "secret.pt"), 0o600)
        os.mkdir(os.path.join(first.save, "private"), 0o700)
        open(os.path.join(first.save, "private", "x"), "w").write("y")
        self.assertEqual(first.touch_save(), 0)
        first.unmount()
        m = self.mount(self.dest, srcs=[src],
                       extra=["-o", "allow_other", "--uid", str(NOBODY), "--gid", str(NOGROUP)])
        out = as_user(["cat", os.path.join(m.prev, "secret.pt"),
                       os.path.join(m.prev, "private", "x")])
        self.assertEqual(out.stdout, "tensory")
        st = os.stat(os.path.join(m.prev, "secret.pt"))
        self.assertEqual((st.st_uid, stat.S_IMODE(st.st_mode)), (NOBODY, 0o600))
        # resuming: copy prev/ into save/ as that user
        as_user(["cp", "-a", m.prev + "/.", m.save + "/"])
        self.assertEqual(open(os.path.join(m.save, "private", "x")).read(), "y")

    def test_without_uid_the_mount_stays_the_daemons(self):
        m = self.mount(self.dest, extra=["-o", "allow_other"])
        self.assertEqual(os.stat(m.save).st_uid, 0)
        r = as_user(["touch", os.path.join(m.save, "f")], check=False)
        self.assertIn("Permission denied", r.stderr)


class DirectIoTest(MountTest):
    def setUp(self):
        super().setUp()
        os.chmod(self.base, 0o755)
        self.dest = self.path("dest", "ck.tar.gz")

    def test_dd_oflag_and_iflag_direct(self):
        m = self.mount(self.dest, extra=["-o", "allow_other", "--uid", str(NOBODY)])
        data = os.urandom(4 << 20)
        src = self.path("in.bin")
        open(src, "wb").write(data)
        os.chmod(src, 0o644)
        for who, name in ((None, "root.bin"), (NOBODY, "nobody.bin")):
            out = os.path.join(m.save, name)
            cmd = ["dd", f"if={src}", f"of={out}", "bs=1M", "oflag=direct", "status=none"]
            (as_user(cmd) if who else subprocess.run(cmd, check=True))
            self.assertEqual(open(out, "rb").read(), data, name)
            back = self.path(name + ".back")
            cmd = ["dd", f"if={out}", "bs=1M", "iflag=direct", "status=none"]
            res = as_user(cmd, text=False) if who else subprocess.run(
                cmd, check=True, capture_output=True)
            self.assertEqual(res.stdout, data, name)
        # O_RDWR with O_DIRECT, 4 KiB-aligned buffers from mmap
        code = """
            import mmap, os, sys
            fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT | os.O_DIRECT, 0o644)
            buf = mmap.mmap(-1, 8192)
            buf.write(b"z" * 8192)
            assert os.write(fd, buf) == 8192
            os.lseek(fd, 0, 0)
            rb = mmap.mmap(-1, 8192)
            assert os.readv(fd, [rb]) == 8192 and rb[:] == b"z" * 8192
            os.close(fd)
        """
        py_as_user(code, os.path.join(m.save, "rw.bin"))
        self.assertEqual(m.touch_save(), 0)
        with tarfile.open(self.dest, "r:*") as t:
            self.assertEqual(t.extractfile("root.bin").read(), data)
            self.assertEqual(t.extractfile("nobody.bin").read(), data)
            self.assertEqual(t.extractfile("rw.bin").read(), b"z" * 8192)


    def test_direct_reads_of_prev_in_large_requests(self):
        """4 MiB O_DIRECT reads under prev/, before and after the data is fetched: the kernel
        splits them into the largest requests the mount takes, each answered whole (a
        reply larger than the splice pipe once went through a fresh buffer per request)."""
        src = self.path("src", "ck.tar.gz")
        first = self.mount(src, name="first")
        data = os.urandom((9 << 20) + 12345)
        open(os.path.join(first.save, "w.bin"), "wb").write(data)
        self.assertEqual(first.touch_save(), 0)
        first.unmount()
        m = self.mount(self.dest, srcs=[src], extra=["-o", "allow_other"])
        path = os.path.join(m.prev, "w.bin")
        for who in (NOBODY, None):  # the first read waits for the fetch, the second not
            cmd = ["dd", f"if={path}", "bs=4M", "iflag=direct", "status=none"]
            res = as_user(cmd, text=False) if who else subprocess.run(
                cmd, check=True, capture_output=True)
            self.assertEqual(res.stdout, data, who)


class LeftOutTest(MountTest):
    """What the named readers refuse never reaches the object; a warning names it."""

    def test_absolute_and_escaping_symlinks_fifos_and_sockets(self):
        import socket
        dest = self.path("dest", "ck.tar.gz")
        m = self.mount(dest)
        s = m.save
        os.makedirs(os.path.join(s, "sub"))
        open(os.path.join(s, "sub", "w.pt"), "w").write("w")
        open(os.path.join(s, "top.pt"), "w").write("t")
        os.symlink("/etc/hostname", os.path.join(s, "abs"))
        os.symlink("../../../etc/passwd", os.path.join(s, "escape"))
        os.symlink("../top.pt", os.path.join(s, "sub", "climb"))  # sub/../top.pt: inside
        os.symlink("w.pt", os.path.join(s, "sub", "ok"))
        os.symlink("../sub/w.pt", os.path.join(s, "sub", "up-and-down"))
        os.mkfifo(os.path.join(s, "fifo"))
        sock = socket.socket(socket.AF_UNIX)
        sock.bind(os.path.join(s, "sock"))
        self.addCleanup(sock.close)
        self.assertEqual(m.touch_save(), 0)
        with tarfile.open(dest, "r:*") as t:
            names = set(t.getnames())
        self.assertEqual(names, {"sub", "sub/w.pt", "sub/climb", "sub/ok", "sub/up-and-down", "top.pt"})
        last = m.status()["save"]["last"]
        self.assertEqual((last["result"], last["skipped"]), ("ok", 4))
        for name in ("abs", "escape", "fifo", "sock"):
            self.assertIn(name, last["warnings"])
        self.assertIn("left out of the checkpoint", m.logtext())
        # every reader SPEC 3 names extracts it
        for tool, cmd in (("gnu", ["tar", "-xzf", dest, "-C"]),
                          ("bsd", ["bsdtar", "-xf", dest, "-C"])):
            out = self.path("x-" + tool)
            os.makedirs(out)
            subprocess.run(cmd + [out], check=True)
            self.assertEqual(open(os.path.join(out, "sub", "climb")).read(), "t")
        if hasattr(tarfile, "data_filter"):
            out = self.path("x-py")
            with tarfile.open(dest, "r:*") as t:
                t.extractall(out, filter="data")
            self.assertEqual(open(os.path.join(out, "sub", "up-and-down")).read(), "w")
        # nothing written was lost: save/ still holds them all
        self.assertTrue(os.path.islink(os.path.join(s, "abs")))

    def test_exclude_and_ckptfsignore(self):
        dest = self.path("dest", "ck.tar.gz")
        m = self.mount(dest, extra=["--exclude", "*.log", "--exclude", "/scratch"])
        s = m.save
        for d in ("runs/exp1", "scratch", "keep/scratch"):
            os.makedirs(os.path.join(s, d))
        files = {"model.pt": "w", "train.log": "l", "runs/exp1/events.out.tfevents.1": "e",
                 "runs/exp1/cfg.json": "c", "scratch/tmp.bin": "t", "keep/scratch/x": "k",
                 "keep/a.log": "l2", "cache/big.npy": "b"}
        for rel, text in files.items():
            os.makedirs(os.path.dirname(os.path.join(s, rel)), exist_ok=True)
            open(os.path.join(s, rel), "w").write(text)
        open(os.path.join(s, ".ckptfsignore"), "w").write(
            "# TensorBoard and caches\n\nevents.out.tfevents.*\ncache\n")
        self.assertEqual(m.touch_save(), 0)
        with tarfile.open(dest) as t:
            names = set(t.getnames())
        self.assertEqual(names, {".ckptfsignore", "model.pt", "runs", "runs/exp1",
                                 "runs/exp1/cfg.json", "keep", "keep/scratch",
                                 "keep/scratch/x"})
        last = m.status()["save"]["last"]
        self.assertEqual((last["excluded"], last["skipped"]), (5, 0))  # 2 dirs, 3 files
        self.assertTrue(os.path.exists(os.path.join(s, "train.log")))  # still in save/

    def test_a_users_manifest_name_is_left_out_of_a_plain_save(self):
        dest = self.path("dest", "ck.tar.gz")
        m = self.mount(dest)
        open(os.path.join(m.save, ".ckptfs-world"), "w").write("not a manifest\n")
        open(os.path.join(m.save, "w.pt"), "w").write("w")
        self.assertEqual(m.touch_save(), 0)
        with tarfile.open(dest) as t:
            self.assertEqual(t.getnames(), ["w.pt"])
        self.assertIn(".ckptfs-world", m.status()["save"]["last"]["warnings"])
        rd = self.mount(self.path("dest", "next.tgz"), [dest], name="rd")
        self.assertEqual(os.listdir(rd.prev), ["w.pt"])  # restorable


if __name__ == "__main__":
    import unittest
    unittest.main()
