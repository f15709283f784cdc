"""The three report formats (text, JSON, SARIF 2.1.0) and the rule list.

Text groups findings per file: `path:line:col RULE message [severity]` and an indented fix.
JSON is one document with a summary and a findings list. SARIF is what code-scanning services
read: every rule in `tool.driver.rules`, every finding as a result with a relative uri.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from itertools import groupby
from urllib.parse import quote

from archlock import __version__
from archlock.scan.engine import ScanResult
from archlock.scan.rules import RULES, SEVERITIES, Finding

JSON_FORMAT_VERSION = 1


def _counts(findings: tuple[Finding, ...]) -> dict[str, int]:
    return {sev: sum(f.severity == sev for f in findings) for sev in reversed(SEVERITIES)}


def summary_line(result: ScanResult) -> str:
    scanned = len(result.files)
    if not result.findings:
        return f"no findings in {scanned} file{'s' * (scanned != 1)} scanned"
    parts = [f"{n} {sev}{'s' * (n != 1)}" for sev, n in _counts(result.findings).items() if n]
    paths = {f.path for f in result.findings}
    files = len(paths & set(result.files))
    total = len(result.findings)
    line = f"{total} finding{'s' * (total != 1)} ({', '.join(parts)}) in {files} of {scanned} files"
    unlisted = len(paths - set(result.files))  # folders the scan could not list (AL001)
    return line + (f" and {unlisted} folder{'s' * (unlisted != 1)} not scanned" if unlisted else "")


def render_text(result: ScanResult) -> str:
    blocks = []
    for _path, group in groupby(result.findings, key=lambda f: f.path):
        lines = []
        for f in group:
            lines.append(f"{f.path}:{f.line}:{f.col} {f.rule_id} {f.message} [{f.severity}]")
            lines.append(f"    fix: {f.rule.fix}")
        blocks.append("\n".join(lines))
    return "".join(block + "\n\n" for block in blocks) + summary_line(result) + "\n"


def _finding_json(f: Finding) -> dict[str, object]:
    return {
        "path": f.path,
        "line": f.line,
        "col": f.col,
        "rule": f.rule_id,
        "name": f.rule.name,
        "severity": f.severity,
        "message": f.message,
        "fix": f.rule.fix,
    }


def render_json(result: ScanResult) -> str:
    document = {
        "format": "archlock-scan",
        "version": JSON_FORMAT_VERSION,
        "files_scanned": len(result.files),
        "summary": _counts(result.findings),
        "findings": [_finding_json(f) for f in result.findings],
    }
    return json.dumps(document, indent=2) + "\n"


def _sarif_rule(index: int) -> dict[str, object]:
    rule = RULES[index]
    return {
        "id": rule.id,
        "name": rule.name,
        "shortDescription": {"text": rule.doc},
        "help": {"text": f"Fix: {rule.fix}"},
        "defaultConfiguration": {"level": rule.severity},
    }


def _sarif_result(f: Finding, index: dict[str, int]) -> dict[str, object]:
    location = {
        "artifactLocation": {"uri": quote(f.path), "uriBaseId": "%SRCROOT%"},
        "region": {"startLine": f.line, "startColumn": f.col},
    }
    return {
        "ruleId": f.rule_id,
        "ruleIndex": index[f.rule_id],
        "level": f.severity,
        "message": {"text": f"{f.message}. Fix: {f.rule.fix}"},
        "locations": [{"physicalLocation": location}],
    }


def render_sarif(result: ScanResult) -> str:
    index = {rule.id: i for i, rule in enumerate(RULES)}
    driver = {
        "name": "archlock-scan",
        "version": __version__,
        "rules": [_sarif_rule(i) for i in range(len(RULES))],
    }
    run = {
        "tool": {"driver": driver},
        "columnKind": "unicodeCodePoints",
        "results": [_sarif_result(f, index) for f in result.findings],
    }
    return json.dumps({"version": "2.1.0", "runs": [run]}, indent=2) + "\n"


RENDERERS: dict[str, Callable[[ScanResult], str]] = {
    "text": render_text,
    "json": render_json,
    "sarif": render_sarif,
}


def render_rules() -> str:
    """`archlock scan --list-rules`: id, severity, name, doc and fix of every rule."""
    lines = []
    for rule in RULES:
        lines.append(f"{rule.id}  {rule.severity:<7}  {rule.name}")
        lines.append(f"    {rule.doc}")
        lines.append(f"    fix: {rule.fix}")
    return "\n".join(lines) + "\n"
