"""Room to build: the estimate from the locks' wheel sizes and the refusal before any step."""

from __future__ import annotations

from pathlib import Path

import pytest

from archlock.build import disk, diskbudget
from archlock.core.project import Project
from archlock.errors import CheckFailed

GB = disk.GB


def free(where: str, nbytes: int) -> disk.FreeSpace:
    return lambda: (where, nbytes)


def test_the_estimate_is_the_workflows_peak_from_the_locked_wheels(repo: Path) -> None:
    project = Project.load(repo)
    cuda = disk.needed_bytes(project, ["linux-amd64-cuda"])
    arm = disk.needed_bytes(project, ["linux-arm64-cpu"])
    # the CUDA lock carries about 4.1 GB of wheels (torch and the nvidia-* stack); build and the
    # workflow's runner sizing use one estimate
    wheels = diskbudget.wheel_bytes(project.env_pylock("linux-amd64-cuda"))
    assert 4 * GB < wheels < 5 * GB
    assert cuda == diskbudget.plan(wheels).peak
    assert 0 < arm < cuda / 10
    assert disk.needed_bytes(
        project, ["linux-arm64-cpu", "linux-amd64-cuda", "linux-arm64-cpu"]
    ) == (cuda + arm)  # each env once, however many targets name it
    assert disk.needed_bytes(project, ["no-such-env"]) == 0


def test_an_env_without_a_pylock_counts_nothing(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text("packaging\n")
    project = Project.load(tmp_path)
    assert disk.needed_bytes(project, [e.name for e in project.all_envs()]) == 0


@pytest.mark.parametrize(
    ("needed", "available", "refused"),
    [
        (16 * GB, 15 * GB, True),
        (16 * GB, 16 * GB - 1, True),
        (16 * GB, 16 * GB, False),
        (16 * GB, 40 * GB, False),
        (0, 0, False),  # nothing locked: nothing to estimate
    ],
)
def test_build_is_refused_below_the_estimate(needed: int, available: int, refused: bool) -> None:
    check = lambda: disk.check_room(needed, free("/var/lib/docker", available))  # noqa: E731
    if not refused:
        check()
        return
    with pytest.raises(CheckFailed) as caught:
        check()
    line = caught.value.line()
    assert line.startswith(f"{available / GB:.1f} GB free on /var/lib/docker")
    assert f"needs about {needed / GB:.1f} GB" in line and "archlock clean" in line
    assert "\n" not in line


def test_an_engine_that_does_not_say_where_it_keeps_data_is_not_refused() -> None:
    disk.check_room(100 * GB, lambda: None)
