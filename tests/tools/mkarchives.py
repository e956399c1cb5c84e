#!/usr/bin/env python3
"""mkarchives.py OUTDIR - writes the hostile and odd archive fixtures for test_extract.

Python stdlib only. Every fixture is a file OUTDIR/<name>; FIXTURES below says what each
holds and what ckptfs must do with it. Entries are written with TarInfo/addfile, which
(unlike TarFile.add) keeps names and link targets exactly as given.

Expected results (checked in tests/unit/test_extract.c):
  dotdot.tar.gz          "../evil"                              -> CK_EHOSTILE
  inner_dotdot.tar.gz    "a/../../evil"                         -> CK_EHOSTILE
  absolute.tar.gz        "/abs/evil"                            -> CK_EHOSTILE
  symlink_abs.tar.gz     "link" -> "/etc"                       -> CK_EHOSTILE
  symlink_up.tar.gz      "sub/link" -> "../../x"                -> CK_EHOSTILE
  symlink_chain.tar.gz   "sub/up" -> "..", "x" -> "sub/up/../.."  -> CK_EHOSTILE ('..' after a name)
  dot_then_dotdot.tar.gz "link" -> ".", then "link/../../evil"   -> CK_EHOSTILE
  dot_then_through.tar.gz "link" -> ".", then file "link/evil"  -> CK_EHOSTILE (goes through a symlink)
  tmp_then_through.tar.gz "d" -> "/tmp", then file "d/evil"     -> CK_EHOSTILE
  hardlink_abs.tar.gz    "x" hard link to "/etc/passwd"          -> CK_EHOSTILE
  hardlink_up.tar.gz     "x" hard link to "../x"                 -> CK_EHOSTILE
  hardlink_missing.tar.gz "x" hard link to "nothere"             -> CK_EHOSTILE
  hardlink_symlink.tar.gz "s" -> "f" (symlink), "x" hard link to "s" -> CK_EHOSTILE
  chardev.tar.gz         char device "tty" 5,0                   -> CK_EHOSTILE
  fifo.tar.gz            fifo "pipe"                             -> CK_EHOSTILE
  huge.tar.gz            "big" whose header claims 1 PiB         -> CK_EHOSTILE
  truncated.tar.gz       gzip tar cut in the middle of "data"   -> CK_ECORRUPT
  truncated.tar          plain tar cut in the middle of "data"  -> CK_ECORRUPT
  small_cut.tar.gz       small gzip tar, cut before its first tar header decodes
                         (tarfile.is_tarfile() raises EOFError)         -> CK_ECORRUPT, not a payload
  small_cut.tar.bz2      the same with bzip2                     -> CK_ECORRUPT
  small_cut.tar.xz       the same with xz                        -> CK_ECORRUPT
  small.tar.gz           that small gzip tar whole (unit tests cut it at every byte)
  bitflip.tar.gz         one bit flipped inside the deflate data -> CK_ECORRUPT
  crcflip.tar.gz         one bit flipped in the gzip CRC-32      -> CK_ECORRUPT
  badsum.tar             second header's checksum damaged        -> CK_ECORRUPT
  dup_file.tar.gz        "f" = "first", then "f" = "second"      -> OK, f holds "second"
  dup_dir_file.tar.gz    dir "d", "d/x", then file "d"           -> CK_EHOSTILE
  dir_over_file.tar.gz   file "d", then dir "d" with "d/x"       -> OK (later wins)
  good_links.tar.gz      "sub/f", "sub/l" -> "f", "up" -> "sub/../sub" is NOT here;
                         "l2" -> "sub/f", "sub/l3" -> "../l2", hard link "h" to "sub/f" -> OK
  empty.tar              two zero blocks (an empty tar)          -> OK, kind tar, no entries
  zero_block.bin         one zero block then random bytes        -> OK, kind tar (as tarfile)
  gzip_nontar.gz         gzip of text that is not a tar          -> kind payload
  gzip_empty.gz          gzip of nothing                         -> kind payload
  raw.bin                random bytes                            -> kind payload
  short.bin              100 bytes of text                       -> kind payload
  dotslash.tar.gz        "./", "./a//b", "./c/" (GNU tar -C d .) -> OK, names normalized
  gzip_trailing.tar.gz   a good tar.gz followed by junk bytes    -> OK (junk ignored)
"""
import bz2
import gzip
import io
import lzma
import os
import random
import sys
import tarfile
import zlib

MTIME = 1_700_000_000


def info(name, type_=tarfile.REGTYPE, size=0, linkname="", mode=0o644):
    ti = tarfile.TarInfo(name)
    ti.type = type_
    ti.size = size
    ti.linkname = linkname
    ti.mode = mode
    ti.mtime = MTIME
    return ti


def tar_bytes(members, fmt=tarfile.PAX_FORMAT):
    """members: list of (TarInfo, data or None). Returns an uncompressed tar."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=fmt) as tar:
        for ti, data in members:
            tar.addfile(ti, io.BytesIO(data) if data is not None else None)
    return out.getvalue()


def reg(name, data=b"x"):
    return (info(name, size=len(data)), data)


def sym(name, target):
    return (info(name, tarfile.SYMTYPE, linkname=target, mode=0o777), None)


def hard(name, target):
    return (info(name, tarfile.LNKTYPE, linkname=target), None)


def dirent(name):
    return (info(name, tarfile.DIRTYPE, mode=0o755), None)


def gz(data):
    return gzip.compress(data, compresslevel=9, mtime=0)


def cut_before_first_header(data, decompressor):
    """The longest prefix of a compressed tar that decodes to less than one tar header: a
    loader that only asks "is there a tar header?" would take it for a raw payload.
    (Python's tarfile.is_tarfile() raises EOFError on it; flyte-sdk's load fails.)"""
    n = len(data)
    while n > 0 and len(decompressor().decompress(data[:n])) >= 512:
        n -= 1
    return data[:n]


def huge_tar():
    ti = info("big", size=1 << 50)
    return ti.tobuf(format=tarfile.GNU_FORMAT) + b"y" * 4096


def flip(data, pos):
    b = bytearray(data)
    b[pos] ^= 0x10
    return bytes(b)


def main():
    outdir = sys.argv[1]
    os.makedirs(outdir, exist_ok=True)
    rnd = random.Random(7)
    noise = bytes(rnd.getrandbits(8) for _ in range(200_000))
    text = b"".join(b"line %d of some text\n" % i for i in range(20_000))
    data_tar = tar_bytes([reg("a.txt", b"hello\n"), reg("data", noise), reg("z.txt", text)])
    data_gz = gz(data_tar)
    bad_sum = bytearray(tar_bytes([reg("a.txt", b"hello\n"), reg("b.txt", b"world\n")]))
    bad_sum[1024 + 148] ^= 0x01  # header of b.txt: checksum field
    small_tar = tar_bytes([reg("fine.txt", b"fine\n" * 10), reg("other.txt", b"other " * 30),
                           reg("cfg.json", b'{"a": 1}'), dirent("d"), sym("lnk", "fine.txt")])
    small = {"gz": gz(small_tar), "bz2": bz2.compress(small_tar), "xz": lzma.compress(small_tar)}
    fixtures = {
        "dotdot.tar.gz": gz(tar_bytes([reg("../evil")])),
        "inner_dotdot.tar.gz": gz(tar_bytes([dirent("a"), reg("a/../../evil")])),
        "absolute.tar.gz": gz(tar_bytes([reg("/abs/evil")])),
        "symlink_abs.tar.gz": gz(tar_bytes([sym("link", "/etc")])),
        "symlink_up.tar.gz": gz(tar_bytes([dirent("sub"), sym("sub/link", "../../x")])),
        "symlink_chain.tar.gz": gz(tar_bytes([dirent("sub"), sym("sub/up", ".."),
                                              sym("x", "sub/up/../..")])),
        "dot_then_dotdot.tar.gz": gz(tar_bytes([sym("link", "."), reg("link/../../evil")])),
        "dot_then_through.tar.gz": gz(tar_bytes([sym("link", "."), reg("link/evil")])),
        "tmp_then_through.tar.gz": gz(tar_bytes([sym("d", "/tmp"), reg("d/evil")])),
        "hardlink_abs.tar.gz": gz(tar_bytes([hard("x", "/etc/passwd")])),
        "hardlink_up.tar.gz": gz(tar_bytes([hard("x", "../x")])),
        "hardlink_missing.tar.gz": gz(tar_bytes([hard("x", "nothere")])),
        "hardlink_symlink.tar.gz": gz(tar_bytes([reg("f"), sym("s", "f"), hard("x", "s")])),
        "chardev.tar.gz": gz(tar_bytes([(info("tty", tarfile.CHRTYPE), None)])),
        "fifo.tar.gz": gz(tar_bytes([(info("pipe", tarfile.FIFOTYPE), None)])),
        "huge.tar.gz": gz(huge_tar()),
        "truncated.tar.gz": data_gz[: len(data_gz) // 2],
        "truncated.tar": data_tar[: 1024 + 100_000],
        "small.tar.gz": small["gz"],
        "small_cut.tar.gz": cut_before_first_header(small["gz"], lambda: zlib.decompressobj(31)),
        "small_cut.tar.bz2": cut_before_first_header(small["bz2"], bz2.BZ2Decompressor),
        "small_cut.tar.xz": cut_before_first_header(small["xz"], lzma.LZMADecompressor),
        "bitflip.tar.gz": flip(data_gz, len(data_gz) // 2),
        "crcflip.tar.gz": flip(data_gz, len(data_gz) - 6),
        "badsum.tar": bytes(bad_sum),
        "dup_file.tar.gz": gz(tar_bytes([reg("f", b"first"), reg("f", b"second")])),
        "dup_dir_file.tar.gz": gz(tar_bytes([dirent("d"), reg("d/x"), reg("d", b"file")])),
        "dir_over_file.tar.gz": gz(tar_bytes([reg("d", b"file"), dirent("d"), reg("d/x")])),
        "good_links.tar.gz": gz(tar_bytes([dirent("sub"), reg("sub/f", b"target"),
                                           sym("sub/l", "f"), sym("l2", "sub/f"),
                                           sym("sub/l3", "../l2"), hard("h", "sub/f")])),
        "empty.tar": b"\0" * 1024,
        "zero_block.bin": b"\0" * 512 + noise[:1000],
        "gzip_nontar.gz": gz(text),
        "gzip_empty.gz": gz(b""),
        "raw.bin": noise,
        "short.bin": b"just some bytes, not a tar\n" * 4,
        "dotslash.tar.gz": gz(tar_bytes([dirent("./"), dirent("./a"), reg("./a//b", b"b"),
                                         dirent("./c/")], fmt=tarfile.GNU_FORMAT)),
        "gzip_trailing.tar.gz": gz(tar_bytes([reg("f", b"ok")])) + b"trailing junk",
    }
    for name, data in fixtures.items():
        with open(os.path.join(outdir, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
