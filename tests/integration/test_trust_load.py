"""Load (issue 5): many concurrent writers and readers on save/ and prev/, with async
saves and .status polls in between, for CK_TRUST_LOAD_SECONDS (default 15) per round.
Every reader sees exactly what was written; afterwards the daemon's open descriptors
return to their baseline (once the kernel forgets the nodes) and its memory does not
grow from one round to the next (no leak per operation)."""
import os
import random
import shutil
import subprocess
import threading
import time

from ckfs import MountTest, make_sample_tree, tree, wait_for

MIB = 1 << 20


def fds(pid):
    """Open descriptors but libfuse's splice pipes: each FUSE worker thread keeps one pipe
    pair while it lives (bounded by the worker limit, checked apart)."""
    return sum(1 for t in fd_targets(pid) if not t.startswith("pipe:"))


def fd_targets(pid):
    """What pid's descriptors name now; one closed between the listing and its readlink
    (a read's own descriptor, ops_tree.c) is left out."""
    d = f"/proc/{pid}/fd"
    out = []
    for n in os.listdir(d):
        try:
            out.append(os.readlink(os.path.join(d, n)))
        except FileNotFoundError:
            pass
    return out


def pipes(pid):
    return sum(1 for t in fd_targets(pid) if t.startswith("pipe:"))


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def drop_caches():
    """The kernel keeps FUSE nodes (and so the daemon's O_PATH descriptors) until it
    forgets them; dropping dentries and inodes makes it send the FORGETs."""
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("2\n")


class LoadTest(MountTest):
    def setUp(self):
        super().setUp()
        self.seconds = float(os.environ.get("CK_TRUST_LOAD_SECONDS", "15"))
        src_tree = os.path.dirname(self.path("srctree", "x"))
        make_sample_tree(src_tree, big=1 * MIB)
        self.src = self.path("src", "ck.tgz")
        subprocess.run(["tar", "-czf", self.src, "-C", src_tree, "."], check=True)
        self.want_prev = tree(src_tree)
        self.m = self.mount(self.path("dest", "ck.tgz"), [self.src])
        self.pid = self.m.proc.pid
        self.errors = []
        self.counts = {"write": 0, "read": 0, "prev": 0, "save": 0, "status": 0}
        self.lock = threading.Lock()

    def count(self, what):
        with self.lock:
            self.counts[what] += 1

    def writer(self, idx, stop):
        rng = random.Random(idx)
        d = os.path.join(self.m.save, f"w{idx}")
        os.makedirs(d, exist_ok=True)
        n = 0
        while not stop.is_set():
            name = os.path.join(d, f"f{n % 8}")
            data = rng.randbytes(rng.randrange(1, 256 * 1024))
            with open(name + ".tmp", "wb") as f:
                f.write(data)
            os.rename(name + ".tmp", name)
            with open(name, "rb") as f:
                if f.read() != data:
                    self.errors.append(f"writer {idx}: {name} reads back different")
            if n % 5 == 4:
                fd = os.open(name, os.O_RDWR)
                os.unlink(name)
                os.pwrite(fd, b"x" * 1000, 10)
                os.close(fd)
            n += 1
            self.count("write")

    def prev_reader(self, idx, stop):
        while not stop.is_set():
            got = tree(self.m.prev)
            if got != self.want_prev:
                self.errors.append(f"prev reader {idx}: prev/ differs")
            self.count("prev")

    def saver(self, stop):
        while not stop.is_set():
            subprocess.run(f"echo async > {self.m.mnt}/.save", shell=True)
            self.count("save")
            for _ in range(20):
                self.m.status()
                self.count("status")
                time.sleep(0.05)

    def round(self):
        stop = threading.Event()
        threads = [threading.Thread(target=self.writer, args=(i, stop)) for i in range(8)]
        threads += [threading.Thread(target=self.prev_reader, args=(i, stop)) for i in range(4)]
        threads.append(threading.Thread(target=self.saver, args=(stop,)))
        for t in threads:
            t.start()
        try:
            time.sleep(self.seconds)
        finally:
            stop.set()
            for t in threads:
                t.join()
        self.assertEqual(self.errors, [])
        # let the last save end, remove what the round made, let the kernel forget
        wait_for(lambda: self.m.status()["save"]["current"] is None, 120, "the saves")
        for n in os.listdir(self.m.save):
            shutil.rmtree(os.path.join(self.m.save, n))
        self.assertEqual(self.m.touch_save(), 0, self.m.logtext())

    def settle(self, base_fds):
        def back():
            drop_caches()
            return fds(self.pid) <= base_fds
        try:
            wait_for(back, 30, "descriptors back to the baseline")
        except AssertionError:
            d = f"/proc/{self.pid}/fd"
            names = sorted(os.readlink(os.path.join(d, n)) for n in os.listdir(d))
            self.fail(f"descriptors not back to {base_fds}: {len(names)}: {names}")

    def test_many_writers_and_readers(self):
        # warm up: prev/ loaded, one save done, caches dropped: the baseline
        self.assertEqual(tree(self.m.prev), self.want_prev)
        self.assertEqual(self.m.touch_save(), 0)
        drop_caches()
        time.sleep(0.2)
        base_fds = fds(self.pid)
        self.round()
        self.settle(base_fds)
        rss1 = rss_kib(self.pid)
        self.round()
        self.settle(base_fds)
        rss2 = rss_kib(self.pid)
        self.assertLessEqual(pipes(self.pid), 2 * 64 + 2, "more splice pipes than workers")
        print(f"\nload: {self.counts}, fds {base_fds} -> {fds(self.pid)}, "
              f"rss after round 1 {rss1} KiB, after round 2 {rss2} KiB")
        # a leak per operation would grow with the second round's thousands of operations
        self.assertLess(rss2 - rss1, 16 * 1024, "the daemon's memory grows per round")
        self.assertEqual(self.m.status()["save"]["saves_failed"], 0)
