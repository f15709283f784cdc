"""The probe: emulation detection from recorded answers, sections, and the plain-file contract."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

from archlock.inenv import probe, probe_headers, probe_packages, probe_system, probe_torch
from archlock.inenv.probe_system import RecordedSystem


def answers(fixtures: Path, name: str) -> RecordedSystem:
    return RecordedSystem(json.loads((fixtures / "probe" / "answers" / f"{name}.json").read_text()))


@pytest.mark.parametrize(
    ("case", "emulated", "by", "host", "proc"),
    [
        ("mac-native-arm64", False, None, "arm64", "arm64"),
        ("mac-rosetta-x86_64", True, "rosetta", "arm64", "x86_64"),
        ("mac-universal2-native", False, None, "arm64", "arm64"),
        ("mac-universal2-rosetta", True, "rosetta", "arm64", "x86_64"),
        ("mac-intel", False, None, "x86_64", "x86_64"),
        ("linux-amd64-native", False, None, "x86_64", "x86_64"),
        ("linux-arm64-native", False, None, "arm64", "arm64"),
        ("linux-arm64-qemu", True, "qemu-user", "x86_64", "arm64"),
        ("linux-arm64-qemu-old-kernel", True, "qemu-user", "x86_64", "arm64"),
        ("linux-amd64-on-arm64-qemu", True, "qemu-user", "arm64", "x86_64"),
        ("linux-i386-on-amd64", False, None, "x86_64", "i386"),
    ],
)
def test_emulation_from_recorded_answers(
    fixtures: Path, case: str, emulated: bool, by: str | None, host: str, proc: str
) -> None:
    sysm = answers(fixtures, case)
    facts = probe.emulation_facts(sysm, sysm.archs(sysm.executable()))
    assert (facts["emulated"], facts["by"], facts["host_arch"], facts["process_arch"]) == (
        emulated,
        by,
        host,
        proc,
    )


def test_qemu_evidence_names_the_binfmt_entry(fixtures: Path) -> None:
    sysm = answers(fixtures, "linux-arm64-qemu")
    facts = probe.emulation_facts(sysm, ["arm64"])
    assert "/proc/sys/kernel/arch=x86_64" in facts["evidence"]
    assert "binfmt_misc entry qemu-aarch64" in facts["evidence"]


def test_old_kernel_falls_back_to_cpuinfo(fixtures: Path) -> None:
    facts = probe.emulation_facts(answers(fixtures, "linux-arm64-qemu-old-kernel"), ["arm64"])
    assert "/proc/cpuinfo describes x86_64" in facts["evidence"]
    assert "binfmt_misc entry not visible" in facts["evidence"]


def test_unknown_host_arch_is_not_called_emulation() -> None:
    sysm = RecordedSystem(
        {"system": "Linux", "machine": "aarch64", "files": {"/proc/cpuinfo": "x: y\n"}}
    )
    facts = probe.emulation_facts(sysm, ["arm64"])
    assert facts["emulated"] is False and facts["host_arch"] is None


def test_macos_os_facts_use_the_product_version(fixtures: Path) -> None:
    facts = probe_system.os_facts(answers(fixtures, "mac-rosetta-x86_64"))
    assert (facts["name"], facts["version"], facts["libc"]) == ("macos", "14.5", None)
    assert probe_system.cpu_model(answers(fixtures, "mac-native-arm64")) == "Apple M2"


def test_linux_os_facts_read_os_release() -> None:
    sysm = RecordedSystem(
        {
            "system": "Linux",
            "machine": "x86_64",
            "files": {
                "/etc/os-release": 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nVERSION_ID="12"\n'
            },
        }
    )
    facts = probe_system.os_facts(sysm)
    assert (facts["distro"], facts["version"]) == ("Debian GNU/Linux 12 (bookworm)", "12")


def test_cpuinfo_families(fixtures: Path) -> None:
    x86 = answers(fixtures, "linux-amd64-native").read_text("/proc/cpuinfo")
    arm = answers(fixtures, "linux-arm64-native").read_text("/proc/cpuinfo")
    assert (
        probe_system.cpuinfo_arch(x86),
        probe_system.cpuinfo_arch(arm),
        probe_system.cpuinfo_arch(""),
    ) == (
        "x86_64",
        "arm64",
        None,
    )


def test_env_is_allow_listed_only() -> None:
    sysm = RecordedSystem(
        {
            "system": "Linux",
            "machine": "x86_64",
            "environ": {
                "PYTORCH_ENABLE_MPS_FALLBACK": "1",
                "CUDA_VISIBLE_DEVICES": "0",
                "TORCH_LOGS": "+dynamo",
                "OMP_NUM_THREADS": "4",
                "HOME": "/home/a",
                "AWS_SECRET_ACCESS_KEY": "x",
                "TORCH_HUB_TOKEN": "x",
                "HF_TOKEN": "x",
                "PATH": "/usr/bin",
            },
        }
    )
    assert probe.env_facts(sysm) == {
        "CUDA_VISIBLE_DEVICES": "0",
        "OMP_NUM_THREADS": "4",
        "PYTORCH_ENABLE_MPS_FALLBACK": "1",
        "TORCH_LOGS": "+dynamo",
    }


def test_wheel_tags_and_nvidia_driver() -> None:
    wheel = "Wheel-Version: 1.0\nRoot-Is-Purelib: false\nTag: cp311-cp311-manylinux_2_28_x86_64\n"
    assert probe_packages.wheel_tags(wheel) == ["cp311-cp311-manylinux_2_28_x86_64"]
    sysm = RecordedSystem(
        {
            "system": "Linux",
            "machine": "x86_64",
            "files": {
                "/proc/driver/nvidia/version": "NVRM version: NVIDIA UNIX x86_64 "
                "Kernel Module  550.54.15  Tue Mar  5 22:23:56 UTC 2024\n"
            },
        }
    )
    assert probe.nvidia_driver(sysm) == "550.54.15"


@pytest.mark.parametrize(
    ("capability", "arch_list", "ok"),
    [
        ("9.0", ["sm_80", "sm_90"], True),
        ("8.6", ["sm_80"], True),  # same major, higher minor runs sm_80 cubins
        ("12.0", ["sm_80", "sm_90", "sm_100"], False),
        ("12.0", ["sm_90", "compute_90"], True),  # PTX JIT
        ("9.0", ["sm_90a"], True),
        ("9.1", ["sm_90a"], False),
        ("6.1", ["sm_70", "sm_75"], False),
        ("10.0", ["sm_100"], True),
    ],
)
def test_cuda_arch_support(capability: str, arch_list: list[str], ok: bool) -> None:
    assert probe_torch.cuda_arch_supported(capability, arch_list) is ok


def test_scan_lists_a_planted_foreign_object(tmp_path: Path) -> None:
    site = tmp_path / "site-packages"
    (site / "good").mkdir(parents=True)
    (site / "bad").mkdir()
    shutil.copy(Path(sys.executable).resolve(), site / "good" / "_native.so")
    (site / "bad" / "_c.so").write_bytes(
        b"\x7fELF\x02\x01\x01"
        + bytes(9)
        + (3).to_bytes(2, "little")
        + (183).to_bytes(2, "little")
        + bytes(44)
    )
    (site / "bad" / "README.txt").write_text("text")
    (site / "bad" / "libmac.dylib").write_bytes(
        (0xFEEDFACF).to_bytes(4, "little") + (0x01000007).to_bytes(4, "little") + bytes(24)
    )
    native = probe_headers.binary_archs(str(Path(sys.executable).resolve()))[0]
    result = probe_packages.scan_binaries([str(site)], native, "elf")
    found = {(item["path"], item["format"], tuple(item["archs"])) for item in result["foreign"]}
    assert result["compiled"] == 3
    expected_bad = ("bad/_c.so", "elf", ("arm64",)) if native != "arm64" else None
    assert ("bad/libmac.dylib", "mach-o", ("x86_64",)) in found
    if expected_bad:
        assert expected_bad in found
    assert not any(path.startswith("good/") for path, _, _ in found)


@pytest.mark.parametrize(
    ("case", "virtual", "evidence"),
    [
        ("mac-vm-hosted-runner", True, "kern.hv_vmm_present=1"),
        ("mac-native-arm64", False, "kern.hv_vmm_present=0"),
        ("mac-rosetta-x86_64", None, "kern.hv_vmm_present=absent"),
        ("linux-amd64-native", True, "cpu flag hypervisor set"),
        ("linux-arm64-native", False, "cpu flag hypervisor absent"),
    ],
)
def test_vm_facts_from_recorded_answers(
    fixtures: Path, case: str, virtual: bool | None, evidence: str
) -> None:
    assert probe_system.vm_facts(answers(fixtures, case)) == {
        "virtual": virtual,
        "evidence": evidence,
    }


def test_an_emulated_linux_process_cannot_tell_a_vm(fixtures: Path) -> None:
    facts = probe_system.vm_facts(answers(fixtures, "linux-arm64-qemu"), emulated=True)
    assert facts == {"virtual": None, "evidence": "emulated process: the host's CPU is not visible"}
    rosetta = probe_system.vm_facts(answers(fixtures, "mac-vm-hosted-runner"), emulated=True)
    assert rosetta["virtual"] is True  # sysctl answers come from the kernel, Rosetta or not


# -- the import check's plan --------------------------------------------------------------------
@pytest.mark.parametrize(
    ("path", "module"),
    [
        ("pkg/__init__.py", "pkg"),
        ("pkg/sub/mod.py", "pkg"),
        ("single.py", "single"),
        ("_speedups.cpython-311-x86_64-linux-gnu.so", "_speedups"),
        ("pkg-1.0.dist-info/RECORD", None),
        ("pkg-1.0.data/scripts/x", None),
        ("../../../bin/tool", None),
        ("__pycache__/single.cpython-311.pyc", None),
        ("distutils-precedence.pth", None),
        ("numpy.libs/libgfortran-040039e1.so.5.0.0", None),  # auditwheel's vendored libraries
        ("README.txt", None),
    ],
)
def test_record_paths_name_their_top_level_module(path: str, module: str | None) -> None:
    assert probe_packages.module_of(path) == module


class Dist:
    def __init__(self, top_level: str | None, files: list[str]) -> None:
        self.top_level, self.files = top_level, files

    def read_text(self, name: str) -> str | None:
        return self.top_level if name == "top_level.txt" else None


def test_top_level_modules_come_from_top_level_txt_else_record() -> None:
    listed = Dist("yaml\n_yaml\n\ntests\n__editable___x_finder\n", [])
    assert probe_packages.top_level_modules(listed) == ["_yaml", "yaml"]  # no tests, no hooks
    recorded = Dist(None, ["six.py", "six-1.0.dist-info/RECORD", "not a-name/x.py"])
    assert probe_packages.top_level_modules(recorded) == ["six"]
    # setuptools' top_level.txt may name folders it never installed (seen: botorch's "dist",
    # "tutorials", "website"); the RECORD says what is there
    both = Dist("botorch\ndist\ntutorials\nwebsite\n", ["botorch/__init__.py"])
    assert probe_packages.top_level_modules(both) == ["botorch"]
