"""What the macOS env needs, as plain data: Python version, macOS floor, lock, source builds.

`load_mac_env` is the one adapter to the project and env-spec API; everything else here works
on plain values so tests need no project on disk. Imports that need Python 3.10+ or PyYAML sit
inside functions: `python -m archlock.mac --check-host` must refuse on any Python >= 3.9.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from archlock.errors import ConfigError

MAC_ARM64_TAG = re.compile(r"macosx_\d+_\d+_(arm64|universal2)$")


@dataclass(frozen=True)
class MacEnv:
    name: str  # the env spec's name, e.g. "macos-arm64"
    python: str  # "3.11"
    macos_floor: str | None  # the spec's `macos` (the lock's floor), else the platform default
    lock: Path  # hashed requirements lock
    pylock: Path | None  # PEP 751 lock of the same env, if any: tells wheels from sdists


@dataclass(frozen=True)
class LockFacts:
    pins: dict[str, str]  # normalised name -> version
    needs_source_build: tuple[str, ...] | None  # None: the lock cannot tell


def load_mac_env(project_root: Path, env_name: str | None) -> MacEnv:
    """The macOS env of a project: `--env NAME`, else its only env on a macOS platform."""
    from archlock.core.project import (
        Project,
    )  # imported here: it needs PyYAML, the refusal does not

    project = Project.load(project_root)
    candidates = project.envs([env_name]) if env_name else project.all_envs()
    macs = [spec for spec in candidates if spec.platform.os == "macos"]
    if not macs:
        where = f"--env {env_name}" if env_name else str(project.envs_dir)
        raise ConfigError(
            f"{where}: no env with a macOS platform",
            fix="add envs/macos-arm64.yaml or pass --env NAME",
        )
    if len(macs) > 1:
        names = ", ".join(spec.name for spec in macs)
        raise ConfigError(
            f"{project.envs_dir}: several macOS envs ({names})", fix="choose one with --env NAME"
        )
    spec = macs[0]
    pylock = project.env_pylock(spec.name)
    return MacEnv(
        name=spec.name,
        python=spec.python,
        macos_floor=spec.macos or spec.platform.default_macos,
        lock=project.env_lock(spec.name),
        pylock=pylock if pylock.is_file() else None,
    )


def read_lock(env: MacEnv) -> LockFacts:
    if not env.lock.is_file():
        raise ConfigError(
            f"{env.lock}: the lock of env {env.name} does not exist", fix="run `nox -s lock`"
        )
    pins = parse_pins(env.lock.read_text(encoding="utf-8"))
    if env.pylock is None:
        return LockFacts(pins, None)
    return LockFacts(pins, source_builds(env.pylock.read_text(encoding="utf-8"), pins))


def parse_pins(text: str) -> dict[str, str]:
    """`name==version` lines of a hashed requirements lock (hash continuation lines skipped)."""
    from archlock.core.lockfile import pins  # packaging: not needed for the off-Mac refusal

    return pins(text)


def source_builds(pylock_text: str, pins: dict[str, str]) -> tuple[str, ...]:
    """Locked packages with no wheel for macOS arm64 (pure-Python or arm64/universal2)."""
    import tomllib  # Python 3.11+: imported here so the refusal runs on an older nox Python

    from archlock.core.lockfile import canonical

    data = tomllib.loads(pylock_text)
    missing = []
    for package in data.get("packages", []):
        name = canonical(str(package.get("name", "")))
        if pins.get(name) != str(package.get("version", pins.get(name))):
            continue  # not in this env's lock (another platform's pin)
        if not any(_wheel_fits_mac_arm64(wheel) for wheel in package.get("wheels", [])):
            missing.append(name)
    return tuple(sorted(missing))


def _wheel_fits_mac_arm64(wheel: dict[str, object]) -> bool:
    from archlock.core.rules.wheels import filename, platform_tags  # packaging: see above

    tags = platform_tags(filename(wheel))
    return any(tag == "any" or MAC_ARM64_TAG.search(tag) for tag in tags)


def required_macos(env: MacEnv, pins: dict[str, str]) -> tuple[str | None, str]:
    """The macOS the env needs and why: the lock's floor, raised by the locked torch if it must."""
    from archlock.core.platforms import macos_floor  # needs Python 3.10+, like tomllib above

    torch = pins.get("torch")
    floor = macos_floor(env.macos_floor, torch)
    if floor and floor[1]:
        return floor[0], f"torch {torch} in the lock ships wheels only for macOS {floor[0]}+"
    return env.macos_floor, f"the {env.name} lock targets macOS {env.macos_floor}"


def older(have: str, needed: str) -> bool:
    """Whether macOS `have` is below `needed` (PEP 440 order: 13.6 < 14.0 == 14); a version
    that is not one is not known to be older."""
    from archlock.core.rules.versions import below  # packaging: see above

    return below(have, needed) is True
