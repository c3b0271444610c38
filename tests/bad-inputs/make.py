#!/usr/bin/env python3
"""Writes the bad-input corpus next to this script.

Every file here is broken in exactly one way, built from the formats'
written rules (ELF spec, shared/protocols/*.md), not from racklet-flash's
own writers. cases.tsv says which command gets which file and what the
error message must name. Run it again after changing a case:
    python3 tests/bad-inputs/make.py
"""
import hashlib
import os
import struct
import zlib

here = os.path.dirname(os.path.abspath(__file__))


def put(name, data):
    with open(os.path.join(here, name), "wb") as f:
        f.write(data)


def elf64(machine, entry, segs, phoff=64):
    """segs: (paddr, bytes, memsz). Little-endian ELF64 executable."""
    data_off = phoff + 56 * len(segs)
    h = b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8)
    h += struct.pack("<HHIQQQIHHHHHH", 2, machine, 1, entry, phoff, 0, 0, 64, 56, len(segs), 64, 0, 0)
    ph = b""
    for addr, b, memsz in segs:
        ph += struct.pack("<IIQQQQQQ", 1, 5, data_off, addr, addr, len(b), memsz, 8)
        data_off += len(b)
    return h + ph + b"".join(b for _, b, _ in segs)


RISCV, AARCH64, X86_64 = 243, 183, 62
code = bytes([0x13, 0, 0, 0]) * 4
k230 = 0x80360000

# --- ELF -------------------------------------------------------------------
good = elf64(RISCV, k230, [(k230, code, len(code))])
put("elf-truncated-header.elf", good[:40])
put("elf-truncated-segment.elf", good[:-5])
put("elf-x86_64.elf", elf64(X86_64, k230, [(k230, code, 16)]))
put("elf-aarch64.elf", elf64(AARCH64, k230, [(k230, code, 16)]))
put("elf-overlap.elf", elf64(RISCV, k230, [(k230, code, 16), (k230 + 8, code, 16)]))
put("elf-gap.elf", elf64(RISCV, k230, [(k230, code, 16), (k230 + 0x80000, code, 16)]))
put("elf-entry-outside.elf", elf64(RISCV, k230 + 0x1000, [(k230, code, 16)]))
put("elf-bss-only.elf", elf64(RISCV, k230, [(k230, b"", 0x100)]))
put("elf-phoff-past-end.elf", elf64(RISCV, k230, [(k230, code, 16)], phoff=0x10000)[:0x60])
put("elf-outside-window.elf", elf64(RISCV, 0x1000, [(0x1000, code, 16)]))
put("elf-too-large.elf", elf64(RISCV, k230, [(k230, bytes(0xA0001), 0xA0001)]))

# --- plain files ---------------------------------------------------------------
put("empty.bin", b"")
put("raw-too-large-for-k230.bin", bytes(0xA0001))

# --- RKBOOT (rockchip.md §2) -------------------------------------------------
def rk_crc32(data):
    """Rockchip's CRC32: poly 0x04C10DB7, init 0, MSB first, no reflection."""
    crc = 0
    for byte in data:
        crc ^= byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C10DB7) & 0xFFFFFFFF if crc & 0x80000000 else (crc << 1) & 0xFFFFFFFF
    return crc


def rkboot(chip=b"3568", entries=((1, "ddr", 2048), (2, "usbplug", 2048)), tag=b"LDR "):
    n471 = sum(1 for e in entries if e[0] == 1)
    n472 = sum(1 for e in entries if e[0] == 2)
    t471 = 102
    t472 = t471 + 57 * n471
    tl = t472 + 57 * n472
    data_off = tl
    hdr = tag + struct.pack("<HII", 0x66, 0x0117, 0x01000000) + struct.pack("<HBBBBB", 2026, 11, 24, 12, 0, 0)
    hdr += chip[::-1]
    hdr += struct.pack("<BIBBIBBIB", n471, t471, 57, n472, t472, 57, 0, tl, 57)
    hdr += bytes([0, 1, 1, 0]) + bytes(55)
    assert len(hdr) == 102, len(hdr)
    table, blobs = b"", b""
    for kind, name, size in entries:
        nm = name.encode("utf-16-le")[:40].ljust(40, b"\0")
        table += struct.pack("<BI", 57, kind) + nm + struct.pack("<III", data_off, size, 0)
        blobs += bytes([0x11 * kind]) * size
        data_off += size
    body = hdr + table + blobs
    return body + struct.pack("<I", rk_crc32(body))


ok = rkboot()
put("rkboot-bad-magic.bin", b"BOOX" + ok[4:])
put("rkboot-truncated-table.bin", ok[:130])
bad_crc = bytearray(ok)
bad_crc[-1] ^= 0xFF
put("rkboot-bad-crc32.bin", bytes(bad_crc))
past = bytearray(ok[:-4])
# First entry's data size (entry at 102, size field at +0x31) points past the end.
struct.pack_into("<I", past, 102 + 0x31, 0x100000)
past = bytes(past)
put("rkboot-entry-past-end.bin", past + struct.pack("<I", rk_crc32(past)))
put("rkboot-for-rk3399.bin", rkboot(chip=b"330C", tag=b"BOOT"))

# --- JH7110 headed image (starfive.md §2.1) -----------------------------------
payload = bytes(range(16))
hdr = bytearray(0x400)
struct.pack_into("<II", hdr, 0, 0x240, 0x200000)
struct.pack_into("<IIII", hdr, 0x284, 0x01010101, len(payload), 0x400, zlib.crc32(payload))
good_sf = bytes(hdr) + payload
put("jh7110-bad-crc.img", good_sf[:-1] + bytes([good_sf[-1] ^ 0x55]))
too_long = bytearray(good_sf)
struct.pack_into("<I", too_long, 0x288, 0x10000)
put("jh7110-size-past-end.img", bytes(too_long))

# --- K230 firmware image (canaan-k230.md §3) ---------------------------------
version = struct.pack("<I", 0)
body = version + payload
img = b"K230" + struct.pack("<II", len(body), 0) + hashlib.sha256(body).digest() + bytes(484) + body
put("k230-bad-hash.img", img[:-1] + bytes([img[-1] ^ 1]))
put("k230-length-past-end.img", img[:4] + struct.pack("<I", 0x100000) + img[8:])

# --- board files -----------------------------------------------------------------
put("boards-not-toml.toml", b"[[board]\nname = \n")
put("boards-bad-arch.toml", b"""[[board]]
name = "mips-thing"
title = "x"
soc = "x"
arch = "mips"
protocol = "canaan"
transport = "usb"
load_address = 0x1000
sram_base = 0x1000
sram_size = 0x1000
usb = [{ stage = "rom", vid = 1, pid = 2 }]
enter = "x"
""")
put("boards-load-outside-sram.toml", b"""[[board]]
name = "odd"
title = "x"
soc = "k230"
arch = "riscv64"
protocol = "canaan"
transport = "usb"
load_address = 0x10
sram_base = 0x1000
sram_size = 0x1000
usb = [{ stage = "rom", vid = 1, pid = 2 }]
enter = "x"
""")
put("boards-unknown-field.toml", b"""[[board]]
name = "typo"
title = "x"
soc = "k230"
arch = "riscv64"
protocol = "canaan"
transport = "usb"
load_adress = 0x1000
sram_base = 0x1000
sram_size = 0x1000
enter = "x"
""")

# --- hostile inputs (issue 24) ------------------------------------------------
put("code.bin", code)
# 200 PT_LOAD segments that all point at the same 4 KiB of file data, 4 KiB
# apart: a small file whose flat image would be 800 KiB.
nseg = 200
shared = bytes([0x13, 0, 0, 0]) * 1024
data_off = 64 + 56 * nseg
h = b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8)
h += struct.pack("<HHIQQQIHHHHHH", 2, RISCV, 1, k230, 64, 0, 0, 64, 56, nseg, 64, 0, 0)
ph = b"".join(
    struct.pack("<IIQQQQQQ", 1, 5, data_off, k230 + i * 0x1000, k230 + i * 0x1000, len(shared), len(shared), 8)
    for i in range(nseg)
)
put("elf-many-segments.elf", h + ph + shared)
# Memory size (.bss) is part of the footprint: 16 bytes of code, 256 MiB of memory.
put("elf-memsz-huge.elf", elf64(RISCV, k230, [(k230, code, 0x10000000)]))
put("elf-memsz-wraps.elf", elf64(RISCV, k230, [(k230, code, 0xFFFFFFFFFFFFFFFF)]))
# The first segment's .bss runs into the second segment.
put("elf-bss-overlap.elf", elf64(RISCV, k230, [(k230, code, 0x100), (k230 + 0x20, code, 16)]))


# K1 FSBL.bin (fastboot.md, appendix "FSBL.bin"), then six lies in its headers.
def fsbl(spl=bytes(range(64)), secure=0, table_num=4, imgsize=None):
    padded = spl + bytes(-len(spl) % 32)
    b = bytearray(0x1000 + len(padded) + 256)
    def aihd(at, size):
        b[at:at + 4] = b"AIHD"
        b[at + 4] = 1
        b[at + 5] = secure
        struct.pack_into("<QQ", b, at + 8, size, 0)
        b[at + 24:at + 32] = b"\xa5" * 8
    aihd(0x100, 0x1000)
    struct.pack_into("<II", b, 0x120, 0, table_num)
    for i, name in enumerate([b"spl", b"uboot", b"kernel", b"rootfs"]):
        b[0x128 + i * 20:0x128 + i * 20 + len(name)] = name
        struct.pack_into("<I", b, 0x128 + i * 20 + 16, i)
    b[0x2b8:0x2d8] = hashlib.sha256(bytes(b[:0x100])).digest()
    aihd(0xfe0, len(padded) if imgsize is None else imgsize)
    b[0x1000:0x1000 + len(spl)] = spl
    return bytes(b)


put("fsbl-imgsize-max.bin", fsbl(imgsize=0xFFFFFFFFFFFFFFFF))
put("fsbl-imgsize-big.bin", fsbl(imgsize=0x100000))
bad_rotpk = bytearray(fsbl())
bad_rotpk[0x2b8] ^= 1
put("fsbl-bad-rotpk.bin", bytes(bad_rotpk))
put("fsbl-header-only.bin", fsbl()[:0x1000])
put("fsbl-table-num.bin", fsbl(table_num=0xFFFFFFFF))
put("fsbl-secure.bin", fsbl(secure=1))

# RKBOOT loaders whose DRAM-init entry cannot run: larger than rock-3a's
# 60 KiB SRAM, or empty.
put("rkboot-ddr-too-large.bin", rkboot(entries=((1, "ddr", 0xF001), (2, "usbplug", 2048))))
put("rkboot-ddr-empty.bin", rkboot(entries=((1, "ddr", 0), (2, "usbplug", 2048))))


def board(name="my-k230", title="x", protocol="canaan", transport="usb", extra=""):
    usb = 'usb = [{ stage = "rom", vid = 0x29f1, pid = 0x0230 }]\n' if transport == "usb" else ""
    return (
        f'[[board]]\nname = "{name}"\ntitle = "{title}"\nsoc = "k230"\narch = "riscv64"\n'
        f'protocol = "{protocol}"\ntransport = "{transport}"\nload_address = 0x80360000\n'
        f'sram_base = 0x80300000\nsram_size = 0x100000\n{usb}enter = "x"\n{extra}'
    ).encode()


put("boards-alias-collision.toml", board(name="vf2"))
put("boards-duplicate.toml", board() + b"\n" + board())
put("boards-alias-duplicate.toml", board(extra='aliases = ["k2"]\n') + b"\n" + board(name="other", extra='aliases = ["K2"]\n'))
put("boards-baud-zero.toml", board(protocol="starfive", transport="serial", extra="baud = 0\n"))
put("boards-transport-mismatch.toml", board(transport="serial"))
put("boards-name-newline.toml", board(name="x\\ndone: canmv-k230 started in 0.01s"))
put("boards-title-escape.toml", board(title="\\u001b]0;owned\\u0007\\u001b[2J"))
put("boards-blank-name.toml", board(name=" "))
put("boards-entry-outside.toml", board(extra="entry = 0x1\n"))
put("boards-upper-case.toml", board(name="MyBoard"))

# A symlink loop cannot be read, even by root (CI runs as root, so file
# permissions would not make a file unreadable).
loop = os.path.join(here, "unreadable-loop.bin")
if os.path.lexists(loop):
    os.remove(loop)
os.symlink("unreadable-loop.bin", loop)
