""".save, fsync on save/, unmount, .status, laziness, EROFS and save consistency (SPEC 2, 4)."""
import json
import os
import subprocess
import tarfile
import threading
import time

from ckfs import MountTest, wait_for


def members(path):
    with tarfile.open(path, "r:*") as t:
        return {m.name: (t.extractfile(m).read() if m.isfile() else None) for m in t}


class ControlTest(MountTest):
    def setUp(self):
        super().setUp()
        self.dest = self.path("dest", "ck.tar.gz")

    def test_touch_save_is_durable_when_it_returns(self):
        m = self.mount(self.dest)
        open(os.path.join(m.save, "a"), "w").write("one")
        out = subprocess.run(f"touch {m.mnt}/.save && echo saved", shell=True,
                             capture_output=True, text=True)
        self.assertEqual(out.stdout, "saved\n")
        self.assertEqual(members(self.dest), {"a": b"one"})
        last = m.status()["save"]["last"]
        self.assertEqual((last["generation"], last["trigger"], last["result"]), (1, "control", "ok"))
        self.assertGreater(last["bytes"], 0)
        self.assertGreater(last["compressed_bytes"], 0)
        for key in ("seconds", "mb_per_s", "error", "kind"):
            self.assertIn(key, last)

    def test_failed_save_fails_touch_and_keeps_the_old_object(self):
        m = self.mount(self.dest)
        open(os.path.join(m.save, "a"), "w").write("old")
        self.assertEqual(m.touch_save(), 0)
        before = open(self.dest, "rb").read()
        open(os.path.join(m.save, "a"), "w").write("new")
        d = os.path.dirname(self.dest)
        subprocess.run(["chattr", "+i", d], check=True)  # the destination refuses writes
        try:
            self.assertNotEqual(m.touch_save(), 0)
        finally:
            subprocess.run(["chattr", "-i", d], check=True)
        self.assertEqual(open(self.dest, "rb").read(), before)
        self.assertEqual(os.listdir(d), ["ck.tar.gz"])  # no temp file left behind
        st = m.status()
        self.assertEqual(st["save"]["last"]["result"], "failed")
        self.assertIn("ck.tar.gz", st["save"]["last"]["error"])
        self.assertEqual(st["state"], "error")
        self.assertTrue(st["last_error"])
        # the daemon is still up, and the next save works
        self.assertEqual(m.touch_save(), 0)
        self.assertEqual(members(self.dest), {"a": b"new"})

    def test_destination_that_cannot_exist(self):
        blocker = self.path("blocker")
        open(blocker, "w").write("a file where a folder should be")
        m = self.mount(os.path.join(blocker, "ck.tgz"))
        open(os.path.join(m.save, "a"), "w").write("x")
        out = subprocess.run(["touch", os.path.join(m.mnt, ".save")], capture_output=True,
                             text=True)
        self.assertNotEqual(out.returncode, 0)
        self.assertIn("Input/output error", out.stderr)
        self.assertTrue(os.path.exists(os.path.join(m.save, "a")))  # nothing lost

    def test_python_ways_to_touch(self):
        import pathlib
        m = self.mount(self.dest)
        ctl = pathlib.Path(m.mnt, ".save")
        open(os.path.join(m.save, "a"), "w").write("1")
        ctl.touch()  # utimensat without an open handle: a synchronous save
        self.assertEqual(members(self.dest), {"a": b"1"})
        open(os.path.join(m.save, "a"), "w").write("2")
        with open(ctl, "w") as f:  # any write, then close: a synchronous save
            f.write("now")
        self.assertEqual(members(self.dest), {"a": b"2"})
        self.assertEqual(m.status()["save"]["saves_ok"], 2)

    def test_python_touch_reports_a_failed_save(self):
        blocker = self.path("blocker")
        open(blocker, "w").write("x")
        m = self.mount(os.path.join(blocker, "ck"))
        open(os.path.join(m.save, "a"), "w").write("1")
        with self.assertRaises(OSError) as cm:
            os.utime(os.path.join(m.mnt, ".save"))  # what Path.touch() tries first
        self.assertEqual(cm.exception.errno, 5)  # EIO
        with self.assertRaises(OSError):
            with open(os.path.join(m.mnt, ".save"), "w") as f:
                f.write("sync")

    def test_echo_async_returns_at_the_snapshot(self):
        m = self.mount(self.dest)
        open(os.path.join(m.save, "a"), "w").write("x")
        subprocess.run(f"echo async > {m.mnt}/.save", shell=True, check=True)
        wait_for(lambda: (m.status()["save"]["last"] or {}).get("result") == "ok", 30, "save")
        self.assertEqual(members(self.dest), {"a": b"x"})

    def test_fsync_on_save_dir_is_a_synchronous_save(self):
        m = self.mount(self.dest)
        open(os.path.join(m.save, "f"), "w").write("flushed")
        fd = os.open(m.save, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        self.assertEqual(members(self.dest), {"f": b"flushed"})
        self.assertEqual(m.status()["save"]["last"]["trigger"], "fsync")

    def test_fsync_on_a_subdirectory_is_not_a_save(self):
        m = self.mount(self.dest)
        os.mkdir(os.path.join(m.save, "d"))
        fd = os.open(os.path.join(m.save, "d"), os.O_RDONLY | os.O_DIRECTORY)
        os.fsync(fd)
        os.close(fd)
        self.assertFalse(os.path.exists(self.dest))

    def test_unmount_saves_unsaved_changes(self):
        m = self.mount(self.dest)
        open(os.path.join(m.save, "u"), "w").write("at exit")
        self.assertEqual(m.unmount(), 0)
        self.assertEqual(members(self.dest), {"u": b"at exit"})

    def test_unmount_without_changes_does_not_save(self):
        m = self.mount(self.dest)
        self.assertEqual(m.unmount(), 0)
        self.assertFalse(os.path.exists(self.dest))

    def test_no_save_on_unmount(self):
        m = self.mount(self.dest, extra=["--no-save-on-unmount"])
        open(os.path.join(m.save, "u"), "w").write("x")
        self.assertEqual(m.unmount(), 0)
        self.assertFalse(os.path.exists(self.dest))
        # nothing written is lost: the cache dir keeps it
        self.assertEqual(open(os.path.join(m.cache, "save", "u")).read(), "x")

    def test_sigterm_unmounts_and_saves(self):
        m = self.mount(self.dest)
        open(os.path.join(m.save, "t"), "w").write("term")
        m.proc.terminate()
        self.assertEqual(m.proc.wait(30), 0)
        self.assertEqual(members(self.dest), {"t": b"term"})

    def test_status_is_json_with_the_spec_fields(self):
        m = self.mount(self.dest, [self.path("nope.tgz")])
        st = m.status()
        for key in ("state", "prev", "save", "last_error", "dest"):
            self.assertIn(key, st)
        for key in ("source", "kind", "state", "bytes_done", "bytes_total", "error"):
            self.assertIn(key, st["prev"])
        self.assertEqual(st["state"], "idle")
        out = subprocess.run(["cat", os.path.join(m.mnt, ".status")], capture_output=True,
                             text=True, check=True)
        json.loads(out.stdout)
        with self.assertRaises(OSError):
            open(os.path.join(m.mnt, ".status"), "w")

    def test_restart_with_the_same_cache_dir_reattaches_save(self):
        m = self.mount(self.dest, extra=["--no-save-on-unmount"])
        open(os.path.join(m.save, "kept"), "w").write("across restarts")
        m.kill()  # kill -9: no unmount save
        m2 = self.mount(self.dest, cache=m.cache, name="mnt2")
        self.assertEqual(open(os.path.join(m2.save, "kept")).read(), "across restarts")
        self.assertTrue(m2.status()["save"]["dirty"])
        self.assertEqual(m2.unmount(), 0)  # dirty from the earlier run: saved now
        self.assertEqual(members(self.dest), {"kept": b"across restarts"})


class PrevTest(MountTest):
    def setUp(self):
        super().setUp()
        d = os.path.dirname(self.path("src", "x"))
        open(os.path.join(d, "f"), "w").write("prev")
        os.mkdir(os.path.join(d, "sub"))
        self.src = self.path("a", "prev.tgz")
        subprocess.run(["tar", "-czf", self.src, "-C", d, "f", "sub"], check=True)

    def test_prev_is_read_only(self):
        m = self.mount(self.path("dest", "ck"), [self.src])
        p = m.prev
        self.assertEqual(open(os.path.join(p, "f")).read(), "prev")
        attempts = [
            lambda: open(os.path.join(p, "f"), "w"),
            lambda: open(os.path.join(p, "f"), "a"),
            lambda: open(os.path.join(p, "new"), "w"),
            lambda: os.unlink(os.path.join(p, "f")),
            lambda: os.mkdir(os.path.join(p, "d")),
            lambda: os.rmdir(os.path.join(p, "sub")),
            lambda: os.symlink("f", os.path.join(p, "l")),
            lambda: os.rename(os.path.join(p, "f"), os.path.join(p, "g")),
            lambda: os.chmod(os.path.join(p, "f"), 0o777),
            lambda: os.utime(os.path.join(p, "f"), (1, 1)),
            lambda: os.truncate(os.path.join(p, "f"), 0),
            lambda: os.link(os.path.join(p, "f"), os.path.join(p, "h")),
        ]
        for i, attempt in enumerate(attempts):
            with self.assertRaises(OSError, msg=f"attempt {i}") as cm:
                attempt()
            self.assertEqual(cm.exception.errno, 30, f"attempt {i}: {cm.exception}")  # EROFS
        with self.assertRaises(OSError):  # moving prev/ data into save/ is refused too
            os.rename(os.path.join(p, "f"), os.path.join(m.save, "f"))
        self.assertEqual(open(os.path.join(p, "f")).read(), "prev")

    def test_nothing_is_fetched_before_the_first_access_under_prev(self):
        m = self.mount(self.path("dest", "ck"), [self.src])
        os.listdir(m.mnt)
        os.stat(m.prev)
        open(os.path.join(m.save, "x"), "w").write("save/ works without loading prev/")
        m.status()
        self.assertEqual(m.status()["prev"]["state"], "not_loaded")
        self.assertEqual(os.listdir(os.path.join(m.cache, "prev")), [])
        self.assertEqual(sorted(os.listdir(m.prev)), ["f", "sub"])
        self.assertEqual(m.status()["prev"]["state"], "ready")

    def test_lookup_first_also_loads(self):
        m = self.mount(self.path("dest", "ck"), [self.src])
        self.assertEqual(open(os.path.join(m.prev, "f")).read(), "prev")


class ConsistencyTest(MountTest):
    def test_open_writer_is_waited_for(self):
        dest = self.path("dest", "ck")
        m = self.mount(dest)
        f = open(os.path.join(m.save, "w"), "wb")
        f.write(b"first half,")
        f.flush()
        done = {}
        t = threading.Thread(target=lambda: done.setdefault("rc", m.touch_save()))
        t.start()
        time.sleep(0.5)
        self.assertNotIn("rc", done, "the save did not wait for the open writer")
        f.write(b" second half")
        f.close()
        t.join(30)
        self.assertEqual(done.get("rc"), 0)
        self.assertEqual(members(dest), {"w": b"first half, second half"})

    def test_a_log_held_open_for_appending_is_not_waited_for(self):
        # TensorBoard event files, CSV and text logs stay open the whole run (O_APPEND):
        # a save archives what they hold at the snapshot, without waiting for a close.
        dest = self.path("dest", "ck")
        m = self.mount(dest, extra=["--save-wait", "30"])
        stop = threading.Event()
        log = os.path.join(m.save, "train.log")

        def writer():
            with open(log, "a") as f:
                i = 0
                while not stop.is_set():
                    f.write("step %d\n" % i)
                    f.flush()
                    i += 1
                    time.sleep(0.003)
        t = threading.Thread(target=writer)
        t.start()
        try:
            wait_for(lambda: os.path.exists(log) and os.path.getsize(log) > 0, 10, "the log")
            for i in range(6):
                open(os.path.join(m.save, "ckpt.pt"), "w").write("weights %d" % i)
                if i % 2:
                    subprocess.run(f"echo async > {m.mnt}/.save", shell=True, check=True)
                    wait_for(lambda: m.status()["save"]["saves_ok"] == i + 1, 30, "async save")
                else:
                    self.assertEqual(m.touch_save(), 0)
                last = m.status()["save"]["last"]
                self.assertEqual((last["result"], last["writers_left"]), ("ok", 0))
                self.assertLess(last["waited_s"], 1.0)  # --save-wait is 30: never reached
                self.assertIsNone(last["waited_for"])
                got = members(dest)
                self.assertEqual(got["ckpt.pt"], b"weights %d" % i)
                lines = got["train.log"].decode().splitlines()
                self.assertEqual(lines, ["step %d" % k for k in range(len(lines))])
        finally:
            stop.set()
            t.join()

    def test_async_returns_while_a_writer_is_waited_for(self):
        dest = self.path("dest", "ck")
        m = self.mount(dest, extra=["--save-wait", "30"])
        f = open(os.path.join(m.save, "w"), "wb")
        f.write(b"being written")
        f.flush()
        subprocess.run(f"echo async > {m.mnt}/.save", shell=True, check=True, timeout=20)
        self.assertFalse(os.path.exists(dest))  # the save waits, behind the async return
        f.write(b", done")
        f.close()
        wait_for(lambda: os.path.exists(dest) and (m.status()["save"]["last"] or {}).get(
            "result") == "ok", 30, "the save")
        self.assertEqual(members(dest), {"w": b"being written, done"})
        last = m.status()["save"]["last"]
        self.assertGreater(last["waited_s"], 0)
        self.assertEqual(last["waited_for"], "w")  # .status names the file it waited for

    def test_autosave_quiet_is_held_off_by_an_open_writer(self):
        # --autosave quiet=1: no save while a file is open for writing, one soon after the
        # last writer closes, with the whole file
        dest = self.path("dest", "ck")
        m = self.mount(dest, extra=["--autosave", "quiet=1"])
        f = open(os.path.join(m.save, "w"), "wb")
        f.write(b"first half,")
        f.flush()
        time.sleep(3.5)  # three quiet periods and more
        st = m.status()["save"]
        self.assertEqual((st["saves_ok"], st["current"]), (0, None), st)
        self.assertFalse(os.path.exists(dest))
        f.write(b" second half")
        f.close()
        wait_for(lambda: m.status()["save"]["saves_ok"] == 1, 20, "the autosave")
        last = m.status()["save"]["last"]
        self.assertEqual((last["trigger"], last["result"]), ("autosave", "ok"))
        self.assertEqual(members(dest), {"w": b"first half, second half"})
        time.sleep(2.5)  # nothing changed since: no second save
        self.assertEqual(m.status()["save"]["saves_ok"], 1)

    def test_autosave_every_waits_for_an_open_writer(self):
        # --autosave every=1: the save starts when due but waits for the writer (as any
        # save does), so no half-written file is archived
        dest = self.path("dest", "ck")
        m = self.mount(dest, extra=["--autosave", "every=1", "--save-wait", "60"])
        f = open(os.path.join(m.save, "w"), "wb")
        f.write(b"being written")
        f.flush()

        def waiting():
            cur = m.status()["save"]["current"]
            return cur is not None and cur["phase"] == "waiting_writers"
        wait_for(waiting, 20, "an autosave waiting for the writer")
        time.sleep(0.3)
        cur = m.status()["save"]["current"]  # the current save's fields while it waits
        self.assertEqual((cur["generation"], cur["trigger"], cur["phase"], cur["result"]),
                         (1, "autosave", "waiting_writers", "running"))
        self.assertEqual(cur["waited_for"], "w")  # the file it waits for
        self.assertGreater(cur["seconds"], 0.2)  # live
        self.assertTrue(cur["started_at"].endswith("Z"))
        self.assertIsNone(cur["error"])
        self.assertFalse(os.path.exists(dest))
        f.write(b", done")
        f.close()
        wait_for(lambda: m.status()["save"]["saves_ok"] >= 1, 20, "the autosave")
        self.assertEqual(m.status()["save"]["last"]["trigger"], "autosave")
        self.assertEqual(members(dest), {"w": b"being written, done"})

    def test_unmount_during_an_async_save_waits_for_it(self):
        # the async save's PUT is held 3 s by the fault proxy; the unmount comes meanwhile:
        # the daemon exits only once that save is stored, and exits 0
        from ckfs import FaultProxy, Nginx
        ng = Nginx(self.base)
        self.addCleanup(ng.stop)
        proxy = FaultProxy(self.base, ng.port)
        self.addCleanup(proxy.stop)
        m = self.mount(f"{proxy.url}/ck.tgz")
        blob = os.urandom(3 << 20)
        open(os.path.join(m.save, "weights"), "wb").write(blob)
        proxy.set_plan("delay=3", match="^PUT ")
        subprocess.run(f"echo async > {m.mnt}/.save", shell=True, check=True, timeout=20)
        wait_for(lambda: proxy.records(), 10, "the save's PUT")
        t0 = time.monotonic()
        self.assertEqual(m.unmount(), 0, m.logtext())
        self.assertGreater(time.monotonic() - t0, 1.0)  # it waited for the held PUT
        self.assertEqual(members(os.path.join(ng.data, "ck.tgz")), {"weights": blob})
        log = m.logtext()
        self.assertIn("save 1 done", log)
        self.assertNotIn("save 2", log)  # nothing changed after it: no second save

    def test_the_wait_for_writers_is_bounded(self):
        dest = self.path("dest", "ck")
        m = self.mount(dest, extra=["--save-wait", "1"])
        f = open(os.path.join(m.save, "w"), "wb")
        f.write(b"partial")
        f.flush()
        t0 = time.monotonic()
        self.assertEqual(m.touch_save(), 0)
        self.assertLess(time.monotonic() - t0, 20)
        f.close()
        self.assertEqual(members(dest), {"w": b"partial"})
        self.assertEqual(m.status()["save"]["last"]["writers_left"], 1)

    def test_writes_after_the_snapshot_do_not_leak_in(self):
        dest = self.path("dest", "ck")
        m = self.mount(dest, extra=["--compress", "gzip-6"])
        with open(os.path.join(m.save, "big"), "wb") as f:
            f.write(os.urandom(48 << 20))  # long enough that the save is still running
        open(os.path.join(m.save, "small"), "w").write("before")
        subprocess.run(f"echo async > {m.mnt}/.save", shell=True, check=True)
        with open(os.path.join(m.save, "small"), "a") as f:
            f.write(" and after")
        os.unlink(os.path.join(m.save, "big"))
        wait_for(lambda: (m.status()["save"]["last"] or {}).get("result") == "ok", 60, "save")
        got = members(dest)
        self.assertEqual(got["small"], b"before")
        self.assertEqual(len(got["big"]), 48 << 20)
        self.assertEqual(open(os.path.join(m.save, "small")).read(), "before and after")
