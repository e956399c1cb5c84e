"""The object format both ways (SPEC 3): ckptfs's saves read back with the real readers,
and archives written by flyte-sdk's algorithm, GNU tar and bsdtar show up under prev/."""
import os
import shutil
import subprocess
import tarfile

from ckfs import MountTest, make_sample_tree, tree


def flyte_save(src_dir, out_path):
    """flyte-sdk's Checkpoint save: tarfile "w:gz" (level 9) of each top-level child."""
    with tarfile.open(out_path, "w:gz") as tar:
        for child in sorted(os.listdir(src_dir)):
            tar.add(os.path.join(src_dir, child), arcname=child)


def extract_python(archive, dest):
    """What flyte-sdk's loader does, with the "data" filter where this Python has it
    (>= 3.11.4; see tests/CMakeLists.txt: CI requires it)."""
    with tarfile.open(archive, "r:*") as t:
        if hasattr(tarfile, "data_filter"):
            t.extractall(dest, filter="data")
        else:
            t.extractall(dest)


def extract_gnutar(archive, dest):
    subprocess.run(["tar", "-xf", archive, "-C", dest], check=True)


def extract_bsdtar(archive, dest):
    subprocess.run(["bsdtar", "-xf", archive, "-C", dest], check=True)


class SaveReadsBackTest(MountTest):
    """save/ -> object -> Python tarfile (filter="data"), GNU tar, bsdtar."""

    def test_saved_object_extracts_identically_with_every_reader(self):
        src = self.path("src", "x")
        src = os.path.dirname(src)
        make_sample_tree(src)
        want = tree(src)
        dest = self.path("dest", "ck.tar.gz")
        m = self.mount(dest)
        shutil.copytree(src, m.save, symlinks=True, dirs_exist_ok=True)
        self.assertEqual(tree(m.save), want)
        self.assertEqual(m.touch_save(), 0, m.logtext())
        with open(dest, "rb") as f:
            self.assertEqual(f.read(2), b"\x1f\x8b")  # gzip
        with tarfile.open(dest, "r:*") as t:
            for name in t.getnames():
                self.assertFalse(name.startswith(("/", "./")), name)
                self.assertNotIn("..", name.split("/"))
        subprocess.run(["gzip", "-t", dest], check=True)
        for reader in (extract_python, extract_gnutar, extract_bsdtar):
            out = self.path("out-" + reader.__name__, "x")
            out = os.path.dirname(out)
            reader(dest, out)
            self.assertEqual(tree(out), want, reader.__name__)

    def test_lone_payload_is_saved_raw(self):
        dest = self.path("dest", "raw.bin")
        m = self.mount(dest)
        data = os.urandom(300_000)
        with open(os.path.join(m.save, "payload"), "wb") as f:
            f.write(data)
        self.assertEqual(m.touch_save(), 0)
        with open(dest, "rb") as f:
            self.assertEqual(f.read(), data)
        self.assertEqual(m.status()["save"]["last"]["kind"], "payload")

    def test_payload_with_company_is_a_tar(self):
        dest = self.path("dest", "ck")
        m = self.mount(dest)
        open(os.path.join(m.save, "payload"), "w").write("p")
        open(os.path.join(m.save, "other"), "w").write("o")
        self.assertEqual(m.touch_save(), 0)
        with tarfile.open(dest, "r:*") as t:
            self.assertEqual(sorted(t.getnames()), ["other", "payload"])

    def test_empty_save_area_saves_an_empty_object(self):
        dest = self.path("dest", "ck")
        m = self.mount(dest)
        self.assertEqual(m.touch_save(), 0)
        self.assertEqual(os.path.getsize(dest), 0)


class ForeignArchivesTest(MountTest):
    """Archives written by other tools, mounted as --src, show their tree under prev/."""

    def setUp(self):
        super().setUp()
        self.src = os.path.dirname(self.path("src", "x"))
        make_sample_tree(self.src)
        self.want = tree(self.src)
        self.entries = sorted(os.listdir(self.src))

    def check_prev(self, archive):
        m = self.mount(self.path("dest", "ck"), [archive])
        self.assertEqual(tree(m.prev), self.want, m.logtext())
        st = m.status()["prev"]
        self.assertEqual((st["state"], st["kind"]), ("ready", "tar"))
        m.unmount()

    def test_flyte_sdk_archive(self):
        a = self.path("a", "flyte.tar.gz")
        flyte_save(self.src, a)
        self.check_prev(a)

    def test_gnu_tar_gzip_with_dot_prefix(self):
        a = self.path("a", "dot.tgz")
        subprocess.run(["tar", "-czf", a, "-C", self.src, "."], check=True)
        self.check_prev(a)

    def test_gnu_tar_bzip2(self):
        a = self.path("a", "x.tar.bz2")
        subprocess.run(["tar", "-cjf", a, "-C", self.src] + self.entries, check=True)
        self.check_prev(a)

    def test_gnu_tar_xz(self):
        a = self.path("a", "x.tar.xz")
        subprocess.run(["tar", "-cJf", a, "-C", self.src] + self.entries, check=True)
        self.check_prev(a)

    def test_plain_tar(self):
        a = self.path("a", "x.tar")
        subprocess.run(["tar", "-cf", a, "-C", self.src] + self.entries, check=True)
        self.check_prev(a)

    def test_bsdtar_gzip(self):
        a = self.path("a", "bsd.tgz")
        subprocess.run(["bsdtar", "-czf", a, "-C", self.src] + self.entries, check=True)
        self.check_prev(a)

    def test_ckptfs_to_ckptfs_over_file_uri(self):
        dest = self.path("dest", "gen1.tar.gz")
        m = self.mount(dest, name="m1")
        shutil.copytree(self.src, m.save, symlinks=True, dirs_exist_ok=True)
        self.assertEqual(m.touch_save(), 0)
        m.unmount()
        self.check_prev("file://" + dest)


class SourcesTest(MountTest):
    def test_raw_object_is_prev_payload(self):
        data = os.urandom(123_457)
        src = self.path("a", "raw.bin")
        open(src, "wb").write(data)
        m = self.mount(self.path("dest", "ck"), [src])
        self.assertEqual(os.listdir(m.prev), ["payload"])
        self.assertEqual(open(os.path.join(m.prev, "payload"), "rb").read(), data)
        self.assertEqual(m.status()["prev"]["kind"], "payload")

    def test_missing_source_is_an_empty_prev(self):
        m = self.mount(self.path("dest", "ck"), [self.path("a", "missing.tgz")])
        self.assertEqual(os.listdir(m.prev), [])
        st = m.status()["prev"]
        self.assertEqual((st["state"], st["kind"], st["error"]), ("ready", "none", None))

    def test_empty_source_object_is_an_empty_prev(self):
        src = self.path("a", "empty")
        open(src, "wb").close()
        m = self.mount(self.path("dest", "ck"), [src])
        self.assertEqual(os.listdir(m.prev), [])
        self.assertEqual(m.status()["prev"]["kind"], "none")

    def test_flyte_first_attempt_empty_string_source(self):
        m = self.mount(self.path("dest", "ck"), ['""', ""])
        self.assertEqual(os.listdir(m.prev), [])

    def test_first_existing_non_empty_source_wins(self):
        empty = self.path("a", "empty")
        open(empty, "wb").close()
        good = self.path("a", "good.tgz")
        d = os.path.dirname(self.path("t", "x"))
        open(os.path.join(d, "mark"), "w").write("second")
        flyte_save(d, good)
        other = self.path("a", "other.tgz")
        open(os.path.join(d, "mark"), "w").write("third")
        flyte_save(d, other)
        m = self.mount(self.path("dest", "ck"), [self.path("a", "missing"), empty, good, other])
        self.assertEqual(open(os.path.join(m.prev, "mark")).read(), "second")
        self.assertTrue(m.status()["prev"]["source"].endswith("good.tgz"))

    def test_ckptfs_env_variables(self):
        src = self.path("a", "raw.bin")
        open(src, "wb").write(b"raw")
        dest = self.path("dest", "env.tgz")
        env = dict(os.environ, CKPTFS_DEST=dest, CKPTFS_SRC=src)
        m = self.mount(None, env=env)
        self.assertEqual(open(os.path.join(m.prev, "payload"), "rb").read(), b"raw")
        open(os.path.join(m.save, "f"), "w").write("x")
        self.assertEqual(m.touch_save(), 0)
        self.assertTrue(os.path.exists(dest))
