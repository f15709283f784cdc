"""The image bench's own logic: the bump's constraint and the printed ratios (no engine)."""

from __future__ import annotations

import tomllib

import pytest

from archlock.build import bench_image
from archlock.errors import ExternalCommandError


def test_the_bump_excludes_the_locked_version_in_tool_uv() -> None:
    text = '[project]\nname = "x"\n\n[tool.uv]\ndefault-groups = ["dev"]\n'
    bumped = tomllib.loads(bench_image.excluding(text, "filelock", "3.20.0"))
    assert bumped["tool"]["uv"] == {
        "constraint-dependencies": ["filelock!=3.20.0"],
        "default-groups": ["dev"],
    }
    alone = tomllib.loads(bench_image.excluding('[project]\nname = "x"\n', "six", "1.16.0"))
    assert alone["tool"]["uv"]["constraint-dependencies"] == ["six!=1.16.0"]
    with pytest.raises(ExternalCommandError, match="constraint-dependencies is set already"):
        bench_image.excluding('[tool.uv]\nconstraint-dependencies = ["a<2"]\n', "six", "1")


def test_the_ratios_name_their_goals(capsys: pytest.CaptureFixture[str]) -> None:
    bench_image.print_image_ratios(
        {
            "env": "linux-amd64-cuda",
            "first": "sha256:a",
            "second": "sha256:a",
            "bumped": "filelock 3.20.0 -> 3.19.1",
            "image_bytes": 7_000_000_000,
            "new_bytes": 70_000_000,
            "largest_layer": 3_000_000_000,
            "layer_count": 9,
            "peak_growth": 10_500_000_000,
            "cold_seconds": 300.0,
            "empty_cache_peak_growth": 14_000_000_000,
            "empty_cache_cold_seconds": 420.0,
        }
    )
    out = capsys.readouterr().out
    assert "same image ID: yes (sha256:a / sha256:a)" in out
    assert "= 0.010 (goal <= 0.05)" in out
    assert "largest of 9 layers: 3.00 GB (goal < 4 GB)" in out
    assert "package cache warm, peak disk growth / image: 10.50 GB / 7.00 GB = 1.50" in out
    assert "package cache empty, peak disk growth / image: 14.00 GB / 7.00 GB = 2.00" in out
