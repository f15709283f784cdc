"""Unit tests start no process and open no connection: an autouse guard makes every way out
(subprocess, os.system / fork / spawn, socket connect and name lookups) fail the test that
tries it. Tests that need a real process or the network live in tests/integration."""

from __future__ import annotations

import os
import platform
import socket
import subprocess
from collections.abc import Iterator
from typing import Any, NoReturn

import pytest

# platform.processor() runs `uname -p` the first time it is asked (suite_device.device_name
# asks): ask once here, before any test, so the answer is cached and no test starts that process.
platform.processor()

WHERE = "move the test to tests/integration (marked integration), or stand in for the answer"


def _refuse(what: str) -> Any:
    def refuse(*args: Any, **kwargs: Any) -> NoReturn:
        raise AssertionError(f"a unit test tried to {what}: {WHERE}")

    return refuse


@pytest.fixture(autouse=True)
def no_processes_or_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(subprocess.Popen, "__init__", _refuse("start a process"))
    for name in ("system", "fork", "forkpty", "posix_spawn", "posix_spawnp", "execv", "execve"):
        if hasattr(os, name):
            monkeypatch.setattr(os, name, _refuse(f"call os.{name}"))
    monkeypatch.setattr(socket.socket, "connect", _refuse("open a connection"))
    monkeypatch.setattr(socket.socket, "connect_ex", _refuse("open a connection"))
    monkeypatch.setattr(socket, "getaddrinfo", _refuse("look up a host name"))
    yield
