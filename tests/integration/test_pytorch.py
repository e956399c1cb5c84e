"""PyTorch through ckptfs run (issue 23 item 2): a training program killed with kill -9
resumes bit-identically from its last durable checkpoint, and a checkpoint torn by the
crash never replaces the good one. Uses Debian's python3-torch with /usr/bin/python3
(scripts/deps.sh installs it)."""
import io
import os
import signal
import subprocess
import tarfile
import unittest

from ckfs import BIN, MountTest

PY = "/usr/bin/python3"
TRAIN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "torch_train.py")


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


if __name__ == "__main__":
    unittest.main()
