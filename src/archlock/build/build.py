"""`archlock build`: build the images the bake file describes.

With buildx: `docker buildx bake` on docker/docker-bake.hcl (--load / --push / --set pass through).
Without it: a clearly announced fallback that reads the same bake file and builds every target one
platform at a time with BuildKit (`DOCKER_BUILDKIT=1 docker build --platform P`); `--push` then
pushes each image and assembles the multi-arch list through the registry (`docker manifest`).
"""

from __future__ import annotations

import argparse
import fnmatch
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from archlock.build import bakefile
from archlock.core import cabundle
from archlock.core import docker as du
from archlock.core import settings as config
from archlock.errors import ConfigError, DriftError, ExternalCommandError, ToolMissingError

CA_SECRET_ID, CA_ENV = cabundle.CA_SECRET_ID, cabundle.CA_ENV
_LIST_SET_KEYS = {"tags", "platform", "cache-from", "cache-to", "output", "attest", "secrets"}
_FALLBACK_IGNORED = {"cache-from", "cache-to", "attest"}


@dataclass(frozen=True, kw_only=True)
class BuildOptions:
    project: Path
    targets: tuple[str, ...] = ()
    push: bool = False
    load: bool = False
    sets: tuple[str, ...] = ()
    ca_bundle: Path | None = None
    network: str | None = None
    no_cache: bool = False
    bake_file: Path | None = None
    force_fallback: bool = False
    quiet: bool = False  # capture tool output (tests and benchmarks)
    env: dict[str, str] = field(default_factory=dict)  # bake variable overrides (UV_IMAGE=..., TAG=...)


@dataclass(frozen=True)
class BuiltImage:
    target: str
    platform: str
    tags: tuple[str, ...]
    seconds: float


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
    docker = du.docker_cli()
    if not du.engine_running(docker):
        raise ToolMissingError("the Docker engine is not running", fix="start dockerd (on Debian: scripts/local-infra.sh)")
    started = time.monotonic()
    bake_path = options.bake_file or options.project / "docker" / "docker-bake.hcl"
    if not options.force_fallback and du.has_buildx(docker):
        report = _bake(docker, bake_path, options)
    else:
        report = _fallback(du.classic_cli(docker), bake_path, options)
    report.seconds = time.monotonic() - started
    return report


def check_rendered(project: Path) -> None:
    from archlock.build import render

    files, _ = render.render_project(project)
    stale = render.stale_files(project.resolve(), files)
    if stale:
        raise DriftError(f"rendered files are stale: {', '.join(stale)}", fix="run nox -s render, then build")


# -- buildx -------------------------------------------------------------------------------------
def bake_command(docker: str, bake_path: Path, options: BuildOptions) -> list[str]:
    cmd = [docker, "buildx", "bake", "-f", str(bake_path)]
    cmd += ["--push"] if options.push else ["--load"] if options.load or not options.push else []
    if options.no_cache:
        cmd.append("--no-cache")
    for item in _implied_sets(options):
        cmd += ["--set", item]
    for item in options.sets:
        cmd += ["--set", item]
    cmd += list(options.targets or (("release",) if options.push else ("default",)))
    return cmd


def _implied_sets(options: BuildOptions) -> list[str]:
    sets = []
    if options.ca_bundle:
        sets.append(f"*.secrets=id={CA_SECRET_ID},src={options.ca_bundle}")
    if options.network:
        sets.append(f"*.network={options.network}")
    return sets


def _bake(docker: str, bake_path: Path, options: BuildOptions) -> BuildReport:
    report = BuildReport(mode="buildx")
    _announce(options, f"docker buildx bake -f {bake_path}")
    report.log.append(_run(bake_command(docker, bake_path, options), options, "docker buildx bake"))
    return report


# -- fallback: the same bake file, one platform at a time ----------------------------------------
@dataclass(frozen=True)
class Step:
    target: str
    platform: str
    tags: tuple[str, ...]
    command: tuple[str, ...]


def fallback_plan(docker: str, bake: bakefile.BakeFile, options: BuildOptions) -> tuple[list[Step], list[str]]:
    """The docker build commands (and notes) that stand in for `buildx bake`."""
    names = _target_names(bake, options)
    steps, notes = [], []
    for name in names:
        target, ignored = apply_sets(bake.target(name), options.sets)
        notes += [f"{name}: --set {key} needs buildx; ignored" for key in ignored]
        notes += _unsupported_notes(target)
        if not target.platforms:
            raise ConfigError(f"{bake.path}: target {name} names no platforms", fix="add platforms = [...]")
        for platform in target.platforms:
            tags = _platform_tags(target, platform)
            steps.append(Step(name, platform, tags, tuple(_docker_build(docker, target, platform, tags, options))))
    return steps, notes


def _target_names(bake: bakefile.BakeFile, options: BuildOptions) -> list[str]:
    names: list[str] = []
    for requested in options.targets or (("release",) if options.push else ("default",)):
        names += [n for n in bake.targets_of(requested) if n not in names]
    return names


def _platform_tags(target: bakefile.BakeTarget, platform: str) -> tuple[str, ...]:
    """One platform: the target's own tags. Several: each tag gets a -<arch> suffix; the list
    under the plain tag is assembled after the push."""
    if len(target.platforms) == 1:
        return target.tags
    suffix = platform.split("/", 1)[1].replace("/", "")
    return tuple(f"{tag}-{suffix}" for tag in target.tags)


def _unsupported_notes(target: bakefile.BakeTarget) -> list[str]:
    notes = []
    if target.attest:
        notes.append(f"{target.name}: SBOM/provenance attestations need buildx; not attached")
    if target.cache_from or target.cache_to:
        notes.append(f"{target.name}: registry cache import/export needs buildx; the engine's local cache is used")
    return notes


def _docker_build(docker: str, target: bakefile.BakeTarget, platform: str, tags: tuple[str, ...], options: BuildOptions) -> list[str]:
    cmd = [docker, "build", "--platform", platform, "-f", target.dockerfile]
    for key, value in sorted(target.args.items()):
        cmd += ["--build-arg", f"{key}={value}"]
    for key, value in sorted(target.labels.items()):
        cmd += ["--label", f"{key}={value}"]
    for tag in tags:
        cmd += ["-t", tag]
    for secret in target.secret:
        cmd += ["--secret", secret]
    if options.ca_bundle:
        cmd += ["--secret", f"id={CA_SECRET_ID},src={options.ca_bundle}"]
    if options.network:
        cmd += ["--network", options.network]
    if target.target:
        cmd += ["--target", target.target]
    if options.no_cache or target.no_cache:
        cmd.append("--no-cache")
    if options.quiet:
        cmd += ["--progress", "plain"]  # step states stay readable in the captured log
    cmd.append(target.context)
    return cmd


def apply_sets(target: bakefile.BakeTarget, sets: tuple[str, ...]) -> tuple[bakefile.BakeTarget, list[str]]:
    """Apply `--set pattern.key=value` the way bake does (patterns match target names)."""
    changes: dict[str, Any] = {}
    lists: dict[str, list[str]] = {}
    ignored: list[str] = []
    for item in sets:
        pattern, key, value = _split_set(item)
        if not fnmatch.fnmatchcase(target.name, pattern):
            continue
        if key.startswith("args.") or key.startswith("labels."):
            field_name, _, sub = key.partition(".")
            changes.setdefault(field_name, dict(getattr(target, field_name)))[sub] = value
        elif key in _FALLBACK_IGNORED:
            ignored.append(key)
        elif key in _LIST_SET_KEYS:
            values = value.split(",") if key == "platform" else [value]
            lists.setdefault(key, []).extend(v for v in values if v)
        elif key in ("dockerfile", "context", "target"):
            changes[key] = value
        elif key == "no-cache":
            changes["no_cache"] = value.lower() in ("1", "true")
        else:
            ignored.append(key)
    for key, values in lists.items():
        changes[{"platform": "platforms", "secrets": "secret"}.get(key, key)] = tuple(values)
    return replace(target, **changes), ignored


def _split_set(item: str) -> tuple[str, str, str]:
    left, eq, value = item.partition("=")
    pattern, dot, key = left.partition(".")
    if not eq or not dot or not pattern or not key:
        raise ConfigError(f"--set {item}: expected TARGET.KEY=VALUE", fix="e.g. --set '*.args.UV_IMAGE=uv:local'")
    return pattern, key, value


def _fallback(docker: str, bake_path: Path, options: BuildOptions) -> BuildReport:
    report = BuildReport(mode="fallback")
    print(
        "archlock build: buildx is not available; FALLBACK: building each target of "
        f"{bake_path} one platform at a time with `DOCKER_BUILDKIT=1 {docker} build`",
        file=sys.stderr,
    )
    bake = bakefile.load(bake_path, env={**os.environ, **options.env})
    steps, report.notes = fallback_plan(docker, bake, options)
    for note in report.notes:
        print(f"archlock build: note: {note}", file=sys.stderr)
    for step in steps:
        started = time.monotonic()
        _announce(options, f"{step.target} ({step.platform}) -> {', '.join(step.tags) or 'untagged'}")
        report.log.append(_run(list(step.command), options, f"docker build of {step.target} ({step.platform})"))
        report.images.append(BuiltImage(step.target, step.platform, step.tags, time.monotonic() - started))
    if options.push:
        report.manifests = _push(docker, bake, report.images, options)
    return report


def _push(docker: str, bake: bakefile.BakeFile, images: list[BuiltImage], options: BuildOptions) -> list[str]:
    for image in images:
        for tag in image.tags:
            _run([docker, "push", tag], options, f"docker push {tag}")
    lists: dict[str, list[str]] = {}
    for name in dict.fromkeys(i.target for i in images):
        target = bake.target(name)
        if len(target.platforms) > 1:
            for tag in target.tags:
                lists[tag] = [f"{tag}-{p.split('/', 1)[1].replace('/', '')}" for p in target.platforms]
    if "multiarch" in bake.groups and "MANIFEST" in bake.variables:
        members = [i for i in images if i.target.removesuffix("-release") in bake.targets_of("multiarch") and i.tags]
        if members:
            lists[bake.variable("MANIFEST")] = [i.tags[0] for i in members]
    for name, refs in lists.items():
        _manifest(docker, name, refs, options)
    return list(lists)


def _manifest(docker: str, name: str, refs: list[str], options: BuildOptions) -> None:
    insecure = ["--insecure"] if _is_loopback(name) else []
    subprocess.run([docker, "manifest", "rm", name], capture_output=True, check=False)
    _run([docker, "manifest", "create", *insecure, name, *refs], options, f"docker manifest create {name}")
    _run([docker, "manifest", "push", *insecure, "--purge", name], options, f"docker manifest push {name}")
    _announce(options, f"manifest list {name} <- {', '.join(refs)}")


def _is_loopback(ref: str) -> bool:
    host = ref.split("/", 1)[0] if "/" in ref else ""
    return host.split(":")[0] in ("localhost", "127.0.0.1", "[::1]")


# -- running ------------------------------------------------------------------------------------
def _announce(options: BuildOptions, message: str) -> None:
    print(f"archlock build: {message}", file=sys.stderr)


def _run(cmd: list[str], options: BuildOptions, what: str) -> str:
    """Run a docker command in the project (the build context); its output if captured."""
    env = {**os.environ, **options.env, "DOCKER_BUILDKIT": "1"}
    result = subprocess.run(
        cmd, cwd=options.project, env=env, check=False, text=True,
        stdout=subprocess.PIPE if options.quiet else None, stderr=subprocess.STDOUT if options.quiet else None,
    )
    if result.returncode != 0:
        tail = (result.stdout or "").strip().splitlines()[-15:] if options.quiet else []
        if tail:
            print("\n".join(tail), file=sys.stderr)
        raise ExternalCommandError(f"{what} failed (exit {result.returncode})", fix="see the build output above")
    return result.stdout or ""


# -- CLI ----------------------------------------------------------------------------------------
def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("build", help="build the images of docker/docker-bake.hcl (buildx bake, or a BuildKit fallback)")
    parser.add_argument("targets", nargs="*", help="bake targets or groups (default: group default; with --push: release)")
    parser.add_argument("--env", dest="envs", action="append", default=[], metavar="NAME", help="build this env's target (repeatable)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--load", action="store_true", help="load the images into the local engine (the default)")
    mode.add_argument("--push", action="store_true", help="push, with attestations, and assemble the multi-arch list")
    parser.add_argument("--set", dest="sets", action="append", default=[], metavar="TARGET.KEY=VALUE", help="override a bake value (repeatable)")
    parser.add_argument(
        "--ca-bundle",
        help=f"CA bundle for TLS-intercepting proxies (also ${CA_ENV}, [tool.archlock.build] ca-bundle; "
        "default: the system bundle; 'none' for none)",
    )
    parser.add_argument("--network", help="build network mode, e.g. host (also [tool.archlock.build] network)")
    parser.add_argument("--no-cache", action="store_true", help="ignore the build cache")
    parser.add_argument("--fallback", action="store_true", help="use the BuildKit fallback even where buildx exists")
    parser.add_argument("--no-render-check", action="store_true", help="build even if rendered files are stale")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from archlock.core.project import Project

    project = Project.load(args.project)
    settings = config.section(project, "build", cli={"ca-bundle": args.ca_bundle, "network": args.network})
    if not args.no_render_check:
        check_rendered(project.root)
    options = BuildOptions(
        project=project.root,
        targets=tuple(args.targets) + tuple(f"{env}-release" if args.push else env for env in args.envs),
        push=args.push,
        load=args.load,
        sets=tuple(args.sets),
        ca_bundle=cabundle.resolve(settings["ca-bundle"]),
        network=settings["network"],
        no_cache=args.no_cache,
        force_fallback=args.fallback,
    )
    report = build(options)
    for image in report.images:
        print(f"archlock build: built {image.target} {image.platform} in {image.seconds:.0f} s: {' '.join(image.tags)}")
    for manifest in report.manifests:
        print(f"archlock build: pushed manifest list {manifest}")
    print(f"archlock build: done ({report.mode}) in {report.seconds:.0f} s")
    return 0
