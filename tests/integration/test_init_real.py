"""archlock init on a pyproject project, for real (uv against PyPI, no docker): it locks and
renders, `lock --check` and `render --check` then pass, and a second init changes nothing."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


def archlock(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ARCHLOCK_")}
    return subprocess.run(
        [sys.executable, "-m", "archlock", "--project", str(root), *args],
        capture_output=True, text=True, timeout=600, check=False, env=clean,
    )


def test_init_locks_and_renders_a_pyproject_project(tmp_path: Path, fixtures: Path) -> None:
    root = tmp_path / "app"
    shutil.copytree(fixtures / "projects" / "pyproject-app", root)
    first = archlock(root, "init")
    assert first.returncode == 0, first.stdout + first.stderr
    assert (root / "uv.lock").is_file()
    assert sorted(p.name for p in (root / "envs" / "locks").glob("*.txt")) == [
        "linux-amd64-cuda.txt", "linux-arm64-cpu.txt", "macos-arm64.txt"
    ]
    assert (root / "docker" / "linux-arm64-cpu.Dockerfile").is_file()
    for check in (("lock", "--check"), ("render", "--check"), ("init", "--check")):
        done = archlock(root, *check)
        assert done.returncode == 0, f"{check}: {done.stdout}{done.stderr}"
    again = archlock(root, "init")
    assert again.returncode == 0 and "create" not in again.stdout and "update" not in again.stdout
    assert "render: 0 of" in again.stdout
