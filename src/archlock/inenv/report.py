"""Report a failing environment: the probe's facts, the lock it was meant to follow, and the
failing command's exit code and last lines of output. One JSON file to attach, one short
Markdown summary to paste into an issue.

Three ways to run it, all the same code, standard library only, Python >= 3.8:

    archlock report [--python PATH] [--env NAME] [-o FILE.json] [-- CMD ...]
    python3 path/to/archlock/report.py [--env NAME] [-o FILE.json] [-- CMD ...]
    python3 archlock-report.py [-- CMD ...]     # from `archlock report --write-script FILE`

How this file gets the probe's facts: inside the installed package it imports `archlock.inenv.probe`;
run as a plain file it loads `probe.py` from its own folder (the two files travel together);
in a bundle written by `archlock report --write-script FILE` both sources are embedded in that
one generated file, for a teammate who cannot install anything (or whose torch will not import).

Secrets never leave the machine: environment variables are the probe's allow-list only; every
path under the home folder is written relative to `~` (interpreter, site-packages, argv, the
output tail); `NAME=value` assignments whose name says TOKEN/SECRET/PASSWORD/KEY/..., values of
`--token`-like options and credentials in URLs are replaced by `<redacted>`.

Schema `archlock.report/1`: docs/report-schema.md. Files are written atomically (temp + rename).
"""

from __future__ import annotations

import argparse
import collections
import datetime
import hashlib
import importlib.util
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
import time

SCHEMA = "archlock.report/1"
DEFAULT_OUTPUT = "archlock-report.json"
TAIL_LINES = 40
MAX_LINE = 400
COMMAND_TIMEOUT = 3600  # seconds a recorded command may run (--timeout); every child has a limit
PROBE_TIMEOUT = 900  # seconds for the probe around it (importing torch under QEMU is slow)
SCRIPT_COMMAND = "archlock report --write-script FILE"
MODE = "bundle" if globals().get("BUNDLED") else ("archlock" if __package__ else "plain-file")

# -------------------------------------------------------------------------------------------
# The probe: from the package, from this file's folder, or from the bundle
# -------------------------------------------------------------------------------------------


def load_probe():
    """The probe module, wherever this file runs from (see the module docstring)."""
    if __package__:
        from archlock.inenv import probe

        return probe
    if "archlock_probe" in sys.modules:  # a bundle loaded it already
        return sys.modules["archlock_probe"]
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "probe.py")
    spec = importlib.util.spec_from_file_location("archlock_probe", path)
    if spec is None or spec.loader is None or not os.path.isfile(path):
        raise SystemExit(
            "report.py: probe.py must sit next to this file (or use %s)" % SCRIPT_COMMAND
        )
    module = importlib.util.module_from_spec(spec)
    sys.modules["archlock_probe"] = module
    spec.loader.exec_module(module)
    return module


# -------------------------------------------------------------------------------------------
# Redaction: home-relative paths and secret-looking values, everywhere in the document
# -------------------------------------------------------------------------------------------

SECRET_WORDS = ("TOKEN", "SECRET", "PASSWORD", "PASSWD", "CREDENTIAL", "AUTH", "KEY", "COOKIE")
SECRET_ASSIGNMENT = re.compile(
    r"\b([A-Za-z0-9_]*(?:%s)[A-Za-z0-9_]*)=(\S+)" % "|".join(SECRET_WORDS), re.IGNORECASE
)
URL_CREDENTIALS = re.compile(r"\b([a-z][a-z0-9+.-]*://)[^/\s:@]+:[^/\s@]+@")
REDACTED = "<redacted>"


def home_folders() -> list[str]:
    found = []
    for path in (os.path.expanduser("~"), os.path.realpath(os.path.expanduser("~"))):
        path = path.rstrip("/")
        if len(path) > 1 and path not in found:
            found.append(path)
    return sorted(found, key=len, reverse=True)


class Redactor:
    """Rewrites strings so that nothing under the home folder or secret-looking leaves."""

    def __init__(self, homes: list[str] | None = None) -> None:
        homes = home_folders() if homes is None else homes
        self.patterns = [re.compile(re.escape(home) + r"(?=/|$|[^\w.-])") for home in homes]

    def text(self, value: str) -> str:
        for pattern in self.patterns:
            value = pattern.sub("~", value)
        value = SECRET_ASSIGNMENT.sub(lambda m: "%s=%s" % (m.group(1), REDACTED), value)
        return URL_CREDENTIALS.sub(lambda m: m.group(1) + REDACTED + "@", value)

    def value(self, value):
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, list):
            return [self.value(item) for item in value]
        if isinstance(value, dict):
            return {self.text(str(key)): self.value(item) for key, item in value.items()}
        return value

    def argv(self, argv: list[str]) -> list[str]:
        """Command words, with the values of secret-named options replaced."""
        out, hide_next = [], False
        for word in argv:
            if hide_next:
                out.append(REDACTED)
                hide_next = False
                continue
            name, sep, _ = word.partition("=")
            secret = word.startswith("-") and any(w in name.upper() for w in SECRET_WORDS)
            if secret and sep:
                out.append(name + "=" + REDACTED)
            else:
                out.append(self.text(word))
                hide_next = secret
        return out


# -------------------------------------------------------------------------------------------
# Which lock the env was meant to follow
# -------------------------------------------------------------------------------------------

LOCK_HEAD = re.compile(
    r"^# env: (?P<env>\S+) \((?P<platform>[a-z0-9-]+), Python (?P<python>[0-9.]+), (?P<accelerator>[a-z]+)\)",
    re.MULTILINE,
)
ARCH_WORDS = {"x86_64": "amd64", "arm64": "arm64"}


def find_project(start: str) -> str | None:
    """The nearest folder at or above `start` that holds envs/, pyproject.toml or requirements.txt."""
    folder = os.path.abspath(start)
    while True:
        if any(
            os.path.exists(os.path.join(folder, n))
            for n in ("envs", "pyproject.toml", "requirements.txt")
        ):
            return folder
        parent = os.path.dirname(folder)
        if parent == folder:
            return None
        folder = parent


def intended_platform(doc: dict) -> str | None:
    """The platform name this env belongs to, as archlock's table spells it ("linux-amd64").

    macOS: the hardware's architecture (Rosetta is a mistake to report, not a platform).
    Linux: the interpreter's own architecture (QEMU emulation is chosen on purpose)."""
    os_name = (doc.get("os") or {}).get("name")
    emulation, python = doc.get("emulation") or {}, doc.get("python") or {}
    arch = emulation.get("host_arch") if os_name == "macos" else python.get("arch")
    arch = arch or python.get("arch")
    if not os_name or not arch:
        return None
    return "%s-%s" % (os_name, ARCH_WORDS.get(arch, arch))


def torch_build(doc: dict) -> str | None:
    """ "cuda" | "rocm" | "mps" | "cpu" of the probed torch (see build_of)."""
    version = next(
        (d.get("version") for d in doc.get("distributions") or [] if d.get("name", "").lower() == "torch"),
        None,
    )
    return build_of(doc.get("torch") or {}, version)[0]


def build_of(facts: dict, version: str | None) -> tuple:
    """(build, CUDA version) of a torch: "cuda" | "rocm" | "mps" | "cpu" (or None), from the
    probe's torch facts when torch imports, else from its version's local label (+cu128, +cpu).
    The one classification: the host side (archlock.core.diagnose, verify) asks this too."""
    if facts.get("importable"):
        if facts.get("cuda"):
            return "cuda", facts["cuda"]
        if facts.get("hip"):
            return "rocm", None
        return ("mps" if facts.get("mps_built") else "cpu"), None
    label = (version or "").partition("+")[2]
    if label.startswith("cu") and label[2:].isdigit() and len(label) > 3:
        return "cuda", "%s.%s" % (label[2:-1], label[-1])
    if label.startswith("rocm"):
        return "rocm", None
    return ("cpu", None) if label == "cpu" else (None, None)


# torch builds as build_of names them, and how people say them (%s: the CUDA version)
BUILD_TEXT = {"cuda": "CUDA %s build", "rocm": "ROCm build", "mps": "MPS build", "cpu": "CPU-only build"}


def build_text(build: str, cuda) -> str:
    text = BUILD_TEXT[build]
    return text % cuda if "%s" in text else text


def read_text(path: str, limit: int = 1 << 22) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read(limit)
    except OSError:
        return None


def spec_value(root: str, env: str, key: str) -> str | None:
    match = re.search(
        r"^%s:\s*[\"']?([A-Za-z0-9.-]+)" % key,
        read_text(os.path.join(root, "envs", env + ".yaml")) or "",
        re.MULTILINE,
    )
    return match.group(1) if match else None


def lock_candidates(root: str) -> list[dict]:
    """Every env lock in the project, with the platform its header (or spec) names."""
    folder = os.path.join(root, "envs", "locks")
    found = []
    for name in sorted(os.listdir(folder)) if os.path.isdir(folder) else []:
        if not name.endswith(".txt"):
            continue
        env = name[:-4]
        head = LOCK_HEAD.search(read_text(os.path.join(folder, name), 4096) or "")
        found.append(
            {
                "env": env,
                "platform": head.group("platform") if head else spec_value(root, env, "platform"),
                "python": head.group("python") if head else spec_value(root, env, "python"),
                "accelerator": head.group("accelerator")
                if head
                else spec_value(root, env, "accelerator"),
            }
        )
    return found


def file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def lock_record(root: str | None, env: str | None, platform: str | None, build: str | None) -> dict:
    """{env, path, sha256, platform, python, accelerator, matched_by, candidates, problem}."""
    empty = {
        "env": env,
        "path": None,
        "sha256": None,
        "platform": None,
        "python": None,
        "accelerator": None,
        "matched_by": None,
        "candidates": [],
        "problem": None,
    }
    if root is None:
        return dict(
            empty, problem="no project folder found (envs/, pyproject.toml or requirements.txt)"
        )
    candidates = lock_candidates(root)
    chosen, matched_by = pick_lock(candidates, env, platform, build)
    record = dict(empty, candidates=[c["env"] for c in candidates])
    if chosen is None:
        if env:
            return dict(
                record,
                problem="envs/locks/%s.txt does not exist (run: archlock lock --env %s)"
                % (env, env),
            )
        return dict(
            record, problem="no lock in envs/locks/ targets %s" % (platform or "this platform")
        )
    path = os.path.join(root, "envs", "locks", chosen["env"] + ".txt")
    return dict(
        record,
        env=chosen["env"],
        path="envs/locks/%s.txt" % chosen["env"],
        sha256=file_sha256(path),
        platform=chosen["platform"],
        python=chosen["python"],
        accelerator=chosen["accelerator"],
        matched_by=matched_by,
    )


def pick_lock(candidates: list[dict], env: str | None, platform: str | None, build: str | None):
    if env:
        named = [c for c in candidates if c["env"] == env]
        return (named[0], "--env") if named else (None, None)
    mine = [c for c in candidates if c["platform"] == platform]
    same_build = [c for c in mine if build and c["accelerator"] == build]
    if same_build:
        return same_build[0], "platform and torch build"
    return (mine[0], "platform") if mine else (None, None)


# -------------------------------------------------------------------------------------------
# The failing command
# -------------------------------------------------------------------------------------------


def run_command(
    argv: list[str],
    cwd: str,
    timeout: float | None,
    tail_lines: int,
    echo=None,
    env: dict | None = None,
) -> dict:
    """Run `argv`, pass its output through, keep the last `tail_lines` lines (stdout + stderr)."""
    echo = echo if echo is not None else sys.stderr
    started = time.monotonic()
    try:
        # its own process group, so the limit (or our Ctrl-C) stops what it started too
        proc = subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    except OSError as exc:
        code = 127 if isinstance(exc, FileNotFoundError) else 126
        return command_record(
            code,
            None,
            False,
            started,
            ["report: cannot run %s: %s" % (argv[0], exc)],
            1,
            tail_lines,
        )
    fired = threading.Event()
    timer = threading.Timer(timeout, lambda: (fired.set(), kill_group(proc))) if timeout else None
    if timer:
        timer.start()
    tail, total = collections.deque(maxlen=tail_lines), 0
    try:
        with proc:
            for raw in proc.stdout:
                line = raw.decode("utf-8", "replace").rstrip("\r\n")
                echo.write(line + "\n")
                echo.flush()
                tail.append(line.split("\r")[-1][:MAX_LINE])
                total += 1
    except BaseException:  # Ctrl-C: the command's group goes with us
        kill_group(proc)
        raise
    code = proc.wait()
    if timer:
        timer.cancel()
    return command_record(
        128 - code if code < 0 else code,
        signal_name(code),
        fired.is_set(),
        started,
        list(tail),
        total,
        tail_lines,
    )


def signal_name(code: int) -> str | None:
    if code >= 0:
        return None
    try:
        return signal.Signals(-code).name
    except ValueError:
        return "signal %d" % -code


def kill_group(proc) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except OSError:
        pass


def command_record(
    code: int,
    signal_name: str | None,
    timed_out: bool,
    started: float,
    tail: list[str],
    total: int,
    tail_lines: int,
) -> dict:
    return {
        "exit_code": code,
        "signal": signal_name,
        "timed_out": timed_out,
        "duration_s": round(time.monotonic() - started, 2),
        "output_tail": tail,
        "output_lines": total,
        "tail_lines": tail_lines,
    }


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
    redactor: Redactor | None = None,
    echo=None,
) -> dict:
    """The `archlock.report/1` document (already redacted)."""
    probe = load_probe()
    redactor = redactor or Redactor()
    cwd = os.getcwd()
    root = find_project(project or cwd)
    ran = run_command(command, cwd, timeout, tail_lines, echo) if command else None
    doc = probe.probe(sysm=sysm, with_torch=with_torch, with_scan=with_scan)
    platform = intended_platform(doc)
    report = {
        "schema": SCHEMA,
        "created": utc_now(),
        "tool": {"name": "archlock report", "mode": MODE, "probe_schema": probe.SCHEMA},
        "platform": platform,
        "project": {"name": os.path.basename(root), "root": root} if root else None,
        "lock": lock_record(root, env, platform, torch_build(doc)),
        "command": None,
        "probe": doc,
    }
    if ran is not None:
        report["command"] = dict(
            {
                "argv": redactor.argv(list(command)),
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
    build = build_text(torch_build(doc) or "cpu", facts.get("cuda"))
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


def output_problem(path: str) -> str | None:
    """Why the report cannot be written at `path` (checked before any work), or None."""
    for target in (path, markdown_path(path)):
        if os.path.isdir(target):
            return "%s is a folder; give --output a file path" % target
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
    write_atomic(args.output, json.dumps(report, indent=2) + "\n")
    write_atomic(md_path, markdown(report, os.path.basename(args.output)))
    print(
        "archlock report: wrote %s and %s (attach the JSON; paste the Markdown into the issue)"
        % (args.output, md_path)
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv == ["--torch-only"]:  # the probe's torch child, when this file is a bundle
        return load_probe().main(argv)
    parser = argparse.ArgumentParser(
        prog=os.path.basename(sys.argv[0]) or "report.py", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--project", help="the project folder (default: the nearest one at or above here)"
    )
    add_arguments(parser)
    args = parser.parse_args(argv)
    return collect(args, args.project)


# -------------------------------------------------------------------------------------------
# `archlock report`: the verb (imports of archlock modules stay inside these functions)
# -------------------------------------------------------------------------------------------


def register(subparsers) -> None:
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
    add_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.write_script:
        return write_script(args.write_script, check=args.check)
    python = target_python(args)
    if os.path.abspath(python) == os.path.abspath(sys.executable):
        return collect(args, str(args.project))
    argv = [python, os.path.abspath(__file__), *forwarded(args)]
    try:  # the child stops its command at --timeout; this limit covers the probe around it
        return subprocess.run(argv, timeout=args.timeout + PROBE_TIMEOUT, check=False).returncode
    except subprocess.TimeoutExpired:
        sys.stderr.write("archlock report: error: %s gave no report within %d s\n"
                         % (python, args.timeout + PROBE_TIMEOUT))
        return 124


def target_python(args: argparse.Namespace) -> str:
    if args.python:
        if not os.path.exists(args.python):
            from archlock.errors import ConfigError

            raise ConfigError(
                "--python %s: no such interpreter" % args.python,
                fix="pass the env's python, e.g. .venv/bin/python",
            )
        return args.python
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
        "--tail-lines",
        str(args.tail_lines),
    ]
    out += ["--env", args.env] if args.env else []
    out += ["--timeout", repr(args.timeout)]
    out += ["--no-torch"] if args.no_torch else []
    out += ["--no-scan"] if args.no_scan else []
    words = command_words(args.command)
    return out + (["--", *words] if words else [])


# -------------------------------------------------------------------------------------------
# The self-contained script: probe + report in one generated file
# -------------------------------------------------------------------------------------------

BUNDLE_LINES = (
    '"""archlock report, self-contained: probe + report in one file, standard library only.',
    "",
    "Run it with the interpreter of the env that fails (Python >= 3.8), from the project folder:",
    "",
    "    .venv/bin/python {name} [--env NAME] [-o FILE.json] [-- CMD ...]",
    "",
    "It writes FILE.json (attach it) and FILE.md (paste it into the issue). Nothing but allow-listed",
    "environment variables leaves the machine; paths under the home folder are written as ~/...",
    '"""',
    "",
    "import sys",
    "import types",
    "",
    "SOURCES = {{",
    "{sources}",
    "}}",
    "",
    "",
    "def load(name):",
    "    module = types.ModuleType(name)",
    "    module.__file__ = __file__  # the probe reruns this file with --torch-only",
    "    module.BUNDLED = True",
    "    sys.modules[name] = module",
    '    exec(compile(SOURCES[name], "%s <%s>" % (__file__, name), "exec"), module.__dict__)',
    "    return module",
    "",
    "",
    'if __name__ == "__main__":',
    '    load("archlock_probe")',
    '    sys.exit(load("archlock_report").main())',
    "",
)
TRIPLE = "'" * 3


def embedded(source: str) -> str:
    """A Python literal for `source`: a readable raw string when that is safe, else repr()."""
    if TRIPLE not in source and not source.endswith("\\"):
        return "r" + TRIPLE + source + TRIPLE
    return repr(source)


def bundle_text(name: str) -> str:
    from archlock.core import fsutil
    from archlock.inenv import probe

    sources = []
    for module, path in (("archlock_probe", probe.__file__), ("archlock_report", __file__)):
        sources.append("    %r: %s," % (module, embedded(read_text(path) or "")))
    body = "\n".join(BUNDLE_LINES).format(name=name, sources="\n".join(sources))
    return "#!/usr/bin/env python3\n" + fsutil.with_header(body, SCRIPT_COMMAND)


def write_script(path: str, check: bool = False) -> int:
    from pathlib import Path

    from archlock.core import fsutil
    from archlock.errors import ConfigError, DriftError

    target = os.path.abspath(path)
    text = bundle_text(os.path.basename(target))
    current = read_text(target)
    if check:
        if current != text:
            raise DriftError(
                "%s is stale or missing" % path, fix="run: archlock report --write-script %s" % path
            )
        return 0
    if current is not None and not fsutil.is_generated(Path(target)):
        raise ConfigError(
            "%s exists and was not written by archlock" % path,
            fix="choose another FILE or remove it",
        )
    fsutil.atomic_write(Path(target), text)
    os.chmod(target, 0o755)
    print(
        "archlock report: wrote %s; a teammate runs it with the failing env's python: "
        "python %s -- CMD ..." % (path, os.path.basename(path))
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
