"""Running probe.py, suite.py and the project's tests in a target, and reading what they print."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, cast

from archlock.core.diagnose import ProbeDoc
from archlock.verify.checks import Check, failed, passed
from archlock.verify.targets import Target, telling_line


def parse_json_output(text: str) -> dict[str, Any] | None:
    """The JSON document a script printed (ignoring anything printed before it)."""
    for start in [m.start() for m in re.finditer(r"^\{", text, re.MULTILINE)]:
        try:
            value, _ = json.JSONDecoder().raw_decode(text[start:])
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    return None


def run_script(target: Target, script: str, *args: str) -> tuple[dict[str, Any] | None, str]:
    """The document `script`.py printed in the target, else None and why."""
    done = target.run_script(script, *args)
    doc = parse_json_output(done.stdout)
    if doc is None:
        refusal = target.refusal(done)
        if refusal is not None:
            raise refusal
        return None, f"{script}.py exited {done.returncode} without a result: {telling_line(done)}"
    return doc, ""


def run_probe(target: Target) -> tuple[ProbeDoc | None, str]:
    """probe.py's document (read as archlock.probe/1: the diagnosis checks each section it
    reads), else None and why."""
    doc, error = run_script(target, "probe")
    return cast(ProbeDoc | None, doc), error


def run_project_tests(target: Target, root: Path) -> Check:
    done = target.run_tests(root)
    lines = [line for line in done.stdout.strip().splitlines() if line.strip()]
    last = lines[-1] if lines else (done.stderr.strip().splitlines() or ["no output"])[-1]
    if done.returncode == 0:
        return passed(f"pytest: {last}")
    if "No module named pytest" in done.stderr:
        return failed(
            "pytest is not installed in the env", "add pytest to a dependency group the envs lock"
        )
    return failed(
        f"pytest exited {done.returncode}: {last}",
        "run the project's tests in this env and fix them",
    )


def suite_args(probe_doc: ProbeDoc | None, device: str | None, skip: list[str]) -> list[str]:
    args: list[str] = []
    if probe_doc and (probe_doc.get("emulation") or {}).get("emulated"):
        args.append("--emulated")
    if probe_doc and (probe_doc.get("vm") or {}).get("virtual"):
        args.append("--virtual-machine")
    if device:
        args += ["--device", device]
    for name in skip:
        args += ["--skip", name]
    return args
