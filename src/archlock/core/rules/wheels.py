"""THE wheel-file answers: a wheel's file name, its platform tags (packaging's parser), its size
and the system floors its tags set (glibc from manylinux, macOS from macosx)."""

from __future__ import annotations

import re
from collections.abc import Mapping

from packaging.utils import InvalidWheelFilename, parse_wheel_filename

MANYLINUX_LEGACY = {"manylinux1": "2.5", "manylinux2010": "2.12", "manylinux2014": "2.17"}


def filename(wheel: Mapping[str, object]) -> str:
    """A PEP 751 wheel entry's file name: `name`, else the last part of `url` or `path`."""
    name = wheel.get("name") or str(wheel.get("url") or wheel.get("path") or "").rsplit("/", 1)[-1]
    return str(name)


def platform_tags(name: str) -> tuple[str, ...]:
    """The platform tags of a wheel file name, in the name's order; () if it is not a wheel's."""
    try:
        parse_wheel_filename(name)
    except InvalidWheelFilename:
        return ()
    return tuple(name.removesuffix(".whl").rsplit("-", 1)[-1].split("."))


def wheels(package: Mapping[str, object]) -> list[Mapping[str, object]]:
    """A locked package's wheel entries (PEP 751 `wheels`; none when it has only an sdist)."""
    listed = package.get("wheels")
    return [w for w in listed if isinstance(w, Mapping)] if isinstance(listed, list) else []


def package_tags(package: Mapping[str, object]) -> list[tuple[str, ...]]:
    """The platform tags of each wheel a locked package offers."""
    return [platform_tags(filename(wheel)) for wheel in wheels(package)]


def size_of(wheel: Mapping[str, object]) -> int:
    size = wheel.get("size")
    return size if isinstance(size, int) and not isinstance(size, bool) else 0


def wheel_size(package: Mapping[str, object]) -> int:
    """The bytes an install of the package downloads: its largest wheel's size."""
    return max((size_of(wheel) for wheel in wheels(package)), default=0)


def glibc_floor(tag: str) -> str | None:
    """The glibc a manylinux tag needs: manylinux_2_28_x86_64 -> 2.28, manylinux2014 -> 2.17."""
    found = re.match(r"^manylinux_(\d+)_(\d+)_", tag)
    if found:
        return f"{found.group(1)}.{found.group(2)}"
    return MANYLINUX_LEGACY.get(tag.split("_", 1)[0])


def macos_floor(tag: str) -> str | None:
    """The macOS a macosx tag needs: macosx_14_0_arm64 -> 14.0."""
    found = re.match(r"^macosx_(\d+)_(\d+)_", tag)
    return f"{found.group(1)}.{found.group(2)}" if found else None
