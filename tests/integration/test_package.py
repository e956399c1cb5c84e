"""The Debian package: built with dpkg-buildpackage (scripts/build-deb.sh), unpacked into
a temporary root with dpkg -x, and its binary used for a mount/save/restore round trip.

Building the package takes a minute or two, so ctest skips this suite unless CK_DEB names
a built .deb or CK_TEST_PACKAGE=1 asks to build one; scripts/test.sh runs it as its own
step with CK_DEB set."""
import glob
import os
import subprocess
import tempfile
import unittest

from ckfs import MountTest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def built_deb():
    if os.environ.get("CK_DEB"):
        return os.environ["CK_DEB"]
    if os.environ.get("CK_TEST_PACKAGE") != "1":
        return None
    out = tempfile.mkdtemp(prefix="ckdeb-")
    subprocess.run(["bash", os.path.join(ROOT, "scripts", "build-deb.sh"), out], check=True,
                   timeout=900)
    return glob.glob(os.path.join(out, "ckptfs_*.deb"))[0]


@unittest.skipUnless(os.environ.get("CK_DEB") or os.environ.get("CK_TEST_PACKAGE") == "1",
                     "set CK_DEB=path.deb or CK_TEST_PACKAGE=1 (scripts/test.sh does)")
class PackageTest(MountTest):
    @classmethod
    def setUpClass(cls):
        cls.deb = built_deb()
        cls.root = tempfile.mkdtemp(prefix="ckroot-")
        subprocess.run(["dpkg", "-x", cls.deb, cls.root], check=True)
        cls.bin = os.path.join(cls.root, "usr", "bin", "ckptfs")

    def test_metadata_and_files(self):
        info = subprocess.run(["dpkg-deb", "-I", self.deb], capture_output=True, text=True,
                              check=True).stdout
        self.assertIn("Package: ckptfs", info)
        self.assertRegex(info, r"Depends:.*fuse3")
        self.assertRegex(info, r"Depends:.*libfuse3")
        self.assertTrue(os.access(self.bin, os.X_OK))
        man = os.path.join(self.root, "usr", "share", "man", "man1", "ckptfs.1.gz")
        self.assertTrue(os.path.exists(man))
        r = subprocess.run([self.bin, "--version"], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0)
        self.assertIn("ckptfs", r.stdout)

    def test_installed_binary_mount_save_restore(self):
        dest1 = os.path.join(self.base, "ck", "attempt-1")
        dest2 = os.path.join(self.base, "ck", "attempt-2")
        mnt = os.path.join(self.base, "mnt")
        r = subprocess.run([self.bin, "run", "--dest", "file://" + dest1, mnt, "--", "sh", "-c",
                            'echo step-100 > "$CKPTFS_MOUNT/save/state" && '
                            'touch "$CKPTFS_MOUNT/.save"'],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        out = os.path.join(self.base, "out")
        r = subprocess.run([self.bin, "run", "--dest", dest2, "--src", '""', "--src", dest1,
                            mnt, "--", "sh", "-c",
                            'cp "$CKPTFS_MOUNT/prev/state" "$0"', out],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(open(out).read(), "step-100\n")
        got = os.path.join(self.base, "got")
        r = subprocess.run([self.bin, "get", dest1, got], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(open(os.path.join(got, "state")).read(), "step-100\n")


if __name__ == "__main__":
    unittest.main()
