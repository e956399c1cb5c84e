"""Multi-rank checkpoints (--world N --rank R, docs/world.md): several mounts on one
machine act as the ranks of one training job, each saving its own files; the generation
is committed by rank 0's object at --dest, whose last entry is the manifest. A fresh
mount with --src sees the union of every rank's tree; a generation that some rank did
not make durable is never seen. Runs on file://, s3:// (moto, signatures on; Ceph's
radosgw), gs:// (tests/tools/fake_gcs.py) and Azure (Azurite)."""
import errno
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import threading

from ckfs import BIN, TOOLS, FaultProxy, MountTest, tree, wait_for

sys.path.insert(0, TOOLS)

WORLD = 4


def rank_tree(root, rank, gen, big=3 << 20):
    """Rank rank's files of generation gen: a shared folder, files only this rank has."""
    for d in ("shared", f"shared/r{rank}", "model"):
        os.makedirs(os.path.join(root, d), exist_ok=True)
        os.chmod(os.path.join(root, d), 0o755)
    seed = hashlib.sha256(f"{rank}-{gen}".encode()).digest()
    with open(os.path.join(root, "model", f"shard-{rank}.bin"), "wb") as f:
        block = seed * (65536 // len(seed))
        for i in range(big // len(block)):
            f.write(bytes([i % 251]) + block[1:])
    with open(os.path.join(root, "shared", f"r{rank}", "state.json"), "w") as f:
        f.write(f'{{"rank": {rank}, "generation": {gen}}}\n')
    if rank == 0:
        with open(os.path.join(root, "config.yaml"), "w") as f:
            f.write(f"generation: {gen}\n")
        os.symlink("model/shard-0.bin", os.path.join(root, "latest"))
    for dirpath, _, files in os.walk(root):
        for name in files:
            os.utime(os.path.join(dirpath, name), (1_700_000_000 + gen, 1_700_000_000 + gen))


def union(trees):
    out = {}
    for t in trees:
        out.update(t)
    return out


class WorldCases:
    """The cases (a mixin, so unittest does not run them bare); each MountTest subclass
    says where the checkpoint goes and with what environment."""

    copies_ranges = True  # the store copies byte ranges of an object (docs/reuse.md)

    def dest(self, name):
        raise NotImplementedError

    def env(self):
        return os.environ.copy()

    def read_object(self, name):
        """The bytes of the object at dest(name), read from outside ckptfs."""
        raise NotImplementedError

    def ranks(self, name, world=WORLD, extra=(), tag=""):
        return [self.mount(self.dest(name), name=f"{name}{tag}-r{r}", env=self.env(),
                           extra=["--world", str(world), "--rank", str(r), *extra])
                for r in range(world)]

    def fill(self, mounts, gen):
        want = []
        for r, m in enumerate(mounts):
            src = os.path.dirname(self.path(f"src-g{gen}-r{r}", "x"))
            if os.path.exists(src):
                shutil.rmtree(src)
                os.makedirs(src)
            rank_tree(src, r, gen)
            for child in os.listdir(m.save):
                p = os.path.join(m.save, child)
                if os.path.isdir(p) and not os.path.islink(p):
                    shutil.rmtree(p)
                else:
                    os.unlink(p)
            shutil.copytree(src, m.save, symlinks=True, dirs_exist_ok=True)
            want.append(tree(src))
        return union(want)

    def save_all(self, mounts, order):
        """touch .save on every rank in the order given, each in its own thread (rank 0's
        returns only once the others' shards are durable); returns {rank: exit status}."""
        rcs = {}
        threads = []
        for r in order:
            t = threading.Thread(target=lambda r=r: rcs.__setitem__(r, mounts[r].touch_save()))
            t.start()
            threads.append(t)
        for t in threads:
            t.join()
        return rcs

    def assert_ls_refuses(self, name):
        """ckptfs ls of a checkpoint whose shard changed fails, naming why."""
        out = subprocess.run([BIN, "ls", self.dest(name)], capture_output=True, text=True,
                             env=self.env())
        self.assertEqual(out.returncode, 1, out.stdout)
        self.assertIn("changed after the commit", out.stderr)

    def tarfile_view(self, name):
        """What flyte.Checkpoint's tarfile sees of the object at dest(name) (the data filter):
        the downloaded archive's path and the tree it extracts to."""
        arc = self.path("dl", f"{name}.tar.gz")
        with open(arc, "wb") as f:
            f.write(self.read_object(name))
        out = os.path.dirname(self.path(f"tarfile-{name}", "x"))
        with tarfile.open(arc, "r:*") as t:
            t.extractall(out, filter="data")
        return arc, tree(out)

    def restore(self, name, tag, extra=()):
        return self.mount(self.dest(f"{name}-next-{tag}"), [self.dest(name)], env=self.env(),
                          name=f"{name}-reader-{tag}", extra=list(extra))

    def test_four_ranks_one_checkpoint(self):
        ms = self.ranks("ck")
        want = self.fill(ms, 1)
        rcs = self.save_all(ms, [3, 1, 0, 2])
        self.assertEqual(rcs, {0: 0, 1: 0, 2: 0, 3: 0}, ms[0].logtext())
        st0 = ms[0].status()["world"]
        self.assertEqual((st0["rank"], st0["size"], st0["committed"]), (0, WORLD, 1))
        # Another rank blocks until rank 0 has committed its generation.
        out = subprocess.run([BIN, "wait", "--timeout", "120", "--committed", ms[2].mnt],
                             capture_output=True, text=True)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(ms[2].status()["world"]["committed"], 1)
        self.assertEqual(ms[2].status()["world"]["durable"], 1)

        # Every rank's tree, lazily, in one prev/, byte for byte.
        rd = self.restore("ck", "a")
        self.assertEqual(tree(rd.prev), want)
        prev = rd.status()["prev"]
        self.assertEqual(prev["world"], {"ranks": WORLD, "generation": 1})
        self.assertIsNone(prev["error"])

        # ckptfs get restores the union eagerly, as the no-FUSE mode would.
        got = os.path.join(self.base, "got")
        out = subprocess.run([BIN, "get", self.dest("ck"), got], capture_output=True, text=True,
                             env=self.env())
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(tree(got), want)

        # ckptfs ls lists the union too (each name once, sorted), as prev/ shows it.
        out = subprocess.run([BIN, "ls", self.dest("ck")], capture_output=True, text=True,
                             env=self.env())
        self.assertEqual(out.returncode, 0, out.stderr)
        names = [line.split(" -> ")[0].rstrip("/") for line in out.stdout.splitlines()]
        self.assertEqual(names, sorted(want))

        # A world of another size restores every file as well (4 saved, 2 restoring).
        rd2 = self.restore("ck", "b", extra=["--world", "2", "--rank", "1"])
        self.assertEqual(tree(rd2.prev), want)

        # What flyte.Checkpoint's tarfile sees: rank 0's files and the manifest.
        arc, seen = self.tarfile_view("ck")
        manifest = seen.pop(".ckptfs-world")[3].decode()
        self.assertTrue(manifest.startswith("ckptfs-world 1\ngeneration 1\nworld 4\n"), manifest)
        rank0 = {k: v for k, v in want.items()
                 if not k.startswith(("shared/r1", "shared/r2", "shared/r3"))
                 and not k.startswith(("model/shard-1", "model/shard-2", "model/shard-3"))}
        self.assertEqual(seen, rank0)
        # GNU tar and bsdtar read the same object the same way, manifest included.
        for tool in (["tar", "-xzf"], ["bsdtar", "-xf"]):
            out = os.path.dirname(self.path(f"x-{tool[0]}", "x"))
            subprocess.run([*tool, arc, "-C", out], check=True, capture_output=True)
            seen = tree(out)
            self.assertTrue(seen.pop(".ckptfs-world")[3].startswith(b"ckptfs-world 1\n"))
            self.assertEqual(seen, rank0, tool[0])

    def test_carry_forward_copies_every_shard(self):
        """--carry-forward in a world whose mounts saved nothing: rank 0 copies every shard
        beside the new --dest and saves its own object again with a manifest naming the
        copies (a copy has an ETag of its own: the old manifest would refuse it); a reader
        of the new --dest sees the union byte for byte, and tarfile sees rank 0's files."""
        ms = self.ranks("ck", world=2)
        want = self.fill(ms, 1)
        self.assertEqual(self.save_all(ms, [1, 0]), {0: 0, 1: 0}, ms[0].logtext())
        for m in ms:
            m.unmount()
        nxt = [self.mount(self.dest("ck2"), [self.dest("ck")], name=f"ck2-r{r}", env=self.env(),
                          extra=["--world", "2", "--rank", str(r), "--carry-forward"])
               for r in (1, 0)]
        for m in nxt:
            self.assertEqual(m.unmount(), 0, m.logtext())
        self.assertIn("rank 0 carries", nxt[0].logtext())
        self.assertIn("generation 1 of 2 ranks, 1 shards copied", nxt[1].logtext())
        self.assertNotIn("carry", os.listdir(nxt[1].cache))  # its scratch folder is gone
        rd = self.restore("ck2", "c")
        self.assertEqual(tree(rd.prev), want)
        prev = rd.status()["prev"]
        self.assertEqual((prev["world"], prev["error"]), ({"ranks": 2, "generation": 1}, None))
        _, seen = self.tarfile_view("ck2")
        self.assertTrue(seen.pop(".ckptfs-world")[3].startswith(b"ckptfs-world 1\ngeneration 1\n"))
        self.assertEqual(set(seen), {k for k in want if "r1" not in k and "shard-1" not in k})

    def test_missing_rank_keeps_the_previous_generation(self):
        ms = self.ranks("ck", extra=["--world-timeout", "5"])
        want1 = self.fill(ms, 1)
        self.assertEqual(self.save_all(ms, [0, 1, 2, 3]), {0: 0, 1: 0, 2: 0, 3: 0},
                         ms[0].logtext())
        self.fill(ms, 2)
        # Rank 3 never saves generation 2: rank 0's save fails, naming it.
        rcs = self.save_all(ms, [1, 2, 0])
        self.assertEqual(rcs, {0: 1, 1: 0, 2: 0}, ms[0].logtext())
        st = ms[0].status()
        self.assertIn("rank 3's shard", st["last_error"])
        self.assertEqual(st["world"]["committed"], 1)
        rd = self.restore("ck", "a")
        self.assertEqual(tree(rd.prev), want1)
        self.assertEqual(rd.status()["prev"]["world"]["generation"], 1)

    def test_two_generations_and_a_restarted_rank(self):
        ms = self.ranks("ck")
        self.fill(ms, 1)
        self.assertEqual(self.save_all(ms, [3, 2, 1, 0]), {0: 0, 1: 0, 2: 0, 3: 0},
                         ms[0].logtext())
        # Rank 2 restarts on its cache dir (unsaved nothing): it goes on at generation 2.
        cache = ms[2].cache
        self.assertEqual(ms[2].unmount(), 0)
        ms[2] = self.mount(self.dest("ck"), name="ck-r2-again", cache=cache, env=self.env(),
                           extra=["--world", str(WORLD), "--rank", "2"])
        want2 = self.fill(ms, 2)
        self.assertEqual(self.save_all(ms, [0, 2, 3, 1]), {0: 0, 1: 0, 2: 0, 3: 0},
                         ms[0].logtext())
        self.assertEqual(ms[2].status()["world"]["claimed"], 2)
        rd = self.restore("ck", "a")
        self.assertEqual(tree(rd.prev), want2)
        self.assertEqual(rd.status()["prev"]["world"]["generation"], 2)

    def test_a_rank_with_a_new_cache_dir_after_a_commit(self):
        # Generation 1 committed; rank 1 comes back on another node (a new, empty cache
        # dir): it learns the committed generation and saves the next one with the others.
        ms = self.ranks("ck", world=3)
        self.fill(ms, 1)
        self.assertEqual(self.save_all(ms, [2, 1, 0]), {0: 0, 1: 0, 2: 0}, ms[0].logtext())
        ms[1].unmount()
        ms[1] = self.mount(self.dest("ck"), name="ck-r1-new", env=self.env(),
                           extra=["--world", "3", "--rank", "1"])
        self.assertEqual(os.listdir(ms[1].save), [])  # nothing of the old node
        want2 = self.fill(ms, 2)
        self.assertEqual(self.save_all(ms, [1, 0, 2]), {0: 0, 1: 0, 2: 0}, ms[0].logtext())
        self.assertEqual(ms[1].status()["world"]["claimed"], 2)
        rd = self.restore("ck", "a")
        self.assertEqual(tree(rd.prev), want2)
        self.assertEqual(rd.status()["prev"]["world"]["generation"], 2)

    def test_a_generation_copies_what_each_rank_kept(self):
        """docs/reuse.md: each rank's save copies the members of its last shard (rank 0: of
        the committed object) that it would send again, and does not even read a large
        file nothing wrote since; where the store cannot copy ranges, .status says so."""
        ms = self.ranks("re", world=2)
        for r, m in enumerate(ms):
            with open(os.path.join(m.save, f"w{r}.bin"), "wb") as f:
                f.write(os.urandom(12 << 20))
            with open(os.path.join(m.save, f"step-{r}.txt"), "w") as f:
                f.write("1")
        self.assertEqual(self.save_all(ms, [1, 0]), {0: 0, 1: 0}, ms[0].logtext())
        for r, m in enumerate(ms):
            with open(os.path.join(m.save, f"step-{r}.txt"), "w") as f:
                f.write("2")
        self.assertEqual(self.save_all(ms, [1, 0]), {0: 0, 1: 0}, ms[0].logtext())
        for r, m in enumerate(ms):
            last = m.status()["save"]["last"]
            if self.copies_ranges:
                self.assertGreaterEqual(last["reused_bytes"], 12 << 20, (r, last))
                self.assertEqual(last["files"]["not_read"], 1, (r, last))
            else:
                self.assertIn("cannot copy byte ranges", last["reuse_note"], (r, last))
        want = union(tree(m.save) for m in ms)
        rd = self.restore("re", "a")
        self.assertEqual(tree(rd.prev), want)
        self.assertEqual(rd.status()["prev"]["world"]["generation"], 2)

    def test_two_ranks_saving_one_path_is_an_error(self):
        ms = self.ranks("ck", world=2)
        for m in ms:
            with open(os.path.join(m.save, "same.txt"), "w") as f:
                f.write(m.mnt)
        self.assertEqual(self.save_all(ms, [1, 0]), {0: 0, 1: 0}, ms[0].logtext())
        rd = self.restore("ck", "a")
        with self.assertRaises(OSError):
            os.listdir(rd.prev)
        prev = rd.status()["prev"]
        self.assertEqual(prev["state"], "failed")
        self.assertIn("rank 1's shard", prev["error"])
        self.assertIn("same.txt", prev["error"])


class FileWorldTest(WorldCases, MountTest):
    def dest(self, name):
        return "file://" + self.path("store", name + ".tar.gz")

    def read_object(self, name):
        with open(self.path("store", name + ".tar.gz"), "rb") as f:
            return f.read()

    def wait_committed(self, m, timeout=None):
        args = [BIN, "wait", "--committed", m.mnt]
        if timeout:
            args[2:2] = ["--timeout", str(timeout)]
        return subprocess.run(args, capture_output=True, text=True, timeout=120)

    def test_an_extra_save_on_rank0_does_not_wedge_the_world(self):
        ms = self.ranks("ck", extra=["--world-timeout", "3"])
        self.fill(ms, 1)
        self.assertEqual(self.save_all(ms, [0, 1, 2, 3]), {0: 0, 1: 0, 2: 0, 3: 0})
        with self.assertRaises(OSError) as cm:  # rank 0 alone: round 2 times out
            os.close(os.open(os.path.join(ms[0].mnt, ".save"), os.O_WRONLY))
        self.assertEqual(cm.exception.errno, errno.ETIMEDOUT)
        self.assertIn("rank 1's shard", ms[0].status()["last_error"])
        want = self.fill(ms, 3)
        self.assertEqual(self.save_all(ms, [2, 0, 3, 1]), {0: 0, 1: 0, 2: 0, 3: 0},
                         ms[0].logtext())
        for m in ms[1:]:
            out = self.wait_committed(m)
            self.assertEqual(out.returncode, 0, out.stderr)
        rd = self.restore("ck", "a")
        self.assertEqual(tree(rd.prev), want)
        self.assertEqual(rd.status()["prev"]["world"]["generation"], 3)

    def test_an_extra_save_on_another_rank_does_not_wedge_the_world(self):
        ms = self.ranks("ck", extra=["--world-timeout", "3"])
        self.fill(ms, 1)
        self.assertEqual(self.save_all(ms, [0, 1, 2, 3]), {0: 0, 1: 0, 2: 0, 3: 0})
        self.assertNotEqual(ms[2].touch_save(), 0)  # no round opened: it fails, bounded
        self.assertIn("opened no new round", ms[2].status()["last_error"])
        out = self.wait_committed(ms[2])
        self.assertEqual(out.returncode, 1)
        self.assertIn("last save failed", out.stderr)
        want = self.fill(ms, 2)
        self.assertEqual(self.save_all(ms, [2, 1, 0, 3]), {0: 0, 1: 0, 2: 0, 3: 0},
                         ms[0].logtext())
        rd = self.restore("ck", "a")
        self.assertEqual(tree(rd.prev), want)
        self.assertEqual(rd.status()["prev"]["world"]["generation"], 2)

    def test_a_failed_round_then_a_fresh_cache_dir(self):
        ms = self.ranks("ck", extra=["--world-timeout", "4"])
        want1 = self.fill(ms, 1)
        self.assertEqual(self.save_all(ms, [0, 1, 2, 3]), {0: 0, 1: 0, 2: 0, 3: 0})
        self.fill(ms, 2)
        self.assertEqual(self.save_all(ms, [1, 2, 0]), {0: 1, 1: 0, 2: 0})  # rank 3 missing
        # rank 1's shard of round 2 is durable, the round failed: wait --committed says so
        out = self.wait_committed(ms[1])
        self.assertEqual(out.returncode, 1, out.stdout)
        self.assertIn("generation 2 failed on rank 0", out.stderr)
        self.assertEqual(ms[1].status()["world"]["failed"], 2)
        # rank 3 restarts with a new cache dir (its counter is gone), rank 0 with its own
        ms[3].unmount()
        ms[3] = self.mount(self.dest("ck"), name="ck-r3-new", env=self.env(),
                           extra=["--world", str(WORLD), "--rank", "3", "--world-timeout", "4"])
        want3 = self.fill(ms, 3)
        self.assertEqual(self.save_all(ms, [3, 0, 1, 2]), {0: 0, 1: 0, 2: 0, 3: 0},
                         ms[0].logtext())
        rd = self.restore("ck", "a")
        self.assertEqual(tree(rd.prev), want3)
        self.assertEqual(rd.status()["prev"]["world"]["generation"], 3)
        self.assertNotEqual(want1, want3)
        # Round 2 failed: once round 3 committed, rank 0 removed its shards (ranks 1 and 2
        # had uploaded theirs); the committed generations' shards stay.
        ranks = self.path("store", "ck.tar.gz.ranks")
        self.assertEqual(os.listdir(os.path.join(ranks, "g2")), [])
        self.assertEqual(sorted(os.listdir(os.path.join(ranks, "g1"))),
                         ["commit", "r1-of-4", "r2-of-4", "r3-of-4"])
        self.assertEqual(sorted(os.listdir(os.path.join(ranks, "g3"))),
                         ["commit", "r1-of-4", "r2-of-4", "r3-of-4"])
        self.assertIn("generation 2 failed: its shards and claim are removed", ms[0].logtext())

    def test_unmount_of_a_rank_does_not_save_or_wait(self):
        ms = self.ranks("ck", world=2, extra=["--world-timeout", "600"])
        self.fill(ms, 1)
        self.assertEqual(self.save_all(ms, [0, 1]), {0: 0, 1: 0})
        open(os.path.join(ms[0].save, "late"), "w").write("x")
        self.assertEqual(ms[0].unmount(timeout=60), 0)  # rank 1 will not save: no wait
        self.assertIn("not saved", ms[0].logtext())
        self.assertTrue(os.path.exists(os.path.join(ms[0].cache, "save", "late")))

    def test_a_stale_rank0_never_puts_an_older_generation_back(self):
        """Rank 0 (A) opens round 2 and is paused while it waits for rank 1's shard; a
        new rank 0 (B, a fresh cache dir) opens round 3, which commits. A resumes, finds
        its round complete and commits: the conditional replace of DEST (the version A
        saw before its round opened) refuses it, so generation 3 stays. B removes round 2's
        objects after its commit (A never claimed it); the test puts rank 1's shard back,
        as if A had seen it before its pause, so that A goes on to its commit. (Each
        store's conditional commit: tests/unit/test_store_*.c.)"""
        ms = self.ranks("st", world=2, extra=["--world-timeout", "120"])
        self.fill(ms, 1)
        self.assertEqual(self.save_all(ms, [1, 0]), {0: 0, 1: 0}, ms[0].logtext())
        a, r1 = ms
        self.fill(ms, 2)
        rc_a = {}
        ta = threading.Thread(target=lambda: rc_a.__setitem__("rc", a.touch_save()))
        ta.start()
        wait_for(lambda: a.status()["world"]["waiting_for_ranks"] == 1, 30, "round 2 open")
        os.kill(a.proc.pid, signal.SIGSTOP)
        try:
            self.assertEqual(r1.touch_save(), 0, r1.logtext())  # rank 1 joins round 2
            shard2 = self.path("store", "st.tar.gz.ranks", "g2", "r1-of-2")
            shutil.copyfile(shard2, shard2 + ".copy")
            b = self.mount(self.dest("st"), name="st-r0-new", env=self.env(),
                           extra=["--world", "2", "--rank", "0", "--world-timeout", "120"])
            want3 = self.fill([b, r1], 3)
            rc_b = {}
            tb = threading.Thread(target=lambda: rc_b.__setitem__("rc", b.touch_save()))
            tb.start()
            wait_for(lambda: b.status()["world"]["waiting_for_ranks"] == 1, 30, "round 3 open")
            self.assertEqual(r1.touch_save(), 0, r1.logtext())  # rank 1 joins round 3
            tb.join(120)
            self.assertEqual(rc_b.get("rc"), 0, b.logtext())
            self.assertEqual(b.status()["world"]["committed"], 3)
            self.assertIn("generation 2 failed: its shards and claim are removed", b.logtext())
            self.assertFalse(os.path.exists(shard2))
            os.rename(shard2 + ".copy", shard2)
        finally:
            os.kill(a.proc.pid, signal.SIGCONT)
        ta.join(120)
        self.assertNotEqual(rc_a.get("rc"), 0, a.logtext())
        self.assertIn("changed since it was read", a.status()["last_error"])
        self.assertIn("gives way", a.logtext())
        rd = self.restore("st", "a")
        self.assertEqual(tree(rd.prev), want3)
        self.assertEqual(rd.status()["prev"]["world"]["generation"], 3)
        # The round object is B's: rank 1 learns that its generation 3 committed.
        out = subprocess.run([BIN, "wait", "--committed", "--timeout", "30", r1.mnt],
                             capture_output=True, text=True, timeout=60)
        self.assertEqual(out.returncode, 0, out.stderr)

    def test_rewritten_shard_is_refused(self):
        ms = self.ranks("ck", world=2)
        self.fill(ms, 1)
        self.assertEqual(self.save_all(ms, [1, 0]), {0: 0, 1: 0}, ms[0].logtext())
        # A shard written again after the commit (a stray rank) is never mixed in.
        shard = self.path("store", "ck.tar.gz.ranks", "g1", "r1-of-2")
        with open(shard, "ab") as f:
            f.write(b"\0" * 512)
        rd = self.restore("ck", "a")
        with self.assertRaises(OSError) as e:  # a failed load: EIO, never a partial tree
            os.listdir(rd.prev)
        self.assertEqual(e.exception.errno, errno.EIO)
        self.assertIn("changed after the commit", rd.status()["prev"]["error"])
        self.assert_ls_refuses("ck")

    def test_carry_forward_refuses_a_rewritten_shard(self):
        """A shard changed after its commit is not carried: the unmount fails naming it and
        the new --dest gets no checkpoint (never a mix)."""
        ms = self.ranks("ck", world=2)
        self.fill(ms, 1)
        self.assertEqual(self.save_all(ms, [1, 0]), {0: 0, 1: 0}, ms[0].logtext())
        with open(self.path("store", "ck.tar.gz.ranks", "g1", "r1-of-2"), "ab") as f:
            f.write(b"\0" * 512)
        m = self.mount(self.dest("ck2"), [self.dest("ck")], name="ck2-r0",
                       extra=["--world", "2", "--rank", "0", "--carry-forward"])
        self.assertNotEqual(m.unmount(), 0)
        self.assertIn("changed after the commit", m.logtext())
        self.assertFalse(os.path.exists(self.path("store", "ck2.tar.gz")))
        self.assertNotIn("carry", os.listdir(m.cache))  # its scratch folder is gone

    def test_rewritten_shard_of_the_same_size_is_refused(self):
        ms = self.ranks("ck", world=2)
        self.fill(ms, 1)
        self.assertEqual(self.save_all(ms, [1, 0]), {0: 0, 1: 0}, ms[0].logtext())
        shard = self.path("store", "ck.tar.gz.ranks", "g1", "r1-of-2")
        size = os.path.getsize(shard)
        with open(shard, "r+b") as f:  # one byte changed in place: the size check passes
            f.seek(100)
            b = f.read(1)
            f.seek(100)
            f.write(bytes([b[0] ^ 0xFF]))
        self.assertEqual(os.path.getsize(shard), size)
        rd = self.restore("ck", "a")
        with self.assertRaises(OSError):
            os.listdir(rd.prev)
        self.assertIn("changed after the commit", rd.status()["prev"]["error"])
        self.assert_ls_refuses("ck")

    def test_second_rank0_of_a_generation_gives_way(self):
        ms = self.ranks("ck", world=2)
        want1 = self.fill(ms, 1)
        self.assertEqual(self.save_all(ms, [1, 0]), {0: 0, 1: 0}, ms[0].logtext())
        self.assertTrue(os.path.exists(self.path("store", "ck.tar.gz.ranks", "g1", "commit")))
        # Another rank 0 (a zombie of this run) has claimed generation 2's commit.
        with open(self.path("store", "ck.tar.gz.ranks", "g2", "commit"), "w") as f:
            f.write("rank 0 of 2, host elsewhere\n")
        self.fill(ms, 2)
        self.assertEqual(self.save_all(ms, [1, 0]), {0: 1, 1: 0}, ms[0].logtext())
        self.assertIn("already being committed", ms[0].status()["last_error"])
        rd = self.restore("ck", "a")
        self.assertEqual(tree(rd.prev), want1)

    def test_world_id_names_the_shards_and_a_reserved_name_is_refused(self):
        ms = self.ranks("ck", world=2, extra=["--world-id", "run-7"])
        self.fill(ms, 1)
        self.assertEqual(self.save_all(ms, [1, 0]), {0: 0, 1: 0}, ms[0].logtext())
        self.assertTrue(os.path.exists(
            self.path("store", "ck.tar.gz.ranks", "run-7", "g1", "r1-of-2")))
        with open(os.path.join(ms[0].save, ".ckptfs-world"), "w") as f:
            f.write("mine\n")
        self.assertNotEqual(ms[0].touch_save(), 0)
        self.assertIn("reserved", ms[0].status()["last_error"])

    def test_no_fuse_ranks(self):
        """Two `ckptfs run --no-fuse` ranks: save, rank 1 waits for the commit; a FUSE
        reader and a no-FUSE reader both see the union."""
        out = {}

        def rank(r):
            mnt = os.path.join(self.base, f"nf{r}")
            script = (f'mkdir -p "$CKPTFS_MOUNT/save/r{r}" && echo {r} > "$CKPTFS_MOUNT/save/r{r}/f"'
                      ' && "$0" save "$CKPTFS_MOUNT"'
                      + (' && "$0" wait --committed --timeout 120 "$CKPTFS_MOUNT"' if r else ""))
            out[r] = subprocess.run([BIN, "run", "--no-fuse", "--world", "2", "--rank", str(r),
                                     "--cache-dir", self.path(f"nf{r}-cache"),
                                     "--dest", self.dest("nf"), mnt, "--", "sh", "-c", script,
                                     BIN], capture_output=True, text=True, timeout=300)
        ts = [threading.Thread(target=rank, args=(r,)) for r in (1, 0)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        self.assertEqual([out[0].returncode, out[1].returncode], [0, 0],
                         out[0].stderr + out[1].stderr)
        rd = self.restore("nf", "a")
        self.assertEqual(sorted(os.listdir(rd.prev)), ["r0", "r1"])
        self.assertEqual(open(os.path.join(rd.prev, "r1", "f")).read(), "1\n")
        mnt = os.path.join(self.base, "nfr")
        r = subprocess.run([BIN, "run", "--no-fuse", "--src", self.dest("nf"), "--dest",
                            self.dest("nf-x"), mnt, "--", "true"], capture_output=True,
                           text=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(sorted(os.listdir(os.path.join(mnt, "prev"))), ["r0", "r1"])

    def test_world_from_the_environment(self):
        env = dict(os.environ, GROUP_WORLD_SIZE="2", GROUP_RANK="1", RANK="7", WORLD_SIZE="16")
        m = self.mount(self.dest("env"), name="env", env=env, extra=["--world", "auto"])
        st = m.status()["world"]
        self.assertEqual((st["rank"], st["size"]), (1, 2))
        bad = subprocess.run([BIN, "--dest", self.dest("x"),
                              "--world", "4", "--rank", "4", self.path("nomnt")],
                             capture_output=True, text=True)
        self.assertNotEqual(bad.returncode, 0)
        self.assertIn("--rank 4", bad.stderr)
        one = self.mount(self.dest("one"), name="one")
        out = subprocess.run([BIN, "wait", "--committed", one.mnt], capture_output=True,
                             text=True)
        self.assertEqual(out.returncode, 1)
        self.assertIn("not a multi-rank mount", out.stderr)


class S3WorldTest(WorldCases, MountTest):
    def setUp(self):
        super().setUp()
        from test_s3 import Moto
        self.moto = Moto(self.base)
        self.addCleanup(self.moto.stop)
        self.moto.client().create_bucket(Bucket="ckit")

    def dest(self, name):
        return f"s3://ckit/world/{name}"

    def env(self):
        return self.moto.env(CKPTFS_S3_PART_SIZE="5M")

    def read_object(self, name):
        return self.moto.client().get_object(Bucket="ckit", Key=f"world/{name}")["Body"].read()

    def test_rewritten_shard_of_the_same_size_is_refused(self):
        # Another object of exactly the shard's size at its key: the ETag, not the size,
        # tells it apart.
        ms = self.ranks("ck", world=2)
        self.fill(ms, 1)
        self.assertEqual(self.save_all(ms, [1, 0]), {0: 0, 1: 0}, ms[0].logtext())
        s3 = self.moto.client()
        key = "world/ck.ranks/g1/r1-of-2"
        body = bytearray(s3.get_object(Bucket="ckit", Key=key)["Body"].read())
        body[100] ^= 0xFF
        s3.put_object(Bucket="ckit", Key=key, Body=bytes(body))
        rd = self.restore("ck", "a")
        with self.assertRaises(OSError):
            os.listdir(rd.prev)
        err = rd.status()["prev"]["error"]
        self.assertIn("changed after the commit", err)
        self.assertIn(f"{len(body)} bytes", err)  # the same size both sides
        self.assert_ls_refuses("ck")

    def test_rank_killed_mid_upload(self):
        ms = self.ranks("ck")
        want1 = self.fill(ms, 1)
        self.assertEqual(self.save_all(ms, [0, 1, 2, 3]), {0: 0, 1: 0, 2: 0, 3: 0},
                         ms[0].logtext())
        for m in ms:
            m.unmount()
        # Generation 2: rank 1 talks through a proxy; rank 0 opens the round, rank 1 joins
        # it and is killed while its PUT is held at the proxy.
        proxy = FaultProxy(self.base, self.moto.port, "pass*inf")
        self.addCleanup(proxy.stop)
        ms = []
        for r in range(WORLD):
            env = self.moto.env(proxy.url if r == 1 else None, CKPTFS_S3_PART_SIZE="5M")
            ms.append(self.mount(self.dest("ck"), name=f"g2-r{r}", env=env,
                                 cache=self.path(f"ck-r{r}-cache"),
                                 extra=["--world", str(WORLD), "--rank", str(r),
                                        "--world-timeout", "20"]))
        self.fill(ms, 2)
        rc0 = {}
        t0 = threading.Thread(target=lambda: rc0.setdefault(0, ms[0].touch_save()))
        t0.start()
        wait_for(lambda: ms[0].status()["world"]["claimed"] == 2, 20, "rank 0's round 2")
        proxy.set_plan("pass*2,gate=500*inf")  # GET the round, HEAD its shard; hold the rest
        t = threading.Thread(target=ms[1].touch_save)
        t.start()
        wait_for(lambda: any(rec["action"].startswith("gate") and rec["method"] == "PUT"
                             for rec in proxy.records()), 60, "rank 1's upload to hang")
        ms[1].kill()
        proxy.stop()  # the held PUT never reaches the store
        t.join()
        rcs = self.save_all(ms, [2, 3])
        t0.join()
        self.assertEqual((rc0, rcs), ({0: 1}, {2: 0, 3: 0}), ms[0].logtext())
        rd = self.restore("ck", "a")
        self.assertEqual(tree(rd.prev), want1)
        # Rank 1 restarts on its cache dir: the next round on every rank commits.
        ms[1] = self.mount(self.dest("ck"), name="g3-r1", env=self.moto.env(None),
                           cache=self.path("ck-r1-cache"),
                           extra=["--world", str(WORLD), "--rank", "1"])
        want3 = self.fill(ms, 3)
        self.assertEqual(self.save_all(ms, [3, 1, 2, 0]), {0: 0, 1: 0, 2: 0, 3: 0},
                         ms[0].logtext())
        rd = self.restore("ck", "b")
        self.assertEqual(tree(rd.prev), want3)
        self.assertEqual(rd.status()["prev"]["world"]["generation"], 3)
        # Round 2 failed (ranks 2 and 3 had uploaded their shards): once round 3 committed,
        # rank 0 removed them; generation 3's objects stay.
        c = self.moto.client()
        keys = [o["Key"] for o in c.list_objects_v2(Bucket="ckit").get("Contents", [])
                if o["Key"].startswith("world/ck.ranks/")]  # (moto: no "/" in a signed prefix)
        self.assertFalse([k for k in keys if "/g2/" in k], keys)
        self.assertEqual(len([k for k in keys if "/g3/" in k]), 4, keys)
        self.assertEqual(c.list_multipart_uploads(Bucket="ckit").get("Uploads", []), [])


class RgwWorldTest(WorldCases, MountTest):
    """The cases on Ceph's radosgw (a faithful S3: conditional writes, ETags)."""

    def setUp(self):
        super().setUp()
        from test_s3 import Rgw
        self.rgw = Rgw.shared()
        self.bucket = self.rgw.bucket()

    def dest(self, name):
        return f"s3://{self.bucket}/world/{name}"

    def env(self):
        return self.rgw.env(CKPTFS_S3_PART_SIZE="5M")

    def read_object(self, name):
        return self.rgw.client().get_object(Bucket=self.bucket,
                                            Key=f"world/{name}")["Body"].read()


class GcsWorldTest(WorldCases, MountTest):
    copies_ranges = False

    def setUp(self):
        super().setUp()
        from test_gcs import FakeGcs
        self.gcs = FakeGcs(self.base)
        self.addCleanup(self.gcs.stop)

    def dest(self, name):
        return f"gs://ckit/world/{name}"

    def env(self):
        from test_gcs import gcs_env
        return gcs_env(GOOGLE_APPLICATION_CREDENTIALS=self.gcs.sa_file(),
                       CKPTFS_GCS_ENDPOINT=self.gcs.url, CKPTFS_GCS_PART_SIZE="5M")

    def read_object(self, name):
        return self.gcs.object(f"world/{name}")


class AzureWorldTest(WorldCases, MountTest):
    copies_ranges = False

    def setUp(self):
        super().setUp()
        import azblob
        from test_azure import Azurite
        self.az = Azurite(self.base)
        self.addCleanup(self.az.stop)
        azblob.create_container(self.az.port, "ckit")

    def dest(self, name):
        return f"az://ckit/world/{name}"

    def env(self):
        import azblob
        from test_azure import az_env
        return az_env(AZURE_STORAGE_CONNECTION_STRING=(
            f"DefaultEndpointsProtocol=http;AccountName={azblob.ACCOUNT};"
            f"AccountKey={azblob.KEY};BlobEndpoint={self.az.url}/{azblob.ACCOUNT};"))

    def read_object(self, name):
        import azblob
        return azblob.get_blob(self.az.port, "ckit", f"world/{name}")
