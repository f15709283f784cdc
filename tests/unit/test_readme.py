"""README.md stays honest: every command in its console blocks is dry-run here, and the ones CI
runs for real are found in .ci/run by what they run, not by a word in a file.

A dry run loads noxfile.py, calls the session the command names with a stand-in session that
records what it would run (nothing is installed or started), and parses every `archlock ...`
it would run with archlock's own parser. A command passes when its session exists, accepts its
arguments (no usage error), and archlock accepts every command line the session builds.
"""

from __future__ import annotations

import functools
import importlib.util
import re
import shlex
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import nox
import pytest

from archlock import cli
from archlock.mac import cli as mac_cli

ASSIGNMENT = re.compile(r"^[A-Z_][A-Z0-9_]*=")


def readme_commands(text: str) -> list[str]:
    commands = []
    for block in re.findall(r"```console\n(.*?)```", text, re.DOTALL):
        for line in block.splitlines():
            command = re.split(r"\s{2,}#", line, maxsplit=1)[0].strip()
            if command:
                commands.append(command)
    return commands


class UsageError(Exception):
    pass


class DryRunSession:
    """What a nox session would run, recorded instead of run."""

    def __init__(self, posargs: list[str]) -> None:
        self.posargs = posargs
        self.runs: list[list[str]] = []
        self.virtualenv = SimpleNamespace(location="/dry-run/venv")

    def install(self, *args: Any, **kwargs: Any) -> None:
        pass

    def run_install(self, *args: Any, **kwargs: Any) -> None:
        pass

    def run(self, *args: Any, **kwargs: Any) -> None:
        self.runs.append([str(arg) for arg in args])

    def error(self, *args: Any) -> None:
        raise UsageError(" ".join(str(arg) for arg in args))


@functools.cache
def load_noxfile(path: Path) -> dict[str, Any]:
    """The sessions noxfile.py registers (loaded once: nox refuses a second registration)."""
    spec = importlib.util.spec_from_file_location("readme_noxfile", path)
    assert spec and spec.loader
    spec.loader.exec_module(importlib.util.module_from_spec(spec))
    return dict(nox.registry.get())


@pytest.fixture
def noxfile(repo: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    monkeypatch.setitem(vars(nox.virtualenv), "UV", "uv")  # else nox asks uv for its path
    return load_noxfile(repo / "noxfile.py")


def nox_sessions(words: list[str]) -> tuple[list[str], list[str]]:
    """(sessions, posargs) of a `nox ...` command line; no -s means the default sessions."""
    posargs = words[words.index("--") + 1 :] if "--" in words else []
    options = words[: words.index("--")] if "--" in words else words
    sessions = [options[i + 1] for i, word in enumerate(options) if word in ("-s", "--session")]
    return sessions or list(nox.options.sessions or []), posargs


def archlock_argv(run: list[str]) -> tuple[Any, list[str]] | None:
    """The parser and arguments of an archlock command line a session runs, else None."""
    if run[0] == "archlock":
        return cli.build_parser(), run[1:]
    if "-m" in run:
        module, args = run[run.index("-m") + 1], run[run.index("-m") + 2 :]
        if module == "archlock":
            return cli.build_parser(), args
        if module == "archlock.mac":
            parser = mac_cli.argparse.ArgumentParser(prog="python -m archlock.mac")
            mac_cli.add_arguments(parser)
            return parser, args
    return None


def dry_run(command: str, noxfile: dict[str, Any]) -> list[list[str]]:
    """Every command line `command` would run; raises on an unknown session or bad arguments."""
    ran: list[list[str]] = []
    for part in command.split("&&"):
        words = [w for w in shlex.split(part) if not ASSIGNMENT.match(w)]
        if words[:2] == ["pip", "install"]:
            ran.append(words)
            continue
        if words[0] == "archlock":
            runs = [words]
        else:
            assert words[0] == "nox", f"{command!r}: not a nox or archlock command"
            sessions, posargs = nox_sessions(words)
            runs = []
            for name in sessions:
                assert name in noxfile, f"{command!r}: noxfile.py has no session {name!r}"
                session = DryRunSession(posargs)
                noxfile[name](session)
                runs += session.runs
        for run in runs:
            parsed = archlock_argv(run)
            if parsed:
                parser, args = parsed
                try:
                    parser.parse_args(args)
                except SystemExit:
                    raise AssertionError(
                        f"{command!r}: archlock rejects {shlex.join(run)}"
                    ) from None
        ran += runs
    return ran


COMMAND_START = {"(", ";", "&&", "||", "|", "if", "then", "else", "do", "!", "time"}


def ci_nox_runs(repo: Path) -> list[tuple[list[str], list[str]]]:
    """(sessions, posargs) of every nox command .ci/run runs (comments and heredocs skipped)."""
    text = (repo / ".ci" / "run").read_text().replace("\\\n", " ")
    found, heredoc = [], None
    for line in text.splitlines():
        if heredoc:
            heredoc = None if line.strip() == heredoc else heredoc
            continue
        marker = re.search(r"<<-?'?(\w+)'?", line)
        heredoc = marker.group(1) if marker else None
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split, lexer.commenters = True, "#"
        words = list(lexer)
        for i, word in enumerate(words):
            before = [w for w in words[:i] if not ASSIGNMENT.match(w) and not w.endswith("=$")]
            if word == "nox" and (not before or before[-1] in COMMAND_START):
                rest = []
                for token in words[i + 1 :]:
                    if token[0] in ";|&()<>" or token.isdigit():
                        break
                    rest.append(token)
                found.append(nox_sessions(["nox", *rest]))
    return found


def run_in_ci(command: str, repo: Path) -> bool:
    """Whether .ci/run runs what `command` runs: the same sessions, its arguments among theirs."""
    ci = ci_nox_runs(repo)
    for part in command.split("&&"):
        words = [w for w in shlex.split(part) if not ASSIGNMENT.match(w)]
        if words[0] != "nox":
            continue
        sessions, posargs = nox_sessions(words)
        if not any(s == sessions and set(posargs) <= set(p) for s, p in ci):
            return False
    return command.split()[0] == "nox" or "&& nox" in command


def test_readme_has_commands(repo: Path) -> None:
    commands = readme_commands((repo / "README.md").read_text())
    assert commands[:2] == ["pip install nox uv && nox", "nox -s tests -- --integration"]


def test_every_readme_command_dry_runs(repo: Path, noxfile: dict[str, Any]) -> None:
    for command in readme_commands((repo / "README.md").read_text()):
        assert dry_run(command, noxfile), f"{command!r} runs nothing"


def test_the_main_job_and_the_tests_run_in_ci(repo: Path, noxfile: dict[str, Any]) -> None:
    commands = readme_commands((repo / "README.md").read_text())
    in_ci = [c for c in commands if run_in_ci(c, repo)]
    assert {"pip install nox uv && nox", "nox -s tests -- --integration"} <= set(in_ci)
    assert "nox -s setup-mac" in in_ci  # CI checks its refusal off macOS


def test_a_dry_run_catches_what_a_word_search_would_not(noxfile: dict[str, Any]) -> None:
    with pytest.raises(AssertionError, match="no session 'lock-chek'"):
        dry_run("nox -s lock-chek", noxfile)
    with pytest.raises(AssertionError, match="archlock rejects archlock verify --no-such-option"):
        dry_run("nox -s verify -- --no-such-option", noxfile)
    with pytest.raises(UsageError, match="Usage: nox -s repro"):
        dry_run("nox -s repro", noxfile)
    runs = dry_run("ARCHLOCK_INDEX_PYTORCH_CPU=/srv/wheels nox -s lock -- --env a", noxfile)
    assert runs == [["archlock", "lock", "--env", "a"]]
    assert any(
        run[:3] == [sys.executable, "-m", "archlock.mac"]
        for run in dry_run("nox -s setup-mac", noxfile)
    )
