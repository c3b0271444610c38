#!/usr/bin/env python3
"""Writes the small input files of the fip.bin vectors (our own, not vendor
code): deterministic byte patterns of awkward sizes, each starting as the
part it stands for starts (a jump over a 32-byte header; LOADER_2ND with
fiptool's "BL33" magic and a run address)."""
import struct


def pattern(n, seed):
    x = seed
    out = bytearray()
    for _ in range(n):
        x = (x * 1103515245 + 12345) & 0xFFFFFFFF
        out.append((x >> 16) & 0xFF)
    return out


def write(name, data):
    with open(name, "wb") as f:
        f.write(data)


bl2 = pattern(5000, 1)
bl2[0:4] = bytes([0x6F, 0x00, 0x00, 0x02])  # RISC-V j +32
write("bl2.bin", bl2)
write("blcp.bin", pattern(700, 2))
write("ddr_param.bin", pattern(8192, 3))
write("blcp_2nd.bin", pattern(3001, 4))
write("monitor.bin", pattern(4321, 5))
# LOADER_2ND: JUMP0, MAGIC "BL33", CKSUM, SIZE, RUNADDR (u64), RESERVED1/2, body.
ldr = bytearray(struct.pack("<I4sIIQII", 0x0000006F | (32 << 20), b"BL33", 0, 0, 0x80200000, 0, 0))
body = pattern(6000, 6)
body[100:2100] = (b"racklet-u-boot " * 134)[:2000]  # something LZMA can shrink
ldr += body
write("loader_2nd.bin", ldr)
