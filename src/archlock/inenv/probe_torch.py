"""The probe's torch facts: what torch says about itself and its GPUs, read in a child process
(probe.py `--torch-only`) so that a crash on import is a fact, not the probe's own.

Standard library only (torch is imported inside a function), Python >= 3.8, loaded by probe.py as
a sibling (see probe.py).
"""

from __future__ import annotations

# its siblings, the same way inside the package and in a plain-file copy (see inenv/__init__.py)
from . import probe_system as system

# ---------------------------------------------------------------------------------------------
# torch: imported in a child process, so a crash on import (SIGILL, SIGSEGV) is a fact, not ours
# ---------------------------------------------------------------------------------------------


def cuda_arch_supported(capability: str, arch_list: list[str]) -> bool:
    """Can a build with these `-gencode` targets run on a GPU of this capability ("8.6")?
    sm_XY cubins run on the same major with an equal or higher minor; compute_XY PTX JIT-compiles
    for any capability >= XY; arch-specific targets (sm_90a) run only on that exact capability."""
    major, minor = (int(part) for part in capability.split("."))
    for target in arch_list:
        kind, _, digits = target.partition("_")
        specific = digits[-1:].isalpha()
        digits = digits.rstrip("abcdefghijklmnopqrstuvwxyz")
        if not digits.isdigit() or len(digits) < 2:
            continue
        t_major, t_minor = int(digits[:-1]), int(digits[-1])
        if specific:
            if (t_major, t_minor) == (major, minor):
                return True
        elif (
            kind == "sm"
            and t_major == major
            and t_minor <= minor
            or kind == "compute"
            and (t_major, t_minor) <= (major, minor)
        ):
            return True
    return False


def _cuda_devices(torch, arch_list: list[str]) -> list[dict]:
    devices = []
    for index in range(torch.cuda.device_count()):
        major, minor = torch.cuda.get_device_capability(index)
        capability = "%d.%d" % (major, minor)
        devices.append(
            {
                "index": index,
                "name": torch.cuda.get_device_name(index),
                "capability": capability,
                "supported": cuda_arch_supported(capability, arch_list),
            }
        )
    return devices


def torch_facts_here() -> dict:
    """Import torch in this process and describe it (the child side of `torch_facts`)."""
    try:
        import torch
    except Exception as exc:  # noqa: BLE001 - any import failure is a fact to report
        return {"importable": False, "error": system.one_line(exc)}
    facts = {
        "importable": True,
        "version": torch.__version__,
        "local": torch.__version__.partition("+")[2] or None,
        "git_version": getattr(torch.version, "git_version", None),
        "cuda": torch.version.cuda,
        "hip": getattr(torch.version, "hip", None),
    }
    facts["cudnn"] = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    facts["arch_list"] = torch.cuda.get_arch_list() if facts["cuda"] else []
    facts["cuda_available"] = bool(torch.cuda.is_available())
    facts["device_count"] = torch.cuda.device_count() if facts["cuda_available"] else 0
    facts["devices"] = _cuda_devices(torch, facts["arch_list"]) if facts["cuda_available"] else []
    mps = getattr(torch.backends, "mps", None)
    facts["mps_built"] = bool(mps and mps.is_built())
    facts["mps_available"] = bool(mps and mps.is_available())
    facts["num_threads"] = torch.get_num_threads()
    return facts
