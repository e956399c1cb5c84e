"""PyTorch through ckptfs run (issue 23 item 2): a training program killed with kill -9
resumes bit-identically from its last durable checkpoint, and a checkpoint torn by the
crash never replaces the good one. Uses Debian's python3-torch with /usr/bin/python3
(scripts/deps.sh installs it)."""
import io
import json
import os
import signal
import subprocess
import tarfile
import unittest

from ckfs import BIN, MountTest, free_port

PY = "/usr/bin/python3"
TRAIN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "torch_train.py")
DCP = os.path.join(os.path.dirname(os.path.abspath(__file__)), "dcp_worker.py")


def have_torch():
    return subprocess.run([PY, "-c", "import torch"], capture_output=True).returncode == 0


def load_member(obj, name):
    """torch.load of one member of a checkpoint object, in Debian's Python."""
    with tarfile.open(obj, "r:*") as t:
        data = t.extractfile(name).read()
    code = ("import io, sys, torch; s = torch.load(io.BytesIO(sys.stdin.buffer.read())); "
            "print(s['step'])")
    r = subprocess.run([PY, "-c", code], input=data, capture_output=True)
    return r.returncode, r.stdout.decode().strip(), r.stderr.decode()


@unittest.skipUnless(have_torch(), "python3-torch is not installed (scripts/deps.sh test)")
class PyTorchTest(MountTest):
    def run_train(self, name, dest, src=None, extra=()):
        mnt = os.path.join(self.base, name)
        args = [BIN, "run", "--dest", dest, "--cache-dir", self.path(name + "-cache")]
        if src:
            args += ["--src", src]
        args += [mnt, "--", PY, TRAIN, "--out", self.path(name + ".pt"), *extra]
        return subprocess.run(args, capture_output=True, text=True, timeout=300)

    def same_weights(self, a, b):
        code = ("import sys, torch; x, y = torch.load(sys.argv[1]), torch.load(sys.argv[2]); "
                "sys.exit(0 if x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x) "
                "else 1)")
        return subprocess.run([PY, "-c", code, a, b]).returncode == 0

    def test_kill_9_then_resume_is_bit_identical(self):
        ref = self.run_train("ref", self.path("d", "ref.tgz"))
        self.assertEqual(ref.returncode, 0, ref.stderr)
        crashed = self.path("d", "attempt0.tgz")
        r = self.run_train("a0", crashed, extra=["--crash-at", "13"])
        self.assertEqual(r.returncode, 128 + signal.SIGKILL, r.stderr)
        self.assertEqual(load_member(crashed, "ckpt.pt")[:2], (0, "10"))
        r = self.run_train("a1", self.path("d", "attempt1.tgz"), src=crashed)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("resumed at step 10", r.stdout)
        self.assertTrue(self.same_weights(self.path("ref.pt"), self.path("a1.pt")))

    def test_a_checkpoint_torn_by_the_crash_is_not_uploaded(self):
        dest = self.path("d", "attempt0.tgz")
        r = self.run_train("a0", dest, extra=["--crash-at", "12", "--tear"])
        self.assertEqual(r.returncode, 128 + signal.SIGKILL, r.stderr)
        self.assertIn("not uploaded", r.stderr)
        rc, step, err = load_member(dest, "ckpt.pt")
        self.assertEqual((rc, step), (0, "10"), err)  # the good step-10 checkpoint stays
        with tarfile.open(dest, "r:*") as t:
            self.assertEqual(t.getnames(), ["ckpt.pt"])  # no temporary file either
        # the torn file is still in the cache dir, not lost and not uploaded
        torn = os.path.join(self.path("a0-cache"), "save", "ckpt.pt")
        self.assertTrue(os.path.exists(torn))
        # and the retry resumes from step 10
        r = self.run_train("a1", self.path("d", "attempt1.tgz"), src=dest)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("resumed at step 10", r.stdout)

    def test_frozen_base_weights_are_copied_not_sent(self):
        """docs/reuse.md with a real client: a fine-tuning loop as nobody (pathlib,
        torch.save) saves frozen base weights and a small adapter at every checkpoint; the
        second save copies the base's members from the first object instead of sending
        them, and the object reads back with torch.load. A second copy of the base, saved
        once at the first step and left alone, is not even read by the second save
        (docs/reuse.md 6); the one torch.save writes again is read, matched and copied."""
        from test_users import NOBODY, NOGROUP, py_as_user
        os.chmod(self.base, 0o755)
        dest = self.path("dest", "lora.tgz")
        extra = ["-o", "allow_other", "--uid", str(NOBODY), "--gid", str(NOGROUP)]
        m = self.mount(dest, extra=extra)
        code = """
            import json, pathlib, sys, torch
            mnt = pathlib.Path(sys.argv[1])
            torch.manual_seed(0)
            base = {f"layer{i}.weight": torch.randn(512, 1024) for i in range(8)}  # 16 MiB
            out = []
            for step in (1, 2):
                d = mnt / "save" / "checkpoint"
                d.mkdir(parents=True, exist_ok=True)
                torch.save(base, d / "base.pt")  # written again at every save, unchanged
                if step == 1:
                    torch.save(base, d / "frozen.pt")  # written once
                torch.save({"step": step, "lora_A": torch.randn(8, 1024) * step},
                           d / "adapter.pt")
                (mnt / ".save").touch()
                last = json.loads((mnt / ".status").read_text())["save"]["last"]
                out.append([last["result"], last["reused_bytes"], last["compressed_bytes"],
                            (last["files"] or {}).get("not_read")])
            print(json.dumps(out))
        """
        r = py_as_user(code, m.mnt, check=False)
        self.assertEqual(r.returncode, 0, r.stderr + m.logtext())
        (ok1, reused1, _, _), (ok2, reused2, size2, not_read2) = json.loads(r.stdout)
        self.assertEqual((ok1, ok2, reused1), ("ok", "ok", 0), r.stdout)
        self.assertGreaterEqual(reused2, 31 << 20, r.stdout)  # base.pt and frozen.pt
        self.assertLess(size2 - reused2, 1 << 20, r.stdout)
        self.assertEqual(not_read2, 1, r.stdout)  # frozen.pt
        self.assertEqual(m.unmount(), 0)
        self.assertEqual(load_member(dest, "checkpoint/adapter.pt")[0], 0)
        with tarfile.open(dest, "r:*") as t:
            base = t.extractfile("checkpoint/base.pt").read()
        code = ("import io, sys, torch; b = torch.load(io.BytesIO(sys.stdin.buffer.read())); "
                "torch.manual_seed(0); sys.exit(0 if torch.equal(b['layer7.weight'], "
                "[torch.randn(512, 1024) for _ in range(8)][7]) else 1)")
        self.assertEqual(subprocess.run([PY, "-c", code], input=base).returncode, 0)


@unittest.skipUnless(have_torch(), "python3-torch is not installed (scripts/deps.sh test)")
class DistributedCheckpointTest(MountTest):
    """4 ranks, one mount each (--world 4), saving torch's distributed checkpoint through a
    failed generation, an extra save on one rank and a restart with a fresh cache dir;
    the committed generation restored on 4 and on 2 ranks (issue 23 item 3)."""

    def ranks_run(self, mounts, what, step, touch=(), world=None):
        """Runs dcp_worker.py on every mount (rank = index) at once; {rank: stdout}."""
        world = world or len(mounts)
        port = free_port()
        procs = []
        for r, m in enumerate(mounts):
            env = dict(os.environ, RANK=str(r), WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1",
                       MASTER_PORT=str(port), GLOO_SOCKET_IFNAME="lo")
            args = [PY, DCP, what, m.mnt, str(step)] + (["--touch"] if r in touch else [])
            procs.append(subprocess.Popen(args, env=env, stdout=subprocess.PIPE,
                                          stderr=subprocess.PIPE, text=True))
        out = {}
        for r, p in enumerate(procs):
            o, e = p.communicate(timeout=300)
            self.assertEqual(p.returncode, 0, f"rank {r}: {e[-3000:]}")
            out[r] = o.strip()
        return out

    def world_mount(self, r, name, dest=None, srcs=(), world=4):
        return self.mount(dest or self.dest, srcs, name=name,
                          extra=["--world", str(world), "--rank", str(r),
                                 "--world-timeout", "6"])

    def test_a_world_recovers_and_restores_on_4_and_2_ranks(self):
        self.dest = self.path("store", "dcp.tgz")
        ms = [self.world_mount(r, f"r{r}") for r in range(4)]
        self.assertEqual(self.ranks_run(ms, "save", 1, touch={0, 1, 2, 3}),
                         {r: "saved" for r in range(4)})
        # generation 2: rank 3 dies before it saves; rank 0's save fails, 1 and 2 are told
        out = self.ranks_run(ms, "save", 2, touch={0, 1, 2})
        self.assertTrue(out[0].startswith("save failed"), out)
        self.assertEqual((out[1], out[2]), ("saved", "saved"))
        r = subprocess.run([BIN, "wait", "--committed", ms[1].mnt], capture_output=True,
                           text=True, timeout=120)
        self.assertEqual(r.returncode, 1)
        self.assertIn("failed on rank 0", r.stderr)
        # an extra save on rank 1 alone: refused, bounded
        self.assertNotEqual(ms[1].touch_save(), 0)
        # rank 3 comes back with a fresh cache dir
        ms[3].kill()
        ms[3] = self.world_mount(3, "r3-new")
        self.assertEqual(self.ranks_run(ms, "save", 3, touch={3, 1, 0, 2}),
                         {r: "saved" for r in range(4)})
        for m in ms[1:]:
            r = subprocess.run([BIN, "wait", "--committed", m.mnt], capture_output=True,
                               text=True, timeout=120)
            self.assertEqual(r.returncode, 0, r.stderr)
        # the committed generation, restored on 4 ranks and on 2
        for world in (4, 2):
            nxt = self.path("store", f"next-{world}.tgz")
            rd = [self.world_mount(r, f"read{world}-{r}", dest=nxt, srcs=[self.dest],
                                   world=world) for r in range(world)]
            self.assertEqual(self.ranks_run(rd, "load", 3), {r: "loaded" for r in range(world)})
            # rounds: 1 committed; 2 failed, and 3 too (Path.touch's fallback open().close()
            # after its failed utime saves again: an extra save on rank 0); 4 committed
            self.assertEqual(rd[0].status()["prev"]["world"], {"ranks": 4, "generation": 4})


if __name__ == "__main__":
    unittest.main()
