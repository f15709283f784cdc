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
"""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from archlock.core import platforms
from archlock.core.fsutil import GENERATED_MARK
from archlock.core.spec import EnvSpec

SCHEMA = "archlock.expect/1"
REGENERATE = "archlock lock"
CUDA_RUNTIME_RE = re.compile(r"^nvidia-cuda-runtime(-cu\d+)?$")
CUDA_STACK_RE = re.compile(r"^(nvidia-|cuda-)")
MANYLINUX_LEGACY = {"manylinux1": "2.5", "manylinux2010": "2.12", "manylinux2014": "2.17"}


@dataclass(frozen=True)
class Floor:
    """The lowest version of a system component the locked wheels accept, and who sets it."""

    version: str
    package: str  # the package whose wheels set the floor
    tag: str  # the wheel tag that says so, e.g. manylinux_2_28_x86_64


@dataclass(frozen=True)
class Expectations:
    env: str
    platform: str
    torch: str | None  # the locked version, local label included ("2.13.0+cpu")
    build: str | None  # "cuda" | "cpu" | "mps" | "rocm"; None without torch
    cuda: str | None  # CUDA major.minor of a CUDA build
    evidence: str  # how the build was told, for messages
    cuda_stack_bytes: int = 0  # size of the nvidia-* / cuda-* wheels in the lock
    driver: str | None = None  # the oldest NVIDIA driver the CUDA build runs on
    capabilities: tuple[str, str | None] | None = None  # compute capabilities it can carry
    macos: Floor | None = None
    glibc: Floor | None = None
    notes: tuple[str, ...] = field(default=())

    def build_name(self) -> str:
        if self.build == "cuda":
            return f"CUDA {self.cuda} build"
        return {"cpu": "CPU-only build", "mps": "MPS build", "rocm": "ROCm build"}.get(
            self.build or "", "no torch"
        )


# -- deriving -------------------------------------------------------------------------------
def derive(env: EnvSpec, pylock: str) -> Expectations:
    """What the env's pylock (uv's PEP 751 output for its platform) expects."""
    packages = tomllib.loads(pylock).get("packages", [])
    torch = next((p for p in packages if p["name"] == "torch"), None)
    build, cuda, evidence = torch_build(env, torch, packages)
    stack = [p for p in packages if CUDA_STACK_RE.match(p["name"])]
    return Expectations(
        env=env.name,
        platform=env.platform.name,
        torch=torch["version"] if torch else None,
        build=build,
        cuda=cuda,
        evidence=evidence,
        cuda_stack_bytes=sum(_wheel_size(p) for p in stack),
        driver=platforms.cuda_min_driver(cuda) if cuda else None,
        capabilities=platforms.cuda_capability_range(cuda) if cuda else None,
        macos=wheel_floor(packages, _macos_tag_floor),
        glibc=wheel_floor(packages, _glibc_tag_floor),
    )


def torch_build(
    env: EnvSpec, torch: dict[str, Any] | None, packages: list[dict[str, Any]]
) -> tuple[str | None, str | None, str]:
    if torch is None:
        return None, None, "the lock has no torch"
    label = str(torch["version"]).partition("+")[2]
    cu = re.fullmatch(r"cu(\d+)(\d)", label)
    if cu:
        return "cuda", f"{cu.group(1)}.{cu.group(2)}", f"its local version +{label}"
    if label.startswith("cpu"):
        return "cpu", None, f"its local version +{label}"
    if label.startswith("rocm"):
        return "rocm", None, f"its local version +{label}"
    runtime = next((p for p in packages if CUDA_RUNTIME_RE.match(p["name"])), None)
    if runtime:
        cuda = cuda_of_pins({runtime["name"]: str(runtime["version"])})
        return "cuda", cuda, f"the lock's {runtime['name']} {runtime['version']}"
    if env.platform.os == "macos":
        return "mps", None, "the macOS arm64 wheel (MPS)"
    return "cpu", None, "no nvidia-cuda-runtime wheel in the lock"


def cuda_of_pins(pins: dict[str, str]) -> str | None:
    """CUDA major.minor of the CUDA runtime wheel among a lock's pins ({name: version})."""
    runtime = next((v for name, v in sorted(pins.items()) if CUDA_RUNTIME_RE.match(name)), None)
    return ".".join(runtime.split(".")[:2]) if runtime else None


def _wheel_names(package: dict[str, Any]) -> list[str]:
    return [
        str(w.get("name") or w.get("url") or "").rsplit("/", 1)[-1]
        for w in package.get("wheels", [])
    ]


def _wheel_size(package: dict[str, Any]) -> int:
    return max((int(w.get("size", 0)) for w in package.get("wheels", [])), default=0)


def _platform_tags(wheel: str) -> list[str]:
    stem = wheel.removesuffix(".whl")
    return stem.rsplit("-", 1)[-1].split(".") if stem.count("-") >= 4 else []


def _glibc_tag_floor(tag: str) -> str | None:
    found = re.match(r"^manylinux_(\d+)_(\d+)_", tag)
    if found:
        return f"{found.group(1)}.{found.group(2)}"
    return MANYLINUX_LEGACY.get(tag.split("_", 1)[0])


def _macos_tag_floor(tag: str) -> str | None:
    found = re.match(r"^macosx_(\d+)_(\d+)_", tag)
    return f"{found.group(1)}.{found.group(2)}" if found else None


def wheel_floor(packages: list[dict[str, Any]], floor_of: Any) -> Floor | None:
    """The highest of the packages' floors; a package's floor is its most lenient wheel's
    (an installer takes any wheel that fits). Pure-Python wheels and sdists set none."""
    highest: Floor | None = None
    for package in packages:
        best: Floor | None = None
        for wheel in _wheel_names(package):
            for tag in _platform_tags(wheel):
                version = floor_of(tag)
                if version is None:
                    continue
                if best is None or _key(version) < _key(best.version):
                    best = Floor(version, package["name"], tag)
        if best and (highest is None or _key(best.version) > _key(highest.version)):
            highest = best
    return highest


def _key(version: str) -> tuple[int, ...]:
    return platforms.version_tuple(version)


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
