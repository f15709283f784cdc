"""The entry point, as a real process whose reader goes away (`archlock matrix | head`)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

SRC = Path(__file__).resolve().parents[2] / "src"
LONG_OUTPUT = f"""
import sys
sys.path.insert(0, {str(SRC)!r})
import archlock.cli, archlock.__main__ as entry
def main():
    for i in range(200000):
        print("row", i)
    return 0
archlock.cli.main = main
entry.run()
"""


def test_a_reader_that_leaves_ends_the_run_quietly_with_141() -> None:
    writer = subprocess.Popen(
        [sys.executable, "-c", LONG_OUTPUT], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert writer.stdout is not None and writer.stderr is not None
    first = writer.stdout.readline()
    writer.stdout.close()  # what `head -1` does after its line
    err = writer.stderr.read()
    writer.stderr.close()
    assert writer.wait(timeout=60) == 141
    assert first == b"row 0\n"
    assert err == b""  # no BrokenPipeError traceback, no "Exception ignored" line
