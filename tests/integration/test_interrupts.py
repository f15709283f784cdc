"""Interrupts at random points: `lock` and `render` leave every generated file either as it
was or complete and current (a lock run is all-or-nothing: uv.lock lands with the env locks),
with the mode it had, and the next run removes what a killed run left in temp folders."""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

SEED = int(os.environ.get("ARCHLOCK_INTERRUPT_SEED", time.time()))
RANDOM = random.Random(SEED)


def start(project: Path, tmp: Path, *argv: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "TMPDIR": str(tmp)}
    return subprocess.Popen(
        [sys.executable, "-m", "archlock", "--project", str(project), *argv],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def finish(project: Path, tmp: Path, *argv: str) -> float:
    started = time.monotonic()
    child = start(project, tmp, *argv)
    _, err = child.communicate(timeout=600)
    assert child.returncode == 0, err.decode()
    return time.monotonic() - started


def interrupted(project: Path, tmp: Path, sig: signal.Signals, delay: float, *argv: str) -> str:
    child = start(project, tmp, *argv)
    time.sleep(delay)
    child.send_signal(sig)
    _, err = child.communicate(timeout=600)
    text = err.decode()
    assert "Traceback" not in text, f"seed {SEED}, delay {delay:.2f}: {text}"
    return text


def files(root: Path, names: list[str]) -> dict[str, bytes | None]:
    return {name: (root / name).read_bytes() if (root / name).is_file() else None for name in names}


def lock_set(root: Path) -> list[str]:
    locks = sorted(p.relative_to(root).as_posix() for p in (root / "envs" / "locks").glob("*"))
    return ["uv.lock", *locks]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL])
def test_lock_is_all_or_nothing(fixtures: Path, tmp_path: Path, sig: signal.Signals) -> None:
    old_project, new_project = tmp_path / "old", tmp_path / "new"
    shutil.copytree(fixtures / "projects" / "pyproject-app", old_project)
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    finish(old_project, scratch, "lock")
    shutil.copytree(old_project, new_project)
    for project in (old_project, new_project):  # a changed input: uv.lock and every env lock change
        pyproject = project / "pyproject.toml"
        pyproject.write_text(pyproject.read_text().replace("six==1.16.0", "six==1.17.0"))
    names = lock_set(old_project)
    before = files(old_project, names)
    took = finish(new_project, scratch, "lock")
    after = files(new_project, names)
    assert before != after and before["uv.lock"] != after["uv.lock"]
    for _ in range(3):
        work = tmp_path / f"try-{_}"
        shutil.copytree(old_project, work)
        delay = RANDOM.uniform(0.2, took)
        interrupted(work, scratch, sig, delay, "lock")
        now = files(work, names)
        assert now in (before, after), f"seed {SEED}, delay {delay:.2f}: a mix of old and new locks"
        assert all(os.stat(work / n).st_mode & 0o777 == 0o644 for n in names if now[n] is not None)
    finish(old_project, scratch, "lock")  # the next run sweeps what killed runs left
    assert not [p for p in scratch.iterdir() if p.name.startswith("archlock-")]
    assert not list(tmp_path.rglob("*.archlock-tmp"))


RENDERED = ["docker", ".github"]


def rendered(root: Path) -> dict[str, bytes]:
    out = {}
    for top in RENDERED:
        for path in sorted((root / top).rglob("*")):
            if path.is_file():
                out[path.relative_to(root).as_posix()] = path.read_bytes()
    return out


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL])
def test_render_files_are_old_or_complete(repo: Path, tmp_path: Path, sig: signal.Signals) -> None:
    base = tmp_path / "base"
    base.mkdir()
    for name in ("pyproject.toml", "uv.lock", "envs", "docker", ".github"):
        source = repo / name
        (shutil.copytree if source.is_dir() else shutil.copy2)(source, base / name)
    pyproject = base / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text() + '\n[tool.archlock.render]\nimage = "team/renamed"\n'
    )
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    before = rendered(base)
    done = tmp_path / "done"
    shutil.copytree(base, done)
    took = finish(done, scratch, "render")
    after = rendered(done)
    assert before != after
    for attempt in range(4):
        work = tmp_path / f"try-{attempt}"
        shutil.copytree(base, work)
        delay = RANDOM.uniform(0.0, took * 1.2)
        interrupted(work, scratch, sig, delay, "render")
        now = rendered(work)
        for name, text in now.items():
            assert text in (before.get(name), after.get(name)), (
                f"seed {SEED}, delay {delay:.2f}: {name}"
            )
        finish(work, scratch, "render")
        assert rendered(work) == after
        assert not [p for p in work.rglob("*") if p.name.endswith(".archlock-tmp")]
        modes = {p.stat().st_mode & 0o777 for p in (work / "docker").iterdir() if p.suffix != ".sh"}
        assert modes <= {0o644}, modes
