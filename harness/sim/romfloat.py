"""RP2040 boot-ROM soft-float library, emulated at its documented place.

Why: the real Pico firmware (Mbed CE's RP2040 target links the Pico SDK's pico_float,
``float_aeabi_rp2040.S``) implements ``__aeabi_fadd`` & co. as a tail call through the boot ROM's
``soft_float_table`` (RP2040 datasheet, "Bootrom Contents" / "Fast Floating Point Library"). The
ROM code is Mark Owen's Qfplib-M0-full adapted to the RP2040; its code is not redistributable here
(and not needed), so the emulator maps a ROM whose header, lookup function and table have the
documented layout, and whose table entries are one-instruction stubs (``bx lr``): the native block
hook computes the operation on r0/r1 (IEEE single, round to nearest even, denormals flushed to
zero and NaN mapped to infinity as the library documents) and charges the library's published
average cycle count (Qfplib-M0-full speed table, measured on a single-cycle-flash Cortex-M0,
"average values for non-exceptional arguments, including calling overhead"; the call/return
overhead, BL 3 + BX 3 on Cortex-M0+, is subtracted because the core model prices those
instructions itself). Entries without a published figure are marked ``estimate``.

Layout (datasheet): 0x10 magic 'M','u',0x01 and the ROM version; 0x14 / 0x16 / 0x18 16-bit
pointers to the function table, the data table and ``rom_table_lookup``; data-table code 'SF'
points to ``soft_float_table``, whose entries are at the datasheet's offsets below.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass

ROM_BASE = 0x0000_0000
ROM_SIZE = 0x4000  # 16 KB, as the RP2040's mask ROM
ROM_VERSION = 2
CALL_OVERHEAD = 6  # BL (3) + BX LR (3 with refill) on Cortex-M0+, priced by the core model

_LOOKUP_CODE = bytes.fromhex("02888a4204d00430002af9d10020704740887047")  # see rom_image()


@dataclass(frozen=True)
class RomOp:
    offset: int  # in soft_float_table
    op: int  # native op id (native/blockhook.c bh_rom_op)
    name: str
    cycles: int  # published average, calling overhead included
    source: str


OPS: tuple[RomOp, ...] = (
    RomOp(0x00, 1, "_fadd", 76, "Qfplib-M0-full speed table"),
    RomOp(0x04, 2, "_fsub", 78, "Qfplib-M0-full speed table"),
    RomOp(0x08, 3, "_fmul", 62, "Qfplib-M0-full speed table"),
    RomOp(0x0C, 4, "_fdiv", 83, "Qfplib-M0-full speed table"),
    RomOp(0x10, 5, "_fcmp", 26, "estimate (compare without rounding)"),
    RomOp(0x14, 6, "_fsqrt", 67, "Qfplib-M0-full speed table"),
    RomOp(0x18, 7, "_float2int", 24, "estimate"),
    RomOp(0x20, 8, "_float2uint", 22, "estimate"),
    RomOp(0x28, 9, "_int2float", 24, "estimate"),
    RomOp(0x30, 10, "_uint2float", 22, "estimate"),
    RomOp(0x48, 11, "_fexp", 261, "Qfplib-M0-full speed table"),
    RomOp(0x4C, 12, "_fln", 277, "Qfplib-M0-full speed table"),
)
# Not a ROM entry: the SDK's __aeabi_f2iz wrapper rounds _float2int towards zero; the emulated
# ROM offers that directly at the end of the table (same cost as _float2int plus the fix-up).
F2IZ = RomOp(0x7C, 13, "__aeabi_f2iz (SDK wrapper)", 28, "estimate")
TABLE_ENTRIES = 0x80 // 4

_HEADER = 0x10
_LOOKUP_AT = 0x100
_DATA_TABLE_AT = 0x140
_FUNC_TABLE_AT = 0x180
_SF_TABLE_AT = 0x200
_STUBS_AT = 0x400


def stub_address(op: RomOp) -> int:
    return ROM_BASE + _STUBS_AT + op.offset


def rom_image() -> bytes:
    """The emulated ROM's bytes. The lookup function (Thumb, assembled once from
    ``1: ldrh r2,[r0]; cmp r2,r1; beq 2f; adds r0,#4; cmp r2,#0; bne 1b; movs r0,#0; bx lr;
    2: ldrh r0,[r0,#2]; bx lr``) walks (code, pointer) pairs of 16-bit words."""
    rom = bytearray(ROM_SIZE)
    rom[_HEADER : _HEADER + 4] = b"Mu\x01" + bytes([ROM_VERSION])
    struct.pack_into("<HHH", rom, 0x14, _FUNC_TABLE_AT, _DATA_TABLE_AT, _LOOKUP_AT | 1)  # func table: empty
    rom[_LOOKUP_AT : _LOOKUP_AT + len(_LOOKUP_CODE)] = _LOOKUP_CODE
    struct.pack_into("<HHHH", rom, _DATA_TABLE_AT, ord("S") | ord("F") << 8, _SF_TABLE_AT, 0, 0)
    for i in range(TABLE_ENTRIES):  # every entry points at a stub (unknown ones return r0 as is)
        struct.pack_into("<I", rom, _SF_TABLE_AT + 4 * i, (ROM_BASE + _STUBS_AT + 4 * i) | 1)
        struct.pack_into("<H", rom, _STUBS_AT + 4 * i, 0x4770)  # bx lr
    return bytes(rom)


def stub_costs() -> dict[int, RomOp]:
    return {stub_address(op): op for op in (*OPS, F2IZ)}


def _f(u: int) -> float:
    return struct.unpack("<f", struct.pack("<I", u & 0xFFFFFFFF))[0]


def _u(x: float) -> int:
    try:
        return struct.unpack("<I", struct.pack("<f", x))[0]
    except OverflowError:
        return 0x7F800000 if x > 0 else 0xFF800000


def _ftz(x: float) -> float:
    if math.isnan(x):
        return math.copysign(math.inf, x)
    if x != 0.0 and abs(x) < 1.17549435e-38:
        return math.copysign(0.0, x)
    return x


def _f32(x: float) -> float:
    return _f(_u(x))


def _clamp_i32(d: float) -> int:
    return int(max(-(2**31), min(2**31 - 1, d))) & 0xFFFFFFFF


def rom_float_op(op: int, r0: int, r1: int) -> int:
    """The pure-Python twin of native bh_rom_op (same results; used without a C compiler)."""
    a, b = _ftz(_f(r0)), _ftz(_f(r1))
    if op == 1:
        return _u(_ftz(_f32(a + b)))
    if op == 2:
        return _u(_ftz(_f32(a - b)))
    if op == 3:
        return _u(_ftz(_f32(a * b)))
    if op == 4:
        if b == 0:
            return _u(math.copysign(math.inf, a) * math.copysign(1, b)) if a != 0 else 0x7F800000
        return _u(_ftz(_f32(a / b)))
    if op == 5:
        return 0 if a == b else (0xFFFFFFFF if a < b else 1)
    if op == 6:
        return _u(_ftz(_f32(math.sqrt(a)))) if a >= 0 else 0x7FC00000
    if op == 7:
        return _clamp_i32(math.floor(a)) if math.isfinite(a) else _clamp_i32(a if not math.isnan(a) else 0)
    if op == 8:
        return 0 if a <= 0 else min(math.floor(a), 0xFFFFFFFF) if math.isfinite(a) else 0xFFFFFFFF
    if op == 9:
        return _u(_f32(float(r0 - (1 << 32) if r0 & 0x80000000 else r0)))
    if op == 10:
        return _u(_f32(float(r0)))
    if op == 11:
        try:
            return _u(_ftz(_f32(math.exp(a))))
        except OverflowError:
            return 0x7F800000
    if op == 12:
        return _u(_ftz(_f32(math.log(a)))) if a > 0 else 0xFF800000
    if op == 13:
        return _clamp_i32(math.trunc(a)) if math.isfinite(a) else _clamp_i32(a if not math.isnan(a) else 0)
    return r0
