#!/usr/bin/env python3
"""ckindex.py - an independent reader and rewriter of ckptfs's seek index (docs/format.md).

    ckindex.py show OBJECT            print the locator, the members and the entries
    ckindex.py rename OBJECT OLD NEW  rewrite the index so entry OLD is named NEW (tests
                                      use it to make hostile indexes over a benign tar)
    ckindex.py downgrade OBJECT 1|2   rewrite the index as version 1 or 2 (no member
                                      CRCs), as ckptfs before version 3 wrote it

Python stdlib only. Written from docs/format.md, not from the C code, so the tests that use
it check the format as documented.
"""
import struct
import sys
import zlib

LOC_LEN = 66


def extra_member(si, data):
    """An empty gzip member whose FEXTRA carries one subfield si (2 bytes) with data."""
    sub = si + struct.pack("<H", len(data)) + data
    head = b"\x1f\x8b\x08\x04" + b"\0\0\0\0" + b"\x00\xff" + struct.pack("<H", len(sub))
    return head + sub + b"\x03\x00" + b"\0" * 8


def parse_locator(obj):
    loc = obj[-LOC_LEN:]
    if loc[:4] != b"\x1f\x8b\x08\x04" or loc[12:14] != b"CL" or loc[16:24] != b"CKPTIDX1":
        raise ValueError("no ckptfs seek index")
    version, index_off, index_len, raw_len, z_len, crc = struct.unpack("<IQQIII", loc[24:56])
    return dict(version=version, index_off=index_off, index_len=index_len, raw_len=raw_len,
                z_len=z_len, crc=crc)


def read_index(obj):
    loc = parse_locator(obj)
    region = obj[loc["index_off"]:loc["index_off"] + loc["index_len"]]
    z, off = b"", 0
    while off < len(region):
        xlen, = struct.unpack("<H", region[off + 10:off + 12])
        assert region[off + 12:off + 14] == b"CK"
        dlen, = struct.unpack("<H", region[off + 14:off + 16])
        z += region[off + 16:off + 16 + dlen]
        off += 12 + xlen + 10
    assert zlib.crc32(z) == loc["crc"], "index checksum"
    raw = zlib.decompress(z)
    assert raw[:4] == b"CKIX"
    version, tar_size, nm, ne = struct.unpack("<IQQQ", raw[4:32])
    p = 32
    members = []
    mfmt = "<QQIIIQ" if version >= 3 else "<QQII"  # version 3: + CRC-32, CRC-64 of the member
    msize = struct.calcsize(mfmt)
    for _ in range(nm):
        members.append(struct.unpack(mfmt, raw[p:p + msize]))
        p += msize
    entries = []
    for _ in range(ne):
        t, mode, uid, gid, msec, mnsec, size, data_off, nlen = struct.unpack(
            "<BIIIqIQQI", raw[p:p + 45])
        p += 45
        name = raw[p:p + nlen]
        p += nlen
        llen, = struct.unpack("<I", raw[p:p + 4])
        p += 4
        link = raw[p:p + llen]
        p += llen
        segs = None
        if t == 3:  # a sparse file (version 2 on): its data segments
            assert version >= 2
            n, = struct.unpack("<I", raw[p:p + 4])
            p += 4
            segs = [struct.unpack("<QQ", raw[p + 16 * i:p + 16 * i + 16]) for i in range(n)]
            p += 16 * n
        entries.append(dict(type=t, mode=mode, uid=uid, gid=gid, mtime=(msec, mnsec), size=size,
                            data_off=data_off, name=name, link=link, segs=segs))
    assert p == len(raw)
    return loc, tar_size, members, entries


def write_index(obj, loc, tar_size, members, entries, version=None):
    """Version 3 when the members carry their CRCs (6-tuples), else 2 with a sparse entry,
    else 1; a lower version may be asked for (the CRCs are then left out)."""
    if version is None:
        sparse = any(e.get("segs") is not None for e in entries)
        version = 3 if members and len(members[0]) == 6 else 2 if sparse else 1
    raw = b"CKIX" + struct.pack("<IQQQ", version, tar_size, len(members), len(entries))
    for m in members:
        raw += struct.pack("<QQIIIQ", *m) if version >= 3 else struct.pack("<QQII", *m[:4])
    for e in entries:
        raw += struct.pack("<BIIIqIQQI", e["type"], e["mode"], e["uid"], e["gid"], e["mtime"][0],
                           e["mtime"][1], e["size"], e["data_off"], len(e["name"]))
        raw += e["name"] + struct.pack("<I", len(e["link"])) + e["link"]
        if e.get("segs") is not None:
            raw += struct.pack("<I", len(e["segs"]))
            raw += b"".join(struct.pack("<QQ", *s) for s in e["segs"])
    z = zlib.compress(raw)
    body = b"".join(extra_member(b"CK", z[i:i + 65000]) for i in range(0, len(z), 65000))
    locator = b"CKPTIDX1" + struct.pack("<IQQIII", version, loc["index_off"], len(body), len(raw),
                                        len(z), zlib.crc32(z))
    return obj[:loc["index_off"]] + body + extra_member(b"CL", locator)


def main(argv):
    if len(argv) >= 2 and argv[0] == "show":
        obj = open(argv[1], "rb").read()
        loc, tar_size, members, entries = read_index(obj)
        print(f"locator {loc}\ntar_size {tar_size}\nmembers {len(members)}")
        for e in entries:
            print(f"{e['type']} {e['mode']:o} {e['size']:>12} @{e['data_off']:<12} "
                  f"{e['name'].decode(errors='replace')} {e['link'].decode(errors='replace')}")
        return 0
    if len(argv) == 4 and argv[0] == "rename":
        obj = open(argv[1], "rb").read()
        loc, tar_size, members, entries = read_index(obj)
        for e in entries:
            if e["name"] == argv[2].encode():
                e["name"] = argv[3].encode()
                break
        else:
            print(f"no entry {argv[2]!r}", file=sys.stderr)
            return 1
        open(argv[1], "wb").write(write_index(obj, loc, tar_size, members, entries))
        return 0
    if len(argv) == 3 and argv[0] == "downgrade":  # rewrite as version 1 or 2 (no CRCs)
        obj = open(argv[1], "rb").read()
        loc, tar_size, members, entries = read_index(obj)
        version = int(argv[2])
        if version not in (1, 2):
            print("downgrade to 1 or 2", file=sys.stderr)
            return 2
        out = write_index(obj, loc, tar_size, members, entries, version)
        open(argv[1], "wb").write(out)
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
