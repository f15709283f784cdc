"""init pins the archlock it ran as (PEP 610 direct_url.json), never a bare name."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from archlock.cli import main
from archlock.errors import ConfigError
from archlock.init.source import from_direct_url, requirement

SHA = "3d3c42e5aac5ba805825da76410c181273ba90b1"
DIGEST = "ab" * 32


@pytest.mark.parametrize(
    ("direct", "pinned"),
    [
        (None, "archlock==0.1.0"),
        (
            {
                "url": "https://git.example/team/archlock.git",
                "vcs_info": {"vcs": "git", "commit_id": SHA, "requested_revision": "main"},
            },
            f"archlock @ git+https://git.example/team/archlock.git@{SHA}",
        ),
        (
            {
                "url": "https://git.example/team/tools.git",
                "subdirectory": "archlock",
                "vcs_info": {"vcs": "git", "commit_id": SHA},
            },
            f"archlock @ git+https://git.example/team/tools.git@{SHA}#subdirectory=archlock",
        ),
        (
            {"url": "file:///src/archlock", "dir_info": {"editable": True}},
            "archlock @ file:///src/archlock",
        ),
        (
            {
                "url": "file:///wheels/archlock-0.1.0-py3-none-any.whl",
                "archive_info": {"hashes": {"sha256": DIGEST}},
            },
            f"archlock @ file:///wheels/archlock-0.1.0-py3-none-any.whl#sha256={DIGEST}",
        ),
    ],
)
def test_the_noxfile_pins_exactly_the_source_init_ran_from(
    direct: dict[str, Any] | None, pinned: str
) -> None:
    assert from_direct_url(direct, "0.1.0") == pinned


@pytest.mark.parametrize(
    "direct",
    [
        {"url": "https://git.example/a.git", "vcs_info": {"vcs": "git", "commit_id": "main"}},
        {"url": "https://git.example/a b", "dir_info": {}},
        {"url": "file:///x", "other": {}},
        {"url": "file:///x.whl", "archive_info": {"hashes": {"sha256": "not hex"}}},
    ],
)
def test_an_unpinnable_source_is_one_config_error(direct: dict[str, Any]) -> None:
    with pytest.raises(ConfigError, match="direct_url.json"):
        from_direct_url(direct, "0.1.0")


def test_init_writes_the_pin_into_the_noxfile(tmp_path: Path, fixtures: Path) -> None:
    root = tmp_path / "trainer"
    shutil.copytree(fixtures / "projects" / "train-requirements", root)
    assert main(["--project", str(root), "init", "--no-lock"]) == 0
    text = (root / "noxfile.py").read_text()
    assert f'os.environ.get("ARCHLOCK_INSTALL", {requirement()!r})' in text
    assert requirement().startswith(("archlock==", "archlock @ "))
