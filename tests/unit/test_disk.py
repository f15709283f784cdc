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
    assert cuda == disk.Need(diskbudget.plan(wheels).image, diskbudget.plan(wheels).peak)
    # the 7.5 GB image, and a cold build's peak about twice that (uv's cache, then the layers)
    assert 7 * GB < cuda.image < 10 * GB and 1.7 < cuda.cold / cuda.image < 2.3
    assert 0 < arm.image < cuda.image / 4 and 0 < arm.cold < cuda.cold / 5
    both = disk.needed_bytes(project, ["linux-arm64-cpu", "linux-amd64-cuda", "linux-arm64-cpu"])
    # each env once, however many targets name it
    assert both == disk.Need(cuda.image + arm.image, cuda.cold + arm.cold)
    assert disk.needed_bytes(project, ["no-such-env"]) == disk.Need(0, 0)


def test_an_env_without_a_pylock_counts_nothing(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text("packaging\n")
    project = Project.load(tmp_path)
    assert disk.needed_bytes(project, [e.name for e in project.all_envs()]) == disk.Need(0, 0)


NEED = disk.Need(image=8 * GB, cold=24 * GB)


@pytest.mark.parametrize("available", [0, 5 * GB, 8 * GB - 1])
def test_build_is_refused_below_what_the_images_need(available: int) -> None:
    with pytest.raises(CheckFailed) as caught:
        disk.check_room(NEED, free("/var/lib/docker", available))
    line = caught.value.line()
    assert line.startswith(f"{available / GB:.1f} GB free on /var/lib/docker")
    assert "images of this build alone need about 8.0 GB" in line and "archlock clean" in line
    assert "\n" not in line


@pytest.mark.parametrize("available", [8 * GB, 22 * GB, 24 * GB - 1])
def test_room_for_the_images_but_not_a_cold_build_goes_on_with_a_note(available: int) -> None:
    """A warm machine (the layers in its build cache) rebuilds in far less than the cold peak:
    CI on a 25 GB-free machine was refused here every time until this became a note."""
    note = disk.check_room(NEED, free("/var/lib/docker", available))
    assert note is not None and "\n" not in note
    assert note.startswith(f"{available / GB:.1f} GB free on /var/lib/docker")
    assert "peaks at about 24.0 GB" in note and "no space left on device" in note


@pytest.mark.parametrize("available", [24 * GB, 400 * GB])
def test_room_for_a_cold_build_says_nothing(available: int) -> None:
    assert disk.check_room(NEED, free("/var/lib/docker", available)) is None


def test_nothing_locked_or_an_engine_that_does_not_say_is_not_refused() -> None:
    assert disk.check_room(disk.Need(0, 0), free("/var/lib/docker", 0)) is None
    assert disk.check_room(disk.Need(100 * GB, 300 * GB), lambda: None) is None
