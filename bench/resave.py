#!/usr/bin/env python3
"""A mount's next save when most of save/ did not change (issue 25, docs/reuse.md 6):
time, daemon CPU and bytes the daemon read, two builds side by side.

    python3 bench/resave.py [--size MIB] [--runs N] [--stores file,rgw]
                            [--scenarios step,finetune,all]
                            [--bins new=build/ckptfs,old=/tmp/old/ckptfs] [--out FILE]

On the SPEC 5 workload (bench/gen_workload.c, default 1536 MiB: two 256 MiB model files,
four 256 MiB optimizer states, small JSON files), copied into save/ of a mount and saved
once, each run then saves again after one of:

  step      the small JSON files rewritten (every large file unchanged)
  finetune  the optimizer states rewritten whole, the model files unchanged (frozen base
            weights under adapter fine-tuning)
  all       every file rewritten with new bytes: nothing can be reused, so this is the
            cost of the bookkeeping (issue 25: at most 5% slower than a build without it)

For each build (alternating within a run, so both see the same moments of a shared
machine, and which goes first turning every run): the save's wall time (touch .save), the
daemon's CPU time (and its user part) and the bytes it read (/proc/PID/io rchar) during
the save, with the medians of per-run ratios to the first build named. Stores: file (a folder) and rgw (Ceph's radosgw,
tests/tools/rgw-s3, through the counting proxy of bench/reuse.py). Prints medians.
"""
import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reuse  # noqa: E402  (Store: radosgw behind the counting proxy)
import run as R  # noqa: E402  (workload, sh)


def proc_counters(pid):
    """(CPU seconds, user CPU seconds, bytes read) of the process so far. User CPU is the
    daemon's own work (checksums, compression, copies into its buffers) without the
    kernel's page-cache copies, whose cost follows the machine's memory state."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    user, cpu = int(fields[11]) / tick, (int(fields[11]) + int(fields[12])) / tick
    with open(f"/proc/{pid}/io") as f:
        io = dict(line.split(": ") for line in f.read().splitlines())
    return cpu, user, int(io["rchar"])


def save(m):
    """One save of mount m (bench/run.py Mount): (seconds, daemon CPU seconds, its user
    CPU seconds, bytes the daemon read, .status last)."""
    c0, u0, r0 = proc_counters(m.proc.pid)
    t0 = time.monotonic()
    R.sh(["touch", os.path.join(m.mnt, ".save")])
    secs = time.monotonic() - t0
    c1, u1, r1 = proc_counters(m.proc.pid)
    return secs, c1 - c0, u1 - u0, r1 - r0, m.status()["save"]["last"]


def change(save_dir, scenario, run):
    for name in ("trainer_state.json", "rng_state.json"):
        with open(os.path.join(save_dir, name), "w") as f:
            f.write(json.dumps({"step": run}))
    if scenario == "step":
        return
    top = os.path.join(save_dir, "optimizer") if scenario == "finetune" else save_dir
    for path in sorted(os.path.join(p, f) for p, _, fs in os.walk(top) for f in fs
                       if f.endswith(".bin")):
        size = os.path.getsize(path)
        with open(path, "r+b") as f:
            for off in range(0, size, 16 << 20):
                f.write(os.urandom(min(16 << 20, size - off)))


def bench(store, bins, work, data, runs, scenarios):
    """{scenario: {build: [(secs, cpu, user, read, reused, not_read), ...]}}."""
    env = store.env() if store else dict(os.environ)
    mounts = {}
    for name, binary in bins.items():
        key = f"resave-{name}.tgz"
        dest = f"s3://{reuse.BUCKET}/{key}" if store else "file://" + os.path.join(work, key)
        m = mounts[name] = R.Mount(work, dest, env=env, binary=binary)
        R.sh(["cp", "-a", data + "/.", os.path.join(m.mnt, "save")])
        save(m)
    out = {}
    try:
        for scenario in scenarios:
            out[scenario] = {name: [] for name in bins}
            for run in range(runs):
                # which build saves first moved the ratio by 15-30% (either way from one
                # session to the next), so the order turns every run
                order = list(mounts.items())[::-1 if run % 2 else 1]
                for name, m in order:
                    change(os.path.join(m.mnt, "save"), scenario, run)
                    R.drop_caches()
                    secs, cpu, user, read, last = save(m)
                    files = last.get("files") or {}  # a build before issue 25 has neither
                    reused = last.get("reused_bytes", 0)
                    out[scenario][name].append(
                        (secs, cpu, user, read, reused, files.get("not_read", 0)))
                    print(f"{scenario} {name} run {run}: {secs:.2f} s, CPU {cpu:.2f} s "
                          f"({user:.2f} s user), read "
                          f"{read / 1e6:.0f} MB, reused {reused / 1e6:.0f} MB, "
                          f"{files.get('not_read', 0)} files not read", flush=True)
    finally:
        for m in mounts.values():
            m.unmount()
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=1536)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--stores", default="file,rgw")
    ap.add_argument("--scenarios", default="step,finetune,all")
    ap.add_argument("--bins", default="new=" + R.BIN)
    ap.add_argument("--out")
    a = ap.parse_args()
    bins = dict(b.split("=", 1) for b in a.bins.split(","))
    _, data = R.workload(a.size)
    base = os.environ.get("CKBENCH_DIR", "/var/tmp")
    results = {}
    for kind in a.stores.split(","):
        work = tempfile.mkdtemp(prefix="ckbench-resave-", dir=base)
        store = reuse.Store(kind, work) if kind != "file" else None
        try:
            results[kind] = bench(store, bins, work, data, a.runs, a.scenarios.split(","))
        finally:
            if store:
                store.stop()
            shutil.rmtree(work, ignore_errors=True)
    print(f"\n{a.size} MiB, medians of {a.runs} runs\n")
    print("| store | scenario | build | save | save / first build | daemon CPU | user CPU | "
          "user CPU / first build | read by the daemon | files not read |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for kind, by_scenario in results.items():
        for scenario, by_bin in by_scenario.items():
            first = next(iter(by_bin.values()))
            for name, rows in by_bin.items():
                med = [statistics.median(col) for col in zip(*rows)]
                # medians of per-run ratios: the two builds of a run saw the same moment
                t = statistics.median(r[0] / f[0] for r, f in zip(rows, first))
                u = statistics.median(r[2] / f[2] if f[2] else 0 for r, f in zip(rows, first))
                print(f"| {kind} | {scenario} | {name} | {med[0]:.2f} s | {t:.2f}x | "
                      f"{med[1]:.2f} s | {med[2]:.2f} s | {u:.2f}x | {med[3] / 1e6:.0f} MB | "
                      f"{med[5]:.0f} |")
    if a.out:
        with open(a.out, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
