"""`archlock render`: env specs + locks -> Dockerfiles, a bake file and a CI workflow.

Rendering is its own step (build reads what it writes): `templates/` holds Jinja2 files, one
Environment with StrictUndefined renders them, and every output carries the generated-file header.
`--check` renders in memory and raises DriftError naming each stale file.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2

from archlock.build import cigraph, context, diskbudget
from archlock.build import layers as layer_plan
from archlock.core import commit, sdist, settings, tomlsrc
from archlock.core import docker as du
from archlock.core.fsutil import current_text, is_generated, with_header
from archlock.core.platforms import PLATFORMS, Platform
from archlock.core.project import Project
from archlock.core.rules.wheels import filename, platform_tags
from archlock.core.spec import EnvSpec
from archlock.errors import CheckFailed, ConfigError, DriftError

COMMAND = "nox -s render  (or: archlock render)"
DOCKER_DIR = "docker"
BAKE_FILE = f"{DOCKER_DIR}/docker-bake.hcl"
NODES_SCRIPT = f"{DOCKER_DIR}/buildx-nodes.sh"
WORKFLOW_NAME = "archlock-images.yml"
TEMPLATES = (
    "Dockerfile.j2",
    "dockerignore.j2",
    "docker-bake.hcl.j2",
    "workflow.yml.j2",
    "buildx-nodes.sh.j2",
)
DEFAULT_UV_IMAGE = (
    "ghcr.io/astral-sh/uv:0.13.9"  # upstream's image: /uv and /uvx; the uv pyproject pins
)
# GitHub-hosted runner per image platform (native builds; QEMU only as the opt-in fallback)
DEFAULT_RUNNERS = {"linux/amd64": "ubuntu-24.04", "linux/arm64": "ubuntu-24.04-arm"}


PACKAGE_NAME_RE = re.compile(r"[a-z0-9](?:[a-z0-9._-]{0,198}[a-z0-9])?")


@dataclass(frozen=True, kw_only=True)
class ImageTarget:
    """What one env's image needs, every field validated for the formats it reaches."""

    env: str
    platforms: tuple[str, ...]
    python: str
    accelerator: str
    base_image: str
    lock_path: str  # posix, relative to the project root (the build context)
    lock_sha256: str
    install_project: bool
    runner: str
    opt_in: bool = False
    extra_index_url: str | None = None
    toolchain: bool = False  # image.toolchain: a C/C++ compiler for torch.compile
    wheel_bytes: int = 0  # bytes of wheels the lock installs (the CI disk budget reads it)
    # True: the venv's installs run the build platform's uv, which installs the target's wheels
    # and its Python compiles their bytecode (only the shell steps that make the venv and copy
    # and date its files run on the target platform); False: the target platform's uv, its
    # builds and its bytecode compiler, emulated where that differs.
    deps_on_build_platform: bool = True
    emulated_because: str = ""  # why not, for the Dockerfile's comment and render's note
    # pure-Python sdists (core/sdist.py) the build platform's uv builds into wheels (with the
    # image's interpreter): uv's --no-build must spare them
    sdists_built_here: tuple[str, ...] = ()
    # the venv's layers, bottom first (archlock.build.layers); the last is always "rest"
    layers: tuple[layer_plan.Layer, ...] = (layer_plan.Layer(layer_plan.REST, (), 0),)

    @property
    def uv_python_platform(self) -> str:
        """uv's --python-platform for the image's (single) docker platform."""
        return uv_platform_of(self.platforms[0])

    def __post_init__(self) -> None:
        where = f"env {self.env!r}"
        du.check(self.env, du.ENV_NAME_RE, "env name", "lowercase letters, digits and dashes")
        for platform in self.platforms:
            du.check(
                platform,
                du.DOCKER_PLATFORM_RE,
                f"{where} platform",
                "a linux/<arch> docker platform",
            )
        du.check(self.python, du.PYTHON_RE, f"{where} python", 'a version like "3.11"')
        du.check(self.accelerator, du.ENV_NAME_RE, f"{where} accelerator", "cuda or cpu")
        du.check(
            self.base_image,
            du.IMAGE_REF_RE,
            f"{where} image.base",
            "an image reference like debian:bookworm-slim",
        )
        du.check(self.lock_path, du.REL_PATH_RE, f"{where} lock path", "a path inside the project")
        du.check(self.lock_sha256, du.SHA256_RE, f"{where} lock hash", "64 hex digits")
        du.check(
            self.runner, du.RUNNER_RE, f"{where} runner", "a runner label like ubuntu-24.04-arm"
        )
        if self.extra_index_url is not None:
            du.check(
                self.extra_index_url,
                du.URL_RE,
                f"{where} torch index",
                "an http(s) URL without quotes or spaces",
            )
        for name in self.sdists_built_here:
            du.check(name, PACKAGE_NAME_RE, f"{where} sdist name", "a normalised package name")
        if self.deps_on_build_platform and len(self.platforms) != 1:
            raise ConfigError(
                f"{where}: installing with the build platform's uv needs exactly one platform",
                fix="one platform per env",
            )


@dataclass(frozen=True, kw_only=True)
class RenderSettings:
    image_name: str
    uv_image: str = DEFAULT_UV_IMAGE
    registry: str = ""
    workflow_dir: str = ".github/workflows"
    runners: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_RUNNERS))
    builder_nodes: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        where = "pyproject.toml [tool.archlock.render]"
        du.check(
            self.image_name,
            du.IMAGE_NAME_RE,
            f"{where} image",
            "lowercase path like myproject or team/app",
        )
        du.check(self.uv_image, du.IMAGE_REF_RE, f"{where} uv-image", "an image reference")
        du.check(
            self.registry,
            du.REGISTRY_PREFIX_RE,
            f"{where} registry",
            'a prefix ending in "/", e.g. ghcr.io/team/',
        )
        du.check(
            self.workflow_dir,
            du.REL_PATH_RE,
            f"{where} workflow-dir",
            "a folder inside the project",
        )
        for platform, runner in self.runners.items():
            du.check(
                platform, du.DOCKER_PLATFORM_RE, f"{where} runners", "keys are docker platforms"
            )
            du.check(runner, du.RUNNER_RE, f"{where} runners.{platform}", "a runner label")
        for platform, endpoint in self.builder_nodes.items():
            du.check(
                platform,
                du.DOCKER_PLATFORM_RE,
                f"{where} builder-nodes",
                "keys are docker platforms",
            )
            du.check(
                endpoint,
                du.BUILDER_ENDPOINT_RE,
                f"{where} builder-nodes.{platform}",
                "ssh://host, tcp://host:port or a context",
            )


# -- inputs -------------------------------------------------------------------------------------
def load_settings(project: Project, workflow_dir: str | None = None) -> RenderSettings:
    raw = settings.given(project.settings.render, workflow_dir=workflow_dir)
    return RenderSettings(
        image_name=raw.image or default_image_name(project.name),
        uv_image=raw.uv_image or DEFAULT_UV_IMAGE,
        registry=raw.registry,
        workflow_dir=raw.workflow_dir,
        runners={**DEFAULT_RUNNERS, **raw.runners},
        builder_nodes=dict(raw.builder_nodes),
    )


def default_image_name(project_name: str) -> str:
    """The image name when [tool.archlock.render] image is unset (init writes it down for a
    requirements-only project, whose name is its folder's)."""
    return re.sub(r"[^a-z0-9]+", "-", project_name.lower()).strip("-") or "project"


def image_targets(
    project: Project, settings: RenderSettings
) -> tuple[list[ImageTarget], list[str]]:
    """One target per Linux env with a lock; notes for the envs left out and why."""
    targets: list[ImageTarget] = []
    notes: list[str] = []
    for spec in project.all_envs():
        platform = spec.platform.docker_platform
        if platform is None:
            continue
        lock = project.env_lock(spec.name)
        if not lock.is_file():
            if spec.opt_in:
                notes.append(
                    f"{spec.name}: opt-in env without a lock, no image "
                    f"(run archlock lock --env {spec.name})"
                )
                continue
            raise ConfigError(
                f"{lock}: lock missing for env {spec.name}", fix="run archlock lock (nox -s lock)"
            )
        target = _target(project, settings, spec, platform, lock)
        if target.emulated_because:
            notes.append(
                f"{spec.name}: the venv installs with {platform}'s uv (emulated elsewhere): "
                f"{target.emulated_because}"
            )
        targets.append(target)
    return targets, notes


def _target(
    project: Project, settings: RenderSettings, spec: EnvSpec, platform: str, lock: Path
) -> ImageTarget:
    if spec.image_ref is None:
        raise ConfigError(
            f"{spec.path}: image.base: a Linux env needs a base image", fix="set image.base"
        )
    runner = settings.runners.get(platform)
    if runner is None:
        raise ConfigError(
            f"[tool.archlock.render] runners: no runner for {platform}",
            fix=f'add "{platform}" = "LABEL"',
        )
    pylock = project.env_pylock(spec.name)
    missing = targets_without_wheels(pylock, spec.platform)
    return ImageTarget(
        layers=layer_plan.pinned(
            layer_plan.plan(_wheel_sizes(pylock, spec.platform)), lock.read_text(encoding="utf-8")
        ),
        deps_on_build_platform=not missing,
        emulated_because=missing,
        sdists_built_here=() if missing else pure_sdists(pylock),
        env=spec.name,
        platforms=(platform,),
        python=spec.python,
        accelerator=spec.accelerator,
        base_image=spec.image_ref,
        lock_path=lock.relative_to(project.root).as_posix(),
        lock_sha256=hashlib.sha256(lock.read_bytes()).hexdigest(),
        install_project=_is_package(project),
        runner=runner,
        opt_in=spec.opt_in,
        extra_index_url=_image_index_url(project, spec),
        toolchain=spec.image_toolchain,
        wheel_bytes=diskbudget.wheel_bytes(project.env_pylock(spec.name)),
    )


def uv_platform_of(docker_platform: str) -> str:
    for row in PLATFORMS.values():
        if row.docker_platform == docker_platform:
            return row.uv_python_platform
    raise ConfigError(
        f"no platform row for {docker_platform}", fix="use a platform of archlock.core.platforms"
    )


def targets_without_wheels(pylock: Path, platform: Platform) -> str:
    """Why the env's dependencies cannot be installed from the build platform ("" if they can):
    every locked package needs a wheel for the target (an sdist that compiles would build for the
    wrong CPU), or must be a pure-Python sdist, whose wheel is the same on every CPU."""
    if not pylock.is_file():
        return (
            f"{pylock.name} is missing, so which packages have {platform.docker_platform} wheels"
            " is unknown"
        )
    lacking = [
        str(p.get("name"))
        for p in _packages(pylock)
        if not any(_wheel_fits(w, platform) for w in _wheels(p, pylock))
        and sdist.recorded(p) != sdist.PURE
    ]
    if not lacking:
        return ""
    return f"no {platform.docker_platform} wheel for {', '.join(sorted(lacking))}"


def pure_sdists(pylock: Path) -> tuple[str, ...]:
    """The env's packages without a wheel that the lock found to be pure Python."""
    if not pylock.is_file():
        return ()
    return tuple(
        sorted(
            str(p.get("name"))
            for p in _packages(pylock)
            if not p.get("wheels") and sdist.recorded(p) == sdist.PURE
        )
    )


PYLOCK_FIX = "regenerate it: run `archlock lock --force`"


def _wheel_sizes(pylock: Path, platform: Platform) -> dict[str, int]:
    """The layer plan's input: each package's largest wheel for `platform` ({} without a pylock)."""
    if not pylock.is_file():
        return {}
    pairs = [(str(p.get("name", "")), _wheels(p, pylock)) for p in _packages(pylock)]
    return layer_plan.wheel_sizes(pairs, lambda wheel: _wheel_fits(wheel, platform))


def _packages(pylock: Path) -> list[dict[str, Any]]:
    """The pylock's packages; a malformed file is one line naming it (core/tomlsrc.py)."""
    data = tomlsrc.load_toml(pylock, what="pylock file", fix=PYLOCK_FIX)
    return tomlsrc.array_of_tables(data, "packages", pylock, PYLOCK_FIX)


def _wheels(package: dict[str, Any], pylock: Path) -> list[dict[str, Any]]:
    return tomlsrc.array_of_tables(package, "wheels", pylock, PYLOCK_FIX)


def _wheel_fits(wheel: dict[str, Any], platform: Platform) -> bool:
    """A wheel installs on the target if one of its platform tags is `any` or a Linux tag of the
    target's machine."""
    machine = "_" + platform.machine
    return any(
        tag == "any" or ("linux" in tag and tag.endswith(machine))
        for tag in platform_tags(filename(wheel))
    )


def _is_package(project: Project) -> bool:
    pyproject = project.pyproject or {}
    return "project" in pyproject and "build-system" in pyproject


def _image_index_url(project: Project, spec: EnvSpec) -> str | None:
    """The index an image installs torch from: the configured URL, never a local mirror folder."""
    if spec.torch_index is None:
        return None
    index = project.index(spec.torch_index, spec)
    url: str = index.canonical or index.url
    if index.is_flat_folder and not index.canonical:
        raise ConfigError(
            f"{spec.path}: torch.index {spec.torch_index!r} points at a local folder, "
            "which an image build cannot read",
            fix=f'add {spec.torch_index} = "URL" under [tool.archlock.indexes]',
        )
    return url


def multiarch(targets: list[ImageTarget]) -> list[ImageTarget]:
    """The manifest list's entries: per platform, the first env that is not opt-in."""
    chosen: dict[str, ImageTarget] = {}
    for target in sorted(targets, key=lambda t: t.opt_in):
        for platform in target.platforms:
            chosen.setdefault(platform, target)
    return list(dict.fromkeys(chosen.values()))


# -- templates ----------------------------------------------------------------------------------
def template_dirs(project_root: Path | None) -> list[Path]:
    """The project's own templates/ (if it overrides any), then archlock's."""
    package = (
        Path(__file__).resolve().parents[1]
    )  # src/archlock (installed: site-packages/archlock)
    candidates = [package / "templates", package.parents[1] / "templates"]
    if project_root is not None:
        candidates.insert(0, project_root / "templates")
    return [d for d in dict.fromkeys(candidates) if (d / "Dockerfile.j2").is_file()]


def environment(project_root: Path | None = None) -> jinja2.Environment:
    """The one Jinja environment: every archlock template (Dockerfiles, bake file, workflow,
    repro's and bench's Dockerfiles, the matrix page) renders through it."""
    dirs = template_dirs(project_root)
    if not dirs:
        raise ConfigError("archlock's templates/ folder was not found", fix="reinstall archlock")
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader([str(d) for d in dirs]),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",), default=False),
    )
    env.filters.update(du.FILTERS)
    env.globals["gh"] = du.gh
    return env


def render_files(
    project_root: Path,
    settings: RenderSettings,
    targets: list[ImageTarget],
    ci: dict[str, Any] | None = None,
) -> dict[Path, str]:
    """Every output path (absolute) -> its full text, header included; `ci`: the workflow's verify
    jobs (archlock.build.cigraph.workflow_context; default: the targets on hosted runners)."""
    if not targets:
        raise ConfigError(
            "no Linux env with a lock to render",
            fix="add an env with platform linux-* and run archlock lock",
        )
    env = environment(project_root)
    common = {
        "uv_image": settings.uv_image,
        "image_name": settings.image_name,
        "registry": settings.registry,
        "targets": targets,
        "multiarch": multiarch(targets),
        "python": targets[0].python,
        "nodes": sorted(settings.builder_nodes.items()),
        "context_patterns": context.context_patterns(project_root),
        **(ci or cigraph.workflow_context(targets, [], cigraph.CiSettings({}))),
    }
    docker = project_root / DOCKER_DIR
    files: dict[Path, str] = {}
    for target in targets:
        files[docker / f"{target.env}.Dockerfile"] = _render(env, "Dockerfile.j2", common, t=target)
        files[docker / f"{target.env}.Dockerfile.dockerignore"] = _render(
            env, "dockerignore.j2", common, t=target
        )
    files[project_root / BAKE_FILE] = _render(env, "docker-bake.hcl.j2", common)
    if settings.builder_nodes:
        files[project_root / NODES_SCRIPT] = _render(
            env, "buildx-nodes.sh.j2", common, shebang=True
        )
    files[project_root / settings.workflow_dir / WORKFLOW_NAME] = _render(
        env, "workflow.yml.j2", common
    )
    return files


def dockerfile_text(target: ImageTarget, uv_image: str, image_name: str) -> str:
    """One env's Dockerfile alone (benchmarks render variants of it)."""
    context = {"uv_image": uv_image, "image_name": image_name}
    return _render(environment(), "Dockerfile.j2", context, t=target)


def _render(
    env: jinja2.Environment, name: str, context: dict[str, Any], shebang: bool = False, **extra: Any
) -> str:
    try:
        body = env.get_template(name).render(**context, **extra)
    except jinja2.TemplateError as exc:
        raise ConfigError(
            f"template {name}: {exc}", fix="correct the template (templates/)"
        ) from None
    if shebang:
        return "#!/usr/bin/env bash\n" + with_header(body, COMMAND)
    return with_header(body, COMMAND)


# -- check and write ----------------------------------------------------------------------------
def stale_files(project_root: Path, files: dict[Path, str]) -> list[str]:
    """Relative paths that differ from `files`, and generated leftovers nobody renders now."""
    stale = []
    for path, text in files.items():
        if current_text(path) != text:
            stale.append(path.relative_to(project_root).as_posix())
    for leftover in _leftovers(project_root, files):
        stale.append(f"{leftover.relative_to(project_root).as_posix()} (no longer rendered)")
    return stale


def _leftovers(project_root: Path, files: dict[Path, str]) -> list[Path]:
    docker = project_root / DOCKER_DIR
    found = sorted(p for p in docker.glob("*") if p.is_file()) if docker.is_dir() else []
    return [p for p in found if p not in files and is_generated(p)]


def write(project_root: Path, files: dict[Path, str]) -> list[str]:
    """Write what changed and remove leftovers, as one set (core/commit.py): all or nothing."""
    with commit.writing(project_root, "render") as writer:
        return write_set(project_root, files, writer)


def write_set(project_root: Path, files: dict[Path, str], writer: commit.Writer) -> list[str]:
    wanted: dict[Path, str | bytes | None] = dict(files)
    wanted.update({p: None for p in _leftovers(project_root, files)})
    modes = {p: 0o755 for p in files if p.name.endswith(".sh")}
    for path, mode in modes.items():  # a script whose text is current but whose mode is not
        if (
            path.is_file()
            and path.stat().st_mode & 0o777 != mode
            and current_text(path) == files[path]
        ):
            path.chmod(mode)
    changed = writer.commit(wanted, modes)
    return [p.relative_to(project_root).as_posix() for p in changed]


def render_project(
    project_root: Path, workflow_dir: str | None = None
) -> tuple[dict[Path, str], list[str]]:
    """Every rendered file and the notes for the user (problems among them, as warnings)."""
    files, notes, problems = render_checked(project_root, workflow_dir)
    return files, notes + [f"warning: {line}" for line in problems]


def render_checked(
    project_root: Path, workflow_dir: str | None = None, today: datetime.date | None = None
) -> tuple[dict[Path, str], list[str], list[str]]:
    """Files, notes, and the problems that would make the workflow fail on GitHub (a runner
    label GitHub has retired, a build too big for any runner it names, a login that cannot work)."""
    from archlock.core.project import Project

    project = Project.load(project_root)
    # rendered from a torn lock set, the files would be wrong
    commit.refuse_torn_locks(project.root, project.locks_dir)
    settings = load_settings(project, workflow_dir)
    targets, notes = image_targets(project, settings)
    ci = cigraph.workflow_context(targets, cigraph.mac_envs(project), cigraph.load(project))
    problems = cigraph.problems(ci, settings.registry, today or datetime.date.today())
    return render_files(project.root, settings, targets, ci), notes, problems


# -- CLI ----------------------------------------------------------------------------------------
def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "render", help="render Dockerfiles, the bake file and the CI workflow"
    )
    parser.add_argument(
        "--check", action="store_true", help="fail (exit 5) naming each stale rendered file"
    )
    parser.add_argument(
        "--workflow-dir",
        type=_workflow_dir,
        help="folder for the workflow (default: .github/workflows)",
    )
    parser.set_defaults(func=run)


def _workflow_dir(text: str) -> str:
    """--workflow-dir: a usage error (exit 2, naming the option) before any work, not a setting
    error blamed on pyproject.toml."""
    if not du.REL_PATH_RE.fullmatch(text):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a folder inside the project; give a relative path such as "
            ".github/workflows"
        )
    return text


def run(args: argparse.Namespace) -> int:
    files, notes, problems = render_checked(args.project, args.workflow_dir)
    root = args.project.resolve()
    for note in notes:
        print(f"archlock render: note: {note}")
    for problem in problems:
        print(f"archlock render: warning: {problem}", file=sys.stderr)
    if args.check:
        commit.refuse_torn(root, "render")
        stale = stale_files(root, files)
        if stale:
            raise DriftError(f"stale rendered files: {', '.join(stale)}", fix="run nox -s render")
        if problems:
            raise CheckFailed(
                f"the workflow would fail on GitHub: {problems[0]}",
                fix="change the settings the warning names, then run nox -s render",
            )
        print(f"archlock render: {len(files)} files current")
        print(f"archlock render: {context_line(root)}")
        return 0
    changed = write(root, files)
    print(
        f"archlock render: {len(changed)} of {len(files)} files written"
        + (f": {', '.join(changed)}" if changed else "")
    )
    print(f"archlock render: {context_line(root)}")
    return 0


def context_line(root: Path) -> str:
    """What `COPY . /app` would send, as the generated .dockerignore leaves it."""
    return context.describe(context.measure(root, context.context_patterns(root)))
