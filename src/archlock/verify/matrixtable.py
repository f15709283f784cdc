"""The matrix as a table: one column per verify result, one row per feature.

Rows: the suite's and verify's checks (FEATURES), "same losses as the CPU reference" (each env's
training losses against a CPU run's, within the env device's tolerance), and per project run
(`[tool.archlock.verify] run`) its outcome and, with a metric, the metric against the first env's.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from archlock.inenv.suite import LOSS_TOLERANCE
from archlock.verify import runs

CROSS_ENV_CHECK = "cross_env_losses"
RUN_CHECK_RE = re.compile(r"^run_([0-9]+)$")  # the project's own runs ([tool.archlock.verify])
# Envs on different CPUs (x86 AVX vs arm NEON) may sum in other orders: a little slack on CPU.
CROSS_ENV_CPU_TOLERANCE = 1e-4

# (row label, check name in a verify result)
FEATURES: tuple[tuple[str, str], ...] = (
    ("device", "device"),
    ("training", "training"),
    ("SDPA / flash", "sdpa"),
    ("torch.compile", "compile"),
    ("autocast", "autocast"),
    ("distributed backend", "distributed"),
    ("loss parity vs CPU", "loss_parity"),
    ("checkpoint device -> CPU", "checkpoint"),
    ("native binaries", "native_binaries"),
    ("packages import", "imports"),
    ("torch build", "torch_build"),
    ("no Rosetta / emulation surprise", "emulation"),
)
# What a passing cell shows next to "pass", from the suite's facts for that check.
SUITE_FACTS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "sdpa": lambda raw: raw.get("kernel"),
    "compile": lambda raw: raw.get("backend"),
    "autocast": lambda raw: raw.get("dtype"),
    "distributed": lambda raw: raw.get("backend"),
    "loss_parity": lambda raw: (
        f"within {raw['tolerance']:g}" if isinstance(raw.get("tolerance"), int | float) else None
    ),
}


@dataclass(frozen=True)
class Cell:
    status: str  # pass | fail | skipped | missing
    text: str  # one line: status word plus facts or the reason
    why: str


@dataclass(frozen=True)
class Column:
    key: str
    env: str
    mode: str
    device: str
    host: str
    created: str
    source: str  # the result file's name
    status: str
    image: str = ""  # digest (repo@sha256:...) or image id; "" for a host venv
    lock: str = ""  # lock path and sha256
    runner: str = ""
    hardware: str = ""


@dataclass(frozen=True)
class Row:
    label: str
    check: str
    cells: tuple[Cell, ...]


def shown_facts(result: dict[str, Any], check: str, found: dict[str, Any]) -> str | None:
    """The few words a passing cell shows: the check's own summary, else the suite's facts."""
    if found.get("summary"):
        return str(found["summary"])
    if check in ("device", "training"):
        return result.get("device")
    raw = ((result.get("suite") or {}).get("checks") or {}).get(check) or {}
    fact = SUITE_FACTS[check](raw) if check in SUITE_FACTS else None
    return str(fact) if fact else None


def make_cell(result: dict[str, Any], check: str) -> Cell:
    found = (result.get("checks") or {}).get(check)
    if not found:
        return Cell("missing", "not run", "this result has no such check")
    status, why = found["status"], found.get("why", "")
    if status == "skipped":
        return Cell(status, f"skipped: {why}", why)
    if status != "pass":
        return Cell(status, f"fail: {why}", why)
    shown = shown_facts(result, check, found)
    return Cell(status, f"pass ({shown})" if shown else "pass", why)


def make_column(source: str, result: dict[str, Any]) -> Column:
    mode = result.get("mode", "host")
    image = result.get("image") or {}
    where = f"image {image.get('tag')}" if mode == "image" else "host venv"
    host = f"{(result.get('host') or {}).get('description', '?')} [{where}]"
    key = result["env"] + (" (image)" if mode == "image" else "")
    return Column(
        key,
        result["env"],
        mode,
        result.get("device") or "?",
        host,
        result.get("created", "?"),
        source,
        result.get("status", "?"),
        image=(image.get("digest") or image.get("id") or "") if mode == "image" else "host venv",
        lock=lock_text(result.get("lock") or {}),
        runner=runner_text(result.get("runner") or {}),
        hardware=hardware_text(result.get("hardware") or {}),
    )


def lock_text(lock: dict[str, Any]) -> str:
    sha = lock.get("sha256")
    return f"{lock.get('path', '?')} sha256:{sha}" if sha else str(lock.get("path", "?"))


def runner_text(runner: dict[str, Any]) -> str:
    if not runner:
        return "?"
    extra = ", ".join(
        str(v) for v in (runner.get("kind"), runner.get("os"), runner.get("arch")) if v
    )
    return f"{runner.get('name')} ({extra})" if extra else str(runner.get("name"))


def hardware_text(hardware: dict[str, Any]) -> str:
    parts = [hardware.get("cpu") or "CPU ?"]
    parts += list(hardware.get("gpus") or []) or ["no GPU"]
    if hardware.get("nvidia_driver"):
        parts.append(f"NVIDIA driver {hardware['nvidia_driver']}")
    if hardware.get("macos"):
        parts.append(f"macOS {hardware['macos']}")
    if hardware.get("vm") is not None:
        parts.append("virtual machine" if hardware["vm"] else "bare metal")
    return ", ".join(str(part) for part in parts) if hardware else "?"


def training_losses(result: dict[str, Any]) -> list[float] | None:
    losses = (((result.get("suite") or {}).get("checks") or {}).get("training") or {}).get("losses")
    return losses if isinstance(losses, list) and losses else None


def finite_losses(result: dict[str, Any]) -> list[float] | None:
    losses = training_losses(result)
    return losses if losses and all(math.isfinite(x) for x in losses) else None


def tolerance(device: str | None, ref_device: str | None = "cpu") -> float:
    """Relative per-step loss tolerance of an env on `device` against the reference."""
    return max(
        LOSS_TOLERANCE.get(device or "cpu", 1e-3),
        LOSS_TOLERANCE.get(ref_device or "cpu", 1e-3),
        CROSS_ENV_CPU_TOLERANCE,
    )


def cross_env_cell(result: dict[str, Any], reference: tuple[str, dict[str, Any]] | None) -> Cell:
    """This env's training losses against the CPU reference's: one run, the same numbers."""
    losses = training_losses(result)
    if losses is None:
        return Cell("missing", "not run", "no training losses in this result")
    if finite_losses(result) is None:
        return Cell("fail", "fail: training losses hold NaN or Infinity", "the training diverged")
    if reference is None:
        return Cell("missing", "not run", "no other env with finite losses")
    ref_key, ref = reference
    ref_losses = training_losses(ref) or []
    if result is ref:
        return Cell("pass", f"reference (final loss {losses[-1]:.6f})", "the first env with losses")
    worst = max(
        abs(a - b) / max(abs(b), 1e-12) for a, b in zip(losses, ref_losses, strict=False)
    )  # lengths compared below
    limit = tolerance(result.get("device"), ref.get("device"))
    why = f"max relative difference {worst:.1e} from {ref_key} (tolerance {limit:g})"
    if len(losses) != len(ref_losses) or worst > limit:
        return Cell("fail", f"fail: {why}", why)
    return Cell("pass", f"pass ({worst:.1e} vs {ref_key})", why)


def reference_result(
    ordered: list[tuple[str, dict[str, Any]]], columns: list[Column]
) -> tuple[str, dict[str, Any]] | None:
    """The CPU reference: a native CPU run first, then an emulated one, then any with losses."""
    with_losses = [
        (c.key, r) for c, (_, r) in zip(columns, ordered, strict=True) if finite_losses(r)
    ]

    def rank(item: tuple[str, dict[str, Any]]) -> int:
        result = item[1]
        on_cpu = result.get("device") == "cpu"
        emulated = bool((result.get("host") or {}).get("emulated"))
        return 0 if on_cpu and not emulated else 1 if on_cpu else 2

    return min(with_losses, key=rank) if with_losses else None


def cross_env_row(ordered: list[tuple[str, dict[str, Any]]], columns: list[Column]) -> Row:
    reference = reference_result(ordered, columns)
    return Row(
        "same losses as the CPU reference",
        CROSS_ENV_CHECK,
        tuple(cross_env_cell(r, reference) for _, r in ordered),
    )


def run_names(ordered: list[tuple[str, dict[str, Any]]]) -> list[str]:
    names = {n for _, r in ordered for n in (r.get("checks") or {}) if RUN_CHECK_RE.match(n)}
    return sorted(names, key=lambda n: int(n.split("_")[1]))


def run_facts(result: dict[str, Any], name: str) -> dict[str, Any]:
    return (result.get("checks") or {}).get(name) or {}


def metric_cell(
    result: dict[str, Any], name: str, reference: tuple[str, dict[str, Any]] | None
) -> Cell:
    """This env's metric of run `name` against the first env's, within the stated tolerance."""
    value = run_facts(result, name).get("metric")
    if value is None or reference is None:
        return Cell("missing", "not run", "no metric from this run in this result")
    ref_key, ref = reference
    if result is ref:
        return Cell("pass", f"reference ({value:g})", "the first env with this metric")
    ref_value = run_facts(ref, name)["metric"]
    tolerance = max(run_facts(r, name).get("tolerance") or 0.0 for r in (result, ref))
    ok, diff = runs.agree(value, ref_value, tolerance)
    why = f"{value:g} vs {ref_value:g} from {ref_key}: differs by {diff:.1e}"
    why += f" (tolerance {tolerance:g})"
    if not ok:
        return Cell("fail", f"fail: {why}", why)
    return Cell("pass", f"pass ({value:g}, {diff:.1e} vs {ref_key})", why)


def run_rows(ordered: list[tuple[str, dict[str, Any]]], columns: list[Column]) -> list[Row]:
    """Per run: its outcome in each env, and (with a metric) the metric against the first env."""
    rows = []
    for name in run_names(ordered):
        command = next(run_facts(r, name).get("command") for _, r in ordered if run_facts(r, name))
        rows.append(Row(f"run: {command}", name, tuple(make_cell(r, name) for _, r in ordered)))
        with_metric = [
            (c.key, r)
            for c, (_, r) in zip(columns, ordered, strict=True)
            if run_facts(r, name).get("metric") is not None
        ]
        if with_metric:
            cells = tuple(metric_cell(r, name, with_metric[0]) for _, r in ordered)
            rows.append(Row(f"same metric as other envs: {command}", f"{name}_metric", cells))
    return rows


def distinct_keys(columns: list[Column]) -> list[Column]:
    """Two results of one env and target (two images of an env, a host result copied in twice)
    are two columns: each shared key gets its image digest's first hex digits, else its file."""
    counts: dict[str, int] = {}
    for column in columns:
        counts[column.key] = counts.get(column.key, 0) + 1
    return [
        column
        if counts[column.key] == 1
        else dataclasses.replace(column, key=f"{column.key} {short_ref(column)}")
        for column in columns
    ]


def short_ref(column: Column) -> str:
    digest = re.search(r"sha256:([0-9a-f]{12})", column.image)
    return f"sha256:{digest.group(1)}" if digest else column.source


def build_table(results: list[tuple[str, dict[str, Any]]]) -> tuple[list[Column], list[Row]]:
    ordered = sorted(
        results, key=lambda item: (item[1]["env"], item[1].get("mode", "host"), item[0])
    )
    columns = distinct_keys([make_column(source, result) for source, result in ordered])
    rows = [
        Row(label, check, tuple(make_cell(r, check) for _, r in ordered))
        for label, check in FEATURES
    ]
    rows.insert(7, cross_env_row(ordered, columns))
    return columns, rows + run_rows(ordered, columns)


def metric_disagreements(columns: list[Column], rows: list[Row]) -> list[str]:
    """`<env>: <why>` for every env whose own metric differs from the reference env's."""
    return [
        f"{column.key}: {row.label}: {cell.why}"
        for row in rows
        if row.check.endswith("_metric")
        for column, cell in zip(columns, row.cells, strict=True)
        if cell.status == "fail"
    ]


def reference_key(rows: list[Row], columns: list[Column]) -> str | None:
    cross = next((row for row in rows if row.check == CROSS_ENV_CHECK), None)
    for column, cell in zip(columns, cross.cells if cross else (), strict=False):
        if cell.text.startswith("reference"):
            return column.key
    return None
