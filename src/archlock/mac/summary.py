"""The one report setup-mac prints at the end: what was wrong, what was done, what is left."""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path

from archlock.mac.plan import Plan, Step
from archlock.mac.shellfix import NATIVE_TERMINAL, RcChange, ShellAdvice


@dataclass(frozen=True)
class Outcome:
    dry_run: bool
    ran: tuple[tuple[Step, int], ...]  # every step run, with its exit status (the last may fail)
    verify_rc: int | None  # None: verify did not run
    rc_change: RcChange | None  # --fix-shell's edit, if any
    rc_file: Path | None = None  # the file --fix-shell would edit

    @property
    def failed(self) -> Step | None:
        return next((step for step, code in self.ran if code != 0), None)


def command(step: Step) -> str:
    return shlex.join(step.argv)


def render(title: str, plan: Plan, advice: ShellAdvice, outcome: Outcome, venv: Path) -> str:
    sections = [
        title,
        _section("what was wrong", _wrong(plan) or ["nothing"]),
        _section(
            "what would run (dry run)" if outcome.dry_run else "what was done", _done(plan, outcome)
        ),
        _section("what is left", _left(plan, advice, outcome, venv) or ["nothing"]),
    ]
    sections += [_section("python3 today", list(advice.today))]
    if plan.notes:
        sections.append(_section("notes", list(plan.notes)))
    return "\n".join(sections) + "\n"


def _section(name: str, items: list[str]) -> str:
    return f"{name}:\n" + "\n".join(f"  - {item}" for item in items)


def _wrong(plan: Plan) -> list[str]:
    return [problem.text for problem in plan.problems]


def _done(plan: Plan, outcome: Outcome) -> list[str]:
    items = [f"interpreter: {plan.interpreter} ({plan.interpreter_why})"]
    if plan.blocked:
        return [*items, "nothing was run: fix what blocks it (below) and rerun `nox -s setup-mac`"]
    if outcome.dry_run:
        steps = [*plan.steps, *([plan.verify] if plan.verify else [])]
        return items + [f"{command(step)}    # {step.why}" for step in steps]
    for step, code in outcome.ran:
        items.append(f"{'ok' if code == 0 else f'FAILED (exit {code})'}: {command(step)}")
    if plan.verify and outcome.verify_rc is not None:
        verdict = "ok" if outcome.verify_rc == 0 else f"FAILED (exit {outcome.verify_rc})"
        items.append(f"{verdict}: {command(plan.verify)}")
    if outcome.rc_change is not None:
        items.append(_rc_done(outcome.rc_change))
    return items


def _rc_done(change: RcChange) -> str:
    if not change.changed:
        return f"{change.path}: the archlock block is already there; left unchanged"
    backup = f" (backup: {change.backup})" if change.backup else " (new file)"
    return f"{change.path}: wrote the archlock PATH block{backup}"


def _left(plan: Plan, advice: ShellAdvice, outcome: Outcome, venv: Path) -> list[str]:
    left = [
        f"{problem.text}: {problem.fix}"
        for problem in plan.problems
        if problem.blocking and problem.fix
    ]
    failed = outcome.failed
    if failed is not None:
        left.append(f"`{command(failed)}` failed: its output is above; fix that and rerun")
    if outcome.verify_rc not in (None, 0):
        left.append("verify failed: its report above names each failed check and its fix")
    left += _shell_left(advice, outcome)
    if not plan.blocked and failed is None:
        left.append(f"use the env: `source {venv}/bin/activate`")
    return left


def _shell_left(advice: ShellAdvice, outcome: Outcome) -> list[str]:
    if outcome.rc_change is not None:  # --fix-shell wrote (or found) the block
        terminal = [NATIVE_TERMINAL] if advice.rosetta_terminal else []
        return [*terminal, "open a new terminal to pick up the PATH change"]
    lines = advice.lines()
    if advice.path_line:
        where = f" ({outcome.rc_file})" if outcome.rc_file else ""
        lines.append(
            f"or rerun with `--fix-shell` to add the line to your startup file{where} for you"
        )
    return lines
