"""What `archlock init` would write into a project, computed without touching it.

Each file is a `Change`: created, updated, unchanged, or kept (the user's own file differs and
`--force` was not given). Refusals (a setting that contradicts what archlock needs) raise before
anything is written, so a refused init changes nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.version import Version

from archlock.build import render
from archlock.core.fsutil import is_generated, with_header
from archlock.core.lockfile import canonical
from archlock.core.platforms import Platform
from archlock.core.project import Project, default_envs_dir
from archlock.core.spec import load_spec
from archlock.init import pyproject
from archlock.init.source import requirement as archlock_requirement

COMMAND = "archlock init"
SPEC_HEAD = "# Written by `archlock init` from archlock's default for this target; edit freely.\n"
GITIGNORE_LINES = (".archlock/", ".nox/", "/results/")
NOXFILE_TEMPLATE = "init-noxfile.py.j2"
SHIPPED_PYTHON = "3.11"  # what archlock's default specs name; a project needing more gets its floor
CPU_INDEX = pyproject.CPU_INDEX
TORCH_FROM_CPU_INDEX = f"""\
# Written by archlock init: your torch requirement admits releases whose PyPI wheel for this
# platform is a CUDA build, so torch's +cpu build comes from the PyTorch CPU index (its URL is
# under [tool.archlock.indexes] in pyproject.toml; ARCHLOCK_INDEX_PYTORCH_CPU names a mirror).
torch:
  index: {CPU_INDEX}
  variant: cpu
"""


@dataclass(frozen=True)
class Change:
    path: Path
    text: str  # what init would write (for "kept": what it would have written)
    action: str  # create | update | unchanged | kept
    why: str = ""


def decide(path: Path, text: str, *, ours: bool, force: bool) -> Change:
    """Against what is there: archlock's own files are refreshed, a user's only with --force."""
    if not path.exists():
        return Change(path, text, "create")
    if path.read_text(encoding="utf-8") == text:
        return Change(path, text, "unchanged")
    if ours or force:
        return Change(path, text, "update", "" if ours else "--force")
    return Change(path, text, "kept", "yours differs from archlock's; --force replaces it")


def env_python(project: Project) -> str | None:
    """The project's lowest Python when it is above the shipped specs' 3.11, else None."""
    floor = re.search(r">=\s*3\.([0-9]+)", project.requires_python)
    return (
        f"3.{floor.group(1)}" if floor and int(floor.group(1)) > int(SHIPPED_PYTHON[2:]) else None
    )


def admits_pypi_cuda_torch(project: Project, platform: Platform) -> bool:
    """Whether the project's torch requirement lets in a release whose PyPI wheel for `platform`
    is a CUDA build (unpinned torch does: the newest release wins)."""
    floor = platform.pypi_torch_cuda_from
    if floor is None:
        return False
    for line in project.direct_requirements():
        try:
            requirement = Requirement(line)
        except InvalidRequirement:
            continue
        if canonical(requirement.name) != "torch" or requirement.url:
            continue
        named = [Version(s.version.removesuffix(".*")) for s in requirement.specifier]
        candidates = [Version(floor), Version("9999")]
        candidates += [v for n in named if n >= Version(floor) for v in (n, Version(f"{n}.1"))]
        if any(requirement.specifier.contains(v, prereleases=True) for v in candidates):
            return True
    return False


def spec_text(source: Path, python: str | None, cpu_index: bool = False) -> str:
    text = source.read_text(encoding="utf-8")
    if cpu_index and not re.search(r"^torch:", text, re.MULTILINE):
        text = re.sub(r"^(?=expect:)", TORCH_FROM_CPU_INDEX, text, count=1, flags=re.MULTILINE)
    if python:  # the interpreter, the image base that carries it, and the comment naming it
        text = text.replace(f'python: "{SHIPPED_PYTHON}"', f'python: "{python}"')
        text = text.replace(f"python:{SHIPPED_PYTHON}-", f"python:{python}-")
        text = text.replace(f"Python {SHIPPED_PYTHON}", f"Python {python}")
    return SPEC_HEAD + text


def env_specs(project: Project, force: bool) -> list[Change]:
    python = env_python(project)
    changes = []
    for source in sorted(default_envs_dir().glob("*.yaml")):
        spec = load_spec(source)
        cpu_index = spec.accelerator == "cpu" and admits_pypi_cuda_torch(project, spec.platform)
        text = spec_text(source, python, cpu_index)
        changes.append(decide(project.envs_dir / source.name, text, ours=False, force=force))
    return changes


def pyproject_change(project: Project, run: list[str], metric: str | None) -> Change:
    """Adds only; never needs --force (a contradiction is a refusal instead)."""
    path = project.root / "pyproject.toml"
    markers = sorted(
        {load_spec(source).platform.marker for source in default_envs_dir().glob("*.yaml")}
    )
    # a requirements project's name is its folder's: the image name it gives is written down,
    # so a clone in another folder renders the same files (a pyproject's [project] name travels)
    image = render.default_image_name(project.name) if project.kind == "requirements" else None
    text = pyproject.updated(path, project.kind, markers, run, metric, image)
    return decide(path, text, ours=True, force=False)


def noxfile(project: Project, force: bool) -> Change:
    path = project.root / "noxfile.py"
    pinned = repr(archlock_requirement())  # the archlock running now, never a bare name
    template = render.environment(project.root).get_template(NOXFILE_TEMPLATE)
    body = template.render(archlock_literal=pinned)
    text = with_header(body, f"{COMMAND} --force")
    return decide(path, text, ours=path.is_file() and is_generated(path), force=force)


def gitignore(project: Project) -> Change:
    """The lines archlock needs ignored, appended to what is there (nothing is removed)."""
    path = project.root / ".gitignore"
    text = path.read_text(encoding="utf-8") if path.is_file() else ""
    have = {line.strip() for line in text.splitlines()}
    missing = [line for line in GITIGNORE_LINES if line not in have]
    if missing:
        gap = "" if not text or text.endswith("\n") else "\n"
        text += (
            gap + "# archlock: local venvs, nox envs, verify results\n" + "\n".join(missing) + "\n"
        )
    return decide(path, text, ours=True, force=False)


def plan(project: Project, *, force: bool, run: list[str], metric: str | None) -> list[Change]:
    return [
        *env_specs(project, force),
        pyproject_change(project, run, metric),
        noxfile(project, force),
        gitignore(project),
    ]
