"""`probe --profile NAME`: what a machine imposes, from recorded system answers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from archlock.inenv import probe, probe_profile
from archlock.lock import machines

MACHINES = Path(__file__).resolve().parents[1] / "fixtures" / "machines"
SMI = " ".join(probe_profile.NVIDIA_QUERY)
SMI_OLD = " ".join(probe_profile.NVIDIA_QUERY_OLD)


def answers(name: str) -> dict:
    return json.loads((MACHINES / "answers" / f"{name}.json").read_text(encoding="utf-8"))


# What each recorded machine is, written by hand from its answers (os-release, the C library,
# sysctl's kern.hv_vmm_present, cpuinfo's hypervisor flag, nvidia-smi's lines), never from the
# probe's output:
# name: (os, version, arch, glibc, macos, vm, driver, GPUs, their capability)
FACTS = {
    "gpu-h100": ("linux", "12", "x86_64", "2.36", None, False, "580.95.05", 8, "9.0"),
    "gpu-old-driver": ("linux", "22.04", "x86_64", "2.35", None, False, "535.183.01", 8, "8.0"),
    "gpu-volta": ("linux", "24.04", "x86_64", "2.39", None, True, "580.95.05", 4, "7.0"),
    "graviton-al2": ("linux", "2", "arm64", "2.26", None, False, None, 0, None),
    "graviton-al2023": ("linux", "2023", "arm64", "2.34", None, False, None, 0, None),
    "mac-ventura": ("macos", "13.6.7", "arm64", None, "13.6.7", False, None, 0, None),
    "mac-vm": ("macos", "15.5", "arm64", None, "15.5", True, None, 0, None),
}


def test_every_recorded_machine_has_hand_written_facts() -> None:
    assert set(FACTS) == {p.stem for p in (MACHINES / "answers").glob("*.json")}


@pytest.mark.parametrize("name", sorted(FACTS))
def test_the_profile_states_the_machines_facts(name: str) -> None:
    os_name, version, arch, glibc, macos, vm, driver, count, capability = FACTS[name]
    doc = probe_profile.machine_profile(name, probe.RecordedSystem(answers(name)))
    assert (doc["os"]["name"], doc["os"]["version"], doc["arch"]) == (os_name, version, arch)
    assert (doc["glibc"], doc["macos"], doc["nvidia"]["driver"]) == (glibc, macos, driver)
    assert doc["vm"] is vm
    assert [g["capability"] for g in doc["nvidia"]["gpus"]] == [capability] * count
    machine = machines.from_profile(doc, name)  # lock reads what the probe writes
    assert (machine.os, machine.arch, machine.driver) == (os_name, arch, driver)


@pytest.mark.parametrize(
    "path", sorted((MACHINES / "answers").glob("*.json")), ids=lambda p: p.stem
)
def test_the_committed_profiles_are_not_stale(path: Path) -> None:
    """A freshness check, not a proof: tests/fixtures/machines/regenerate.py rewrites them."""
    doc = probe_profile.machine_profile(path.stem, probe.RecordedSystem(answers(path.stem)))
    committed = json.loads((MACHINES / path.name).read_text(encoding="utf-8"))
    assert {**doc, "created": committed["created"]} == committed


def test_gpu_server_profile() -> None:
    doc = probe_profile.machine_profile(
        "gpu-old-driver", probe.RecordedSystem(answers("gpu-old-driver"))
    )
    assert (doc["os"]["name"], doc["os"]["version"], doc["arch"], doc["glibc"]) == (
        "linux",
        "22.04",
        "x86_64",
        "2.35",
    )
    assert doc["nvidia"]["driver"] == "535.183.01" and doc["nvidia"]["source"] == "nvidia-smi"
    assert [g["capability"] for g in doc["nvidia"]["gpus"]] == ["8.0"] * 8
    assert doc["vm"] is False and "avx2" in doc["cpu"]["features"]
    assert probe_profile.profile_summary(doc) == (
        "linux 22.04, x86_64, glibc 2.35, NVIDIA driver 535.183.01, "
        "8 GPU(s) (compute capability 8.0)"
    )


def test_mac_and_graviton_profiles() -> None:
    mac = probe_profile.machine_profile("m", probe.RecordedSystem(answers("mac-vm")))
    assert (mac["macos"], mac["arch"], mac["vm"], mac["rosetta"], mac["glibc"]) == (
        "15.5",
        "arm64",
        True,
        False,
        None,
    )
    graviton = probe_profile.machine_profile("g", probe.RecordedSystem(answers("graviton-al2")))
    assert (graviton["arch"], graviton["glibc"]) == ("arm64", "2.26")
    assert {"sve", "bf16", "i8mm"} <= set(graviton["cpu"]["features"])
    assert graviton["nvidia"] == {
        "driver": None,
        "gpus": [],
        "source": None,
        "error": "nvidia-smi is not installed",
    }


def with_commands(commands: dict, **files: str) -> probe.RecordedSystem:
    recorded = answers("gpu-old-driver")
    recorded["commands"] = commands
    recorded["files"] = {k: v for k, v in recorded["files"].items() if "nvidia" not in k}
    recorded["files"].update(files)
    return probe.RecordedSystem(recorded)


def test_an_old_nvidia_smi_without_compute_cap_falls_back_to_name_and_driver() -> None:
    sysm = with_commands(
        {
            SMI: {
                "error": 'nvidia-smi exited 2: Field "compute_cap" is not a valid field to query.'
            },
            SMI_OLD: {"stdout": "Tesla T4, 470.256.02\n"},
        }
    )
    nvidia = probe_profile.nvidia_profile(sysm)
    assert nvidia["driver"] == "470.256.02"
    assert nvidia["gpus"] == [{"name": "Tesla T4", "capability": None}]


def test_a_hung_nvidia_smi_leaves_the_kernel_modules_driver() -> None:
    version = "NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.15  Tue Mar  5 2024\n"
    sysm = with_commands(
        {SMI: {"error": "nvidia-smi gave no answer within 20 s"}},
        **{"/proc/driver/nvidia/version": version},
    )
    assert probe_profile.nvidia_profile(sysm) == {
        "driver": "550.54.15",
        "gpus": [],
        "source": "/proc/driver/nvidia/version",
        "error": "nvidia-smi gave no answer within 20 s",
    }


def test_profile_names_are_file_names(tmp_path: Path) -> None:
    assert probe_profile.profile_path("gpu-a100", str(tmp_path)) == str(
        tmp_path / "envs" / "machines" / "gpu-a100.json"
    )
    for bad in ("GPU", "../x", "a b", "-x", ""):
        with pytest.raises(SystemExit, match="use lowercase letters, digits and dashes"):
            probe_profile.profile_path(bad, str(tmp_path))
