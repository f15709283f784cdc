"""A report taken in an archlock image: a verify result read as a report, and the rebuild's
comparison of image IDs (the build itself stands in here: tests/integration/
test_reproducible_image.py rebuilds for real)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from archlock.build import build
from archlock.core.project import Project
from archlock.errors import ConfigError
from archlock.repro import rebuild
from archlock.repro import run as rr
from archlock.repro.reportfile import load_report

REPO = Path(__file__).resolve().parents[2]
REPORT = REPO / "tests" / "fixtures" / "reports" / "linux-amd64-venv.json"
IMAGE_ID = "sha256:" + "ab" * 32


def verify_result(tmp_path: Path, **image: Any) -> Path:
    probe = json.loads(REPORT.read_text())["probe"]
    result = {
        "schema": "archlock.verify/1",
        "env": "linux-amd64-cuda",
        "platform": "linux-amd64",
        "mode": "image",
        "image": {"tag": "app:it", "id": IMAGE_ID, "platform": "linux/amd64", **image},
        "created": "2026-12-05T10:00:00Z",
        "probe": probe,
    }
    path = tmp_path / "linux-amd64-cuda.image.json"
    path.write_text(json.dumps(result))
    return path


def test_a_verify_result_reads_as_a_report_with_its_image(tmp_path: Path) -> None:
    report = load_report(verify_result(tmp_path))
    assert report["lock"] == {"env": "linux-amd64-cuda", "sha256": None}
    assert report["command"] is None and report["probe"]["schema"] == "archlock.probe/1"
    assert rebuild.image_of(report) == {
        "tag": "app:it",
        "id": IMAGE_ID,
        "platform": "linux/amd64",
    }
    assert rebuild.image_of(load_report(REPORT)) is None  # a venv report: nothing to rebuild


def test_an_image_id_that_is_not_a_string_is_one_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"image\.id: expected a string or null, found int"):
        load_report(verify_result(tmp_path, id=5))


@pytest.mark.parametrize(
    ("rebuilt", "word"), [(IMAGE_ID, "bit-identical"), ("sha256:9", "differs")]
)
def test_the_rebuild_compares_image_ids(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], rebuilt: str, word: str
) -> None:
    asked: list[build.BuildOptions] = []

    def fake_build(options: build.BuildOptions) -> build.BuildReport:
        asked.append(options)
        image = build.BuiltImage("linux-amd64-cuda", "linux/amd64", ("t",), 1.0, rebuilt)
        return build.BuildReport(mode="buildx", images=[image])

    monkeypatch.setattr(build, "build", fake_build)
    project = Project.load(REPO)
    image = {"tag": "app:it", "id": IMAGE_ID}
    options = rr.Options(base="base:1", uv_image="uv:1")
    record = rebuild.rebuild(image, "f" * 64, project, "linux-amd64-cuda", options)
    assert record == {
        "report_id": IMAGE_ID,
        "rebuilt_id": rebuilt,
        "tag": "archlock-repro:rebuilt-ffffffffffff-linux-amd64-cuda",
        "identical": rebuilt == IMAGE_ID,
    }
    (options_used,) = asked
    assert options_used.targets == ("linux-amd64-cuda",) and options_used.network == "host"
    assert "*.args.BASE_IMAGE=base:1" in options_used.sets
    assert f"Image: {word}" in capsys.readouterr().out
