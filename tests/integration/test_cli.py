"""The subcommands: put/get/ls use the save and restore pipelines without mounting
(file:// and http:// against nginx); save/status/wait drive a running mount through its
control files; the mount.fuse3 convention (mount -t fuse.ckptfs, fstab)."""
import gzip
import io
import json
import os
import re
import shutil
import subprocess
import tarfile
import unittest

from ckfs import BIN, MountTest, Nginx, is_mounted, make_sample_tree, tree, wait_for
from test_roundtrip import extract_python


def ck(*args, timeout=120, **kw):
    return subprocess.run([BIN, *args], capture_output=True, text=True, timeout=timeout, **kw)


class ToolsTest(MountTest):
    def setUp(self):
        super().setUp()
        self.src = os.path.dirname(self.path("src", "x"))
        make_sample_tree(self.src, big=1 << 20)
        self.want = tree(self.src)

    def listing(self, uri):
        r = ck("ls", uri)
        self.assertEqual(r.returncode, 0, r.stderr)
        return sorted(line.rstrip("/").split(" -> ")[0] for line in r.stdout.splitlines())

    def test_put_get_ls_file(self):
        obj = self.path("dest", "ck.tgz")
        r = ck("put", self.src, "file://" + obj)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stderr, r"put: .* tar, \d+ entries")
        out = os.path.dirname(self.path("py", "x"))
        extract_python(obj, out)  # the object format is SPEC 3's
        self.assertEqual(tree(out), self.want)
        self.assertEqual(self.listing(obj), sorted(self.want))
        got = os.path.join(self.base, "got")
        r = ck("get", "file://" + obj, got)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(tree(got), self.want)

    def test_ls_long_shows_modes_sizes_and_links(self):
        obj = self.path("ck.tgz")
        self.assertEqual(ck("put", self.src, obj).returncode, 0)
        r = ck("ls", "-l", obj)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout, r"-0640 +1048576 .* model\.pt\n")
        self.assertIn("latest -> model.pt", r.stdout)
        self.assertRegex(r.stdout, r"d0755 .* sub/\n")

    def test_ls_of_a_foreign_archive_and_of_a_payload(self):
        foreign = self.path("flyte.tgz")
        with tarfile.open(foreign, "w:gz") as t:  # what flyte-sdk writes: one gzip stream
            t.add(os.path.join(self.src, "config.json"), "config.json")
            t.add(os.path.join(self.src, "sub"), "sub")
        self.assertEqual(self.listing(foreign),
                         ["config.json", "sub", "sub/cfg", "sub/deeper", "sub/deeper/empty",
                          "sub/state.bin"])
        raw = self.path("raw.bin")
        open(raw, "wb").write(b"\x00not a tar" * 100)
        self.assertEqual(self.listing(raw), ["payload"])

    def test_put_of_a_lone_payload_is_raw_and_gets_back_raw(self):
        d = os.path.dirname(self.path("p", "x"))
        open(os.path.join(d, "payload"), "wb").write(b"raw bytes")
        obj = self.path("raw")
        self.assertEqual(ck("put", d, obj).returncode, 0)
        self.assertEqual(open(obj, "rb").read(), b"raw bytes")
        got = os.path.join(self.base, "got")
        self.assertEqual(ck("get", obj, got).returncode, 0)
        self.assertEqual(open(os.path.join(got, "payload"), "rb").read(), b"raw bytes")

    def test_get_refuses_a_non_empty_dir_and_reports_missing(self):
        obj = self.path("ck.tgz")
        self.assertEqual(ck("put", self.src, obj).returncode, 0)
        busy = os.path.dirname(self.path("busy", "x"))
        open(os.path.join(busy, "keep"), "w").write("mine")
        r = ck("get", obj, busy)
        self.assertEqual(r.returncode, 1)
        self.assertIn("not empty", r.stderr)
        self.assertEqual(os.listdir(busy), ["keep"])
        r = ck("get", self.path("missing"), self.path("x", "out"))
        self.assertEqual(r.returncode, 3, r.stderr)
        r = ck("ls", self.path("missing"))
        self.assertEqual(r.returncode, 3, r.stderr)

    def test_get_takes_the_first_existing_source(self):
        obj = self.path("ck.tgz")
        self.assertEqual(ck("put", self.src, obj).returncode, 0)
        empty = self.path("empty")
        open(empty, "w").close()
        got = os.path.join(self.base, "got")
        r = ck("get", self.path("missing"), empty, obj, got)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(tree(got), self.want)

    def test_get_refuses_a_hostile_archive(self):
        evil = self.path("evil.tgz")
        with tarfile.open(evil, "w:gz") as t:
            info = tarfile.TarInfo("../escape")
            info.size = 4
            t.addfile(info, io.BytesIO(b"evil"))
        r = ck("get", evil, self.path("x", "out"))
        self.assertEqual(r.returncode, 1)
        self.assertIn("escape", r.stderr)
        self.assertFalse(os.path.exists(self.path("x", "escape")))

    def test_put_ls_get_over_http_ls_reads_only_the_index(self):
        nginx = Nginx(self.base)
        self.addCleanup(nginx.stop)
        url = nginx.url + "/runs/1/ck"
        r = ck("put", self.src, url)
        self.assertEqual(r.returncode, 0, r.stderr)
        size = os.path.getsize(os.path.join(nginx.data, "runs", "1", "ck"))
        before = len(nginx.access_log())
        self.assertEqual(self.listing(url), sorted(self.want))
        gets = [int(m) for m in re.findall(r'"GET /runs/1/ck HTTP/1.1" 20[06] (\d+)',
                                           nginx.access_log()[before:])]
        self.assertTrue(gets)
        self.assertLess(sum(gets), size // 4)  # the tail and the index, not the data
        got = os.path.join(self.base, "got")
        r = ck("get", url, got)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(tree(got), self.want)

    def test_progress_lines_when_not_a_terminal(self):
        big = os.path.dirname(self.path("big", "x"))
        with open(os.path.join(big, "blob"), "wb") as f:
            f.write(os.urandom(1 << 20) * 48)
        r = ck("put", "--compress", "gzip-9", big, self.path("big.tgz"))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertNotIn("\r", r.stderr)  # plain lines, no bar, off a terminal


def help_options():
    """The long options and the -o keys that `ckptfs --help` lists (the option table)."""
    text = subprocess.run([BIN, "--help"], capture_output=True, text=True, check=True).stdout
    longs = set(re.findall(r"(?<![\w-])(--[a-z][a-z-]*)", text))
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if "options as KEY" in line) + 1
    keys = set()
    for line in lines[start:]:  # "keys: dest src ...", then more names, indented
        m = re.fullmatch(r" {20,}(?:keys:)?([a-z_ ]+)", line)
        if not m:
            break
        keys.update(m.group(1).split())
    return longs, keys


class DocsAgreeTest(unittest.TestCase):
    """--help comes from the option table; the man page, README and docs/operations.md are
    written by hand: every option and -o key is in each of them, and they name none that
    the binary lacks."""

    def test_man_page_readme_and_operations_list_every_option(self):
        longs, keys = help_options()
        self.assertIn("--retries", longs)
        self.assertIn("world_timeout", keys)
        root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
        man = open(os.path.join(root, "packaging", "ckptfs.1")).read()
        readme = open(os.path.join(root, "README.md")).read()
        ops = open(os.path.join(root, "docs", "operations.md")).read()
        text = re.sub(r"\\f[BIRP]", " ", man.replace("\\-", "-"))  # roff: \- and fonts
        man_longs = set(re.findall(r"(?<![\w-])(--[a-z][a-z-]*)", text))
        self.assertEqual(sorted(longs - man_longs), [], "options missing in the man page")
        self.assertEqual(sorted(man_longs - longs), [], "the man page names unknown options")
        self.assertEqual(sorted(o for o in longs if o not in readme), [],
                         "options missing in README.md")
        self.assertEqual(sorted(k for k in keys if f"\\fB{k}" not in man), [],
                         "-o keys missing in the man page")
        self.assertEqual(sorted(k for k in keys if f"`{k}" not in ops), [],
                         "-o keys missing in docs/operations.md")


class ControlTest(MountTest):
    def test_save_status_wait(self):
        dest = self.path("dest", "ck")
        m = self.mount(dest)
        open(os.path.join(m.save, "f"), "w").write("one")
        r = ck("save", m.mnt)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("saved: generation 1", r.stderr)
        with tarfile.open(dest) as t:
            self.assertEqual(t.getnames(), ["f"])
        r = ck("status", m.mnt)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout, r"last +generation 1 \(control\): done")
        self.assertIn("unsaved changes: no", r.stdout)
        r = ck("status", "--json", m.mnt)
        self.assertEqual(json.loads(r.stdout)["save"]["last"]["generation"], 1)
        open(os.path.join(m.save, "g"), "w").write("two")
        r = ck("save", "--async", m.mnt)
        self.assertEqual(r.returncode, 0, r.stderr)
        r = ck("wait", "--timeout", "30", m.mnt)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(m.status()["save"]["last"]["generation"], 2)
        self.assertIsNone(m.status()["save"]["current"])

    def test_save_reports_a_failure(self):
        m = self.mount("/proc/1/no-such-dir/ck")  # fails at once, no retries
        open(os.path.join(m.save, "f"), "w").write("x")
        r = ck("save", m.mnt)
        self.assertEqual(r.returncode, 1)
        self.assertIn("the save failed", r.stderr)
        r = ck("status", m.mnt)
        self.assertIn("error:", r.stdout)
        self.assertNotIn("error:    none", r.stdout)

    def test_a_failed_mount_names_its_cause_and_suggests_no_fuse(self):
        # /dev/fuse is root's 0600 here: another user meets the usual container failure
        os.chmod(self.base, 0o777)
        r = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                            BIN, "-f", "--dest", self.path("d"), "--cache-dir",
                            self.path("c"), self.path("mnt")],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 1)
        self.assertIn("cannot mount", r.stderr)
        self.assertIn("/dev/fuse cannot be opened (Permission denied)", r.stderr)
        self.assertIn("--no-fuse", r.stderr)

    def test_a_missing_mountpoint_is_made(self):
        mnt = self.path("no", "such", "mountpoint")
        p = subprocess.Popen([BIN, "-f", "--dest", self.path("d"), mnt],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            wait_for(lambda: is_mounted(mnt) or p.poll() is not None, 10, "the mount")
            self.assertTrue(is_mounted(mnt), p.stderr.read() if p.poll() is not None else "")
        finally:
            subprocess.run(["fusermount3", "-u", mnt])
            p.wait(30)

    def test_not_a_mount(self):
        d = os.path.dirname(self.path("plain", "x"))
        for sub in ("save", "status", "wait"):
            r = ck(sub, d)
            self.assertEqual(r.returncode, 1, sub)
            self.assertIn(".status", r.stderr)


class FstabTest(MountTest):
    """mount.fuse3 runs "ckptfs SOURCE MOUNTPOINT -o OPTS" (found in PATH)."""

    def env(self):
        e = os.environ.copy()
        e["PATH"] = os.path.dirname(os.path.abspath(BIN)) + ":" + e.get("PATH", "")
        return e

    def test_mount_t_fuse_ckptfs(self):
        if os.path.basename(BIN) != "ckptfs" or not shutil.which("mount.fuse3"):
            self.skipTest("needs mount.fuse3 and a binary named ckptfs")
        prev = self.path("prev.tgz")
        self.assertEqual(subprocess.run([BIN, "put", os.path.dirname(__file__) + "/../tools",
                                         prev], capture_output=True).returncode, 0)
        dest = self.path("dest", "next.tgz")
        mnt = os.path.dirname(self.path("mnt", "x"))
        cache = self.path("cache")
        opts = f"src={prev},cache_dir={cache},save_wait=5,log_level=debug"
        # What mount(8) runs for "mount -t fuse.ckptfs" or an fstab line; mount itself
        # would look ckptfs up in a fixed PATH, so the helper is called directly.
        r = subprocess.run(["mount.fuse3", "file://" + dest, mnt, "-t", "ckptfs", "-o", opts],
                           capture_output=True, text=True, env=self.env(), timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.addCleanup(lambda: is_mounted(mnt) and subprocess.run(["umount", "-l", mnt]))
        self.assertTrue(is_mounted(mnt))
        self.assertIn("nginx-dav", os.listdir(os.path.join(mnt, "prev")))
        open(os.path.join(mnt, "save", "f"), "w").write("fstab")
        self.assertEqual(subprocess.run(["umount", mnt]).returncode, 0)
        wait_for(lambda: os.path.exists(dest), 20, "the save on unmount")
        with tarfile.open(dest) as t:
            self.assertEqual(t.getnames(), ["f"])

    def test_source_and_o_options_in_the_foreground(self):
        dest = self.path("dest", "ck")
        mnt = os.path.dirname(self.path("mnt", "x"))
        p = subprocess.Popen([BIN, "ckptfs", mnt, "-f", "-o",
                              f"dest={dest},no_save_on_unmount,cache_dir={self.path('c')}"],
                             stderr=subprocess.PIPE, text=True)
        self.addCleanup(lambda: p.poll() is None and p.kill())
        wait_for(lambda: is_mounted(mnt) or p.poll() is not None, 10, "the mount")
        self.assertTrue(is_mounted(mnt), p.stderr.read() if p.poll() is not None else "")
        open(os.path.join(mnt, "save", "f"), "w").write("x")
        subprocess.run(["fusermount3", "-u", mnt], check=True)
        self.assertEqual(p.wait(30), 0)
        self.assertFalse(os.path.exists(dest))  # no_save_on_unmount was applied


if __name__ == "__main__":
    import unittest
    unittest.main()
