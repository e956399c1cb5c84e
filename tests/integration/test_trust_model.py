"""Randomized model test (issue 5): random operations on save/ through a real mount,
checked against a plain-directory reference model after every step, with synchronous
saves in between and asynchronous saves (`echo async > .save`) while operations go on.
Every saved generation must be exactly a state the model passed through while that save
was being asked for (from the request to the return of the async write's close).

Seeded and bounded in time: CK_TRUST_SEED (default: random, printed on failure) and
CK_TRUST_SECONDS (default 40 per test) reproduce and lengthen a run.
"""
import errno
import hashlib
import os
import random
import stat
import tarfile
import threading
import time

from ckfs import Mount, MountTest, wait_for

NAMES = ["a", "b", "c", "d", "e", "f", "g"]  # never "payload": that would be a raw object
DIRS = ["d1", "d2", "d1/s", "d2/s"]
MTIMES = [1_600_000_000, 1_650_000_000, 1_700_000_000]
MODES_FILE = [0o600, 0o640, 0o644, 0o700, 0o755]
MODES_DIR = [0o700, 0o750, 0o755]


def seconds():
    return float(os.environ.get("CK_TRUST_SECONDS", "40"))


def errno_of(fn):
    """Runs fn; returns its errno (0 on success) and its result."""
    try:
        return 0, fn()
    except OSError as e:
        return e.errno, None


class Model:
    """The reference: the same operations applied to a plain directory. Files' mtimes
    are compared only where the last change was an explicit utime (tracked by inode)."""

    def __init__(self, root):
        self.root = root
        self.mtime = {}  # reference inode -> explicit mtime

    def p(self, rel):
        return os.path.join(self.root, rel)

    def state(self):
        """{rel: (kind, mode, mtime or None, sha256 or link target)}"""
        return snapshot(self.root, self.mtime)

    def entries(self, kind=None):
        out = []
        for dirpath, dirnames, filenames in os.walk(self.root):
            for n in dirnames + filenames:
                rel = os.path.relpath(os.path.join(dirpath, n), self.root)
                st = os.lstat(self.p(rel))
                k = ("link" if stat.S_ISLNK(st.st_mode) else
                     "dir" if stat.S_ISDIR(st.st_mode) else "file")
                if kind is None or k == kind:
                    out.append(rel)
        return sorted(out)


def snapshot(root, mtimes=None):
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            p = os.path.join(dirpath, n)
            rel = os.path.relpath(p, root)
            st = os.lstat(p)
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("link", None, None, os.readlink(p))
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = ("dir", stat.S_IMODE(st.st_mode), None, None)
            else:
                with open(p, "rb") as f:
                    h = hashlib.sha256(f.read()).hexdigest()
                if mtimes is None:  # the live tree: its real mtime
                    mt = int(st.st_mtime)
                else:  # the model: only where an explicit utime set it
                    mt = mtimes.get(st.st_ino)
                out[rel] = ("file", stat.S_IMODE(st.st_mode), mt, h)
    return out


def live_matches(live, model_state):
    """save/ as seen through the mount against the model (mtimes where tracked)."""
    if set(live) != set(model_state):
        return False
    for k, (kind, mode, mt, data) in model_state.items():
        lk, lmode, lmt, ldata = live[k]
        if (lk, lmode, ldata) != (kind, mode, data):
            return False
        if mt is not None and lmt != mt:
            return False
    return True


def object_state(path):
    """The saved object as {rel: (kind, mode, mtime, sha256 or target)}; {} if empty."""
    if os.path.getsize(path) == 0:
        return {}
    out = {}
    with tarfile.open(path, "r:*") as t:
        for m in t:
            name = m.name.rstrip("/")
            if m.issym():
                out[name] = ("link", None, None, m.linkname)
            elif m.isdir():
                out[name] = ("dir", m.mode & 0o7777, None, None)
            elif m.isfile():
                h = hashlib.sha256(t.extractfile(m).read()).hexdigest()
                out[name] = ("file", m.mode & 0o7777, int(m.mtime), h)
            else:
                out[name] = ("other", m.type, None, None)
    return out


def extracts_cleanly(path, dest):
    """flyte-sdk's loader on the object; what it extracts must hold the same bytes."""
    if os.path.getsize(path) == 0:
        return {}
    with tarfile.open(path, "r:*") as t:
        if hasattr(tarfile, "data_filter"):
            t.extractall(dest, filter="data")
        else:
            t.extractall(dest)
    return {k: v[3] for k, v in snapshot(dest).items() if v[0] != "dir"}


class Runner:
    def __init__(self, test, m, ref, seed):
        self.t = test
        self.m = m
        self.save = m.save
        self.model = Model(ref)
        self.rng = random.Random(seed)
        self.ops = 0
        self.history = []  # op descriptions, for the failure message
        self.errnos = {}

    # --- choosing operands ---------------------------------------------------------
    def parent(self):
        dirs = [""] + [d for d in self.model.entries("dir") if d.count("/") < 2]
        return self.rng.choice(dirs)

    def newpath(self):
        par = self.parent()
        pool = NAMES + ([d.split("/")[-1] for d in DIRS] if par.count("/") < 1 else [])
        return os.path.join(par, self.rng.choice(pool))

    def anypath(self, kind=None):
        ents = self.model.entries(kind)
        if ents and self.rng.random() < 0.85:
            return self.rng.choice(ents)
        return self.newpath()

    def data(self, n):
        # compressible and random parts, so both codec paths are used
        if self.rng.random() < 0.5:
            return bytes([self.rng.randrange(256)]) * n
        return self.rng.randbytes(n)

    # --- operations: each applied to the model and to save/, errno compared --------
    def both(self, desc, fn):
        self.history.append(desc)
        e_ref, r_ref = errno_of(lambda: fn(self.model.root))
        e_mnt, r_mnt = errno_of(lambda: fn(self.save))
        self.t.assertEqual(e_mnt, e_ref, f"{desc}: mount errno {errno.errorcode.get(e_mnt)} "
                           f"!= reference {errno.errorcode.get(e_ref)}; last ops: {self.history[-20:]}")
        self.t.assertEqual(r_mnt, r_ref, f"{desc}: results differ")
        self.errnos[e_ref] = self.errnos.get(e_ref, 0) + 1
        self.ops += 1
        return e_ref

    def ref_ino(self, rel):
        try:
            return os.lstat(self.model.p(rel)).st_ino
        except OSError:
            return None

    def forget_mtime(self, rel):
        # writes and truncates follow symlinks: forget the target's inode
        try:
            ino = os.stat(self.model.p(rel)).st_ino
        except OSError:
            ino = None
        if ino is not None:
            self.model.mtime.pop(ino, None)

    def op_create(self):
        rel, data = self.newpath(), self.data(self.rng.randrange(0, 70000))
        mode = self.rng.choice(MODES_FILE)

        def f(root):
            fd = os.open(os.path.join(root, rel), os.O_CREAT | os.O_EXCL | os.O_WRONLY, mode)
            try:
                os.write(fd, data)
            finally:
                os.close(fd)
        if self.both(f"create {rel} {len(data)} mode {mode:o}", f) == 0:
            self.forget_mtime(rel)  # a new inode may reuse a tracked number

    def op_write(self):
        rel = self.anypath("file")
        off, data = self.rng.randrange(0, 300000), self.data(self.rng.randrange(1, 32768))
        self.forget_mtime(rel)

        def f(root):
            fd = os.open(os.path.join(root, rel), os.O_WRONLY)
            try:
                return os.pwrite(fd, data, off)
            finally:
                os.close(fd)
        self.both(f"pwrite {rel} @{off} +{len(data)}", f)

    def op_truncate(self):
        rel, size = self.anypath("file"), self.rng.randrange(0, 400000)
        self.forget_mtime(rel)
        self.both(f"truncate {rel} {size}", lambda r: os.truncate(os.path.join(r, rel), size))

    def op_rename(self):
        a = self.anypath()
        b = self.anypath() if self.rng.random() < 0.5 else self.newpath()
        self.both(f"rename {a} -> {b}",
                  lambda r: os.rename(os.path.join(r, a), os.path.join(r, b)))

    def op_unlink(self):
        rel = self.anypath("file" if self.rng.random() < 0.7 else "link")
        self.both(f"unlink {rel}", lambda r: os.unlink(os.path.join(r, rel)))

    def op_unlink_open(self):
        rel = self.anypath("file")
        off, data = self.rng.randrange(0, 100000), self.data(self.rng.randrange(1, 20000))
        self.forget_mtime(rel)  # other hard links see the write

        def f(root):
            fd = os.open(os.path.join(root, rel), os.O_RDWR)
            try:
                os.unlink(os.path.join(root, rel))
                os.pwrite(fd, data, off)
                os.fsync(fd)
                back = os.pread(fd, len(data), off)
                size = os.fstat(fd).st_size
                return hashlib.sha256(back).hexdigest(), size
            finally:
                os.close(fd)
        self.both(f"unlink-while-open {rel} then pwrite @{off} +{len(data)}", f)

    def op_mkdir(self):
        rel, mode = self.newpath(), self.rng.choice(MODES_DIR)
        self.both(f"mkdir {rel} {mode:o}", lambda r: os.mkdir(os.path.join(r, rel), mode))

    def op_rmdir(self):
        rel = self.anypath("dir")
        self.both(f"rmdir {rel}", lambda r: os.rmdir(os.path.join(r, rel)))

    def op_symlink(self):
        rel = self.newpath()
        # relative targets that stay in the tree (siblings), sometimes dangling
        target = self.rng.choice(NAMES + ["d1", "d2/a"])
        self.both(f"symlink {rel} -> {target}",
                  lambda r: os.symlink(target, os.path.join(r, rel)))

    def op_chmod(self):
        rel = self.anypath()
        if rel in self.model.entries("link"):
            return
        isdir = os.path.isdir(self.model.p(rel))
        mode = self.rng.choice(MODES_DIR if isdir else MODES_FILE)
        self.both(f"chmod {rel} {mode:o}", lambda r: os.chmod(os.path.join(r, rel), mode))

    def op_utime(self):
        rel = self.anypath()
        if rel in self.model.entries("link"):
            return
        t = self.rng.choice(MTIMES) + self.rng.randrange(1000)
        if self.both(f"utime {rel} {t}", lambda r: os.utime(os.path.join(r, rel), (t, t))) == 0:
            ino = self.ref_ino(rel)
            if os.path.isfile(self.model.p(rel)):
                self.model.mtime[ino] = t

    def op_link(self):
        a, b = self.anypath("file"), self.newpath()
        self.both(f"link {a} {b}", lambda r: os.link(os.path.join(r, a), os.path.join(r, b)))

    OPS = [("op_create", 5), ("op_write", 8), ("op_truncate", 3), ("op_rename", 4),
           ("op_unlink", 2), ("op_unlink_open", 2), ("op_mkdir", 2), ("op_rmdir", 1),
           ("op_symlink", 2), ("op_chmod", 2), ("op_utime", 2), ("op_link", 2)]

    def step(self):
        names, weights = zip(*self.OPS)
        getattr(self, self.rng.choices(names, weights)[0])()

    def check_live(self):
        want = self.model.state()
        live = snapshot(self.save)
        if not live_matches(live, want):
            diff = sorted(k for k in set(live) | set(want)
                          if k not in live or k not in want or
                          not live_matches({k: live[k]}, {k: want[k]}))
            self.t.fail(f"save/ differs from the model after {self.history[-1]!r}: {diff}\n"
                        f"live: {[live.get(k) for k in diff]}\n"
                        f"model: {[want.get(k) for k in diff]}")


class TrustModelTest(MountTest):
    def setUp(self):
        super().setUp()
        self.seed = int(os.environ.get("CK_TRUST_SEED") or random.randrange(1 << 32))
        self.dest = self.path("dest", "ck.tgz")
        self.ref = os.path.dirname(self.path("ref", "x"))

    def run(self, result=None):
        # the seed goes with every failure, so a run can be replayed
        r = super().run(result)
        res = result or r
        if res is not None and any(t is self for t, _ in res.failures + res.errors):
            print(f"\n*** {self.id()}: reproduce with CK_TRUST_SEED={self.seed}")
        return r

    def saved_state(self, gen_before):
        """Waits for a save after generation gen_before; returns (generation, state)."""
        def done():
            last = self.m.status()["save"]["last"]
            return last is not None and last["generation"] > gen_before and \
                self.m.status()["save"]["current"] is None
        wait_for(done, 120, "the save")
        last = self.m.status()["save"]["last"]
        self.assertEqual(last["result"], "ok", last)
        return last["generation"], object_state(self.dest)

    def check_object(self, got, candidates, what):
        for i, want in enumerate(candidates):
            if live_matches(got, want):
                return i
        def diff(want):
            keys = sorted(k for k in set(got) | set(want) if k not in got or k not in want
                          or not live_matches({k: got[k]}, {k: want[k]}))
            return [(k, got.get(k), want.get(k)) for k in keys]
        self.fail(f"seed {self.seed}: {what}: the object is none of the {len(candidates)} "
                  f"model states; last ops: {self.r.history[-8:]}\n"
                  f"(entry, object, first candidate): {diff(candidates[0])}\n"
                  f"(entry, object, last candidate): {diff(candidates[-1])}")

    def gen(self):
        last = self.m.status()["save"]["last"]
        return last["generation"] if last else 0

    def run_model(self, extra=()):
        self.m = self.mount(self.dest, extra=list(extra))
        self.r = r = Runner(self, self.m, self.ref, self.seed)
        # one bigger file, so saves take long enough to overlap the operations
        big = self.r.rng.randbytes(3 << 20)
        for root in (self.ref, self.m.save):
            with open(os.path.join(root, "big"), "wb") as f:
                f.write(big)
        end = time.monotonic() + seconds()
        sync_saves = async_saves = 0
        while time.monotonic() < end:
            for _ in range(r.rng.randrange(5, 25)):
                r.step()
                r.check_live()
            if r.rng.random() < 0.3:
                g = self.gen()
                want = r.model.state()
                self.assertEqual(self.m.touch_save(), 0, self.m.logtext()[-2000:])
                gen, got = self.saved_state(g)
                self.check_object(got, [want], f"sync save {gen}")
                self.check_extract(gen)
                sync_saves += 1
            else:
                async_saves += self.async_round()
        print(f"\nseed {self.seed}: {r.ops} ops, {sync_saves} sync + {async_saves} async saves"
              f", errnos {dict(sorted((errno.errorcode.get(k, 'ok'), v) for k, v in r.errnos.items()))}")
        self.assertGreater(sync_saves + async_saves, 0)
        return r

    def async_round(self):
        """echo async > .save in a thread while the main thread keeps changing save/;
        the object must be one of the states from the request to the return."""
        r = self.r
        g = self.gen()
        candidates = [r.model.state()]
        errs = []

        def ask():
            try:
                with open(os.path.join(self.m.mnt, ".save"), "w") as f:
                    f.write("async\n")
            except OSError as e:
                errs.append(e)
        th = threading.Thread(target=ask)
        th.start()
        while th.is_alive():
            r.step()
            r.check_live()
            candidates.append(r.model.state())
        th.join()
        self.assertEqual(errs, [])
        # keep changing save/ while the save compresses and commits
        for _ in range(r.rng.randrange(0, 10)):
            r.step()
            r.check_live()
        gen, got = self.saved_state(g)
        i = self.check_object(got, candidates, f"async save {gen}")
        self.check_extract(gen)
        del i
        return 1

    def check_extract(self, gen):
        out = os.path.dirname(self.path(f"x{gen}", "x"))
        files = extracts_cleanly(self.dest, out)
        got = object_state(self.dest)
        self.assertEqual(files, {k: v[3] for k, v in got.items() if v[0] != "dir"})

    def test_random_ops_file_dest(self):
        r = self.run_model(["--compress", "gzip-6"])
        # after a clean unmount (which saves) the object is the final model state
        want = r.model.state()
        self.assertEqual(self.m.unmount(), 0)
        self.check_object(object_state(self.dest), [want], "the unmount save")

    def test_random_ops_survive_restart(self):
        r = self.run_model(["--no-save-on-unmount"])
        want = r.model.state()
        # kill -9 and restart on the same cache dir: save/ is exactly the model
        self.m.kill()
        m2 = Mount(self.base, self.dest, cache=self.m.cache, name="mnt2",
                   extra=["--no-save-on-unmount"])
        self.mounts.append(m2)
        got = snapshot(m2.save)
        self.assertTrue(live_matches(got, want), f"seed {self.seed}: after restart save/ "
                        f"differs: {sorted(set(got) ^ set(want))}")
        self.assertEqual(m2.touch_save(), 0, m2.logtext())
        self.check_object(object_state(self.dest), [want], "the save after restart")
