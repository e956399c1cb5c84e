#!/usr/bin/env python3
"""ckptfs benchmark: every path side by side on the same data, one run, ratios (SPEC 5).

    python3 bench/run.py [--size MIB] [--backends file,http,s3] [--out FILE] [--repeat N] [--skip-peers]

Generates the SPEC 5 workload (default 1536 MiB: fp32 tensors from N(0, 0.02) and
N(0, 0.001) plus small JSON files; bench/gen_workload.c) once under $CKBENCH_DIR (default
/var/tmp/ckbench), then for each backend (file://, http:// to Debian's nginx, s3:// to
moto, all on 127.0.0.1) measures:

  save      ckptfs (touch .save, durable), flyte-sdk's algorithm (tarfile "w:gz" of each
            top-level child to a temp file, then upload), tar | pigz, plain tar -c
  restore   ckptfs (read every file under prev/), flyte-sdk (download to a temp file, then
            extractall(filter="data")), download + tar -x
  ckptfs    first byte of a small file in prev/ (from the mount being ready: the index
            is fetched on that first access), bytes fetched for a
            partial restore, async-save stall (echo async > .save) and the latency of a
            write issued while that save runs, daemon peak RSS
  fuse      sequential write MB/s into save/ against the same disk natively (dd, fsync)

Prints a markdown table and writes the raw figures as JSON. Needs root (FUSE), the build
(build/ckptfs), nginx (nginx-light), moto_server and boto3 for s3, pigz. Timings are wall
clock on a shared machine: compare ratios within one run, not across runs; the fast paths
(ckptfs save, tar -c save, FUSE writes) run --repeat times (3) and the best run counts.
"""
import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOOLS = os.path.join(ROOT, "tests", "tools")
BIN = os.environ.get("CKPTFS_BIN", os.path.join(ROOT, "build", "ckptfs"))
REPEAT = 3  # fast paths (ckptfs save, tar -c save, FUSE writes): best of REPEAT (--repeat)
if not os.path.exists(BIN):
    sys.exit(f"run.py: no ckptfs binary at {BIN}: build first (cmake --build build)")


def sh(cmd, **kw):
    return subprocess.run(cmd, shell=isinstance(cmd, str), check=True, **kw)


def timed(fn):
    t0 = time.monotonic()
    fn()
    return time.monotonic() - t0


def drop_caches():
    """Writes dirty data out so one measurement does not pay for the previous one."""
    sh("sync")


def workload(size_mib):
    base = os.environ.get("CKBENCH_DIR", "/var/tmp/ckbench")
    data = os.path.join(base, f"data-{size_mib}")
    if not os.path.exists(os.path.join(data, "config.json")):
        os.makedirs(base, exist_ok=True)
        gen = os.path.join(base, "gen_workload")
        sh(["cc", "-O2", "-o", gen, os.path.join(ROOT, "bench", "gen_workload.c"), "-lm"])
        shutil.rmtree(data, ignore_errors=True)
        sh([gen, data, str(size_mib)])
    return base, data


def dir_bytes(d):
    return sum(os.path.getsize(os.path.join(p, f)) for p, _, fs in os.walk(d) for f in fs)


# ---------------------------------------------------------------- backends


class FileBackend:
    name = "file"

    def __init__(self, work):
        self.dir = os.path.join(work, "file-store")
        os.makedirs(self.dir, exist_ok=True)

    def uri(self, key):
        return "file://" + os.path.join(self.dir, key)

    def upload(self, path, key):
        dst = os.path.join(self.dir, key)
        shutil.copyfile(path, dst + ".tmp")
        with open(dst + ".tmp", "rb") as f:
            os.fsync(f.fileno())
        os.rename(dst + ".tmp", dst)

    def upload_stream_cmd(self, key):
        return f"cat > {os.path.join(self.dir, key)} && sync"

    def download(self, key, path):
        shutil.copyfile(os.path.join(self.dir, key), path)

    def size(self, key):
        return os.path.getsize(os.path.join(self.dir, key))

    def stop(self):
        pass


class HttpBackend:
    name = "http"

    def __init__(self, work):
        self.dir = os.path.join(work, "nginx")
        os.makedirs(self.dir, exist_ok=True)
        out = sh([os.path.join(TOOLS, "nginx-dav"), "start", self.dir], capture_output=True,
                 text=True)
        self.url = f"http://127.0.0.1:{out.stdout.strip().splitlines()[-1]}"

    def uri(self, key):
        return f"{self.url}/{key}"

    def upload(self, path, key):
        sh(["curl", "-sf", "-T", path, self.uri(key)])

    def upload_stream_cmd(self, key):
        return f"curl -sf -T - {self.uri(key)}"

    def download(self, key, path):
        sh(["curl", "-sf", "-o", path, self.uri(key)])

    def size(self, key):
        return os.path.getsize(os.path.join(self.dir, "data", key))

    def stop(self):
        subprocess.run([os.path.join(TOOLS, "nginx-dav"), "stop", self.dir])


class S3Backend:
    name = "s3"

    def __init__(self, work):
        import boto3
        self.dir = os.path.join(work, "moto")
        os.makedirs(self.dir, exist_ok=True)
        out = sh([sys.executable, os.path.join(TOOLS, "moto-s3"), "start", self.dir],
                 capture_output=True, text=True)
        env = dict(line.split("=", 1) for line in out.stdout.split() if "=" in line)
        self.endpoint = f"http://127.0.0.1:{env['PORT']}"
        os.environ.update(AWS_ENDPOINT_URL=self.endpoint, AWS_REGION="us-east-1",
                          AWS_ACCESS_KEY_ID=env.get("AWS_ACCESS_KEY_ID", "bench"),
                          AWS_SECRET_ACCESS_KEY=env.get("AWS_SECRET_ACCESS_KEY", "bench"))
        self.s3 = boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1")
        self.s3.create_bucket(Bucket="bench")

    def uri(self, key):
        return f"s3://bench/{key}"

    def upload(self, path, key):
        self.s3.upload_file(path, "bench", key)

    def upload_stream_cmd(self, key):
        return None  # the peers upload from a temp file on S3

    def download(self, key, path):
        self.s3.download_file("bench", key, path)

    def size(self, key):
        return self.s3.head_object(Bucket="bench", Key=key)["ContentLength"]

    def stop(self):
        subprocess.run([sys.executable, os.path.join(TOOLS, "moto-s3"), "stop", self.dir])


# ---------------------------------------------------------------- ckptfs


class Mount:
    def __init__(self, work, dest, srcs=(), extra=(), env=None, binary=BIN):
        self.mnt = tempfile.mkdtemp(prefix="mnt-", dir=work)
        self.cache = tempfile.mkdtemp(prefix="cache-", dir=work)
        self.log = open(self.mnt + ".log", "w")
        args = [binary, "-f", "--dest", dest, "--cache-dir", self.cache, *extra]
        for s in srcs:
            args += ["--src", s]
        self.t0 = time.monotonic()
        self.proc = subprocess.Popen(args + [self.mnt], stdout=self.log, stderr=self.log,
                                     env=env)
        while not os.path.ismount(self.mnt):
            if self.proc.poll() is not None:
                raise RuntimeError(f"ckptfs exited: see {self.log.name}")
            time.sleep(0.002)
        self.t_mounted = time.monotonic()

    def status(self):
        with open(os.path.join(self.mnt, ".status")) as f:
            return json.load(f)

    def peak_rss_mib(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        return None

    def unmount(self):
        subprocess.run(["fusermount3", "-u", self.mnt])
        self.proc.wait(600)
        self.log.close()
        shutil.rmtree(self.cache, ignore_errors=True)


def ckptfs_save(work, be, data, res, tar_too=False):
    """Best of REPEAT saves; with tar_too a plain `tar -c` save runs after each one, so
    both see the same moments of a shared machine (res["tar_save"])."""
    m = Mount(work, be.uri("ckptfs.tgz"))
    try:
        t_copy = timed(lambda: sh(["cp", "-r", data + "/.", os.path.join(m.mnt, "save")]))
        runs, tar_runs = [], []
        for _ in range(REPEAT):
            with open(os.path.join(m.mnt, "save", "config.json"), "a") as f:
                f.write(" ")  # something changed: every run is a full save
            drop_caches()
            runs.append(timed(lambda: sh(["touch", os.path.join(m.mnt, ".save")])))
            if tar_too:
                drop_caches()
                tar_runs.append(tar_save(work, be, data, res, "plain.tar", ""))
        if tar_too:
            res["tar_save"] = min(tar_runs)
            res["plain.tar_runs"] = tar_runs
        res["ckptfs_save_runs"] = runs
        res["ckptfs_save"] = min(runs)
        last = m.status()["save"]["last"]
        res["ckptfs_object_bytes"] = last["compressed_bytes"]
        check_size(be, "ckptfs.tgz", last["compressed_bytes"])
        res["fuse_copy_in_s"] = t_copy
        # async save: how long `echo async > .save` takes, and how long a write issued
        # while the save runs waits
        with open(os.path.join(m.mnt, "save", "config.json"), "a") as f:
            f.write(" ")
        t0 = time.monotonic()
        sh(f"echo async > {m.mnt}/.save")
        res["async_return_s"] = time.monotonic() - t0
        t1 = time.monotonic()
        with open(os.path.join(m.mnt, "save", "trainer_state.json"), "a") as f:
            f.write(" ")
            f.flush()
            os.fsync(f.fileno())
        res["write_during_save_s"] = time.monotonic() - t1
        while m.status()["save"]["saves_ok"] < REPEAT + 1:
            time.sleep(0.05)
        res["ckptfs_save_rss_mib"] = m.peak_rss_mib()
    finally:
        m.unmount()


def read_all(root):
    n = 0
    for p, _, fs in os.walk(root):
        for f in fs:
            with open(os.path.join(p, f), "rb") as fh:
                while True:
                    b = fh.read(1 << 20)
                    if not b:
                        break
                    n += len(b)
    return n


def ckptfs_restore(work, be, res, small="config.json"):
    m = Mount(work, be.uri("unused"), [be.uri("ckptfs.tgz")])
    try:
        with open(os.path.join(m.mnt, "prev", small), "rb") as f:
            f.read(1)
        res["ckptfs_first_byte"] = time.monotonic() - m.t_mounted
        res["ckptfs_mount_s"] = m.t_mounted - m.t0
        res["ckptfs_partial_fetched_bytes"] = m.status()["prev"]["bytes_done"]
    finally:
        m.unmount()
    drop_caches()  # the save's dirty pages are written out first, not during the restore
    m = Mount(work, be.uri("unused"), [be.uri("ckptfs.tgz")])
    try:
        res["ckptfs_restore"] = timed(lambda: read_all(os.path.join(m.mnt, "prev")))
        res["ckptfs_restore_rss_mib"] = m.peak_rss_mib()
    finally:
        m.unmount()


# ---------------------------------------------------------------- peers


def flyte_tar(data, path):
    """flyte-sdk's archive of the folder data: tarfile "w:gz" (level 9) of its sorted entries."""
    with tarfile.open(path, "w:gz") as tar:
        for child in sorted(os.listdir(data)):
            tar.add(os.path.join(data, child), arcname=child)


def flyte_save(work, be, data, res):
    def run():
        fd, tmp = tempfile.mkstemp(dir=work, suffix=".tar.gz")
        os.close(fd)
        flyte_tar(data, tmp)
        be.upload(tmp, "flyte.tgz")
        os.unlink(tmp)
    res["flyte_save"] = timed(run)


def flyte_restore(work, be, res):
    def run():
        fd, tmp = tempfile.mkstemp(dir=work)
        os.close(fd)
        be.download("flyte.tgz", tmp)
        out = tempfile.mkdtemp(dir=work)
        with tarfile.open(tmp, "r:*") as t:
            t.extractall(out, filter="data")
        read_all(out)
        shutil.rmtree(out)
        os.unlink(tmp)
    drop_caches()
    res["flyte_restore"] = timed(run)


def tar_save(work, be, data, res, key, compressor, repeat=1):
    """Best of `repeat` runs; the stored object is checked to be a whole archive."""
    def run():
        stream = be.upload_stream_cmd(key)
        pipe = f"tar -cf - -C {data} . {compressor}"
        if stream:
            sh(f"{pipe} | {stream}")
        else:
            tmp = os.path.join(work, key)
            sh(f"{pipe} > {tmp}")
            be.upload(tmp, key)
            os.unlink(tmp)
    runs = [timed(run) for _ in range(repeat)]
    res[key + "_runs"] = runs
    if not compressor:
        want = int(subprocess.run(f"tar -cf - -C {data} . | wc -c", shell=True, check=True,
                                  capture_output=True, text=True).stdout)
        check_size(be, key, want)
    return min(runs)


def check_size(be, key, want):
    got = be.size(key)
    if got != want:
        sys.exit(f"run.py: {be.name} object {key} holds {got} bytes, {want} expected")


def tar_restore(work, be, res, key, flags):
    def run():
        tmp = os.path.join(work, "dl-" + key)
        be.download(key, tmp)
        out = tempfile.mkdtemp(dir=work)
        sh(["tar", flags, tmp, "-C", out])
        read_all(out)
        shutil.rmtree(out)
        os.unlink(tmp)
    return timed(run)


def fuse_write(work, res, mib=1024):
    m = Mount(work, "file://" + os.path.join(work, "unused.tgz"), extra=["--no-save-on-unmount"])
    try:
        def dd(path):
            out = sh(["dd", "if=/dev/zero", f"of={path}", "bs=1M", f"count={mib}",
                      "conv=fsync"], capture_output=True, text=True).stderr
            os.unlink(path)
            return out
        native_dir = tempfile.mkdtemp(dir=work)
        t_native = t_fuse = float("inf")
        for _ in range(REPEAT):  # alternating, best of REPEAT: the machine is shared
            t_native = min(t_native, timed(lambda: dd(os.path.join(native_dir, "f"))))
            t_fuse = min(t_fuse, timed(lambda: dd(os.path.join(m.mnt, "save", "f"))))
        res["native_write_mb_s"] = mib * 1.048576 / t_native
        res["fuse_write_mb_s"] = mib * 1.048576 / t_fuse
    finally:
        m.unmount()


# ---------------------------------------------------------------- report


def ratio(a, b):
    return f"{a / b:.1f}x" if a and b else "-"


def report(results, size_mib):
    lines = [f"Workload: {size_mib} MiB (fp32 N(0,0.02) + N(0,0.001) + JSON); "
             f"{os.cpu_count()} cores. Times in seconds; ratio = peer / ckptfs.", "",
             "| backend | ckptfs save | flyte-sdk save | tar+pigz save | tar -c save | "
             "ckptfs restore | flyte-sdk restore | tar restore | first byte | partial fetch |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for be, r in results["backends"].items():
        c = r["ckptfs_save"]
        cr = r["ckptfs_restore"]
        lines.append(
            f"| {be} | {c:.2f} | {r['flyte_save']:.1f} ({ratio(r['flyte_save'], c)}) | "
            f"{r['pigz_save']:.1f} ({ratio(r['pigz_save'], c)}) | "
            f"{r['tar_save']:.2f} ({c / r['tar_save']:.2f}x of tar) | {cr:.2f} | "
            f"{r['flyte_restore']:.1f} ({ratio(r['flyte_restore'], cr)}) | "
            f"{r['tar_restore']:.2f} ({ratio(r['tar_restore'], cr)}) | "
            f"{r['ckptfs_first_byte'] * 1000:.0f} ms | "
            f"{r['ckptfs_partial_fetched_bytes'] / 1048576:.1f} MiB |")
    f = results["fuse"]
    lines += ["", f"FUSE write: {f['fuse_write_mb_s']:.0f} MB/s vs native "
              f"{f['native_write_mb_s']:.0f} MB/s ({100 * f['fuse_write_mb_s'] / f['native_write_mb_s']:.0f}%)"]
    for be, r in results["backends"].items():
        lines.append(f"{be}: async save returned in {r['async_return_s'] * 1000:.0f} ms; a write "
                     f"during that save waited {r['write_during_save_s'] * 1000:.0f} ms; "
                     f"object {r['ckptfs_object_bytes'] / 1048576:.0f} MiB; daemon peak RSS "
                     f"{r['ckptfs_save_rss_mib']:.0f} MiB (save), "
                     f"{r['ckptfs_restore_rss_mib']:.0f} MiB (restore)")
    return "\n".join(lines)


def main():
    global REPEAT
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=1536, help="workload MiB")
    ap.add_argument("--backends", default="file,http,s3")
    ap.add_argument("--out", default=None)
    ap.add_argument("--skip-peers", action="store_true", help="ckptfs only (quick)")
    ap.add_argument("--repeat", type=int, default=REPEAT,
                    help="runs of each fast save path and of the FUSE write; the best counts")
    args = ap.parse_args()
    REPEAT = max(1, args.repeat)
    base, data = workload(args.size)
    work = tempfile.mkdtemp(prefix="run-", dir=base)
    partial = os.path.join(base, f"partial-{args.size}.json")
    results = {"size_mib": args.size, "data_bytes": dir_bytes(data), "backends": {}}
    try:
        fuse_write(work, results.setdefault("fuse", {}))
        for name in args.backends.split(","):
            be = {"file": FileBackend, "http": HttpBackend, "s3": S3Backend}[name](work)
            r = results["backends"].setdefault(name, {})
            try:
                print(f"[{name}] ckptfs", file=sys.stderr)
                ckptfs_save(work, be, data, r, tar_too=not args.skip_peers)
                ckptfs_restore(work, be, r)
                if args.skip_peers:
                    continue
                print(f"[{name}] tar -c", file=sys.stderr)
                r["tar_restore"] = tar_restore(work, be, r, "plain.tar", "-xf")
                print(f"[{name}] tar | pigz", file=sys.stderr)
                r["pigz_save"] = tar_save(work, be, data, r, "pigz.tgz", "| pigz -p2")
                print(f"[{name}] flyte-sdk", file=sys.stderr)
                flyte_save(work, be, data, r)
                flyte_restore(work, be, r)
            finally:
                be.stop()
            with open(partial, "w") as f:  # keep what is measured if a later step fails
                json.dump(results, f, indent=1)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    out = args.out or os.path.join(base, f"results-{args.size}.json")
    with open(out, "w") as f:
        json.dump(results, f, indent=1)
    if not args.skip_peers:
        print(report(results, args.size))
    else:
        print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
