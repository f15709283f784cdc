"""Hand-edited generated files (pylock, requirements lock, expectations): `audit` and the
staleness check of `lock --check` read them as a result or one ConfigError line."""

from __future__ import annotations

import io
import os
import shutil
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

from fuzz_support import attempt, examples, flag, scratch
from hypothesis import given, settings
from hypothesis import strategies as st

from archlock import cli
from archlock.core.project import Project
from archlock.lock import resolve

REPO = Path(__file__).resolve().parents[2]
PROJECT = scratch("generated")
for name in ("pyproject.toml", "uv.lock", "envs"):
    source = REPO / name
    (shutil.copytree if source.is_dir() else shutil.copy2)(source, PROJECT / name)
LOCKS = sorted((PROJECT / "envs" / "locks").iterdir())
ORIGINAL = {path: path.read_bytes() for path in LOCKS}
LINES = {path: path.read_bytes().splitlines(keepends=True) for path in LOCKS}

edit = st.one_of(
    st.tuples(st.just("line"), st.integers(0, 10_000), st.binary(max_size=60)),
    st.tuples(st.just("bytes"), st.just(0), st.binary(max_size=200)),
    st.tuples(
        st.just("text"),
        st.integers(0, 10_000),
        st.text(max_size=60).map(lambda t: t.encode("utf-8", "surrogatepass")),
    ),
    st.tuples(
        st.sampled_from(["folder", "fifo", "dangling", "truncate"]),
        st.integers(0, 10_000),
        st.just(b""),
    ),
)


def apply(path: Path, kind: str, where: int, data: bytes) -> None:
    if kind in ("line", "text"):
        lines = list(LINES[path])
        lines[where % len(lines)] = data + b"\n"
        path.write_bytes(b"".join(lines))
    elif kind == "bytes":
        path.write_bytes(data)
    elif kind == "truncate":
        path.write_bytes(ORIGINAL[path][: where % len(ORIGINAL[path])])
    else:
        path.unlink()
        if kind == "folder":
            path.mkdir()
        elif kind == "fifo":
            os.mkfifo(path)
        else:
            path.symlink_to(path.parent / "gone")


def restore(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        path.rmdir()
    elif os.path.lexists(path):
        path.unlink()
    path.write_bytes(ORIGINAL[path])


def audit_and_staleness() -> list[str | None]:
    with redirect_stdout(io.StringIO()), redirect_stderr(io.StringIO()) as err:
        try:
            cli.main(["--project", str(PROJECT), "audit"])
        finally:
            flag("generated", "traceback printed", "Traceback" not in err.getvalue())
    project = Project.load(PROJECT)
    return [
        resolve.staleness(project, env, {k: "x" for k in resolve.INPUT_NAMES})
        for env in project.envs()
    ]


@settings(max_examples=examples(200))
@given(st.sampled_from(LOCKS), edit)
def test_hand_edited_locks(path: Path, change: tuple[str, int, bytes]) -> None:
    apply(path, *change)
    try:
        attempt("generated", audit_and_staleness)
    finally:
        restore(path)
