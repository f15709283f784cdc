"""A Linux report reproduced in a throwaway venv on this host (`--venv`): the same path a macOS
report takes on a Mac. Real uv, real PyPI, the recorded command run again."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from archlock import cli
from archlock.inenv import probe, probe_system

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location(
    "envmaker", REPO / "tests" / "fixtures" / "reports" / "envmaker.py"
)
em = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(em)  # type: ignore[union-attr]
FAILING = "from packaging.version import LegacyVersion; print('LegacyVersion is here')"


def test_report_reproduced_in_a_throwaway_venv(tmp_path: Path) -> None:
    if (
        probe_system.normalize_arch(probe.System().machine()) != "x86_64"
        or probe.System().system() != "Linux"
    ):
        pytest.skip(
            "host-lacks: a linux-amd64 host (the report below is made and reproduced on one)"
        )
    project = tmp_path / "project"
    (project / "envs").mkdir(parents=True)
    (project / "requirements.txt").write_text("packaging==21.3\n")
    (project / "envs" / "linux-amd64-cpu.yaml").write_text(em.spec("linux-amd64", "cpu"))
    assert cli.main(["--project", str(project), "lock"]) == 0
    venv = em.make_venv(tmp_path / "venv")
    em.install(venv, Path("packaging==24.1"), offline=False)
    em.run_report(venv, project, tmp_path / "report.json", "python", "-c", FAILING)

    def repro(*extra: str) -> dict:
        out = tmp_path / "out.json"
        assert (
            cli.main(
                [
                    "--project",
                    str(project),
                    "repro",
                    str(tmp_path / "report.json"),
                    "--venv",
                    "--json",
                    str(out),
                    *extra,
                ]
            )
            == 0
        )
        return json.loads(out.read_text())["reproduction"]

    mine = repro()
    assert (mine["where"], mine["source"], mine["packages"], mine["status"]) == (
        "venv",
        "report",
        1,
        "reproduced",
    )
    assert mine["argv"][0].endswith("/venv/bin/python") and "LegacyVersion" in mine["signature"]
    locked = repro("--as-locked")
    assert (locked["source"], locked["status"]) == ("lock", "fixed-by-lock")
    assert locked["output_tail"] == ["LegacyVersion is here"]
