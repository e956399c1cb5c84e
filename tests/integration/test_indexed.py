"""Restore from ckptfs's own archives through the seek index (SPEC 3 and 5): the tree is
listed from the index alone, file data is fetched by ranged reads of just the members it
needs, every byte at every member boundary is right, and a damaged or hostile index is
handled (fallback to full extraction, or a clear refusal)."""
import errno
import os
import re
import random
import signal
import subprocess
import sys
import threading
import time
import zlib

from ckfs import BIN, TOOLS, MountTest, tree

sys.path.insert(0, TOOLS)
import ckindex as ckindex_mod  # noqa: E402  (the independent reader of docs/format.md)

MIB = 1 << 20
SIZES = {"empty": 0, "one": 1, "b511": 511, "b512": 512, "b513": 513, "mib-1": MIB - 1,
         "mib": MIB, "mib+1": MIB + 1, "big": 3 * MIB + 12345, "sub/deep/x": 2 * MIB + 7,
         "weights.bin": 16 * MIB}


def data_offsets(obj_path):
    """{file name: offset of its data in the tar stream}, from the index."""
    _, _, _, entries = ckindex_mod.read_index(open(obj_path, "rb").read())
    return {e["name"].decode(): e["data_off"] for e in entries if e["type"] == 0}


def crc64_xz(data):
    """CRC-64/XZ (ECMA-182 polynomial, reflected, init and final xor all ones)."""
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0xC96C5795D7870F42 if c & 1 else c >> 1
        table.append(c)
    crc = 0xFFFFFFFFFFFFFFFF
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFFFFFFFFFF


def ckindex(*args):
    out = subprocess.run([sys.executable, os.path.join(TOOLS, "ckindex.py"), *args],
                         capture_output=True, text=True)
    if out.returncode != 0:
        raise AssertionError(out.stderr)
    return out.stdout


def pread_while_stopped(m, fd, n):
    """(whether it waited 10 s, the bytes): pread(fd, n, 0) while m's daemon is stopped."""
    got = {}
    t = threading.Thread(target=lambda: got.setdefault("b", os.pread(fd, n, 0)))
    os.kill(m.proc.pid, signal.SIGSTOP)
    try:
        t.start()
        t.join(10)
        waited = t.is_alive()
    finally:
        os.kill(m.proc.pid, signal.SIGCONT)
    t.join(30)
    return waited, got.get("b")


def save_source(t):
    """Saves a tree of SIZES (member boundaries, stored and deflated members) with a
    mount; t.src, t.data and t.obj name it."""
    t.src = os.path.dirname(t.path("src", "x"))
    rnd = random.Random(7)
    t.data = {}
    for name, size in SIZES.items():
        p = os.path.join(t.src, name)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        # half compressible text, half random: both stored and deflated members
        body = (b"step=%d loss=0.123\n" % size) * (size // 40 + 1)
        blob = (body[: size // 2] + rnd.randbytes(size - size // 2))[:size]
        open(p, "wb").write(blob)
        t.data[name] = blob
    os.symlink("big", os.path.join(t.src, "link"))
    open(os.path.join(t.src, "config.json"), "w").write('{"a": 1}\n')
    t.obj = t.path("dest", "ck.tgz")
    m = t.mount(t.obj, name="writer")
    subprocess.run(["cp", "-a", t.src + "/.", m.save], check=True)
    t.assertEqual(m.touch_save(), 0)
    m.unmount()


class IndexedRestoreTest(MountTest):
    def setUp(self):
        super().setUp()
        save_source(self)

    def test_tree_from_the_index_and_every_byte_right(self):
        m = self.mount(self.path("dest", "next"), [self.obj])
        names = sorted(os.listdir(m.prev))
        st = m.status()["prev"]
        self.assertTrue(st["indexed"])
        self.assertLess(st["bytes_done"], 2 * MIB)  # the tail only: no data yet
        self.assertIn("big", names)
        self.assertEqual(os.path.getsize(os.path.join(m.prev, "big")), SIZES["big"])
        self.assertEqual(os.readlink(os.path.join(m.prev, "link")), "big")
        self.assertEqual(tree(m.prev), tree(self.src))

    def test_every_mode_bit_survives_the_umask(self):
        # Placeholders were created with the archived mode through open(), which the
        # daemon's umask (022) cut: 0664 and 0775 came back as 0644 and 0755.
        src = os.path.dirname(self.path("modes", "x"))
        for i, mode in enumerate([0o664, 0o666, 0o775, 0o777, 0o444, 0o400, 0o751, 0o4755]):
            p = os.path.join(src, f"f{i:o}")
            open(p, "wb").write(b"mode %o\n" % mode * 1000)
            os.chmod(p, mode)
            os.utime(p, (1_600_000_000 + i, 1_600_000_000 + i))
        obj = self.path("dest", "modes.tgz")
        m = self.mount(obj, name="w2")
        subprocess.run(["cp", "-a", src + "/.", m.save], check=True)
        self.assertEqual(m.touch_save(), 0)
        m.unmount()
        m2 = self.mount(self.path("dest", "next"), [obj], name="r2")
        got = {n: os.stat(os.path.join(m2.prev, n)).st_mode & 0o7777 for n in os.listdir(m2.prev)}
        self.assertTrue(m2.status()["prev"]["indexed"])
        want = {n: os.stat(os.path.join(src, n)).st_mode & 0o777 for n in os.listdir(src)}
        self.assertEqual(got, want)  # setuid and friends are dropped, every other bit kept
        for n in os.listdir(src):  # contents and mtimes too
            self.assertEqual(open(os.path.join(m2.prev, n), "rb").read(),
                             open(os.path.join(src, n), "rb").read())
            self.assertEqual(os.stat(os.path.join(m2.prev, n)).st_mtime_ns,
                             os.stat(os.path.join(src, n)).st_mtime_ns)

    def test_reads_at_member_boundaries(self):
        entries = data_offsets(self.obj)
        m = self.mount(self.path("dest", "next"), [self.obj])
        rnd = random.Random(11)
        for name, size in SIZES.items():
            if size == 0:
                continue
            want = self.data[name]
            fd = os.open(os.path.join(m.prev, name), os.O_RDONLY)
            try:
                off0 = entries[name]
                cuts = [k * MIB - off0 for k in range(1, 8)]
                points = [c + d for c in cuts for d in (-2, -1, 0, 1) if 0 <= c + d < size]
                points += [rnd.randrange(size) for _ in range(20)] + [0, size - 1]
                for p in points:
                    n = rnd.choice([1, 2, 100, 4096, 70000, MIB + 3])
                    self.assertEqual(os.pread(fd, n, p), want[p:p + n], f"{name} @{p}+{n}")
                self.assertEqual(os.pread(fd, 10, size), b"")  # at EOF
            finally:
                os.close(fd)

    def test_partial_restore_fetches_only_what_is_read(self):
        m = self.mount(self.path("dest", "next"), [self.obj])
        self.assertEqual(open(os.path.join(m.prev, "config.json")).read(), '{"a": 1}\n')
        fetched = m.status()["prev"]["bytes_done"]
        self.assertLess(fetched, 2 * MIB, "reading one small file fetched too much")
        self.assertGreater(os.path.getsize(self.obj), 10 * MIB)

    def test_concurrent_readers(self):
        m = self.mount(self.path("dest", "next"), [self.obj])
        errors = []

        def read(name):
            try:
                with open(os.path.join(m.prev, name), "rb") as f:
                    if f.read() != self.data[name]:
                        errors.append(name)
            except OSError as e:
                errors.append(f"{name}: {e}")

        threads = [threading.Thread(target=read, args=(n,)) for n in SIZES for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        self.assertEqual(errors, [])

    def test_members_carry_their_crcs(self):
        """Version 3: each member's CRC-32 and CRC-64/XZ of its tar bytes (docs/format.md)."""
        obj = open(self.obj, "rb").read()
        loc, _, members, _ = ckindex_mod.read_index(obj)
        self.assertEqual(loc["version"], 3)
        for i, (_, ooff, ilen, olen, crc32, crc64) in enumerate(members):
            data = zlib.decompressobj(31).decompress(obj[ooff:ooff + olen])
            self.assertEqual(len(data), ilen)
            self.assertEqual(zlib.crc32(data), crc32, f"member {i}")
            if i < 3:  # pure Python: a few suffice
                self.assertEqual(crc64_xz(data), crc64, f"member {i}")

    def test_small_file_is_in_the_page_cache_when_open_returns(self):
        """An open of a small prev/ file returns with its bytes in the kernel's page cache
        (fs/prev_open.c), so reading them is no request to the daemon: they are read whole
        while the daemon is stopped."""
        m = self.mount(self.path("dest", "next"), [self.obj])
        os.listdir(m.prev)  # the tree is laid out; no data is fetched yet
        fd = os.open(os.path.join(m.prev, "b513"), os.O_RDONLY)
        waited, got = pread_while_stopped(m, fd, 513)
        os.close(fd)
        self.assertFalse(waited, "the read waited for the daemon")
        self.assertEqual(got, self.data["b513"])

    def test_a_file_in_the_page_cache_is_opened_with_no_descriptor(self):
        """A second open of a small prev/ file whose bytes the kernel holds (fs/prev_open.c)
        opens nothing on the cache disk: 200 such opens held at once add no descriptors to
        the daemon. When the kernel drops those pages (fadvise), the reads reach the daemon, which
        opens the file for them, and return the same bytes; fstat and fsync work on such a
        handle."""
        m = self.mount(self.path("dest", "next"), [self.obj], extra=["-d"])
        path = os.path.join(m.prev, "b513")
        with open(path, "rb") as f:
            self.assertEqual(f.read(), self.data["b513"])
        fds = lambda: len(os.listdir(f"/proc/{m.proc.pid}/fd"))  # noqa: E731
        before = fds()
        held = [os.open(path, os.O_RDONLY) for _ in range(200)]
        try:
            self.assertLess(fds() - before, 10, "each open holds a descriptor")
            reads = lambda: len(re.findall(r"opcode: READ \(", m.logtext()))  # noqa: E731
            n = reads()
            os.posix_fadvise(held[0], 0, 0, os.POSIX_FADV_DONTNEED)  # this file's pages only
            for fd in held[:3]:
                self.assertEqual(os.pread(fd, 4096, 0), self.data["b513"])
                self.assertEqual(os.fstat(fd).st_size, 513)
                os.fsync(fd)
            self.assertGreater(reads(), n, "the pages were not dropped: no read was tested")
            self.assertLess(fds() - before, 10, "a read kept the descriptor it opened")
        finally:
            for fd in held:
                os.close(fd)

    def test_a_fetch_stores_the_small_files_it_brings_whole(self):
        """Reading one small prev/ file fetches its member; every other small file the
        member holds whole, and the kernel knows (listed), has its bytes put into the
        kernel's page cache by the fetch (fs/prev_open.c, notices counted in the FUSE debug
        output), so its first open opens no descriptor on the cache disk and its bytes are
        read while the daemon is stopped."""
        m = self.mount(self.path("dest", "next"), [self.obj], extra=["-d"])
        os.listdir(m.prev)
        stores = lambda: len(re.findall(r"NOTIFY: code=4 ", m.logtext()))  # noqa: E731
        with open(os.path.join(m.prev, "b513"), "rb") as f:
            self.assertEqual(f.read(), self.data["b513"])
        deadline = time.monotonic() + 20
        while stores() < 3 and time.monotonic() < deadline:  # b513's own, b511, b512
            time.sleep(0.05)
        self.assertGreaterEqual(stores(), 3, "the fetch stored no other file")
        fds = lambda: len(os.listdir(f"/proc/{m.proc.pid}/fd"))  # noqa: E731
        before = fds()
        fd = os.open(os.path.join(m.prev, "b511"), os.O_RDONLY)
        try:
            # other descriptors may close meanwhile (an idle node's), none may open
            self.assertLessEqual(fds(), before, "the first open of b511 opened its file")
            waited, got = pread_while_stopped(m, fd, 4096)
            self.assertFalse(waited, "the read waited for the daemon")
            self.assertEqual(got, self.data["b511"])
        finally:
            os.close(fd)

    def test_a_second_listing_is_served_by_the_kernel(self):
        """prev/ never changes once loaded, so the kernel keeps its listings across opens
        (cache_readdir with keep_cache, fs/ops_dir.c): walking it again sends no READDIR or
        READDIRPLUS (counted in the FUSE debug output) and lists the same."""
        m = self.mount(self.path("dest", "next"), [self.obj], extra=["-d"])

        def walk():
            return sorted((d, sorted(ds), sorted(fs)) for d, ds, fs in os.walk(m.prev))

        def listings():
            return len(re.findall(r"opcode: READDIR(PLUS)? \(", m.logtext()))

        first = walk()
        before = listings()
        self.assertGreater(before, 0)
        self.assertEqual(walk(), first)
        self.assertEqual(listings(), before, "the second walk listed directories again")

    def test_version_1_index_is_still_read(self):
        ckindex("downgrade", self.obj, "1")
        m = self.mount(self.path("dest", "next"), [self.obj])
        self.assertEqual(tree(m.prev), tree(self.src))
        self.assertTrue(m.status()["prev"]["indexed"])

    def test_hostile_index_is_refused(self):
        ckindex("rename", self.obj, "config.json", "../evil")
        m = self.mount(self.path("dest", "next"), [self.obj])
        with self.assertRaises(OSError) as cm:
            os.listdir(m.prev)
        self.assertEqual(cm.exception.errno, errno.EIO)
        err = m.status()["prev"]["error"]
        self.assertIn("../evil", err)
        self.assertFalse(os.path.exists(os.path.join(self.base, "evil")))
        self.assertFalse(os.path.exists(os.path.join(m.cache, "evil")))

    def test_damaged_index_falls_back_to_full_extraction(self):
        obj = bytearray(open(self.obj, "rb").read())
        loc = obj[-66:]
        index_off = int.from_bytes(loc[28:36], "little")
        obj[index_off + 40] ^= 0xFF  # inside the compressed index
        open(self.obj, "wb").write(obj)
        subprocess.run(["gzip", "-t", self.obj], check=True)  # still a valid gzip stream
        m = self.mount(self.path("dest", "next"), [self.obj])
        self.assertEqual(tree(m.prev), tree(self.src))
        st = m.status()["prev"]
        self.assertFalse(st["indexed"])
        self.assertIn("seek index", m.logtext())

    def test_damaged_data_member_is_an_error_on_read(self):
        obj = bytearray(open(self.obj, "rb").read())
        _, _, members, entries = ckindex_mod.read_index(bytes(obj))
        big = next(e for e in entries if e["name"] == b"big")
        last = big["data_off"] + big["size"] - 1
        ioff, ooff, ilen, olen = next(m for m in members if m[0] <= last < m[0] + m[2])[:4]
        obj[ooff + olen // 2] ^= 0x10  # inside the member's deflate data
        open(self.obj, "wb").write(obj)
        m = self.mount(self.path("dest", "next"), [self.obj])
        with self.assertRaises(OSError) as cm:
            open(os.path.join(m.prev, "big"), "rb").read()
        self.assertEqual(cm.exception.errno, errno.EIO)
        self.assertIn("does not decompress", m.logtext())
        # the rest of the checkpoint is still readable, and the daemon is up
        self.assertEqual(open(os.path.join(m.prev, "one"), "rb").read(), self.data["one"])
        open(os.path.join(m.save, "still"), "w").write("up")


def disk_bytes(root):
    """Bytes the regular files under root take on disk (allocated blocks)."""
    n = 0
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            n += os.lstat(os.path.join(dirpath, name)).st_blocks * 512
    return n


def drop_page_cache(root):
    """Makes the kernel forget the pages it cached of every file under root (a FUSE
    mount's too), so the next reads reach the daemon."""
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            fd = os.open(os.path.join(dirpath, name), os.O_RDONLY)
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


class CacheLimitTest(MountTest):
    """--cache-limit (issue 26): prev/'s restored data on the cache disk stays under the
    limit, the rest is evicted and fetched again when read again, every byte right."""

    def setUp(self):
        super().setUp()
        save_source(self)
    LIMIT = 6 * MIB  # the tree holds about 26 MiB: four times the limit and more

    def limited(self, limit=LIMIT):
        m = self.mount(self.path("dest", "next"), [self.obj],
                       extra=["--cache-limit", str(limit)])
        return m, os.path.join(m.cache, "prev")

    def assert_within(self, m, cache_prev, limit):
        cache = m.status()["prev"]["cache"]
        self.assertEqual(cache["limit"], limit)
        self.assertLessEqual(cache["bytes"], limit)
        # files the limit does not count: partial blocks of small files, config.json
        self.assertLessEqual(disk_bytes(cache_prev), limit + 256 * 1024)
        return cache

    def test_whole_tree_and_random_reads_under_a_quarter_of_its_size(self):
        m, cache_prev = self.limited()
        self.assertEqual(tree(m.prev), tree(self.src))  # a whole-tree read, in walk order
        first = self.assert_within(m, cache_prev, self.LIMIT)
        self.assertGreater(first["evicted_bytes"], 10 * MIB)
        fetched = m.status()["prev"]["bytes_done"]
        rnd = random.Random(5)
        names = [n for n, size in SIZES.items() if size > 0]
        for k in range(120):
            if k % 20 == 0:
                drop_page_cache(m.prev)
            name = rnd.choice(names)
            off = rnd.randrange(SIZES[name])
            n = rnd.choice([1, 4096, 70000, 2 * MIB + 5])
            with open(os.path.join(m.prev, name), "rb") as f:
                f.seek(off)
                self.assertEqual(f.read(n), self.data[name][off:off + n], f"{name} @{off}+{n}")
        again = self.assert_within(m, cache_prev, self.LIMIT)
        self.assertGreater(again["evicted_bytes"], first["evicted_bytes"])
        self.assertGreater(m.status()["prev"]["bytes_done"], fetched)  # evicted, fetched again

    def test_concurrent_readers_under_a_tiny_limit(self):
        # Smaller than what four fetch threads and the readers hold at once: a read's
        # members are never evicted under it, so the cache may pass the limit by those.
        m, cache_prev = self.limited(2 * MIB)
        errors = []

        def read(name):
            try:
                for _ in range(2):
                    with open(os.path.join(m.prev, name), "rb") as f:
                        if f.read() != self.data[name]:
                            errors.append(name)
                    drop_page_cache(os.path.join(m.prev, name))
            except OSError as e:
                errors.append(f"{name}: {e}")

        threads = [threading.Thread(target=read, args=(n,)) for n in SIZES for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        self.assertEqual(errors, [])
        self.assertGreater(m.status()["prev"]["cache"]["evicted_bytes"], 0)

    def test_no_limit_counts_what_is_restored(self):
        m = self.mount(self.path("dest", "next"), [self.obj])
        self.assertEqual(open(os.path.join(m.prev, "weights.bin"), "rb").read(),
                         self.data["weights.bin"])
        cache = m.status()["prev"]["cache"]
        self.assertIsNone(cache["limit"])
        self.assertGreaterEqual(cache["bytes"], SIZES["weights.bin"])
        self.assertEqual(cache["evicted_bytes"], 0)

    def test_bad_limits_are_refused(self):
        for bad in ["0", "-1", "1.5G", "lots"]:
            out = subprocess.run([BIN, "--cache-limit", bad,
                                  "--dest", self.obj, self.path("m", "x")],
                                 capture_output=True, text=True)
            self.assertEqual(out.returncode, 2, out.stderr)
            self.assertIn("--cache-limit", out.stderr)
