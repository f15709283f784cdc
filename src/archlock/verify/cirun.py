"""`archlock ci`: the workflow's graph on this machine, step by step.

The rendered workflow runs, per Linux env, build -> verify (by digest, on a runner of the image's
architecture) -> matrix, plus the Mac job. Here the same verbs run in the same order: the render
check, one build of every Linux image, `verify --image` for each (arm64 under QEMU when this host
is amd64), then the matrix with its gate. Each step is a child `archlock <verb>` with a time
limit; a failed verify does not stop the others (CI's verify jobs are independent), the matrix
runs last and names what is missing. Results go to `results/ci/` so they never overwrite the
results verify writes by default (`results/<env>.host.json`, `results/<env>.image.json`).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from archlock.core import proc
from archlock.core.project import Project
from archlock.errors import CheckFailed, ConfigError

RESULTS = "results/ci"
# Time limits per step (seconds): a cold build pulls torch (and the CUDA wheels, ~2.5 GB) for
# both architectures; a verify under QEMU imports torch three times (~40 s each).
LIMITS = {"render": 120.0, "build": 2400.0, "verify": 1500.0, "matrix": 120.0}


@dataclass(frozen=True)
class Step:
    name: str  # what the log says: "build", "verify linux-arm64-cpu", ...
    verb: str  # the archlock verb, also the key of LIMITS
    args: tuple[str, ...]
    env: str | None = None  # the env a verify step is for
    gating: bool = True  # a failure stops the steps after it (render, build)


def image_refs(project: Project, environ: dict[str, str]) -> dict[str, str]:
    """Env name -> its image tag, `${REGISTRY}${IMAGE}:${TAG}-<env>`: the rendered bake file's
    convention, with its variables overridden by the environment as bake (and archlock build) do."""
    from archlock.build import render

    settings = render.load_settings(project)
    registry = environ.get("REGISTRY", settings.registry)
    image, tag = environ.get("IMAGE", settings.image_name), environ.get("TAG", "dev")
    return {env: f"{registry}{image}:{tag}-{env}" for env in linux_envs(project)}


def linux_envs(project: Project) -> list[str]:
    """The Linux envs the workflow verifies: those with a lock that are not opt-in."""
    return [
        spec.name
        for spec in project.all_envs()
        if spec.platform.docker_platform
        and not spec.opt_in
        and project.env_lock(spec.name).is_file()
    ]


def plan(project: Project, args: argparse.Namespace, refs: dict[str, str]) -> list[Step]:
    """The graph as steps: render check, build, verify per Linux env, matrix with the gate."""
    envs = linux_envs(project)
    results = Path(args.results or project.root / RESULTS)
    build = ["--push"] if args.push else []
    for item in args.set:
        build += ["--set", item]
    build += list(getattr(args, "build_option", None) or [])
    build += [
        f"--{name}={value}"
        for name, value in (("network", args.network), ("ca-bundle", args.ca_bundle))
        if value
    ]
    steps = [Step("render check", "render", ("--check",)), Step("build", "build", tuple(build))]
    for env in envs:
        if env not in refs:
            raise ConfigError(
                f"docker/docker-bake.hcl: no target for env {env}", fix="run nox -s render"
            )
        verify = ["--image", refs[env], "--env", env, "--output", str(results / f"{env}.json")]
        verify += ["--pull"] if args.push else []
        steps.append(Step(f"verify {env}", "verify", tuple(verify), env=env, gating=False))
    matrix = ["--results", str(results), "--gate", *(f"--expect={env}" for env in envs)]
    steps.append(Step("matrix", "matrix", tuple(matrix)))
    return steps


def run_step(project: Project, step: Step) -> proc.Result:
    argv = [sys.executable, "-m", "archlock", "--project", str(project.root), step.verb, *step.args]
    print(f"archlock ci: {step.name}: {' '.join(argv[3:])}", flush=True)
    return proc.stream(argv, timeout=LIMITS[step.verb], cwd=project.root)


def run_plan(project: Project, steps: list[Step]) -> list[str]:
    """Run the steps in order; return one line per failed step (empty: the graph passed)."""
    failed: list[str] = []
    for step in steps:
        started = time.monotonic()
        done = run_step(project, step)
        took = time.monotonic() - started
        print(
            f"archlock ci: {step.name}: {'ok' if done.ok else done.why()} ({took:.0f} s)",
            flush=True,
        )
        if not done.ok:
            failed.append(f"{step.name}: {done.why()}")
            if step.gating:
                break
    return failed


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "ci", help="run CI's graph here: render check, build, verify every image, matrix gate"
    )
    parser.add_argument(
        "--push",
        action="store_true",
        help="push the images (a local registry) and verify them pulled",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="TARGET.KEY=VALUE",
        help="passed to archlock build",
    )
    parser.add_argument(
        "--build-option",
        action="append",
        default=[],
        metavar="ARG",
        help="passed to archlock build as it is, e.g. --build-option=--no-cache (repeatable)",
    )
    parser.add_argument("--network", help="passed to archlock build (e.g. host)")
    parser.add_argument("--ca-bundle", help="passed to archlock build")
    parser.add_argument("--results", type=Path, help=f"result folder (default: {RESULTS})")
    parser.add_argument("--dry-run", action="store_true", help="print the steps, run nothing")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    project = Project.load(args.project)
    steps = plan(project, args, image_refs(project, dict(os.environ)))
    if args.dry_run:
        for step in steps:
            print(f"{step.name}: archlock {step.verb} {' '.join(step.args)}")
        return 0
    started = time.monotonic()
    failed = run_plan(project, steps)
    if failed:
        raise CheckFailed(
            f"ci: {len(failed)} step(s) failed: {'; '.join(failed)}",
            fix="see each step's output above",
        )
    print(f"archlock ci: the graph passed in {time.monotonic() - started:.0f} s")
    return 0
