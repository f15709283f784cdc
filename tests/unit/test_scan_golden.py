"""Golden test: the GPU-only research fixture yields exactly the recorded findings.

`tests/fixtures/scan/gpu_research/` is written the way GPU-only research code usually is;
`tests/fixtures/scan/gpu_research.golden.json` is the JSON report (`archlock scan --format json`)
it must produce, byte for byte. When a rule or message changes on purpose, regenerate it and
review the diff:

    ARCHLOCK_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/unit/test_scan_golden.py

The portable fixture (`tests/fixtures/scan/portable/`) is the same kind of project written to
run everywhere; it must produce no findings at all. The scan package itself must be clean too.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from archlock.scan.engine import scan_path
from archlock.scan.output import render_json

SCAN_FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "scan"
GOLDEN = SCAN_FIXTURES / "gpu_research.golden.json"
UPDATE = "ARCHLOCK_UPDATE_GOLDEN"


def _report(project: Path) -> str:
    return render_json(scan_path(project, project))


def test_gpu_research_fixture_matches_golden() -> None:
    report = _report(SCAN_FIXTURES / "gpu_research")
    if os.environ.get(UPDATE) == "1":  # update only writes: comparing with it would prove nothing
        GOLDEN.write_text(report, encoding="utf-8")
        pytest.skip(f"wrote {GOLDEN.name}: review its diff, then run without {UPDATE}")
    hint = f"scan output changed; if on purpose, rerun with {UPDATE}=1 and review the diff"
    assert report == GOLDEN.read_text(encoding="utf-8"), hint


def test_golden_covers_every_rule_the_fixture_is_written_to_show() -> None:
    findings = json.loads(GOLDEN.read_text(encoding="utf-8"))["findings"]
    expected = {"AL001", "AL002", "AL003"} | {f"AL10{n}" for n in range(1, 10)}
    assert {f["rule"] for f in findings} == expected


def test_portable_fixture_is_clean() -> None:
    result = scan_path(SCAN_FIXTURES / "portable", SCAN_FIXTURES / "portable")
    assert len(result.files) == 3
    assert result.findings == ()


def test_scan_package_scans_clean(repo: Path) -> None:
    package = repo / "src" / "archlock" / "scan"
    assert scan_path(package, repo).findings == ()
