"""`archlock repro REPORT --bisect`: which drift breaks the teammate's command.

1. Reproduce: every drift applied over the locked env (the teammate's package versions and
   variables) must fail with the recorded exit code and last error line. If it does not, the
   cause is outside the packages: the verdict names what the report shows of that.
2. Check the lock: the locked env alone must pass; if it fails too, the cause is in the project.
3. Narrow (archlock.repro.ddmin): each trial is a container over the cached base image
   (archlock.repro.trial), with a time limit per trial and for the run. Ctrl-C or SIGTERM removes
   every container and volume of the run, and a base image this run built.
4. Verdict: the culprits, what passes without them, the one-line fix, and every trial.
"""

from __future__ import annotations

import secrets
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType
from typing import Any

from archlock.repro import ddmin, trial
from archlock.repro.driftset import Change, DriftSet

DEFAULT_TRIAL_TIMEOUT = 300.0
DEFAULT_TOTAL_TIMEOUT = 1800.0


@dataclass(frozen=True)
class Limits:
    trial: float = DEFAULT_TRIAL_TIMEOUT
    total: float = DEFAULT_TOTAL_TIMEOUT


@contextmanager
def interrupts_as_keyboard() -> Iterator[None]:
    """SIGTERM behaves as Ctrl-C while trials run, so the cleanup in `finally` happens."""

    def raise_interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, raise_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class Oracle:
    """ddmin's test: one trial per subset, within the run's time; every trial logged."""

    def __init__(self, runner: trial.Runner, limits: Limits, started: float) -> None:
        self.runner, self.limits = runner, limits
        self.deadline = started + limits.total
        self.log: list[dict[str, Any]] = []

    def __call__(self, subset: tuple[Change, ...]) -> ddmin.Outcome:
        left = self.deadline - time.monotonic()
        if left < 1:
            raise ddmin.OutOfTime
        number = len(self.log) + 1
        ran = trial.run_trial(self.runner, subset, number, min(self.limits.trial, left))
        self.log.append(
            {
                "trial": number,
                "drift": [change.title for change in subset],
                "outcome": ran.outcome.value,
                "exit_code": ran.exit_code,
                "signature": ran.signature,
                "why": ran.why,
                "seconds": round(ran.seconds, 1),
            }
        )
        what = ", ".join(c.title for c in subset) if subset else "none (the locked env)"
        print(f"  trial {number}: {ran.outcome.value:<10} {ran.seconds:5.1f} s  drift: {what}")
        return ran.outcome


def narrow(
    runner: trial.Runner, drifts: DriftSet, limits: Limits, built: list[str]
) -> tuple[ddmin.Result[Change], list[dict[str, Any]], float]:
    """Run ddmin in containers; whatever happens, the run's containers and volume go."""
    started = time.monotonic()
    oracle = Oracle(runner, limits, started)
    try:
        with interrupts_as_keyboard():
            trial.prepare(runner)
            result = ddmin.minimize(list(drifts.changes), oracle)
    except KeyboardInterrupt:
        trial.cleanup(runner.run_id, built)
        print("\ninterrupted: the run's containers, volume and new images are removed")
        raise
    finally:
        trial.cleanup(runner.run_id)
    return result, oracle.log, time.monotonic() - started


def new_run_id() -> str:
    return secrets.token_hex(6)


# ---------------------------------------------------------------------------------------------
# the verdict
# ---------------------------------------------------------------------------------------------


def joined(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def narrowed_text(culprits: tuple[Change, ...], trials: int, seconds: float) -> str:
    titles = joined([c.title for c in culprits])
    cost = f"{trials} trials, {seconds:.0f} s"
    if len(culprits) == 1:
        (only,) = culprits
        return f"{titles} alone reproduces the failure; {only.without} the command passes — {cost}"
    return (
        f"{titles} together reproduce the failure; with any one of them as locked the command "
        f"passes — {cost}"
    )


def outside(report: dict[str, Any], drifts: DriftSet) -> list[str]:
    """What the report shows beyond the packages: where a cause a container lacks may be."""
    doc = report["probe"]
    osf, machine = doc.get("os") or {}, doc.get("machine") or {}
    gpu, emulation = doc.get("gpu") or {}, doc.get("emulation") or {}
    out = [
        f"system: {osf.get('distro') or osf.get('name')}, kernel {osf.get('release')}, "
        f"libc {(osf.get('libc') or {}).get('version')}",
        f"hardware: {machine.get('cpu_model') or '?'} ({machine.get('uname')}, "
        f"{machine.get('cpu_count')} CPUs)",
        f"NVIDIA driver: {gpu.get('nvidia_driver') or 'none recorded'}"
        + (f", GPU {gpu.get('name')}" if gpu.get("name") else ""),
    ]
    if emulation.get("emulated"):
        out.append(f"emulation: {emulation.get('by')}")
    out += [f"not replayed: {change.title}: {why}" for change, why in drifts.untestable]
    out.append(
        "variables the report does not record (it keeps only those known to change torch "
        "or Python; files and services on the teammate's machine are not recorded either)"
    )
    return out


def verdict(
    result: ddmin.Result[Change],
    log: list[dict[str, Any]],
    seconds: float,
    report: dict[str, Any],
    drifts: DriftSet,
    resync: str,
) -> dict[str, Any]:
    trials = len(log)
    if result.status == "does-not-reproduce":
        first = log[0] if log else {}
        how = "fail" if first.get("outcome") == "pass" else "fail the recorded way"
        text = (
            f"it does not {how} in a container with every drift applied "
            f"({first.get('why', 'no trial')}): the cause is outside the packages — stop"
        )
        return {"status": result.status, "text": text, "outside": outside(report, drifts)}
    if result.status == "lock-fails":
        how = log[-1]["why"] if log else "?"
        text = (
            f"the locked env fails too ({how}): the cause is in the project, not in the drift "
            f"— {trials} trials, {seconds:.0f} s"
        )
        return {"status": result.status, "text": text, "fix": "fix the project's code"}
    culprits = result.culprits
    if result.status == "out-of-time":
        titles = joined([c.title for c in culprits]) if culprits else "every drift"
        text = (
            f"the time limit ended the narrowing after {trials} trials, {seconds:.0f} s: "
            f"the failure needs no more than {titles}"
        )
    else:
        text = narrowed_text(culprits, trials, seconds)
    fix = "; ".join(change.fix for change in culprits)
    return {
        "status": result.status,
        "text": text,
        "culprits": [change.as_dict() for change in culprits],
        "fix": f"{fix} (or sync the whole env to its lock: {resync})" if fix else resync,
        "minimal": result.complete,
    }


def record(
    result: ddmin.Result[Change],
    log: list[dict[str, Any]],
    seconds: float,
    drifts: DriftSet,
    base: dict[str, Any],
) -> dict[str, Any]:
    phases = {t.number: t.phase for t in result.trials}
    for entry in log:
        entry["phase"] = phases.get(entry["trial"], "?")
    return {
        "drift_set": [change.as_dict() for change in drifts.changes],
        "untestable": [dict(change.as_dict(), why=why) for change, why in drifts.untestable],
        "trials": log,
        "trial_count": len(log),
        "bound": round(ddmin.bound(len(drifts.changes), max(1, len(result.culprits))), 1),
        "seconds": round(seconds, 1),
        "base": base,
    }
