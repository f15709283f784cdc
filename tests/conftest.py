"""Test options shared by every suite.

* Unit tests (default) need no network, no docker and no torch download.
* `--integration` also runs tests marked `integration` / `docker` (real uv against PyPI, real
  image builds, a real browser). Under `--integration` a skipped test FAILS the run unless its
  reason starts with "host-lacks:" (e.g. no GPU, no Mac): CI must never pass by skipping.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
ALLOWED_SKIP_PREFIX = "host-lacks:"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--integration", action="store_true", help="run integration/docker tests too")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--integration"):
        return
    skip = pytest.mark.skip(reason="integration test: run with --integration")
    for item in items:
        if "integration" in item.keywords or "docker" in item.keywords:
            item.add_marker(skip)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):  # type: ignore[type-arg]
    outcome = yield
    report = outcome.get_result()
    if report.failed and "test_seed" in getattr(item, "fixturenames", ()):
        report.sections.append(("seed", f"replay with {SEED_VARIABLE}={test_seed_value()}"))
    if not item.config.getoption("--integration") or not report.skipped:
        return
    reason = (
        str(report.longrepr[-1]) if isinstance(report.longrepr, tuple) else str(report.longrepr)
    )
    reason = reason.removeprefix("Skipped: ")
    if not reason.startswith(ALLOWED_SKIP_PREFIX):
        report.outcome = "failed"
        report.longrepr = f"skipped under --integration, which CI treats as a failure: {reason}"


# Tests that draw random instants or values take them from one seed: fixed unless overridden,
# shown in the header and with every failure, so a red run replays. No test seeds from the clock.
SEED_VARIABLE = "ARCHLOCK_TEST_SEED"
DEFAULT_SEED = 18


def test_seed_value() -> int:
    text = os.environ.get(SEED_VARIABLE, "")
    try:
        return int(text) if text else DEFAULT_SEED
    except ValueError:
        raise pytest.UsageError(f"{SEED_VARIABLE}={text!r}: not an integer") from None


def pytest_report_header(config: pytest.Config) -> str:
    return f"{SEED_VARIABLE}={test_seed_value()}"


@pytest.fixture
def test_seed() -> int:
    """The seed for anything a test draws at random (see SEED_VARIABLE)."""
    return test_seed_value()


@pytest.fixture
def repo() -> Path:
    return REPO


@pytest.fixture
def fixtures() -> Path:
    return FIXTURES


# The oldest Python the in-environment scripts (archlock/inenv) promise to run on.
OLDEST_PYTHON = "3.8"


def _answer(argv: list[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""


@pytest.fixture(scope="session")
def python38() -> str:
    """An interpreter of OLDEST_PYTHON on this host (on PATH, uv's or pyenv's); else skip."""
    name = f"python{OLDEST_PYTHON}"
    candidates = [shutil.which(name) or "", _answer(["uv", "python", "find", OLDEST_PYTHON])]
    for version in _answer(["pyenv", "versions", "--bare"]).split():
        if version.startswith(OLDEST_PYTHON + "."):
            candidates.append(str(Path(_answer(["pyenv", "prefix", version]), "bin", name)))
    for path in filter(None, candidates):
        check = "import sys; print('%d.%d' % sys.version_info[:2])"
        if Path(path).is_file() and _answer([path, "-c", check]) == OLDEST_PYTHON:
            return path
    pytest.skip(f"host-lacks: a Python {OLDEST_PYTHON} interpreter")
