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

# A symlink loop cannot be read, even by root (CI runs as root, so file
# permissions would not make a file unreadable).
loop = os.path.join(here, "unreadable-loop.bin")
if os.path.lexists(loop):
    os.remove(loop)
os.symlink("unreadable-loop.bin", loop)
