"""The probe's binary headers: which architectures an ELF or Mach-O file is built for.

`binary_archs(path)` and `macho_archs(data)` name the architectures of an ELF or Mach-O file, thin
or fat (every slice); setup-mac and report use them too. Standard library only, Python >= 3.8,
loaded by probe.py as a sibling (see probe.py).
"""

from __future__ import annotations

import struct

# ---------------------------------------------------------------------------------------------
# Binary headers: ELF (System V gABI) and Mach-O (<mach-o/loader.h>, <mach-o/fat.h>)
# ---------------------------------------------------------------------------------------------

ELF_MAGIC = b"\x7fELF"
ELF_MACHINES = {
    3: "i386",
    8: "mips",
    20: "ppc",
    21: "ppc64",
    22: "s390x",
    40: "arm",
    62: "x86_64",
    183: "arm64",
    243: "riscv64",
}

MH_MAGIC = 0xFEEDFACE  # 32-bit thin, in the file's own byte order
MH_MAGIC_64 = 0xFEEDFACF  # 64-bit thin
FAT_MAGIC = 0xCAFEBABE  # fat header, always big-endian; fat_arch entries are 20 bytes
FAT_MAGIC_64 = 0xCAFEBABF  # fat header with 64-bit offsets; fat_arch_64 entries are 32 bytes
FAT_MAX_ARCHS = 20  # 0xCAFEBABE is also a Java class file; its "count" is a class version >= 45

CPU_ARCH_ABI64 = 0x01000000
CPU_ARCH_ABI64_32 = 0x02000000
CPU_SUBTYPE_MASK = 0xFF000000  # capability bits in the subtype (e.g. arm64e pointer auth ABI)
CPU_TYPE_X86 = 7
CPU_TYPE_ARM = 12
CPU_TYPE_POWERPC = 18
MACHO_ARM_SUBTYPES = {6: "armv6", 9: "armv7", 11: "armv7s", 12: "armv7k"}
MACHO_CPU_NAMES = {
    CPU_TYPE_X86: "i386",
    CPU_TYPE_X86 | CPU_ARCH_ABI64: "x86_64",
    CPU_TYPE_ARM: "arm",
    CPU_TYPE_ARM | CPU_ARCH_ABI64: "arm64",
    CPU_TYPE_ARM | CPU_ARCH_ABI64_32: "arm64_32",
    CPU_TYPE_POWERPC: "ppc",
    CPU_TYPE_POWERPC | CPU_ARCH_ABI64: "ppc64",
}
HEADER_BYTES = 4096  # enough for any fat table we accept (20 * 32 + 8)


def macho_cpu_name(cputype: int, cpusubtype: int) -> str:
    """The conventional name (as `lipo -archs` prints it) for a Mach-O cputype/subtype pair."""
    subtype = cpusubtype & ~CPU_SUBTYPE_MASK & 0xFFFFFFFF
    if cputype == CPU_TYPE_ARM | CPU_ARCH_ABI64 and subtype == 2:
        return "arm64e"
    if cputype == CPU_TYPE_X86 | CPU_ARCH_ABI64 and subtype == 8:
        return "x86_64h"
    if cputype == CPU_TYPE_ARM and subtype in MACHO_ARM_SUBTYPES:
        return MACHO_ARM_SUBTYPES[subtype]
    return MACHO_CPU_NAMES.get(cputype, "cputype-%d" % cputype)


def _macho_thin(data: bytes) -> list[str] | None:
    for order in (">", "<"):
        if len(data) >= 12:
            magic, cputype, subtype = struct.unpack(order + "III", data[:12])
            if magic in (MH_MAGIC, MH_MAGIC_64):
                return [macho_cpu_name(cputype, subtype)]
    return None


def _macho_fat(data: bytes) -> list[str] | None:
    if len(data) < 8:
        return None
    magic, count = struct.unpack(">II", data[:8])
    if magic not in (FAT_MAGIC, FAT_MAGIC_64) or not 0 < count <= FAT_MAX_ARCHS:
        return None
    entry = 20 if magic == FAT_MAGIC else 32
    if len(data) < 8 + count * entry:
        return None
    names = []
    for index in range(count):
        start = 8 + index * entry
        cputype, subtype = struct.unpack(">II", data[start : start + 8])
        names.append(macho_cpu_name(cputype, subtype))
    return names


def macho_archs(data: bytes) -> list[str]:
    """Architectures named by Mach-O header bytes: one for a thin file, every slice for a fat
    (universal) one, [] when the bytes are not a Mach-O header."""
    fat = _macho_fat(data)
    if fat is not None:
        return fat
    return _macho_thin(data) or []


def elf_arch(data: bytes) -> str | None:
    """The architecture an ELF header names (e_machine), or None when it is not ELF."""
    if len(data) < 20 or data[:4] != ELF_MAGIC:
        return None
    order = "<" if data[5] == 1 else ">"
    (machine,) = struct.unpack(order + "H", data[18:20])
    name = ELF_MACHINES.get(machine, "e_machine-%d" % machine)
    if name == "ppc64" and order == "<":
        return "ppc64le"
    return name


def header_archs(data: bytes) -> list[str]:
    """Architectures named by the first bytes of a file (ELF or Mach-O), [] for anything else."""
    elf = elf_arch(data)
    if elf is not None:
        return [elf]
    return macho_archs(data)


def header_format(data: bytes) -> str | None:
    """ "elf", "mach-o" or None for the first bytes of a file."""
    if elf_arch(data) is not None:
        return "elf"
    return "mach-o" if macho_archs(data) else None


def read_head(path: str) -> bytes:
    try:
        with open(path, "rb") as handle:
            return handle.read(HEADER_BYTES)
    except OSError:
        return b""


def binary_archs(path: str) -> list[str]:
    """Architectures of the ELF or Mach-O file at `path` (every slice of a universal binary);
    [] when it is neither, or cannot be read."""
    return header_archs(read_head(path))
