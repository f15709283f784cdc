"""Room to build: refuse a build, before it starts, that the engine's disk cannot hold.

The estimate comes from the locks: the wheels each env installs. `build` asks `check_room`
with the engine's free space (`docker info` names its data root); a test passes its own.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterable
from pathlib import Path

from archlock.core import docker as du
from archlock.core.project import Project
from archlock.errors import CheckFailed
from archlock.lock import audit

# Peak disk of a build per byte of locked wheels. uv keeps the downloaded wheels unpacked in
# its cache mount (about 1.5x the wheel bytes: CUDA's .so files compress about 1.5:1), copies
# them into the venv (UV_LINK_MODE=copy: another 1.5x; a 4.1 GB CUDA lock gave a 6.2 GB venv
# layer), and BuildKit holds the finished layer while it exports it to the image store (up to
# 1x more). 1.5 + 1.5 + 1 = 4: below that, a build can fail late with "No space left on device"
# after minutes of downloads, which is what this check exists to prevent.
PEAK_PER_WHEEL_BYTE = 4
GB = 1_000_000_000

FreeSpace = Callable[[], tuple[str, int] | None]  # (where, free bytes), None when unknown


def needed_bytes(project: Project, env_names: Iterable[str]) -> int:
    """Peak disk for building these envs' images, from their pylocks' wheel sizes (an env
    without a pylock counts 0: render already said its lock is missing)."""
    specs = {spec.name: spec for spec in project.all_envs()}
    total = 0
    for name in sorted(set(env_names)):
        spec = specs.get(name)
        if spec is None or not project.env_pylock(name).is_file():
            continue
        total += sum(audit.wheel_size(p) for p in audit.load_pylock(project, spec))
    return total * PEAK_PER_WHEEL_BYTE


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
            f"needs about {needed / GB:.1f} GB ({PEAK_PER_WHEEL_BYTE}x the locked wheels)",
            fix="run `archlock clean` to remove archlock's old images and build cache "
            "beyond the cap, or free space on that disk",
        )
