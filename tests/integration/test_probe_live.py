"""The probe run for real: a live document, torch that fails to import or crashes, and the probe
as a plain file on Python 3.8 with only the standard library."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from archlock.inenv import probe, probe_system

pytestmark = pytest.mark.integration


PROBE_FILE = Path(probe.__file__)


def test_live_probe_document_without_torch() -> None:
    doc = probe.probe(with_torch=False)
    assert doc["schema"] == "archlock.probe/1"
    assert doc["errors"] == {}
    assert doc["python"]["arch"] == probe_system.normalize_arch(os.uname().machine)
    assert doc["binaries"]["foreign_total"] == 0 and doc["binaries"]["compiled"] > 0
    assert any(dist["name"] == "pytest" for dist in doc["distributions"])
    assert doc["torch"] == {"skipped": "--no-torch"}


def test_torch_import_failure_is_an_error_string(tmp_path: Path) -> None:
    (tmp_path / "torch").mkdir()
    (tmp_path / "torch" / "__init__.py").write_text(
        "raise OSError('libtorch_cpu.so: wrong ELF class')\n"
    )
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    done = subprocess.run(
        [sys.executable, str(PROBE_FILE), "--no-scan"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        timeout=120,
    )
    doc = json.loads(done.stdout)
    assert doc["torch"] == {
        "importable": False,
        "error": "OSError: libtorch_cpu.so: wrong ELF class",
    }


def test_torch_import_crash_is_recorded(tmp_path: Path) -> None:
    (tmp_path / "torch").mkdir()
    (tmp_path / "torch" / "__init__.py").write_text(
        "import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)\n"
    )
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    done = subprocess.run(
        [sys.executable, str(PROBE_FILE), "--no-scan"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        timeout=120,
    )
    assert (
        json.loads(done.stdout)["torch"]["error"]
        == "import torch killed the interpreter with signal 11"
    )


def test_plain_file_on_python_3_8_with_only_the_stdlib(tmp_path: Path, python38: str) -> None:
    copy = tmp_path / "probe.py"  # copied with its parts only: no archlock package next to it
    for name in ("probe", *probe.SIBLINGS):
        shutil.copy(PROBE_FILE.with_name(f"{name}.py"), tmp_path / f"{name}.py")
    out = tmp_path / "facts.json"
    subprocess.run(
        [python38, "-I", str(copy), "--output", str(out)], check=True, timeout=120, cwd=tmp_path
    )
    doc = json.loads(out.read_text())
    assert doc["python"]["version"].startswith("3.8.")
    assert doc["errors"] == {}
    assert doc["torch"]["importable"] is False
    assert "No module named 'torch'" in doc["torch"]["error"]
