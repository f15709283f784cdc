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
    from typing import NoReturn

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


def exit_codes_epilog() -> str:
    """`archlock --help`'s list of exit codes, from the error classes themselves."""
    from archlock import errors

    rows = [(0, "success")]
    rows += [
        (cls.exit_code, (cls.__doc__ or "").strip().splitlines()[0])
        for cls in errors.ArchlockError.__subclasses__()
    ]
    rows.append((130, "interrupted (Ctrl-C); no file was half-written"))
    lines = [f"  {code:<4} {doc}" for code, doc in sorted(rows)]
    return (
        "exit codes:\n" + "\n".join(lines) + "\n\n"
        "Without --project, archlock acts on the nearest folder, from here upward, with an envs/\n"
        "folder or a pyproject.toml holding [tool.archlock]; else the nearest with a\n"
        "pyproject.toml or requirements.txt; else here. It looks no higher than a .git folder."
    )


def _parser_class() -> type[argparse.ArgumentParser]:
    import argparse
    import difflib
    import re

    class Parser(argparse.ArgumentParser):
        """argparse with a did-you-mean for a mistyped verb or choice."""

        def error(self, message: str) -> NoReturn:
            typed = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message)
            if typed:
                choices = re.findall(r"'([^']*)'", typed.group(2)) or typed.group(2).split(", ")
                close = difflib.get_close_matches(typed.group(1), choices, n=1)
                if close:
                    message += f"; did you mean {close[0]!r}?"
            super().error(message)

    return Parser


def build_parser() -> argparse.ArgumentParser:
    import argparse
    import importlib
    from pathlib import Path

    from archlock import __version__

    parser = _parser_class()(
        prog="archlock",
        description="Lock, build and verify one PyTorch project on every machine it runs on.",
        epilog=exit_codes_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"archlock {__version__}")
    parser.add_argument(
        "--project",
        type=Path,
        default=None,
        help="the project to act on (default: the nearest archlock project from here upward)",
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
        if args.project is None:  # `archlock lock` in a subfolder acts on the project around it
            from pathlib import Path

            from archlock.core.project import find_root

            args.project = find_root(Path.cwd())
    except KeyboardInterrupt:
        print("archlock: interrupted while starting; nothing was changed", file=sys.stderr)
        return 130
    return exit_code_of(args.verb, lambda: args.func(args))


if __name__ == "__main__":
    sys.exit(main())
