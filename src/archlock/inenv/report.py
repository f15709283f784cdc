"""Report a failing environment: the probe's facts, the lock it was meant to follow, and the
failing command's exit code and last lines of output. One JSON file to attach, one short
Markdown summary to paste into an issue.

Three ways to run it, all the same code, standard library only, Python >= 3.8:

    archlock report [--python PATH] [--env NAME] [-o FILE.json] [-- CMD ...]
    python3 path/to/archlock/report.py [--env NAME] [-o FILE.json] [-- CMD ...]
    python3 archlock-report.py [-- CMD ...]     # from `archlock report --write-script FILE`

How this file gets its siblings (`probe.py` and its `probe_*.py` parts for the facts, `locate.py`
for the lock the env follows, `command.py` to run the failing command, `redact.py` for what
leaves the machine): inside the installed package it imports them from `archlock.inenv`; run as
a plain file it loads them from its own folder (the files travel together); in a bundle written by
`archlock report --write-script FILE` all sources are embedded in that one generated file, for a
teammate who cannot install anything (or whose torch will not import). `archlock report`
itself (the verb) is archlock.repro.report_cli.

Secrets never leave the machine: environment variables are the probe's allow-list only; every
path under the home folder is written relative to `~` (interpreter, site-packages, argv, the
output tail); `NAME=value` assignments whose name says TOKEN/SECRET/PASSWORD/KEY/..., values of
`--token`-like options and credentials in URLs are replaced by `<redacted>`.

Schema `archlock.report/1`: docs/report-schema.md. Files are written atomically (temp + rename).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import shlex
import sys
import tempfile
import types

SCHEMA = "archlock.report/1"
DEFAULT_OUTPUT = "archlock-report.json"
TAIL_LINES = 40  # output lines a report keeps (--tail-lines)
COMMAND_TIMEOUT = 3600  # seconds a recorded command may run (--timeout); every child has a limit
PROBE_TIMEOUT = 900  # seconds for the probe around it (importing torch under QEMU is slow)
SCRIPT_COMMAND = "archlock report --write-script FILE"
MODE = "bundle" if globals().get("BUNDLED") else ("archlock" if __package__ else "plain-file")

# -------------------------------------------------------------------------------------------
# The sibling scripts: from the package, from this file's folder, or from the bundle
# -------------------------------------------------------------------------------------------

# the in-env scripts this one uses (and a bundle embeds), each after the siblings it loads itself
# (probe.py's parts are its SIBLINGS)
SIBLINGS = (
    "probe_headers",
    "probe_system",
    "probe_packages",
    "probe_torch",
    "probe_profile",
    "probe",
    "locate",
    "command",
    "redact",
)


PLAIN_PACKAGE = "archlock_inenv"  # what a plain-file copy's folder becomes (inenv/__init__.py)
if not __package__:  # a plain file: its relative imports resolve in that package (PEP 366)
    __package__ = PLAIN_PACKAGE
    globals()["__spec__"] = None  # a spec's own parent ("") would contradict __package__
    if PLAIN_PACKAGE not in sys.modules:
        sys.modules[PLAIN_PACKAGE] = types.ModuleType(PLAIN_PACKAGE)
        sys.modules[PLAIN_PACKAGE].__path__ = [os.path.dirname(os.path.abspath(__file__))]
try:
    from . import command as runner
    from . import locate, probe, redact
except ImportError as exc:  # a copy without its parts
    raise SystemExit(
        "report.py: %s; its parts must sit next to this file: %s"
        % (exc, ", ".join(name + ".py" for name in SIBLINGS))
    ) from None


def load_probe():
    """The probe module (envmaker and older callers ask for it by this name)."""
    return probe


def relative_cwd(cwd: str, root: str | None) -> str | None:
    if root is None:
        return None
    rel = os.path.relpath(os.path.realpath(cwd), os.path.realpath(root))
    return None if rel == ".." or rel.startswith(".." + os.sep) else rel.replace(os.sep, "/")


# -------------------------------------------------------------------------------------------
# The document
# -------------------------------------------------------------------------------------------


def utc_now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def build_report(
    project: str | None = None,
    env: str | None = None,
    command: list[str] | None = None,
    with_torch: bool = True,
    with_scan: bool = True,
    timeout: float | None = None,
    tail_lines: int = TAIL_LINES,
    sysm=None,
    redactor=None,
    echo=None,
) -> dict:
    """The `archlock.report/1` document (already redacted)."""
    redactor = redactor or redact.Redactor()
    cwd = os.getcwd()
    root = locate.find_project(project or cwd)
    ran = runner.run_command(command, cwd, timeout, tail_lines, echo) if command else None
    doc = probe.probe(sysm=sysm, with_torch=with_torch, with_scan=with_scan)
    platform = locate.intended_platform(doc)
    report = {
        "schema": SCHEMA,
        "created": utc_now(),
        "tool": {"name": "archlock report", "mode": MODE, "probe_schema": probe.SCHEMA},
        "platform": platform,
        "project": {"name": os.path.basename(root), "root": root} if root else None,
        "lock": locate.lock_record(root, env, platform, locate.torch_build(doc)),
        "command": None,
        "probe": doc,
    }
    if ran is not None:
        report["command"] = dict(
            {
                "argv": redactor.argv(list(command or [])),
                "cwd": cwd,
                "cwd_in_project": relative_cwd(cwd, root),
            },
            **ran,
        )
    report = redactor.value(report)
    report["redaction"] = {
        "home": "~",
        "env": "allow-listed names only",
        "secrets": "secret-named assignments, options and URL credentials",
    }
    return report


# -------------------------------------------------------------------------------------------
# Markdown summary
# -------------------------------------------------------------------------------------------


def torch_line(doc: dict) -> str:
    facts = doc.get("torch") or {}
    if "skipped" in facts:
        return "not probed (%s)" % facts["skipped"]
    if not facts.get("importable"):
        return "does not import: %s" % facts.get("error", "?")
    build = locate.build_text(locate.torch_build(doc) or "cpu", facts.get("cuda"))
    where = (
        "CUDA available (%d GPU)" % facts.get("device_count", 0)
        if facts.get("cuda_available")
        else ("MPS available" if facts.get("mps_available") else "no GPU in use")
    )
    return "%s (%s), %s" % (facts.get("version"), build, where)


def machine_line(doc: dict) -> str:
    osf, emu, py = doc.get("os") or {}, doc.get("emulation") or {}, doc.get("python") or {}
    text = "%s %s" % (
        osf.get("distro") or osf.get("name") or "?",
        "" if osf.get("distro") else osf.get("version") or "",
    )
    libc = osf.get("libc") or {}
    if libc.get("name"):
        text = text.strip() + ", %s %s" % (libc["name"], libc.get("version", ""))
    if emu.get("emulated"):
        return text.strip() + "; interpreter %s **emulated by %s** on %s" % (
            py.get("arch"),
            emu.get("by"),
            emu.get("host_arch"),
        )
    return text.strip() + "; interpreter %s, native" % py.get("arch")


def fence(lines: list[str]) -> str:
    longest = max([len(run) for line in lines for run in re.findall(r"`+", line)] + [2])
    return "`" * (longest + 1)


def markdown(report: dict, json_name: str = DEFAULT_OUTPUT) -> str:
    doc, lock, cmd = report["probe"], report["lock"], report.get("command")
    py = doc.get("python") or {}
    out = [
        "### archlock report: %s, Python %s"
        % (report.get("platform") or "unknown platform", py.get("version")),
        "",
    ]
    if lock.get("env") and lock.get("sha256"):
        out.append(
            "- **Lock**: env `%s`, `%s` sha256 `%s` (matched by %s)"
            % (lock["env"], lock["path"], lock["sha256"][:16], lock["matched_by"])
        )
    else:
        out.append("- **Lock**: none found: %s" % lock.get("problem"))
    out.append("- **Machine**: %s" % machine_line(doc))
    out.append(
        "- **Interpreter**: `%s`%s" % (py.get("executable"), " (venv)" if py.get("in_venv") else "")
    )
    out.append("- **torch**: %s" % torch_line(doc))
    out.append("- **NVIDIA driver**: %s" % ((doc.get("gpu") or {}).get("nvidia_driver") or "none"))
    out.append("- **Packages**: %d installed" % len(doc.get("distributions") or []))
    out += binaries_lines(doc) + env_lines(doc)
    if cmd:
        out += command_lines(cmd)
    out += ["", "Diagnose: `archlock repro %s` (or `nox -s repro -- %s`)." % (json_name, json_name)]
    return "\n".join(out) + "\n"


def binaries_lines(doc: dict) -> list[str]:
    scan = doc.get("binaries") or {}
    if scan.get("foreign_total"):
        shown = ", ".join(
            "`%s` (%s)" % (f["path"], "/".join(f["archs"])) for f in scan["foreign"][:3]
        )
        return [
            "- **Compiled files of another architecture**: %d: %s" % (scan["foreign_total"], shown)
        ]
    return []


def env_lines(doc: dict) -> list[str]:
    env = doc.get("env") or {}
    if not env:
        return []
    return [
        "- **Environment variables set**: "
        + ", ".join("`%s=%s`" % item for item in sorted(env.items()))
    ]


def command_lines(cmd: dict) -> list[str]:
    how = "exit %s" % cmd["exit_code"] + (" (%s)" % cmd["signal"] if cmd.get("signal") else "")
    how += ", timed out" if cmd.get("timed_out") else ""
    tail = cmd.get("output_tail") or []
    marks = fence(tail)
    return (
        [
            "- **Command**: `%s` -> %s after %.1f s"
            % (" ".join(shlex.quote(w) for w in cmd["argv"]), how, cmd.get("duration_s", 0)),
            "",
            "<details><summary>last %d of %d output lines</summary>"
            % (len(tail), cmd.get("output_lines", 0)),
            "",
            marks + "text",
        ]
        + tail
        + [marks, "", "</details>"]
    )


# -------------------------------------------------------------------------------------------
# Files and the command line
# -------------------------------------------------------------------------------------------


def write_atomic(path: str, text: str) -> None:
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            mask = os.umask(0)
            os.umask(mask)
            os.fchmod(handle.fileno(), 0o666 & ~mask)  # mkstemp makes 0600; a report is shared
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_both(path: str, text: str, md_path: str, md_text: str) -> str | None:
    """Write the JSON report and its Markdown; on failure neither is left, and the reason (one
    line) is returned. The path passed `output_problem`, but a folder such as /proc can still
    refuse what it seemed to allow."""
    try:
        write_atomic(path, text)
        try:
            write_atomic(md_path, md_text)
        except BaseException:
            os.unlink(path)
            raise
    except OSError as exc:
        where = exc.filename or path
        return "cannot write %s: %s; give --output a writable path" % (
            where,
            exc.strerror or type(exc).__name__,
        )
    return None


def output_problem(path: str) -> str | None:
    """Why the report cannot be written at `path` (checked before any work), or None."""
    for target in (path, markdown_path(path)):
        if os.path.isdir(target):
            return "%s is a folder; give --output a file path" % target
        if os.path.lexists(target) and not os.path.isfile(target):
            return "%s is not a regular file; give --output a file path" % target
    folder = os.path.dirname(os.path.abspath(path))
    while not os.path.lexists(folder):
        folder = os.path.dirname(folder)
    if not os.path.isdir(folder):
        return "%s is not a folder; give --output a path under a folder" % folder
    if not os.access(folder, os.W_OK | os.X_OK):
        return "cannot write in %s; give --output a writable path" % folder
    return None


def count(text: str) -> int:
    """--tail-lines: a whole number >= 0."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("%r is not a whole number" % text) from None
    if value < 0:
        raise argparse.ArgumentTypeError("%d is negative; give 0 or more" % value)
    return value


def seconds(text: str) -> float:
    """--timeout: seconds above 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError("%r is not a number of seconds" % text) from None
    if not 0 < value < 1e7:
        raise argparse.ArgumentTypeError("%s is not a time limit; give seconds above 0" % text)
    return value


def markdown_path(json_path: str) -> str:
    base = json_path[:-5] if json_path.endswith(".json") else json_path
    return base + ".md"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--env", help="the env whose lock this env follows (default: matched from the platform)"
    )
    parser.add_argument(
        "--output",
        "-o",
        default=DEFAULT_OUTPUT,
        help="JSON report path; the .md summary goes next to it",
    )
    parser.add_argument("--no-torch", action="store_true", help="do not import torch")
    parser.add_argument("--no-scan", action="store_true", help="skip the compiled-file scan")
    parser.add_argument(
        "--timeout",
        type=seconds,
        default=COMMAND_TIMEOUT,
        help="stop the command after this many seconds (default %d)" % COMMAND_TIMEOUT,
    )
    parser.add_argument(
        "--tail-lines",
        type=count,
        default=TAIL_LINES,
        help="output lines to keep (default %d)" % TAIL_LINES,
    )
    parser.add_argument(
        "command",
        nargs=argparse.REMAINDER,
        help="-- CMD ...: the failing command to run and record",
    )


def command_words(words: list[str]) -> list[str]:
    return words[1:] if words[:1] == ["--"] else list(words)


def collect(args: argparse.Namespace, project: str | None = None) -> int:
    """Make the report and write both files (the plain-file entry point)."""
    problem = output_problem(args.output)
    if problem:
        sys.stderr.write("archlock report: error: --output %s: %s\n" % (args.output, problem))
        return 2
    report = build_report(
        project=project,
        env=args.env,
        command=command_words(args.command) or None,
        with_torch=not args.no_torch,
        with_scan=not args.no_scan,
        timeout=args.timeout,
        tail_lines=args.tail_lines,
    )
    md_path = markdown_path(args.output)
    problem = write_both(
        args.output,
        json.dumps(report, indent=2) + "\n",
        md_path,
        markdown(report, os.path.basename(args.output)),
    )
    if problem:
        sys.stderr.write("archlock report: error: --output %s: %s\n" % (args.output, problem))
        return 2
    print(
        "archlock report: wrote %s and %s (attach the JSON; paste the Markdown into the issue)"
        % (args.output, md_path)
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv == ["--torch-only"]:  # the probe's torch child, when this file is a bundle
        return probe.main(argv)
    parser = argparse.ArgumentParser(
        prog=os.path.basename(sys.argv[0]) or "report.py", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--project", help="the project folder (default: the nearest one at or above here)"
    )
    add_arguments(parser)
    args = parser.parse_args(argv)
    return collect(args, args.project)


if __name__ == "__main__":
    sys.exit(main())
