"""The CLI's way-finding: the project found upward, did-you-mean for verbs, exit codes in --help."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from archlock import cli, errors
from archlock.core.project import find_root


def test_find_root_takes_the_nearest_folder_with_envs(tmp_path: Path) -> None:
    (tmp_path / "proj" / "envs").mkdir(parents=True)
    deep = tmp_path / "proj" / "src" / "pkg"
    deep.mkdir(parents=True)
    assert find_root(deep) == tmp_path / "proj"
    assert find_root(tmp_path / "proj") == tmp_path / "proj"


def test_find_root_takes_a_pyproject_with_archlock_settings(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    (root / "sub" / "inner").mkdir(parents=True)
    (root / "pyproject.toml").write_text('[tool.archlock.verify]\nrun = ["python t.py"]\n')
    # a nested package's own pyproject without archlock settings is not the project
    (root / "sub" / "pyproject.toml").write_text('[project]\nname = "inner"\n')
    assert find_root(root / "sub" / "inner") == root


def test_find_root_reads_dotted_keys_and_counts_an_unparsable_archlock_pyproject(
    tmp_path: Path,
) -> None:
    (tmp_path / "a" / "x").mkdir(parents=True)
    (tmp_path / "a" / "pyproject.toml").write_text('tool.archlock.groups = ["dev"]\n')
    assert find_root(tmp_path / "a" / "x") == tmp_path / "a"
    (tmp_path / "b" / "x").mkdir(parents=True)
    (tmp_path / "b" / "pyproject.toml").write_text("[tool.archlock]\ngroups = [\n")
    assert find_root(tmp_path / "b" / "x") == tmp_path / "b"  # the verb then names the error


def test_find_root_stops_at_a_repository_root_and_falls_back_to_the_start(
    tmp_path: Path,
) -> None:
    (tmp_path / "envs").mkdir()  # an unrelated project above the repository
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    (repo / "src").mkdir()
    (repo / "requirements.txt").write_text("six\n")
    assert find_root(repo / "src") == repo  # not set up yet: the nearest project file
    (repo / "requirements.txt").unlink()
    assert find_root(repo / "src") == repo / "src"  # nothing at all: where the command ran


def test_a_verb_in_a_subfolder_acts_on_the_project(
    tmp_path: Path,
    fixtures: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    root = tmp_path / "proj"
    shutil.copytree(fixtures / "projects" / "torch-mirror", root)
    (root / "src" / "model").mkdir(parents=True)
    monkeypatch.chdir(root / "src" / "model")
    assert cli.main(["audit"]) == errors.DriftError.exit_code  # not locked yet: audit says so
    err = capsys.readouterr().err
    assert f"{root}/envs/locks/pylock.linux-amd64-cpu.toml: no lock" in err
    monkeypatch.chdir(tmp_path)
    assert cli.main(["--project", str(root / "envs"), "audit"]) == errors.ConfigError.exit_code
    assert "neither pyproject.toml nor requirements.txt" in capsys.readouterr().err  # as given


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["lokc"], "did you mean 'lock'?"),
        (["verfy"], "did you mean 'verify'?"),
        (["rendr", "--check"], "did you mean 'render'?"),
        (["audit", "--format", "jsno"], "did you mean 'json'?"),
    ],
)
def test_a_mistyped_verb_or_choice_gets_a_did_you_mean(
    argv: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main(argv)
    assert exit_.value.code == errors.ConfigError.exit_code
    err = capsys.readouterr().err
    assert says in err and "Traceback" not in err


def test_nothing_close_gets_no_guess(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["zzzzzz"])
    err = capsys.readouterr().err
    assert "invalid choice: 'zzzzzz'" in err and "did you mean" not in err


def test_help_lists_every_exit_code_from_the_error_classes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    out = capsys.readouterr().out
    codes = {cls.exit_code for cls in errors.ArchlockError.__subclasses__()}
    assert codes == {2, 3, 4, 5, 6, 7}
    for cls in errors.ArchlockError.__subclasses__():
        doc = (cls.__doc__ or "").strip().splitlines()[0]
        assert f"  {cls.exit_code:<4} {doc}" in out
    assert "  130  interrupted" in out and "nearest folder" in out


def test_readme_documents_the_same_exit_codes(repo: Path) -> None:
    readme = repo.joinpath("README.md").read_text()
    for cls in errors.ArchlockError.__subclasses__():
        assert f"| {cls.exit_code} | `{cls.__name__}` |" in readme


def test_the_console_script_turns_a_late_ctrl_c_into_one_line_and_130(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The `archlock` script and `python -m archlock` enter through one function, which catches
    a Ctrl-C that lands outside main() (while it imports, or as it returns): no traceback."""
    import tomllib

    import archlock.__main__ as entry
    import archlock.cli

    root = Path(__file__).resolve().parents[2]
    scripts = tomllib.loads((root / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {"archlock": "archlock.__main__:run"}

    def interrupted() -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(archlock.cli, "main", interrupted)
    with pytest.raises(SystemExit) as ended:
        entry.run()
    assert ended.value.code == 130
    assert capsys.readouterr().err == "archlock: interrupted\n"


def test_the_entry_module_imports_nothing_the_interpreter_has_not_loaded_above_its_try() -> None:
    """A Ctrl-C while __main__ imports, above run()'s try, was a traceback (the interrupt test
    hit one at 0.011 s, inside `import signal`): module-level imports are the startup's own."""
    import ast

    from archlock import __main__ as entry

    tree = ast.parse(Path(entry.__file__).read_text())
    top = {
        alias.name
        for node in tree.body
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    assert top <= {"os", "sys"}, top


@pytest.mark.parametrize("cause", [KeyboardInterrupt(), ValueError("not a Ctrl-C")])
def test_a_ctrl_c_that_python_wrapped_in_runtime_error_is_still_an_interrupt(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], cause: BaseException
) -> None:
    """Python 3.11 turns an exception raised in __set_name__ (a cached_property's class being
    made while a module imports) into RuntimeError from it: the interrupt test's seed 503 sent
    SIGINT at 0.017 s, into functools' __set_name__, and got a traceback. Other causes stay
    errors."""
    import archlock.cli
    from archlock import __main__ as entry

    def wrapped() -> int:
        raise RuntimeError("Error calling __set_name__") from cause

    monkeypatch.setattr(archlock.cli, "main", wrapped)
    if isinstance(cause, KeyboardInterrupt):
        with pytest.raises(SystemExit) as ended:
            entry.run()
        assert ended.value.code == 130
        assert capsys.readouterr().err == "archlock: interrupted\n"
    else:
        with pytest.raises(RuntimeError, match="__set_name__"):
            entry.run()
