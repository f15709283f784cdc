"""`archlock scan [PATH]`: the verb's parser and its `run`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from archlock.errors import CheckFailed
from archlock.core.fsutil import atomic_write, output_file
from archlock.scan.config import FAIL_ON_CHOICES
from archlock.scan.engine import ScanResult, scan_path
from archlock.scan.output import RENDERERS, render_rules, summary_line

DEFAULT_FAIL_ON = "warning"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "scan",
        help="find code that will not run on MPS, CPU-only or arm64 machines",
        description="Read the project's Python files (with ast) and report what breaks off "
        "CUDA, off Linux or off x86_64. Config: [tool.archlock.scan] in pyproject.toml.",
    )
    parser.add_argument(
        "path", nargs="?", type=Path, help="a folder or .py file to scan (default: the project)"
    )
    parser.add_argument("--format", choices=tuple(RENDERERS), default="text", help="report format")
    parser.add_argument("--output", type=Path, metavar="FILE", help="write the report to FILE")
    parser.add_argument(
        "--fail-on",
        choices=FAIL_ON_CHOICES,
        help="exit non-zero when findings at or above this severity exist "
        f"(default: [tool.archlock.scan] fail-on, else {DEFAULT_FAIL_ON})",
    )
    parser.add_argument("--list-rules", action="store_true", help="print every rule and exit")
    parser.set_defaults(func=run)


def _check(result: ScanResult, fail_on: str) -> None:
    failing = result.at_or_above(fail_on)
    if failing:
        raise CheckFailed(
            f"{len(failing)} finding{'s' * (len(failing) != 1)} at or above {fail_on}",
            fix="fix them, or suppress one line with `# archlock: ignore[RULE] reason`",
        )


def run(args: argparse.Namespace) -> int:
    if args.list_rules:
        sys.stdout.write(render_rules())
        return 0
    if args.output:
        output_file(args.output, "--output")
    result = scan_path(args.path or args.project, args.project)
    report = RENDERERS[args.format](result)
    if args.output:
        atomic_write(args.output, report)
        print(f"wrote {args.output}: {summary_line(result)}")
    else:
        sys.stdout.write(report)
    _check(result, args.fail_on or result.config.fail_on or DEFAULT_FAIL_ON)
    return 0
