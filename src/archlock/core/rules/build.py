"""The lock's torch build: what it is (`Expectations`), whether it serves its env, and whether an
installed torch is the lock's.

`Expectations` is what `archlock lock` derives from an env's pylock (archlock.lock.expect writes
and reads it as `envs/locks/<env>.expect.json`). The rules here are asked at lock time
(archlock.lock.fit) and on a machine (archlock.core.diagnose, for verify and repro).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from archlock.core.rules.wheels import wheel_size
from archlock.core.spec import EnvSpec

CUDA_RUNTIME_RE = re.compile(r"^nvidia-cuda-runtime(-cu\d+)?$")
CUDA_STACK_RE = re.compile(r"^(nvidia-|cuda-)")
CPU_INDEX_FIX = (
    "take torch's +cpu build from the PyTorch CPU index: set `torch: {{index: pytorch-cpu, "
    "variant: cpu}}` in {file} with the index URL under [tool.archlock.indexes] "
    "(envs/README.md), or set `accept-cuda-stack: true` in {file} to keep this build"
)


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


@dataclass(frozen=True)
class Misfit:
    """Why a lock cannot serve its env or a machine, and the fix true for that cause."""

    kind: str  # "build" | "platform" | "driver" | "gpu" | "glibc" | "macos"
    why: str
    fix: str


# -- the CUDA stack -------------------------------------------------------------------------
Package = TypeVar("Package", bound=Mapping[str, object])  # a PEP 751 [[packages]] table


def cuda_stack(packages: Sequence[Package]) -> list[Package]:
    """The locked nvidia-* / cuda-* packages: what a CUDA build of torch drags in."""
    return [p for p in packages if CUDA_STACK_RE.match(str(p.get("name", "")))]


def cuda_stack_bytes(packages: Sequence[Mapping[str, object]]) -> int:
    return sum(wheel_size(p) for p in cuda_stack(packages))


def cuda_stack_unwanted(env: EnvSpec) -> bool:
    """THE CUDA-stack rule: a cpu env does not carry the CUDA stack unless its spec says
    `accept-cuda-stack: true`. A cuda env needs it; an mps env's platform has none to carry."""
    return env.accelerator == "cpu" and not env.accept_cuda_stack


def cuda_of_pins(pins: Mapping[str, str]) -> str | None:
    """CUDA major.minor of the CUDA runtime wheel among a lock's pins ({name: version})."""
    runtime = next((v for name, v in sorted(pins.items()) if CUDA_RUNTIME_RE.match(name)), None)
    return ".".join(runtime.split(".")[:2]) if runtime else None


# -- the build against the env --------------------------------------------------------------
def build_misfit(env: EnvSpec, exp: Expectations) -> Misfit | None:
    """The locked torch build is not what the env's accelerator needs: the lock is wrong."""
    what = f"the lock resolves torch {exp.torch}, a {exp.build_name()} ({exp.evidence})"
    file = env.path.name
    if exp.build in ("cuda", "rocm") and cuda_stack_unwanted(env):
        size = f"{exp.cuda_stack_bytes / 1e9:.2f} GB of nvidia-*/cuda-* wheels"
        return Misfit(
            "build",
            f"{what}, for cpu env {env.name}: {size} for a machine without a GPU",
            CPU_INDEX_FIX.format(file=file),
        )
    if env.accelerator == "cuda" and exp.build not in (None, "cuda"):
        source = f"index {env.torch_index!r}" if env.torch_index else "PyPI"
        return Misfit(
            "build",
            f"{what}, for cuda env {env.name}: {source} serves no CUDA build of it",
            f"take a CUDA build: set torch.index and torch.variant (e.g. cu128) in {file} to "
            "the PyTorch CUDA index, or make it a cpu env",
        )
    if env.accelerator == "mps" and exp.build not in (None, "mps"):
        return Misfit(
            "build",
            f"{what}, for mps env {env.name}",
            f"drop torch.index / torch.variant from {file}: PyPI's macOS arm64 wheel is the "
            "MPS build",
        )
    return None


# -- an installed torch against the lock (or, without expectations, the env) --------------
def locked_build_text(env: EnvSpec, exp: Expectations | None) -> str:
    """How the lock's build is said: "CUDA 13.2 build", "+cpu build"; from the spec when the
    lock's expectations are unknown (the CUDA version is then the lock's, unsaid)."""
    label = (exp.torch or "").partition("+")[2] if exp else env.torch_variant
    if label:
        return f"+{label} build"
    if exp:
        return exp.build_name()
    return env.accelerator_facts.build_text.format(cuda="").replace("  ", " ")


def build_problem(
    env: EnvSpec, exp: Expectations | None, build: str | None, cuda: str | None, label: str
) -> str | None:
    """Why an installed torch of this build (inenv.locate.build_of's answer) and local label is
    not the lock's, or None when it is (or either is unknown). The fix is a re-sync."""
    if exp is None:  # no expectations: the spec says what the lock means
        return _spec_build_problem(env, build, label)
    if build is None or exp.build is None:
        return None
    locked_label = (exp.torch or "").partition("+")[2]
    if locked_label and label != locked_label:
        return f"the lock has the +{locked_label} build"
    if build == exp.build and (build != "cuda" or cuda == exp.cuda):
        return None
    article = "an" if exp.build_name()[:1] in "AEIMO" else "a"  # an MPS build, a CUDA build
    return f"the lock has {article} {exp.build_name()}"


def _spec_build_problem(env: EnvSpec, build: str | None, label: str) -> str | None:
    if build is None:
        return None
    if env.torch_variant:
        variant = env.torch_variant
        return None if label == variant else f"{env.name} needs the +{variant} build"
    accelerator = env.accelerator_facts
    if build not in accelerator.builds:
        return accelerator.wrong_build.format(env=env.name)
    return None
