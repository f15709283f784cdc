"""The project's own run on the host, for real: the env's venv first on PATH, a time limit that
kills what hangs, and a command the env lacks as a failed check (not a crash)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest
from endtoend import gone

from archlock.verify import runs
from archlock.verify.targets import HostTarget

pytestmark = pytest.mark.integration

PYTHON = Path(sys.executable)  # this venv stands in for the env's


def settings(*commands: str, timeout: float = 30) -> runs.RunSettings:
    return runs.RunSettings(commands, runs.compile_metric(r"loss ([0-9.]+)", "test"), 1e-3, timeout)


def test_python_is_the_envs_and_the_metric_is_read(tmp_path: Path) -> None:
    (tmp_path / "train.py").write_text("import sys\nprint(sys.executable)\nprint('loss 0.25')\n")
    target = HostTarget(PYTHON)
    check = runs.run_checks(settings("python train.py"), tmp_path, target)["run_1"]
    assert check["status"] == "pass", check
    assert check["tail"].splitlines()[0] == str(PYTHON) and check["metric"] == 0.25


def test_a_hanging_run_is_killed_at_its_limit_and_fails_with_its_tail(tmp_path: Path) -> None:
    (tmp_path / "hang.py").write_text(
        "import time\nprint('loss 1.0', flush=True)\ntime.sleep(60)\n"
    )
    target = HostTarget(PYTHON)
    started = time.monotonic()
    check = runs.run_checks(settings("python hang.py", timeout=2), tmp_path, target)["run_1"]
    assert time.monotonic() - started < 15
    assert check["status"] == "fail" and check["why"] == "timed out after 2 s: loss 1.0"
    assert check["exit"] is None and check["tail"] == "loss 1.0"


def test_a_command_the_env_lacks_is_a_failed_check(tmp_path: Path) -> None:
    target = HostTarget(PYTHON)
    check = runs.run_checks(settings("no-such-trainer --fast"), tmp_path, target)["run_1"]
    assert check["status"] == "fail" and "no-such-trainer" in check["why"]
    assert "add no-such-trainer to what the env locks" in check["fix"]


def test_a_shell_command_line_runs_whole_and_its_metric_is_read_from_the_pipe(
    tmp_path: Path,
) -> None:
    """The command that once ran prepare.py with `&& python train.py ...` as its arguments."""
    (tmp_path / "a.py").write_text(
        "import sys\nassert sys.argv[1:] == [], sys.argv\nopen('prepared', 'w').write('ok')\n"
    )
    (tmp_path / "b.py").write_text(
        "import sys\n"
        "assert open('prepared').read() == 'ok'\n"
        "print('step 1 loss 0.75', file=sys.stderr, flush=True)\n"
        "print('loss 0.5', flush=True)\n"
    )
    target = HostTarget(PYTHON)
    line = 'MSG="two words"; python a.py && python b.py | tee x && echo "$MSG"'
    check = runs.run_checks(settings(line), tmp_path, target)["run_1"]
    assert check["status"] == "pass", check
    assert check["metric"] == 0.5 and check["tail"].splitlines()[-1] == "two words"
    assert (tmp_path / "x").read_text() == "loss 0.5\n"  # the pipe carried stdout to tee


def test_the_limit_kills_the_whole_pipeline(tmp_path: Path) -> None:
    (tmp_path / "hang.py").write_text(
        "import os, time\nopen('pid', 'w').write(str(os.getpid()))\n"
        "print('loss 1.0', flush=True)\ntime.sleep(60)\n"
    )
    target = HostTarget(PYTHON)
    line = "python hang.py | cat && echo never"
    check = runs.run_checks(settings(line, timeout=2), tmp_path, target)["run_1"]
    assert check["status"] == "fail" and check["why"] == "timed out after 2 s: loss 1.0"
    pid = int((tmp_path / "pid").read_text())
    assert gone(pid)  # killed with the rest of the pipeline
