"""`ckptfs run MOUNTPOINT -- COMMAND` (SPEC 1): the command runs on a live mount with
CKPTFS_MOUNT set, its exit status is ckptfs's, SIGTERM/SIGINT reach it, and what it left
in save/ is saved when it exits, within --grace after SIGTERM."""
import os
import signal
import subprocess
import sys
import tarfile
import time

from ckfs import BIN, MountTest, is_mounted, wait_for


def names(obj):
    with tarfile.open(obj, "r:*") as t:
        return sorted(m.name for m in t.getmembers())


def member(obj, name):
    with tarfile.open(obj, "r:*") as t:
        return t.extractfile(name).read()


# A command that marks itself ready, writes a file into save/ when it gets SIGTERM (or
# SIGINT) and exits with a chosen status.
HANDLER = r"""
import os, signal, sys, time
mnt = os.environ["CKPTFS_MOUNT"]
def on(sig, _):
    open(os.path.join(mnt, "save", "got-%d" % sig), "w").write("bye")
    sys.exit(int(sys.argv[2]))
signal.signal(signal.SIGTERM, on)
signal.signal(signal.SIGINT, on)
open(os.path.join(mnt, "save", "before"), "w").write("work")
open(sys.argv[1], "w").write("ready")
while True:
    time.sleep(0.05)
"""


class RunTest(MountTest):
    def run_ck(self, cmd, extra=(), dest=None, timeout=60, mnt=None):
        self.dest = dest or self.path("dest", "ck.tgz")
        self.mnt = mnt or os.path.join(self.base, "mnt")
        args = [BIN, "run", "--dest", self.dest, "--cache-dir", self.path("cache"),
                *extra, self.mnt, "--", *cmd]
        return subprocess.run(args, capture_output=True, text=True, timeout=timeout)

    def start_ck(self, cmd, extra=()):
        self.dest = self.path("dest", "ck.tgz")
        self.mnt = os.path.join(self.base, "mnt")
        self.ready = self.path("ready")
        args = [BIN, "run", "--dest", self.dest, *extra, self.mnt, "--", *cmd]
        p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.addCleanup(self.cleanup_proc, p)
        wait_for(lambda: os.path.exists(self.ready) or p.poll() is not None, 20, "the command")
        self.assertIsNone(p.poll(), p.stderr.read() if p.poll() is not None else "")
        return p

    def cleanup_proc(self, p):
        if p.poll() is None:
            p.kill()
            p.wait()
        if is_mounted(self.mnt):
            subprocess.run(["fusermount3", "-uz", self.mnt])

    def test_command_sees_the_mount_and_its_status_is_returned(self):
        script = ('test "$CKPTFS_MOUNT" = "$1" && test -d "$CKPTFS_MOUNT/prev" && '
                  'test -f "$CKPTFS_MOUNT/.status" && exit 7')
        mnt = os.path.join(self.base, "mnt")
        r = self.run_ck(["sh", "-c", script, "sh", mnt], mnt=mnt)
        self.assertEqual(r.returncode, 7, r.stderr)
        self.assertFalse(is_mounted(mnt))

    def test_save_on_exit(self):
        r = self.run_ck(["sh", "-c", 'mkdir "$CKPTFS_MOUNT/save/d" && '
                         'echo hello > "$CKPTFS_MOUNT/save/d/f"'])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(names(self.dest), ["d", "d/f"])
        self.assertEqual(member(self.dest, "d/f"), b"hello\n")
        self.assertFalse(is_mounted(self.mnt))

    def test_metrics_textfile(self):
        prom = self.path("m", "ckptfs.prom")
        r = self.run_ck(["sh", "-c", 'echo hello > "$CKPTFS_MOUNT/save/f" && '
                         'touch "$CKPTFS_MOUNT/.save" && echo again >> "$CKPTFS_MOUNT/save/f"'],
                        extra=["--metrics", prom])
        self.assertEqual(r.returncode, 0, r.stderr)
        text = open(prom).read()
        self.assertIn('ckptfs_saves_total{result="ok"} 2\n', text)  # .save, then the exit
        self.assertIn('ckptfs_saves_total{result="failed"} 0\n', text)
        self.assertRegex(text, r"ckptfs_save_compressed_bytes_total [1-9]\d*\n")
        self.assertRegex(text, r"ckptfs_cache_free_bytes [1-9]\d*\n")
        self.assertEqual([f for f in os.listdir(os.path.dirname(prom))], ["ckptfs.prom"])

    def test_nothing_written_nothing_saved(self):
        r = self.run_ck(["true"])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertFalse(os.path.exists(self.dest))

    def test_no_save_on_unmount_is_honoured(self):
        r = self.run_ck(["sh", "-c", 'echo x > "$CKPTFS_MOUNT/save/f"'],
                        extra=["--no-save-on-unmount"])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertFalse(os.path.exists(self.dest))

    def test_command_killed_by_a_signal_is_128_plus_n(self):
        r = self.run_ck(["sh", "-c", 'echo x > "$CKPTFS_MOUNT/save/f"; kill -KILL $$'])
        self.assertEqual(r.returncode, 128 + signal.SIGKILL, r.stderr)
        self.assertFalse(os.path.exists(self.dest))  # a crash may tear files: not uploaded
        self.assertIn("not uploaded", r.stderr)

    def test_a_crash_keeps_the_good_checkpoint_and_the_unsaved_changes(self):
        # step 100 saved; the next checkpoint half-written when the program is killed
        script = ('echo step100 > "$CKPTFS_MOUNT/save/ckpt.pt" && touch "$CKPTFS_MOUNT/.save" '
                  '&& printf torn > "$CKPTFS_MOUNT/save/ckpt.pt.tmp" && '
                  'printf half > "$CKPTFS_MOUNT/save/ckpt.pt" && kill -KILL $$')
        r = self.run_ck(["sh", "-c", script])
        self.assertEqual(r.returncode, 128 + signal.SIGKILL, r.stderr)
        self.assertEqual(names(self.dest), ["ckpt.pt"])
        self.assertEqual(member(self.dest, "ckpt.pt"), b"step100\n")
        # the unsaved changes stay in the cache dir; a rerun on it re-attaches them
        self.assertEqual(open(self.path("cache", "save", "ckpt.pt.tmp")).read(), "torn")
        r = self.run_ck(["sh", "-c", 'cat "$CKPTFS_MOUNT/save/ckpt.pt.tmp" && '
                         'rm "$CKPTFS_MOUNT/save/ckpt.pt.tmp" && '
                         'echo step200 > "$CKPTFS_MOUNT/save/ckpt.pt"'])
        self.assertEqual((r.returncode, r.stdout), (0, "torn"), r.stderr)
        self.assertEqual(member(self.dest, "ckpt.pt"), b"step200\n")

    def test_a_failed_command_is_not_uploaded_unless_asked(self):
        cmd = ["sh", "-c", 'echo x > "$CKPTFS_MOUNT/save/f"; exit 3']
        r = self.run_ck(cmd)
        self.assertEqual(r.returncode, 3, r.stderr)
        self.assertFalse(os.path.exists(self.dest))
        r = self.run_ck(cmd, extra=["--save-on-exit", "always"])
        self.assertEqual(r.returncode, 3, r.stderr)
        self.assertEqual(names(self.dest), ["f"])

    def test_save_on_exit_never(self):
        r = self.run_ck(["sh", "-c", 'echo x > "$CKPTFS_MOUNT/save/f"'],
                        extra=["--save-on-exit", "never"])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertFalse(os.path.exists(self.dest))

    def test_user_runs_the_command_as_that_user(self):
        os.chmod(self.base, 0o755)
        r = self.run_ck(["sh", "-c", 'id -u > "$CKPTFS_MOUNT/save/who" && id -g >> '
                         '"$CKPTFS_MOUNT/save/who" && touch "$CKPTFS_MOUNT/.save"'],
                        extra=["--user", "65534:65534", "--uid", "65534", "--gid", "65534",
                               "-o", "allow_other"])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(member(self.dest, "who"), b"65534\n65534\n")
        with tarfile.open(self.dest, "r:*") as t:
            self.assertEqual(t.getmember("who").uid, 65534)

    def test_bad_save_on_exit_and_user_are_usage_errors(self):
        for extra in (["--save-on-exit", "sometimes"], ["--user", "bob"], ["--user", "1:x"]):
            r = self.run_ck(["true"], extra=extra)
            self.assertEqual(r.returncode, 2, extra)
            self.assertIn(extra[0], r.stderr)

    def test_command_not_found_is_127(self):
        r = self.run_ck(["/nonexistent/cmd"])
        self.assertEqual(r.returncode, 127, r.stderr)
        self.assertIn("/nonexistent/cmd", r.stderr)
        self.assertFalse(is_mounted(self.mnt))

    def test_mount_failure_does_not_run_the_command(self):
        marker = self.path("ran")
        r = self.run_ck(["touch", marker], dest="bogus://nowhere/x")
        self.assertEqual(r.returncode, 125, r.stderr)
        self.assertFalse(os.path.exists(marker))
        self.assertIn("bogus", r.stderr)

    def test_usage_without_command(self):
        r = subprocess.run([BIN, "run", "--dest", "/tmp/x", self.path("m")],
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 2)
        self.assertIn("--", r.stderr)

    def test_sigterm_is_forwarded_and_the_result_saved(self):
        p = self.start_ck([sys.executable, "-c", HANDLER, self.path("ready"), "0"])
        t0 = time.monotonic()
        p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=30)
        self.assertEqual(p.returncode, 0, err)
        self.assertLess(time.monotonic() - t0, 10)
        self.assertEqual(names(self.dest), ["before", "got-%d" % signal.SIGTERM])
        self.assertFalse(is_mounted(self.mnt))

    def test_sigint_is_forwarded_with_the_command_status(self):
        p = self.start_ck([sys.executable, "-c", HANDLER, self.path("ready"), "5"])
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=30)
        self.assertEqual(p.returncode, 5, err)
        self.assertEqual(names(self.dest), ["before", "got-%d" % signal.SIGINT])

    def test_grace_bounds_a_command_that_ignores_sigterm(self):
        script = ('trap "" TERM; echo work > "$CKPTFS_MOUNT/save/f"; echo > "$0"; '
                  'while :; do sleep 0.1; done')
        # always: a command killed at the end of its grace time is not saved by default
        # (it may have torn a file); here the save's own bound is what is tested
        p = self.start_ck(["sh", "-c", script, self.path("ready")],
                          extra=["--grace", "3", "--save-on-exit", "always"])
        t0 = time.monotonic()
        p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=30)
        took = time.monotonic() - t0
        self.assertEqual(p.returncode, 128 + signal.SIGKILL, err)
        self.assertGreaterEqual(took, 1.5)  # the command had 2/3 of the grace
        self.assertLess(took, 6)
        self.assertEqual(names(self.dest), ["f"])  # and the save made it within --grace
        self.assertFalse(is_mounted(self.mnt))

    def test_a_save_longer_than_the_grace_is_abandoned_atomically(self):
        # A destination that never answers: the final save cannot finish.
        import socket
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        self.addCleanup(s.close)
        url = "http://127.0.0.1:%d/ck" % s.getsockname()[1]
        self.mnt = os.path.join(self.base, "mnt")
        ready = self.path("ready")
        script = 'echo x > "$CKPTFS_MOUNT/save/f"; echo > "$0"; exec sleep 100'
        p = subprocess.Popen([BIN, "run", "--dest", url, "--grace", "2", self.mnt, "--", "sh",
                              "-c", script, ready], stderr=subprocess.PIPE, text=True)
        self.addCleanup(self.cleanup_proc, p)
        wait_for(lambda: os.path.exists(ready), 20, "the command")
        t0 = time.monotonic()
        p.send_signal(signal.SIGTERM)
        _, err = p.communicate(timeout=30)
        self.assertLess(time.monotonic() - t0, 6)
        self.assertEqual(p.returncode, 128 + signal.SIGTERM, err)
        self.assertIn("did not finish within --grace", err)
        wait_for(lambda: not is_mounted(self.mnt), 5, "the unmount")


if __name__ == "__main__":
    import unittest
    unittest.main()
