"""The probe imports every installed distribution's top-level modules, for real, in a fresh venv
with planted distributions: one that imports, one built without its compiled backend (the shape
of a source-only CUDA extension installed without torch), one whose module needs an undeclared
dependency, one that crashes the interpreter, one found through RECORD only."""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from archlock.inenv import probe

pytestmark = pytest.mark.integration

PROBE_FILE = Path(probe.__file__)


def plant(
    site: Path, dist: str, version: str, files: dict[str, str], top_level: str | None
) -> None:
    """A distribution as an installer leaves it: its files and a .dist-info with a RECORD."""
    info = site / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    (info / "INSTALLER").write_text("uv\n")
    records = [f"{info.name}/METADATA,,", f"{info.name}/RECORD,,"]
    if top_level is not None:
        (info / "top_level.txt").write_text(top_level)
        records.append(f"{info.name}/top_level.txt,,")
    for relative, text in files.items():
        path = site / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        records.append(f"{relative},,")
    records.append(f"../../../bin/{dist}-tool,,")  # a script: not a module
    (info / "RECORD").write_text("\n".join(records) + "\n")


@pytest.fixture
def venv(tmp_path: Path) -> Path:
    root = tmp_path / "venv"
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(root)], check=True, timeout=120
    )
    python = root / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.strip()
    site = Path(purelib)
    plant(site, "good-pkg", "1.0", {"good_pkg/__init__.py": "VALUE = 1\n"}, "good_pkg\n")
    plant(
        site,
        "adam-atan2",
        "0.0.3",
        {"adam_atan2/__init__.py": "from adam_atan2_backend import adam_atan2_cuda\n"},
        "adam_atan2\n",
    )
    plant(
        site,
        "needs-dep",
        "2.0",
        {"needs_dep.py": "import not_installed_anywhere\n"},
        None,  # no top_level.txt: found through RECORD
    )
    plant(
        site,
        "crasher",
        "0.1",
        {"crasher/__init__.py": "import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)\n"},
        "crasher\n",
    )
    assert sysconfig.get_paths()["purelib"] != purelib  # not this interpreter's own site
    return python


def test_a_distribution_that_does_not_import_is_named_with_its_module(venv: Path) -> None:
    done = subprocess.run(
        [str(venv), str(PROBE_FILE), "--no-torch", "--no-scan"],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    doc = json.loads(done.stdout)
    assert doc["errors"] == {}
    imports = doc["imports"]
    assert imports["checked"] == 4
    failed = {f["distribution"]: f for f in imports["failed"]}
    assert sorted(failed) == ["adam-atan2", "crasher", "needs-dep"]  # good-pkg imports
    assert failed["adam-atan2"] == {
        "distribution": "adam-atan2",
        "version": "0.0.3",
        "module": "adam_atan2",
        "error": "ModuleNotFoundError: No module named 'adam_atan2_backend'",
    }
    assert failed["needs-dep"]["module"] == "needs_dep"  # from RECORD
    assert failed["crasher"]["error"] == (
        "the interpreter exited -11 while importing it"  # SIGSEGV: the others still checked
    )
