"""Drift between a teammate's report and the lock of the env it was meant to follow.

The diagnosis is archlock.core.diagnose's (the same one verify renders as checks); here each
finding becomes a `Drift`: kind, rank, title, fix and details, most likely cause first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from archlock.core import diagnose as engine
from archlock.core import envvars
from archlock.core.rules.build import Expectations
from archlock.core.spec import EnvSpec


@dataclass(frozen=True)
class Drift:
    kind: str
    title: str
    fix: str
    details: tuple[str, ...] = ()

    @property
    def rank(self) -> int:
        return engine.RANK[self.kind]

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "rank": self.rank + 1,
            "title": self.title,
            "fix": self.fix,
            "details": list(self.details),
        }


@dataclass(frozen=True)
class Target:
    """The env a report is compared with, and its lock as this checkout has it."""

    env: EnvSpec
    lock_rel: str  # envs/locks/<env>.txt
    lock_sha256: str
    pins: dict[str, str]  # canonical name -> version
    project_name: str
    notes: list[str] = field(default_factory=list)
    expect: Expectations | None = None  # the lock's torch build and needs (archlock.lock.expect)


def resync(target: Target) -> str:
    sync = f"uv pip sync --require-hashes {target.lock_rel}"
    if target.env.platform.native_setup:
        setup = target.env.platform.native_setup
        return f"rebuild the env natively from its lock: {setup} (or {sync})"
    return f"in the env: {sync}"


def context(report: dict[str, Any], target: Target) -> engine.Context:
    """What the diagnosis needs besides the report: the lock and repro's own fixes."""
    other = report.get("platform") or (report["probe"].get("os") or {}).get("name")
    return engine.Context(
        env=target.env,
        pins=target.pins,
        lock_name=target.lock_rel,
        resync=resync(target),
        project_name=target.project_name,
        elsewhere=f"compare with an env for {other}: archlock repro REPORT --env NAME",
        reinstall=f"uv pip sync --require-hashes --reinstall {target.lock_rel}",
        expect=target.expect,
    )


def diagnose(report: dict[str, Any], target: Target) -> list[Drift]:
    """Every drift, most likely cause first (the order of archlock.core.diagnose.KINDS)."""
    findings = engine.diagnose(report["probe"], context(report, target))
    return [Drift(f.kind, f.why, f.fix, f.details) for f in findings]


def ignored_env(report: dict[str, Any], target: Target) -> list[str]:
    """Variables set in the report that have no effect on this platform (shown as notes)."""
    return envvars.ignored_env(report["probe"], target.env)
