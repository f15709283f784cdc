"""What an env's lock expects of torch and of the machine: derived from the locked wheels.

`archlock lock` derives an `Expectations` from each env's `pylock.<env>.toml` and writes it
next to the lock as `envs/locks/<env>.expect.json` (schema `archlock.expect/1`); verify reads it
back through `load()`. Nothing here comes from the env spec: the spec says what the team's
machines impose (`machines:`), the lock says what the locked build needs.

* torch: the locked release and its build. A local version label decides first (`+cpu`,
  `+cu128` -> CUDA 12.8, `+rocm6.2`); otherwise the CUDA runtime wheel torch pins
  (`nvidia-cuda-runtime[-cuNN]`, whose version is the CUDA release), else MPS on macOS and
  CPU-only elsewhere.
* needs: the oldest NVIDIA driver a CUDA build runs on and the compute capabilities its CUDA
  release can carry kernels for (both from `archlock.core.platforms`), the macOS floor of the
  wheels' `macosx_X_Y` tags and the glibc floor of their `manylinux` tags, each with the package
  that sets it.

The types (`Expectations`, `Floor`) and the rules that read them live in archlock.core.rules.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from archlock.core import platforms
from archlock.core.fsutil import GENERATED_MARK
from archlock.core.rules import wheels
from archlock.core.rules.build import (
    CUDA_RUNTIME_RE,
    Expectations,
    Floor,
    cuda_of_pins,
    cuda_stack_bytes,
)
from archlock.core.rules.versions import version_tuple
from archlock.core.spec import EnvSpec
from archlock.inenv.locate import build_of

SCHEMA = "archlock.expect/1"
REGENERATE = "archlock lock"


# -- deriving -------------------------------------------------------------------------------
def derive(env: EnvSpec, pylock: str) -> Expectations:
    """What the env's pylock (uv's PEP 751 output for its platform) expects."""
    packages = tomllib.loads(pylock).get("packages", [])
    torch = next((p for p in packages if p["name"] == "torch"), None)
    build, cuda, evidence = torch_build(env, torch, packages)
    return Expectations(
        env=env.name,
        platform=env.platform.name,
        torch=torch["version"] if torch else None,
        build=build,
        cuda=cuda,
        evidence=evidence,
        cuda_stack_bytes=cuda_stack_bytes(packages),
        driver=platforms.cuda_min_driver(cuda) if cuda else None,
        capabilities=platforms.cuda_capability_range(cuda) if cuda else None,
        macos=wheel_floor(packages, wheels.macos_floor),
        glibc=wheel_floor(packages, wheels.glibc_floor),
    )


def torch_build(
    env: EnvSpec, torch: dict[str, Any] | None, packages: list[dict[str, Any]]
) -> tuple[str | None, str | None, str]:
    """(build, CUDA version, how it was told): the local label decides first (build_of, the one
    classification), then the CUDA runtime wheel torch pins, then the platform."""
    if torch is None:
        return None, None, "the lock has no torch"
    version = str(torch["version"])
    build, cuda = build_of({}, version)
    if build is not None:
        return build, cuda, f"its local version +{version.partition('+')[2]}"
    runtime = next((p for p in packages if CUDA_RUNTIME_RE.match(p["name"])), None)
    if runtime:
        cuda = cuda_of_pins({runtime["name"]: str(runtime["version"])})
        return "cuda", cuda, f"the lock's {runtime['name']} {runtime['version']}"
    if env.platform.os == "macos":
        return "mps", None, "the macOS arm64 wheel (MPS)"
    return "cpu", None, "no nvidia-cuda-runtime wheel in the lock"


def wheel_floor(
    packages: list[dict[str, Any]], floor_of: Callable[[str], str | None]
) -> Floor | None:
    """The highest of the packages' floors; a package's floor is its most lenient wheel's
    (an installer takes any wheel that fits). Pure-Python wheels and sdists set none."""
    highest: Floor | None = None
    for package in packages:
        best: Floor | None = None
        for tags in wheels.package_tags(package):
            for tag in tags:
                version = floor_of(tag)
                if version is None:
                    continue
                if best is None or version_tuple(version) < version_tuple(best.version):
                    best = Floor(version, package["name"], tag)
        if best and (
            highest is None or version_tuple(best.version) > version_tuple(highest.version)
        ):
            highest = best
    return highest


# -- the file next to the lock --------------------------------------------------------------
def path_for(locks_dir: Path, env_name: str) -> Path:
    return locks_dir / f"{env_name}.expect.json"


def to_json(expect: Expectations) -> str:
    doc = {
        "generated": f"{GENERATED_MARK} - do not edit by hand. Regenerate with: {REGENERATE}",
        "schema": SCHEMA,
        **asdict(expect),
    }
    doc.pop("notes")
    return json.dumps(doc, indent=2) + "\n"


def from_json(text: str) -> Expectations:
    doc = json.loads(text)
    if doc.get("schema") != SCHEMA:
        raise ValueError(f"schema {doc.get('schema')!r}, not {SCHEMA}")
    floors = {k: Floor(**doc[k]) if doc.get(k) else None for k in ("macos", "glibc")}
    caps = doc.get("capabilities")
    fields = {k: v for k, v in doc.items() if k not in ("generated", "schema")}
    return Expectations(**{**fields, **floors, "capabilities": tuple(caps) if caps else None})


def load(locks_dir: Path, env: EnvSpec) -> Expectations | None:
    """The lock's expectations: the file `archlock lock` wrote, else derived from the pylock
    (a lock from before expectations existed), else None (no lock)."""
    path = path_for(locks_dir, env.name)
    if path.is_file():
        try:
            return from_json(path.read_text(encoding="utf-8"))
        except (ValueError, TypeError, KeyError):
            pass  # unreadable: fall back to the pylock it was derived from
    pylock = locks_dir / f"pylock.{env.name}.toml"
    if not pylock.is_file():
        return None
    derived = derive(env, pylock.read_text(encoding="utf-8"))
    note = f"{path.name} is missing or unreadable: derived from {pylock.name} (run `{REGENERATE}`)"
    return replace(derived, notes=(note,))
