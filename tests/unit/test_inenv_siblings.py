"""probe.py and suite.py are split into sibling files (probe_*.py, suite_*.py) that travel with
them: every part is listed where the copying happens (SIBLINGS, read by verify's staging, the
report bundle and report.py), in an order that loads each part after the parts it uses, and a
copy of the files alone (no archlock package) runs as the package does."""

from __future__ import annotations

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
        sys.modules[f"archlock_{name}"].__file__.startswith(str(tmp_path))
        for name in probe.SIBLINGS
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
    with pytest.raises(SystemExit, match="suite_device.py must sit next to this file"):
        plain_load(monkeypatch, tmp_path / "suite.py", "archlock_suite")


def test_the_report_bundle_embeds_and_loads_the_probe_parts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bundle = tmp_path / "bundle.py"
    bundle.write_text(report_cli.bundle_text(bundle.name), encoding="utf-8")
    loaded = plain_load(monkeypatch, bundle, "bundle")
    for name in report.SIBLINGS:
        loaded.load(f"archlock_{name}")
    bundled_probe = sys.modules["archlock_probe"]
    assert bundled_probe.BUNDLED and bundled_probe.system is sys.modules["archlock_probe_system"]
    assert bundled_probe.SCHEMA == probe.SCHEMA
