"""repro --bisect without docker: the drift set, what a trial runs, how its outcome is read, the
verdict in words, the Markdown, and the refusals. The container side is in
tests/integration/test_repro_bisect_live.py."""

from __future__ import annotations

import copy
import itertools
import json
import time
from pathlib import Path
from typing import Any

import pytest

from archlock import cli
from archlock.core.lockfile import pins as lock_pins
from archlock.core.project import Project
from archlock.repro import bisect, markdown, trial
from archlock.repro.ddmin import Outcome, minimize
from archlock.repro.drift import Target
from archlock.repro.driftset import Change, DriftSet, drift_set

REPO = Path(__file__).resolve().parents[2]
REPORTS = REPO / "tests" / "fixtures" / "reports"
PROJECT = Project.load(REPO)


def amd64_target() -> Target:
    env = next(e for e in PROJECT.all_envs() if e.name == "linux-amd64-cuda")
    return Target(
        env=env,
        lock_rel="envs/locks/linux-amd64-cuda.txt",
        lock_sha256="0" * 64,
        pins={"numpy": "1.26.4", "six": "1.16.0", "idna": "3.6", "torch": "2.10.0"},
        project_name="archlock",
    )


def report(**env: str) -> dict[str, Any]:
    doc = json.loads((REPORTS / "linux-amd64-venv.json").read_text())
    doc = copy.deepcopy(doc)
    doc["probe"]["distributions"] = [
        {"name": n, "version": v, "wheel_tags": [], "installer": "uv"}
        for n, v in [
            ("numpy", "2.1.3"),
            ("six", "1.16.0"),
            ("torch", "2.10.0+cpu"),
            ("Rich", "13.0.0"),
            ("archlock", "0.1"),
            ("pip", "24.0"),
        ]
    ]
    doc["probe"]["env"] = env
    doc["probe"]["binaries"]["foreign"] = [{"path": "numpy/core/_x.so", "archs": ["arm64"]}]
    out: dict[str, Any] = doc
    return out


def test_the_drift_set_splits_every_difference_into_one_item() -> None:
    drifts = drift_set(
        report(OMP_NUM_THREADS="3", VIRTUAL_ENV="/home/t/.venv"),
        amd64_target(),
        {"torch": "a local build (+cpu): not on PyPI"},
    )
    assert [c.title for c in drifts.changes] == [
        "idna missing (lock 3.6)",
        "numpy 2.1.3 (lock 1.26.4)",
        "rich 13.0.0 (not in the lock)",
        "OMP_NUM_THREADS=3 (unset in the locked env)",
    ]
    untestable = {c.title: why for c, why in drifts.untestable}
    assert "torch 2.10.0+cpu (lock 2.10.0)" in untestable  # a local build: not on PyPI
    assert "VIRTUAL_ENV=/home/t/.venv (unset in the locked env)" in untestable
    assert any(c.kind == "binary" for c, _ in drifts.untestable)
    assert "Python 3.11 (lock 3.11)" not in untestable
    other = report()
    other["probe"]["python"]["version"] = "3.12.1"
    assert "Python 3.12 (lock 3.11)" in {
        c.title for c, _ in drift_set(other, amd64_target(), {}).untestable
    }
    # the project itself and installers are never drift
    assert not {"archlock", "pip"} & {c.name for c in drifts.changes}
    assert [c.fix for c in drifts.changes] == [
        "uv pip install idna==3.6",
        "uv pip install numpy==1.26.4",
        "uv pip uninstall rich",
        "unset OMP_NUM_THREADS",
    ]


def runner(tmp_path: Path, doc: dict[str, Any]) -> trial.Runner:
    return trial.Runner("abc123", "archlock-repro/x:base-1", "linux/amd64", doc, tmp_path, None)


def test_a_trial_installs_exactly_the_subset_then_runs_the_command(tmp_path: Path) -> None:
    changes = [
        Change("version", "numpy", "2.1.3", "1.26.4"),
        Change("missing", "idna", None, "3.6"),
        Change("env", "OMP_NUM_THREADS", "3", None),
    ]
    box = trial.container(runner(tmp_path, report()), changes, "archlock-bisect-abc123-4")
    assert (box.name, dict(box.labels)) == (
        "archlock-bisect-abc123-4",
        {"io.archlock.repro.bisect": "abc123"},  # cleanup finds it by this label
    )
    assert (box.image, box.platform, box.entrypoint) == (
        "archlock-repro/x:base-1",
        "linux/amd64",
        "sh",
    )
    assert box.env["OMP_NUM_THREADS"] == "3" and box.env["UV_CACHE_DIR"] == "/archlock-uv-cache"
    assert box.mounts[0] == "archlock-bisect-abc123:/archlock-uv-cache"
    assert box.argv[0] == "-c"
    shell = box.argv[1]
    assert "install --quiet --python /opt/venv/bin/python --no-deps numpy==2.1.3" in shell
    assert "uninstall --quiet --python /opt/venv/bin/python idna" in shell
    assert shell.endswith('exec "$@" 2>&1')
    assert box.argv[2:4] == ("sh", "/opt/venv/bin/python")  # then the recorded argv
    args = box.args()  # the one runner's command line
    assert args[:2] == ["run", "--rm"] and "--label" in args
    assert args[args.index("--label") + 1] == "io.archlock.repro.bisect=abc123"
    # the empty subset: the locked env, nothing installed
    assert trial.script([]) == 'exec "$@" 2>&1'


def test_a_trial_outcome_is_the_recorded_signature_or_not() -> None:
    doc = report()
    recorded = doc["command"]["output_tail"]
    code = doc["command"]["exit_code"]
    assert trial.classify(doc, code, recorded, False).outcome is Outcome.FAIL
    assert trial.classify(doc, 0, ["ok"], False).outcome is Outcome.PASS
    other = trial.classify(doc, code, ["KeyError: 'x'"], False)
    assert other.outcome is Outcome.UNRESOLVED and "fails differently" in other.why
    broken = trial.classify(doc, 3, ["× no version", trial.INSTALL_FAILED], False)
    assert broken.outcome is Outcome.UNRESOLVED and "did not install" in broken.why
    assert trial.classify(doc, None, [], True).why == "timed out"


def fake_log(result: Any) -> list[dict[str, Any]]:
    return [
        {
            "trial": t.number,
            "drift": [],
            "outcome": t.outcome.value,
            "exit_code": 1,
            "signature": "",
            "why": "fails the recorded way" if t.outcome is Outcome.FAIL else "the command passes",
            "seconds": 2.0,
        }
        for t in result.trials
    ]


def test_the_verdict_names_the_culprit_what_passes_and_the_fix() -> None:
    items = [
        Change("version", "numpy", "2.1.3", "1.26.4"),
        Change("version", "six", "1.17.0", "1.16.0"),
        Change("env", "OMP_NUM_THREADS", "3", None),
    ]
    result = minimize(items, lambda s: Outcome.FAIL if items[0] in s else Outcome.PASS)
    drifts = DriftSet(tuple(items), ())
    found = bisect.verdict(result, fake_log(result), 41.2, report(), drifts, "uv pip sync x")
    assert found["text"] == (
        "numpy 2.1.3 (lock 1.26.4) alone reproduces the failure; with the locked numpy the "
        f"command passes — {len(result.trials)} trials, 41 s"
    )
    assert found["fix"].startswith("uv pip install numpy==1.26.4 (or sync")
    pair = minimize(items, lambda s: Outcome.FAIL if set(items[1:]) <= set(s) else Outcome.PASS)
    both = bisect.verdict(pair, fake_log(pair), 9, report(), drifts, "uv pip sync x")
    assert both["text"].startswith(
        "six 1.17.0 (lock 1.16.0) and OMP_NUM_THREADS=3 (unset in the locked env) together"
    )
    assert "uv pip install six==1.16.0; unset OMP_NUM_THREADS" in both["fix"]


def test_no_reproduction_names_what_lies_outside_the_packages() -> None:
    doc = report()
    doc["probe"]["gpu"] = {"nvidia_driver": "550.54", "name": "NVIDIA L4"}
    result = minimize([Change("env", "X", "1", None)], lambda s: Outcome.PASS)
    drifts = drift_set(doc, amd64_target(), {})
    found = bisect.verdict(result, fake_log(result), 5, doc, drifts, "sync")
    assert found["status"] == "does-not-reproduce" and "outside the packages" in found["text"]
    shown = "\n".join(found["outside"])
    assert "NVIDIA driver: 550.54, GPU NVIDIA L4" in shown and "kernel 6." in shown
    assert "not replayed: foreign binary numpy/core/_x.so" in shown


def test_the_lock_failing_too_points_at_the_project() -> None:
    result = minimize([Change("env", "X", "1", None)], lambda s: Outcome.FAIL)
    drifts = DriftSet((Change("env", "X", "1", None),), ())
    found = bisect.verdict(result, fake_log(result), 5, report(), drifts, "sync")
    assert found["status"] == "lock-fails" and "the cause is in the project" in found["text"]


def test_markdown_holds_the_drift_the_verdict_and_every_trial() -> None:
    items = [Change("version", "numpy", "2.1.3", "1.26.4"), Change("env", "A", "1|2", None)]
    result = minimize(items, lambda s: Outcome.FAIL if items[0] in s else Outcome.PASS)
    drifts = DriftSet(tuple(items), ())
    log = fake_log(result)
    found = bisect.verdict(result, log, 3, report(), drifts, "sync")
    found.update(bisect.record(result, log, 3, drifts, {"image": "x", "built": False}))
    doc = {
        "report": "r.json",
        "env": "e",
        "matched_by": "m",
        "lock": {"path": "envs/locks/e.txt"},
        "drift": [{"kind": "packages-different", "title": "t", "fix": "f"}],
        "bisect": found,
    }
    text = markdown.render(doc)
    assert "## Which drift breaks it" in text and "alone reproduces the failure" in text
    assert text.count("\n| ") == 2 + len(result.trials)  # header, rule, one row per trial
    assert all(t["phase"] for t in found["trials"]) and found["trial_count"] == len(log)


def test_bisect_refuses_a_report_without_a_failing_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = json.loads((REPORTS / "linux-amd64-venv.json").read_text())
    doc["command"]["exit_code"] = 0
    doc["command"]["output_tail"] = []
    path = tmp_path / "passing.json"
    path.write_text(json.dumps(doc))
    code = cli.main(["--project", str(REPO), "repro", str(path), "--bisect"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert "command.exit_code: the recorded command succeeded" in err
    for other in ("--diff-only", "--venv", "--as-locked"):
        both = cli.main(["--project", str(REPO), "repro", str(path), "--bisect", other])
        assert both == 2 and f"--bisect with {other}" in capsys.readouterr().err


def test_lock_pins_are_read_once() -> None:  # the fixture lock the unit target mirrors
    assert "torch" in lock_pins(PROJECT.env_lock("linux-amd64-cuda").read_text())


def test_an_interrupt_mid_trial_removes_the_run_and_its_new_base(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[str, tuple[str, ...]]] = []
    monkeypatch.setattr(trial, "prepare", lambda r: calls.append(("prepare", (r.run_id,))))

    def cleanup(run_id: str, images: Any = ()) -> None:
        calls.append(("cleanup", (run_id, *images)))

    def interrupted(*args: Any) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr(trial, "cleanup", cleanup)
    monkeypatch.setattr(trial, "run_trial", interrupted)
    drifts = DriftSet((Change("env", "A", "1", None),), ())
    with pytest.raises(KeyboardInterrupt):
        bisect.narrow(runner(tmp_path, report()), drifts, bisect.Limits(), ["new-base"])
    assert calls == [
        ("prepare", ("abc123",)),
        ("cleanup", ("abc123", "new-base")),
        ("cleanup", ("abc123",)),
    ]


def test_the_run_time_limit_ends_the_narrowing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(trial, "prepare", lambda r: None)
    monkeypatch.setattr(trial, "cleanup", lambda run_id, images=(): None)
    items = tuple(Change("env", f"V{i}", "1", None) for i in range(8))

    def slow(runner: Any, subset: Any, number: int, timeout: float) -> trial.Ran:
        assert timeout <= 300
        outcome = Outcome.FAIL if items[5] in subset else Outcome.PASS
        return trial.Ran(outcome, 1, "", "", 1.0)

    monkeypatch.setattr(trial, "run_trial", slow)
    clock = itertools.count(0, 100)
    monkeypatch.setattr(time, "monotonic", lambda: float(next(clock)))
    result, log, _ = bisect.narrow(
        runner(tmp_path, report()), DriftSet(items, ()), bisect.Limits(300, 450), []
    )
    assert result.status == "out-of-time" and not result.complete
    assert items[5] in result.culprits and len(log) < 8
