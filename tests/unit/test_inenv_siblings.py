"""probe.py and suite.py are split into sibling files (probe_*.py, suite_*.py) that travel with
them: every part is listed where the copying happens (SIBLINGS, read by verify's staging and the
report bundle), in an order that loads each part after the parts it uses, and a copy of the
files alone (no archlock package, nothing on sys.path) runs as the package does.

One loader: Python's import system. Every in-env script imports its siblings with a relative
import; a plain-file entry script names its folder the package `archlock_inenv` first, and the
report bundle registers its embedded scripts as that package's modules."""

from __future__ import annotations

import ast
import importlib.util
import json
import shutil
import sys
from pathlib import Path
from types import ModuleType

import pytest

from archlock.inenv import probe, report, suite
from archlock.repro import report_cli

INENV = Path(probe.__file__).parent


def part_names(prefix: str) -> set[str]:
    return {p.stem for p in INENV.glob(f"{prefix}_*.py")}


def test_every_part_is_listed_by_the_script_that_loads_it() -> None:
    assert set(probe.SIBLINGS) == part_names("probe")
    assert set(suite.SIBLINGS) == part_names("suite")


def test_report_loads_the_probe_parts_before_the_probe() -> None:
    listed = list(report.SIBLINGS)
    assert listed[: len(probe.SIBLINGS) + 1] == [*probe.SIBLINGS, "probe"]


def plain_load(monkeypatch: pytest.MonkeyPatch, path: Path, name: str) -> ModuleType:
    """`path` loaded as a plain file (no package), the way report.py loads it; sys.modules is
    restored afterwards."""
    monkeypatch.setattr(sys, "modules", dict(sys.modules))
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def test_a_copy_of_the_probe_and_its_parts_runs_alone(
    tmp_path: Path, fixtures: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("probe", *probe.SIBLINGS):
        shutil.copy(INENV / f"{name}.py", tmp_path / f"{name}.py")
    plain = plain_load(monkeypatch, tmp_path / "probe.py", "archlock_probe")
    assert all(
        sys.modules[f"archlock_inenv.{name}"].__file__.startswith(str(tmp_path))
        for name in probe.SIBLINGS
    )
    assert "archlock.inenv.probe_system" not in sys.modules or (
        sys.modules["archlock.inenv.probe_system"] is not plain.system
    )
    answers = json.loads((fixtures / "probe" / "answers" / "linux-arm64-qemu.json").read_text())
    recorded = plain.RecordedSystem(answers)
    doc = plain.probe(sysm=recorded, with_torch=False, with_scan=False)
    expected = probe.probe(sysm=probe.RecordedSystem(answers), with_torch=False, with_scan=False)
    assert doc == expected and doc["emulation"]["emulated"] is True


def test_a_copy_of_the_suite_and_its_parts_runs_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("suite", *suite.SIBLINGS):
        shutil.copy(INENV / f"{name}.py", tmp_path / f"{name}.py")
    plain = plain_load(monkeypatch, tmp_path / "suite.py", "archlock_suite")
    assert plain.CHECKS == suite.CHECKS and plain.LOSS_TOLERANCE == suite.LOSS_TOLERANCE
    assert plain.training.check_parity("cpu", [1.0], [1.0])["status"] == "pass"


def test_a_part_missing_from_the_copy_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copy(INENV / "suite.py", tmp_path / "suite.py")
    with pytest.raises(SystemExit) as caught:
        plain_load(monkeypatch, tmp_path / "suite.py", "archlock_suite")
    message = str(caught.value)
    assert message.startswith("suite.py: cannot import name 'suite_device'")
    assert "its parts must sit next to this file: suite_device.py, suite_kernels.py" in message


def test_the_report_bundle_embeds_and_loads_the_probe_parts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bundle = tmp_path / "bundle.py"
    bundle.write_text(report_cli.bundle_text(bundle.name), encoding="utf-8")
    loaded = plain_load(monkeypatch, bundle, "bundle")
    for name in report.SIBLINGS:
        loaded.load(name)
    bundled_probe = sys.modules["archlock_inenv.probe"]
    assert (
        bundled_probe.BUNDLED and bundled_probe.system is sys.modules["archlock_inenv.probe_system"]
    )
    assert bundled_probe.SCHEMA == probe.SCHEMA
    bundled_report = loaded.load("report")
    assert bundled_report.MODE == "bundle" and bundled_report.probe is bundled_probe


SCRIPTS = sorted(p for p in INENV.glob("*.py") if p.name != "__init__.py")


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_every_script_finds_its_siblings_with_a_relative_import_only(script: Path) -> None:
    """No loader of its own: no spec_from_file_location, no sys.modules lookup, no helper."""
    text = script.read_text(encoding="utf-8")
    assert "def sibling(" not in text and "def load_sibling(" not in text
    assert "spec_from_file_location" not in text and 'sys.modules["archlock_' not in text
    sibling_names = {p.stem for p in SCRIPTS}
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.ImportFrom) and node.level == 0:
            assert (node.module or "").split(".")[0] not in sibling_names, (
                f"{script.name}: import siblings relatively (from . import ...)"
            )
        if isinstance(node, ast.Import):
            names = {alias.name.split(".")[0] for alias in node.names}
            assert not names & sibling_names, f"{script.name}: from . import {names}"


def test_a_plain_copy_runs_isolated_from_sys_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The folder is never put on sys.path: a module of a sibling's name elsewhere is not taken."""
    for name in ("probe", *probe.SIBLINGS):
        shutil.copy(INENV / f"{name}.py", tmp_path / f"{name}.py")
    decoy = tmp_path / "decoy"
    decoy.mkdir()
    (decoy / "probe_system.py").write_text("raise RuntimeError('the decoy was imported')\n")
    monkeypatch.syspath_prepend(str(decoy))
    plain = plain_load(monkeypatch, tmp_path / "probe.py", "archlock_probe")
    assert plain.system.__file__ == str(tmp_path / "probe_system.py")
    assert str(tmp_path) not in sys.path
