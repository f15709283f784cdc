"""Does the locked build fit its env, and the machines it must serve? Asked at lock time.

`archlock lock` refuses a lock that cannot run where the env says it must (`refuse`), before
anything is written: the build against the env (archlock.core.rules.build.build_misfit) and
against each recorded machine profile (`machine_misfits`). The rules themselves live in
archlock.core.rules; verify and repro ask the same rules through archlock.core.diagnose. Each
misfit's fix names what is actually wrong: the spec, the lock or the machine.
"""

from __future__ import annotations

from archlock.core.rules.build import Expectations, Misfit, build_misfit
from archlock.core.rules.machine import (
    UNREADABLE_DRIVER_FIX,
    Machine,
    capability_gap,
    driver_rule,
    driver_upgrade_fix,
    gpu_fix,
    system_misfits,
)
from archlock.core.spec import EnvSpec
from archlock.errors import ConfigError


def machine_misfits(env: EnvSpec, exp: Expectations, machine: Machine, where: str) -> list[Misfit]:
    """Why the locked build cannot run on the recorded `machine` (`where`: "profile")."""
    if machine.platform != env.platform:
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
    found: list[Misfit] = []
    if exp.build == "cuda" and env.accelerator == "cuda":
        found += driver_misfits(exp, machine)
        found += gpu_misfits(exp, machine)
    return found + system_misfits(env, exp, machine, where)


def driver_misfits(exp: Expectations, machine: Machine) -> list[Misfit]:
    cuda = exp.cuda or "?"
    verdict = driver_rule(machine.driver, cuda)
    need = exp.driver or verdict.floor
    if verdict.state == "missing":
        return [
            Misfit(
                "driver",
                f"machine {machine.name} has no NVIDIA driver; torch's CUDA {cuda} build would "
                "run on its CPU",
                f"install an NVIDIA driver >= {need} on {machine.name}, or serve it from a cpu env",
            )
        ]
    if verdict.state == "unreadable":
        return [
            Misfit(
                "driver",
                f"the NVIDIA driver version {machine.driver!r} in {machine.source} is not a "
                f"version; torch {exp.torch}'s CUDA {cuda} build needs >= {need}",
                f"{UNREADABLE_DRIVER_FIX} (`archlock probe --profile {machine.name}`)",
            )
        ]
    if verdict.state != "too-old" or machine.driver is None:
        return []
    return [
        Misfit(
            "driver",
            f"NVIDIA driver {machine.driver} on {machine.name} is too old for torch "
            f"{exp.torch}'s CUDA {cuda} build: CUDA {cuda.split('.')[0]} needs driver >= {need}",
            driver_upgrade_fix(machine.name, need, cuda, machine.driver),
        )
    ]


def gpu_misfits(exp: Expectations, machine: Machine) -> list[Misfit]:
    found = []
    for gpu in machine.gpus:
        gap = capability_gap(gpu, exp.capabilities)
        if gap is None:
            continue
        found.append(
            Misfit(
                "gpu",
                f"{gpu.name} on {machine.name} has compute capability {gpu.capability}; torch "
                f"{exp.torch}'s CUDA {exp.cuda} build carries no kernels {gap}",
                f"{gpu_fix(gpu, gap)}, or remove {machine.name} from the env's machines",
            )
        )
    return found


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
