"""Does the locked build fit its env, and the machines it must serve?

One set of rules, used twice: `archlock lock` refuses a lock that cannot run where the env says
it must (`refuse`), before anything is built; `archlock verify` runs the same rules on the
machine it is on (`check_machine`), and the diagnosis (archlock.core.diagnose) compares the
installed torch with the lock's build (`lock_build_problem`) before the lock with the env
(`build_misfit`). Each misfit's fix names what is actually wrong: the spec, the lock, the
machine, or the installed env (only then "re-sync from the lock").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from archlock.core import platforms
from archlock.core.spec import EnvSpec
from archlock.errors import ConfigError
from archlock.lock.expect import Expectations, Floor
from archlock.lock.machines import Machine, from_probe

CPU_INDEX_FIX = (
    "take torch's +cpu build from the PyTorch CPU index: set `torch: {{index: pytorch-cpu, "
    "variant: cpu}}` in {file} with the index URL under [tool.archlock.indexes] "
    "(envs/README.md), or set `accept-cuda-stack: true` in {file} to keep this build"
)


@dataclass(frozen=True)
class Misfit:
    kind: str  # "build" | "platform" | "driver" | "gpu" | "glibc" | "macos"
    why: str
    fix: str


def _v(version: str) -> tuple[int, ...]:
    return platforms.version_tuple(version)


# -- the build against the env --------------------------------------------------------------
def build_misfit(env: EnvSpec, exp: Expectations) -> Misfit | None:
    """The locked torch build is not what the env's accelerator needs: the lock is wrong."""
    what = f"the lock resolves torch {exp.torch}, a {exp.build_name()} ({exp.evidence})"
    file = env.path.name
    if env.accelerator == "cpu" and exp.build in ("cuda", "rocm") and not env.accept_cuda_stack:
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


# -- the build against a machine ------------------------------------------------------------
def machine_misfits(env: EnvSpec, exp: Expectations, machine: Machine, where: str) -> list[Misfit]:
    """Why the locked build cannot run on `machine`. `where` is "profile", "host" or "image"
    (in an image, glibc is the image's own and the fix is its base)."""
    found: list[Misfit] = []
    if where == "profile" and machine.platform != env.platform:
        label = machine.platform.name if machine.platform else f"{machine.os} {machine.arch}"
        return [
            Misfit(
                "platform",
                f"machine {machine.name} ({machine.source}) is {label}; env {env.name} "
                f"targets {env.platform.name}",
                f"remove {machine.name} from machines in {env.path.name}, or list it under an "
                f"env for {label}",
            )
        ]
    if exp.build == "cuda" and env.accelerator == "cuda":
        found += driver_misfits(env, exp, machine, where)
        found += gpu_misfits(exp, machine)
    if machine.os == "linux" and machine.glibc and exp.glibc:
        found += floor_misfit("glibc", machine.glibc, exp.glibc, machine, env, where)
    if machine.os == "macos" and machine.macos and exp.macos:
        found += floor_misfit("macos", machine.macos, exp.macos, machine, env, where)
    return found


def newest_cuda_major(driver: str) -> str | None:
    runs = [major for major, floor in platforms.CUDA_MAJOR_FLOOR.items() if _v(driver) >= _v(floor)]
    return max(runs, key=int) if runs else None


def driver_misfits(env: EnvSpec, exp: Expectations, machine: Machine, where: str) -> list[Misfit]:
    need, cuda = exp.driver, exp.cuda or "?"
    if machine.driver is None:
        if where != "profile":
            return []  # verify on a GPU-less host: the device check says it was not exercised
        return [
            Misfit(
                "driver",
                f"machine {machine.name} has no NVIDIA driver; torch's CUDA {cuda} build would "
                "run on its CPU",
                f"install an NVIDIA driver >= {need} on {machine.name}, or serve it from a cpu env",
            )
        ]
    if not need or _v(machine.driver) >= _v(need):
        return []
    runs = newest_cuda_major(machine.driver)
    own = platforms.CUDA_TOOLKIT_DRIVER.get(cuda)
    alternative = (
        f", or lock a torch build for CUDA {runs}.x (an older torch, or torch's CUDA {runs}.x "
        "build from the PyTorch index via torch.index and torch.variant)"
        if runs
        else ""
    )
    return [
        Misfit(
            "driver",
            f"NVIDIA driver {machine.driver} on {machine.name} is too old for torch "
            f"{exp.torch}'s CUDA {cuda} build: CUDA {cuda.split('.')[0]} needs driver >= {need}",
            f"upgrade the NVIDIA driver on {machine.name} to >= {need}"
            + (f" ({own} or later for all of CUDA {cuda})" if own else "")
            + alternative,
        )
    ]


def cuda_for_capability(capability: str) -> str | None:
    """The newest CUDA release in the table that builds kernels for this compute capability."""
    fits = [
        first
        for first, low, high in platforms.CUDA_CAPABILITIES
        if _v(low) <= _v(capability) <= _v(high)
    ]
    return fits[-1] if fits else None


def gpu_misfits(exp: Expectations, machine: Machine) -> list[Misfit]:
    if not exp.capabilities:
        return []
    low, high = exp.capabilities
    found = []
    for gpu in machine.gpus:
        if not gpu.capability:
            continue
        older = _v(gpu.capability) < _v(low)
        newer = high is not None and _v(gpu.capability) > _v(high)
        if not (older or newer):
            continue
        bound = f"below {low}" if older else f"above {high}"
        other = cuda_for_capability(gpu.capability)
        fix = (
            f"lock a torch build for CUDA {other} (an older torch, or a build from the PyTorch "
            "index via torch.index and torch.variant)"
            if older and other
            else "lock a torch build for a newer CUDA release"
        )
        found.append(
            Misfit(
                "gpu",
                f"{gpu.name} on {machine.name} has compute capability {gpu.capability}; torch "
                f"{exp.torch}'s CUDA {exp.cuda} build carries no kernels {bound}",
                f"{fix}, or remove {machine.name} from the env's machines",
            )
        )
    return found


def floor_misfit(
    kind: str, have: str, floor: Floor, machine: Machine, env: EnvSpec, where: str
) -> list[Misfit]:
    if _v(have) >= _v(floor.version):
        return []
    label = {"glibc": "glibc", "macos": "macOS"}[kind]
    why = (
        f"{label} {have} on {machine.name} is below {floor.version}, the floor of "
        f"{floor.package}'s {floor.tag} wheel"
    )
    pin = f"pin {floor.package} to a release with wheels for {label} {have}"
    if kind == "macos":
        fix = f"upgrade macOS on {machine.name} to {floor.version} or later, or {pin}"
    elif where == "image":
        base = f"set image.base in {env.path.name} to a base with glibc >= {floor.version}"
        fix = f"{base}, then rebuild"
    else:
        fix = (
            f"run the env in its image there (archlock build: the image brings its own glibc), "
            f"move {machine.name} to an OS with glibc >= {floor.version}, or {pin}"
        )
    return [Misfit(kind, why, fix)]


# -- lock time ------------------------------------------------------------------------------
def refuse(env: EnvSpec, exp: Expectations, machines: list[Machine]) -> None:
    """Raise ConfigError (naming the spec) when the lock cannot serve the env or its machines."""
    misfits = [m for m in [build_misfit(env, exp)] if m]
    for machine in machines:
        misfits += machine_misfits(env, exp, machine, "profile")
    if misfits:
        first = misfits[0]
        more = f" (and {len(misfits) - 1} more: {', '.join(m.why for m in misfits[1:])})"
        raise ConfigError(
            f"{env.path}: {first.why}" + (more if len(misfits) > 1 else ""), fix=first.fix
        )


def notes(env: EnvSpec, exp: Expectations, machines: list[Machine]) -> list[str]:
    """What the lock goes ahead with but a reader should know."""
    out = list(env.notes)
    if env.accept_cuda_stack and exp.build == "cuda":
        out.append(
            f"{env.name}: accept-cuda-stack: keeping torch {exp.torch}'s CUDA {exp.cuda} build "
            f"({exp.cuda_stack_bytes / 1e9:.2f} GB of nvidia-*/cuda-* wheels) in a cpu env"
        )
    for machine in machines:
        if exp.build == "mps" and machine.vm:
            out.append(
                f"{env.name}: machine {machine.name} is a virtual Mac: MPS is not usable there "
                "(torch reports it available, then fails); the suite will train on its CPU"
            )
    return out


# -- verify and repro time (archlock.core.diagnose asks these) ------------------------------
Check = dict[str, Any]


def locked_build_text(exp: Expectations) -> str:
    """How the lock's build is said: "CUDA 13.2 build", "+cpu build"."""
    label = (exp.torch or "").partition("+")[2]
    return f"+{label} build" if label else exp.build_name()


def lock_build_problem(
    build: str | None, cuda: str | None, label: str, exp: Expectations
) -> str | None:
    """Why an installed torch of this build (diagnose's torch_build answer) is not the lock's,
    or None when it is (or either is unknown). The fix for it is a re-sync from the lock."""
    if build is None or exp.build is None:
        return None
    locked_label = (exp.torch or "").partition("+")[2]
    if locked_label and label != locked_label:
        return f"the lock has the +{locked_label} build"
    if build == exp.build and (build != "cuda" or cuda == exp.cuda):
        return None
    article = "an" if exp.build_name()[:1] in "AEIMO" else "a"  # an MPS build, a CUDA build
    return f"the lock has {article} {exp.build_name()}"


def check_machine(env: EnvSpec, doc: dict[str, Any], exp: Expectations | None, mode: str) -> Check:
    """The lock's needs (driver, GPU kernels, glibc, macOS) against the machine verify runs on."""
    if exp is None:
        return {"status": "skipped", "why": "no lock to take the build's needs from"}
    machine = from_probe(doc)
    misfits = machine_misfits(env, exp, machine, mode)
    if misfits:
        return {"status": "fail", "why": misfits[0].why, "fix": misfits[0].fix}
    needs = [f"driver {machine.driver} >= {exp.driver}"] if exp.driver and machine.driver else []
    needs += [f"glibc >= {exp.glibc.version}"] if exp.glibc else []
    needs += [f"macOS >= {exp.macos.version}"] if exp.macos else []
    return {
        "status": "pass",
        "why": "meets the lock's needs" + (f": {', '.join(needs)}" if needs else ""),
    }
