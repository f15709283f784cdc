"""Recorded answers for setup-mac: a `MacSystem` that replays what a real Mac said.

Fixtures in tests/fixtures/mac/*.json record, per scenario: sysctl values, environment, the
files that exist (with the slices `lipo -archs` names, turned into real Mach-O header bytes
here), and what each command printed. An unrecorded question fails the test: setup-mac may
not ask the machine anything a scenario did not expect.

Other test_mac_* modules import `RecordedSystem`, `scenario` and the header builders from here.
"""

from __future__ import annotations

import json
import re
import struct
from pathlib import Path
from typing import Any

import pytest

from archlock.inenv.probe_headers import macho_archs
from archlock.mac.interpreters import PROBE_CODE
from archlock.mac.system import Completed

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "mac"
HOME = "/Users/ada"

# <mach-o/loader.h>, <mach-o/machine.h>: cputype, cpusubtype of each slice we record
CPU = {
    "x86_64": (0x01000007, 3),
    "arm64": (0x0100000C, 0),
    "arm64e": (0x0100000C, 2),
    "i386": (7, 3),
}
MH_MAGIC_64 = 0xFEEDFACF
MH_EXECUTE = 2
FAT_MAGIC = 0xCAFEBABE


def thin_header(arch: str) -> bytes:
    """A mach_header_64 as the file stores it (little-endian on every Mac CPU)."""
    cputype, subtype = CPU[arch]
    return struct.pack(
        "<IiiIIII", MH_MAGIC_64, cputype, subtype, MH_EXECUTE, 0, 0, 0
    ) + struct.pack("<I", 0)


def fat_header(archs: list[str]) -> bytes:
    """A fat_header and its fat_arch table (big-endian), each slice 16 KiB aligned."""
    head = struct.pack(">II", FAT_MAGIC, len(archs))
    for index, arch in enumerate(archs):
        cputype, subtype = CPU[arch]
        head += struct.pack(">iiIII", cputype, subtype, 0x4000 * (index + 1), 0x4000, 14)
    return head


def header(archs: list[str]) -> bytes:
    return thin_header(archs[0]) if len(archs) == 1 else fat_header(archs)


class RecordedSystem:
    """Answers every `MacSystem` question from one scenario's recorded data."""

    def __init__(
        self, answers: dict[str, Any], *, home: str = HOME, project: str = "/Users/ada/proj"
    ) -> None:
        text = json.dumps(answers).replace("~/", f"{home}/").replace("{project}", project)
        self.data = json.loads(text.replace('"{probe}"', json.dumps(PROBE_CODE)))
        self._home = home
        self.files: dict[str, dict[str, Any]] = self.data.get("files", {})
        self.executed: list[list[str]] = []
        self.asked: list[list[str]] = []

    def os_name(self) -> str:
        return self.data["os"]

    def machine(self) -> str:
        return self.data["machine"]

    def sysctl_int(self, name: str) -> int | None:
        return self.data.get("sysctl", {}).get(name)

    def sysctl_str(self, name: str) -> str | None:
        return self.data.get("sysctl", {}).get(name)

    def environ(self) -> dict[str, str]:
        return self.data.get("environ", {})

    def home(self) -> str:
        return self._home

    def executable(self) -> str:
        return self.data["executable"]

    def head(self, path: str) -> bytes | None:
        real = self.realpath(path)  # open() follows symlinks: read the target when recorded
        entry = self.files.get(real) if real in self.files else self.files.get(path)
        if entry is None:
            return None
        if "macho" in entry:
            return header(entry["macho"])
        return entry.get("text", "").encode()

    def exists(self, path: str) -> bool:
        return path in self.files or any(name.startswith(f"{path}/") for name in self.files)

    def is_executable(self, path: str) -> bool:
        return path in self.files and self.files[path].get("exec", True)

    def realpath(self, path: str) -> str:
        for _ in range(40):  # a chain of recorded links, as the kernel would follow it
            target = self.files.get(path, {}).get("realpath", path)
            if target == path:
                break
            path = target
        return path

    def glob(self, pattern: str) -> list[str]:
        regex = re.compile(
            "".join(
                "[^/]*" if part == "*" else re.escape(part) for part in re.split(r"(\*)", pattern)
            )
        )
        return sorted(path for path in self.files if regex.fullmatch(path))

    def capture(self, argv: list[str]) -> Completed:
        self.asked.append(argv)
        for answer in self.data.get("commands", []):
            if answer["argv"] == argv:
                return Completed(
                    answer.get("rc", 0), answer.get("stdout", ""), answer.get("stderr", "")
                )
        raise AssertionError(f"unrecorded question: {argv}")

    def execute(self, argv: list[str]) -> int:
        self.executed.append(argv)
        return int(self.data.get("execute", {}).get(" ".join(argv), 0))


def scenario(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))


def all_scenarios() -> list[str]:
    return sorted(path.stem for path in FIXTURES.glob("*.json"))


@pytest.mark.parametrize("name", all_scenarios())
def test_every_recorded_header_reads_back_as_its_slices(name: str) -> None:
    for path, entry in scenario(name).get("files", {}).items():
        if "macho" in entry:
            assert macho_archs(header(entry["macho"])) == entry["macho"], path


@pytest.mark.parametrize("name", all_scenarios())
def test_every_scenario_says_what_it_records(name: str) -> None:
    data = scenario(name)
    assert data["about"] and data["os"] == "Darwin"
    assert set(data["sysctl"]) >= {
        "hw.optional.arm64",
        "sysctl.proc_translated",
        "kern.osproductversion",
    }
