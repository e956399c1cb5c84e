#!/usr/bin/env python3
"""treecmp.py EXPECTED ACTUAL [--no-dir-modes] [--mtime-ns]

Compares two directory trees entry by entry without following symlinks: the same
relative names, the same types, regular files with the same bytes, modes (& 07777) and
mtimes (whole seconds, or nanoseconds with --mtime-ns), directories with the same mtimes
and (unless --no-dir-modes, for Python's "data" filter, which ignores them) modes,
symlinks with the same targets. Prints every difference; exits 1 if there is any.
"""
import os
import stat
import sys


def walk(root):
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            p = os.path.join(dirpath, n)
            out[os.path.relpath(p, root)] = os.lstat(p)
    return out


def mtime(st, ns):
    return st.st_mtime_ns if ns else st.st_mtime_ns // 1_000_000_000


def compare(a, b, dir_modes, ns):
    ta, tb = walk(a), walk(b)
    diffs = [f"only in {a}: {n}" for n in sorted(set(ta) - set(tb))]
    diffs += [f"only in {b}: {n}" for n in sorted(set(tb) - set(ta))]
    for n in sorted(set(ta) & set(tb)):
        sa, sb = ta[n], tb[n]
        if stat.S_IFMT(sa.st_mode) != stat.S_IFMT(sb.st_mode):
            diffs.append(f"{n}: type {oct(sa.st_mode)} vs {oct(sb.st_mode)}")
            continue
        pa, pb = os.path.join(a, n), os.path.join(b, n)
        if stat.S_ISLNK(sa.st_mode):
            if os.readlink(pa) != os.readlink(pb):
                diffs.append(f"{n}: symlink {os.readlink(pa)!r} vs {os.readlink(pb)!r}")
            continue
        check_mode = stat.S_ISREG(sa.st_mode) or dir_modes
        if check_mode and stat.S_IMODE(sa.st_mode) != stat.S_IMODE(sb.st_mode):
            diffs.append(f"{n}: mode {oct(stat.S_IMODE(sa.st_mode))} vs "
                         f"{oct(stat.S_IMODE(sb.st_mode))}")
        if mtime(sa, ns) != mtime(sb, ns):
            diffs.append(f"{n}: mtime {mtime(sa, ns)} vs {mtime(sb, ns)}")
        if stat.S_ISREG(sa.st_mode):
            with open(pa, "rb") as fa, open(pb, "rb") as fb:
                if fa.read() != fb.read():
                    diffs.append(f"{n}: contents differ")
    return diffs


def main():
    args = [x for x in sys.argv[1:] if not x.startswith("--")]
    if len(args) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    diffs = compare(args[0], args[1], "--no-dir-modes" not in sys.argv, "--mtime-ns" in sys.argv)
    for d in diffs:
        print(d)
    return 1 if diffs else 0


if __name__ == "__main__":
    sys.exit(main())
