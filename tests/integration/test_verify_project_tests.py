"""verify runs the project's own tests with the env's interpreter: real pytest runs, passing
and failing."""

from __future__ import annotations

from pathlib import Path

import pytest

from archlock.verify.execute import run_project_tests
from archlock.verify.targets import HostTarget

pytestmark = pytest.mark.integration


def test_project_tests_run_with_the_envs_interpreter(tmp_path: Path) -> None:
    import sys

    target = HostTarget(Path(sys.executable))
    (tmp_path / "test_ok.py").write_text("def test_ok():\n    assert True\n")
    ok = run_project_tests(target, tmp_path)
    assert ok["status"] == "pass" and ok["why"].startswith("pytest: 1 passed")
    (tmp_path / "test_bad.py").write_text("def test_bad():\n    assert False\n")
    bad = run_project_tests(target, tmp_path)
    assert bad["status"] == "fail" and bad["why"].startswith("pytest exited 1: 1 failed, 1 passed")
