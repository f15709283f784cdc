"""`archlock build`: build the images `archlock render` describes.

With buildx: one `docker buildx build` per env image, `--load` into the engine or `--push`; with
`--push`, SBOM and provenance attestations where the builder's driver can attach them (the
`docker` driver without the containerd image store cannot: it says so, loads, then pushes), and
the multi-arch list assembled with `docker buildx imagetools create`.
Without buildx: an announced fallback that builds the same targets one platform at a time with
the engine's built-in BuildKit (`DOCKER_BUILDKIT=1 docker build --platform P`); `--push` then
pushes each image and assembles the list with `docker manifest`.
Every loaded image is settled before anything uses it: its config dated SOURCE_DATE_EPOCH where
the builder wrote the clock (archlock.build.reproducible), so the same inputs give one image ID.
The targets come from render's data (archlock.build.plan), never from parsing a rendered file.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from archlock.build import disk, plan, render, reproducible
from archlock.core import cabundle, commit, proc, settings
from archlock.core import docker as du
from archlock.core.project import Project
from archlock.errors import DriftError, ExternalCommandError, ToolMissingError

CA_SECRET_ID, CA_ENV = cabundle.CA_SECRET_ID, cabundle.CA_ENV
NO_ATTESTATIONS = (
    "the buildx driver {driver!r} without the containerd image store cannot attach SBOM/provenance "
    "attestations or export a registry cache: pushed without them (a docker-container builder can)"
)


@dataclass(frozen=True, kw_only=True)
class BuildOptions:
    project: Path
    targets: tuple[str, ...] = ()  # env names or groups (default, release, multiarch)
    push: bool = False
    load: bool = False
    sets: tuple[str, ...] = ()  # PATTERN.KEY=VALUE, bake's form
    ca_bundle: Path | None = None
    network: str | None = None
    no_cache: bool = False
    force_fallback: bool = False
    quiet: bool = False  # capture tool output into the report (tests and benchmarks)
    env: dict[str, str] = field(default_factory=dict)  # variable overrides (UV_IMAGE=..., TAG=...)
    timeout: float = 5400.0  # seconds per docker command


@dataclass(frozen=True)
class BuiltImage:
    target: str
    platform: str
    tags: tuple[str, ...]
    seconds: float
    image_id: str = ""  # the loaded image's ID (its config's sha256); "" when pushed directly


@dataclass
class BuildReport:
    mode: str  # "buildx" | "fallback"
    images: list[BuiltImage] = field(default_factory=list)
    manifests: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    log: list[str] = field(default_factory=list)  # captured tool output (quiet mode)


# -- entry points -------------------------------------------------------------------------------
def build(options: BuildOptions) -> BuildReport:
    if not du.engine_running():
        raise ToolMissingError(
            "the container engine is not running",
            fix="start dockerd (on Debian: scripts/local-infra.sh)",
        )
    started = time.monotonic()
    project = Project.load(options.project)
    the_plan = _plan(project, options)
    _check_room(project, the_plan)
    if not options.force_fallback and du.has_buildx():
        report = _buildx(the_plan, options)
    else:
        report = _fallback(the_plan, options)
    report.seconds = time.monotonic() - started
    return report


def plan_for(options: BuildOptions) -> plan.Plan:
    return _plan(Project.load(options.project), options)


def _plan(project: Project, options: BuildOptions) -> plan.Plan:
    render_settings = render.load_settings(project)
    targets, _ = render.image_targets(project, render_settings)
    variables = plan.variables(render_settings, {**os.environ, **options.env})
    return plan.make_plan(targets, variables, options.targets, options.sets)


def _check_room(project: Project, the_plan: plan.Plan) -> None:
    """Refuse, before any step runs, a build the engine's disk cannot hold."""
    need = disk.needed_bytes(project, (t.name for t in the_plan.targets))
    note = disk.check_room(need)
    if note:
        print(f"archlock build: note: {note}", file=sys.stderr)


def check_rendered(project: Path) -> None:
    files, _ = render.render_project(project)
    stale = render.stale_files(project.resolve(), files)
    if stale:
        raise DriftError(
            f"rendered files are stale: {', '.join(stale)}", fix="run nox -s render, then build"
        )


def _flags(options: BuildOptions, *, push: bool) -> plan.Flags:
    return plan.Flags(
        push=push,
        no_cache=options.no_cache,
        network=options.network,
        ca_bundle=options.ca_bundle,
        progress_plain=options.quiet,
    )


# -- buildx -------------------------------------------------------------------------------------
def _buildx(the_plan: plan.Plan, options: BuildOptions) -> BuildReport:
    report = BuildReport(mode="buildx", notes=list(the_plan.notes))
    attestations = True
    if options.push:
        driver = du.buildx_driver()
        attestations = driver != "docker" or du.containerd_store()
        if not attestations:
            report.notes.append(NO_ATTESTATIONS.format(driver=driver))
    _say_notes(report.notes)
    # without attestations the builder is the engine's own: load, settle, then push what settled
    direct = options.push and attestations
    flags = _flags(options, push=direct)
    for target in the_plan.targets:
        args = plan.buildx_args(target, flags, attestations)
        built = _build_one(report, options, target, [du.docker_cli(), *args])
        report.images.append(built if direct else _settled(report, options, target, built))
    if options.push:
        report.manifests = _assemble(report, options, the_plan, imagetools=True)
    return report


# -- fallback: the same targets, one platform at a time ------------------------------------------
def _fallback(the_plan: plan.Plan, options: BuildOptions) -> BuildReport:
    cli = du.classic_cli()
    print(
        "archlock build: buildx is not available (or --fallback): FALLBACK: building each image "
        f"one platform at a time with `DOCKER_BUILDKIT=1 {cli} build`",
        file=sys.stderr,
    )
    report = BuildReport(mode="fallback", notes=list(the_plan.notes))
    if options.push:
        report.notes.append(
            "SBOM/provenance attestations and registry cache export need buildx: not attached"
        )
    _say_notes(report.notes)
    flags = _flags(options, push=False)  # the fallback always loads; it pushes after settling
    for target in the_plan.targets:
        built = _build_one(report, options, target, [cli, *plan.fallback_args(target, flags)])
        report.images.append(_settled(report, options, target, built))
    if options.push:
        report.manifests = _assemble(report, options, the_plan, imagetools=False)
    return report


def _build_one(
    report: BuildReport, options: BuildOptions, target: plan.Target, argv: list[str]
) -> BuiltImage:
    _announce(f"{target.name} ({target.platform}) -> {', '.join(target.tags) or 'untagged'}")
    started = time.monotonic()
    _run(report, options, argv, f"build of {target.name} ({target.platform})")
    return BuiltImage(target.name, target.platform, target.tags, time.monotonic() - started)


def _settled(
    report: BuildReport, options: BuildOptions, target: plan.Target, built: BuiltImage
) -> BuiltImage:
    """The loaded image with its config dated the build's epoch, its other tags moved to it, and
    pushed when asked."""
    if not target.tags:
        return built
    epoch = int(target.args.get("SOURCE_DATE_EPOCH", reproducible.DEFAULT_EPOCH))
    image_id = reproducible.settle(target.tags[0], epoch, options.timeout)
    cli = du.docker_cli()
    for tag in target.tags[1:]:
        _run(report, options, [cli, "tag", target.tags[0], tag], f"docker tag {tag}")
    if options.push:
        for tag in target.tags:
            _run(report, options, [cli, "push", tag], f"docker push {tag}")
    _announce(f"{target.name} ({target.platform}): image {image_id}")
    return dataclasses.replace(built, image_id=image_id)


def _assemble(
    report: BuildReport, options: BuildOptions, the_plan: plan.Plan, *, imagetools: bool
) -> list[str]:
    """The manifest list of one image per platform (the plan's manifest members that were built)."""
    refs = [t.tags[0] for t in the_plan.targets if t.in_manifest and t.tags]
    if len(refs) < 2:
        return []
    name = the_plan.manifest
    cli = du.docker_cli()
    if imagetools:
        _run(
            report,
            options,
            [cli, "buildx", "imagetools", "create", "-t", name, *refs],
            f"imagetools create {name}",
        )
    else:
        insecure = ["--insecure"] if _is_loopback(name) else []
        proc.run([cli, "manifest", "rm", name], timeout=du.SHORT)  # a stale local list, if any
        _run(
            report,
            options,
            [cli, "manifest", "create", *insecure, name, *refs],
            f"manifest create {name}",
        )
        _run(
            report,
            options,
            [cli, "manifest", "push", *insecure, "--purge", name],
            f"manifest push {name}",
        )
    _announce(f"manifest list {name} <- {', '.join(refs)}")
    return [name]


def _is_loopback(ref: str) -> bool:
    host = ref.split("/", 1)[0] if "/" in ref else ""
    return host.split(":")[0] in ("localhost", "127.0.0.1", "[::1]")


# -- running ------------------------------------------------------------------------------------
def _announce(message: str) -> None:
    print(f"archlock build: {message}", file=sys.stderr)


def _say_notes(notes: list[str]) -> None:
    for note in notes:
        print(f"archlock build: note: {note}", file=sys.stderr)


def _run(report: BuildReport, options: BuildOptions, argv: Sequence[str], what: str) -> None:
    """One docker command in the project (the build context), with the build time limit."""
    env = {**os.environ, "DOCKER_BUILDKIT": "1"}
    if options.quiet:
        done = proc.run(
            argv, timeout=options.timeout, cwd=options.project, env=env, missing_fix=du.MISSING_FIX
        )
        report.log.append(done.stdout + done.stderr)
    else:
        done = proc.stream(
            argv, timeout=options.timeout, cwd=options.project, env=env, missing_fix=du.MISSING_FIX
        )
    if not done.ok:
        if options.quiet:
            print(done.tail(15), file=sys.stderr)
        raise ExternalCommandError(f"{what} failed: {done.why()}", fix="see the build output above")


# -- CLI ----------------------------------------------------------------------------------------
def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "build", help="build the rendered images (buildx, or an announced BuildKit fallback)"
    )
    parser.add_argument(
        "targets",
        nargs="*",
        help="envs or groups: default, release, multiarch (default: every env)",
    )
    parser.add_argument(
        "--env",
        dest="envs",
        action="append",
        default=[],
        metavar="NAME",
        help="build this env's image (repeatable)",
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--load", action="store_true", help="load the images into the local engine (the default)"
    )
    mode.add_argument(
        "--push",
        action="store_true",
        help="push (with attestations where the driver can) and assemble the multi-arch list",
    )
    parser.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        metavar="TARGET.KEY=VALUE",
        help=f"override {plan.SET_KEYS} (repeatable)",
    )
    parser.add_argument(
        "--ca-bundle",
        help=f"CA bundle for TLS-intercepting proxies (also ${CA_ENV}, [tool.archlock.build] "
        "ca-bundle; default: the system bundle; 'none' for none)",
    )
    parser.add_argument(
        "--network", help="build network mode, e.g. host (also [tool.archlock.build] network)"
    )
    parser.add_argument("--no-cache", action="store_true", help="ignore the build cache")
    parser.add_argument(
        "--fallback", action="store_true", help="use the BuildKit fallback even where buildx exists"
    )
    parser.add_argument(
        "--no-render-check", action="store_true", help="build even if rendered files are stale"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    project = Project.load(args.project)
    values = settings.given(project.settings.build, ca_bundle=args.ca_bundle, network=args.network)
    commit.refuse_torn_locks(project.root, project.locks_dir)
    commit.refuse_torn(project.root, "render")
    if not args.no_render_check:
        check_rendered(project.root)
    options = BuildOptions(
        project=project.root,
        targets=tuple(args.targets) + tuple(args.envs),
        push=args.push,
        load=args.load,
        sets=tuple(args.sets),
        ca_bundle=cabundle.resolve(values.ca_bundle),
        network=values.network,
        no_cache=args.no_cache,
        force_fallback=args.fallback,
        timeout=float(values.timeout),
    )
    print(f"archlock build: {render.context_line(project.root)}")
    report = build(options)
    for image in report.images:
        built = f"{image.target} {image.platform} in {image.seconds:.0f} s"
        built += f" ({image.image_id})" if image.image_id else ""
        print(f"archlock build: built {built}: {' '.join(image.tags)}")
    for manifest in report.manifests:
        print(f"archlock build: pushed manifest list {manifest}")
    print(f"archlock build: done ({report.mode}) in {report.seconds:.0f} s")
    return 0
