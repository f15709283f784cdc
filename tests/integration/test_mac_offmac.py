"""Off macOS, `python -m archlock.mac --check-host` (what the nox session runs first) refuses in
one line with the standard library only: run for real."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REFUSAL = "setup-mac is for macOS on Apple Silicon and this host runs Linux"

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        sys.platform != "linux", reason="host-lacks: a Linux host (it checks the refusal there)"
    ),
]


SRC = str(Path(__file__).resolve().parents[2] / "src")


def test_python_m_archlock_mac_refuses_without_third_party_imports() -> None:
    """What the nox session runs first: the standard library only, no PyYAML, no Jinja."""
    code = (
        "import runpy, sys\n"
        "sys.argv = ['archlock.mac', '--check-host']\n"
        "try:\n    runpy.run_module('archlock.mac', run_name='__main__')\n"
        "except SystemExit as exit:\n"
        "    heavy = ('yaml', 'jinja2', 'archlock.core.project', 'archlock.core.platforms')\n"
        "    bad = sorted(m for m in heavy if m in sys.modules)\n"
        "    print('imported:', bad)\n    raise\n"
    )
    env = {**os.environ, "PYTHONPATH": SRC}
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False
    )
    assert proc.returncode == 2
    assert proc.stdout == "imported: []\n"
    assert proc.stderr.count("\n") == 1 and REFUSAL in proc.stderr
