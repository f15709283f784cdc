"""`archlock report`: the verb around the in-environment report script.

The report itself is written inside the env that fails, by archlock.inenv.report (standard
library only). This verb picks that env's interpreter (--python, $VIRTUAL_ENV, the project's
.venv), runs the script there with a time limit, or writes the self-contained bundle
(`--write-script FILE`): every in-env script the report needs, embedded in one generated file.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from archlock.core import fsutil, proc
from archlock.errors import ConfigError, DriftError, ExternalCommandError
from archlock.inenv import report

# ---------------------------------------------------------------------------------------------
# the verb
# ---------------------------------------------------------------------------------------------


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "report", help="write a JSON + Markdown report of this env (and a failing command)"
    )
    parser.add_argument(
        "--python",
        help="the interpreter of the env to report on "
        "(default: $VIRTUAL_ENV's, else the project's .venv, else this one)",
    )
    parser.add_argument(
        "--write-script", metavar="FILE", help="write one self-contained report script and stop"
    )
    parser.add_argument(
        "--check", action="store_true", help="with --write-script: fail if FILE is stale"
    )
    report.add_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.write_script:
        return write_script(args.write_script, check=args.check)
    python = target_python(args)
    if os.path.abspath(python) == os.path.abspath(sys.executable):
        return report.collect(args, str(args.project))
    argv = [python, os.path.abspath(report.__file__), *forwarded(args)]
    # the child stops its command at --timeout; this limit covers the probe around it
    done = proc.stream(argv, timeout=args.timeout + report.PROBE_TIMEOUT)
    if done.timed_out:
        raise ExternalCommandError(f"archlock report: {python} gave no report: {done.why()}")
    return done.returncode or 0


def target_python(args: argparse.Namespace) -> str:
    if args.python:
        if not os.path.exists(args.python):
            raise ConfigError(
                f"--python {args.python}: no such interpreter",
                fix="pass the env's python, e.g. .venv/bin/python",
            )
        return str(args.python)
    candidates = [os.environ.get("VIRTUAL_ENV"), os.path.join(str(args.project), ".venv")]
    for venv in candidates:
        python = os.path.join(venv, "bin", "python") if venv else ""
        if python and os.path.exists(python):
            return python
    return sys.executable


def forwarded(args: argparse.Namespace) -> list[str]:
    out = [
        "--project",
        os.path.abspath(str(args.project)),
        "--output",
        os.path.abspath(args.output),
    ]
    out += ["--tail-lines", str(args.tail_lines)]
    out += ["--env", args.env] if args.env else []
    out += ["--timeout", repr(args.timeout)]
    out += ["--no-torch"] if args.no_torch else []
    out += ["--no-scan"] if args.no_scan else []
    words = report.command_words(args.command)
    return out + (["--", *words] if words else [])


# ---------------------------------------------------------------------------------------------
# the self-contained script: every in-env script the report needs, in one generated file
# ---------------------------------------------------------------------------------------------

BUNDLE_LINES = (
    '"""archlock report, self-contained: probe + report in one file, standard library only.',
    "",
    "Run it with the interpreter of the env that fails (Python >= 3.8), from the project folder:",
    "",
    "    .venv/bin/python {name} [--env NAME] [-o FILE.json] [-- CMD ...]",
    "",
    "It writes FILE.json (attach it) and FILE.md (paste it into the issue). Nothing but",
    "allow-listed environment variables leaves the machine; paths under the home folder are",
    "written as ~/...",
    '"""',
    "",
    "import sys",
    "import types",
    "",
    'PACKAGE = "{package}"  # the package the scripts import their siblings from',
    "SOURCES = {{",
    "{sources}",
    "}}",
    "",
    "",
    "def load(name):",
    '    """Run an embedded script as a module of the package its siblings import from."""',
    "    package = sys.modules.get(PACKAGE)",
    "    if package is None:",
    "        package = sys.modules[PACKAGE] = types.ModuleType(PACKAGE)",
    "        package.__path__ = []  # every module is embedded above, loaded in order",
    '    module = types.ModuleType(PACKAGE + "." + name)',
    "    module.__file__ = __file__  # the probe reruns this file with --torch-only",
    "    module.__package__ = PACKAGE",
    "    module.BUNDLED = True",
    "    sys.modules[module.__name__] = module",
    '    exec(compile(SOURCES[name], "%s <%s>" % (__file__, name), "exec"), module.__dict__)',
    "    setattr(package, name, module)",
    "    return module",
    "",
    "",
    'if __name__ == "__main__":',
    "{loads}",
    '    sys.exit(load("report").main())',
    "",
)
TRIPLE = "'" * 3


def embedded(source: str) -> str:
    """A Python literal for `source`: a readable raw string when that is safe, else repr()."""
    if TRIPLE not in source and not source.endswith("\\"):
        return "r" + TRIPLE + source + TRIPLE
    return repr(source)


def bundle_text(name: str) -> str:
    folder = Path(report.__file__).parent
    modules = [*report.SIBLINGS, "report"]
    sources = [
        f"    '{module}': {embedded((folder / f'{module}.py').read_text('utf-8'))},"
        for module in modules
    ]
    loads = [f'    load("{module}")' for module in report.SIBLINGS]
    body = "\n".join(BUNDLE_LINES).format(
        name=name,
        package=report.PLAIN_PACKAGE,
        sources="\n".join(sources),
        loads="\n".join(loads),
    )
    return "#!/usr/bin/env python3\n" + fsutil.with_header(body, report.SCRIPT_COMMAND)


def write_script(path: str, check: bool = False) -> int:
    target = Path(path).absolute()
    text = bundle_text(target.name)
    current = target.read_text("utf-8") if target.is_file() else None
    if check:
        if current != text:
            raise DriftError(
                f"{path} is stale or missing", fix=f"run: archlock report --write-script {path}"
            )
        return 0
    if current is not None and not fsutil.is_generated(target):
        raise ConfigError(
            f"{path} exists and was not written by archlock", fix="choose another FILE or remove it"
        )
    fsutil.atomic_write(target, text)
    target.chmod(0o755)
    print(
        f"archlock report: wrote {path}; a teammate runs it with the failing env's python: "
        f"python {target.name} -- CMD ..."
    )
    return 0
