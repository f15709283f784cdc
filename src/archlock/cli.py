"""`archlock <verb>`: the one entry point. Verbs live in their own modules.

Each verb module exposes `register(subparsers) -> None`, which adds its parser and sets
`func=run` with `run(args) -> int`. Only this module turns errors into exit codes.
"""

from __future__ import annotations

import sys

# Only `sys` at the top: an interrupt while the rest is imported reaches main()'s handler, so a
# Ctrl-C during start-up is one line and exit 130, not a traceback.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse

# verb modules, in the order `archlock --help` lists them
VERB_MODULES = (
    "archlock.init",
    "archlock.lock.resolve",
    "archlock.lock.audit",
    "archlock.lock.schema",
    "archlock.build.render",
    "archlock.build.build",
    "archlock.build.clean",
    "archlock.mac.cli",
    "archlock.inenv.probe",
    "archlock.verify.verify",
    "archlock.verify.matrix",
    "archlock.verify.cirun",
    "archlock.repro.report_cli",
    "archlock.repro.repro",
    "archlock.build.bench",
    "archlock.scan",
)


def build_parser() -> argparse.ArgumentParser:
    import argparse
    import importlib
    from pathlib import Path

    from archlock import __version__

    parser = argparse.ArgumentParser(
        prog="archlock",
        description="Lock, build and verify one PyTorch project on every machine it runs on.",
    )
    parser.add_argument("--version", action="version", version=f"archlock {__version__}")
    parser.add_argument(
        "--project",
        type=Path,
        default=Path.cwd(),
        help="the project to act on (default: the current directory)",
    )
    sub = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    for name in VERB_MODULES:
        importlib.import_module(name).register(sub)
    for verb_parser in sub.choices.values():  # `archlock lock --project P` works too
        verb_parser.add_argument(
            "--project", type=Path, default=argparse.SUPPRESS, help=argparse.SUPPRESS
        )
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        from archlock.errors import exit_code_of

        parser = build_parser()  # imports every verb module: most of a start-up's time
        args = parser.parse_args(argv)
    except KeyboardInterrupt:
        print("archlock: interrupted while starting; nothing was changed", file=sys.stderr)
        return 130
    return exit_code_of(args.verb, lambda: args.func(args))


if __name__ == "__main__":
    sys.exit(main())
