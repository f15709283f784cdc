"""Per-line suppressions: `# archlock: ignore[AL101,AL105] the reason this line is safe`.

A suppression silences the named rules on its own line (the line a finding is reported on).
It must name at least one rule and give a reason; one that does not suppresses nothing and is
reported (AL002). Unknown ids are reported (AL003), and so are ids that report nothing on
that line (AL004). Findings of these AL00x rules cannot themselves be suppressed by comment.
"""

from __future__ import annotations

import difflib
import io
import re
import tokenize
from collections.abc import Callable
from dataclasses import dataclass

from archlock.scan.rules import RULES_BY_ID, Finding

MARKER = re.compile(r"#\s*archlock:\s*ignore\b(?P<rest>.*)$")
BODY = re.compile(r"\[(?P<ids>[^\]]*)\](?P<reason>.*)$")
META_RULES = frozenset({"AL001", "AL002", "AL003", "AL004"})


@dataclass(frozen=True, kw_only=True)
class Suppression:
    line: int
    col: int
    rules: tuple[str, ...]
    reason: str


def _comments(source: str) -> list[tuple[int, int, str]]:
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (tokenize.TokenError, SyntaxError):
        return []
    return [(t.start[0], t.start[1] + 1, t.string) for t in tokens if t.type == tokenize.COMMENT]


def parse(source: str) -> list[Suppression]:
    """Every `# archlock: ignore` comment, well-formed or not (rules or reason may be empty)."""
    if "archlock:" not in source:  # the common case: skip tokenizing
        return []
    found = []
    for line, col, text in _comments(source):
        marker = MARKER.search(text)
        if not marker:
            continue
        body = BODY.match(marker.group("rest").strip())
        ids = tuple(re.findall(r"[^\s,]+", body.group("ids"))) if body else ()
        reason = body.group("reason").strip(" \t-:;,") if body else ""
        found.append(Suppression(line=line, col=col, rules=ids, reason=reason))
    return found


def _did_you_mean(rule_id: str) -> str:
    close = difflib.get_close_matches(rule_id.upper(), RULES_BY_ID, n=1)
    return f"; did you mean {close[0]}?" if close else ""


def _at(sup: Suppression, path: str, rule_id: str, message: str) -> Finding:
    return Finding(path=path, line=sup.line, col=sup.col, rule_id=rule_id, message=message)


def _problems(sup: Suppression, path: str) -> list[Finding]:
    problems = []
    if not sup.rules or not re.search(r"\w", sup.reason):
        what = "names no rule" if not sup.rules else "gives no reason"
        message = f"suppression {what}, so it suppresses nothing"
        problems.append(_at(sup, path, "AL002", message))
    for rule_id in sup.rules:
        if rule_id not in RULES_BY_ID:
            message = f"suppression names unknown rule {rule_id!r}{_did_you_mean(rule_id)}"
            problems.append(_at(sup, path, "AL003", message))
    return problems


def apply(
    findings: list[Finding], source: str, path: str, enabled: Callable[[str], bool]
) -> list[Finding]:
    """Drop suppressed findings; add findings for bad and unused suppressions."""
    kept = list(findings)
    for sup in parse(source):
        problems = _problems(sup, path)
        kept += problems
        if any(p.rule_id == "AL002" for p in problems):
            continue
        for rule_id in (r for r in sup.rules if r in RULES_BY_ID and r not in META_RULES):
            hits = [f for f in kept if f.line == sup.line and f.rule_id == rule_id]
            if hits:
                kept = [f for f in kept if f not in hits]
            elif enabled(rule_id):
                message = f"suppression of {rule_id} is unused: nothing reports it on this line"
                kept.append(_at(sup, path, "AL004", message))
    return kept
