"""The input readers and writers every verb shares: what is refused, and how writes land."""

from __future__ import annotations

import argparse
import os
import stat
from pathlib import Path

import pytest

from archlock.core import cliargs, fsutil
from archlock.core.jsonsrc import parse_json
from archlock.core.tomlsrc import load_toml
from archlock.core.yamlsrc import load_located
from archlock.errors import ConfigError


@pytest.mark.parametrize(
    "make, says",
    [
        (lambda p: os.mkfifo(p), "not a regular file"),
        (lambda p: p.mkdir(), "is a folder"),
        (lambda p: p.symlink_to(p.parent / "gone"), "dangling symlink"),
        (lambda p: p.symlink_to(p), "symlink loop"),
        (lambda p: p.symlink_to("/dev/zero"), "not a regular file"),
        (lambda p: p.write_bytes(b"a: \xff"), "not UTF-8"),
    ],
)
def test_read_input_refuses_what_is_not_text(tmp_path: Path, make, says: str) -> None:
    path = tmp_path / "in.yaml"
    make(path)
    with pytest.raises(ConfigError, match=says):
        fsutil.read_input(path)


def test_read_input_caps_the_size(tmp_path: Path) -> None:
    path = tmp_path / "big.json"
    path.write_text("x" * 2000)
    with pytest.raises(ConfigError, match="over the 1000-byte limit"):
        fsutil.read_input(path, limit=1000)


@pytest.mark.parametrize(
    "text, says",
    [
        ("a: &a [*a]\n", "refers to the value that contains it"),
        ("x: &x {a: 1}\ny:\n  <<: *x\n", "merge keys"),
        ("a: !custom 1\n", "tag '!custom'"),
        ("a: !!python/object:os.system x\n", "not supported"),
        ("a:\n" + "".join(" " * i + "b:\n" for i in range(1, 100)), "nested too deeply"),
    ],
)
def test_yaml_refusals(tmp_path: Path, text: str, says: str) -> None:
    path = tmp_path / "env.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=says):
        load_located(path)


@pytest.mark.parametrize(
    "text, says",
    [
        ('{"a": NaN}', "NaN is not a number"),
        ("[1e999]", "too large"),
        ("[" * 100 + "]" * 100, "nested over"),
        ('"\\ud800"', "lone surrogate"),
        ("{", "not JSON"),
    ],
)
def test_json_refusals(text: str, says: str) -> None:
    with pytest.raises(ConfigError, match=says):
        parse_json(text, "r.json")


def test_json_reads_nan_when_asked() -> None:
    assert str(parse_json("[NaN]", "r.json", allow_nan=True)) == "[nan]"


def test_toml_errors_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "pyproject.toml"
    path.write_text("a = [")
    with pytest.raises(ConfigError, match=f"{path}: not valid TOML"):
        load_toml(path)


def test_rewrites_keep_the_mode_and_new_files_follow_the_umask(tmp_path: Path) -> None:
    path = tmp_path / "lock.txt"
    path.write_text("old")
    path.chmod(0o644)
    fsutil.atomic_write(path, "new")
    assert stat.S_IMODE(path.stat().st_mode) == 0o644 and path.read_text() == "new"
    fresh = tmp_path / "fresh.txt"
    old = os.umask(0o022)
    try:
        fsutil.atomic_write_many({fresh: "x"})
    finally:
        os.umask(old)
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o644


def test_a_killed_writers_temp_file_is_removed_by_the_next_write(tmp_path: Path) -> None:
    dead = tmp_path / f".lock.txt.{2**22 + 7}.abc{fsutil.TEMP_SUFFIX}"  # no such pid
    live = tmp_path / f".lock.txt.{os.getpid()}.abc{fsutil.TEMP_SUFFIX}"
    dead.write_text("half")
    live.write_text("ours, in progress")
    fsutil.atomic_write(tmp_path / "lock.txt", "x")
    assert not dead.exists() and live.exists()


def test_writes_refuse_folders_before_writing_anything(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    first = tmp_path / "first.txt"
    with pytest.raises(ConfigError, match="is a folder"):
        fsutil.atomic_write_many({first: "a", tmp_path / "out": "b"})
    assert not first.exists()


@pytest.mark.parametrize(
    "name, says", [("out", "is a folder"), ("file/below.json", "is not a folder")]
)
def test_output_file_names_the_option(tmp_path: Path, name: str, says: str) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "file").write_text("")
    with pytest.raises(ConfigError, match=f"--output {tmp_path / name}: .*{says}"):
        fsutil.output_file(tmp_path / name, "--output")
    assert fsutil.output_file(tmp_path / "new" / "dir" / "r.json", "--output")


def test_temp_dir_sweeps_folders_of_dead_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(fsutil.tempfile, "tempdir", None)
    left = tmp_path / f"archlock-{2**22 + 7}-universal-x"
    left.mkdir()
    with fsutil.temp_dir("env") as folder:
        assert folder.parent == tmp_path and folder.name.startswith(f"archlock-{os.getpid()}-env-")
    assert not left.exists() and not folder.exists()


@pytest.mark.parametrize("text", ["-5", "x", "1.5"])
def test_counts_refuse_negatives_and_non_numbers(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        cliargs.count(text)


@pytest.mark.parametrize("text", ["0", "-1", "nan", "inf", "x"])
def test_time_limits_are_positive_and_finite(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        cliargs.seconds(text)


def test_an_atomic_write_never_replaces_a_device_node() -> None:
    """A rename onto /dev/null would turn it into a regular file for the whole machine."""
    before = os.stat("/dev/null")
    with pytest.raises(ConfigError, match=r"/dev/null: is not a regular file"):
        fsutil.atomic_write(Path("/dev/null"), "x")
    after = os.stat("/dev/null")
    assert stat.S_ISCHR(after.st_mode) and after.st_ino == before.st_ino


@pytest.mark.parametrize("char", ["\n", "\x00", "\x7f", "\x85", "\u2028", "\u200b"])
def test_requirement_lines_refuse_every_line_break_and_control(tmp_path: Path, char: str) -> None:
    """One rule for what a control character is: NEL (\\x85) and U+2028 end a line too."""
    from archlock.core.project import Project

    (tmp_path / "pyproject.toml").write_text(
        f'[project]\nname = "x"\nversion = "0"\ndependencies = ["0\\u{ord(char):04x}"]\n'
    )
    with pytest.raises(ConfigError, match="holds a control character"):
        Project.load(tmp_path).direct_requirements()
