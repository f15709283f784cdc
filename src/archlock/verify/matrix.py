"""`archlock matrix`: verify results from every env as one feature x env table.

Reads `archlock.verify/1` result files (default `results/*.json`) and writes Markdown and a
static HTML page (default `results/matrix.md`, `results/matrix.html`). Each cell says pass,
fail or skipped with its reason; each column names the host that produced it. One row is the
matrix's own: "same losses as other envs" compares each env's training losses with the first
column's (the suite's per-device tolerance, at least 1e-4 between CPUs of different
architectures). `--check` fails when either file is stale.
"""

from __future__ import annotations

import argparse
import html
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2

from archlock.errors import ConfigError, DriftError
from archlock.core.fsutil import GENERATED_MARK, atomic_write_many
from archlock.inenv.suite import LOSS_TOLERANCE

COMMAND = "nox -s matrix  (or: archlock matrix)"
CROSS_ENV_CHECK = "cross_env_losses"
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
    "loss_parity": lambda raw: "within %g" % raw["tolerance"] if "tolerance" in raw else None,
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
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigError(
                f"{path}: not a readable JSON result: {exc}",
                fix="delete it or re-run archlock verify",
            ) from None
        if isinstance(data, dict) and data.get("schema") == VERIFY_SCHEMA:
            found.append((path.name, data))
    if not found:
        raise ConfigError(
            f"{folder}: no {VERIFY_SCHEMA} result files",
            fix="run archlock verify (or nox -s verify) first",
        )
    return found


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


def cross_env_cell(result: dict[str, Any], reference: tuple[str, dict[str, Any]] | None) -> Cell:
    """This env's training losses against the first env's: the same run must agree everywhere."""
    losses = training_losses(result)
    if losses is None or reference is None:
        return Cell("missing", "not run", "no training losses in this result")
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
        ((c.key, r) for c, (_, r) in zip(columns, ordered) if training_losses(r)), None
    )
    return Row(
        "same losses as other envs",
        CROSS_ENV_CHECK,
        tuple(cross_env_cell(r, reference) for _, r in ordered),
    )


def build_table(results: list[tuple[str, dict[str, Any]]]) -> tuple[list[Column], list[Row]]:
    ordered = sorted(results, key=lambda item: (item[1]["env"], item[1].get("mode", "host")))
    columns = [make_column(source, result) for source, result in ordered]
    rows = [
        Row(label, check, tuple(make_cell(r, check) for _, r in ordered))
        for label, check in FEATURES
    ]
    rows.insert(7, cross_env_row(ordered, columns))
    return columns, rows


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
    from archlock.build import render  # the one Jinja environment (HTML templates autoescape)

    return render.environment().get_template("matrix.html.j2")


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
        if not path.is_file() or path.read_text(encoding="utf-8") != text
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
    return 0
