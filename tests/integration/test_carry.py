"""The resume chain and --carry-forward (SPEC 4): a mount that saved nothing of its own
copies the previous checkpoint to --dest on unmount (server-side on S3 and GCS), so the
next retry, reading that --dest, still finds it; and it never overwrites a checkpoint
--dest already holds."""
import os
import shutil
import subprocess

from ckfs import BIN, MountTest, Nginx, make_sample_tree, tree
from test_s3 import Moto


class CarryForwardTest(MountTest):
    def setUp(self):
        super().setUp()
        self.src = os.path.dirname(self.path("src", "x"))
        make_sample_tree(self.src)
        self.want = tree(self.src)
        self.a = self.path("store", "attempt-1.tgz")
        subprocess.run([BIN, "put", self.src, self.a], check=True, capture_output=True)

    def carry(self, dest, srcs, extra=("--carry-forward",), env=None, name="m"):
        """Mounts, touches nothing, unmounts; returns the daemon's exit status and log."""
        m = self.mount(dest, srcs, extra=list(extra), env=env, name=name)
        rc = m.unmount()
        return rc, m.logtext()

    def test_unsaved_mount_carries_the_chain_forward(self):
        b = self.path("store", "attempt-2.tgz")
        rc, log = self.carry(b, [self.path("store", "missing"), self.a])
        self.assertEqual(rc, 0, log)
        self.assertIn("carried forward", log)
        with open(self.a, "rb") as x, open(b, "rb") as y:
            self.assertEqual(x.read(), y.read())
        # the next retry reads attempt 2's dest and finds attempt 1's checkpoint
        m = self.mount(self.path("store", "attempt-3.tgz"), [b], name="m3")
        self.assertEqual(tree(m.prev), self.want)

    def test_off_by_default(self):
        b = self.path("store", "b.tgz")
        rc, log = self.carry(b, [self.a], extra=())
        self.assertEqual(rc, 0, log)
        self.assertFalse(os.path.exists(b))

    def test_a_mount_that_saved_does_not_carry(self):
        b = self.path("store", "b.tgz")
        m = self.mount(b, [self.a], extra=["--carry-forward"])
        open(os.path.join(m.save, "mine.txt"), "w").write("new")
        self.assertEqual(m.touch_save(), 0)
        self.assertEqual(m.unmount(), 0)
        out = self.path("out")
        os.makedirs(out)
        subprocess.run([BIN, "get", b, out], check=True, capture_output=True)
        self.assertEqual(os.listdir(out), ["mine.txt"])

    def test_unmount_save_counts_as_a_save(self):
        b = self.path("store", "b.tgz")
        m = self.mount(b, [self.a], extra=["--carry-forward"])
        open(os.path.join(m.save, "mine.txt"), "w").write("new")
        self.assertEqual(m.unmount(), 0)  # saves on unmount: nothing to carry
        self.assertNotIn("carried forward", m.logtext())
        out = self.path("out")
        os.makedirs(out)
        subprocess.run([BIN, "get", b, out], check=True, capture_output=True)
        self.assertEqual(os.listdir(out), ["mine.txt"])

    def test_never_overwrites_a_checkpoint_in_dest(self):
        """A daemon of the same attempt saved to dest, then died; its successor (same
        --dest, no save of its own) must not replace that newer data by the older."""
        b = self.path("store", "b.tgz")
        newer = self.path("newer")
        os.makedirs(newer)
        open(os.path.join(newer, "step"), "w").write("200")
        subprocess.run([BIN, "put", newer, b], check=True, capture_output=True)
        before = open(b, "rb").read()
        rc, log = self.carry(b, [self.a])
        self.assertEqual(rc, 0, log)
        self.assertIn("already holds a checkpoint", log)
        self.assertEqual(open(b, "rb").read(), before)

    def test_nothing_to_carry(self):
        b = self.path("store", "b.tgz")
        rc, log = self.carry(b, [self.path("store", "none-1"), self.path("store", "none-2")])
        self.assertEqual(rc, 0, log)
        self.assertIn("no previous checkpoint", log)
        self.assertFalse(os.path.exists(b))

    def test_src_equal_to_dest_is_left_alone(self):
        rc, log = self.carry(self.a, [self.a])
        self.assertEqual(rc, 0, log)
        self.assertEqual(tree_of_object(self, self.a), self.want)

    def test_unreachable_source_fails_the_unmount_and_says_why(self):
        b = self.path("store", "b.tgz")
        rc, log = self.carry(b, ["http://127.0.0.1:9/nothing-listens-here"])
        self.assertNotEqual(rc, 0)
        self.assertIn("carry forward", log)
        self.assertFalse(os.path.exists(b))

    def test_across_backends_streamed(self):
        """file:// -> http:// (nginx): no server-side copy between them, so streamed."""
        nginx = Nginx(self.base)
        self.addCleanup(nginx.stop)
        url = nginx.url + "/runs/2/ck"
        rc, log = self.carry(url, [self.a])
        self.assertEqual(rc, 0, log)
        self.assertIn("streamed", log)
        with open(self.a, "rb") as x, open(os.path.join(nginx.data, "runs", "2", "ck"), "rb") as y:
            self.assertEqual(x.read(), y.read())

    def test_s3_server_side_copy(self):
        moto = Moto(self.base)
        self.addCleanup(moto.stop)
        s3 = moto.client()
        s3.create_bucket(Bucket="ckpts")
        s3.put_object(Bucket="ckpts", Key="runs/1/ckpt", Body=open(self.a, "rb").read())
        rc, log = self.carry("s3://ckpts/runs/2/ckpt", ["s3://ckpts/runs/1/ckpt"], env=moto.env())
        self.assertEqual(rc, 0, log)
        self.assertIn("server-side copy", log)
        got = s3.get_object(Bucket="ckpts", Key="runs/2/ckpt")["Body"].read()
        self.assertEqual(got, open(self.a, "rb").read())

    def test_no_fuse_mode_carries_too(self):
        b = self.path("store", "b.tgz")
        mnt = self.path("nofuse")
        os.makedirs(mnt)
        p = subprocess.Popen([BIN, "--no-fuse", "--carry-forward", "--src", self.a, "--dest", b,
                              "--cache-dir", self.path("nofuse-cache"), mnt],
                             stderr=subprocess.PIPE)
        from ckfs import wait_for
        wait_for(lambda: os.path.exists(os.path.join(mnt, ".status")), 20, "no-FUSE ready")
        p.terminate()
        _, err = p.communicate(timeout=60)
        self.assertEqual(p.returncode, 0, err.decode())
        with open(self.a, "rb") as x, open(b, "rb") as y:
            self.assertEqual(x.read(), y.read())


def tree_of_object(test, obj):
    out = test.path("check-" + os.path.basename(obj))
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    subprocess.run([BIN, "get", obj, out], check=True, capture_output=True)
    return tree(out)


class CarryForwardGcsTest(MountTest):
    def test_gcs_server_side_copy(self):
        from test_gcs import BUCKET as GBUCKET, FakeGcs, gcs_env
        gcs = FakeGcs(self.base)
        self.addCleanup(gcs.stop)
        src = os.path.dirname(self.path("src", "x"))
        make_sample_tree(src)
        env = gcs_env(GOOGLE_APPLICATION_CREDENTIALS=gcs.sa_file(), CKPTFS_GCS_ENDPOINT=gcs.url)
        first = f"gs://{GBUCKET}/runs/1/ckpt"
        p = subprocess.run([BIN, "put", src, first], env=env, capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        m = self.mount(f"gs://{GBUCKET}/runs/2/ckpt", [first], extra=["--carry-forward"],
                       env=env)
        self.assertEqual(m.unmount(), 0, m.logtext())
        self.assertIn("server-side copy", m.logtext())
        self.assertEqual(gcs.state()["copies"], 1)
        self.assertEqual(gcs.object("runs/2/ckpt"), gcs.object("runs/1/ckpt"))
