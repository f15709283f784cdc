"""Markdown for a CI job summary (`$GITHUB_STEP_SUMMARY`): one verify result, or the matrix.

A summary says what ran, where, and what did not run and why: a CUDA image verified on a runner
without a GPU says so, with the setting that would give it one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from archlock.build import cigraph
from archlock.core.project import Project

ICONS = {"pass": "pass", "fail": "**FAIL**", "skipped": "skipped"}


def cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def where_line(result: dict[str, Any]) -> str:
    """Runner, hardware, image digest and lock: the facts that make a result traceable."""
    runner, hardware = result.get("runner") or {}, result.get("hardware") or {}
    image, lock = result.get("image") or {}, result.get("lock") or {}
    parts = [f"runner {runner.get('name', '?')} ({runner.get('kind', '?')})"]
    parts.append((result.get("host") or {}).get("description", "?"))
    if hardware.get("nvidia_driver"):
        parts.append(f"NVIDIA driver {hardware['nvidia_driver']}")
    if hardware.get("macos"):
        parts.append(f"macOS {hardware['macos']}" + (" (VM)" if hardware.get("vm") else ""))
    if image:
        parts.append(f"image {image.get('digest') or image.get('id')}")
    parts.append(f"lock {lock.get('path')} sha256 {str(lock.get('sha256'))[:12]}")
    return "; ".join(cell(part) for part in parts)


def verify_markdown(result: dict[str, Any], project: Project | None = None) -> str:
    status = result.get("status", "?")
    lines = [f"### verify {result['env']} ({result.get('mode')}): {ICONS.get(status, status)}", ""]
    lines += [where_line(result), "", "| check | status | why |", "|---|---|---|"]
    for name, check in (result.get("checks") or {}).items():
        why = check.get("why", "") + (f" (fix: {check['fix']})" if check.get("fix") else "")
        lines.append(
            f"| {cell(name)} | {ICONS.get(check['status'], check['status'])} | {cell(why)} |"
        )
    ci = cigraph.load(project) if project is not None else None
    note = cigraph.device_note(result, ci)
    if note:
        lines += ["", f"> {cell(note)}"]
    return "\n".join(lines) + "\n\n"


def append(path: Path, text: str) -> None:
    """Append (the summary file collects every step's text); create it when missing."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as handle:
        handle.write(text)
