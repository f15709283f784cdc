"""The project's own run: `[tool.archlock.verify] run` in every env, held to the same numbers.

Each command is a shell command line (`&&`, pipes, variables, quotes), run by `/bin/sh -c` with a
time limit in the env verify is checking: on the host with the env's venv first on PATH (cwd: the
project), in an image as `docker run IMAGE /bin/sh -c COMMAND` through archlock.core.docker (cwd:
the image's own copy of the project). The same POSIX shell both ways: /bin/sh is in every base
image (Debian's dash, Alpine's busybox) and on every host, where bash is not (Alpine, busybox),
so a command means the same on a laptop and in the image. As in any POSIX sh, a pipeline's exit
status is its last command's. The limit kills the shell's whole process group (host) or the
container (image); stdout and stderr are read as one stream, in the order they were written
(from an image, in the order the engine relays its two streams).
Each becomes a check `run_<n>` whose facts (command, exit, duration, tail, metric) go into the
result file and the matrix.
With `metric` set, the last match of that pattern's first group is the env's number; the matrix
compares it across envs within `tolerance` (relative to the larger value, absolute below 1).
"""

from __future__ import annotations

import math
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from archlock.core import proc
from archlock.core.project import Project
from archlock.errors import ConfigError, ToolMissingError
from archlock.verify.targets import Target

TAIL_LINES = 20
WHERE = "[tool.archlock.verify]"


@dataclass(frozen=True)
class RunSettings:
    commands: tuple[str, ...]
    metric: re.Pattern[str] | None
    tolerance: float
    timeout: float


def load(project: Project) -> RunSettings:
    """The section, checked: every command splits into words, the metric has a number group."""
    raw = project.settings.verify
    where = f"{project.root / 'pyproject.toml'}: {WHERE}"
    for command in raw.run:
        try:
            words = shlex.split(command)
        except ValueError as exc:
            raise ConfigError(f"{where} run: {command!r}: {exc}", fix="close the quote") from None
        if not words:
            raise ConfigError(f"{where} run: an empty command", fix="remove it or write a command")
    metric = compile_metric(raw.metric, where) if raw.metric else None
    if raw.tolerance < 0 or raw.timeout <= 0:
        raise ConfigError(
            f"{where}: tolerance must be >= 0 and timeout > 0", fix="e.g. tolerance = 1e-3"
        )
    return RunSettings(raw.run, metric, float(raw.tolerance), float(raw.timeout))


def compile_metric(pattern: str, where: str) -> re.Pattern[str]:
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        raise ConfigError(
            f"{where} metric: {pattern!r} is not a regex: {exc}", fix="escape it"
        ) from None
    if compiled.groups < 1:
        raise ConfigError(
            f"{where} metric: {pattern!r} captures nothing",
            fix='put the number in a group, e.g. "loss ([0-9.]+)"',
        )
    return compiled


def extract_metric(text: str, pattern: re.Pattern[str]) -> float | None:
    """The number in group 1 of the last line that matches, or None."""
    for line in reversed(text.splitlines()):
        found = pattern.search(line)
        if found:
            try:
                return float(found.group(1))
            except (TypeError, ValueError):
                return None
    return None


# -- running ----------------------------------------------------------------------------------
SHELL = "/bin/sh"


def shell_argv(command: str) -> list[str]:
    """The one way a `run` command starts, on the host and in an image."""
    return [SHELL, "-c", command]


def run_one(target: Target, command: str, root: Path, timeout: float) -> proc.Result:
    return target.run_command(shell_argv(command), root, timeout)


# -- judging ----------------------------------------------------------------------------------
def judge(command: str, result: proc.Result, run: RunSettings) -> dict[str, Any]:
    """One check: pass when it exited 0 (and printed the metric, when one is set)."""
    output = result.stdout + "\n" + result.stderr
    metric = extract_metric(output, run.metric) if run.metric else None
    facts = {
        "command": command,
        "exit": result.returncode,
        "duration": round(result.duration, 2),
        "tail": result.tail(TAIL_LINES),
        "metric": metric,
        "metric_pattern": run.metric.pattern if run.metric else None,
        "tolerance": run.tolerance,
    }
    if result.timed_out:
        fix = f"make `{command}` finish sooner, or raise {WHERE} timeout"
        return {"status": "fail", "why": result.why(), "fix": fix, **facts}
    if not result.ok:
        return {"status": "fail", "why": result.why(), "fix": failure_fix(command, result), **facts}
    if run.metric and metric is None:
        why = f"exited 0 but printed no number matching {run.metric.pattern!r}"
        fix = f"print the metric, or correct {WHERE} metric"
        return {"status": "fail", "why": why, "fix": fix, **facts}
    shown = f", metric {metric:g}" if metric is not None else ""
    summary = f"exit 0, {result.duration:.1f} s{shown}"
    return {
        "status": "pass",
        "why": f"exited 0 in {result.duration:.1f} s{shown}",
        "summary": summary,
        **facts,
    }


NOT_FOUND = re.compile(r"([^\s:]+): (?:command )?not found$")  # dash, busybox, bash


def failure_fix(command: str, result: proc.Result) -> str:
    """The shell's 127 names the command the env lacks; anything else is the command's own."""
    missing = NOT_FOUND.search(result.tail(1).strip()) if result.returncode == 127 else None
    if missing:
        return f"add {missing.group(1)} to what the env locks, or correct {WHERE} run"
    return f"run `{command}` in this env and fix it (its last lines are in the result file)"


def run_checks(run: RunSettings, root: Path, target: Target) -> dict[str, dict[str, Any]]:
    """`run_1`, `run_2`, ...: one check per configured command, in order."""
    checks: dict[str, dict[str, Any]] = {}
    for number, command in enumerate(run.commands, 1):
        try:
            result = run_one(target, command, root, run.timeout)
        except ToolMissingError as exc:  # a command the env does not have: this env fails
            checks[f"run_{number}"] = {
                "status": "fail",
                "why": exc.message,
                "fix": exc.fix,
                "command": command,
            }
            continue
        checks[f"run_{number}"] = judge(command, result, run)
    return checks


# -- across envs ------------------------------------------------------------------------------
def difference(a: float, b: float) -> float:
    """Relative to the larger magnitude, absolute below 1 (losses near zero stay comparable)."""
    return abs(a - b) / max(abs(a), abs(b), 1.0)


def agree(value: float, reference: float, tolerance: float) -> tuple[bool, float]:
    if math.isnan(value) or math.isnan(reference):
        return False, math.inf
    diff = difference(value, reference)
    return diff <= tolerance, diff
