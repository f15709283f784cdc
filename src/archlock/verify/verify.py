"""`archlock verify`: prove that an env is the one we locked and that torch behaves there.

Host mode syncs `.archlock/venvs/<env>` from the env's hashed lock (or takes `--venv PATH
--no-sync`), runs `probe.py` and `suite.py` as plain files with that venv's interpreter and
compares what they saw with the env spec and the lock. Image mode (`--image TAG`) runs the same
two files inside a built image (`python` on PATH is the env's interpreter, the image's
`io.archlock.env` label names the env).

Result `archlock.verify/1`, one file per env and target (`results/<env>.host.json`,
`results/<env>.image.json`):

    schema, env, platform, accelerator, mode ("host"|"image"), image ({tag, id, platform,
    digest} or null), host ({description, os, arch, emulated, by, gpus}), created (UTC), archlock
    (version), lock ({path, torch, sha256}), runner ({name, kind, os, arch}: the CI runner, or
    "local"), hardware ({cpu, gpus, nvidia_driver, macos, vm}), device (what the suite trained
    on), status ("pass"|"fail"),
    checks {name: {status: "pass"|"fail"|"skipped", why, fix (failures only)}},
    probe (archlock.probe/1), suite (archlock.suite/1)   -- paths under the project or home
                                                            are written as <project>/ and ~/
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from archlock.core import commit
from archlock.core import docker as du
from archlock.core.diagnose import Context
from archlock.core.fsutil import atomic_write
from archlock.core.lockfile import pins as lock_pins
from archlock.core.platforms import Platform
from archlock.core.project import Project
from archlock.core.spec import EnvSpec
from archlock.errors import ConfigError, ExternalCommandError
from archlock.inenv import suite
from archlock.lock import expect as lock_expect
from archlock.verify import runs
from archlock.verify.checks import check_machine, compare, required
from archlock.verify.execute import run_probe, run_project_tests, run_script, suite_args
from archlock.verify.resultfile import (
    build_result,
    default_output,
    file_sha256,
    raise_on_failure,
    summary,
)
from archlock.verify.targets import (
    HostTarget,
    ImageTarget,
    Target,
    host_has_nvidia,
    host_platform,
    image_digest,
    image_env_name,
    image_platform,
    inspect_image,
    pull_image,
    stage_scripts,
    sync_venv,
    venv_python,
)

REQUIRE_DEVICE_ENV = "ARCHLOCK_REQUIRE_DEVICE"  # CI's GPU / real-Mac runners set it


# -- which env -----------------------------------------------------------------------------------
def choose_env(
    envs: list[EnvSpec], name: str | None, host: Platform | None, where: Path
) -> EnvSpec:
    """The named env, else the first env for this host's platform (non-opt-in first)."""
    if name:
        for env in envs:
            if env.name == name:
                return env
        raise ConfigError(
            f"--env {name}: no such env in {where}",
            fix=f"known envs: {', '.join(e.name for e in envs)}",
        )
    mine = sorted(
        (e for e in envs if host and e.platform.name == host.name), key=lambda e: e.opt_in
    )
    if not mine:
        label = host.name if host else "this host"
        raise ConfigError(
            f"{where}: no env targets {label}",
            fix=f"pass --env NAME, or add an env spec with `platform: {label}`",
        )
    return mine[0]


def project_envs(project: Project, name: str | None) -> list[EnvSpec]:
    return project.envs([name]) if name else project.envs()


# -- the hints a failed check gives ---------------------------------------------------------------
def resync_hint(env: EnvSpec, target: Target, venv: Path | None) -> str:
    if target.mode == "image":
        return f"rebuild the image from the lock: archlock build --env {env.name}"
    return f"re-sync the venv from the lock: archlock verify --env {env.name}" + (
        f" --venv {venv}" if venv else ""
    )


def reinstall_hint(env: EnvSpec, target: Target, venv: Path | None) -> str:
    """A sync keeps an installed package at its locked version as it is, files and all."""
    if target.mode == "image":
        return resync_hint(env, target, venv)
    where = venv or Path(".archlock") / "venvs" / env.name
    again = f"archlock verify --env {env.name}" + (f" --venv {venv}" if venv else "")
    return f"remove {where}, then {again} recreates it from the lock"


# -- verifying one target ----------------------------------------------------------------------
def context(project: Project, env: EnvSpec, target: Target, args: argparse.Namespace) -> Context:
    """What the diagnosis compares the env with: its spec, its lock, what this target expects."""
    lock = project.env_lock(env.name)
    pins = lock_pins(lock.read_text(encoding="utf-8")) if lock.is_file() else {}
    lock_name = str(lock.relative_to(project.root)) if lock.is_file() else "(no lock)"
    return Context(
        env,
        pins,
        lock_name,
        resync_hint(env, target, args.venv),
        target.emulation_expected,
        target.gpus_visible(),
        project_name=project.name,
        reinstall=reinstall_hint(env, target, args.venv),
        expect=lock_expect.load(project.locks_dir, env),
        where=target.mode,
    )


def verify_target(
    project: Project, env: EnvSpec, target: Target, args: argparse.Namespace
) -> dict[str, Any]:
    own_runs = runs.load(project)  # [tool.archlock.verify]: checked before anything runs
    ctx = context(project, env, target, args)
    doc, error = run_probe(target)
    if doc is None:
        raise ExternalCommandError(f"verify {env.name}: {error}")
    suite_doc, suite_error = run_script(target, "suite", *suite_args(doc, args.device, args.skip))
    checks = compare(ctx, doc, suite_doc, suite_error)
    require = bool(getattr(args, "require_device", False))
    checks["device"] = required(checks["device"], env.expect_device, require)
    checks["machine"] = check_machine(doc, ctx)  # the lock's glibc floor
    if env.project_tests:
        checks["project_tests"] = run_project_tests(target, project.root)
    checks.update(runs.run_checks(own_runs, project.root, target))
    result = build_result(ctx, target, doc, suite_doc, checks, project.root)
    result["lock"]["sha256"] = file_sha256(project.env_lock(env.name))
    return result


def host_target(project: Project, env: EnvSpec, args: argparse.Namespace) -> HostTarget:
    here = host_platform()
    if here is None or env.platform.name != here.name:
        this = here.name if here else "not in the platform table"
        where = f"in its image (archlock verify --image TAG) or on a {env.platform.name} machine"
        raise ConfigError(
            f"env {env.name} targets {env.platform.name}; this host is {this}",
            fix=f"verify it {where}",
        )
    venv = (args.venv or project.root / ".archlock" / "venvs" / env.name).absolute()
    if not args.no_sync:
        sync_venv(project, env, venv)
    if not venv_python(venv).exists():
        raise ConfigError(
            f"--venv {venv}: no bin/python in it",
            fix="pass the folder of a virtual environment, or drop --no-sync",
        )
    return HostTarget(venv_python(venv))


def image_target(project: Project, args: argparse.Namespace) -> tuple[EnvSpec, ImageTarget]:
    du.engine()  # docker or podman, else one line saying how to install one
    if getattr(args, "pull", False):
        pull_image(args.image, pull_platform(project, args.env))
    info = inspect_image(args.image)
    name = image_env_name(info, args.image, args.env)
    env = choose_env(project.envs([name]), name, None, project.envs_dir)
    platform = image_platform(info)
    if env.platform.docker_platform and platform != env.platform.docker_platform:
        raise ConfigError(
            f"--image {args.image} is {platform}; env {env.name} is {env.platform.docker_platform}",
            fix=f"build the image for {env.platform.docker_platform}",
        )
    here = host_platform()
    scripts = stage_scripts(project.root / ".archlock" / "verify-scripts")
    require = bool(getattr(args, "require_device", False))
    gpus = env.accelerator_facts.cuda and (host_has_nvidia() or require)
    expected = here is None or here.docker_platform != platform
    target = ImageTarget(args.image, platform, info.get("Id", ""), scripts, gpus, expected)
    target.digest = image_digest(args.image, info)
    return env, target


def pull_platform(project: Project, name: str | None) -> str | None:
    """The docker platform of --env, which `--pull` asks for (None: the engine's default)."""
    if not name:
        return None
    env = choose_env(project.envs([name]), name, None, project.envs_dir)
    platform: str | None = env.platform.docker_platform
    return platform or None


# -- the verb ------------------------------------------------------------------------------------
def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "verify", help="prove an env is the locked one and torch behaves the same there"
    )
    parser.add_argument(
        "--env", help="the env to verify (default: the one for this host, or the image's label)"
    )
    parser.add_argument(
        "--venv", type=Path, help="the venv to verify (default: .archlock/venvs/<env>)"
    )
    parser.add_argument(
        "--no-sync", action="store_true", help="use the venv as it is; do not sync it from the lock"
    )
    parser.add_argument("--image", help="verify inside this built image instead of a host venv")
    parser.add_argument(
        "--output",
        type=Path,
        help="result file (default: results/<env>.host.json; --image: results/<env>.image.json)",
    )
    parser.add_argument("--device", choices=("cuda", "mps", "cpu"), help="force the suite's device")
    parser.add_argument(
        "--skip", action="append", default=[], choices=suite.CHECKS[1:], help="skip a suite check"
    )
    add_ci_arguments(parser)
    parser.set_defaults(func=run)


def add_ci_arguments(parser: argparse.ArgumentParser) -> None:
    """What CI's verify jobs pass: pull by digest, a required device, the job summary."""
    parser.add_argument("--pull", action="store_true", help="docker pull the --image first")
    parser.add_argument(
        "--require-device",
        action="store_true",
        default=os.environ.get(REQUIRE_DEVICE_ENV, "").lower() in ("1", "true"),
        help="fail when the env's device (cuda, mps) is not used; pass the GPUs in "
        f"(also ${REQUIRE_DEVICE_ENV}=true)",
    )
    parser.add_argument(
        "--summary", type=Path, help="append the checks as Markdown here ($GITHUB_STEP_SUMMARY)"
    )


def run(args: argparse.Namespace) -> int:
    project = Project.load(args.project)
    # verify compares an env with its lock: not a torn one
    commit.refuse_torn_locks(project.root, project.locks_dir)
    target: Target
    if args.image:
        if args.venv or args.no_sync:
            raise ConfigError(
                "--image cannot be combined with --venv / --no-sync", fix="drop one of them"
            )
        env, target = image_target(project, args)
    else:
        env = choose_env(
            project_envs(project, args.env), args.env, host_platform(), project.envs_dir
        )
        target = host_target(project, env, args)
    result = verify_target(project, env, target, args)
    output = args.output or default_output(project.root, env.name, result["mode"])
    atomic_write(output, json.dumps(result, indent=2) + "\n")
    print(summary(result))
    if getattr(args, "summary", None):
        from archlock.verify import jobsummary

        jobsummary.append(args.summary, jobsummary.verify_markdown(result, project))
    raise_on_failure(result, output)
    print(f"verify {env.name}: all checks pass or are skipped with a reason; result in {output}")
    return 0
