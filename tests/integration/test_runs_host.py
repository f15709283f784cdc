"""The project's own run on the host, for real: the env's venv first on PATH, a time limit that
kills what hangs, and a command the env lacks as a failed check (not a crash)."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from archlock.verify import runs

pytestmark = pytest.mark.integration

PYTHON = Path(sys.executable)  # this venv stands in for the env's


def settings(*commands: str, timeout: float = 30) -> runs.RunSettings:
    return runs.RunSettings(commands, runs.compile_metric(r"loss ([0-9.]+)", "test"), 1e-3, timeout)


def test_python_is_the_envs_and_the_metric_is_read(tmp_path: Path) -> None:
    (tmp_path / "train.py").write_text("import sys\nprint(sys.executable)\nprint('loss 0.25')\n")
    target = SimpleNamespace(mode="host", python=PYTHON)
    check = runs.run_checks(settings("python train.py"), tmp_path, target)["run_1"]
    assert check["status"] == "pass", check
    assert check["tail"].splitlines()[0] == str(PYTHON) and check["metric"] == 0.25


def test_a_hanging_run_is_killed_at_its_limit_and_fails_with_its_tail(tmp_path: Path) -> None:
    (tmp_path / "hang.py").write_text(
        "import time\nprint('loss 1.0', flush=True)\ntime.sleep(60)\n"
    )
    target = SimpleNamespace(mode="host", python=PYTHON)
    started = time.monotonic()
    check = runs.run_checks(settings("python hang.py", timeout=2), tmp_path, target)["run_1"]
    assert time.monotonic() - started < 15
    assert check["status"] == "fail" and check["why"] == "timed out after 2 s: loss 1.0"
    assert check["exit"] is None and check["tail"] == "loss 1.0"


def test_a_command_the_env_lacks_is_a_failed_check(tmp_path: Path) -> None:
    target = SimpleNamespace(mode="host", python=PYTHON)
    check = runs.run_checks(settings("no-such-trainer --fast"), tmp_path, target)["run_1"]
    assert check["status"] == "fail" and "no-such-trainer" in check["why"]
    assert "add no-such-trainer to what the env locks" in check["fix"]
