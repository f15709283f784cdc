"""The suite's device: which of CUDA > MPS > CPU torch reports, which of those can compute, and the
one it runs on; and the shape every check returns (`result`).

Standard library only (torch is passed in), Python >= 3.8, loaded by suite.py as a sibling (see
suite.py).
"""

from __future__ import annotations

import math
import platform

DEVICE_ENV = "ARCHLOCK_DEVICE"


def one_line(exc: BaseException) -> str:
    text = ("%s: %s" % (type(exc).__name__, exc)).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__


def result(status: str, why: str, **facts) -> dict:
    out = {"status": status, "why": why}
    out.update(facts)
    return out


# ---------------------------------------------------------------------------------------------
# device
# ---------------------------------------------------------------------------------------------


def mps_available(torch) -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def available_devices(torch) -> dict[str, bool]:
    """What torch reports; not yet whether the device can compute (see device_unusable)."""
    return {"cuda": bool(torch.cuda.is_available()), "mps": mps_available(torch), "cpu": True}


def device_unusable(torch, device: str) -> str | None:
    """None when a small op on `device` gives the CPU's numbers, else why not (one line).

    A reported device is not a usable one: a virtual Mac reports MPS and cannot allocate on it,
    a GPU without kernels for its architecture reports CUDA and fails at the first launch."""
    try:
        x = torch.arange(16, dtype=torch.float32).reshape(4, 4) / 7.0
        expected = float((x @ x.t() + 1.0).sum().item())
        on_device = x.to(device)
        got = float((on_device @ on_device.t() + 1.0).sum().item())  # .item() waits for the kernel
    except Exception as exc:  # noqa: BLE001 - the reason is the result
        return one_line(exc)
    if not math.isfinite(got) or abs(got - expected) > 1e-4 * max(1.0, abs(expected)):
        return "a 4x4 matmul gave %r, the CPU %r" % (got, expected)
    return None


def device_problems(unusable: dict, virtual: bool) -> tuple[str, list[str]]:
    """("fail" | "skipped" | "pass", reasons) for the reported devices that cannot compute.
    Only MPS on a virtual machine is excused: Apple's Virtualization framework gives no usable
    GPU, so a hosted macOS runner cannot run the MPS path; anywhere else it is a failure."""
    reasons, excused = [], True
    for name, why in sorted(unusable.items()):
        if name == "mps" and virtual:
            reasons.append("virtual Mac: MPS unusable (%s)" % why)
        else:
            excused = False
            reasons.append("%s is reported available but cannot run a kernel: %s" % (name, why))
    if not reasons:
        return "pass", []
    return ("skipped" if excused else "fail"), reasons


def select_device(torch, requested: str | None, virtual: bool = False) -> tuple[str, dict]:
    """(device, check): the requested device, else the first of CUDA > MPS > CPU that is reported
    AND computes a small op like the CPU; a reported device that cannot is named with its error."""
    found = available_devices(torch)
    unusable = {}
    for name in ("cuda", "mps"):
        why = device_unusable(torch, name) if found[name] else None
        if why:
            unusable[name] = why
    usable = {name: found[name] and name not in unusable for name in found}
    facts = {"available": found, "usable": usable, "unusable": unusable}
    status, reasons = device_problems(unusable, virtual)
    if requested:
        if usable.get(requested):
            return requested, result("pass", "%s requested and usable" % requested, **facts)
        why = "%s requested (--device / %s) but not usable here; ran on cpu" % (
            requested,
            DEVICE_ENV,
        )
        return "cpu", result("fail", "; ".join([why] + reasons), **facts)
    device = next(name for name in ("cuda", "mps", "cpu") if usable[name])
    why = "auto: first usable of cuda > mps > cpu"
    if reasons:
        why = "%s; ran on %s" % ("; ".join(reasons), device)
    return device, result(status, why, name=device_name(torch, device), **facts)


def device_name(torch, device: str) -> str:
    if device == "cuda" and torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    if device == "mps":
        return "Apple GPU (MPS)"
    return platform.processor() or platform.machine()
