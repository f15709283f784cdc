"""Command-line arguments: generated argv for the verbs that need no network, docker or torch
run in-process; each ends in an exit code with at most one error line, never a traceback, and
a run that fails changes no file. A few real runs check the console entry point itself."""

from __future__ import annotations

import io
import os
import shutil
import signal
import subprocess
import sys
import time
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest
from fuzz_support import COUNTS, attempt, examples, flag, scratch, tree_state
from hypothesis import given, settings
from hypothesis import strategies as st

from archlock import cli
from archlock.core import docker as du

REPO = Path(__file__).resolve().parents[2]
PROJECT = scratch("cli")
for name in ("pyproject.toml", "uv.lock", "envs", "docker", ".github"):
    source = REPO / name
    if source.is_dir():
        shutil.copytree(source, PROJECT / name)
    elif source.is_file():
        shutil.copy2(source, PROJECT / name)
REPORT = PROJECT / "report.json"  # a copy: a generated --output may name it
shutil.copy2(REPO / "tests" / "fixtures" / "reports" / "linux-amd64-venv.json", REPORT)
(PROJECT / "a-folder").mkdir()
(PROJECT / "a-file").write_text("x")

VALUES = st.sampled_from(
    [
        "",
        "-5",
        "0",
        "1e999",
        "nan",
        "x",
        "linux-amd64-cuda",
        "linux-arm64-cpu",
        "nope",
        "json",
        "text",
        "sarif",
        "error",
        "warning",
        "never",
        "a-folder",
        "a-file/below",
        "missing/dir/out.json",
        "/dev/null",
        "out.json",
        "\n",
        "3.11\n",
        "--",
        "-",
        "../outside",
        "a-folder/",
        str(REPORT),
        "/proc/self/mem",
        "/proc/x/r.json",
    ]
)
VERBS = {
    "audit": ["--env", "--format", "--output", "--strict"],
    "render": ["--check", "--workflow-dir"],
    "scan": ["--format", "--output", "--fail-on", "PATH"],
    "matrix": ["--results", "--markdown", "--html", "--check"],
    "repro": [
        "REPORT",
        "--diff-only",
        "--env",
        "--json",
        "--markdown",
        "--timeout",
        "--bisect",
        "--trial-timeout",
        "--bisect-timeout",
    ],
    "schema": ["--check"],
}
SWITCHES = {"--strict", "--check", "--diff-only", "--bisect"}
REQUIRED = {"render": ["--check"], "schema": ["--check"], "repro": ["--diff-only"]}


@st.composite
def argvs(draw: st.DrawFn) -> list[str]:
    verb = draw(st.sampled_from(sorted(VERBS)))
    argv = [verb, *REQUIRED.get(verb, [])]
    for option in draw(st.lists(st.sampled_from(VERBS[verb]), max_size=4)):
        if option in SWITCHES:
            argv.append(option)
        elif option in ("PATH", "REPORT"):
            argv.append(draw(VALUES))
        else:
            argv += [option, draw(VALUES)]
    if verb == "repro" and draw(st.booleans()):
        argv.insert(1, str(REPORT))
    return argv


def run_in_process(argv: list[str]) -> tuple[int, str]:
    err = io.StringIO()
    with redirect_stdout(io.StringIO()), redirect_stderr(err):
        try:
            code = cli.main(["--project", str(PROJECT), *argv])
        except SystemExit as exc:  # argparse's usage errors
            code = exc.code if isinstance(exc.code, int) else 2
    return code, err.getvalue()


@settings(max_examples=examples(250))
@given(argvs())
def test_generated_command_lines(argv: list[str]) -> None:
    cwd = os.getcwd()
    os.chdir(PROJECT)
    try:
        before = tree_state(PROJECT)
        outcome, _ = attempt("cli", lambda: run_in_process(argv))
        after = tree_state(PROJECT)
    finally:
        os.chdir(cwd)
    if outcome is None:
        return
    code, err = outcome
    flag("cli", "traceback printed", "Traceback" not in err, (argv, err))
    if argv[0] == "render" and "--workflow-dir" in argv:
        value = argv[argv.index("--workflow-dir") + 1]
        if not du.REL_PATH_RE.fullmatch(value):
            flag("cli", "bad --workflow-dir not a usage error", code == 2, (argv, code, err))
    if code != 0:
        errors = [line for line in err.splitlines() if ": error:" in line]
        flag("cli", "several error lines", len(errors) <= 1, (argv, err))
        changed = {name for name in set(before) | set(after) if before.get(name) != after.get(name)}
        flag("cli", "written on failure", not changed, (argv, changed))


def real_run(*argv: str, interrupt_after: float | None = None) -> subprocess.CompletedProcess[str]:
    """The console entry point as users start it (a new interpreter), optionally sent SIGINT."""
    COUNTS["cli-real"] += 1
    command = [
        sys.executable,
        "-c",
        "import sys; from archlock.cli import main; sys.exit(main())",
        *argv,
    ]
    child = subprocess.Popen(
        command, cwd=PROJECT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    if interrupt_after is not None:
        time.sleep(interrupt_after)
        child.send_signal(signal.SIGINT)
    out, err = child.communicate(timeout=120)
    return subprocess.CompletedProcess(command, child.returncode, out, err)


@pytest.mark.parametrize(
    "argv",
    [
        ["audit", "--output", "a-folder"],
        ["scan", "--output", "a-file/below"],
        ["render", "--check", "--workflow-dir", "x\n"],
        ["repro", str(REPORT), "--diff-only", "--json", "a-folder"],
        ["matrix", "--results", "/dev/null"],
    ],
)
def test_real_runs_of_bad_input(argv: list[str]) -> None:
    done = real_run(*argv)
    flag("cli-real", "traceback printed", "Traceback" not in done.stderr, done.stderr)
    flag("cli-real", "exit 0 on bad input", done.returncode != 0, done.returncode)


@pytest.mark.integration
@pytest.mark.parametrize("delay", [0.03, 0.06, 0.1, 0.2, 0.4])
def test_interrupt_while_starting(delay: float) -> None:
    done = real_run("schema", "--check", interrupt_after=delay)
    flag("cli-real", "traceback on interrupt", "Traceback" not in done.stderr, done.stderr)
    flag(
        "cli-real",
        "interrupt exit code",
        done.returncode in (0, 130, -signal.SIGINT),
        done.returncode,
    )
