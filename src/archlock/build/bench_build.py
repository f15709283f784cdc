"""The build part of `nox -s bench`: archlock's images against their goals and a naive Dockerfile.

One run on a copy of the project, for the env native to this host (no emulation in timings):
  1. cold build of our Dockerfile (no layer cache, BuildKit cache mounts pruned first),
  2. cold build of a naive Dockerfile for the same lock (`COPY . .` then `pip install -r lock`),
  3. one source-only change, then both rebuilt.
Printed as ratios: source-only rebuild / cold build (goal <= 0.05), image size / (base image +
installed payload) (goal <= 1.10), and ours / naive for cold time, rebuild time and size.
Pruning cache mounts empties every build's package cache on this engine: run it on purpose.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from archlock.build import bakefile, build
from archlock.core import cabundle, settings
from archlock.core import docker as du
from archlock.core.platforms import for_host

COPY_IGNORE = (".git", ".venv", ".nox", ".archlock", "__pycache__", "results", ".pytest_cache", ".ruff_cache")
NAIVE = """FROM {base}
WORKDIR /app
COPY . .
RUN --mount=type=secret,id=ca-bundle \\
    if [ -s /run/secrets/ca-bundle ]; then export PIP_CERT=/run/secrets/ca-bundle; fi \\
    && python3 -m venv /venv && /venv/bin/pip install -r {lock}
ENV PATH=/venv/bin:$PATH
"""
OURS_TAG, NAIVE_TAG = "archlock-bench:ours", "archlock-bench:naive"


def native_target(bake: bakefile.BakeFile) -> str:
    """The default group's first target whose platform this host runs without emulation."""
    host = for_host(platform.system(), platform.machine())
    names = bake.targets_of("default")
    for name in names:
        if host and host.docker_platform in bake.target(name).platforms:
            return name
    return names[0]


def _docker(docker: str, *args: str) -> str:
    done = subprocess.run([docker, *args], capture_output=True, text=True, check=False)
    if done.returncode:
        raise SystemExit(f"bench: docker {' '.join(args)} failed: {done.stderr.strip()[-400:]}")
    return done.stdout


def _size(docker: str, ref: str) -> int:
    return int(json.loads(_docker(docker, "image", "inspect", ref))[0]["Size"])


def _payload(docker: str, ref: str, paths: list[str]) -> int:
    out = _docker(docker, "run", "--rm", "--entrypoint", "du", ref, "-sb", *paths)
    return sum(int(line.split()[0]) for line in out.splitlines() if line.strip())


def _ours(copy: Path, target: str, base: build.BuildOptions, no_cache: bool) -> float:
    options = build.BuildOptions(
        project=copy, targets=(target,), sets=(f"{target}.tags={OURS_TAG}",), no_cache=no_cache,
        ca_bundle=base.ca_bundle, network=base.network, env=base.env, quiet=True, force_fallback=base.force_fallback,
    )
    started = time.monotonic()
    build.build(options)
    return time.monotonic() - started


def _naive(docker: str, copy: Path, dockerfile: Path, plat: str, base: build.BuildOptions, no_cache: bool) -> float:
    cmd = [du.classic_cli(docker), "build", "--platform", plat, "-f", str(dockerfile), "-t", NAIVE_TAG]
    if base.ca_bundle:
        cmd += ["--secret", f"id=ca-bundle,src={base.ca_bundle}"]
    if base.network:
        cmd += ["--network", base.network]
    cmd += ["--no-cache"] if no_cache else []
    started = time.monotonic()
    done = subprocess.run([*cmd, str(copy)], capture_output=True, text=True, check=False, env={**os.environ, "DOCKER_BUILDKIT": "1"})
    if done.returncode:
        raise SystemExit(f"bench: naive build failed: {done.stdout[-1500:]}{done.stderr[-1500:]}")
    return time.monotonic() - started


def bench_build(project_root: Path, base: build.BuildOptions) -> dict[str, float | str]:
    docker = du.docker_cli()
    bake = bakefile.load(project_root / "docker" / "docker-bake.hcl", env={**os.environ, **base.env})
    target = native_target(bake)
    spec = bake.target(target)
    plat = spec.platforms[0]
    lock = _lock_of(project_root / spec.dockerfile)
    with tempfile.TemporaryDirectory(prefix="archlock-bench-build-") as tmp:
        copy = Path(tmp) / "project"
        copy_project(project_root, copy)
        naive_file = Path(tmp) / "naive.Dockerfile"
        naive_file.write_text(NAIVE.format(base=spec.args["BASE_IMAGE"], lock=lock))
        _docker(docker, "builder", "prune", "--force", "--filter", "type=exec.cachemount")
        results: dict[str, float | str] = {"target": target, "platform": plat}
        results["ours_cold"] = _ours(copy, target, base, no_cache=True)
        results["naive_cold"] = _naive(docker, copy, naive_file, plat, base, no_cache=True)
        (copy / "archlock-bench-change.txt").write_text(f"source-only change {time.time()}\n")
        results["ours_source"] = _ours(copy, target, base, no_cache=False)
        results["naive_source"] = _naive(docker, copy, naive_file, plat, base, no_cache=False)
    results["ours_size"] = _size(docker, OURS_TAG)
    results["naive_size"] = _size(docker, NAIVE_TAG)
    results["base_size"] = _size(docker, spec.args["BASE_IMAGE"])
    results["payload"] = _payload(docker, OURS_TAG, ["/opt/venv", "/app"])
    _docker(docker, "image", "rm", OURS_TAG, NAIVE_TAG)
    return results


def copy_project(root: Path, into: Path) -> None:
    """The project's own files: what git tracks or would track, else everything but caches."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=root, capture_output=True, check=False
    )
    if listed.returncode != 0:
        shutil.copytree(root, into, ignore=shutil.ignore_patterns(*COPY_IGNORE))
        return
    for name in filter(None, listed.stdout.decode().split("\0")):
        source, target = root / name, into / name
        if source.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)


def _lock_of(dockerfile: Path) -> str:
    for line in dockerfile.read_text().splitlines():
        if "--mount=type=bind,source=" in line and "requirements.txt" in line:
            return line.split("source=", 1)[1].split(",", 1)[0]
    raise SystemExit(f"bench: no lock mount found in {dockerfile}")


def print_build_ratios(r: dict[str, float | str]) -> None:
    gb = 1e9
    ours_cold, ours_src = float(r["ours_cold"]), float(r["ours_source"])
    naive_cold, naive_src = float(r["naive_cold"]), float(r["naive_source"])
    size, base, payload, naive_size = (float(r[k]) for k in ("ours_size", "base_size", "payload", "naive_size"))
    print(f"build: env {r['target']} ({r['platform']}), native")
    print(f"build source-only rebuild / cold: {ours_src:6.1f}s / {ours_cold:6.1f}s = {ours_src / ours_cold:.3f} (goal <= 0.05)")
    print(
        f"build image size / (base + payload): {size / gb:.2f} GB / ({base / gb:.2f} + {payload / gb:.2f}) GB"
        f" = {size / (base + payload):.3f} (goal <= 1.10)"
    )
    print(f"build ours / naive, cold:    {ours_cold:6.1f}s / {naive_cold:6.1f}s = {ours_cold / naive_cold:.2f}")
    print(f"build ours / naive, rebuild: {ours_src:6.1f}s / {naive_src:6.1f}s = {ours_src / naive_src:.3f}")
    print(f"build ours / naive, size:    {size / gb:.2f} GB / {naive_size / gb:.2f} GB = {size / naive_size:.2f}")


def bench_ca_bundle(project_root: Path, explicit: Path | None) -> Path | None:
    """The CA bundle `archlock build` would use for this project (archlock.core.cabundle)."""
    from archlock.core.project import Project

    chosen = settings.section(Project.load(project_root), "build", cli={"ca-bundle": explicit})
    return cabundle.resolve(chosen["ca-bundle"])


def bake_overrides(project_root: Path) -> dict[str, str]:
    """The uv image render and repro would use ($ARCHLOCK_UV_IMAGE, [tool.archlock.render]
    uv-image), as the bake file's UV_IMAGE variable; nothing when neither is set."""
    from archlock.core.project import Project

    uv_image = settings.section(Project.load(project_root), "render")["uv-image"]
    return {"UV_IMAGE": uv_image} if uv_image else {}


def run_build_bench(
    project_root: Path, ca_bundle: Path | None = None, network: str | None = None, sets: tuple[str, ...] = ()
) -> None:
    """What `archlock bench` calls for its build part (`sets`: bake overrides such as a local base)."""
    env = bake_overrides(project_root)
    base = build.BuildOptions(
        project=project_root, ca_bundle=bench_ca_bundle(project_root, ca_bundle), network=network, env=env, sets=sets
    )
    print_build_ratios(bench_build(project_root, base))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m archlock.build.bench_build", description=__doc__.splitlines()[0])
    parser.add_argument("--project", type=Path, default=Path.cwd())
    parser.add_argument("--ca-bundle", type=Path)
    parser.add_argument("--network")
    args = parser.parse_args(argv)
    run_build_bench(args.project.resolve(), args.ca_bundle, args.network)
    return 0


if __name__ == "__main__":
    sys.exit(main())
