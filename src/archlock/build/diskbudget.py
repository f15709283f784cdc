"""How much disk an env's image build needs at peak, from the wheel sizes in its lock.

A cold build holds the uv cache (the unpacked wheels) and the image's layers at once. The figures
below are estimates from measurements, not a guarantee; an env whose estimate exceeds what a
standard hosted runner has free gets, in the workflow, either a step that frees the runner's
preinstalled toolchains or the larger runner named in `[tool.archlock.ci] build-runners`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from archlock.core import tomlsrc

GB = 1_000_000_000
# The image is ~1.8x the wheels it installs: 7.5 GB for this repository's linux-amd64-cuda image,
# whose lock holds 4.15 GB of wheels (issue 21's measurement).
IMAGE_PER_WHEEL_BYTE = 1.8
# A cold build on a fresh machine peaks at ~2x its image: uv's cache holds the unpacked wheels
# (about the image again) while the layers are written, nothing else is copied (issue 22's
# bench: 14.89 GB for the 7.57 GB CUDA image, 1.97x; 0.98x with the wheels cached before).
PEAK_PER_IMAGE_BYTE = 2.0
SLACK = 1 * GB  # base image, checkout, build context
# GitHub documents at least 14 GB free on a standard hosted Linux runner
# (actions/runner-images#2840).
HOSTED_FREE = 14 * GB
# Removing the preinstalled Android SDK, .NET, GHC and CodeQL frees about 25 GB (reports in
# actions/runner-images#10386 and elsewhere); 20 GB is counted, to leave room for image changes.
FREED = 20 * GB
FREE_DISK_PATHS = (
    "/usr/local/lib/android",
    "/usr/share/dotnet",
    "/opt/ghc",
    "/usr/local/.ghcup",
    "/opt/hostedtoolcache/CodeQL",
)


@dataclass(frozen=True)
class DiskPlan:
    peak: int  # estimated bytes at a cold build's peak (no layer cached)
    image: int  # estimated bytes of the image itself: what stays once it is built
    free_disk: bool  # the hosted runner must free its preinstalled toolchains first
    too_big: bool  # more than a hosted runner has even after freeing: needs a larger runner

    @property
    def peak_gb(self) -> str:
        return f"{self.peak / GB:.1f} GB"


def wheel_bytes(pylock: Path) -> int:
    """The bytes of wheels a lock installs: per package, its largest listed wheel (0 if unknown)."""
    if not pylock.is_file():
        return 0
    fix = "regenerate it: run `archlock lock --force`"
    data = tomlsrc.load_toml(pylock, what="pylock file", fix=fix)
    packages = tomlsrc.array_of_tables(data, "packages", pylock, fix)
    return sum(
        max((_size(w) for w in tomlsrc.array_of_tables(p, "wheels", pylock, fix)), default=0)
        for p in packages
    )


def _size(wheel: dict[str, Any]) -> int:
    size = wheel.get("size")
    return size if isinstance(size, int) and not isinstance(size, bool) and size > 0 else 0


def plan(wheels: int) -> DiskPlan:
    """What a hosted runner needs for a build installing `wheels` bytes of wheels."""
    image = wheels * IMAGE_PER_WHEEL_BYTE
    peak = int(image * PEAK_PER_IMAGE_BYTE) + SLACK
    return DiskPlan(peak, int(image) + SLACK, peak > HOSTED_FREE, peak > HOSTED_FREE + FREED)
