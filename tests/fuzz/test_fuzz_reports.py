"""Report files (`archlock repro`) and verify result files (`archlock matrix`): any edit to a
real file gives a diagnosis or one ConfigError line; matrix writes both outputs or neither."""

from __future__ import annotations

import copy
import io
import json
import math
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

from fuzz_support import attempt, examples, flag, json_values, scratch, tree_state
from hypothesis import given, settings
from hypothesis import strategies as st

from archlock import cli
from archlock.errors import CheckFailed
from archlock.verify.matrixtable import FEATURES

REPO = Path(__file__).resolve().parents[2]
REPORTS = REPO / "tests" / "fixtures" / "reports"
SCRATCH = scratch("reports")
RECORDED = {
    p.stem: json.loads(p.read_text())
    for p in sorted(REPORTS.glob("*.json"))
    if json.loads(p.read_text()).get("schema", "").startswith("archlock.report/")
}


def paths_in(value: Any, prefix: tuple[Any, ...] = (), depth: int = 0) -> list[tuple[Any, ...]]:
    """Every key path in `value` (list items by index), down to `depth` 5."""
    found = [prefix] if prefix else []
    if depth >= 5:
        return found
    if isinstance(value, dict):
        for key, child in value.items():
            found += paths_in(child, (*prefix, key), depth + 1)
    elif isinstance(value, list):
        for index, child in enumerate(value[:3]):
            found += paths_in(child, (*prefix, index), depth + 1)
    return found


def edited(document: Any, path: tuple[Any, ...], value: Any, drop: bool) -> Any:
    data = copy.deepcopy(document)
    here = data
    for key in path[:-1]:
        here = here[key]
    if drop and isinstance(here, dict):
        here.pop(path[-1], None)
    else:
        here[path[-1]] = value
    return data


def run_cli(*argv: str) -> int:
    with redirect_stdout(io.StringIO()), redirect_stderr(io.StringIO()) as err:
        code = cli.main(list(argv))
    flag("cli", "traceback printed", "Traceback" not in err.getvalue(), err.getvalue())
    return code


REPORT_PATHS = [(name, path) for name, doc in RECORDED.items() for path in paths_in(doc)]


@settings(max_examples=examples(400))
@given(st.sampled_from(REPORT_PATHS), json_values, st.booleans())
def test_edited_reports(where: tuple[str, tuple[Any, ...]], value: Any, drop: bool) -> None:
    name, path = where
    target = SCRATCH / "report.json"
    target.write_text(json.dumps(edited(RECORDED[name], path, value, drop)), encoding="utf-8")
    attempt("report", lambda: run_cli("--project", str(REPO), "repro", str(target), "--diff-only"))


report_text = st.sampled_from(
    [
        "[" * 100_000 + "]" * 100_000,
        '{"schema": "archlock.report/1", "created": 1e400}',
        '{"schema": ' + "9" * 5000 + "}",
        "NaN",
        '"\\ud800"',
        "",
        "\x00",
        "{}",
        "[]",
        "null",
    ]
)


@settings(max_examples=examples(60))
@given(st.one_of(report_text, st.binary(max_size=100).map(lambda b: b.decode("latin-1"))))
def test_report_texts(text: str) -> None:
    target = SCRATCH / "report-text.json"
    target.write_text(text, encoding="utf-8", errors="surrogatepass")
    attempt("report", lambda: run_cli("--project", str(REPO), "repro", str(target), "--diff-only"))


def verify_result(env: str) -> dict[str, Any]:
    checks = {check: {"status": "pass", "why": f"{check} fine"} for _, check in FEATURES}
    checks["run_1"] = {
        "status": "pass",
        "why": "ok",
        "command": "python train.py",
        "metric": 0.5,
        "tolerance": 0.01,
    }
    return {
        "schema": "archlock.verify/1",
        "env": env,
        "mode": "host",
        "status": "pass",
        "device": "cpu",
        "created": "2026-01-01T00:00:00Z",
        "image": None,
        "host": {"description": "Debian 12"},
        "checks": checks,
        "suite": {
            "checks": {"training": {"losses": [1.0, 0.5, 0.25]}, "loss_parity": {"tolerance": 1e-5}}
        },
    }


RESULT_PATHS = paths_in(verify_result("a"))


@settings(max_examples=examples(400))
@given(st.sampled_from(RESULT_PATHS), json_values, st.booleans())
def test_edited_result_files(path: tuple[Any, ...], value: Any, drop: bool) -> None:
    root = SCRATCH / "matrix"
    results = root / "results"
    results.mkdir(parents=True, exist_ok=True)
    (results / "a.json").write_text(json.dumps(verify_result("a")))
    broken = edited(verify_result("b"), path, value, drop)
    (results / "b.json").write_text(json.dumps(broken))  # NaN and Infinity are written as such
    before = tree_state(root)
    code, _ = attempt("result", lambda: run_cli("--project", str(root), "matrix"))
    after = tree_state(root)
    written = {name for name in after if before.get(name) != after[name]}
    if code not in (0, CheckFailed.exit_code):  # refused: nothing may have changed
        flag("result", "written on failure", not written, written)
    else:  # written: both outputs, complete and current
        flag(
            "result",
            "half-written outputs",
            run_cli("--project", str(root), "matrix", "--check") == 0,
        )
    if code == 0:
        losses = broken
        for key in ("suite", "checks", "training", "losses"):
            losses = losses.get(key) if isinstance(losses, dict) else None
        diverged = isinstance(losses, list) and any(
            isinstance(x, float) and not math.isfinite(x) for x in losses
        )
        page = after.get("results/matrix.md", b"").decode()
        flag(
            "result",
            "NaN losses shown as a pass",
            not diverged or "training losses hold NaN" in page,
        )


def test_nan_losses_are_a_failure() -> None:
    root = scratch("nan")
    results = root / "results"
    results.mkdir()
    (results / "a.json").write_text(json.dumps(verify_result("a")))
    diverged = verify_result("b")
    diverged["suite"]["checks"]["training"]["losses"] = [1.0, float("nan"), float("nan")]
    (results / "b.json").write_text(json.dumps(diverged))
    attempt("result", lambda: run_cli("--project", str(root), "matrix"))
    page = (results / "matrix.md").read_text() if (results / "matrix.md").is_file() else ""
    flag("result", "NaN losses shown as a pass", "training losses hold NaN" in page, page)
