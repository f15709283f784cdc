"""Mach-O headers built from the documented format (<mach-o/loader.h>, <mach-o/fat.h>), and how
setup-mac judges an interpreter by them before ever running it."""

from __future__ import annotations

import struct

import pytest
from test_mac_recorded import RecordedSystem, fat_header, thin_header

from archlock.inenv.probe_headers import macho_archs
from archlock.mac.interpreters import Candidate, choose_uv, has_native_slice, judge


def test_thin_arm64() -> None:
    data = thin_header("arm64")
    assert data[:4] == b"\xcf\xfa\xed\xfe"  # MH_MAGIC_64 as a little-endian file stores it
    assert macho_archs(data) == ["arm64"]


def test_thin_x86_64() -> None:
    assert macho_archs(thin_header("x86_64")) == ["x86_64"]


def test_fat_universal2() -> None:
    data = fat_header(["x86_64", "arm64"])
    assert data[:8] == b"\xca\xfe\xba\xbe\x00\x00\x00\x02"  # FAT_MAGIC, nfat_arch, big-endian
    assert len(data) == 8 + 2 * 20  # one 20-byte fat_arch per slice
    assert macho_archs(data) == ["x86_64", "arm64"]


def test_apple_system_binaries_carry_arm64e() -> None:
    assert macho_archs(fat_header(["x86_64", "arm64e"])) == ["x86_64", "arm64e"]
    assert has_native_slice(["x86_64", "arm64e"])


def test_a_fat_table_cut_short_is_not_read_as_slices() -> None:
    assert macho_archs(fat_header(["x86_64", "arm64"])[:30]) == []


@pytest.mark.parametrize(
    "data",
    [b"#!/usr/bin/env bash\n", b"\x7fELF" + b"\0" * 60, b"", struct.pack(">II", 0xCAFEBABE, 52)],
)
def test_not_mach_o(data: bytes) -> None:
    assert macho_archs(data) == []  # 0xCAFEBABE with a count of 52 is a Java class file


def _system(
    files: dict[str, object], commands: list[dict[str, object]] | None = None
) -> RecordedSystem:
    answers = {
        "os": "Darwin",
        "machine": "arm64",
        "executable": "/x",
        "files": files,
        "commands": commands or [],
    }
    return RecordedSystem(answers)


def test_an_x86_64_only_interpreter_is_rejected_without_running_it() -> None:
    system = _system({"/usr/local/bin/python3.11": {"macho": ["x86_64"]}})
    verdict = judge(system, Candidate("/usr/local/bin/python3.11", "PATH"), "3.11")
    assert not verdict.fits and verdict.x86_only and system.asked == []


def test_a_universal2_interpreter_must_also_report_arm64_when_run_natively() -> None:
    path = "/Library/Frameworks/Python.framework/Versions/3.11/bin/python3.11"
    probe = {"argv": ["arch", "-arm64", path, "-c", "{probe}"], "stdout": "arm64 3.11 cpython\n"}
    verdict = judge(
        _system({path: {"macho": ["x86_64", "arm64"]}}, [probe]),
        Candidate(path, "python.org"),
        "3.11",
    )
    assert verdict.fits and verdict.archs == ("x86_64", "arm64") and verdict.machine == "arm64"


def test_a_native_interpreter_of_another_version_does_not_fit() -> None:
    probe = {
        "argv": ["arch", "-arm64", "/usr/bin/python3", "-c", "{probe}"],
        "stdout": "arm64 3.9 cpython\n",
    }
    verdict = judge(
        _system({"/usr/bin/python3": {"macho": ["x86_64", "arm64e"]}}, [probe]),
        Candidate("/usr/bin/python3", "macOS"),
        "3.11",
    )
    assert not verdict.fits and verdict.reason == "native, but Python 3.9 (the env needs 3.11)"


def test_an_interpreter_that_fails_to_start_natively_does_not_fit() -> None:
    path = "/opt/homebrew/bin/python3.11"
    probe = {
        "argv": ["arch", "-arm64", path, "-c", "{probe}"],
        "rc": 1,
        "stderr": "dyld: Library not loaded\n",
    }
    verdict = judge(
        _system({path: {"macho": ["arm64"]}}, [probe]), Candidate(path, "Homebrew"), "3.11"
    )
    assert not verdict.fits and verdict.reason == "failed to run natively: dyld: Library not loaded"


def test_a_launcher_script_is_judged_by_what_it_reports_but_never_chosen() -> None:
    path = "/Users/ada/.pyenv/shims/python3.11"
    probe = {"argv": ["arch", "-arm64", path, "-c", "{probe}"], "stdout": "arm64 3.11 cpython\n"}
    verdict = judge(
        _system({path: {"text": "#!/usr/bin/env bash\n"}}, [probe]), Candidate(path, "PATH"), "3.11"
    )
    assert verdict.machine == "arm64" and not verdict.fits
    assert verdict.reason == "a launcher script that starts a native arm64, Python 3.11 interpreter"


def test_uv_is_chosen_by_its_header_too() -> None:
    system = _system(
        {
            "/usr/local/bin/uv": {"macho": ["x86_64"]},
            "/Users/ada/.cargo/bin/uv": {"macho": ["x86_64", "arm64"]},
        }
    )
    system.data["environ"] = {"PATH": "/usr/local/bin:/usr/bin"}
    choice = choose_uv(system, "uv")
    assert choice.path == "/Users/ada/.cargo/bin/uv"
    assert choice.rejected == (("/usr/local/bin/uv", ("x86_64",)),)
