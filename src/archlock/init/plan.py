"""What `archlock init` would write into a project, computed without touching it.

Each file is a `Change`: created, updated, unchanged, or kept (the user's own file differs and
`--force` was not given). Refusals (a setting that contradicts what archlock needs) raise before
anything is written, so a refused init changes nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from archlock.build import render
from archlock.core.fsutil import is_generated, with_header
from archlock.core.project import Project, default_envs_dir
from archlock.core.spec import load_spec
from archlock.init import pyproject
from archlock.init.source import requirement as archlock_requirement

COMMAND = "archlock init"
SPEC_HEAD = "# Written by `archlock init` from archlock's default for this target; edit freely.\n"
GITIGNORE_LINES = (".archlock/", ".nox/", "/results/")
NOXFILE_TEMPLATE = "init-noxfile.py.j2"
SHIPPED_PYTHON = "3.11"  # what archlock's default specs name; a project needing more gets its floor


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


def spec_text(source: Path, python: str | None) -> str:
    text = source.read_text(encoding="utf-8")
    if python:  # the interpreter, the image base that carries it, and the comment naming it
        text = text.replace(f'python: "{SHIPPED_PYTHON}"', f'python: "{python}"')
        text = text.replace(f"python:{SHIPPED_PYTHON}-", f"python:{python}-")
        text = text.replace(f"Python {SHIPPED_PYTHON}", f"Python {python}")
    return SPEC_HEAD + text


def env_specs(project: Project, force: bool) -> list[Change]:
    python = env_python(project)
    changes = []
    for source in sorted(default_envs_dir().glob("*.yaml")):
        text = spec_text(source, python)
        changes.append(decide(project.envs_dir / source.name, text, ours=False, force=force))
    return changes


def pyproject_change(project: Project, run: list[str], metric: str | None) -> Change:
    """Adds only; never needs --force (a contradiction is a refusal instead)."""
    path = project.root / "pyproject.toml"
    markers = sorted(
        {load_spec(source).platform.marker for source in default_envs_dir().glob("*.yaml")}
    )
    text = pyproject.updated(path, project.kind, markers, run, metric)
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
