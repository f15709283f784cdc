"""Kills at every step: `lock` and `render` are all-or-nothing (core/commit.py).

Each run is killed (SIGKILL and SIGINT) at every named step of the commit protocol, the rename
window included (ARCHLOCK_TEST_PAUSE_AT stops the writer there, so the kill lands exactly), and at
instants spread evenly over a whole run (jittered by ARCHLOCK_TEST_SEED: fixed by default,
printed on failure, overridable). Every instant must end in one of three states:

- "old": every file as before, nothing left beside the outputs;
- "new": every file complete and current;
- "refused + recovered": `--check` refuses in one line (an interrupted ... left old and new files),
  and the next plain run finishes the set.
"""

from __future__ import annotations

import os
import random
import select
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

SIGNALS = (signal.SIGKILL, signal.SIGINT)
MINIMUM_INSTANTS = 50  # every named step for each signal, then timed instants up to this
MINIMUM_TIMED = 10  # per signal
STEP_WORKERS = 4  # runs stopped at named steps go side by side; timed ones run alone


@dataclass(frozen=True)
class Case:
    verb: str  # "lock" or "render"
    base: Path  # the project with its old files and new inputs
    names: Callable[[Path], dict[str, bytes | None]]  # the set's files, as they are now
    before: dict[str, bytes | None]
    after: dict[str, bytes | None]
    took: float  # seconds a whole run takes
    scratch: Path  # TMPDIR for every run


def run(
    project: Path, scratch: Path, *argv: str, pause: str | None = None
) -> subprocess.Popen[str]:
    env = {**os.environ, "TMPDIR": str(scratch)}
    env.pop("ARCHLOCK_TEST_PAUSE_AT", None)
    if pause:
        env["ARCHLOCK_TEST_PAUSE_AT"] = pause
    return subprocess.Popen(
        [sys.executable, "-m", "archlock", "--project", str(project), *argv],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(project: Path, scratch: Path, *argv: str) -> tuple[int, str]:
    child = run(project, scratch, *argv)
    _, err = child.communicate(timeout=300)
    return child.returncode, err


def wait_for_pause(child: subprocess.Popen[str], step: str) -> str:
    """stderr up to the pause line; fails when the run ends (or takes a minute) without it."""
    assert child.stderr is not None
    seen = ""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([child.stderr], [], [], deadline - time.monotonic())
        line = child.stderr.readline() if ready else ""
        seen += line
        if f"paused at {step}" in line:
            return seen
        if ready and not line:
            break
    child.kill()
    raise AssertionError(f"the run never reached step {step}: {seen}")


def interrupt(case: Case, work: Path, sig: signal.Signals, *, step: str = "", delay: float = 0):
    """Start the verb in `work` and kill it at `step` (or after `delay` seconds)."""
    child = run(work, case.scratch, case.verb, pause=f"{case.verb}:{step}" if step else None)
    seen = wait_for_pause(child, f"{case.verb}:{step}") if step else ""
    if not step:
        time.sleep(delay)
    child.send_signal(sig)
    _, err = child.communicate(timeout=300)
    return seen + err


def outcome(case: Case, work: Path, said: str) -> str:
    """Which of the three states the interrupted run left; an AssertionError for any other."""
    # A SIGINT in the interpreter's own first milliseconds (site, runpy) cannot be ours to catch;
    # from archlock/__main__.py on, an interrupt is one line
    assert "archlock" not in said.partition("Traceback")[2], said
    leftovers = [p for p in work.rglob("*archlock-tmp") if ".archlock" not in p.parts]
    assert not leftovers, f"temp files beside the outputs: {leftovers}"
    journal = work / ".archlock" / "commit" / f"{case.verb}.json"
    now = case.names(work)
    if not journal.exists() and now in (case.before, case.after):
        return "old" if now == case.before else "new"
    code, err = finish(work, case.scratch, case.verb, "--check")
    lines = err.strip().splitlines()
    assert code == 5 and len(lines) == 1, f"--check exit {code}: {err}"
    assert f"an interrupted {case.verb} left old and new files" in lines[0], err
    assert f"run `archlock {case.verb}`" in lines[0], err
    code, err = finish(work, case.scratch, case.verb)
    assert code == 0, err
    assert case.names(work) == case.after and not journal.exists(), "not recovered"
    return "refused + recovered"


def steps(case: Case) -> list[str]:
    """Every pause point a run of `case` passes, in order."""
    renames = sum(case.before.get(n) != case.after.get(n) for n in {*case.before, *case.after})
    commit = ["staged", "journaled", *(f"renamed-{k}" for k in range(1, renames + 1))]
    in_place = ["in-place", "in-place-done", "restored-1", "restored-all"]
    return (in_place if case.verb == "lock" else []) + commit + ["renamed-all"]


def instants(case: Case, seed: int) -> list[tuple[signal.Signals, str, float]]:
    """(signal, step or "", delay): every step, then instants spread evenly over a whole run."""
    rng = random.Random(f"{seed}-{case.verb}")
    chosen = [(sig, step, 0.0) for sig in SIGNALS for step in steps(case)]
    count = max(MINIMUM_TIMED, -(-(MINIMUM_INSTANTS - len(chosen)) // len(SIGNALS)))
    for sig in SIGNALS:
        chosen += [(sig, "", case.took * (k + rng.random()) / count) for k in range(count)]
    return chosen


def one_instant(case: Case, tmp: Path, number: int, sig: signal.Signals, step: str, delay: float):
    """(the state it ended in, or None, and what went wrong)."""
    work = tmp / f"{case.verb}-{number}"
    shutil.copytree(case.base, work, symlinks=True)
    where = f"{sig.name} at " + (f"step {step}" if step else f"{delay:.3f} s")
    try:
        return outcome(case, work, interrupt(case, work, sig, step=step, delay=delay)), ""
    except AssertionError as exc:
        return None, f"{where}: {str(exc)[:600]}"
    finally:
        shutil.rmtree(work)


def check_every_instant(case: Case, seed: int, tmp: Path) -> Counter[str]:
    chosen = list(enumerate(instants(case, seed)))
    assert len(chosen) >= MINIMUM_INSTANTS
    at_steps = [(n, sig, step, delay) for n, (sig, step, delay) in chosen if step]
    timed = [(n, sig, step, delay) for n, (sig, step, delay) in chosen if not step]
    with ThreadPoolExecutor(max_workers=STEP_WORKERS) as pool:  # a pause point waits for the kill
        ends = list(pool.map(lambda it: one_instant(case, tmp, *it), at_steps))
    ends += [one_instant(case, tmp, *it) for it in timed]  # alone, so `took` holds
    tally = Counter(state for state, _ in ends if state)
    summary = f"ARCHLOCK_TEST_SEED={seed}: {dict(tally)}"
    print(summary)
    failures = [why for _, why in ends if why]
    assert not failures, summary + "\n" + "\n".join(failures)
    return tally


# -- lock -----------------------------------------------------------------------------------------
def lock_files(root: Path) -> dict[str, bytes | None]:
    names = ["uv.lock", *(p.name for p in (root / "envs" / "locks").glob("*"))]
    found = {}
    for name in sorted(names):
        path = root / name if name == "uv.lock" else root / "envs" / "locks" / name
        found[name] = path.read_bytes() if path.is_file() else None
        if path.is_file():
            assert path.stat().st_mode & 0o777 == 0o644, f"{name}: mode changed"
    return found


def test_lock_is_all_or_nothing(fixtures: Path, tmp_path: Path, test_seed: int) -> None:
    base, done, scratch = tmp_path / "base", tmp_path / "done", tmp_path / "tmp"
    scratch.mkdir()
    shutil.copytree(fixtures / "projects" / "pyproject-app", base)
    assert finish(base, scratch, "lock")[0] == 0
    pyproject = base / "pyproject.toml"  # a changed input: uv.lock and every env lock change
    pyproject.write_text(pyproject.read_text().replace("six==1.16.0", "six==1.17.0"))
    shutil.copytree(base, done)
    started = time.monotonic()
    assert finish(done, scratch, "lock")[0] == 0
    took = time.monotonic() - started
    before, after = lock_files(base), lock_files(done)
    assert before != after and before["uv.lock"] != after["uv.lock"]
    case = Case("lock", base, lock_files, before, after, took, scratch)
    tally = check_every_instant(case, test_seed, tmp_path)
    assert tally["refused + recovered"] > 0 and tally["old"] > 0  # the steps reach both sides
    assert finish(base, scratch, "lock")[0] == 0  # the next run sweeps what killed runs left
    assert not [p for p in scratch.iterdir() if p.name.startswith("archlock-")]


# -- render ---------------------------------------------------------------------------------------
RENDERED = ("docker", ".github")


def rendered(root: Path) -> dict[str, bytes | None]:
    out: dict[str, bytes | None] = {}
    for top in RENDERED:
        for path in sorted((root / top).rglob("*")):
            if path.is_file():
                out[path.relative_to(root).as_posix()] = path.read_bytes()
                want = 0o755 if path.suffix == ".sh" else 0o644
                assert path.stat().st_mode & 0o777 == want, f"{path}: mode"
    return out


def test_render_is_all_or_nothing(repo: Path, tmp_path: Path, test_seed: int) -> None:
    base, done, scratch = tmp_path / "base", tmp_path / "done", tmp_path / "tmp"
    scratch.mkdir()
    base.mkdir()
    for name in ("pyproject.toml", "uv.lock", "envs", "docker", ".github"):
        source = repo / name
        (shutil.copytree if source.is_dir() else shutil.copy2)(source, base / name)
    pyproject = base / "pyproject.toml"  # a changed setting: every rendered file changes
    pyproject.write_text(
        pyproject.read_text() + '\n[tool.archlock.render]\nimage = "team/renamed"\n'
    )
    shutil.copytree(base, done)
    started = time.monotonic()
    assert finish(done, scratch, "render")[0] == 0
    took = time.monotonic() - started
    before, after = rendered(base), rendered(done)
    assert before != after
    case = Case("render", base, rendered, before, after, took, scratch)
    tally = check_every_instant(case, test_seed, tmp_path)
    assert tally["refused + recovered"] > 0 and tally["old"] > 0
