"""`archlock matrix`: verify results from every env as one feature x env table.

Reads `archlock.verify/1` result files (default `results/*.json`) and writes Markdown and a
static HTML page (default `results/matrix.md`, `results/matrix.html`). Each cell says pass,
fail or skipped with its reason; each column names the host, runner and hardware (GPU model,
driver, macOS version) that produced it, the image digest and the lock's sha256. One row is the
matrix's own: "same losses as the CPU reference" compares each env's training losses with those of
a CPU run (a native one first), within the env device's tolerance (cpu 1e-4 across CPU
architectures, cuda and mps 1e-3), and the page states those tolerances. The project's own runs
(`[tool.archlock.verify] run`) get a row each, and with a metric a second row comparing each
env's number with the first env's within the stated tolerance; a difference there fails
`archlock matrix` (after writing both files).

CI's gate: `--expect ENV` (repeatable) fails naming each expected env without a result, and
`--gate` fails when an env disagrees with the reference or has no losses to compare; both write
the matrix first, so the job summary (`--summary FILE`) shows what is there. `--check` fails when
either file is stale.
"""

from __future__ import annotations

import argparse
import html
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2

from archlock.core.fsutil import GENERATED_MARK, atomic_write_many, current_text, output_file
from archlock.core.jsonsrc import load_json
from archlock.errors import CheckFailed, ConfigError, DriftError
from archlock.inenv.suite import LOSS_TOLERANCE
from archlock.verify import runs

COMMAND = "nox -s matrix  (or: archlock matrix)"
CROSS_ENV_CHECK = "cross_env_losses"
RUN_CHECK_RE = re.compile(r"^run_([0-9]+)$")  # the project's own runs ([tool.archlock.verify])
# Envs on different CPUs (x86 AVX vs arm NEON) may sum in other orders: a little slack on CPU.
CROSS_ENV_CPU_TOLERANCE = 1e-4
VERIFY_SCHEMA = "archlock.verify/1"

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
        "within %g" % raw["tolerance"] if isinstance(raw.get("tolerance"), int | float) else None
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


def load_results(folder: Path) -> list[tuple[str, dict[str, Any]]]:
    if not folder.is_dir():
        raise ConfigError(
            f"{folder}: no results folder", fix="run archlock verify (or nox -s verify) first"
        )
    found = []
    for path in sorted(folder.glob("*.json")):
        data = load_json(path, what="verify result", fix=REDO, allow_nan=True)
        if isinstance(data, dict) and data.get("schema") == VERIFY_SCHEMA:
            check_result(path, data)
            found.append((path.name, data))
    if not found:
        raise ConfigError(
            f"{folder}: no {VERIFY_SCHEMA} result files",
            fix="run archlock verify (or nox -s verify) first",
        )
    return found


REDO = "delete it or re-run archlock verify"
TEXT, NUMBER, FACTS = (str,), (int, float), (dict,)
# what the matrix reads from a result, and its types (None is always accepted but for env)
RESULT_SHAPE: dict[str, tuple[type, ...]] = {
    "env": TEXT,
    "mode": TEXT,
    "image": FACTS,
    "image.tag": TEXT,
    "image.digest": TEXT,
    "lock": FACTS,
    "runner": FACTS,
    "hardware": FACTS,
    "host": FACTS,
    "host.description": TEXT,
    "device": TEXT,
    "created": TEXT,
    "status": TEXT,
    "checks": FACTS,
    "suite": FACTS,
    "suite.checks": FACTS,
}
CHECK_SHAPE: dict[str, tuple[type, ...]] = {
    "status": TEXT,
    "why": TEXT,
    "summary": TEXT,
    "metric": NUMBER,
    "tolerance": NUMBER,
    "command": TEXT,
}


def _value(data: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        data = data.get(part) if isinstance(data, dict) else None
    return data


def _expect(path: Path, key: str, value: Any, types: tuple[type, ...]) -> None:
    if value is not None and (not isinstance(value, types) or isinstance(value, bool)):
        words: dict[type, str] = {str: "a string", dict: "an object"}
        names = "a number" if types == NUMBER else words[types[0]]
        raise ConfigError(
            f"{path}: {key}: expected {names}, found {type(value).__name__}", fix=REDO
        )


def check_result(path: Path, data: dict[str, Any]) -> None:
    """The keys the matrix reads hold the types verify writes: else one line naming the key."""
    if not isinstance(data.get("env"), str):
        raise ConfigError(f"{path}: env: expected the env's name (a string)", fix=REDO)
    for key, types in RESULT_SHAPE.items():
        _expect(path, key, _value(data, key), types)
    for name, found in (data.get("checks") or {}).items():
        _expect(path, f"checks.{name}", found, FACTS)
        for key, types in CHECK_SHAPE.items():
            _expect(path, f"checks.{name}.{key}", (found or {}).get(key), types)
        if found and not isinstance(found.get("status"), str):
            raise ConfigError(f"{path}: checks.{name}.status: missing", fix=REDO)
    for name, raw in (_value(data, "suite.checks") or {}).items():
        _expect(path, f"suite.checks.{name}", raw, FACTS)
    losses = _value(data, "suite.checks.training.losses")
    if losses is not None and not (
        isinstance(losses, list)
        and all(isinstance(x, NUMBER) and not isinstance(x, bool) for x in losses)
    ):
        raise ConfigError(
            f"{path}: suite.checks.training.losses: expected a list of numbers", fix=REDO
        )


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


def tolerance_note(reference: str | None) -> str:
    per_device = ", ".join(f"{d} {tolerance(d):g}" for d in sorted(LOSS_TOLERANCE))
    ref = f"`{reference}`" if reference else "none (no result has training losses)"
    return (
        f"Loss agreement: every env's per-step training losses against the CPU reference {ref}, "
        f"relative tolerance by the env's device: {per_device}."
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
    worst = max(abs(a - b) / max(abs(b), 1e-12) for a, b in zip(losses, ref_losses))
    limit = tolerance(result.get("device"), ref.get("device"))
    why = f"max relative difference {worst:.1e} from {ref_key} (tolerance {limit:g})"
    if len(losses) != len(ref_losses) or worst > limit:
        return Cell("fail", f"fail: {why}", why)
    return Cell("pass", f"pass ({worst:.1e} vs {ref_key})", why)


def reference_result(
    ordered: list[tuple[str, dict[str, Any]]], columns: list[Column]
) -> tuple[str, dict[str, Any]] | None:
    """The CPU reference: a native CPU run first, then an emulated one, then any with losses."""
    with_losses = [(c.key, r) for c, (_, r) in zip(columns, ordered) if finite_losses(r)]

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
    why = f"{value:g} vs {ref_value:g} from {ref_key}: differs by {diff:.1e} (tolerance {tolerance:g})"
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
            for c, (_, r) in zip(columns, ordered)
            if run_facts(r, name).get("metric") is not None
        ]
        if with_metric:
            cells = tuple(metric_cell(r, name, with_metric[0]) for _, r in ordered)
            rows.append(Row(f"same metric as other envs: {command}", f"{name}_metric", cells))
    return rows


def build_table(results: list[tuple[str, dict[str, Any]]]) -> tuple[list[Column], list[Row]]:
    ordered = sorted(results, key=lambda item: (item[1]["env"], item[1].get("mode", "host")))
    columns = [make_column(source, result) for source, result in ordered]
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
        for column, cell in zip(columns, row.cells)
        if cell.status == "fail"
    ]


FACT_ROWS = (
    ("runner", "runner"),
    ("hardware", "hardware"),
    ("image digest", "image"),
    ("lock", "lock"),
)


def reference_key(rows: list[Row], columns: list[Column]) -> str | None:
    cross = next((row for row in rows if row.check == CROSS_ENV_CHECK), None)
    for column, cell in zip(columns, cross.cells if cross else ()):
        if cell.text.startswith("reference"):
            return column.key
    return None


def md_escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(columns: list[Column], rows: list[Row]) -> str:
    lines = [
        f"<!-- {GENERATED_MARK} - do not edit by hand. Regenerate with: {COMMAND} -->",
        "",
        "# Compatibility matrix",
        "",
        "| feature | " + " | ".join(md_escape(c.key) for c in columns) + " |",
        "|---" * (len(columns) + 1) + "|",
        "| produced on | "
        + " | ".join(md_escape(f"{c.host}, {c.created}") for c in columns)
        + " |",
        *(
            f"| {label} | " + " | ".join(md_escape(getattr(c, name) or "-") for c in columns) + " |"
            for label, name in FACT_ROWS
        ),
        "| verify | " + " | ".join(f"**{c.status}**" for c in columns) + " |",
    ]
    for row in rows:
        lines.append(
            f"| {md_escape(row.label)} | "
            + " | ".join(md_escape(cell.text) for cell in row.cells)
            + " |"
        )
    lines += ["", tolerance_note(reference_key(rows, columns)), ""]
    lines += ["Sources: " + ", ".join(f"`{c.source}`" for c in columns), ""]
    return "\n".join(lines)


def template() -> jinja2.Template:
    from archlock.build import render  # the one Jinja environment (HTML templates autoescape)

    return render.environment().get_template("matrix.html.j2")


def render_html(columns: list[Column], rows: list[Row]) -> str:
    header = html.escape(f"{GENERATED_MARK} - do not edit by hand. Regenerate with: {COMMAND}")
    note = tolerance_note(reference_key(rows, columns)).replace("`", "")  # Markdown's quotes
    return template().render(header=header, columns=columns, rows=rows, facts=FACT_ROWS, note=note)


def outputs(args: argparse.Namespace) -> tuple[Path, Path, Path]:
    results = args.results or args.project / "results"
    return results, args.markdown or results / "matrix.md", args.html or results / "matrix.html"


def stale(files: dict[Path, str]) -> list[str]:
    return [str(path) for path, text in files.items() if current_text(path) != text]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "matrix", help="combine verify results into a feature x env matrix (Markdown + HTML)"
    )
    parser.add_argument(
        "--results", type=Path, help="folder of verify result files (default: results/)"
    )
    parser.add_argument(
        "--markdown", type=Path, help="Markdown output (default: results/matrix.md)"
    )
    parser.add_argument("--html", type=Path, help="HTML output (default: results/matrix.html)")
    parser.add_argument(
        "--check", action="store_true", help="fail if the outputs are stale; write nothing"
    )
    parser.add_argument(
        "--expect",
        action="append",
        default=[],
        metavar="ENV",
        help="fail if ENV has no result (repeatable)",
    )
    parser.add_argument(
        "--gate",
        action="store_true",
        help="fail when an env's losses disagree with the CPU reference",
    )
    parser.add_argument(
        "--summary", type=Path, help="also append the Markdown here ($GITHUB_STEP_SUMMARY)"
    )
    parser.set_defaults(func=run)


def missing_envs(expected: list[str], results: list[tuple[str, dict[str, Any]]]) -> list[str]:
    have = {result["env"] for _, result in results}
    return [env for env in expected if env not in have]


def gate_failures(columns: list[Column], rows: list[Row], expected: list[str]) -> list[str]:
    """Envs whose losses disagree with the reference, or expected envs with no losses to compare."""
    cross = next(row for row in rows if row.check == CROSS_ENV_CHECK)
    bad = []
    for column, cell in zip(columns, cross.cells):
        if cell.status == "fail" or (cell.status == "missing" and column.env in expected):
            bad.append(f"{column.key}: {cell.why}")
    return bad


def enforce(
    args: argparse.Namespace,
    folder: Path,
    results: list[tuple[str, dict[str, Any]]],
    table: tuple[list[Column], list[Row]],
) -> None:
    missing = missing_envs(getattr(args, "expect", []), results)
    if missing:
        names = ", ".join(missing)
        raise CheckFailed(
            f"matrix: no result for expected env(s) {names} in {folder}",
            fix="see that env's verify job: it stopped before writing results/<env>.json, "
            "or its artifact was not uploaded",
        )
    bad = gate_failures(*table, getattr(args, "expect", [])) if getattr(args, "gate", False) else []
    if bad:
        raise CheckFailed(
            f"matrix: envs disagree with the CPU reference: {'; '.join(bad)}",
            fix="see each env's loss_parity and training checks: "
            "the same run must give the same losses everywhere",
        )


def load_or_none(folder: Path, expected: list[str]) -> list[tuple[str, dict[str, Any]]]:
    """The results; with --expect, an empty or absent folder fails naming the envs instead."""
    try:
        return load_results(folder)
    except ConfigError:
        if not expected:
            raise
        raise CheckFailed(
            f"matrix: no result for expected env(s) {', '.join(expected)} in {folder}",
            fix="see the verify jobs: none wrote a result, or no artifact was downloaded",
        ) from None


def run(args: argparse.Namespace) -> int:
    folder, markdown, page = outputs(args)
    if not args.check:
        output_file(markdown, "--markdown")
        output_file(page, "--html")
    results = load_or_none(folder, getattr(args, "expect", []))
    columns, rows = build_table(results)
    files = {markdown: render_markdown(columns, rows), page: render_html(columns, rows)}
    if args.check:
        bad = stale(files)
        if bad:
            raise DriftError(f"stale: {', '.join(bad)}", fix=COMMAND.split("  ")[0])
        print("matrix: up to date")
        return 0
    atomic_write_many(files)
    print(files[markdown])
    print(f"matrix: wrote {markdown} and {page} ({len(columns)} env result(s))")
    if getattr(args, "summary", None):
        from archlock.verify import jobsummary

        jobsummary.append(args.summary, files[markdown])
    enforce(args, folder, results, (columns, rows))
    differ = metric_disagreements(columns, rows)
    if differ:
        raise CheckFailed(
            f"the project's own metric differs between envs: {'; '.join(differ)}",
            fix="compare the runs' tails in the result files: seed the run if it is random; "
            "raise [tool.archlock.verify] tolerance only for a difference you expect",
        )
    return 0
