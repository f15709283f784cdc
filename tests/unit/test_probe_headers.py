"""ELF and Mach-O header parsing: real binaries, and headers built from the documented layout."""

from __future__ import annotations

import shutil
import struct
import sys
from pathlib import Path

import pytest

from archlock.inenv.probe_headers import binary_archs, elf_arch, header_archs, macho_archs

# <mach-o/machine.h>
CPU_TYPE_X86_64 = 0x01000007
CPU_TYPE_ARM64 = 0x0100000C
CPU_TYPE_ARM = 12
CPU_SUBTYPE_ARM64E = 2
CPU_SUBTYPE_PTRAUTH_ABI = 0x80000000
CPU_SUBTYPE_ARM_V7 = 9
CPU_TYPE_X86 = 7


def thin_macho(cputype: int, subtype: int = 0, *, magic: int = 0xFEEDFACF) -> bytes:
    """struct mach_header_64 as written on little-endian hosts (magic bytes cf fa ed fe)."""
    return struct.pack("<IIIIIIII", magic, cputype, subtype, 6, 0, 0, 0, 0)


def fat_macho(slices: list[tuple[int, int]], *, fat64: bool = False) -> bytes:
    """struct fat_header + fat_arch[_64] entries, big-endian, as lipo writes them."""
    out = struct.pack(">II", 0xCAFEBABF if fat64 else 0xCAFEBABE, len(slices))
    for index, (cputype, subtype) in enumerate(slices):
        offset = 0x4000 * (index + 1)
        if fat64:
            out += struct.pack(">IIQQII", cputype, subtype, offset, 0x1000, 14, 0)
        else:
            out += struct.pack(">IIIII", cputype, subtype, offset, 0x1000, 14)
    return out


def elf_header(machine: int, *, elfclass: int = 2, data: int = 1) -> bytes:
    """Elf64_Ehdr / Elf32_Ehdr prefix: e_ident[16], e_type, e_machine, e_version."""
    order = "<" if data == 1 else ">"
    ident = b"\x7fELF" + bytes([elfclass, data, 1, 0]) + bytes(8)
    return ident + struct.pack(order + "HHI", 3, machine, 1) + bytes(40)


def test_this_interpreter_and_a_system_library_are_x86_64_or_native() -> None:
    native = {"x86_64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}
    import platform

    expected = native.get(platform.machine())
    if expected is None:
        pytest.skip(f"host-lacks: a known machine ({platform.machine()})")
    assert binary_archs(str(Path(sys.executable).resolve())) == [expected]
    ls = shutil.which("ls")
    assert ls is not None
    assert binary_archs(str(Path(ls).resolve())) == [expected]


def test_a_real_shared_object_from_the_dev_venv() -> None:
    import _ctypes  # a compiled extension module of this interpreter

    path = Path(_ctypes.__file__)
    assert path.suffix == ".so"
    assert binary_archs(str(path)) in (["x86_64"], ["arm64"])


def test_real_arm64_elf_header_from_a_torch_wheel(fixtures: Path) -> None:
    path = fixtures / "probe" / "aarch64-libtorch_global_deps.ehdr"
    assert binary_archs(str(path)) == ["arm64"]


@pytest.mark.parametrize(
    ("machine", "name"),
    [(62, "x86_64"), (183, "arm64"), (3, "i386"), (40, "arm"), (243, "riscv64")],
)
def test_elf_machines(machine: int, name: str) -> None:
    assert elf_arch(elf_header(machine)) == name


def test_elf_32bit_big_endian_and_ppc64le() -> None:
    assert elf_arch(elf_header(40, elfclass=1, data=2)) == "arm"
    assert elf_arch(elf_header(21, data=1)) == "ppc64le"
    assert elf_arch(elf_header(21, data=2)) == "ppc64"
    assert elf_arch(elf_header(9999)) == "e_machine-9999"


def test_thin_macho_arm64_and_x86_64() -> None:
    assert macho_archs(thin_macho(CPU_TYPE_ARM64)) == ["arm64"]
    assert macho_archs(thin_macho(CPU_TYPE_X86_64, 3)) == ["x86_64"]
    assert macho_archs(thin_macho(CPU_TYPE_X86, 3, magic=0xFEEDFACE)) == ["i386"]


def test_thin_macho_big_endian_byte_order() -> None:
    header = struct.pack(">IIII", 0xFEEDFACF, CPU_TYPE_ARM64, 0, 6)
    assert macho_archs(header) == ["arm64"]


def test_arm64e_with_pointer_auth_capability_bits() -> None:
    subtype = CPU_SUBTYPE_ARM64E | CPU_SUBTYPE_PTRAUTH_ABI
    assert macho_archs(thin_macho(CPU_TYPE_ARM64, subtype)) == ["arm64e"]


def test_universal2_lists_every_slice() -> None:
    header = fat_macho([(CPU_TYPE_X86_64, 3), (CPU_TYPE_ARM64, 0)])
    assert macho_archs(header) == ["x86_64", "arm64"]


def test_fat64_and_old_style_armv7() -> None:
    header = fat_macho(
        [(CPU_TYPE_ARM, CPU_SUBTYPE_ARM_V7), (CPU_TYPE_ARM64, CPU_SUBTYPE_ARM64E)], fat64=True
    )
    assert macho_archs(header) == ["armv7", "arm64e"]


def test_java_class_file_is_not_a_fat_binary() -> None:
    java = struct.pack(">IHH", 0xCAFEBABE, 0, 52) + bytes(40)
    assert macho_archs(java) == []


def test_truncated_and_foreign_files_give_nothing(tmp_path: Path) -> None:
    assert header_archs(b"") == []
    assert header_archs(fat_macho([(CPU_TYPE_ARM64, 0)])[:12]) == []
    text = tmp_path / "script.py"
    text.write_text("print('hi')\n")
    assert binary_archs(str(text)) == []
    assert binary_archs(str(tmp_path / "missing.so")) == []


def test_fixture_files_on_disk(tmp_path: Path) -> None:
    fat = tmp_path / "python3"
    fat.write_bytes(fat_macho([(CPU_TYPE_X86_64, 3), (CPU_TYPE_ARM64, 0)]) + bytes(100))
    assert binary_archs(str(fat)) == ["x86_64", "arm64"]
