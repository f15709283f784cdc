"""The suite run for real: on Python 3.8 without torch, and in an env with torch (the one CI
verified, $ARCHLOCK_TEST_TORCH_PYTHON) on the CPU, with the loss fault hook and a forced missing
device."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from archlock.inenv import suite

pytestmark = pytest.mark.integration


SUITE_FILE = Path(suite.__file__)


def _imports_torch(python: str) -> bool:
    done = subprocess.run(
        [python, "-c", "import torch"], capture_output=True, timeout=300, check=False
    )
    return done.returncode == 0


@pytest.fixture(scope="module")
def torch_python() -> str:
    for candidate in (sys.executable, os.environ.get("ARCHLOCK_TEST_TORCH_PYTHON")):
        if candidate and Path(candidate).exists() and _imports_torch(candidate):
            return candidate
    pytest.skip("host-lacks: torch (set ARCHLOCK_TEST_TORCH_PYTHON to an interpreter that has it)")


def run_suite(python: str, *args: str, **env: str) -> tuple[int, dict]:
    full_env = {k: v for k, v in os.environ.items() if k not in (suite.FAULT_ENV, suite.DEVICE_ENV)}
    done = subprocess.run(
        [python, str(SUITE_FILE), *args],
        capture_output=True,
        text=True,
        env={**full_env, **env},
        timeout=600,
        check=False,
    )
    return done.returncode, json.loads(done.stdout)


def test_suite_parses_on_python_3_8_and_reports_missing_torch(
    tmp_path: Path, python38: str
) -> None:
    copy = tmp_path / "suite.py"  # copied with its parts only: no archlock package next to it
    for name in ("suite", *suite.SIBLINGS):
        (tmp_path / f"{name}.py").write_bytes(SUITE_FILE.with_name(f"{name}.py").read_bytes())
    done = subprocess.run(
        [python38, "-I", str(copy)], capture_output=True, text=True, timeout=60, check=False
    )
    doc = json.loads(done.stdout)
    assert done.returncode == 2
    assert doc["error"] == "torch does not import: ModuleNotFoundError: No module named 'torch'"


def test_real_suite_passes_on_cpu(torch_python: str) -> None:
    code, doc = run_suite(torch_python, "--skip", "compile")
    assert code == 0, doc
    assert doc["schema"] == "archlock.suite/1"
    assert list(doc["checks"]) == list(suite.CHECKS)
    statuses = {name: check["status"] for name, check in doc["checks"].items()}
    assert statuses == {**{name: "pass" for name in suite.CHECKS}, "compile": "skipped"}
    assert doc["checks"]["distributed"]["backend"] == "gloo"
    assert doc["checks"]["loss_parity"]["max_rel_diff"] == 0.0


def test_loss_fault_hook_and_a_forced_missing_device(torch_python: str) -> None:
    code, doc = run_suite(
        torch_python,
        "--skip",
        "compile",
        "--skip",
        "distributed",
        ARCHLOCK_SUITE_FAULT="loss",
        ARCHLOCK_DEVICE="mps",
    )
    assert code == 1
    assert (doc["fault"], doc["device"]) == ("loss", "cpu")
    assert doc["checks"]["device"]["why"].startswith(
        "mps requested (--device / ARCHLOCK_DEVICE) but not usable here; ran on cpu"
    )
    assert doc["checks"]["loss_parity"]["status"] == "fail"
    assert doc["checks"]["loss_parity"]["why"].startswith("cpu losses differ from CPU by ")
    assert doc["checks"]["training"]["status"] == "pass"


def test_the_compile_check_leaves_no_cache_behind(torch_python: str, tmp_path: Path) -> None:
    """inductor's cache, triton's and the precompiled header (its place ignores
    TORCHINDUCTOR_CACHE_DIR and its key holds the venv's path) all go with the check: their
    defaults are under TMPDIR and HOME, here the test's own."""
    tmp, home = tmp_path / "tmp", tmp_path / "home"
    tmp.mkdir(), home.mkdir()
    others = [a for name in suite.CHECKS[1:] if name != "compile" for a in ("--skip", name)]
    code, doc = run_suite(torch_python, *others, TMPDIR=str(tmp), HOME=str(home))
    assert doc["checks"]["compile"]["status"] == "pass", doc["checks"]["compile"]
    assert code == 0, doc
    left = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert left == [], left
