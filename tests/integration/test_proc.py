"""The one process runner, with real children: time limits kill the whole group."""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import sys
import tarfile
import threading
import time
from pathlib import Path

import pytest
from endtoend import gone

from archlock.build import reproducible
from archlock.core import proc
from archlock.errors import ToolMissingError

pytestmark = pytest.mark.integration


def test_a_hung_child_and_its_grandchild_are_killed_at_the_limit(tmp_path) -> None:
    pidfile = tmp_path / "grandchild.pid"
    started = time.monotonic()
    result = proc.run(
        ["sh", "-c", f"echo partial; sleep 60 & echo $! > {pidfile}; wait"], timeout=1
    )
    assert time.monotonic() - started < 10
    assert result.timed_out and result.returncode is None and not result.ok
    assert result.stdout.strip() == "partial"
    assert result.why() == "timed out after 1 s: partial"
    grandchild = int(pidfile.read_text())
    assert gone(grandchild)


def test_a_grandchild_that_ignores_sigterm_goes_too_when_the_leader_obeys(tmp_path) -> None:
    """The leader exits at SIGTERM; its grandchild ignores it and holds the output pipe. The
    group killer sends SIGKILL to what is left, so the run ends and nothing stays behind."""
    pidfile = tmp_path / "stubborn.pid"
    script = (
        f"sh -c 'trap \"\" TERM; echo $$ > {pidfile}; while :; do sleep 1; done' & "
        "trap 'exit 0' TERM; while :; do sleep 1; done"
    )
    results: list[proc.Result] = []
    run = threading.Thread(
        target=lambda: results.append(proc.run(["sh", "-c", script], timeout=1)), daemon=True
    )
    run.start()
    run.join(proc.KILL_GRACE + 20)  # a regression fails here rather than hanging the suite
    stubborn = int(pidfile.read_text())
    try:
        assert results, "the run never ended: the grandchild kept its output pipe open"
        assert results[0].timed_out
        assert gone(stubborn)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(stubborn, signal.SIGKILL)


def test_exit_status_signal_and_tail() -> None:
    result = proc.run(["sh", "-c", "echo out; echo err >&2; exit 3"], timeout=10)
    assert (result.returncode, result.tail(), result.why()) == (3, "out\nerr", "exited 3: err")
    assert proc.run(["sh", "-c", "kill -SEGV $$"], timeout=10).why() == "killed by signal SIGSEGV"
    assert proc.run(["cat"], timeout=10, input="fed").stdout == "fed"


def test_a_missing_executable_is_one_line_with_the_callers_fix() -> None:
    with pytest.raises(
        ToolMissingError, match=r"no-such-tool-x: command not found \(fix: apt-get install x\)"
    ):
        proc.run(["no-such-tool-x"], timeout=5, missing_fix="apt-get install x")


# -- read: a binary stream too big to hold (docker save), handed to a reader ------------------
def saved_archive(layer_bytes: int) -> bytes:
    """A classic `docker save` archive: a big layer first, then the config and the manifest."""
    buffer = io.BytesIO()
    manifest = [{"Config": "c0ffee.json", "RepoTags": ["app:t"], "Layers": ["l1/layer.tar"]}]
    members = {
        "l1/layer.tar": b"\0" * layer_bytes,
        "l1/json": b"{}",
        "c0ffee.json": json.dumps(
            {"architecture": "amd64", "created": "2026-12-04T15:00:00Z"}
        ).encode(),
        "manifest.json": json.dumps(manifest).encode(),
    }
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, body in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
    return buffer.getvalue()


def test_the_saved_stream_yields_the_config_and_layer_paths(tmp_path: Path) -> None:
    archive = tmp_path / "saved.tar"
    archive.write_bytes(saved_archive(3_000_000))
    cat = [
        sys.executable,
        "-c",
        f"import shutil,sys;shutil.copyfileobj(open({str(archive)!r},'rb'),sys.stdout.buffer)",
    ]
    done, saved = proc.read(cat, reproducible._saved_of, timeout=60)
    assert done.ok and saved is not None
    assert saved.layers == ["l1/layer.tar"] and saved.config["architecture"] == "amd64"


def test_a_cut_or_hung_stream_is_a_failed_result_not_a_traceback(tmp_path: Path) -> None:
    archive = tmp_path / "saved.tar"
    archive.write_bytes(saved_archive(3_000_000)[:700_000])
    cut = [
        sys.executable,
        "-c",
        f"import sys;sys.stdout.buffer.write(open({str(archive)!r},'rb').read());sys.exit(3)",
    ]
    done, saved = proc.read(cut, reproducible._saved_of, timeout=60)
    assert saved is None and done.returncode == 3
    hung = [sys.executable, "-c", "import time;time.sleep(60)"]
    done, saved = proc.read(hung, reproducible._saved_of, timeout=1)
    assert saved is None and done.timed_out and "timed out after 1 s" in done.why()
