"""Room to build: refuse a build, before it starts, that the engine's disk cannot hold.

The estimate comes from the locks: the wheels each env installs. `build` asks `check_room`
with the engine's free space (`docker info` names its data root); a test passes its own.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterable
from pathlib import Path

from archlock.build import diskbudget
from archlock.core import docker as du
from archlock.core.project import Project
from archlock.errors import CheckFailed

GB = diskbudget.GB

FreeSpace = Callable[[], tuple[str, int] | None]  # (where, free bytes), None when unknown


def needed_bytes(project: Project, env_names: Iterable[str]) -> int:
    """Peak disk for building these envs' images: diskbudget's estimate from each pylock's wheel
    sizes, the same figure the workflow sizes its runners by (an env without a pylock counts 0:
    render already said its lock is missing)."""
    known = {spec.name for spec in project.all_envs()}
    total = 0
    for name in sorted(set(env_names) & known):
        wheels = diskbudget.wheel_bytes(project.env_pylock(name))
        total += diskbudget.plan(wheels).peak if wheels else 0
    return total


def engine_free_space() -> tuple[str, int] | None:
    """Free bytes on the engine's data root (`docker info` DockerRootDir); None when the
    engine does not say or its root is not on this machine (a remote engine)."""
    done = du.run(["info", "--format", "{{.DockerRootDir}}"], timeout=du.SHORT)
    root = done.stdout.strip() if done.ok else ""
    if not root or not Path(root).is_dir():
        return None
    return root, shutil.disk_usage(root).free


def check_room(needed: int, free_space: FreeSpace = engine_free_space) -> None:
    """CheckFailed, one line with the fix, when the engine's disk has less free than `needed`."""
    if needed <= 0:
        return
    found = free_space()
    if found is None:
        return
    where, free = found
    if free < needed:
        raise CheckFailed(
            f"{free / GB:.1f} GB free on {where} (the container engine's data root); this build "
            f"needs about {needed / GB:.1f} GB at its peak (estimated from the locked wheels)",
            fix="run `archlock clean` to remove archlock's old images and build cache "
            "beyond the cap, or free space on that disk",
        )
