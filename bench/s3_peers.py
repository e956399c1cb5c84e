#!/usr/bin/env python3
"""ckptfs against the S3 peers on one realistic S3 server, side by side, ratios (issue 13).

    python3 bench/s3_peers.py [--size MIB] [--peers s3fs,rclone-mount,rclone-copy]
                              [--runs N] [--foreign] [--out FILE]

--runs N repeats every path N times, alternating (ckptfs, curl, each peer; then again),
and reports the medians; every run's figures are kept in the JSON (--out).

The server is Ceph's radosgw on 127.0.0.1 (tests/tools/rgw-s3: one monitor, one memstore
OSD), which serves ranged GETs in proportion to the range, unlike moto. On the SPEC 5
workload (bench/gen_workload.c, default 1536 MiB) every tool writes the same checkpoint to
the server and reads it back:

  ckptfs        cp -r into save/, then touch .save (returns when the object is durable);
                restore: a new mount with --src, read every file under prev/
  s3fs          s3fs-fuse mount of the bucket: cp -r (s3fs uploads each file on close, so
                the data is in the bucket when cp returns); restore: a new mount, read all
  rclone-mount  rclone mount --vfs-cache-mode writes --vfs-write-back 0s: cp -r, then
                wait until every file is listed in the bucket with its size (rclone uploads
                after close, in the background); restore: a new mount, read all
  rclone-copy   rclone copy DIR remote: and back to a local folder, then read it

and the plain baselines: one curl PUT of the ckptfs object's bytes (upload) and one curl GET
of it to /dev/null (line rate of one stream).

--foreign adds a checkpoint that is not ckptfs's: flyte-sdk's archive of the same workload
(Python tarfile "w:gz", one gzip stream at level 9; made once and kept as
$CKBENCH_DIR/flyte-SIZE.tgz). Timed: a ckptfs restore of it (a new mount with --src, read
every file under prev/: parallel ranged GETs feeding one inflater) against
`curl | gzip -dc | tar -x` of the same object into a local folder. Reported per tool: write-to-durable time,
first byte of a small file on a new mount, whole restore, peak RSS of the tool's process.
Needs root (FUSE), the build, ceph-mon/ceph-osd/radosgw, s3fs, rclone (Debian packages
s3fs and rclone), curl, boto3.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run as R  # noqa: E402  (workload, Mount, read_all, timed, sh)

BUCKET = "bench"
SMALL = "config.json"  # the small file whose first byte is timed


class Rgw:
    def __init__(self, work):
        self.dir = os.path.join(work, "rgw")
        env = dict(os.environ, MEMSTORE_BYTES=str(12 << 30))
        out = R.sh([os.path.join(R.TOOLS, "rgw-s3"), "start", self.dir], capture_output=True,
                   text=True, env=env)
        kv = dict(line.split("=", 1) for line in out.stdout.split())
        self.port = int(kv["PORT"])
        self.url = f"http://127.0.0.1:{self.port}"
        self.keys = (kv["AWS_ACCESS_KEY_ID"], kv["AWS_SECRET_ACCESS_KEY"])
        import boto3
        self.s3 = boto3.client("s3", endpoint_url=self.url, region_name="us-east-1",
                               aws_access_key_id=self.keys[0], aws_secret_access_key=self.keys[1])
        self.s3.create_bucket(Bucket=BUCKET)

    def env(self):
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(AWS_ENDPOINT_URL=self.url, AWS_ACCESS_KEY_ID=self.keys[0],
                   AWS_SECRET_ACCESS_KEY=self.keys[1], AWS_REGION="us-east-1",
                   AWS_EC2_METADATA_DISABLED="true")
        return env

    def curl(self, *args):
        return ["curl", "-sSf", "--aws-sigv4", "aws:amz:us-east-1:s3", "--user",
                f"{self.keys[0]}:{self.keys[1]}", "-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD",
                *args]

    def listing(self, prefix, files_only=False):
        """{key: size} under prefix (files_only: without the directory markers "d/" that
        s3fs and rclone create)."""
        out, token = {}, None
        while True:
            kw = {"ContinuationToken": token} if token else {}
            page = self.s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix, **kw)
            out.update({o["Key"]: o["Size"] for o in page.get("Contents", [])})
            if not page.get("IsTruncated"):
                return {k: v for k, v in out.items() if not (files_only and k.endswith("/"))}
            token = page["NextContinuationToken"]

    def delete_prefix(self, prefix):
        keys = list(self.listing(prefix))
        for i in range(0, len(keys), 1000):
            self.s3.delete_objects(Bucket=BUCKET, Delete={
                "Objects": [{"Key": k} for k in keys[i:i + 1000]]})

    def stop(self):
        subprocess.run([os.path.join(R.TOOLS, "rgw-s3"), "stop", self.dir])


def peak_rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return None


def files_of(data):
    """{relative path: size} of the workload."""
    out = {}
    for p, _, fs in os.walk(data):
        for f in fs:
            full = os.path.join(p, f)
            out[os.path.relpath(full, data)] = os.path.getsize(full)
    return out


# ---------------------------------------------------------------- ckptfs


def bench_ckptfs(work, rgw, data, res):
    uri = f"s3://{BUCKET}/ckptfs/ck.tgz"
    env_before = dict(os.environ)
    os.environ.clear()
    os.environ.update(rgw.env())  # run.Mount starts the daemon with os.environ
    try:
        m = R.Mount(work, uri)
        try:
            R.drop_caches()
            res["write"] = R.timed(lambda: R.sh(["cp", "-r", data + "/.",
                                                 os.path.join(m.mnt, "save")]))
            res["save"] = R.timed(lambda: R.sh(["touch", os.path.join(m.mnt, ".save")]))
            res["durable"] = res["write"] + res["save"]
            res["object_bytes"] = m.status()["save"]["last"]["compressed_bytes"]
            res["rss_save_mib"] = m.peak_rss_mib()
        finally:
            m.unmount()
        m = R.Mount(work, "file://" + os.path.join(work, "unused.tgz"), [uri])
        try:
            with open(os.path.join(m.mnt, "prev", SMALL), "rb") as f:
                f.read(1)
            res["first_byte"] = time.monotonic() - m.t_mounted
        finally:
            m.unmount()
        R.drop_caches()
        m = R.Mount(work, "file://" + os.path.join(work, "unused.tgz"), [uri])
        try:
            res["restore"] = R.timed(lambda: R.read_all(os.path.join(m.mnt, "prev")))
            res["rss_restore_mib"] = m.peak_rss_mib()
            res["restore_fetched_bytes"] = m.status()["prev"]["bytes_done"]
        finally:
            m.unmount()
    finally:
        os.environ.clear()
        os.environ.update(env_before)


def baselines(work, rgw, res):
    """One curl PUT of an object the size of ckptfs's, one curl GET of ckptfs's object."""
    obj = os.path.join(work, "plain.bin")
    R.sh(rgw.curl("-o", obj, f"{rgw.url}/{BUCKET}/ckptfs/ck.tgz"))
    R.drop_caches()
    res["curl_put"] = R.timed(lambda: R.sh(rgw.curl("-o", "/dev/null", "-T", obj,
                                                    f"{rgw.url}/{BUCKET}/plain/ck.tgz")))
    os.unlink(obj)
    res["curl_get"] = R.timed(lambda: R.sh(rgw.curl("-o", "/dev/null",
                                                    f"{rgw.url}/{BUCKET}/ckptfs/ck.tgz")))
    rgw.delete_prefix("plain/")


def flyte_archive(base, data, size_mib):
    """flyte-sdk's archive of the workload (made once, kept under base as restore_sizes.py
    keeps it)."""
    keep = os.path.join(base, f"flyte-{size_mib}.tgz")
    if not os.path.exists(keep):
        R.flyte_tar(data, keep + ".tmp")
        os.rename(keep + ".tmp", keep)
    return keep


def bench_foreign(work, rgw, archive, res):
    """A foreign (flyte-sdk) archive: ckptfs's restore of it, then the plain pipeline."""
    R.sh(rgw.curl("-o", "/dev/null", "-T", archive, f"{rgw.url}/{BUCKET}/flyte/ck.tgz"))
    res["foreign_bytes"] = os.path.getsize(archive)
    env_before = dict(os.environ)
    os.environ.clear()
    os.environ.update(rgw.env())
    try:
        R.drop_caches()
        m = R.Mount(work, "file://" + os.path.join(work, "unused.tgz"),
                    [f"s3://{BUCKET}/flyte/ck.tgz"])
        try:
            res["foreign_restore"] = R.timed(lambda: R.read_all(os.path.join(m.mnt, "prev")))
            res["rss_foreign_mib"] = m.peak_rss_mib()
        finally:
            m.unmount()
    finally:
        os.environ.clear()
        os.environ.update(env_before)
    out = tempfile.mkdtemp(dir=work)
    curl = " ".join(f"'{a}'" for a in rgw.curl(f"{rgw.url}/{BUCKET}/flyte/ck.tgz"))
    R.drop_caches()
    res["pipeline"] = R.timed(lambda: R.sh(["bash", "-o", "pipefail", "-c",
                                            f"{curl} | gzip -dc | tar -x -C {out}"]))
    shutil.rmtree(out)
    rgw.delete_prefix("flyte/")


# ---------------------------------------------------------------- peers


class FuseTool:
    """A peer's FUSE mount of BUCKET/prefix, started in the foreground (its pid is ours)."""

    def __init__(self, work, args, log, env=None):
        self.mnt = tempfile.mkdtemp(prefix="peer-", dir=work)
        self.log = open(os.path.join(work, log), "a")
        self.proc = subprocess.Popen(args + [self.mnt], stdout=self.log, stderr=self.log,
                                     env=env)
        end = time.monotonic() + 60
        while not os.path.ismount(self.mnt):
            if self.proc.poll() is not None or time.monotonic() > end:
                raise RuntimeError(f"{args[0]} did not mount: see {self.log.name}")
            time.sleep(0.002)
        self.t_mounted = time.monotonic()

    def rss_mib(self):
        return peak_rss_mib(self.proc.pid)

    def unmount(self):
        subprocess.run(["fusermount3", "-u", self.mnt])
        try:
            self.proc.wait(600)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def s3fs_mount(work, rgw):
    pw = os.path.join(work, "s3fs.passwd")
    with open(pw, "w") as f:
        f.write(f"{rgw.keys[0]}:{rgw.keys[1]}\n")
    os.chmod(pw, 0o600)
    return FuseTool(work, ["s3fs", f"{BUCKET}:/s3fs", "-f", "-o",
                           f"url={rgw.url},use_path_request_style,sigv4,endpoint=us-east-1,"
                           f"passwd_file={pw}"], "s3fs.log")


def rclone_env(rgw, work):
    # without the caller's AWS_* (the AWS SDK in rclone fails on an AWS_CA_BUNDLE over http)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(RCLONE_CONFIG_RGW_TYPE="s3", RCLONE_CONFIG_RGW_PROVIDER="Ceph",
               RCLONE_CONFIG_RGW_ENDPOINT=rgw.url, RCLONE_CONFIG_RGW_ACCESS_KEY_ID=rgw.keys[0],
               RCLONE_CONFIG_RGW_SECRET_ACCESS_KEY=rgw.keys[1],
               RCLONE_CONFIG_RGW_REGION="us-east-1", RCLONE_CONFIG_RGW_FORCE_PATH_STYLE="true",
               RCLONE_CONFIG=os.path.join(work, "rclone.conf"))
    return env


def rclone_mount(work, rgw):
    cache = tempfile.mkdtemp(prefix="rclone-cache-", dir=work)
    return FuseTool(work, ["rclone", "mount", f"rgw:{BUCKET}/rclone", "--vfs-cache-mode",
                           "writes", "--vfs-write-back", "0s", "--cache-dir", cache],
                    "rclone-mount.log", rclone_env(rgw, work))


def wait_listed(rgw, prefix, want, timeout=1800):
    """Until every file of want is in the bucket under prefix with its size."""
    want = {prefix + k: v for k, v in want.items()}
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if rgw.listing(prefix, files_only=True) == want:
            return
        time.sleep(0.1)
    raise RuntimeError(f"{prefix}: not all files uploaded after {timeout} s")


def bench_mount_peer(work, rgw, data, res, mount, prefix, async_upload):
    want = files_of(data)
    m = mount(work, rgw)
    try:
        R.drop_caches()
        t0 = time.monotonic()
        R.sh(["cp", "-r", data + "/.", m.mnt])
        res["write"] = time.monotonic() - t0
        if async_upload:
            wait_listed(rgw, prefix, want)
        res["durable"] = time.monotonic() - t0
        res["rss_save_mib"] = m.rss_mib()
    finally:
        m.unmount()
    if rgw.listing(prefix, files_only=True) != {prefix + k: v for k, v in want.items()}:
        raise RuntimeError(f"{prefix}: the bucket does not hold the workload")
    m = mount(work, rgw)
    try:
        with open(os.path.join(m.mnt, SMALL), "rb") as f:
            f.read(1)
        res["first_byte"] = time.monotonic() - m.t_mounted
    finally:
        m.unmount()
    R.drop_caches()
    m = mount(work, rgw)
    try:
        res["restore"] = R.timed(lambda: R.read_all(m.mnt))
        res["rss_restore_mib"] = m.rss_mib()
    finally:
        m.unmount()
    rgw.delete_prefix(prefix)


def run_rusage(args, env):
    """Runs args; returns (seconds, peak RSS MiB of that process)."""
    t0 = time.monotonic()
    p = subprocess.Popen(args, env=env)
    _, status, ru = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        raise RuntimeError(f"{args[0]} exited {p.returncode}")
    return time.monotonic() - t0, ru.ru_maxrss / 1024


def bench_rclone_copy(work, rgw, data, res):
    env = rclone_env(rgw, work)
    R.drop_caches()
    res["durable"], res["rss_save_mib"] = run_rusage(
        ["rclone", "copy", data, f"rgw:{BUCKET}/rcopy"], env)
    out = tempfile.mkdtemp(prefix="rcopy-out-", dir=work)
    R.drop_caches()
    t0 = time.monotonic()
    _, res["rss_restore_mib"] = run_rusage(["rclone", "copy", f"rgw:{BUCKET}/rcopy", out], env)
    R.read_all(out)
    res["restore"] = time.monotonic() - t0
    shutil.rmtree(out)
    rgw.delete_prefix("rcopy/")


# ---------------------------------------------------------------- report


def report(results):
    c = results["tools"]["ckptfs"]
    b = results["baseline"]
    lines = [f"Workload {results['size_mib']} MiB on radosgw (Ceph {results['ceph']}), "
             f"{os.cpu_count()} cores; seconds; (x) = tool / ckptfs.", "",
             "| tool | write to durable | first byte | whole restore | peak RSS save / restore |",
             "|---|---|---|---|---|"]
    for name, r in results["tools"].items():
        fb = f"{r['first_byte'] * 1000:.0f} ms" if "first_byte" in r else "-"
        if name != "ckptfs" and "first_byte" in r:
            fb += f" ({r['first_byte'] / c['first_byte']:.1f}x)"
        dur = f"{r['durable']:.1f}"
        rst = f"{r['restore']:.1f}"
        if name != "ckptfs":
            dur += f" ({r['durable'] / c['durable']:.1f}x)"
            rst += f" ({r['restore'] / c['restore']:.1f}x)"
        lines.append(f"| {name} | {dur} | {fb} | {rst} | "
                     f"{r['rss_save_mib']:.0f} / {r['rss_restore_mib']:.0f} MiB |")
    lines += ["", f"ckptfs: cp into save/ {c['write']:.1f} s, then .save {c['save']:.1f} s; "
              f"object {c['object_bytes'] / 1048576:.0f} MiB; restore fetched "
              f"{c['restore_fetched_bytes'] / 1048576:.0f} MiB.",
              f"Plain: curl PUT of the object {b['curl_put']:.1f} s (ckptfs .save = "
              f"{c['save'] / b['curl_put']:.2f}x of it); curl GET of it to /dev/null "
              f"{b['curl_get']:.1f} s (ckptfs restore = {c['restore'] / b['curl_get']:.2f}x of it)."]
    if "foreign_restore" in b:
        lines.append(f"Foreign archive (flyte-sdk's, one gzip stream, "
                     f"{b['foreign_bytes'] / 1048576:.0f} MiB): ckptfs restore "
                     f"{b['foreign_restore']:.1f} s, curl | gzip -dc | tar -x "
                     f"{b['pipeline']:.1f} s (ckptfs = {b['foreign_restore'] / b['pipeline']:.2f}x "
                     f"of it); ckptfs peak RSS {b['rss_foreign_mib']:.0f} MiB.")
    return "\n".join(lines)


def one_run(work, rgw, data, peers, foreign):
    """Every path once, in the same order: ckptfs, curl, then each peer (and the foreign
    archive's two restores)."""
    run = {"tools": {}, "baseline": {}}
    print("[ckptfs]", file=sys.stderr)
    bench_ckptfs(work, rgw, data, run["tools"].setdefault("ckptfs", {}))
    print("[curl]", file=sys.stderr)
    baselines(work, rgw, run["baseline"])
    if foreign:
        print("[foreign archive]", file=sys.stderr)
        bench_foreign(work, rgw, foreign, run["baseline"])
    for peer in peers:
        print(f"[{peer}]", file=sys.stderr)
        r = run["tools"].setdefault(peer, {})
        if peer == "s3fs":
            bench_mount_peer(work, rgw, data, r, s3fs_mount, "s3fs/", False)
        elif peer == "rclone-mount":
            bench_mount_peer(work, rgw, data, r, rclone_mount, "rclone/", True)
        elif peer == "rclone-copy":
            bench_rclone_copy(work, rgw, data, r)
    return run


def medians(runs):
    """{"tools": {tool: {field: median}}, "baseline": {field: median}} over the runs."""
    out = {"tools": {}, "baseline": {}}
    for k in runs[0]["baseline"]:
        out["baseline"][k] = statistics.median(r["baseline"][k] for r in runs)
    for tool, fields in runs[0]["tools"].items():
        out["tools"][tool] = {f: statistics.median(r["tools"][tool][f] for r in runs)
                              for f, v in fields.items() if isinstance(v, (int, float))}
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=1536, help="workload MiB")
    ap.add_argument("--peers", default="s3fs,rclone-mount,rclone-copy")
    ap.add_argument("--runs", type=int, default=1,
                    help="repeat every path this many times, alternating; medians reported")
    ap.add_argument("--foreign", action="store_true",
                    help="also restore flyte-sdk's archive of the workload")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    peers = [p for p in args.peers.split(",") if p]
    for p in peers:
        if p not in ("s3fs", "rclone-mount", "rclone-copy"):
            sys.exit(f"s3_peers.py: unknown peer {p}")
    base, data = R.workload(args.size)
    foreign = flyte_archive(base, data, args.size) if args.foreign else None
    work = tempfile.mkdtemp(prefix="peers-", dir=base)
    ceph = subprocess.run(["radosgw", "--version"], capture_output=True,
                          text=True).stdout.split()[2]
    runs = []
    try:
        for i in range(args.runs):
            # A fresh server per run: radosgw frees deleted objects only at its garbage
            # collection (hours later), and a memstore OSD keeps them in RAM meanwhile.
            print(f"[run {i + 1} of {args.runs}]", file=sys.stderr)
            rgw = Rgw(tempfile.mkdtemp(prefix=f"run{i}-", dir=work))
            try:
                runs.append(one_run(work, rgw, data, peers, foreign))
            finally:
                rgw.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    results = {"size_mib": args.size, "ceph": ceph, "runs": runs, **medians(runs)}
    out = args.out or os.path.join(base, f"peers-{args.size}.json")
    with open(out, "w") as f:
        json.dump(results, f, indent=1)
    print(report(results) + f"\n(median of {args.runs} run(s); every run in {out})")


if __name__ == "__main__":
    main()
