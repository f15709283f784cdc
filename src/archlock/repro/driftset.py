"""The drift set `repro --bisect` narrows: every single difference between a report and its lock.

Where `archlock.repro.drift` groups findings for people (all version changes in one line), this
splits them into items a trial can apply one by one over the locked env: a package at another
version, an extra package, a missing package, a recorded environment variable. What a container
cannot replay (a foreign compiled file, a local build that is not on PyPI) is kept apart as
`untestable`, so a verdict can name it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from archlock.core.diagnose import TOOLING
from archlock.core.lockfile import canonical, same_version
from archlock.repro.drift import Target
from archlock.repro.run import NOT_CARRIED


@dataclass(frozen=True)
class Change:
    kind: str  # "version" | "extra" | "missing" | "env" | "binary" | "python"
    name: str  # the canonical package name, the variable, or the file
    report: str | None  # the teammate's value (None: missing there)
    lock: str | None  # the lock's value (None: not in the lock / unset)

    @property
    def title(self) -> str:
        if self.kind == "version":
            return f"{self.name} {self.report} (lock {self.lock})"
        if self.kind == "extra":
            return f"{self.name} {self.report} (not in the lock)"
        if self.kind == "missing":
            return f"{self.name} missing (lock {self.lock})"
        if self.kind == "env":
            return f"{self.name}={self.report} (unset in the locked env)"
        if self.kind == "python":
            return f"Python {self.report} (lock {self.lock})"
        return f"foreign binary {self.name} ({self.report})"

    @property
    def without(self) -> str:
        """How the locked env differs, in words: "with the locked numpy"."""
        if self.kind in ("version", "missing"):
            return f"with the locked {self.name}"
        if self.kind == "env":
            return f"without {self.name}"
        return f"without {self.name}"

    @property
    def fix(self) -> str:
        if self.kind in ("version", "missing"):
            return f"uv pip install {self.name}=={self.lock}"
        if self.kind == "extra":
            return f"uv pip uninstall {self.name}"
        if self.kind == "env":
            return f"unset {self.name}"
        return f"reinstall the package holding {self.name} from the lock"

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "report": self.report,
            "lock": self.lock,
            "title": self.title,
            "fix": self.fix,
        }


@dataclass(frozen=True)
class DriftSet:
    changes: tuple[Change, ...]  # what a trial can apply
    untestable: tuple[tuple[Change, str], ...]  # (change, why a container cannot apply it)


def installed(report: dict[str, Any]) -> dict[str, str]:
    return {
        canonical(dist["name"]): dist["version"]
        for dist in report["probe"].get("distributions") or []
    }


def package_changes(report: dict[str, Any], target: Target) -> list[Change]:
    have = installed(report)
    own = canonical(target.project_name) if target.project_name else ""
    out = []
    for name in sorted(set(have) | set(target.pins)):
        if name == own or (name in TOOLING and name not in target.pins):
            continue
        theirs, ours = have.get(name), target.pins.get(name)
        if theirs is None:
            out.append(Change("missing", name, None, ours))
        elif ours is None:
            out.append(Change("extra", name, theirs, None))
        elif not same_version(theirs, ours):
            out.append(Change("version", name, theirs, ours))
    return out


def env_changes(report: dict[str, Any]) -> list[Change]:
    env = report["probe"].get("env") or {}
    return [Change("env", name, str(env[name]), None) for name in sorted(env)]


def drift_set(report: dict[str, Any], target: Target, left_out: dict[str, str]) -> DriftSet:
    """Every single drift; `left_out` (canonical name -> why) holds the report's pins a trial
    cannot install (repro.run's preflight and local-build rules)."""
    changes, untestable = [], []
    for change in package_changes(report, target) + env_changes(report):
        if change.kind == "env" and change.name in NOT_CARRIED:
            why = "a path on the teammate's machine: meaningless in a container"
            untestable.append((change, why))
        elif change.kind in ("version", "extra") and change.name in left_out:
            untestable.append((change, left_out[change.name]))
        else:
            changes.append(change)
    python = ".".join(str((report["probe"].get("python") or {}).get("version")).split(".")[:2])
    if python != target.env.python:
        why = "every trial runs on the lock's Python minor, over the locked env's image"
        untestable.append((Change("python", "python", python, target.env.python), why))
    for item in (report["probe"].get("binaries") or {}).get("foreign") or []:
        archs = "/".join(item.get("archs") or []) or str(item.get("format"))
        why = "a compiled file of another architecture: a trial installs wheels, it cannot plant it"
        untestable.append((Change("binary", str(item.get("path")), archs, None), why))
    return DriftSet(tuple(changes), tuple(untestable))
