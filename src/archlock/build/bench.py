"""`archlock bench`: archlock's overhead against the raw tools doing the same work, as ratios.

`--part lock` and `--part build` (see archlock.build.bench_build) run one half; the default
runs both.

Lock: `archlock lock` on a fresh copy of the project (no uv.lock, no env locks) versus the
raw uv commands that produce the same files: `uv lock`, `uv export`, then for every env
`uv pip compile --format pylock.toml` and `uv pip compile --generate-hashes`. Cold runs use an
empty uv cache each; warm runs share a cache filled beforehand (median of several runs).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from archlock.core.project import Project
from archlock.core.uvtool import uv_binary

PROJECT_FILES = ("pyproject.toml", "README.md", "requirements.txt", "envs")


def fresh_copy(project: Project, into: Path) -> Path:
    target = into / "project"
    target.mkdir()
    for name in PROJECT_FILES:
        source = project.root / name
        if source.is_dir():
            shutil.copytree(source, target / name, ignore=shutil.ignore_patterns("locks"))
        elif source.is_file():
            shutil.copy2(source, target / name)
    return target


Stage = list[list[str]]  # commands that run at the same time


def timed(stages: list[Stage], cwd: Path, cache: Path) -> float:
    env = {**os.environ, "UV_CACHE_DIR": str(cache), "NO_COLOR": "1"}
    start = time.perf_counter()
    for stage in stages:
        procs = [
            subprocess.Popen(c, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            for c in stage
        ]
        for proc, command in zip(procs, stage, strict=True):
            _, err = proc.communicate()
            if proc.returncode:
                raise SystemExit(f"bench: {' '.join(command)} failed: {err.decode()[-400:]}")
    return time.perf_counter() - start


def archlock_commands(copy: Path) -> list[Stage]:
    return [[[sys.executable, "-m", "archlock", "--project", str(copy), "lock"]]]


def raw_uv_commands(project: Project, copy: Path, parallel: bool) -> list[Stage]:
    """What a user would type to get the same files with uv alone (env compiles at once, or not)."""
    uv = uv_binary()
    groups = [arg for group in project.groups for arg in ("--group", group)]
    export = [
        uv,
        "export",
        "--no-hashes",
        "--no-emit-project",
        "--no-default-groups",
        *groups,
        "-o",
        "pins.txt",
    ]
    (copy / "requirements.in").write_text("\n".join(project.direct_requirements()) + "\n")
    compiles = []
    for env in project.envs():
        target = [
            "--python-platform",
            env.platform.uv_python_platform,
            "--python-version",
            env.python,
        ]
        base = [uv, "pip", "compile", "requirements.in", "-c", "pins.txt", *target]
        compiles.append([*base, "--format", "pylock.toml", "-o", f"pylock.{env.name}.toml"])
        compiles.append([*base, "--generate-hashes", "-o", f"{env.name}.txt"])
    tail = [compiles] if parallel else [[c] for c in compiles]
    return [[[uv, "lock"]], [export], *tail]


def bench_lock(project: Project, warm_runs: int) -> dict[str, float]:
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="archlock-bench-") as tmp:
        root = Path(tmp)
        warm_cache = root / "warm-cache"
        sides: dict[str, Callable[[Path], list[Stage]]] = {
            "archlock": archlock_commands,
            "uv": lambda c: raw_uv_commands(project, c, parallel=False),
            "uv_parallel": lambda c: raw_uv_commands(project, c, parallel=True),
        }
        for label, make in sides.items():
            cold_dir = Path(tempfile.mkdtemp(dir=root))
            copy = fresh_copy(project, cold_dir)
            results[f"{label}_cold"] = timed(make(copy), copy, cold_dir / "cache")
            samples = []
            for _ in range(warm_runs + 1):  # the first warm run fills the shared cache
                run_dir = Path(tempfile.mkdtemp(dir=root))
                copy = fresh_copy(project, run_dir)
                samples.append(timed(make(copy), copy, warm_cache))
            results[f"{label}_warm"] = statistics.median(samples[1:])
    return results


def print_lock_ratios(results: dict[str, float]) -> None:
    for mode in ("cold", "warm"):
        ours, raw, par = (results[f"{side}_{mode}"] for side in ("archlock", "uv", "uv_parallel"))
        print(
            f"lock {mode:<4}: archlock {ours:6.2f}s"
            f" | raw uv in sequence {raw:6.2f}s, ratio {ours / raw:.2f}"
            f" | raw uv, env compiles at once {par:6.2f}s, ratio {ours / par:.2f}"
        )
    print("goal: warm ratio <= 1.15")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("bench", help="print archlock's time as ratios against the raw tools")
    parser.add_argument("--runs", type=int, default=3, help="runs per side (median is reported)")
    parser.add_argument(
        "--part",
        choices=("all", "lock", "build", "arch", "image"),
        default="all",
        help="which benchmarks to run (arch: arm64 / amd64 image build time; image: the same "
        "image from a rebuild, the bytes a dependency bump moves, peak disk)",
    )
    parser.add_argument(
        "--ca-bundle", type=Path, help="build: the proxy CA bundle for image builds"
    )
    parser.add_argument("--network", help="build: docker build --network (e.g. host)")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        dest="sets",
        metavar="TARGET.KEY=VALUE",
        help="build: override, e.g. '*.args.BASE_IMAGE=local/base' (repeatable)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    project = Project.load(args.project)
    if args.part in ("all", "lock"):
        print_lock_ratios(bench_lock(project, args.runs))
    # the build parts need docker: imported only when asked
    if args.part in ("all", "build", "arch"):
        from archlock.build.bench_build import run_build_bench

        parts = ("build", "arch") if args.part == "all" else (args.part,)
        run_build_bench(
            project.root, args.ca_bundle, args.network, tuple(args.sets), parts, args.runs
        )
    if args.part in ("all", "image"):
        from archlock.build.bench_image import run_image_bench

        run_image_bench(project.root, args.ca_bundle, args.network, tuple(args.sets))
    return 0
