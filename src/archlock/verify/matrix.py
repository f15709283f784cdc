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
from pathlib import Path
from typing import Any

from archlock.core.fsutil import atomic_write_many, current_text, output_file
from archlock.errors import CheckFailed, ConfigError, DriftError
from archlock.verify.matrixload import load_results
from archlock.verify.matrixrender import COMMAND, render_html, render_markdown
from archlock.verify.matrixtable import (
    CROSS_ENV_CHECK,
    Column,
    Row,
    build_table,
    metric_disagreements,
)


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
    for column, cell in zip(columns, cross.cells, strict=True):
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
            fix="see that env's verify job: it stopped before writing its result file, "
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
