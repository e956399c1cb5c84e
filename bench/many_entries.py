#!/usr/bin/env python3
"""Checkpoints of many small files (issue 26): ckptfs beside tar on the same tree, one run.

    python3 bench/many_entries.py [--files 100000] [--dirs 100] [--out FILE]

Generates FILES files of 100 B .. 4 KiB of random bytes (half of them compressible text)
in DIRS folders, each folder two levels deep (a/b), once under $CKBENCH_DIR (default
/var/tmp/ckbench), then on a file:// store (the same disk, so the store costs nothing and
what is left is ckptfs's own work):

  copy in     cp -a TREE/. save/ through the mount
  save        touch .save (durable)              beside  tar -czf TREE to the store
  restore     tar -xzf of the object, then every file read (os.walk, open, read, close),
              beside a new mount with --src: every file under prev/ read the same way
              (the first read also loads the index and lays out the tree), then again
              (cached), then ls -R prev/; each side after a sync and, as root, with the
              page cache dropped

and the ratios (SPEC 5 and issue 26: save within 1.5x of tar -c, whole restore within
1.5x of tar -x), the daemon's peak RSS and its open descriptors. Timings are wall clock on
a shared machine: compare the ratios within one run. Needs root (FUSE) and the build.
"""
import argparse
import json
import os
import random
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run as R  # noqa: E402  (Mount, FileBackend, sh, timed, read_all, drop_caches)


def gen_tree(files, dirs):
    base = os.environ.get("CKBENCH_DIR", "/var/tmp/ckbench")
    tree = os.path.join(base, f"many-{files}-{dirs}")
    if os.path.exists(os.path.join(tree, ".done")):
        return tree
    shutil.rmtree(tree, ignore_errors=True)
    rnd = random.Random(files * 7919 + dirs)
    words = [b"step", b"loss", b"tensor", b"shard", b"rank", b"lr", b"0.001", b"epoch"]
    for i in range(files):
        d = os.path.join(tree, f"d{(i % dirs) // 10:03d}", f"s{i % dirs:04d}")
        if i < dirs:
            os.makedirs(d)
        size = rnd.randint(100, 4096)
        if i % 2:
            data = rnd.randbytes(size)
        else:
            data = b" ".join(rnd.choice(words) for _ in range(size // 4))[:size]
        with open(os.path.join(d, f"f{i:07d}.bin"), "wb") as f:
            f.write(data)
    open(os.path.join(tree, ".done"), "w").close()
    return tree


def fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def save(work, be, tree, res):
    m = R.Mount(work, be.uri("ckptfs.tgz"))
    try:
        res["copy_in_s"] = R.timed(lambda: R.sh(["cp", "-a", tree + "/.", m.mnt + "/save"]))
        res["rss_after_copy_mib"] = m.peak_rss_mib()
        R.drop_caches()
        res["ckptfs_save_s"] = R.timed(lambda: R.sh(["touch", m.mnt + "/.save"]))
        res["save_rss_mib"] = m.peak_rss_mib()
        res["save_fds"] = fds(m.proc.pid)
    finally:
        m.unmount()
    out = os.path.join(be.dir, "tar.tgz")
    R.drop_caches()
    res["tar_czf_s"] = R.timed(lambda: R.sh(f"tar -czf {out}.tmp -C {tree} . && sync && "
                                            f"mv {out}.tmp {out}"))


def cold():
    """Dirty data written out and, as root, the page cache dropped: each side starts from
    the disk (the object, the tree). A sync alone left the two sides' caches to chance:
    tar -xzf of 100,000 files took 5.2-5.9 s after a drop and 24-26 s in that state."""
    R.drop_caches()
    if os.geteuid() == 0:
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")


def restore(work, be, res):
    out = tempfile.mkdtemp(prefix="tarx-", dir=work)
    cold()

    def tar_x():
        R.sh(["tar", "-xzf", os.path.join(be.dir, "ckptfs.tgz"), "-C", out])
        R.read_all(out)
    res["tar_xzf_read_s"] = R.timed(tar_x)
    shutil.rmtree(out)
    cold()
    m = R.Mount(work, be.uri("unused"), [be.uri("ckptfs.tgz")])
    try:  # the first read loads the index and lays out the tree too
        res["read_first_s"] = R.timed(lambda: R.read_all(m.mnt + "/prev"))
        res["read_cached_s"] = R.timed(lambda: R.read_all(m.mnt + "/prev"))
        res["ls_R_s"] = R.timed(lambda: R.sh(f"ls -R {m.mnt}/prev > /dev/null"))
        res["restore_rss_mib"] = m.peak_rss_mib()
        res["restore_fds"] = fds(m.proc.pid)
    finally:
        m.unmount()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=100000)
    ap.add_argument("--dirs", type=int, default=100)
    ap.add_argument("--out", default="bench-many.json")
    a = ap.parse_args()
    tree = gen_tree(a.files, a.dirs)
    work = tempfile.mkdtemp(prefix="many-", dir=os.path.dirname(tree))
    res = {"files": a.files, "dirs": a.dirs}
    try:
        be = R.FileBackend(work)
        save(work, be, tree, res)
        restore(work, be, res)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    r = lambda x, y: f"{res[x] / res[y]:.2f}x"  # noqa: E731
    print(f"| {a.files} files | ckptfs | tar | ratio |\n|---|---|---|---|")
    print(f"| copy in (cp -a) | {res['copy_in_s']:.2f} s | | |")
    print(f"| save | {res['ckptfs_save_s']:.2f} s | {res['tar_czf_s']:.2f} s (tar -czf) | "
          f"{r('ckptfs_save_s', 'tar_czf_s')} |")
    print(f"| whole restore, first read | {res['read_first_s']:.2f} s | "
          f"{res['tar_xzf_read_s']:.2f} s (tar -xzf, read) | "
          f"{r('read_first_s', 'tar_xzf_read_s')} |")
    print(f"| read again (cached) | {res['read_cached_s']:.2f} s | | "
          f"{r('read_cached_s', 'tar_xzf_read_s')} |")
    print(f"| ls -R prev/ (cached) | {res['ls_R_s']:.2f} s | | |")
    print(f"\nRSS peak: {res['rss_after_copy_mib']:.0f} MiB after the copy, "
          f"{res['save_rss_mib']:.0f} MiB saving, {res['restore_rss_mib']:.0f} MiB restoring; "
          f"descriptors: {res['save_fds']} after the save, {res['restore_fds']} after the reads")
    with open(a.out, "w") as f:
        json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
