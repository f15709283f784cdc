"""The rc-file block: written only with --fix-shell, backed up, marked, idempotent."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

import pytest

from archlock.errors import ConfigError
from archlock.mac.shellfix import BEGIN, END, block, fix_rc, rc_file, with_block

LINE = 'export PATH="/opt/homebrew/bin:$PATH"'
NOW = datetime(2026, 11, 22, 9, 30, 0)


def test_the_block_is_appended_after_the_users_lines(tmp_path: Path) -> None:
    rc = tmp_path / ".zprofile"
    rc.write_text("export EDITOR=vim", encoding="utf-8")  # no final newline
    change = fix_rc(rc, LINE, NOW)
    assert change.changed
    assert rc.read_text(encoding="utf-8") == "export EDITOR=vim\n\n" + block(LINE)
    assert block(LINE).splitlines()[0] == BEGIN and block(LINE).splitlines()[-1] == END


def test_a_backup_of_the_old_file_is_made_first(tmp_path: Path) -> None:
    rc = tmp_path / ".zprofile"
    rc.write_text("export EDITOR=vim\n", encoding="utf-8")
    os.chmod(rc, 0o640)
    change = fix_rc(rc, LINE, NOW)
    assert change.backup == tmp_path / ".zprofile.archlock-20261122-093000.bak"
    assert change.backup.read_text(encoding="utf-8") == "export EDITOR=vim\n"
    assert rc.stat().st_mode & 0o777 == 0o640  # the rc file keeps its permissions


def test_a_second_run_changes_nothing(tmp_path: Path) -> None:
    rc = tmp_path / ".bash_profile"
    rc.write_text("source ~/.bashrc\n", encoding="utf-8")
    fix_rc(rc, LINE, NOW)
    first = rc.read_text(encoding="utf-8")
    again = fix_rc(rc, LINE, datetime(2026, 11, 23))
    assert not again.changed and again.backup is None
    assert rc.read_text(encoding="utf-8") == first
    assert first.count(BEGIN) == 1
    assert len(list(tmp_path.glob("*.bak"))) == 1


def test_a_changed_fix_replaces_the_block_in_place(tmp_path: Path) -> None:
    rc = tmp_path / ".zprofile"
    rc.write_text("before\n" + block('export PATH="/old:$PATH"') + "after\n", encoding="utf-8")
    assert fix_rc(rc, LINE, NOW).changed
    assert rc.read_text(encoding="utf-8") == "before\n" + block(LINE) + "after\n"


def test_a_missing_rc_file_is_created_without_a_backup(tmp_path: Path) -> None:
    change = fix_rc(tmp_path / ".zprofile", LINE, NOW)
    assert change.changed and change.backup is None
    assert (tmp_path / ".zprofile").read_text(encoding="utf-8") == block(LINE)


def test_a_symlinked_rc_file_is_edited_where_it_lives(tmp_path: Path) -> None:
    real = tmp_path / "dotfiles" / "zprofile"
    real.parent.mkdir()
    real.write_text("x=1\n", encoding="utf-8")
    link = tmp_path / ".zprofile"
    link.symlink_to(real)
    fix_rc(link, LINE, NOW)
    assert link.is_symlink() and BEGIN in real.read_text(encoding="utf-8")


def test_an_unfinished_block_is_an_error_not_a_guess(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no '# <<< archlock <<<'"):
        with_block(f"{BEGIN}\nexport PATH=x\n", block(LINE), tmp_path / ".zprofile")


def test_rc_file_per_shell(tmp_path: Path) -> None:
    assert rc_file("/bin/zsh", tmp_path) == tmp_path / ".zprofile"
    assert rc_file("/opt/homebrew/bin/bash", tmp_path) == tmp_path / ".bash_profile"
    with pytest.raises(ConfigError, match="fish"):
        rc_file("/opt/homebrew/bin/fish", tmp_path)


def test_nothing_is_written_without_the_flag(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from test_mac_recorded import RecordedSystem, scenario

    from archlock.mac.cli import Request, setup
    from archlock.mac.envinfo import LockFacts, MacEnv
    from archlock.mac.host import detect
    from archlock.mac.plan import Options

    home = tmp_path / "home"
    home.mkdir()
    (home / ".zprofile").write_text("export EDITOR=vim\n", encoding="utf-8")
    system = RecordedSystem(scenario("rosetta_python"), home=str(home))
    env = MacEnv("macos-arm64", "3.11", "14.0", tmp_path / "lock.txt", None)
    request = Request(Options(project=Path("/Users/ada/proj"), venv=Path("/Users/ada/proj/.venv")))
    assert setup(system, detect(system), env, LockFacts({"torch": "2.10.0"}, None), request) == 0
    assert 'export PATH="/opt/homebrew/bin:$PATH"' in capsys.readouterr().out  # printed ...
    assert sorted(p.name for p in home.iterdir()) == [".zprofile"]  # ... but nothing written
    assert (home / ".zprofile").read_text(encoding="utf-8") == "export EDITOR=vim\n"
