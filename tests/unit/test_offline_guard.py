"""The unit tests' guard (tests/unit/conftest.py) really refuses processes and connections."""

from __future__ import annotations

import os
import socket
import subprocess

import pytest


def test_a_process_fails_the_test() -> None:
    with pytest.raises(AssertionError, match="tried to start a process"):
        subprocess.run(["true"], check=False)
    with pytest.raises(AssertionError, match="tried to call os.system"):
        os.system("true")


def test_a_connection_or_a_name_lookup_fails_the_test() -> None:
    with pytest.raises(AssertionError, match="tried to look up a host name"):
        socket.getaddrinfo("example.invalid", 443)
    with socket.socket() as sock, pytest.raises(AssertionError, match="tried to open a connection"):
        sock.connect(("127.0.0.1", 9))
