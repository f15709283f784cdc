"""The verify result (`archlock.verify/1`, see verify.py): built, summarised, judged."""

from __future__ import annotations

import datetime
import hashlib
import os
from pathlib import Path
from typing import Any

from archlock import __version__
from archlock.core.diagnose import Context, ProbeDoc
from archlock.errors import CheckFailed
from archlock.verify.checks import Check, torch_doc
from archlock.verify.targets import Target

SCHEMA = "archlock.verify/1"


def default_output(root: Path, env: str, mode: str) -> Path:
    """`results/<env>.<mode>.json` (mode: host | image): verify on the host and verify --image of
    the same env keep a file each, so the matrix shows both columns. Which image a result came
    from is its `image.digest`; the matrix tells two images of one env apart by it."""
    return root / "results" / f"{env}.{mode}.json"


def host_description(doc: ProbeDoc) -> dict[str, Any]:
    osf, emu = doc.get("os") or {}, doc.get("emulation") or {}
    gpus = [d["name"] for d in torch_doc(doc).get("devices") or []]
    arch = emu.get("process_arch") or (doc.get("python") or {}).get("arch")
    text = f"{osf.get('distro') or osf.get('name')} {osf.get('version') or ''}".strip() + f" {arch}"
    cpu = (doc.get("machine") or {}).get("cpu_model")
    text += f", {cpu}" if cpu else ""
    text += f", {', '.join(gpus)}" if gpus else ", no GPU"
    if emu.get("emulated"):
        text += f" (emulated by {emu.get('by')} on {emu.get('host_arch')})"
    return {
        "description": text,
        "os": osf.get("name"),
        "arch": arch,
        "emulated": bool(emu.get("emulated")),
        "by": emu.get("by"),
        "gpus": gpus,
    }


def runner_facts(environ: dict[str, str] | None = None) -> dict[str, Any]:
    """Which CI runner produced the result (GitHub Actions' RUNNER_* variables), or "local"."""
    environ = dict(os.environ) if environ is None else environ
    if environ.get("GITHUB_ACTIONS") != "true":
        return {"name": "local", "kind": "not a CI runner"}
    return {
        "name": environ.get("RUNNER_NAME"),
        "kind": environ.get("RUNNER_ENVIRONMENT"),  # github-hosted | self-hosted
        "os": environ.get("RUNNER_OS"),
        "arch": environ.get("RUNNER_ARCH"),
    }


def hardware_facts(doc: ProbeDoc) -> dict[str, Any]:
    """What the matrix shows per column: CPU, GPU model and driver, macOS version, VM or not."""
    osf = doc.get("os") or {}
    return {
        "cpu": (doc.get("machine") or {}).get("cpu_model"),
        "gpus": [d["name"] for d in torch_doc(doc).get("devices") or []],
        "nvidia_driver": (doc.get("gpu") or {}).get("nvidia_driver"),
        "macos": osf.get("version") if osf.get("name") == "macos" else None,
        "vm": (doc.get("vm") or {}).get("virtual"),
    }


def file_sha256(path: Path) -> str | None:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None


def redact(value: Any, replacements: list[tuple[str, str]]) -> Any:
    """Write paths under the project as <project>/ and under home as ~/ (results get shared)."""
    if isinstance(value, str):
        for prefix, short in replacements:
            if prefix and (value == prefix or value.startswith(prefix + "/")):
                return short + value[len(prefix) :]
        return value
    if isinstance(value, list):
        return [redact(item, replacements) for item in value]
    if isinstance(value, dict):
        return {key: redact(item, replacements) for key, item in value.items()}
    return value


def build_result(
    ctx: Context,
    target: Target,
    doc: ProbeDoc,
    suite_doc: dict[str, Any] | None,
    checks: dict[str, Check],
    root: Path,
) -> dict[str, Any]:
    env = ctx.env
    status = "fail" if any(c["status"] == "fail" for c in checks.values()) else "pass"
    result = {
        "schema": SCHEMA,
        "env": env.name,
        "platform": env.platform.name,
        "accelerator": env.accelerator,
        "mode": target.mode,
        "image": target.describe(),
        "host": host_description(doc),
        "created": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "archlock": __version__,
        "lock": {"path": ctx.lock_name, "torch": ctx.pins.get("torch")},
        "runner": runner_facts(),
        "hardware": hardware_facts(doc),
        "device": (suite_doc or {}).get("device"),
        "status": status,
        "checks": checks,
        "probe": doc,
        "suite": suite_doc,
    }
    redacted: dict[str, Any] = redact(result, [(str(root), "<project>"), (str(Path.home()), "~")])
    return redacted


def summary(result: dict[str, Any]) -> str:
    lines = [f"verify {result['env']} ({result['mode']}, {result['host']['description']}):"]
    for name, check in result["checks"].items():
        lines.append(f"  {check['status']:<8} {name:<16} {check['why']}")
    for name, check in result["checks"].items():
        if check["status"] == "fail":
            lines.append(f"  fix {name}: {check['fix']}")
    return "\n".join(lines)


def raise_on_failure(result: dict[str, Any], output: Path) -> None:
    bad = [(name, c) for name, c in result["checks"].items() if c["status"] == "fail"]
    if bad:
        first, check = bad[0]
        raise CheckFailed(
            f"{result['env']}: {len(bad)} check(s) failed ({', '.join(n for n, _ in bad)}); "
            f"first: {first}: {check['why']}; result in {output}",
            fix=check["fix"],
        )
