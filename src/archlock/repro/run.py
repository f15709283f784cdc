"""Reproduce a report: the report's packages (or the lock's) on the report's platform, then the
recorded command again, and a verdict: does it fail the same way?

Where it runs (`where_to_run`):
* a Linux report: an image for the report's platform (docker, `--network host`, the CA bundle as
  the BuildKit secret `ca-bundle`), or with `--venv` a throwaway venv when this host is that
  platform;
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
import re
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from archlock.build.render import DEFAULT_UV_IMAGE
from archlock.core import cabundle, settings
from archlock.core import docker as du
from archlock.core.fsutil import temp_dir
from archlock.core.lockfile import canonical
from archlock.core.platforms import PLATFORMS, Platform
from archlock.core.project import Project
from archlock.core.uvtool import uv_binary
from archlock.errors import ConfigError
from archlock.inenv import locate

UV_IMAGE_ENV = settings.SECTIONS["render"]["uv-image"].env
IMAGE_NAME = "archlock-repro"
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
PREFLIGHT_TIMEOUT = 300.0  # seconds for one metadata-only uv compile
BUILD_TIMEOUT = 3600.0  # seconds for an image build or a venv install of torch


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


def default_ca_bundle(project: Project, explicit: str | None) -> Path | None:
    """The CA bundle `archlock build` would use (archlock.core.cabundle's one rule)."""
    return cabundle.resolve(settings.given(project.settings.build, ca_bundle=explicit).ca_bundle)


def default_uv_image(project: Project, explicit: str | None) -> str:
    """--uv-image, else render's `uv-image` setting ($ARCHLOCK_UV_IMAGE, pyproject), else uv's."""
    chosen = settings.given(project.settings.render, uv_image=explicit).uv_image
    value = chosen or DEFAULT_UV_IMAGE
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


def report_platform(report: dict[str, Any]) -> Platform | None:
    """The platform the report's environment was meant for (the report script's answer)."""
    return PLATFORMS.get(locate.intended_platform(report["probe"]) or "")


def where_to_run(report: dict[str, Any], host: Platform | None, options: Options) -> Where | str:
    """Where to reproduce, or a plain sentence saying why it cannot be done here."""
    os_name = (report["probe"].get("os") or {}).get("name")
    platform = report_platform(report)
    if os_name == "macos":
        if options.approximate:
            return Where(
                "image",
                PLATFORMS[options.approximate],
                approximate=f"a macOS report approximated on {options.approximate} "
                "(CPU build, no MPS)",
            )
        if host is not None and host.os == "macos" and platform is not None:
            return Where("venv", platform)
        return MPS_REFUSAL
    if os_name != "linux" or platform is None or platform.docker_platform is None:
        return (
            f"a report from {os_name} ({report.get('platform')}) "
            "has no platform archlock can rebuild"
        )
    if options.venv:
        if host != platform:
            raise ConfigError(
                f"--venv: this host is {host.name if host else 'unknown'}, "
                f"the report is {platform.name}",
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
    reqs: Requirements,
    platform: Platform,
    options: Options,
    run: Callable[..., subprocess.CompletedProcess[str]] = subprocess.run,
) -> Requirements:
    """Ask uv (metadata only) which pins PyPI cannot give this platform; leave those out by name."""
    if reqs.source == "lock" or not reqs.lines:
        return reqs
    with temp_dir("repro") as tmp:
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
            try:
                done = run(
                    cmd,
                    capture_output=True,
                    text=True,
                    check=False,
                    env={**os.environ, "NO_COLOR": "1"},
                    timeout=PREFLIGHT_TIMEOUT,
                )
            except subprocess.TimeoutExpired:
                reqs.notes.append(
                    f"could not check the versions against PyPI first: "
                    f"uv gave no answer within {PREFLIGHT_TIMEOUT:g} s"
                )
                return reqs
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
    if not isinstance(rel, str) or not project.is_dir():
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
            else f"it does not fail here with {which}: the cause is outside the packages "
            "(see the drift: interpreter, env vars, driver, hardware)"
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
