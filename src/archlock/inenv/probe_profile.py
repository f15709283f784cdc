"""The probe's machine profile (`probe.py --profile NAME`): what this machine imposes on the builds
it must run, for `envs/machines/NAME.json` (schema archlock.machine/1, read by
archlock.lock.machines).

Standard library only, Python >= 3.8, loaded by probe.py as a sibling (see probe.py).
"""

from __future__ import annotations

import os

# its siblings, the same way inside the package and in a plain-file copy (see inenv/__init__.py)
from . import probe_system as system

PROFILE_SCHEMA = "archlock.machine/1"
NVIDIA_SMI_TIMEOUT = 20.0
NVIDIA_QUERY = [
    "nvidia-smi",
    "--query-gpu=name,compute_cap,driver_version",
    "--format=csv,noheader",
]
NVIDIA_QUERY_OLD = ["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"]
# CPU features torch's kernels dispatch on, by the /proc/cpuinfo line that lists them
CPU_FEATURES = {
    "flags": frozenset(  # x86
        [
            "sse4_2",
            "avx",
            "avx2",
            "fma",
            "f16c",
            "avx512f",
            "avx512bw",
            "avx512vl",
            "avx512_vnni",
            "avx512_bf16",
            "avx512_fp16",
            "amx_tile",
            "amx_bf16",
            "amx_int8",
        ]
    ),
    "Features": frozenset(
        ["asimd", "asimddp", "asimdhp", "fphp", "sve", "sve2", "bf16", "i8mm", "sme"]
    ),  # arm64
}
MAC_FEATURES = {
    "hw.optional.AdvSIMD": "asimd",
    "hw.optional.arm.FEAT_DotProd": "asimddp",
    "hw.optional.arm.FEAT_FP16": "fphp",
    "hw.optional.arm.FEAT_BF16": "bf16",
    "hw.optional.arm.FEAT_I8MM": "i8mm",
    "hw.optional.arm.FEAT_SME": "sme",
}
PROFILE_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-")


def cpu_features(sysm: system.System) -> list[str]:
    if sysm.system() == "Darwin":
        return sorted(name for key, name in MAC_FEATURES.items() if sysm.sysctl(key) == 1)
    found: set[str] = set()
    for line in (sysm.read_text("/proc/cpuinfo") or "").splitlines():
        key, sep, value = line.partition(":")
        wanted = CPU_FEATURES.get(key.strip()) if sep else None
        if wanted:
            found.update(word for word in value.split() if word in wanted)
    return sorted(found)


def parse_nvidia_smi(text: str, with_capability: bool) -> tuple[str | None, list[dict]]:
    """(driver, gpus) from `nvidia-smi --query-gpu=... --format=csv,noheader` lines."""
    driver, gpus = None, []
    for line in text.strip().splitlines():
        cells = [cell.strip() for cell in line.split(",")]
        if with_capability and len(cells) >= 3:
            name, capability, driver = cells[0], cells[1], cells[2]
        elif not with_capability and len(cells) >= 2:
            name, capability, driver = cells[0], None, cells[1]
        else:
            continue
        valid = capability and capability.replace(".", "", 1).isdigit()
        gpus.append({"name": name, "capability": capability if valid else None})
    return driver, gpus


def nvidia_profile(sysm: system.System) -> dict:
    """Driver and every GPU's compute capability from nvidia-smi (with a time limit); older
    drivers cannot report compute_cap, and without nvidia-smi the kernel module still names
    the driver."""
    text, error = sysm.command(NVIDIA_QUERY, NVIDIA_SMI_TIMEOUT)
    with_capability = text is not None
    if text is None and error and "exited" in error:
        text, _ = sysm.command(NVIDIA_QUERY_OLD, NVIDIA_SMI_TIMEOUT)
    if text is not None:
        driver, gpus = parse_nvidia_smi(text, with_capability)
        if driver:
            return {"driver": driver, "gpus": gpus, "source": "nvidia-smi", "error": None}
    driver = system.nvidia_driver(sysm)
    source = "/proc/driver/nvidia/version" if driver else None
    return {"driver": driver, "gpus": [], "source": source, "error": error}


def machine_profile(name: str, sysm: system.System | None = None) -> dict:
    """What this machine imposes: OS, glibc, CPU, NVIDIA driver and GPUs, macOS, Rosetta/VM."""
    import datetime

    sysm = sysm or system.System()
    osf = system.os_facts(sysm)
    emulation = system.emulation_facts(sysm, sysm.archs(sysm.executable()))
    libc = sysm.libc() if sysm.system() == "Linux" else None
    mac = sysm.system() == "Darwin"
    return {
        "schema": PROFILE_SCHEMA,
        "name": name,
        "created": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "os": {"name": osf["name"], "version": osf.get("version"), "distro": osf.get("distro")},
        "arch": emulation.get("host_arch") or emulation.get("process_arch"),
        "glibc": libc["version"] if libc and libc.get("name") == "glibc" else None,
        "macos": osf.get("version") if mac else None,
        "rosetta": emulation.get("by") == "rosetta",
        "vm": system.vm_facts(sysm)["virtual"],
        "cpu": {
            "model": system.cpu_model(sysm),
            "count": sysm.cpu_count(),
            "features": cpu_features(sysm),
        },
        "nvidia": nvidia_profile(sysm)
        if not mac
        else {"driver": None, "gpus": [], "source": None, "error": None},
    }


def profile_path(name: str, project: str | None) -> str:
    if not name or name[0] == "-" or not set(name) <= PROFILE_NAME_CHARS or len(name) > 63:
        raise SystemExit(
            "probe: --profile %r: use lowercase letters, digits and dashes (e.g. gpu-a100)" % name
        )
    return os.path.join(project or os.getcwd(), "envs", "machines", name + ".json")


def profile_summary(doc: dict) -> str:
    parts = ["%s %s" % (doc["os"]["name"], doc["os"].get("version") or "?"), doc["arch"] or "?"]
    parts += ["glibc " + doc["glibc"]] if doc.get("glibc") else []
    nvidia = doc["nvidia"]
    if nvidia.get("driver"):
        caps = sorted({g["capability"] or "?" for g in nvidia["gpus"]})
        parts.append("NVIDIA driver %s" % nvidia["driver"])
        parts.append("%d GPU(s) (compute capability %s)" % (len(nvidia["gpus"]), ", ".join(caps)))
    parts += ["VM"] if doc.get("vm") else []
    parts += ["Rosetta"] if doc.get("rosetta") else []
    return ", ".join(parts)
