"""Test options shared by every suite.

* Unit tests (default) need no network, no docker and no torch download.
* `--integration` also runs tests marked `integration` / `docker` (real uv against PyPI, real
  image builds, a real browser). Under `--integration` a skipped test FAILS the run unless its
  reason starts with "host-lacks:" (e.g. no GPU, no Mac): CI must never pass by skipping.
"""

from __future__ import annotations

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
    if not item.config.getoption("--integration") or not report.skipped:
        return
    reason = str(report.longrepr[-1]) if isinstance(report.longrepr, tuple) else str(report.longrepr)
    reason = reason.removeprefix("Skipped: ")
    if not reason.startswith(ALLOWED_SKIP_PREFIX):
        report.outcome = "failed"
        report.longrepr = f"skipped under --integration, which CI treats as a failure: {reason}"


@pytest.fixture
def repo() -> Path:
    return REPO


@pytest.fixture
def fixtures() -> Path:
    return FIXTURES
