"""`archlock init`: the CLI. Plan, refuse or write everything at once, then lock and render."""

from __future__ import annotations

import argparse
import difflib
import shlex
from pathlib import Path

from archlock.build import render
from archlock.core.fsutil import atomic_write_many
from archlock.core.project import Project, find_root
from archlock.errors import ArchlockError, ConfigError, DriftError
from archlock.init.plan import Change, plan
from archlock.lock.resolve import lock_project
from archlock.verify import runs

MERGE_HINT = (
    "noxfile.py is yours, so it was kept: copy the sessions you want from archlock's "
    "(`archlock init --dry-run` prints it), or replace it with `archlock init --force`"
)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "init",
        help="set up archlock in an existing project (env specs, settings, noxfile); lock; render",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="print what would be written; change nothing"
    )
    parser.add_argument(
        "--force", action="store_true", help="replace your env specs and noxfile with archlock's"
    )
    parser.add_argument(
        "--run",
        action="append",
        default=[],
        metavar="COMMAND",
        help="[tool.archlock.verify] run, e.g. 'python train.py --max-iters 5' (repeatable)",
    )
    parser.add_argument(
        "--metric", help="regex whose group 1 is the number every env must agree on"
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="fail (exit 5) naming each file init would change, or (unless --no-lock) each "
        "missing or stale lock",
    )
    parser.add_argument(
        "--no-lock", action="store_true", help="write the files only; do not lock and render"
    )
    parser.set_defaults(func=run)


def check_run_options(project: Project, run: list[str], metric: str | None) -> None:
    """Refuse bad --run / --metric before anything is planned or written."""
    if metric:
        runs.compile_metric(metric, "--metric:")
        configured = project.settings.verify.run
        if not (run or configured):
            raise ConfigError("--metric without a run to read it from", fix="add --run COMMAND")
    for command in run:
        if not command.strip():
            raise ConfigError(
                "--run: an empty command", fix="give the command, e.g. --run 'python train.py'"
            )


def show(change: Change, root_len: int, dry_run: bool) -> str:
    name = str(change.path)[root_len:].lstrip("/")
    verb = (
        {"create": "would create", "update": "would update"}.get(change.action, change.action)
        if dry_run
        else change.action
    )
    head = f"{verb:<13} {name}" + (f" ({change.why})" if change.why else "")
    if not dry_run or change.action not in ("create", "update", "kept"):
        return head
    old = (
        change.path.read_text(encoding="utf-8").splitlines(keepends=True)
        if change.path.exists()
        else []
    )
    diff = difflib.unified_diff(
        old, change.text.splitlines(keepends=True), f"a/{name}", f"b/{name}"
    )
    return head + "\n" + "".join(diff).rstrip("\n")


def lock_and_render(project: Project) -> None:
    project = Project.load(project.root)  # re-read: init may have changed pyproject.toml and envs/
    for outcome in lock_project(project, None, check=False, force=False):
        print(
            f"archlock init: lock {outcome.env.name:<20} {outcome.state:<10} "
            f"torch {outcome.torch or '-'}"
        )
    files, notes = render.render_project(project.root)
    for note in notes:
        print(f"archlock init: note: {note}")
    changed = render.write(project.root, files)
    print(f"archlock init: render: {len(changed)} of {len(files)} files written")


def command(project: Project, verb: str) -> str:
    """The exact archlock command line for `verb` on this project, as typed from here."""
    here = find_root(Path.cwd()) == project.root
    return (
        f"archlock {verb}"
        if here
        else f"archlock --project {shlex.quote(str(project.root))} {verb}"
    )


def check_locks(project: Project) -> None:
    """`init --check`'s second half: lock --check's own stamps, so a project init set up but
    never locked (or whose locks went stale) fails too."""
    try:
        lock_project(Project.load(project.root), None, check=True, force=False)
    except DriftError as exc:
        raise DriftError(
            f"init's files are current, but the locks are not: {exc.message}",
            fix=f"run `{command(project, 'lock')}` and commit the result",
        ) from None


def run(args: argparse.Namespace) -> int:
    project = Project.load(args.project)
    project.direct_requirements()  # a requirements.txt lock cannot read is refused before writing
    check_run_options(project, args.run, args.metric)
    changes = plan(project, force=args.force, run=args.run, metric=args.metric)
    root_len = len(str(project.root))
    for change in changes:
        if not args.check:
            print(show(change, root_len, args.dry_run))
    if any(c.action == "kept" and c.path.name == "noxfile.py" for c in changes):
        print(f"archlock init: {MERGE_HINT}")
    if args.check:
        stale = [
            str(c.path)[root_len:].lstrip("/") for c in changes if c.action in ("create", "update")
        ]
        if stale:
            raise DriftError(
                f"archlock init would change: {', '.join(stale)}", fix="run archlock init"
            )
        if not args.no_lock:
            check_locks(project)
        print("archlock init: every file current" + ("" if args.no_lock else "; locks current"))
        return 0
    if args.dry_run:
        print(
            "archlock init: dry run, nothing written"
            + ("" if args.no_lock else "; would then lock and render")
        )
        return 0
    atomic_write_many({c.path: c.text for c in changes if c.action in ("create", "update")})
    if args.no_lock:
        print(
            f"archlock init: done; next: {command(project, 'lock')} && {command(project, 'render')}"
        )
        return 0
    try:
        lock_and_render(project)
    except ArchlockError as exc:  # init's files stay: the fix, then init again finishes the job
        exc.fix = f"{exc.fix}; then run `{command(project, 'init')}`" if exc.fix else None
        exc.message += "" if exc.fix else f"; fix it, then run `{command(project, 'init')}`"
        raise
    print(f"archlock init: done; next: {command(project, 'build')} && {command(project, 'verify')}")
    return 0
