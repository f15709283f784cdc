"""What `archlock build` builds: the image targets of `archlock render`'s own data, as commands.

No file is parsed back: the targets, tags and build arguments come from the same data the
rendered Dockerfiles and bake file were made from (`render.image_targets`). Variables follow
bake's rule for the rendered bake file: a default, overridden by the environment.
Two command forms: `docker buildx build` (one per target) and, without buildx, the BuildKit
fallback `DOCKER_BUILDKIT=1 docker build --platform P` (the engine's built-in BuildKit).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from archlock.build import render, reproducible
from archlock.errors import ConfigError

CA_SECRET_ID = "ca-bundle"
GROUPS = ("default", "release", "multiarch")
SET_KEYS = "args.NAME, tags, no-cache"
# build arguments every target gets from the bake file's variables
SHARED_ARGS = ("UV_IMAGE", "SOURCE_URL", "REVISION", "COMPILE_BYTECODE", "SOURCE_DATE_EPOCH")


@dataclass(frozen=True, kw_only=True)
class Target:
    name: str  # the env's name
    dockerfile: str  # relative to the project root (the build context)
    platform: str
    tags: tuple[str, ...]
    args: dict[str, str]
    cache_ref: str  # registry cache reference (drivers that can export a cache)
    in_manifest: bool  # one of the manifest list's entries
    no_cache: bool = False


@dataclass(frozen=True)
class Plan:
    targets: list[Target]
    manifest: str  # the multi-arch list `--push` assembles
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True, kw_only=True)
class Flags:
    """What the caller asked for that changes every command."""

    push: bool = False
    no_cache: bool = False
    network: str | None = None
    ca_bundle: Path | None = None
    progress_plain: bool = False  # step states readable in captured output


def variables(settings: render.RenderSettings, environ: Mapping[str, str]) -> dict[str, str]:
    """The rendered bake file's variables: defaults, overridden by the environment."""
    defaults = {
        "REGISTRY": settings.registry,
        "IMAGE": settings.image_name,
        "TAG": "dev",
        "UV_IMAGE": settings.uv_image,
        "SOURCE_URL": "",
        "REVISION": "",
        "COMPILE_BYTECODE": "1",
        "SOURCE_DATE_EPOCH": str(reproducible.source_date_epoch(environ)),
    }
    return {key: environ.get(key, value) for key, value in defaults.items()}


def make_plan(
    targets: list[render.ImageTarget],
    variables: Mapping[str, str],
    wanted: tuple[str, ...],
    sets: tuple[str, ...],
) -> Plan:
    names = select(targets, wanted)
    members = {t.env for t in render.multiarch(targets)}
    prefix = f"{variables['REGISTRY']}{variables['IMAGE']}"
    shared = {k: variables[k] for k in SHARED_ARGS}
    chosen = []
    for image in targets:
        if image.env not in names:
            continue
        target = Target(
            name=image.env,
            dockerfile=f"{render.DOCKER_DIR}/{image.env}.Dockerfile",
            platform=image.platforms[0],
            tags=(f"{prefix}:{variables['TAG']}-{image.env}",),
            args={**shared, "BASE_IMAGE": image.base_image},
            cache_ref=f"{prefix}:buildcache-{image.env}",
            in_manifest=image.env in members,
        )
        chosen.append(apply_sets(target, sets))
    emulated = [
        f"{t.env}: the venv installs with {t.platforms[0]}'s uv, emulated on other machines: "
        f"{t.emulated_because}"
        for t in targets
        if t.env in names and not t.deps_on_build_platform
    ]
    return Plan(chosen, f"{prefix}:{variables['TAG']}", emulated)


def select(targets: list[render.ImageTarget], wanted: tuple[str, ...]) -> list[str]:
    """Env names for the requested targets or groups (bake's names: `<env>-release` is `<env>`)."""
    known = [t.env for t in targets]
    names: list[str] = []
    for item in wanted or ("default",):
        if item in ("default", "release"):
            found = known
        elif item == "multiarch":
            found = [t.env for t in render.multiarch(targets)]
        elif item.removesuffix("-release") in known:
            found = [item.removesuffix("-release")]
        else:
            raise ConfigError(
                f"build target {item!r}: no such env or group",
                fix=f"use one of: {', '.join([*known, *GROUPS])}",
            )
        names += [n for n in found if n not in names]
    return names


def apply_sets(target: Target, sets: tuple[str, ...]) -> Target:
    """`--set PATTERN.KEY=VALUE` (bake's form; PATTERN matches target names)."""
    for item in sets:
        pattern, key, value = split_set(item)
        if not fnmatch.fnmatchcase(target.name, pattern):
            continue
        if key.startswith("args."):
            target = replace(target, args={**target.args, key.removeprefix("args."): value})
        elif key == "tags":
            target = replace(target, tags=tuple(v for v in value.split(",") if v))
        elif key == "no-cache":
            target = replace(target, no_cache=value.lower() in ("1", "true"))
        else:
            raise ConfigError(
                f"--set {item}: archlock build does not set {key!r}", fix=f"set one of: {SET_KEYS}"
            )
    return target


def split_set(item: str) -> tuple[str, str, str]:
    left, eq, value = item.partition("=")
    pattern, dot, key = left.partition(".")
    if not eq or not dot or not pattern or not key:
        raise ConfigError(
            f"--set {item}: expected TARGET.KEY=VALUE", fix="e.g. --set '*.args.UV_IMAGE=uv:local'"
        )
    return pattern, key, value


# -- commands -------------------------------------------------------------------------------------
def _common(target: Target, flags: Flags) -> list[str]:
    cmd = ["--platform", target.platform, "-f", target.dockerfile]
    for key, value in sorted(target.args.items()):
        cmd += ["--build-arg", f"{key}={value}"]
    for tag in target.tags:
        cmd += ["-t", tag]
    if flags.ca_bundle:
        cmd += ["--secret", f"id={CA_SECRET_ID},src={flags.ca_bundle}"]
    if flags.network:
        cmd += ["--network", flags.network]
    if flags.no_cache or target.no_cache:
        cmd.append("--no-cache")
    if flags.progress_plain:
        cmd += ["--progress", "plain"]
    return cmd


def buildx_args(target: Target, flags: Flags, attestations: bool) -> list[str]:
    """`docker buildx build ...` arguments (after the client) for one target."""
    cmd = ["buildx", "build", *_common(target, flags)]
    if flags.network == "host":
        cmd += ["--allow", "network.host"]  # the entitlement; the daemon must grant it too
    if flags.push:
        cmd.append("--push")
        if attestations:
            cmd += ["--sbom=true", "--provenance=mode=max"]
            cmd += ["--cache-from", f"type=registry,ref={target.cache_ref}"]
            cmd += ["--cache-to", f"type=registry,ref={target.cache_ref},mode=max"]
        else:
            cmd += ["--sbom=false", "--provenance=false"]
    else:
        cmd.append("--load")
    return [*cmd, "."]


def fallback_args(target: Target, flags: Flags) -> list[str]:
    """`DOCKER_BUILDKIT=1 docker build ...` arguments (after a classic client) for one target."""
    return ["build", *_common(target, flags), "."]
