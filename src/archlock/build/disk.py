"""Room to build: refuse a build, before it starts, that the engine's disk cannot hold.

The estimate comes from the locks: the wheels each env installs. `build` asks `check_room`
with the engine's free space (`docker info` names its data root); a test passes its own.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from archlock.build import diskbudget
from archlock.core import docker as du
from archlock.core.project import Project
from archlock.errors import CheckFailed

GB = diskbudget.GB

FreeSpace = Callable[[], tuple[str, int] | None]  # (where, free bytes), None when unknown


@dataclass(frozen=True)
class Need:
    """Disk for building some envs' images, from diskbudget's estimate of each env's pylock."""

    image: int  # the images themselves: below this no build of them can fit
    cold: int  # a cold build's peak: uv's wheel cache, the venv, its copy and the export at once


def needed_bytes(project: Project, env_names: Iterable[str]) -> Need:
    """What building these envs' images needs (an env without a pylock counts 0: render already
    said its lock is missing); the same estimate the workflow sizes its runners by."""
    known = {spec.name for spec in project.all_envs()}
    image = cold = 0
    for name in sorted(set(env_names) & known):
        wheels = diskbudget.wheel_bytes(project.env_pylock(name))
        if wheels:
            estimate = diskbudget.plan(wheels)
            image, cold = image + estimate.image, cold + estimate.peak
    return Need(image, cold)


def engine_free_space() -> tuple[str, int] | None:
    """Free bytes on the engine's data root (`docker info` DockerRootDir); None when the
    engine does not say or its root is not on this machine (a remote engine)."""
    done = du.run(["info", "--format", "{{.DockerRootDir}}"], timeout=du.SHORT)
    root = done.stdout.strip() if done.ok else ""
    if not root or not Path(root).is_dir():
        return None
    return root, shutil.disk_usage(root).free


def check_room(need: Need, free_space: FreeSpace = engine_free_space) -> str | None:
    """CheckFailed, one line with the fix, when the engine's disk cannot hold the images; a note
    when it holds them but not a cold build's peak. A machine that built these envs before keeps
    their layers in the build cache, and a rebuild then needs far less than the cold peak: refusing
    there would refuse every warm rebuild on a small disk."""
    if need.image <= 0:
        return None
    found = free_space()
    if found is None:
        return None
    where, free = found
    if free < need.image:
        raise CheckFailed(
            f"{free / GB:.1f} GB free on {where} (the container engine's data root); the images "
            f"of this build alone need about {need.image / GB:.1f} GB (estimated from the locked "
            "wheels)",
            fix="run `archlock clean` to remove archlock's old images and build cache "
            "beyond the cap, or free space on that disk",
        )
    if free < need.cold:
        return (
            f"{free / GB:.1f} GB free on {where}: enough for the images ({need.image / GB:.1f} GB)"
            f" and a rebuild from cached layers, but a build with nothing cached peaks at about "
            f"{need.cold / GB:.1f} GB; if it stops with 'no space left on device', run "
            "`archlock clean` or free space on that disk"
        )
    return None
