"""`archlock matrix`: verify results from every env as one feature x env table.

Reads `archlock.verify/1` result files (default `results/*.json`) and writes Markdown and a
static HTML page (default `results/matrix.md`, `results/matrix.html`). Each cell says pass,
fail or skipped with its reason; each column names the host that produced it. One row is the
matrix's own: "same losses as other envs" compares each env's training losses with the first
column's (the suite's per-device tolerance, at least 1e-4 between CPUs of different
architectures). The project's own runs (`[tool.archlock.verify] run`) get a row each, and with a
metric a second row comparing each env's number with the first env's within the stated
tolerance; a difference there fails `archlock matrix` (after writing both files).
`--check` fails when either file is stale.
"""

from __future__ import annotations

import argparse
import html
import math
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2

from archlock.errors import CheckFailed, ConfigError, DriftError
from archlock.core.fsutil import GENERATED_MARK, atomic_write_many, current_text, output_file
from archlock.core.jsonsrc import load_json
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
SUITE_FACTS = {
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
    "status": TEXT, "why": TEXT, "summary": TEXT, "metric": NUMBER, "tolerance": NUMBER, "command": TEXT,
}


def _value(data: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        data = data.get(part) if isinstance(data, dict) else None
    return data


def _expect(path: Path, key: str, value: Any, types: tuple[type, ...]) -> None:
    if value is not None and (not isinstance(value, types) or isinstance(value, bool)):
        names = "a number" if types == NUMBER else {str: "a string", dict: "an object"}[types[0]]
        raise ConfigError(f"{path}: {key}: expected {names}, found {type(value).__name__}", fix=REDO)


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
        isinstance(losses, list) and all(isinstance(x, NUMBER) and not isinstance(x, bool) for x in losses)
    ):
        raise ConfigError(f"{path}: suite.checks.training.losses: expected a list of numbers", fix=REDO)


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
    )


def training_losses(result: dict[str, Any]) -> list[float] | None:
    losses = (((result.get("suite") or {}).get("checks") or {}).get("training") or {}).get("losses")
    return losses if isinstance(losses, list) and losses else None


def finite_losses(result: dict[str, Any]) -> list[float] | None:
    losses = training_losses(result)
    return losses if losses and all(math.isfinite(x) for x in losses) else None


def cross_env_cell(result: dict[str, Any], reference: tuple[str, dict[str, Any]] | None) -> Cell:
    """This env's training losses against the first env's: the same run must agree everywhere."""
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
    tolerance = max(
        LOSS_TOLERANCE.get(result.get("device") or "cpu", 1e-3),
        LOSS_TOLERANCE.get(ref.get("device") or "cpu", 1e-3),
        CROSS_ENV_CPU_TOLERANCE,
    )
    why = f"max relative difference {worst:.1e} from {ref_key} (tolerance {tolerance:g})"
    if len(losses) != len(ref_losses) or worst > tolerance:
        return Cell("fail", f"fail: {why}", why)
    return Cell("pass", f"pass ({worst:.1e} vs {ref_key})", why)


def cross_env_row(ordered: list[tuple[str, dict[str, Any]]], columns: list[Column]) -> Row:
    reference = next(
        ((c.key, r) for c, (_, r) in zip(columns, ordered) if finite_losses(r)), None
    )
    return Row(
        "same losses as other envs",
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
        "| verify | " + " | ".join(f"**{c.status}**" for c in columns) + " |",
    ]
    for row in rows:
        lines.append(
            f"| {md_escape(row.label)} | "
            + " | ".join(md_escape(cell.text) for cell in row.cells)
            + " |"
        )
    lines += ["", "Sources: " + ", ".join(f"`{c.source}`" for c in columns), ""]
    return "\n".join(lines)


def template() -> jinja2.Template:
    source = resources.files("archlock").joinpath("data/matrix.html.j2").read_text(encoding="utf-8")
    environment = jinja2.Environment(
        undefined=jinja2.StrictUndefined, autoescape=True, keep_trailing_newline=True
    )
    return environment.from_string(source)


def render_html(columns: list[Column], rows: list[Row]) -> str:
    header = html.escape(f"{GENERATED_MARK} - do not edit by hand. Regenerate with: {COMMAND}")
    return template().render(header=header, columns=columns, rows=rows)


def outputs(args: argparse.Namespace) -> tuple[Path, Path, Path]:
    results = args.results or args.project / "results"
    return results, args.markdown or results / "matrix.md", args.html or results / "matrix.html"


def stale(files: dict[Path, str]) -> list[str]:
    return [
        str(path)
        for path, text in files.items()
        if current_text(path) != text
    ]


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
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
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    folder, markdown, page = outputs(args)
    if not args.check:
        output_file(markdown, "--markdown")
        output_file(page, "--html")
    columns, rows = build_table(load_results(folder))
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
    differ = metric_disagreements(columns, rows)
    if differ:
        raise CheckFailed(
            f"the project's own metric differs between envs: {'; '.join(differ)}",
            fix="compare the runs' tails in the result files: seed the run if it is random; "
            "raise [tool.archlock.verify] tolerance only for a difference you expect",
        )
    return 0
