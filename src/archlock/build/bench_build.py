"""The build parts of `nox -s bench`: our images against their goals, and arm64 against amd64.

Part `build`: one run on a copy of the project, for the env native to this host (no emulation):
  1. cold build of our Dockerfile (no layer cache, BuildKit cache mounts pruned first),
  2. cold build of a naive Dockerfile for the same lock (templates/naive.Dockerfile.j2),
  3. one source-only change, then both rebuilt.
Printed as ratios: source-only rebuild / cold build (goal <= 0.05), image size / (base image +
installed payload) (goal <= 1.10), and ours / naive for cold time, rebuild time and size.

Part `arch`: what building for the other architecture costs. The same dependencies (every
package both Linux locks pin at the same version, with both platforms' hashes; torch is left out
because PyPI's amd64 and arm64 torch are different builds) are built cold three times:
linux/amd64; linux/arm64 with the target platform's uv, emulated (before); linux/arm64 with
the build platform's uv (after, what `archlock render` writes). Printed:
arm64 / amd64 before and after (goal <= 1.3), and the bytes downloaded (the host's network
counters during each build, and the wheel sizes the pylocks declare).
Pruning cache mounts empties every build's package cache on this engine: run it on purpose.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import shutil
import statistics
import sys
import tempfile
import time
import tomllib
from dataclasses import replace
from pathlib import Path
from typing import Any

from archlock.build import build, plan, render
from archlock.build import layers as layer_plan
from archlock.core import cabundle, proc, settings
from archlock.core import docker as du
from archlock.core.platforms import for_host
from archlock.core.project import Project
from archlock.errors import ExternalCommandError

COPY_IGNORE = (
    ".git",
    ".venv",
    ".nox",
    ".archlock",
    "__pycache__",
    "results",
    ".pytest_cache",
    ".ruff_cache",
)
OURS_TAG, NAIVE_TAG = "archlock-bench:ours", "archlock-bench:naive"
ARCH_TAG = "archlock-bench:arch-{}"
LEFT_OUT = {"torch"}  # PyPI: CUDA build on amd64, CPU build on arm64 - not the same dependency
BUILD_LIMIT = 3600.0
_ENTRY = re.compile(
    r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)((?:[ \t]*\\\n[ \t]*--hash=sha256:[0-9a-f]{64})+)",
    re.MULTILINE,
)


# -- shared -------------------------------------------------------------------------------------
def image_targets(project: Project) -> tuple[render.RenderSettings, list[render.ImageTarget]]:
    settings = render.load_settings(project)
    return settings, render.image_targets(project, settings)[0]


def prune_cache_mounts() -> None:
    du.output(["builder", "prune", "--force", "--filter", "type=exec.cachemount"], timeout=600)


def received_bytes() -> int:
    """Bytes this host has received on its network interfaces (loopback aside)."""
    total = 0
    for line in Path("/proc/net/dev").read_text().splitlines()[2:]:
        name, _, fields = line.partition(":")
        if name.strip() != "lo":
            total += int(fields.split()[0])
    return total


def timed_build(argv: list[str], cwd: Path) -> tuple[float, int]:
    """Seconds and host bytes received for one build; SystemExit naming why if it fails."""
    before, started = received_bytes(), time.monotonic()
    done = proc.run(argv, timeout=BUILD_LIMIT, cwd=cwd, env={**os.environ, "DOCKER_BUILDKIT": "1"})
    if not done.ok:
        raise SystemExit(f"bench: {' '.join(argv[:3])} failed: {done.why()}\n{done.tail(30)}")
    return time.monotonic() - started, received_bytes() - before


# -- part `arch` ---------------------------------------------------------------------------------
def lock_entries(text: str) -> dict[str, tuple[str, list[str]]]:
    """A hashed requirements lock: name -> (version, hash lines)."""
    found = {}
    for name, version, hashes in _ENTRY.findall(text):
        found[name.lower()] = (version, re.findall(r"--hash=sha256:[0-9a-f]{64}", hashes))
    return found


def shared_lock(locks: list[str]) -> str:
    """The packages every lock pins at the same version, with every lock's hashes for them."""
    entries = [lock_entries(text) for text in locks]
    lines = []
    for name in sorted(set.intersection(*(set(e) for e in entries)) - LEFT_OUT):
        versions = {e[name][0] for e in entries}
        if len(versions) == 1:
            hashes = sorted({h for e in entries for h in e[name][1]})
            lines.append(" \\\n    ".join([f"{name}=={versions.pop()}", *hashes]))
    return "\n".join(lines) + "\n"


def declared_bytes(pylock: Path, names: set[str]) -> int:
    """The wheel sizes a per-platform pylock declares for `names`."""
    if not pylock.is_file():
        return 0
    packages = tomllib.loads(pylock.read_text(encoding="utf-8")).get("packages", [])
    return sum(
        int(w.get("size", 0))
        for p in packages
        if p.get("name") in names
        for w in p.get("wheels", [])
    )


def arch_variants(
    arm: render.ImageTarget, amd: render.ImageTarget, lock: str, base_image: str
) -> dict[str, render.ImageTarget]:
    sha = hashlib.sha256(lock.encode()).hexdigest()

    def variant(
        target: render.ImageTarget, env: str, on_build: bool, why: str = ""
    ) -> render.ImageTarget:
        return replace(
            target,
            env=env,
            deps_on_build_platform=on_build,
            emulated_because=why,
            lock_path="bench.txt",
            lock_sha256=sha,
            layers=layer_plan.pinned(target.layers, lock),
            install_project=False,
            base_image=base_image,
            extra_index_url=None,
        )

    return {
        "amd64": variant(amd, "bench-amd64", True),
        "arm64_before": variant(
            arm, "bench-arm64-emulated", False, "emulated on purpose: the comparison"
        ),
        "arm64_after": variant(arm, "bench-arm64", True),
    }


def _build_argv(target: plan.Target, flags: plan.Flags, fallback: bool) -> list[str]:
    if du.has_buildx() and not fallback:
        return [du.docker_cli(), *plan.buildx_args(target, flags, False)]
    return [du.classic_cli(), *plan.fallback_args(target, flags)]


def bench_arch(project_root: Path, base: build.BuildOptions, runs: int = 3) -> dict[str, Any]:
    project = Project.load(project_root)
    settings, targets = image_targets(project)
    by_platform = {t.platforms[0]: t for t in targets if len(t.platforms) == 1}
    arm, amd = by_platform.get("linux/arm64"), by_platform.get("linux/amd64")
    if not arm or not amd:
        raise SystemExit(
            "bench: the arch part needs a linux/amd64 and a linux/arm64 env with a lock"
        )
    lock = shared_lock([project.env_lock(t.env).read_text() for t in (amd, arm)])
    names = {line.split("==")[0] for line in lock.splitlines() if "==" in line}
    variables = plan.variables(settings, {**os.environ, **base.env})
    base_image = _set_arg(base.sets, "BASE_IMAGE") or arm.base_image
    results: dict[str, Any] = {"packages": len(names)}
    variants = arch_variants(arm, amd, lock, base_image)
    flags = plan.Flags(
        no_cache=True, network=base.network, ca_bundle=base.ca_bundle, progress_plain=True
    )
    times: dict[str, list[float]] = {label: [] for label in variants}
    with tempfile.TemporaryDirectory(prefix="archlock-bench-arch-") as tmp:
        ctx = Path(tmp)
        (ctx / "bench.txt").write_text(lock)
        commands = {}
        for label, image in variants.items():
            (ctx / f"{label}.Dockerfile").write_text(
                render.dockerfile_text(image, variables["UV_IMAGE"], "bench")
            )
            target = plan.Target(
                name=image.env,
                dockerfile=f"{label}.Dockerfile",
                platform=image.platforms[0],
                tags=(ARCH_TAG.format(label),),
                cache_ref="",
                in_manifest=False,
                args={"BASE_IMAGE": base_image, "UV_IMAGE": variables["UV_IMAGE"]},
            )
            commands[label] = _build_argv(target, flags, base.force_fallback)
        for _ in range(runs):  # interleaved: a busy shared host slows every variant alike
            for label, argv in commands.items():
                prune_cache_mounts()
                seconds, received = timed_build(argv, ctx)
                times[label].append(seconds)
                results[f"{label}_received"] = received
    for label, samples in times.items():
        results[label] = statistics.median(samples)
    results["runs"] = runs
    du.remove_images(
        *(ARCH_TAG.format(label) for label in ("amd64", "arm64_before", "arm64_after"))
    )
    results["amd64_declared"] = declared_bytes(project.env_pylock(amd.env), names)
    results["arm64_declared"] = declared_bytes(project.env_pylock(arm.env), names)
    return results


def _set_arg(sets: tuple[str, ...], name: str) -> str | None:
    for item in sets:
        pattern, key, value = plan.split_set(item)
        if pattern == "*" and key == f"args.{name}":
            return value
    return None


def print_arch_ratios(r: dict[str, Any]) -> None:
    mb = 1e6
    amd, before, after = float(r["amd64"]), float(r["arm64_before"]), float(r["arm64_after"])
    print(
        f"arch: {r['packages']} packages both Linux locks pin alike (torch left out),"
        f" cold builds, median of {r['runs']} interleaved runs"
    )
    ratio = "arch arm64 / amd64, deps {:<25} {:6.1f}s / {:6.1f}s = {:.2f}{}"
    print(ratio.format("emulated (before):", before, amd, before / amd, ""))
    print(ratio.format("on build platform (after):", after, amd, after / amd, " (goal <= 1.3)"))
    received = ", ".join(
        f"{k} {r[f'{k}_received'] / mb:.1f}" for k in ("amd64", "arm64_before", "arm64_after")
    )
    print(f"arch downloaded, host received MB (shared host: an upper bound): {received}")
    declared = f"amd64 {r['amd64_declared'] / mb:.1f}, arm64 {r['arm64_declared'] / mb:.1f}"
    print(f"arch downloaded, wheel MB the pylocks declare: {declared}")


# -- part `build` --------------------------------------------------------------------------------
def native_target(targets: list[render.ImageTarget]) -> render.ImageTarget:
    """The first env whose platform this host runs without emulation."""
    host = for_host(platform.system(), platform.machine())
    for target in targets:
        if host and host.docker_platform in target.platforms:
            return target
    return targets[0]


def _size(ref: str) -> int:
    return int(json.loads(du.output(["image", "inspect", ref]))[0]["Size"])


def _payload(ref: str, paths: list[str]) -> int:
    done = du.Container(ref, ("-sb", *paths), entrypoint="du").run(timeout=600)
    if not done.ok:
        fix = "see the message above; is the engine running?"
        raise ExternalCommandError(f"du in {ref} failed: {done.why()}", fix=fix)
    return sum(int(line.split()[0]) for line in done.stdout.splitlines() if line.strip())


def build_tagged(
    copy: Path, env: str, base: build.BuildOptions, tag: str, no_cache: bool
) -> build.BuildReport:
    """`archlock build` of one env of the project copy, tagged `tag`, output captured."""
    options = replace(
        base,
        project=copy,
        targets=(env,),
        sets=(*base.sets, f"{env}.tags={tag}"),
        no_cache=no_cache,
        quiet=True,
    )
    return build.build(options)


def _ours(copy: Path, target: str, base: build.BuildOptions, no_cache: bool) -> float:
    started = time.monotonic()
    build_tagged(copy, target, base, OURS_TAG, no_cache)
    return time.monotonic() - started


def _naive(
    copy: Path, dockerfile: Path, target: plan.Target, base: build.BuildOptions, no_cache: bool
) -> float:
    naive = replace(target, dockerfile=str(dockerfile), tags=(NAIVE_TAG,), args={})
    flags = plan.Flags(no_cache=no_cache, network=base.network, ca_bundle=base.ca_bundle)
    return timed_build([du.classic_cli(), *plan.fallback_args(naive, flags)], copy)[0]


def bench_build(project_root: Path, base: build.BuildOptions) -> dict[str, float | str]:
    _, targets = image_targets(Project.load(project_root))
    image = native_target(targets)
    the_plan = build.plan_for(replace(base, targets=(image.env,)))
    target = the_plan.targets[0]
    with tempfile.TemporaryDirectory(prefix="archlock-bench-build-") as tmp:
        copy = Path(tmp) / "project"
        copy_project(project_root, copy)
        naive_file = Path(tmp) / "naive.Dockerfile"
        naive_text = (
            render.environment()
            .get_template("naive.Dockerfile.j2")
            .render(base=target.args["BASE_IMAGE"], lock=image.lock_path)
        )
        naive_file.write_text(naive_text)
        prune_cache_mounts()
        results: dict[str, float | str] = {"target": image.env, "platform": target.platform}
        results["ours_cold"] = _ours(copy, image.env, base, no_cache=True)
        results["naive_cold"] = _naive(copy, naive_file, target, base, no_cache=True)
        (copy / "archlock-bench-change.txt").write_text(f"source-only change {time.time()}\n")
        results["ours_source"] = _ours(copy, image.env, base, no_cache=False)
        results["naive_source"] = _naive(copy, naive_file, target, base, no_cache=False)
    results["ours_size"] = _size(OURS_TAG)
    results["naive_size"] = _size(NAIVE_TAG)
    results["base_size"] = _size(target.args["BASE_IMAGE"])
    results["payload"] = _payload(OURS_TAG, ["/opt/venv", "/app"])
    du.remove_images(OURS_TAG, NAIVE_TAG)
    return results


def copy_project(root: Path, into: Path) -> None:
    """The project's own files: what git tracks or would track, else everything but caches."""
    listed = proc.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        timeout=60,
        cwd=root,
    )
    if not listed.ok:
        shutil.copytree(root, into, ignore=shutil.ignore_patterns(*COPY_IGNORE))
        return
    for name in filter(None, listed.stdout.split("\0")):
        source, target = root / name, into / name
        if source.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)


def print_build_ratios(r: dict[str, float | str]) -> None:
    gb = 1e9
    ours_cold, ours_src = float(r["ours_cold"]), float(r["ours_source"])
    naive_cold, naive_src = float(r["naive_cold"]), float(r["naive_source"])
    size, base, payload, naive_size = (
        float(r[k]) for k in ("ours_size", "base_size", "payload", "naive_size")
    )
    print(f"build: env {r['target']} ({r['platform']}), native")
    rebuild = ours_src / ours_cold
    print(
        f"build source-only rebuild / cold: {ours_src:6.1f}s / {ours_cold:6.1f}s"
        f" = {rebuild:.3f} (goal <= 0.05)"
    )
    print(
        f"build image size / (base + payload): {size / gb:.2f} GB"
        f" / ({base / gb:.2f} + {payload / gb:.2f}) GB"
        f" = {size / (base + payload):.3f} (goal <= 1.10)"
    )
    line = "build ours / naive, {:<9} {:6.1f}{} / {:6.1f}{} = {:.3f}"
    print(line.format("cold:", ours_cold, "s", naive_cold, "s", ours_cold / naive_cold))
    print(line.format("rebuild:", ours_src, "s", naive_src, "s", ours_src / naive_src))
    print(line.format("size:", size / gb, " GB", naive_size / gb, " GB", size / naive_size))


# -- entry points --------------------------------------------------------------------------------
def bench_ca_bundle(project: Project, explicit: Path | None) -> Path | None:
    """The CA bundle `archlock build` would use for this project (archlock.core.cabundle)."""
    return cabundle.resolve(settings.given(project.settings.build, ca_bundle=explicit).ca_bundle)


def bake_overrides(project: Project) -> dict[str, str]:
    """The uv image render and repro would use ($ARCHLOCK_UV_IMAGE, [tool.archlock.render]
    uv-image), as the bake file's UV_IMAGE variable; nothing when neither is set."""
    uv_image = project.settings.render.uv_image
    return {"UV_IMAGE": uv_image} if uv_image else {}


def bench_options(
    project_root: Path, ca_bundle: Path | None, network: str | None, sets: tuple[str, ...]
) -> build.BuildOptions:
    """The build options every bench part starts from: the project's CA bundle and uv image."""
    project = Project.load(project_root)
    return build.BuildOptions(
        project=project_root,
        ca_bundle=bench_ca_bundle(project, ca_bundle),
        network=network,
        env=bake_overrides(project),
        sets=sets,
    )


def run_build_bench(
    project_root: Path,
    ca_bundle: Path | None = None,
    network: str | None = None,
    sets: tuple[str, ...] = (),
    parts: tuple[str, ...] = ("build", "arch"),
    runs: int = 3,
) -> None:
    """What `archlock bench` calls for its build parts (`sets`: overrides such as a local base)."""
    base = bench_options(project_root, ca_bundle, network, sets)
    if "build" in parts:
        print_build_ratios(bench_build(project_root, base))
    if "arch" in parts:
        print_arch_ratios(bench_arch(project_root, base, runs))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m archlock.build.bench_build", description=(__doc__ or "").splitlines()[0]
    )
    parser.add_argument("--project", type=Path, default=Path.cwd())
    parser.add_argument("--ca-bundle", type=Path)
    parser.add_argument("--network")
    parser.add_argument("--set", action="append", default=[], dest="sets")
    parser.add_argument("--part", choices=("build", "arch"), action="append")
    args = parser.parse_args(argv)
    run_build_bench(
        args.project.resolve(),
        args.ca_bundle,
        args.network,
        tuple(args.sets),
        tuple(args.part or ("build", "arch")),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
