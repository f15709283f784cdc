"""verify's checks: the diagnosis (archlock.core.diagnose) and the suite's answers as checks.

Each check is `{status: "pass"|"fail"|"skipped", why, fix (failures only), ...facts}`.
"""

from __future__ import annotations

from typing import Any

from archlock.core import diagnose
from archlock.core.diagnose import Context, ProbeDoc, Section
from archlock.core.platforms import ACCELERATOR_TABLE, Accelerator
from archlock.core.spec import EnvSpec
from archlock.inenv.locate import build_of, build_text

Check = dict[str, Any]


def passed(why: str, **facts: Any) -> Check:
    return {"status": "pass", "why": why, **facts}


def failed(why: str, fix: str, **facts: Any) -> Check:
    return {"status": "fail", "why": why, "fix": fix, **facts}


def skipped(why: str, **facts: Any) -> Check:
    return {"status": "skipped", "why": why, **facts}


Findings = list[diagnose.Finding]


def first(findings: Findings, *kinds: str) -> diagnose.Finding | None:
    return next((f for f in findings if f.kind in kinds and f.severity == "error"), None)


def check_interpreter(doc: ProbeDoc, findings: Findings) -> Check:
    found = first(findings, "platform", "interpreter-arch", "python-version")
    if found:
        return failed(found.why, found.fix)
    python = doc.get("python") or {}
    name = python.get("implementation", "python")
    return passed(f"{name} {python.get('version')} runs as {python.get('arch')}")


def check_emulation(doc: ProbeDoc, findings: Findings, ctx: Context) -> Check:
    facts = doc.get("emulation") or {}
    found = first(findings, "emulation")
    if found:
        return failed(found.why, found.fix)
    if not facts.get("emulated"):
        return passed(f"native on {facts.get('host_arch') or 'this'} hardware", summary="native")
    by, host = facts.get("by"), facts.get("host_arch")
    arch = first(findings, "interpreter-arch")
    if arch and not ctx.emulation_expected:  # an interpreter of the wrong architecture
        return failed(f"this interpreter runs under {by} on a {host} host", arch.fix)
    return passed(
        f"emulated by {by} on a {host} host, as expected for an image of another platform",
        summary=f"{by} on {host}, expected",
    )


def check_macos_floor(doc: ProbeDoc, findings: Findings, ctx: Context) -> Check | None:
    floor = diagnose.macos_floor(ctx.env, ctx.pins)
    if floor is None:
        return None
    found = first(findings, "macos-floor")
    if found:
        return failed(found.why, found.fix)
    return passed(f"macOS {(doc.get('os') or {}).get('version')} >= {floor[0]}")


def check_machine(doc: ProbeDoc, ctx: Context) -> Check:
    """The locked wheels' glibc floor against this machine. The lock's other needs each have
    one check: the macOS floor `macos`, the NVIDIA driver and the GPU's kernels `device`."""
    if ctx.expect is None:
        return skipped("no lock to take the build's needs from")
    found = diagnose.check_glibc(doc, ctx)
    if found:
        return failed(found[0].why, found[0].fix)
    floor = ctx.expect.glibc
    if floor is None:
        return passed("meets the lock's needs: its wheels set no glibc floor")
    return passed(f"meets the lock's needs: glibc >= {floor.version}")


def check_native_binaries(doc: ProbeDoc, findings: Findings) -> Check:
    scan = doc.get("binaries") or {}
    if "skipped" in scan or "foreign_total" not in scan:
        return failed("the compiled-file scan did not run", "run the probe without --no-scan")
    found = first(findings, "compiled-arch")
    if found:
        return failed(found.why, found.fix, foreign=found.data["foreign"])
    count, want = scan.get("compiled", 0), scan.get("expected_arch")
    return passed(f"{count} compiled files, all {want}", summary=f"{count} files, all {want}")


def check_packages(findings: Findings, ctx: Context) -> Check:
    missing, wrong = first(findings, "packages-missing"), first(findings, "packages-different")
    extra: list[str] = next((f.data["names"] for f in findings if f.kind == "packages-extra"), [])
    if missing or wrong:
        parts = [f"missing {', '.join(missing.data['names'][:5])}"] if missing else []
        parts += [f"different {', '.join(wrong.data['names'][:5])}"] if wrong else []
        why = f"installed packages differ from {ctx.lock_name}: {'; '.join(parts)}"
        return failed(why, ctx.resync, extra=extra)
    return passed(
        f"all {len(ctx.pins)} locked packages installed at their locked versions", extra=extra
    )


def check_imports(doc: ProbeDoc, findings: Findings) -> Check:
    """Every installed distribution's top-level modules import (torch: torch_version)."""
    facts = doc.get("imports") or {}
    error = (doc.get("errors") or {}).get("imports")
    if error:
        return failed(f"the import check did not run: {error}", "run the probe in this env")
    if "checked" not in facts:
        return skipped(f"not probed ({facts.get('skipped') or 'an older probe'})")
    found = first(findings, "packages-import")
    if found:
        return failed(found.why, found.fix, failed=found.data["failed"])
    count, unchecked = facts["checked"], facts.get("unchecked") or []
    late = f"; {len(unchecked)} not checked: the time ran out" if unchecked else ""
    return passed(f"all {count} top-level modules import{late}", summary=f"{count} modules")


def torch_doc(doc: ProbeDoc) -> Section:
    return doc.get("torch") or {}


def check_torch_version(doc: ProbeDoc, findings: Findings, ctx: Context) -> Check:
    facts, locked = torch_doc(doc), ctx.pins.get("torch")
    broken, torch = first(findings, "torch-import"), first(findings, "torch")
    if broken:
        return failed(broken.why, broken.fix)
    if torch and torch.found is None:
        return failed(torch.why, torch.fix)
    if torch and torch.data["version"]:
        return failed(
            f"torch {torch.data['have']} is installed; {ctx.lock_name} pins {locked}", torch.fix
        )
    if not facts.get("importable"):
        return failed(f"torch does not import: {facts.get('error', 'not probed')}", ctx.resync)
    return passed(f"torch {facts['version']}" + (f" as locked ({locked})" if locked else ""))


def check_torch_build(doc: ProbeDoc, findings: Findings) -> Check:
    torch = first(findings, "torch")
    if torch and torch.data.get("build"):
        return failed(f"torch {torch.data['shown']}; {torch.data['build']}", torch.fix)
    facts = torch_doc(doc)
    if not facts.get("importable"):
        return skipped("torch does not import (see torch_version)")
    build, cuda = build_of(facts, facts.get("version"))
    have = build_text(build or "cpu", cuda)
    return passed(f"torch {facts['version']} ({have})", summary=f"{facts['version']}, {have}")


def check_device(
    env: EnvSpec,
    doc: ProbeDoc,
    suite_doc: dict[str, Any] | None,
    findings: Findings,
    ctx: Context,
) -> Check:
    facts, want = torch_doc(doc), ACCELERATOR_TABLE[env.expect_device]
    ran = (suite_doc or {}).get("device")
    if not facts.get("importable"):
        return skipped("torch does not import (see torch_version)")
    if want.available and not facts.get(want.available):
        return device_missing(want, findings, ctx)
    unsupported = first(findings, "cuda-arch")
    if unsupported:
        return failed(unsupported.why, unsupported.fix)
    unusable = suite_unusable(suite_doc).get(want.name)
    if unusable:
        return reported_but_unusable(want, doc, unusable)
    if ran != want.name:
        return failed(
            f"the suite ran on {ran}, {env.name} expects {want.name}",
            f"unset ARCHLOCK_DEVICE / --device, or check the {want.name} runtime",
        )
    names = ", ".join(d["name"] for d in facts.get("devices") or [])
    if names:
        return passed(f"the suite trained on {ran} ({names})", summary=f"{ran}: {names}")
    return passed(f"the suite trained on {ran}", summary=ran)


def device_missing(want: Accelerator, findings: Findings, ctx: Context) -> Check:
    if want.cuda and ctx.host_gpu:
        driver = first(findings, "cuda-driver")
        if driver:
            return failed(driver.why, driver.fix)
        return failed(
            "an NVIDIA driver is loaded but torch.cuda.is_available() is False",
            "check the driver supports this CUDA build (nvidia-smi) "
            "and that the GPU is visible (--gpus all)",
        )
    exercised = f"the {want.name.upper()} device path was not exercised"
    return skipped(f"{want.unavailable}; {exercised}, build checks still apply")


def suite_unusable(suite_doc: dict[str, Any] | None) -> dict[str, str]:
    """Devices torch reported that failed the suite's small op, with the error (suite.py)."""
    device = ((suite_doc or {}).get("checks") or {}).get("device") or {}
    return device.get("unusable") or {}


UNUSABLE_FIX = {
    "cuda": "check the driver supports this CUDA build (nvidia-smi) and that the GPU is healthy",
    "mps": "run on Apple Silicon outside a VM, on macOS >= 12.3, with torch's MPS build",
}


def reported_but_unusable(want: Accelerator, doc: ProbeDoc, why: str) -> Check:
    """A device torch reports but cannot compute on: a failure, except MPS on a virtual Mac
    (Apple's Virtualization framework gives no usable GPU; hosted macOS runners are VMs)."""
    if want.name == "mps" and (doc.get("vm") or {}).get("virtual"):
        return skipped(
            f"virtual Mac: MPS unusable ({why}); the MPS path needs a real Apple Silicon machine"
        )
    return failed(
        f"{want.name.upper()} is reported available but cannot run a kernel: {why}",
        UNUSABLE_FIX.get(want.name, "check the device's driver and runtime"),
    )


def required(check: Check, want: str, require_device: bool) -> Check:
    """With --require-device (a GPU or real-Mac runner), a skipped device path is a failure."""
    if check["status"] != "skipped" or not require_device:
        return check
    return failed(
        f"the {want} device path is required here (--require-device) but did not run: "
        + check["why"],
        f"run this job on a machine whose {want} device works (see [tool.archlock.ci] runners)",
    )


SUITE_FIXES = {
    "device": "unset ARCHLOCK_DEVICE or pass a device this host has",
    "sdpa": "check the torch build's attention kernels (and flash-attn's build, if installed)",
    "compile": "see the error; install a C++ compiler (CPU) or triton (CUDA), "
    "or report it upstream",
    "autocast": "check the torch build supports autocast on this device",
    "distributed": "check that localhost TCP works and the backend is built (gloo / nccl)",
    "training": "the tiny training run failed: see the error and the torch build",
    "loss_parity": "device numerics differ from CPU: "
    "check the torch build and TF32 / determinism settings",
    "checkpoint": "a checkpoint saved on the device does not load on CPU: "
    "check torch.save / torch.load",
}
FAULT_FIX = "unset ARCHLOCK_SUITE_FAULT: it is a test hook that forces this failure"


def suite_checks(suite_doc: dict[str, Any] | None, error: str) -> dict[str, Check]:
    if suite_doc is None or suite_doc.get("error"):
        why = error or (suite_doc or {}).get("error") or "the suite did not run"
        return {"suite": failed(why, "make torch import in this env, then verify again")}
    out = {}
    for name, check in suite_doc.get("checks", {}).items():
        key = "suite_device" if name == "device" else name
        out[key] = {k: v for k, v in check.items() if k in ("status", "why")}
        if check["status"] == "fail":
            fault = suite_doc.get("fault") and name == "loss_parity"
            out[key]["fix"] = (
                FAULT_FIX if fault else SUITE_FIXES.get(name, "see the suite's output")
            )
    return out


def compare(
    ctx: Context, doc: ProbeDoc, suite_doc: dict[str, Any] | None, suite_error: str = ""
) -> dict[str, Check]:
    findings = diagnose.diagnose(doc, ctx)
    checks: dict[str, Check] = {
        "interpreter": check_interpreter(doc, findings),
        "emulation": check_emulation(doc, findings, ctx),
    }
    floor = check_macos_floor(doc, findings, ctx)
    if floor:
        checks["macos"] = floor
    checks["native_binaries"] = check_native_binaries(doc, findings)
    checks["packages"] = check_packages(findings, ctx)
    checks["imports"] = check_imports(doc, findings)
    checks["torch_version"] = check_torch_version(doc, findings, ctx)
    checks["torch_build"] = check_torch_build(doc, findings)
    checks["device"] = check_device(ctx.env, doc, suite_doc, findings, ctx)
    checks.update(suite_checks(suite_doc, suite_error))
    return checks
