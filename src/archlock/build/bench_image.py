"""The image part of `nox -s bench` (`archlock bench --part image`): same lock, same image; what a
dependency bump moves; the disk a cold build takes.

On a copy of the project, for the env native to this host:
  1. cold build (--no-cache) with the package cache mounts warm, sampling the engine's disk every
     half second: peak growth / image (what a machine that built the env before needs);
  2. cold build again with the package cache mounts emptied first (every wheel downloaded
     again): its peak growth / image (what a fresh CI runner needs), and is the image ID (the
     config's sha256, naming every layer) the same;
  3. one small package bumped in the lock (`archlock lock` with a constraint that excludes its
     locked version), rendered and rebuilt: the bytes of the layers the first image lacks (what a
     registry that holds the first image receives) / the image's bytes (goal <= 0.05), and the
     largest layer (goal < 4 GB).
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import threading
import time
import tomllib
from pathlib import Path
from typing import Any

from archlock.build import build, reproducible
from archlock.build.bench_build import (
    bench_options,
    build_tagged,
    copy_project,
    image_targets,
    native_target,
    prune_cache_mounts,
)
from archlock.core import docker as du
from archlock.core import lockfile, proc
from archlock.core.project import Project
from archlock.errors import ExternalCommandError

TAG = "archlock-bench:image-{}"
BUMP_CANDIDATES = ("filelock", "typing-extensions", "fsspec", "mpmath", "jinja2")
LAYER_LIMIT = 4_000_000_000
LOCK_LIMIT = 1200.0


class DiskPeak:
    """The most the engine's disk grew above its level when sampling began."""

    def __init__(self, path: str, every: float = 0.5) -> None:
        self.path, self.every = path, every
        self.start = self.peak = shutil.disk_usage(path).used
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(self.every):
            self.peak = max(self.peak, shutil.disk_usage(self.path).used)

    def __enter__(self) -> DiskPeak:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def growth(self) -> int:
        return self.peak - self.start


def _build(copy: Path, env: str, base: build.BuildOptions, label: str, cold: bool) -> str:
    return build_tagged(copy, env, base, TAG.format(label), cold).images[0].image_id


def bump(copy: Path, env: str) -> str:
    """Exclude the locked version of one small package and lock again; returns 'name a -> b'."""
    pins = _pins(copy / "envs" / "locks" / f"{env}.txt")
    name = next((n for n in BUMP_CANDIDATES if n in pins), None)
    if name is None:
        raise ExternalCommandError(
            f"bench: no package of {BUMP_CANDIDATES} in {env}'s lock to bump",
            fix="bench a project whose lock has one of them",
        )
    pyproject = copy / "pyproject.toml"
    text = pyproject.read_text(encoding="utf-8")
    pyproject.write_text(excluding(text, name, pins[name]), encoding="utf-8")
    for verb in ("lock", "render"):
        done = proc.run(
            [sys.executable, "-m", "archlock", "--project", str(copy), verb], timeout=LOCK_LIMIT
        )
        if not done.ok:
            raise ExternalCommandError(
                f"bench: archlock {verb} after the bump failed: {done.why()}"
            )
    after = _pins(copy / "envs" / "locks" / f"{env}.txt")
    return f"{name} {pins[name]} -> {after.get(name, 'gone')}"


def excluding(pyproject: str, name: str, version: str) -> str:
    """pyproject.toml's text with a uv constraint that excludes `name`'s `version`."""
    if "constraint-dependencies" in tomllib.loads(pyproject).get("tool", {}).get("uv", {}):
        raise ExternalCommandError(
            "bench: pyproject.toml [tool.uv] constraint-dependencies is set already",
            fix="bench a copy without it",
        )
    line = f'constraint-dependencies = ["{name}!={version}"]\n'
    if "[tool.uv]\n" in pyproject:
        return pyproject.replace("[tool.uv]\n", f"[tool.uv]\n{line}", 1)
    return f"{pyproject.rstrip()}\n\n[tool.uv]\n{line}"


def _pins(lock: Path) -> dict[str, str]:
    return lockfile.pins(lock.read_text(encoding="utf-8"))


def layers(tag: str) -> list[tuple[str, int]]:
    """(diff ID, bytes) of each layer of `tag`, bottom first."""
    saved = reproducible.read_saved(tag, 3600.0)
    return list(zip(saved.config["rootfs"]["diff_ids"], saved.layer_bytes, strict=True))


def bench_image(project_root: Path, base: build.BuildOptions) -> dict[str, Any]:
    _, targets = image_targets(Project.load(project_root))
    env = native_target(targets).env
    root = du.output(["info", "--format", "{{.DockerRootDir}}"]).strip() or "/"
    results: dict[str, Any] = {"env": env}
    with tempfile.TemporaryDirectory(prefix="archlock-bench-image-") as tmp:
        copy = Path(tmp) / "project"
        copy_project(project_root, copy)
        started = time.monotonic()
        with DiskPeak(root) as peak:
            results["first"] = _build(copy, env, base, "first", cold=True)
        results["cold_seconds"] = time.monotonic() - started
        results["peak_growth"] = peak.growth
        prune_cache_mounts()
        started = time.monotonic()
        with DiskPeak(root) as peak:
            results["second"] = _build(copy, env, base, "second", cold=True)
        results["empty_cache_cold_seconds"] = time.monotonic() - started
        results["empty_cache_peak_growth"] = peak.growth
        results["bumped"] = bump(copy, env)
        results["third"] = _build(copy, env, base, "bumped", cold=False)
    before, after = layers(TAG.format("first")), layers(TAG.format("bumped"))
    known = {digest for digest, _ in before}
    results["image_bytes"] = sum(size for _, size in after)
    results["new_bytes"] = sum(size for digest, size in after if digest not in known)
    results["largest_layer"] = max(size for _, size in after)
    results["layer_count"] = len(after)
    du.remove_images(*(TAG.format(label) for label in ("first", "second", "bumped")))
    return results


def print_image_ratios(r: dict[str, Any]) -> None:
    gb = 1e9
    same = "yes" if r["first"] == r["second"] else "NO"
    print(f"image: env {r['env']}, native")
    print(
        f"image rebuild cold, package cache emptied, same image ID: {same}"
        f" ({r['first']} / {r['second']})"
    )
    image, new = r["image_bytes"], r["new_bytes"]
    print(f"image bump {r['bumped']}: rebuilt, layers the first image lacks:")
    print(
        f"image bump new layer bytes / image: {new / gb:.3f} GB / {image / gb:.2f} GB"
        f" = {new / image:.3f} (goal <= 0.05)"
    )
    print(
        f"image largest of {r['layer_count']} layers: {r['largest_layer'] / gb:.2f} GB"
        f" (goal < {LAYER_LIMIT / gb:.0f} GB)"
    )
    for label, key in (("package cache warm", ""), ("package cache empty", "empty_cache_")):
        growth = r[f"{key}peak_growth"]
        print(
            f"image cold build, {label}, peak disk growth / image: {growth / gb:.2f} GB"
            f" / {image / gb:.2f} GB = {growth / image:.2f} (goal <= 1.6),"
            f" {r[f'{key}cold_seconds']:.0f} s"
        )


def run_image_bench(
    project_root: Path, ca_bundle: Path | None, network: str | None, sets: tuple[str, ...]
) -> None:
    """What `archlock bench --part image` calls (`sets`: overrides such as a local base)."""
    print_image_ratios(
        bench_image(project_root, bench_options(project_root, ca_bundle, network, sets))
    )
