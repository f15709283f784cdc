"""Off macOS, setup-mac refuses in one line and names the session to use instead. These run
for real on this (Linux) machine: no recorded answers."""

from __future__ import annotations

import sys

import pytest

from archlock.mac.host import detect
from archlock.mac.system import HostSystem

REFUSAL = "setup-mac is for macOS on Apple Silicon and this host runs Linux"

pytestmark = pytest.mark.skipif(
    sys.platform != "linux", reason="host-lacks: a Linux host (these check the refusal there)"
)


def test_the_real_host_is_not_a_mac() -> None:
    facts = detect(HostSystem())
    assert (
        facts.os_name == "Linux"
        and not facts.apple_silicon
        and not facts.translated
        and facts.macos is None
    )


def test_archlock_cli_refuses_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    from archlock.cli import main

    assert main(["setup-mac"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1 and REFUSAL in lines[0] and "use `nox -s verify`" in lines[0]


