"""The commit protocol (core/commit.py): a set of files lands whole, whatever step is cut short.

Each step is cut by making the next one raise (a stand-in for a kill there); the integration
test (tests/integration/test_interrupts.py) kills real `lock` and `render` runs at every step."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from archlock.core import commit, lockfile
from archlock.errors import ConfigError, DriftError


class Cut(BaseException):
    """Raised at a pause point: the run ends there, as after a SIGKILL (no cleanup survives)."""


def cut_at(monkeypatch: pytest.MonkeyPatch, step: str) -> None:
    def pause(name: str, at: str) -> None:
        if at == step:
            raise Cut(at)

    monkeypatch.setattr(commit, "pause", pause)


def old_and_new(root: Path) -> tuple[dict[Path, str | bytes | None], dict[str, bytes | None]]:
    (root / "a.txt").write_text("old a")
    (root / "gone.txt").write_text("old gone")
    new: dict[Path, str | bytes | None] = {
        root / "a.txt": "new a",
        root / "sub" / "b.txt": b"new b",
        root / "gone.txt": None,
    }
    return new, {"a.txt": b"new a", "sub/b.txt": b"new b", "gone.txt": None}


def state(root: Path) -> dict[str, bytes | None]:
    names = ("a.txt", "sub/b.txt", "gone.txt")
    return {n: (root / n).read_bytes() if (root / n).is_file() else None for n in names}


def test_a_commit_writes_the_set_and_leaves_no_trace(tmp_path: Path) -> None:
    new, after = old_and_new(tmp_path)
    with commit.writing(tmp_path, "lock") as writer:
        changed = writer.commit(new)
    assert state(tmp_path) == after
    assert changed == list(new)
    assert sorted(p.name for p in (tmp_path / commit.FOLDER).iterdir()) == ["lock.lock"]
    commit.refuse_torn(tmp_path, "lock")
    with commit.writing(tmp_path, "lock") as writer:
        assert writer.commit(new) == []  # unchanged files are not rewritten


def test_a_rewrite_keeps_the_mode(tmp_path: Path) -> None:
    (tmp_path / "x.sh").write_text("old")
    (tmp_path / "x.sh").chmod(0o600)
    with commit.writing(tmp_path, "render") as writer:
        writer.commit(
            {tmp_path / "x.sh": "new", tmp_path / "y.sh": "y"}, {tmp_path / "y.sh": 0o755}
        )
    assert (tmp_path / "x.sh").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "y.sh").stat().st_mode & 0o777 == 0o755


def test_cut_while_staging_leaves_the_old_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    new, after = old_and_new(tmp_path)
    before = state(tmp_path)
    cut_at(monkeypatch, "staged")
    with pytest.raises(Cut), commit.writing(tmp_path, "lock") as writer:
        writer.commit(new)
    assert state(tmp_path) == before
    commit.refuse_torn(tmp_path, "lock")  # no intent recorded: nothing to refuse
    monkeypatch.undo()
    with commit.writing(tmp_path, "lock"):
        assert not commit.staging_dir(tmp_path, "lock").exists()  # the next writer drops it


@pytest.mark.parametrize("step", ["journaled", "renamed-1", "renamed-2", "renamed-all"])
def test_cut_after_the_intent_is_refused_then_rolled_forward(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, step: str
) -> None:
    new, after = old_and_new(tmp_path)
    cut_at(monkeypatch, step)
    with pytest.raises(Cut), commit.writing(tmp_path, "lock") as writer:
        writer.commit(new)
    with pytest.raises(DriftError) as refused:
        commit.refuse_torn(tmp_path, "lock")
    assert refused.value.line() == (
        "an interrupted lock left old and new files (.archlock/commit/lock.json) "
        "(fix: run `archlock lock`)"
    )
    monkeypatch.undo()
    with commit.writing(tmp_path, "lock"):
        assert state(tmp_path) == after
    commit.refuse_torn(tmp_path, "lock")


def test_an_interrupt_between_renames_finishes_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    new, after = old_and_new(tmp_path)
    fired = []

    def pause(name: str, at: str) -> None:
        if at == "renamed-1" and not fired:
            fired.append(at)
            raise KeyboardInterrupt

    monkeypatch.setattr(commit, "pause", pause)
    with pytest.raises(KeyboardInterrupt), commit.writing(tmp_path, "render") as writer:
        writer.commit(new)
    assert state(tmp_path) == after
    commit.refuse_torn(tmp_path, "render")


# an exception after the tool ran (in-place-done) still restores on the way out; a SIGKILL there
# leaves the journal, which the integration test covers
@pytest.mark.parametrize("step", ["in-place", "restored-1"])
def test_a_file_rewritten_in_place_is_put_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, step: str
) -> None:
    target = tmp_path / "uv.lock"
    target.write_text("old")
    cut_at(monkeypatch, step)
    with pytest.raises(Cut), commit.writing(tmp_path, "lock") as writer, writer.in_place(target):
        target.write_text("new, written by a tool")
    with pytest.raises(DriftError):
        commit.refuse_torn(tmp_path, "lock")
    monkeypatch.undo()
    with commit.writing(tmp_path, "lock") as writer:
        assert target.read_text() == "old"
        with writer.in_place(target):
            target.write_text("new")
        assert target.read_text() == "old"  # the body's bytes wait for commit()
    commit.refuse_torn(tmp_path, "lock")


def test_a_file_created_in_place_is_removed(tmp_path: Path) -> None:
    target = tmp_path / "uv.lock"
    with commit.writing(tmp_path, "lock") as writer, writer.in_place(target):
        target.write_text("new")
    assert not target.exists()


def test_a_journal_whose_staged_files_are_gone_is_dropped(tmp_path: Path) -> None:
    journal = commit.journal_path(tmp_path, "render")
    journal.parent.mkdir(parents=True)
    entry = {"path": "a.txt", "staged": ".archlock/commit/render/0-a.txt", "sha256": "0" * 64}
    journal.write_text(json.dumps({"set": "render", "phase": "commit", "files": [entry]}))
    with commit.writing(tmp_path, "render"):
        assert not journal.exists()
    journal.write_text("{not json")
    with commit.writing(tmp_path, "render"):
        assert not journal.exists()


def test_the_pause_point_needs_the_exact_set_and_step(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    slept: list[float] = []
    monkeypatch.setattr(commit.time, "sleep", slept.append)
    for value in ("journaled", "render:journaled", "lock:journaled "):
        monkeypatch.setenv(commit.PAUSE_VARIABLE, value)
        commit.pause("lock", "journaled")
    assert slept == []
    monkeypatch.setenv(commit.PAUSE_VARIABLE, "lock:journaled")
    commit.pause("lock", "journaled")
    assert slept == [commit.PAUSE_SECONDS]
    assert "paused at lock:journaled" in capsys.readouterr().err


def test_a_target_that_is_a_folder_is_refused_before_anything_changes(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("old")
    (tmp_path / "dir").mkdir()
    with pytest.raises(ConfigError, match="is a folder"), commit.writing(tmp_path, "lock") as w:
        w.commit({tmp_path / "a.txt": "new", tmp_path / "dir": "x"})
    assert (tmp_path / "a.txt").read_text() == "old"
    commit.refuse_torn(tmp_path, "lock")


def test_a_second_writer_waits_then_says_who_holds_the_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(commit, "WAIT_SECONDS", 0.2)
    with commit.writing(tmp_path, "lock"):
        held = os.open(tmp_path / commit.FOLDER / "lock.lock", os.O_RDONLY)
        try:
            with pytest.raises(ConfigError, match="another `archlock lock`"):
                commit._lock(held, tmp_path / "lock.lock", "lock")
        finally:
            os.close(held)


def test_a_stamp_without_equals_is_a_clear_error() -> None:
    text = "# archlock-inputs: garbage-without-equals\nsix==1\n"
    with pytest.raises(lockfile.StampError) as bad:
        lockfile.read_stamp(text)
    assert str(bad.value) == (
        "has a malformed archlock-inputs stamp ('garbage-without-equals' is not key=value)"
    )
    assert lockfile.read_stamp("# archlock-inputs: a=1 b=\n") == ({"a": "1", "b": ""}, None)
