"""`archlock clean`: give back the disk that builds take, and only what archlock made.

Four parts, each planned (what would go, how many bytes) before anything is removed:
- images: archlock's own, found by the labels every rendered Dockerfile sets
  (`io.archlock.env`; this project's by `org.opencontainers.image.title` = "IMAGE ENV",
  every project's with `--all-projects`); base images and anything else are never selected;
- dangling: untagged layers no image refers to (`image prune`);
- cache: BuildKit's build cache beyond the cap (`builder prune --keep-storage CAP`; the cap
  is `--keep-storage`, else $ARCHLOCK_BUILD_CACHE_CAP, else 20 GB, the same default
  `scripts/local-infra.sh` gives the engine's own garbage collection);
- registry: the local registry's blobs no manifest refers to (`docker-registry
  garbage-collect`, found through $ARCHLOCK_REGISTRY_CONFIG or local-infra's state folder).
`--dry-run` prints the plan and removes nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from archlock.core import docker as du
from archlock.core import proc
from archlock.core.text import human_bytes
from archlock.core.yamlsrc import load_located
from archlock.errors import ConfigError, ExternalCommandError

PARTS = ("images", "dangling", "cache", "registry")
ENV_LABEL = "io.archlock.env"
TITLE_LABEL = "org.opencontainers.image.title"
CAP_ENV = "ARCHLOCK_BUILD_CACHE_CAP"
DEFAULT_CAP = "20GB"
REGISTRY_CONFIG_ENV = "ARCHLOCK_REGISTRY_CONFIG"
LONG = 900.0  # seconds for a prune or a registry garbage collection
_UNITS = {"": 1, "b": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12}
_SIZE_RE = re.compile(r"([0-9]+(?:\.[0-9]+)?)\s*([kmgt]?)i?b?", re.IGNORECASE)


@dataclass(frozen=True)
class Item:
    part: str  # one of PARTS
    what: str  # an image reference, "build cache", a blob digest
    size: int  # bytes it frees (at most: images can share layers)


@dataclass
class Plan:
    items: list[Item] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # parts skipped, and why

    def total(self, part: str | None = None) -> int:
        return sum(i.size for i in self.items if part is None or i.part == part)


# -- planning: engine answers in, items out (no process here) ----------------------------------
def parse_size(text: str) -> int:
    """Bytes of a size as docker prints and takes it ("447.4MB", "20GB", "1.5 kB", "512")."""
    match = _SIZE_RE.fullmatch(text.strip())
    if not match:
        raise ConfigError(f"{text!r} is not a size", fix="write it like 20GB or 500MB")
    return int(float(match.group(1)) * _UNITS[match.group(2).lower()])


def select_images(inspected: Iterable[dict[str, Any]], titles: set[str] | None) -> list[Item]:
    """archlock's images among `image inspect` answers: labelled `io.archlock.env`, and when
    `titles` is given, titled like one of this project's env images."""
    items = []
    for image in inspected:
        labels = (image.get("Config") or {}).get("Labels") or {}
        if ENV_LABEL not in labels:
            continue
        if titles is not None and labels.get(TITLE_LABEL) not in titles:
            continue
        refs = image.get("RepoTags") or [str(image.get("Id", ""))]
        size = int(image.get("Size") or 0)
        items.append(Item("images", " ".join(sorted(refs)), size))
    return sorted(items, key=lambda i: i.what)


def dangling_items(inspected: Iterable[dict[str, Any]]) -> list[Item]:
    return [Item("dangling", str(i.get("Id", "")), int(i.get("Size") or 0)) for i in inspected]


def cache_excess(df_rows: Iterable[dict[str, Any]], cap: int) -> list[Item]:
    """The build cache above `cap` that nothing uses (`system df --format '{{json .}}'`)."""
    for row in df_rows:
        if row.get("Type") == "Build Cache":
            size = parse_size(str(row.get("Size") or "0B"))
            reclaimable = parse_size(str(row.get("Reclaimable") or "0B").split(" ")[0])
            excess = min(reclaimable, max(0, size - cap))
            label = f"build cache beyond {human_bytes(cap)} (of {human_bytes(size)})"
            return [Item("cache", label, excess)] if excess else []
    return []


def registry_blobs(gc_output: str, root: Path) -> list[Item]:
    """Blobs `garbage-collect --dry-run` calls eligible, sized from the registry's storage."""
    items = []
    for digest in re.findall(
        r"^blob eligible for deletion: (sha256:[0-9a-f]{64})", gc_output, re.M
    ):
        hexdigest = digest.split(":", 1)[1]
        data = root / "docker/registry/v2/blobs/sha256" / hexdigest[:2] / hexdigest / "data"
        items.append(Item("registry", digest, data.stat().st_size if data.is_file() else 0))
    return items


def render_plan(plan: Plan, dry_run: bool) -> list[str]:
    verb = "would remove" if dry_run else "removing"
    lines = [
        f"{part}: {verb} {item.what} ({human_bytes(item.size)})"
        for part in PARTS
        for item in plan.items
        if item.part == part
    ]
    lines += [f"note: {note}" for note in plan.notes]
    total = human_bytes(plan.total())
    shared = plan.total("images") + plan.total("dangling")
    images = " (images can share layers: at most)" if shared else ""
    lines.append(f"{'would free' if dry_run else 'planned'}: {total}{images}")
    return lines


# -- gathering: what the engine and the registry hold --------------------------------------------
def _inspect(ids: Sequence[str]) -> list[dict[str, Any]]:
    unique = sorted(set(ids))
    if not unique:
        return []
    found: list[dict[str, Any]] = json.loads(du.output(["image", "inspect", *unique]) or "[]")
    return found


def _image_ids(*filters: str) -> list[str]:
    args = ["image", "ls", "-q", "--no-trunc"]
    for item in filters:
        args += ["--filter", item]
    return du.output(args).split()


def project_titles(project_root: Path) -> set[str]:
    """The title label of each of this project's env images ("IMAGE ENV")."""
    from archlock.build import render
    from archlock.core.project import Project

    project = Project.load(project_root)
    image = render.load_settings(project).image_name
    return {f"{image} {env.name}" for env in project.all_envs()}


def registry_config(explicit: Path | None) -> Path | None:
    """The local registry's config: --registry-config, $ARCHLOCK_REGISTRY_CONFIG, else the
    one scripts/local-infra.sh writes into its state folder (None when there is none)."""
    chosen = explicit or (Path(v) if (v := os.environ.get(REGISTRY_CONFIG_ENV)) else None)
    if chosen is not None:
        if not chosen.is_file():
            raise ConfigError(
                f"{chosen}: no registry config there",
                fix=f"name the registry's config (--registry-config or ${REGISTRY_CONFIG_ENV})",
            )
        return chosen
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    state = os.environ.get("ARCHLOCK_INFRA_DIR") or f"{cache}/archlock/infra"
    default = Path(state) / "registry.yml"
    return default if default.is_file() else None


def registry_root(config: Path) -> Path:
    data = load_located(config).data
    storage = data.get("storage") if isinstance(data, dict) else None
    folder = (storage or {}).get("filesystem", {}) if isinstance(storage, dict) else {}
    root = folder.get("rootdirectory") if isinstance(folder, dict) else None
    if not isinstance(root, str) or not root:
        raise ConfigError(
            f"{config}: storage.filesystem.rootdirectory: missing",
            fix="garbage collection here needs a filesystem registry; name its config",
        )
    return Path(root)


def _registry_gc(config: Path, dry_run: bool) -> str:
    # --delete-untagged: a re-pushed tag leaves its old manifest untagged, and without the flag
    # that manifest keeps every old layer forever (the registry grew by an image per CI run).
    # The flag also deletes untagged per-platform manifests that a manifest list refers to
    # (distribution/distribution#3004); every list archlock (`build --push`: TAG-ENV) and
    # local-infra (per-arch tags) push has tagged members, so this registry has none of those.
    # The registry keeps serving during the collection: run clean when nothing pushes (CI runs
    # it first, before any build).
    flags = ["--delete-untagged", *(["--dry-run"] if dry_run else [])]
    argv = ["docker-registry", "garbage-collect", *flags, str(config)]
    done = proc.run(argv, timeout=LONG, missing_fix="install Debian's docker-registry")
    if not done.ok:
        raise ExternalCommandError(
            f"docker-registry garbage-collect {config} failed: {done.why()}",
            fix="check the registry's config and storage folder",
        )
    return done.stdout


@dataclass(frozen=True, kw_only=True)
class Options:
    project: Path
    parts: tuple[str, ...] = PARTS
    dry_run: bool = False
    all_projects: bool = False
    cap: int = 20 * 10**9
    registry_config: Path | None = None


def plan_clean(options: Options) -> Plan:
    plan = Plan()
    if "images" in options.parts:
        titles = None if options.all_projects else project_titles(options.project)
        plan.items += select_images(_inspect(_image_ids(f"label={ENV_LABEL}")), titles)
    if "dangling" in options.parts:
        listed = {i.what for i in plan.items}  # an untagged image of ours is listed once
        dangling = dangling_items(_inspect(_image_ids("dangling=true")))
        plan.items += [i for i in dangling if i.what not in listed]
    if "cache" in options.parts:
        if du.engine().kind == "podman":
            plan.notes.append("cache: podman keeps no BuildKit cache: skipped")
        else:
            rows = du.output(["system", "df", "--format", "{{json .}}"]).splitlines()
            plan.items += cache_excess((json.loads(r) for r in rows if r.strip()), options.cap)
    if "registry" in options.parts:
        _plan_registry(plan, options)
    return plan


def _plan_registry(plan: Plan, options: Options) -> None:
    config = registry_config(options.registry_config)
    if config is None:
        plan.notes.append(
            f"registry: no local registry config (set ${REGISTRY_CONFIG_ENV}): skipped"
        )
    elif proc.which("docker-registry") is None:
        plan.notes.append("registry: docker-registry is not installed: skipped")
    else:
        plan.items += registry_blobs(_registry_gc(config, dry_run=True), registry_root(config))


# -- removing ------------------------------------------------------------------------------------
def execute(plan: Plan, options: Options) -> list[str]:
    """Remove what the plan lists; the lines say what each step did."""
    said = []
    images = [i for i in plan.items if i.part == "images"]
    for item in images:
        done = du.run(["image", "rm", *item.what.split()], timeout=LONG)
        said.append(
            f"images: removed {item.what}" if done.ok else f"images: kept {item.what}: {done.why()}"
        )
    if any(i.part == "dangling" for i in plan.items):
        du.output(["image", "prune", "-f"], timeout=LONG)
        said.append("dangling: pruned")
    if any(i.part == "cache" for i in plan.items):
        cap = str(options.cap)
        du.output(["builder", "prune", "-f", "--keep-storage", cap], timeout=LONG)
        said.append(f"cache: pruned down to {human_bytes(options.cap)}")
    if any(i.part == "registry" for i in plan.items):
        config = registry_config(options.registry_config)
        if config is not None:
            _registry_gc(config, dry_run=False)
            said.append(f"registry: garbage-collected {config}")
    return said


def free_bytes(folders: Iterable[Path]) -> int:
    """Free bytes summed over the distinct filesystems holding `folders` (those that exist)."""
    seen: dict[int, int] = {}
    for folder in folders:
        if folder.is_dir():
            seen.setdefault(folder.stat().st_dev, shutil.disk_usage(folder).free)
    return sum(seen.values())


# -- the verb ------------------------------------------------------------------------------------
def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "clean",
        help="remove archlock's images, dangling layers, build cache beyond the cap and "
        "unreferenced registry blobs",
    )
    parser.add_argument("--dry-run", action="store_true", help="list what would go; remove nothing")
    parser.add_argument(
        "--only",
        action="append",
        choices=PARTS,
        help="only this part (repeatable; default: all four)",
    )
    parser.add_argument(
        "--all-projects",
        action="store_true",
        help="every archlock-built image, not only this project's",
    )
    parser.add_argument(
        "--keep-storage",
        metavar="SIZE",
        help=f"build cache to keep, e.g. 20GB (default: ${CAP_ENV}, else {DEFAULT_CAP})",
    )
    parser.add_argument(
        "--registry-config",
        type=Path,
        help=f"the local registry's config (default: ${REGISTRY_CONFIG_ENV}, else "
        "scripts/local-infra.sh's)",
    )
    parser.set_defaults(func=run)


def _cap(flag: str | None) -> int:
    if flag is not None:
        return _size_of(flag, "--keep-storage")
    return _size_of(os.environ.get(CAP_ENV) or DEFAULT_CAP, f"${CAP_ENV}")


def _size_of(text: str, where: str) -> int:
    try:
        return parse_size(text)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc.message}", fix=exc.fix) from None


def run(args: argparse.Namespace) -> int:
    options = Options(
        project=args.project,
        parts=tuple(p for p in PARTS if p in (args.only or PARTS)),
        dry_run=args.dry_run,
        all_projects=args.all_projects,
        cap=_cap(args.keep_storage),
        registry_config=args.registry_config,
    )
    if not du.engine_running() and set(options.parts) - {"registry"}:
        raise ExternalCommandError(
            "the container engine is not running", fix="start dockerd, or clean --only registry"
        )
    plan = plan_clean(options)
    for line in render_plan(plan, options.dry_run):
        print(f"archlock clean: {line}")
    if options.dry_run:
        return 0
    folders = _measured_folders(options)
    before = free_bytes(folders)
    for line in execute(plan, options):
        print(f"archlock clean: {line}")
    print(f"archlock clean: freed {human_bytes(max(0, free_bytes(folders) - before))} on disk")
    return 0


def _measured_folders(options: Options) -> list[Path]:
    from archlock.build.disk import engine_free_space

    found = engine_free_space() if set(options.parts) - {"registry"} else None
    folders = [Path(found[0])] if found else []
    config = registry_config(options.registry_config) if "registry" in options.parts else None
    return folders + ([registry_root(config)] if config else [])
