"""The project's own run ([tool.archlock.verify]): settings, judging, metric, matrix rows."""

from __future__ import annotations

import argparse
import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

from archlock.core import docker as du
from archlock.core import proc
from archlock.core.project import Project
from archlock.errors import CheckFailed, ConfigError
from archlock.verify import matrix, runs
from archlock.verify.matrixtable import build_table, metric_disagreements
from archlock.verify.targets import HostTarget, ImageTarget

LOSS = re.compile(r"loss ([0-9.]+)")


def project(tmp_path: Path, verify: str) -> Project:
    (tmp_path / "requirements.txt").write_text("numpy\n")
    (tmp_path / "pyproject.toml").write_text("[tool.archlock.verify]\n" + verify)
    return Project.load(tmp_path)


def outcome(out: str = "", code: int | None = 0, timed_out: bool = False) -> proc.Result:
    return proc.Result(("python", "train.py"), code, out, "", timed_out, 1.5, 60.0)


SETTINGS = runs.RunSettings(("python train.py",), LOSS, 1e-3, 60.0)


# -- settings ---------------------------------------------------------------------------------
def test_settings_defaults_and_values(tmp_path: Path) -> None:
    read = runs.load(
        project(tmp_path, 'run = ["python train.py --steps 5"]\nmetric = "loss ([0-9.]+)"\n')
    )
    assert read.commands == ("python train.py --steps 5",)
    assert read.metric and read.metric.pattern == "loss ([0-9.]+)"
    assert (read.tolerance, read.timeout) == (1e-3, 900.0)


@pytest.mark.parametrize(
    ("verify", "message"),
    [
        (
            'metric = "loss [0-9.]+"\n',
            r"metric: 'loss \[0-9.\]\+' captures nothing \(fix: put the number",
        ),
        ('metric = "loss ([0-9.]+"\n', r"metric: .* is not a regex"),
        ('run = ["python \'train.py"]\n', r"run: .*: No closing quotation"),
        ('run = ["  "]\n', r"run: an empty command"),
        ('run = "python train.py"\n', r"run: must be a list of strings"),
        ("timeout = 0\n", r"timeout > 0"),
        ("mertic = 'x'\n", r"mertic: unknown key \(fix: did you mean 'metric'\?\)"),
    ],
)
def test_bad_settings_name_pyproject_the_key_and_the_fix(
    tmp_path: Path, verify: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        runs.load(project(tmp_path, verify))
    assert "pyproject.toml" in str(caught.value)


# -- metric and judging -----------------------------------------------------------------------
def test_the_metric_is_the_last_matching_line() -> None:
    assert runs.extract_metric("step 1 loss 2.5\nstep 2 loss 1.25\ndone\n", LOSS) == 1.25
    assert runs.extract_metric("nothing here\n", LOSS) is None
    assert runs.extract_metric("loss .\n", LOSS) is None  # a match that is not a number


def test_a_passing_run_records_exit_duration_tail_and_metric() -> None:
    check = runs.judge("python train.py", outcome("loss 3.0\nloss 1.5\n"), SETTINGS)
    assert check["status"] == "pass"
    assert (check["exit"], check["duration"], check["metric"]) == (0, 1.5, 1.5)
    assert check["tail"] == "loss 3.0\nloss 1.5"
    assert check["summary"] == "exit 0, 1.5 s, metric 1.5"


def test_failing_hanging_and_silent_runs_fail_with_their_reason() -> None:
    crashed = runs.judge("python train.py", outcome("loss 3.0\nValueError: boom\n", 1), SETTINGS)
    assert (crashed["status"], crashed["why"]) == ("fail", "exited 1: ValueError: boom")
    assert "ValueError: boom" in crashed["tail"] and "python train.py" in crashed["fix"]
    hung = runs.judge("python train.py", outcome("loss 3.0\n", None, timed_out=True), SETTINGS)
    assert hung["why"] == "timed out after 60 s: loss 3.0" and "timeout" in hung["fix"]
    silent = runs.judge("python train.py", outcome("done\n"), SETTINGS)
    assert silent["status"] == "fail" and "no number matching 'loss ([0-9.]+)'" in silent["why"]


def test_agreement_is_relative_above_one_and_absolute_below() -> None:
    ok, diff = runs.agree(100.0, 100.05, 1e-3)
    assert ok is True and diff == pytest.approx(5e-4, rel=1e-3)
    assert runs.agree(100.0, 100.2, 1e-3)[0] is False
    assert runs.agree(0.0001, 0.0002, 1e-3)[0] is True  # near zero: absolute
    assert runs.agree(float("nan"), 1.0, 1.0)[0] is False


# -- matrix -----------------------------------------------------------------------------------
def result(env: str, metric: float | None, status: str = "pass") -> dict[str, Any]:
    run = {
        "status": status,
        "why": "exited 0",
        "command": "python train.py",
        "metric": metric,
        "tolerance": 1e-3,
    }
    if status == "pass":
        run["summary"] = f"exit 0, 1.0 s, metric {metric:g}" if metric is not None else "exit 0"
    return {
        "schema": "archlock.verify/1",
        "env": env,
        "mode": "image",
        "status": status,
        "device": "cpu",
        "host": {"description": "Debian 12"},
        "checks": {"run_1": run},
    }


def test_matrix_has_a_row_per_run_and_one_comparing_the_metric() -> None:
    items = [("a", result("linux-amd64-cuda", 1.2345)), ("b", result("linux-arm64-cpu", 1.2346))]
    columns, rows = build_table(items)
    by_check = {row.check: row for row in rows}
    assert by_check["run_1"].label == "run: python train.py"
    assert [c.text for c in by_check["run_1"].cells] == [
        "pass (exit 0, 1.0 s, metric 1.2345)"
    ] * 1 + ["pass (exit 0, 1.0 s, metric 1.2346)"]
    cells = by_check["run_1_metric"].cells
    assert cells[0].text == "reference (1.2345)"
    assert cells[1].status == "pass" and "vs linux-amd64-cuda (image)" in cells[1].text
    assert metric_disagreements(columns, rows) == []


def test_matrix_fails_after_writing_when_the_metric_differs(tmp_path: Path) -> None:
    folder = tmp_path / "results"
    folder.mkdir()
    for item in (
        result("linux-amd64-cuda", 1.2345),
        result("linux-arm64-cpu", 1.5),
        result("z", None, "fail"),
    ):
        (folder / f"{item['env']}.json").write_text(json.dumps(item))
    args = argparse.Namespace(project=tmp_path, results=None, markdown=None, html=None, check=False)
    with pytest.raises(
        CheckFailed, match=r"linux-arm64-cpu \(image\): same metric .*: 1.5 vs 1.2345"
    ):
        matrix.run(args)
    assert (folder / "matrix.md").is_file()
    text = (folder / "matrix.md").read_text()
    assert (
        "| same metric as other envs: python train.py | reference (1.2345) | fail: 1.5 vs" in text
    )


def test_an_image_run_is_a_named_container_removed_when_it_hangs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[list[str]] = []

    def fake_run(argv: list[str], **_: object) -> proc.Result:
        calls.append(list(argv))
        return outcome("loss 1.0\n", None, timed_out=len(calls) == 1)

    monkeypatch.setattr(du, "engine", lambda: du.Engine("docker", "docker"))
    monkeypatch.setattr(proc, "run", fake_run)  # under archlock.core.docker's container runner
    target = ImageTarget("app:it", "linux/arm64", "sha256:1", Path("/s"), gpus=True)
    check = runs.run_checks(SETTINGS, Path("/p"), target)["run_1"]
    first, second = calls
    name = next(w for w in first if w.startswith("--name=")).removeprefix("--name=")
    assert first[:3] == ["docker", "run", "--rm"] and name.startswith("archlock-run-")
    assert first[first.index("--platform") + 1] == "linux/arm64" and "--gpus" in first
    assert first[-4:] == ["app:it", "/bin/sh", "-c", "python train.py"]
    assert second == ["docker", "rm", "--force", name]
    assert check["status"] == "fail" and check["why"].startswith("timed out after 60 s")


# -- shell semantics --------------------------------------------------------------------------
def test_a_run_is_one_shell_command_line_on_the_host_and_in_an_image(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`&&`, pipes and quotes reach /bin/sh whole (prepare.py once got `&& ...` as arguments)."""
    calls: list[tuple[list[str], dict[str, object]]] = []

    def fake_run(argv: list[str], **options: object) -> proc.Result:
        calls.append((list(argv), options))
        return outcome("loss 1.0\n")

    monkeypatch.setattr(du, "engine", lambda: du.Engine("docker", "docker"))
    monkeypatch.setattr(proc, "run", fake_run)
    line = "python a.py && python b.py --name 'x y' | tee \"$OUT\""
    settings = runs.RunSettings((line,), LOSS, 1e-3, 60.0)
    host = HostTarget(Path("/venv/bin/python"))
    image = ImageTarget("app:it", "linux/amd64", "sha256:1", Path("/s"))
    assert runs.run_checks(settings, Path("/p"), host)["run_1"]["status"] == "pass"
    assert runs.run_checks(settings, Path("/p"), image)["run_1"]["status"] == "pass"
    (on_host, host_options), (in_image, image_options) = calls
    assert on_host == ["/bin/sh", "-c", line] and in_image[-3:] == on_host
    assert host_options["merge_stderr"] is True and image_options["merge_stderr"] is True
    env = host_options["env"]
    assert isinstance(env, dict) and env["PATH"].startswith("/venv/bin" + os.pathsep)


@pytest.mark.parametrize(
    ("last_line", "named"),
    [
        ("sh: 1: no-such-trainer: not found", "no-such-trainer"),  # dash
        ("/bin/sh: line 1: no-such-trainer: command not found", "no-such-trainer"),  # bash as sh
        ("sh: no-such-trainer: not found", "no-such-trainer"),  # busybox
    ],
)
def test_a_command_the_shell_cannot_find_is_named_in_the_fix(last_line: str, named: str) -> None:
    check = runs.judge("python a.py && no-such-trainer", outcome(last_line + "\n", 127), SETTINGS)
    assert check["status"] == "fail" and check["why"] == f"exited 127: {last_line}"
    assert check["fix"].startswith(f"add {named} to what the env locks")
    other = runs.judge("python a.py", outcome("Traceback ...\nKeyError: 1\n", 1), SETTINGS)
    assert other["fix"].startswith("run `python a.py` in this env and fix it")
