"""The diagnosis as Markdown (`archlock repro --markdown FILE`): the drift list, the
reproduction, and the bisect verdict with every trial, from the archlock.repro/1 document."""

from __future__ import annotations

from typing import Any


def cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def drift_part(result: dict[str, Any]) -> list[str]:
    out = [f"## Drift from {result['lock']['path']} ({len(result['drift'])})", ""]
    for number, drift in enumerate(result["drift"], 1):
        out.append(f"{number}. **[{drift['kind']}]** {drift['title']}  \n   fix: `{drift['fix']}`")
    return out + ([] if result["drift"] else ["No drift: the env matches its lock."]) + [""]


def bisect_part(found: dict[str, Any]) -> list[str]:
    out = ["## Which drift breaks it", "", f"**{found['status']}**: {found['text']}", ""]
    if found.get("fix"):
        out += [f"Fix: `{found['fix']}`", ""]
    for line in found.get("outside") or []:
        out.append(f"- {line}")
    if found.get("outside"):
        out.append("")
    drift_set = found.get("drift_set") or []
    out.append(
        f"Drift set: {len(drift_set)} item(s); untestable: {len(found.get('untestable') or [])}"
    )
    out += [f"- not replayed: {u['title']}: {u['why']}" for u in found.get("untestable") or []]
    out += ["", "| trial | phase | drift applied | outcome | exit | seconds | why |"]
    out.append("| --- | --- | --- | --- | --- | --- | --- |")
    for entry in found.get("trials") or []:
        applied = ", ".join(entry["drift"]) or "none (the locked env)"
        out.append(
            f"| {entry['trial']} | {entry.get('phase', '')} | {cell(applied)} | {entry['outcome']} "
            f"| {entry['exit_code']} | {entry['seconds']} | {cell(entry['why'])} |"
        )
    return out + ["", f"{found.get('trial_count', 0)} trials, {found.get('seconds', 0)} s"]


def render(result: dict[str, Any]) -> str:
    head = [
        f"# archlock repro: {result['report']}",
        "",
        f"env: {result['env']} ({result['matched_by']})",
        "",
    ]
    out = head + drift_part(result)
    again = result.get("reproduction")
    if again:
        out += ["## Reproduction", "", f"**{again.get('status')}**: {again.get('text')}", ""]
    if result.get("bisect"):
        out += bisect_part(result["bisect"])
    return "\n".join(out).rstrip() + "\n"
