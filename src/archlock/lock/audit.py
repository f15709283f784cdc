"""`archlock audit`: what each env's lock would do on its machine, before anyone installs it.

Reads the per-env `pylock.<env>.toml` (uv has already kept only the files that fit the
env's platform) and reports, per env:
* packages with no wheel for the target, by what their sdist is (the lock records it, see
  core/sdist.py): pure Python (built on the build machine, fine), compiled (needs a compiler on
  the target) or a torch extension (needs torch and CUDA at build time, or a prebuilt wheel);
* packages known to break on that kind of target, with the replacement (table below);
* a CPU env that drags the CUDA stack (nvidia-* / cuda-* wheels), with the bytes it costs,
  unless its spec says `accept-cuda-stack: true` (the rule lock applies too).
Text or JSON (`--format json`); exits 6 when an error-level finding exists (`--strict`: any).
"""

from __future__ import annotations

import argparse
import fnmatch
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from archlock.core import sdist
from archlock.core.fsutil import atomic_write, output_file
from archlock.core.project import Project
from archlock.core.rules.build import CPU_INDEX_FIX, cuda_stack, cuda_stack_unwanted
from archlock.core.rules.wheels import wheel_size
from archlock.core.spec import EnvSpec
from archlock.core.text import human_bytes
from archlock.core.tomlsrc import array_of_tables, load_toml
from archlock.errors import CheckFailed, ConfigError, DriftError

SCHEMA = "archlock.audit/1"


@dataclass(frozen=True)
class Breaker:
    """A package known to break on some targets; `applies` decides for an env."""

    pattern: str
    applies: Callable[[EnvSpec], bool]
    where: str
    replacement: str


def _no_cuda(env: EnvSpec) -> bool:
    return not env.accelerator_facts.cuda


def _on_macos(env: EnvSpec) -> bool:
    return env.platform.os == "macos"


KNOWN_BREAKERS: tuple[Breaker, ...] = (
    Breaker(
        "faiss-gpu*",
        _no_cuda,
        "envs without CUDA",
        "faiss-cpu (same API), selected by a platform marker",
    ),
    Breaker(
        "flash-attn",
        _no_cuda,
        "envs without CUDA",
        "torch.nn.functional.scaled_dot_product_attention (SDPA), "
        "which uses flash kernels on CUDA by itself",
    ),
    Breaker(
        "xformers",
        _no_cuda,
        "envs without CUDA",
        "torch SDPA; keep xformers behind "
        "`; sys_platform == 'linux' and platform_machine == 'x86_64'`",
    ),
    Breaker(
        "bitsandbytes",
        _on_macos,
        "macOS",
        "torchao quantization, or keep bitsandbytes behind `; sys_platform == 'linux'`",
    ),
    Breaker(
        "triton",
        _on_macos,
        "macOS",
        "nothing: torch.compile on MPS does not use triton; add `; sys_platform == 'linux'`",
    ),
    Breaker(
        "lmdb",
        _on_macos,
        "macOS",
        "a release with macosx arm64 wheels (or sqlite3); "
        "otherwise it compiles and needs Xcode CLT",
    ),
    Breaker(
        "apex",
        _no_cuda,
        "envs without CUDA",
        "torch.amp (autocast) and torch.optim fused optimizers",
    ),
)


@dataclass(frozen=True)
class Finding:
    env: str
    package: str
    severity: str  # "error" | "warning" | "info" (nothing to fix)
    # "source-build" (an sdist the lock did not classify) | "pure-python-sdist" |
    # "compiled-sdist" | "torch-extension-sdist" | "known-breaker" | "cuda-stack-in-cpu-env"
    kind: str
    message: str
    fix: str


@dataclass(frozen=True)
class EnvAudit:
    env: str
    platform: str
    accelerator: str
    packages: int
    wheel_bytes: int
    torch: str | None
    findings: list[Finding]


def load_pylock(project: Project, env: EnvSpec) -> list[dict[str, Any]]:
    path = project.env_pylock(env.name)
    if not path.exists():
        raise DriftError(f"{path}: no lock for env {env.name}", fix="run `nox -s lock` first")
    fix = f"regenerate it: run `nox -s lock --force --env {env.name}`"
    data = load_toml(path, what="pylock file", fix=fix)
    packages = array_of_tables(data, "packages", path, fix)
    for number, package in enumerate(packages, 1):
        _check_package(package, f"{path}: packages[{number}]", fix)
    return packages


def _check_package(package: dict[str, Any], where: str, fix: str) -> None:
    """The keys audit reads, of the types PEP 751 gives them."""
    for key in ("name", "version"):
        if not isinstance(package.get(key), str):
            raise ConfigError(f"{where}: {key}: must be a string", fix=fix)
    wheels = package.get("wheels", [])
    if not isinstance(wheels, list) or not all(isinstance(w, dict) for w in wheels):
        raise ConfigError(f"{where}: wheels: must be an array of tables", fix=fix)
    for wheel in wheels:
        size = wheel.get("size", 0)
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise ConfigError(f"{where}: wheels: size must be a whole number of bytes", fix=fix)


def audit_env(project: Project, env: EnvSpec) -> EnvAudit:
    packages = load_pylock(project, env)
    findings = [f for p in packages for f in package_findings(env, p)]
    findings += cuda_stack_findings(env, packages)
    torch = next((p["version"] for p in packages if p["name"] == "torch"), None)
    return EnvAudit(
        env=env.name,
        platform=env.platform.name,
        accelerator=env.accelerator,
        packages=len(packages),
        wheel_bytes=sum(wheel_size(p) for p in packages),
        torch=torch,
        findings=findings,
    )


def package_findings(env: EnvSpec, package: dict[str, Any]) -> list[Finding]:
    name = package["name"]
    found = [source_finding(env, package)] if not package.get("wheels") else []
    for breaker in KNOWN_BREAKERS:
        if fnmatch.fnmatch(name, breaker.pattern) and breaker.applies(env):
            found.append(
                Finding(
                    env.name,
                    name,
                    "error",
                    "known-breaker",
                    f"{name} is known to break on {breaker.where}",
                    f"use {breaker.replacement}",
                )
            )
    return found


def source_finding(env: EnvSpec, package: dict[str, Any]) -> Finding:
    """A package without a wheel for the env, by what its sdist is (the lock recorded it)."""
    name, version = package["name"], package["version"]
    kind, why = sdist.recorded(package), sdist.recorded_why(package)
    head = f"{name} {version} has no wheel for {env.platform.name}"
    if kind == sdist.PURE:
        return Finding(
            env.name,
            name,
            "info",
            "pure-python-sdist",
            f"{head}; its sdist is pure Python ({why}): it builds into a wheel on any CPU, "
            "by the build machine's uv, with no compiler",
            "nothing to do; a release with a py3-none-any wheel would skip the build",
        )
    if kind == sdist.TORCH_EXTENSION:
        return torch_extension_finding(env, name, version, why)
    if kind == sdist.COMPILED:
        compiler = "Xcode's command line tools" if env.platform.os == "macos" else "gcc/g++"
        return Finding(
            env.name,
            name,
            "warning",
            "compiled-sdist",
            f"{head}; its sdist compiles ({why}): it builds on {env.platform.name} itself "
            "(emulated in an image built on another CPU)",
            f"pin a release with a {env.platform.name} wheel, or give the build {compiler} "
            f"(`image.toolchain: true` in {env.path.name})",
        )
    return Finding(
        env.name,
        name,
        "warning",
        "source-build",
        f"{head}: it builds from source there, and what its sdist holds is not recorded",
        f"run `archlock lock --force --env {env.name}` so the lock records whether it is pure "
        "Python, compiled or a torch extension",
    )


def torch_extension_finding(env: EnvSpec, name: str, version: str, why: str) -> Finding:
    """A torch/CUDA extension sdist: built in uv's isolated environment there is no torch, so
    it installs without its compiled backend and its import fails."""
    if not env.accelerator_facts.cuda:
        return Finding(
            env.name,
            name,
            "error",
            "torch-extension-sdist",
            f"{name} {version} is a torch CUDA extension built from source ({why}); "
            f"a {env.accelerator} env has no CUDA to build or run its backend",
            f"keep it out of this env with a marker (`{name}; sys_platform == 'linux' and "
            "platform_machine == 'x86_64'`) and fall back in code where its import fails",
        )
    return Finding(
        env.name,
        name,
        "error",
        "torch-extension-sdist",
        f"{name} {version} is a torch extension built from source ({why}): built without "
        "torch (uv's isolated build) it installs without its compiled backend and its import "
        "fails",
        "build its wheel with the locked torch and the CUDA toolkit (nvcc) present and no build "
        f"isolation (`pip wheel --no-build-isolation --no-deps {name}=={version}` in an image "
        "with both, TORCH_CUDA_ARCH_LIST set) and install it from a prebuilt wheel index or "
        "folder, or pin a release that ships wheels",
    )


def cuda_stack_findings(env: EnvSpec, packages: list[dict[str, Any]]) -> list[Finding]:
    """THE CUDA-stack rule (archlock.core.rules.build): a cpu env that has not accepted it."""
    stack = cuda_stack(packages)
    if not stack or not cuda_stack_unwanted(env):
        return []
    size = sum(wheel_size(p) for p in stack)
    names = ", ".join(sorted(p["name"] for p in stack)[:4]) + (", ..." if len(stack) > 4 else "")
    return [
        Finding(
            env.name,
            "nvidia-*",
            "warning",
            "cuda-stack-in-cpu-env",
            f"a {env.accelerator} env drags the CUDA stack: "
            f"{len(stack)} packages ({names}), {human_bytes(size)}",
            CPU_INDEX_FIX.format(file=env.path.name),
        )
    ]


def render_text(audits: list[EnvAudit]) -> str:
    out = []
    for a in audits:
        out.append(
            f"{a.env}: {a.packages} packages, {human_bytes(a.wheel_bytes)} of wheels, "
            f"torch {a.torch or '-'} ({a.platform}, {a.accelerator})"
        )
        if not a.findings:
            out.append(f"  ok: every package has a wheel for {a.platform}; no known breakers")
        for f in a.findings:
            out.append(f"  {f.severity}: {f.message} (fix: {f.fix})")
    return "\n".join(out) + "\n"


def render_json(audits: list[EnvAudit]) -> str:
    return (
        json.dumps(
            {"schema": SCHEMA, "envs": [asdict(a) for a in audits]}, indent=2, sort_keys=True
        )
        + "\n"
    )


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "audit", help="report packages that would build from source or break on a target"
    )
    parser.add_argument(
        "--env", action="append", dest="envs", metavar="NAME", help="only this env (repeatable)"
    )
    parser.add_argument("--format", choices=("text", "json"), default="text")
    parser.add_argument("--output", type=Path, help="write the report here instead of stdout")
    parser.add_argument("--strict", action="store_true", help="fail on warnings too")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.output:
        output_file(args.output, "--output")
    project = Project.load(args.project)
    audits = [audit_env(project, env) for env in project.envs(args.envs)]
    text = render_json(audits) if args.format == "json" else render_text(audits)
    if args.output:
        atomic_write(args.output, text)
    else:
        print(text, end="")
    failing = {"error", "warning"} if args.strict else {"error"}
    bad = [f for a in audits for f in a.findings if f.severity in failing]
    if bad:
        raise CheckFailed(
            f"{len(bad)} finding(s) at or above {'warning' if args.strict else 'error'}",
            fix="see the report above",
        )
    return 0
