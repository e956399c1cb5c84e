"""--no-FUSE mode: prev/ restored eagerly into MOUNTPOINT/prev, save/ a plain directory,
saves on .save (inotify), on command exit and on SIGTERM, in the same object format."""
import json
import os
import signal
import subprocess
import sys
import tarfile
import time

from ckfs import BIN, MountTest, make_sample_tree, tree, wait_for
from test_roundtrip import extract_python


def ck(*args, timeout=120, **kw):
    return subprocess.run([BIN, *args], capture_output=True, text=True, timeout=timeout, **kw)


class NoFuseTest(MountTest):
    def setUp(self):
        super().setUp()
        self.src = os.path.dirname(self.path("src", "x"))
        make_sample_tree(self.src)
        self.want = tree(self.src)
        self.prev = self.path("prev.tgz")
        self.assertEqual(ck("put", self.src, self.prev).returncode, 0)
        self.dest = self.path("dest", "next.tgz")
        self.mnt = os.path.join(self.base, "mnt")

    def run_nf(self, script, *extra, srcs=None):
        args = ["run", "--no-fuse", "--dest", self.dest]
        for s in (srcs if srcs is not None else [self.prev]):
            args += ["--src", s]
        return ck(*args, *extra, self.mnt, "--", "sh", "-c", script)

    def test_prev_is_restored_and_save_on_exit(self):
        r = self.run_nf('cp -a "$CKPTFS_MOUNT/prev/." "$CKPTFS_MOUNT/save/" && '
                        'test ! -e /proc/self/mounts || ! grep -q " $CKPTFS_MOUNT " /proc/mounts')
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(tree(os.path.join(self.mnt, "prev")), self.want)
        out = os.path.dirname(self.path("out", "x"))
        extract_python(self.dest, out)
        self.assertEqual(tree(out), self.want)

    def test_save_subcommand_waits_for_the_save(self):
        script = ('echo one > "$CKPTFS_MOUNT/save/a" && "$0" save "$CKPTFS_MOUNT" && '
                  'tar -tzf "$1" > "$2" && echo two > "$CKPTFS_MOUNT/save/b" && exit 4')
        listing = self.path("listing")
        r = ck("run", "--no-fuse", "--dest", self.dest, self.mnt, "--", "sh", "-c", script, BIN,
               self.dest, listing)
        self.assertEqual(r.returncode, 4, r.stderr)
        self.assertEqual(open(listing).read().split(), ["a"])  # durable when save returned
        with tarfile.open(self.dest) as t:  # exit 4: "b" is not uploaded (--save-on-exit)
            self.assertEqual(sorted(t.getnames()), ["a"])
        st = json.load(open(os.path.join(self.mnt, ".status")))
        self.assertEqual(st["mode"], "no-fuse")
        self.assertEqual(st["save"]["saves_ok"], 1)
        self.assertEqual(st["save"]["last"]["trigger"], "control")

    def test_touching_save_saves(self):
        script = ('echo x > "$CKPTFS_MOUNT/save/f" && touch "$CKPTFS_MOUNT/.save" && '
                  'while [ ! -s "$1" ]; do sleep 0.05; done; '
                  'echo changed > "$CKPTFS_MOUNT/save/f"')
        r = ck("run", "--no-fuse", "--no-save-on-unmount", "--dest", self.dest, self.mnt, "--",
               "sh", "-c", script, "sh", self.dest, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        with tarfile.open(self.dest) as t:
            self.assertEqual(t.extractfile("f").read(), b"x\n")  # the exit did not save

    def test_sigterm_saves(self):
        ready = self.path("ready")
        p = subprocess.Popen([BIN, "--no-fuse", "--dest", self.dest, self.mnt],
                             stderr=subprocess.PIPE, text=True)
        self.addCleanup(lambda: p.poll() is None and p.kill())
        wait_for(lambda: os.path.exists(os.path.join(self.mnt, ".status")), 20, "the server")
        open(os.path.join(self.mnt, "save", "late"), "w").write("late")
        p.send_signal(signal.SIGTERM)
        self.assertEqual(p.wait(30), 0, p.stderr.read())
        with tarfile.open(self.dest) as t:
            self.assertEqual(t.getnames(), ["late"])

    def test_each_save_holds_the_changes_before_it(self):
        """Three `ckptfs save` rounds through the saver thread: each object holds exactly
        what save/ held when its save was asked for; .status counts generations 1..3."""
        lists = [self.path(f"list{i}") for i in range(3)]
        script = "; ".join(
            f'echo {i} > "$CKPTFS_MOUNT/save/f{i}" && "$0" save "$CKPTFS_MOUNT" && '
            f'tar -tzf "$1" | sort > {lists[i]}' for i in range(3)) + "; exit 3"
        r = ck("run", "--no-fuse", "--dest", self.dest, self.mnt, "--", "sh", "-c", script, BIN,
               self.dest)
        self.assertEqual(r.returncode, 3, r.stderr)
        for i in range(3):
            self.assertEqual(open(lists[i]).read().split(), [f"f{k}" for k in range(i + 1)])
        st = json.load(open(os.path.join(self.mnt, ".status")))
        self.assertEqual((st["save"]["saves_ok"], st["save"]["last"]["generation"]), (3, 3))
        self.assertFalse(st["save"]["dirty"])

    def test_a_failed_save_says_so_and_stays_dirty(self):
        blocker = self.path("blocker")
        open(blocker, "w").write("a file where a folder should be")
        dest = os.path.join(blocker, "next.tgz")
        script = ('echo x > "$CKPTFS_MOUNT/save/f" && "$0" save "$CKPTFS_MOUNT"; '
                  'echo $? > "$1"')
        rc_file = self.path("rc")
        r = ck("run", "--no-fuse", "--no-save-on-unmount", "--dest", dest, self.mnt, "--", "sh",
               "-c", script, BIN, rc_file)
        self.assertEqual(open(rc_file).read().strip(), "1", r.stderr)
        self.assertIn("the save failed", r.stderr)
        self.assertIn("blocker", r.stderr)  # the error names where
        st = json.load(open(os.path.join(self.mnt, ".status")))
        self.assertEqual(st["save"]["last"]["result"], "failed")
        self.assertTrue(st["save"]["dirty"])
        self.assertEqual(open(os.path.join(self.mnt, "save", "f")).read(), "x\n")

    def test_autosave_is_refused_with_a_warning(self):
        r = self.run_nf('echo x > "$CKPTFS_MOUNT/save/f"', "--autosave", "quiet=1")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("--autosave is not available with --no-fuse", r.stderr)
        with tarfile.open(self.dest) as t:  # saved at exit all the same
            self.assertEqual(t.getnames(), ["f"])

    def test_metrics_textfile(self):
        prom = self.path("ckptfs.prom")
        r = self.run_nf('echo x > "$CKPTFS_MOUNT/save/f"', "--metrics", prom)
        self.assertEqual(r.returncode, 0, r.stderr)
        text = open(prom).read()
        self.assertIn('ckptfs_saves_total{result="ok"} 1\n', text)
        self.assertIn('ckptfs_load_state{state="ready"} 1\n', text)

    def test_nothing_changed_nothing_saved(self):
        r = self.run_nf("true")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertFalse(os.path.exists(self.dest))

    def test_a_bad_previous_checkpoint_stops_before_the_command(self):
        import io
        bad = self.path("bad.tgz")
        with tarfile.open(bad, "w:gz") as t:  # a hostile entry
            info = tarfile.TarInfo("../escape")
            info.size = 4
            t.addfile(info, io.BytesIO(b"evil"))
        marker = self.path("ran")
        r = self.run_nf(f'touch {marker}', srcs=[bad])
        self.assertEqual(r.returncode, 125, r.stderr)
        self.assertFalse(os.path.exists(marker))
        self.assertIn("escape", r.stderr)

    def test_first_attempt_has_an_empty_prev(self):
        r = self.run_nf('test -z "$(ls -A "$CKPTFS_MOUNT/prev")"', srcs=['""'])
        self.assertEqual(r.returncode, 0, r.stderr)


if __name__ == "__main__":
    import unittest
    unittest.main()
