"""verify's child processes have a time limit: a real hung child is a failed run that keeps
its partial output."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.integration


def test_a_hung_child_of_verify_is_a_failed_run_with_its_partial_output() -> None:
    import sys

    from archlock.verify.targets import TIMED_OUT, run_process

    code = "import time; print('partial', flush=True); time.sleep(60)"
    done = run_process([sys.executable, "-c", code], 1.0)
    assert done.returncode == TIMED_OUT and done.stdout.strip() == "partial"
    assert "timed out after 1 s" in done.stderr.splitlines()[-1]
