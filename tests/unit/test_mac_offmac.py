"""Off macOS, setup-mac refuses in one line and names the session to use instead. These run
for real on this (Linux) machine: no recorded answers."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from archlock.mac.host import detect
from archlock.mac.system import HostSystem

REFUSAL = "setup-mac is for macOS on Apple Silicon and this host runs Linux"
SRC = str(Path(__file__).resolve().parents[2] / "src")

pytestmark = pytest.mark.skipif(
    sys.platform != "linux", reason="host-lacks: a Linux host (these check the refusal there)"
)


def test_the_real_host_is_not_a_mac() -> None:
    facts = detect(HostSystem())
    assert (
        facts.os_name == "Linux"
        and not facts.apple_silicon
        and not facts.translated
        and facts.macos is None
    )


def test_archlock_cli_refuses_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    from archlock.cli import main

    assert main(["setup-mac"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1 and REFUSAL in lines[0] and "use `nox -s verify`" in lines[0]


def test_python_m_archlock_mac_refuses_without_third_party_imports() -> None:
    """What the nox session runs first: the standard library only, no PyYAML, no Jinja."""
    code = (
        "import runpy, sys\n"
        "sys.argv = ['archlock.mac', '--check-host']\n"
        "try:\n    runpy.run_module('archlock.mac', run_name='__main__')\n"
        "except SystemExit as exit:\n"
        "    bad = sorted(m for m in ('yaml', 'jinja2', 'archlock.core.project', 'archlock.core.platforms') if m in sys.modules)\n"
        "    print('imported:', bad)\n    raise\n"
    )
    env = {**os.environ, "PYTHONPATH": SRC}
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False
    )
    assert proc.returncode == 2
    assert proc.stdout == "imported: []\n"
    assert proc.stderr.count("\n") == 1 and REFUSAL in proc.stderr
