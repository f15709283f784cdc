"""Reproduce a report: the report's packages (or the lock's) on the report's platform, then the
recorded command again, and a verdict: does it fail the same way?

Where it runs (`where_to_run`):
* a Linux report: an image for the report's platform (docker, `--network host`, the CA bundle as
  the BuildKit secret `ca-bundle`), or with `--venv` a throwaway venv when this host is that platform;
* a macOS report on a Mac: a throwaway venv;
* a macOS report elsewhere: refused in plain words (MPS needs macOS and Apple hardware), unless
  `--approximate linux-arm64` asks for the linux/arm64 CPU image of the same versions.

What it installs: exactly the report's distributions (`name==version`, no dependency resolution)
and Python minor, or with `--as-locked` the env's hashed lock. Versions that are not on PyPI (local
builds such as `+cpu`, versions PyPI lacks, packages without a wheel for the platform) are named
and left out: the verdict then says the reproduction is partial.
"""

from __future__ import annotations

import os
import posixpath
import re
import shutil
import ssl
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from archlock.build.build import (  # the same CA setting and secret as `archlock build`
    CA_ENV,
    CA_SECRET_ID,
)
from archlock.build.render import DEFAULT_UV_IMAGE
from archlock.core import docker as du
from archlock.core import proc
from archlock.core.platforms import PLATFORMS, Platform
from archlock.core.uvtool import uv_binary
from archlock.errors import ConfigError, ExternalCommandError, ToolMissingError
from archlock.inenv import probe
from archlock.inenv import report as report_script
from archlock.repro.drift import canonical

UV_IMAGE_ENV = "ARCHLOCK_UV_IMAGE"
IMAGE_NAME = "archlock-repro"
BUILD_TIMEOUT = 3600.0  # seconds for the image of a report's versions
# Variables that hold paths on the teammate's machine: meaningless in an image or another venv.
NOT_CARRIED = frozenset(
    {
        "VIRTUAL_ENV",
        "CONDA_PREFIX",
        "CONDA_DEFAULT_ENV",
        "PYTHONHOME",
        "PYTHONPATH",
        "LD_LIBRARY_PATH",
        "LD_PRELOAD",
        "DYLD_LIBRARY_PATH",
        "DYLD_FALLBACK_LIBRARY_PATH",
    }
)
PYTHON_WORD = re.compile(r"^python(?:\d+(?:\.\d+)?)?$")
PREFLIGHT_ROUNDS = 25


@dataclass(frozen=True)
class Options:
    as_locked: bool = False
    approximate: str | None = None
    venv: bool = False
    base: str | None = None
    uv_image: str = DEFAULT_UV_IMAGE
    ca_bundle: Path | None = None
    extra_index_url: str | None = None
    find_links: Path | None = None
    timeout: float = 1800.0
    keep: bool = False


@dataclass(frozen=True)
class Where:
    kind: str  # "image" | "venv"
    platform: Platform
    approximate: str | None = None  # why this is only an approximation


@dataclass
class Requirements:
    lines: list[str]
    hashes: bool
    source: str  # "report" | "lock"
    python: str  # major.minor
    left_out: list[tuple[str, str]] = field(default_factory=list)  # (name==version, why)
    notes: list[str] = field(default_factory=list)

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"

    @property
    def count(self) -> int:
        return sum(1 for line in self.lines if re.match(r"^[A-Za-z0-9][A-Za-z0-9._-]*==", line))


# ---------------------------------------------------------------------------------------------
# settings
# ---------------------------------------------------------------------------------------------


def default_ca_bundle(explicit: str | None) -> Path | None:
    """--ca-bundle FILE, else $ARCHLOCK_CA_BUNDLE, else the system bundle when there is one.
    "none" turns it off. The bundle reaches builds as a secret and is never stored in a layer."""
    value = explicit or os.environ.get(CA_ENV)
    if value == "none":
        return None
    if value:
        path = Path(value).expanduser()
        if not path.is_file():
            raise ConfigError(
                f"CA bundle {path} not found",
                fix=f"pass --ca-bundle FILE (or set {CA_ENV}) to a PEM file",
            )
        return path
    paths = ssl.get_default_verify_paths()
    for candidate in (paths.cafile, paths.openssl_cafile, "/etc/ssl/certs/ca-certificates.crt"):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


def default_uv_image(explicit: str | None) -> str:
    value = explicit or os.environ.get(UV_IMAGE_ENV) or DEFAULT_UV_IMAGE
    return du.check(value, du.IMAGE_REF_RE, "--uv-image", "an image reference holding /uv")


# ---------------------------------------------------------------------------------------------
# where
# ---------------------------------------------------------------------------------------------

MPS_REFUSAL = (
    "This report is from macOS: MPS (Apple's GPU backend) exists only on macOS on Apple hardware, "
    "so it cannot be reproduced in a container or on Linux. Run `archlock repro REPORT` on an "
    "Apple Silicon Mac to reproduce it in a throwaway venv, or approximate it here with "
    "`--approximate linux-arm64`: the same versions on linux/arm64 with torch's CPU build "
    "(MPS-only failures will not show; CPU and numerics problems will)."
)


def platform_for(os_name: str | None, arch: str | None) -> Platform | None:
    for platform in PLATFORMS.values():
        if platform.os == os_name and platform.binary_arch == arch:
            return platform
    return None


def report_platform(report: dict[str, Any]) -> Platform | None:
    doc = report["probe"]
    name = report_script.intended_platform(doc) or ""
    return PLATFORMS.get(name) or platform_for(
        (doc.get("os") or {}).get("name"), (doc.get("python") or {}).get("arch")
    )


def where_to_run(report: dict[str, Any], host: Platform | None, options: Options) -> Where | str:
    """Where to reproduce, or a plain sentence saying why it cannot be done here."""
    os_name = (report["probe"].get("os") or {}).get("name")
    platform = report_platform(report)
    if os_name == "macos":
        if options.approximate:
            return Where(
                "image",
                PLATFORMS[options.approximate],
                approximate=f"a macOS report approximated on {options.approximate} (CPU build, no MPS)",
            )
        if host is not None and host.os == "macos" and platform is not None:
            return Where("venv", platform)
        return MPS_REFUSAL
    if os_name != "linux" or platform is None or platform.docker_platform is None:
        return f"a report from {os_name} ({report.get('platform')}) has no platform archlock can rebuild"
    if options.venv:
        if host != platform:
            raise ConfigError(
                f"--venv: this host is {host.name if host else 'unknown'}, the report is {platform.name}",
                fix="drop --venv to rebuild in an image for the report's platform",
            )
        return Where("venv", platform)
    return Where("image", platform)


# ---------------------------------------------------------------------------------------------
# what to install
# ---------------------------------------------------------------------------------------------


def report_requirements(
    report: dict[str, Any], project_name: str, options: Options
) -> Requirements:
    """Exactly the report's distributions; local builds are left out unless a source is given."""
    python = ".".join(report["probe"]["python"]["version"].split(".")[:2])
    reqs = Requirements([], hashes=False, source="report", python=python)
    extra_source = bool(options.extra_index_url or options.find_links)
    for dist in report["probe"].get("distributions") or []:
        pin = f"{dist['name']}=={dist['version']}"
        if canonical(dist["name"]) == canonical(project_name):
            reqs.left_out.append((pin, "the project itself: its source is mounted from --project"))
        elif "+" in dist["version"] and not extra_source:
            reqs.left_out.append(
                (
                    pin,
                    "a local build (+" + dist["version"].partition("+")[2] + "): not on PyPI; "
                    "pass --find-links DIR or --extra-index-url URL that has it",
                )
            )
        else:
            reqs.lines.append(pin)
    return reqs


def lock_requirements(lock_path: Path, env_python: str) -> Requirements:
    lines = [
        line
        for line in lock_path.read_text(encoding="utf-8").splitlines()
        if not line.startswith("#")
    ]
    return Requirements(
        [line for line in lines if line.strip()], hashes=True, source="lock", python=env_python
    )


UV_NO_VERSION = re.compile(
    r"there is no version of ([A-Za-z0-9._-]+)==(\S+?)(?:\s+and|,|$)", re.MULTILINE
)
UV_NO_WHEEL = re.compile(r"([A-Za-z0-9._-]+)==(\S+) has no wheels with a matching platform tag")
UV_UNREACHABLE = re.compile(
    r"(Failed to fetch|error sending request|dns error|Could not connect|timed out)", re.IGNORECASE
)


def index_args(options: Options) -> list[str]:
    out = ["--extra-index-url", options.extra_index_url] if options.extra_index_url else []
    return out + (["--find-links", str(options.find_links)] if options.find_links else [])


def preflight(
    reqs: Requirements, platform: Platform, options: Options, run=subprocess.run
) -> Requirements:
    """Ask uv (metadata only) which pins PyPI cannot give this platform; leave those out, by name."""
    if reqs.source == "lock" or not reqs.lines:
        return reqs
    with tempfile.TemporaryDirectory(prefix="archlock-repro-") as tmp:
        for _ in range(PREFLIGHT_ROUNDS):
            path = Path(tmp) / "requirements.txt"
            path.write_text(reqs.text(), encoding="utf-8")
            cmd = [
                uv_binary(),
                "pip",
                "compile",
                str(path),
                "--no-deps",
                "--no-header",
                "--quiet",
                "--python-platform",
                platform.uv_python_platform,
                "--python-version",
                reqs.python,
                *index_args(options),
            ]
            done = run(
                cmd,
                capture_output=True,
                text=True,
                check=False,
                env={**os.environ, "NO_COLOR": "1"},
            )
            if done.returncode == 0 or not drop_named(reqs, done.stderr, platform):
                if done.returncode != 0:
                    reason = " ".join(
                        line.strip() for line in done.stderr.splitlines() if line.strip()
                    )[:300]
                    reqs.notes.append(f"could not check the versions against PyPI first: {reason}")
                return reqs
    return reqs


def drop_named(reqs: Requirements, stderr: str, platform: Platform) -> bool:
    """Move the pin uv names as unavailable into left_out; False when uv named none."""
    if UV_UNREACHABLE.search(stderr):
        return False
    for pattern, why in (
        (UV_NO_VERSION, "this version is not on PyPI (or the index given)"),
        (UV_NO_WHEEL, f"no wheel of this version for {platform.docker_platform or platform.name}"),
    ):
        match = pattern.search(stderr)
        if match:
            pin = f"{match.group(1)}=={match.group(2)}"
            kept = [
                line
                for line in reqs.lines
                if canonical(line.split("==")[0]) != canonical(match.group(1))
            ]
            if len(kept) == len(reqs.lines):
                return False
            reqs.lines[:] = kept
            reqs.left_out.append((pin, why))
            return True
    return False


# ---------------------------------------------------------------------------------------------
# the command again
# ---------------------------------------------------------------------------------------------


def rerun_argv(report: dict[str, Any], bin_dir: str, project_dir: str | None) -> list[str]:
    """The recorded argv, with the teammate's interpreter and project paths mapped to ours."""
    command, doc = report["command"], report["probe"]
    prefix = (doc.get("python") or {}).get("prefix") or ""
    root = (report.get("project") or {}).get("root") or ""
    out = []
    for index, word in enumerate(command["argv"]):
        base = word.rsplit("/", 1)[-1]
        if index == 0 and (
            PYTHON_WORD.match(base) or (prefix and word.startswith(prefix + "/bin/"))
        ):
            word = f"{bin_dir}/{base}" if not PYTHON_WORD.match(base) else f"{bin_dir}/python"
        elif project_dir and root and (word == root or word.startswith(root + "/")):
            word = project_dir + word[len(root) :]
        out.append(word)
    return out


def carried_env(report: dict[str, Any]) -> tuple[dict[str, str], list[str]]:
    env = report["probe"].get("env") or {}
    carried = {k: v for k, v in env.items() if k not in NOT_CARRIED}
    return carried, sorted(k for k in env if k in NOT_CARRIED)


def project_cwd(report: dict[str, Any], project: Path) -> str | None:
    rel = (report.get("command") or {}).get("cwd_in_project")
    if rel is None or not project.is_dir():
        return None
    return rel


# ---------------------------------------------------------------------------------------------
# verdicts
# ---------------------------------------------------------------------------------------------

EXCEPTION_LINE = re.compile(
    r"^\s*(?:[A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt|Fault|Warning)|error)\b[^\n]*"
)
PATH_DIRS = re.compile(r"(?:~|\.{0,2})?/(?:[^\s'\"():,/]+/)+")


def signature(lines: list[str]) -> str:
    """The line that says how it failed, without paths, addresses or trailing punctuation."""
    text = [line.strip() for line in lines if line.strip()]
    exceptions = [line for line in text if EXCEPTION_LINE.match(line)]
    line = (exceptions or text or [""])[-1]
    line = PATH_DIRS.sub("", line)
    return re.sub(r"0x[0-9a-fA-F]+", "0x?", line).strip()


def verdict(
    recorded: dict[str, Any], exit_code: int, tail: list[str], reqs: Requirements
) -> dict[str, Any]:
    before, now = recorded["exit_code"], exit_code
    same_line = signature(recorded.get("output_tail") or []) == signature(tail)
    partial = f" (partial: {len(reqs.left_out)} package(s) left out)" if reqs.left_out else ""
    which = "the locked versions" if reqs.source == "lock" else "the report's versions"
    if before == 0 and now == 0:
        status, text = "both-pass", f"the command succeeds here too with {which}"
    elif before != 0 and now == 0:
        status = "fixed-by-lock" if reqs.source == "lock" else "does-not-fail"
        text = (
            f"it does not fail with {which}: syncing the env to its lock fixes it"
            if reqs.source == "lock"
            else f"it does not fail here with {which}: the cause is outside the packages (see the drift: "
            "interpreter, env vars, driver, hardware)"
        )
    elif now == before and same_line:
        status, text = (
            "reproduced",
            f"it fails the same way with {which} (exit {now}, same last error line)",
        )
    else:
        status = "fails-differently"
        text = f"it fails differently with {which}: exit {now} here, {before} in the report"
        text += "" if same_line else f"; last error here: {signature(tail) or '(no output)'}"
    return {
        "status": status,
        "text": text + partial,
        "exit_code": now,
        "report_exit_code": before,
        "signature": signature(tail),
        "report_signature": signature(recorded.get("output_tail") or []),
    }


# ---------------------------------------------------------------------------------------------
# images
# ---------------------------------------------------------------------------------------------


def dockerfile(
    base: str, uv_image: str, reqs: Requirements, options: Options, labels: dict[str, str]
) -> str:
    """templates/repro.Dockerfile.j2 for these versions (rendered through render's environment)."""
    from archlock.build import render

    return render.environment().get_template("repro.Dockerfile.j2").render(
        source=reqs.source,
        python=reqs.python,
        uv_image=uv_image,
        base=base,
        ca_secret=CA_SECRET_ID,
        hashes=reqs.hashes,
        extra_index_url=options.extra_index_url,
        find_links=bool(options.find_links),
        labels=labels,
    )


def build_context(folder: Path, text: str, reqs: Requirements, options: Options) -> None:
    (folder / "Dockerfile").write_text(text, encoding="utf-8")
    (folder / "requirements.txt").write_text(reqs.text(), encoding="utf-8")
    if options.find_links:
        (folder / "wheels").mkdir()
        for wheel in sorted(options.find_links.glob("*.whl")):
            shutil.copy2(wheel, folder / "wheels" / wheel.name)


def failure_reason(output: str) -> str:
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    keep = [
        re.sub(r"^#\d+ [\d.]+ ", "", line)
        for line in lines
        if re.search(r"(error|× |cause:|hint:|Because )", line)
    ]
    return " ".join((keep or lines)[-4:])[:600]


def build_image(
    tag: str, dockerfile_text: str, reqs: Requirements, where: Where, options: Options
) -> float:
    if not du.engine_running():
        raise ToolMissingError(
            "the Docker engine is not running",
            fix="start dockerd (on Debian: scripts/local-infra.sh)",
        )
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="archlock-repro-") as tmp:
        build_context(Path(tmp), dockerfile_text, reqs, options)
        cmd = [du.classic_cli(), "build", "--platform", str(where.platform.docker_platform)]
        if options.ca_bundle:
            cmd += ["--secret", f"id={CA_SECRET_ID},src={options.ca_bundle}"]
        cmd += ["--network", "host", "-t", tag, tmp]
        env = {**os.environ, "DOCKER_BUILDKIT": "1"}
        done = proc.run(cmd, timeout=BUILD_TIMEOUT, env=env, missing_fix=du.MISSING_FIX)
    if not done.ok:
        reason = "timed out" if done.timed_out else failure_reason(done.stdout + done.stderr)
        raise ExternalCommandError(
            f"building the image of the {reqs.source}'s versions failed: {reason}",
            fix="check the base has python3 for that minor (or pass --base), the network "
            "and the CA bundle (--ca-bundle)",
        )
    return time.monotonic() - started


def image_tag(report_sha: str, platform: Platform, source: str) -> str:
    """archlock-repro/<platform>:<report|lock>-<report sha256 prefix>: one image per report and source."""
    return f"{IMAGE_NAME}/{platform.name}:{source}-{report_sha[:12]}"


def run_in_image(
    tag: str, report: dict[str, Any], where: Where, project: Path, options: Options
) -> dict[str, Any]:
    docker = du.docker_cli()  # the rerun streams through report.run_command: a report's record
    name = f"archlock-repro-{os.getpid()}-{int(time.time())}"
    rel = project_cwd(report, project)
    env, _ = carried_env(report)
    cmd = [
        docker,
        "run",
        "--rm",
        "--name",
        name,
        "--platform",
        str(where.platform.docker_platform),
        "--network",
        "host",
    ]
    for key, value in sorted(env.items()):
        cmd += ["-e", f"{key}={value}"]
    if rel is not None:
        cmd += ["-v", f"{project}:/app:ro", "-w", posixpath.normpath(f"/app/{rel}")]
    argv = rerun_argv(report, "/opt/venv/bin", "/app" if rel is not None else None)
    outcome = report_script.run_command(
        cmd + [tag] + argv,
        os.getcwd(),
        options.timeout,
        len(report["command"].get("output_tail") or []) or report_script.TAIL_LINES,
    )
    if outcome["timed_out"]:
        du.run(["rm", "--force", name], timeout=du.SHORT)
    return dict(outcome, argv=argv)


# ---------------------------------------------------------------------------------------------
# throwaway venvs (a macOS report on a Mac, or --venv on the report's own platform)
# ---------------------------------------------------------------------------------------------


def make_venv(folder: Path, reqs: Requirements, options: Options) -> Path:
    uv = uv_binary()
    env = {**os.environ, "NO_COLOR": "1", "UV_NO_PROGRESS": "1"}
    if options.ca_bundle:
        env["SSL_CERT_FILE"] = str(options.ca_bundle)
    (folder / "requirements.txt").write_text(reqs.text(), encoding="utf-8")
    steps = [
        [uv, "venv", "--quiet", "--python", reqs.python, str(folder / "venv")],
        [
            uv,
            "pip",
            "sync",
            "--quiet",
            "--python",
            str(folder / "venv" / "bin" / "python"),
            *(["--require-hashes"] if reqs.hashes else []),
            *index_args(options),
            str(folder / "requirements.txt"),
        ],
    ]
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True, check=False, env=env)
        if done.returncode != 0:
            raise ExternalCommandError(
                f"making the throwaway venv of the {reqs.source}'s versions failed: "
                f"{failure_reason(done.stderr)}",
                fix="check the network and --ca-bundle",
            )
    return folder / "venv"


def run_in_venv(
    venv: Path, report: dict[str, Any], project: Path, options: Options
) -> dict[str, Any]:
    rel = project_cwd(report, project)
    cwd = project / rel if rel is not None else venv.parent
    argv = rerun_argv(report, str(venv / "bin"), str(project) if rel is not None else None)
    carried, _ = carried_env(report)
    env = {
        k: v for k, v in os.environ.items() if not probe.env_allowed(k)
    }  # this host's own settings stay out
    env.update(
        carried,
        VIRTUAL_ENV=str(venv),
        PATH=f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
    )
    tail = len(report["command"].get("output_tail") or []) or report_script.TAIL_LINES
    outcome = report_script.run_command(argv, str(cwd), options.timeout, tail, env=env)
    return dict(outcome, argv=argv)
