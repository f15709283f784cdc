"""Where verify runs probe.py and suite.py: a venv on this host, or a built image.

`Target` is what verify asks of either. A host target runs the scripts as plain files with the
venv's interpreter; an image target runs them in a fresh container through the one container
runner (`archlock.core.docker`), with the scripts mounted read-only. Every child has a time
limit; a hang becomes exit 124 (`finished`).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from archlock.core import docker as du
from archlock.core import proc
from archlock.core.jsonsrc import parse_json
from archlock.core.platforms import Platform, platform_of
from archlock.core.project import Index, Project
from archlock.core.spec import EnvSpec
from archlock.errors import ConfigError, ExternalCommandError
from archlock.inenv import probe, suite

ENV_LABEL = "io.archlock.env"
IMAGE_SCRIPTS = "/opt/archlock-verify"
IMAGE_PROJECT = "/opt/archlock-project"
RUN_TIMEOUT = 1800.0  # torch imports take ~40 s under QEMU; the suite imports it three times
TIMED_OUT = 124  # the exit status a run past its limit reports (as timeout(1) does)
PYTEST = ["-m", "pytest", "-q", "-p", "no:cacheprovider"]
IMAGE_PYTHON_FIX = (
    "an env image must have the env's interpreter on PATH as `python` (archlock build images do)"
)


def finished(done: proc.Result) -> subprocess.CompletedProcess[str]:
    """A finished child as a completed process. A hang becomes exit 124 with the partial output
    and a last line saying so: a failed check, not a stuck job."""
    command = list(done.argv)
    if not done.timed_out:
        return subprocess.CompletedProcess(command, done.returncode or 0, done.stdout, done.stderr)
    stderr = (
        done.stderr.rstrip()
        + f"\nerror: {shlex.join(command[:3])} ...: {done.why().split(':')[0]}\n"
    )
    return subprocess.CompletedProcess(command, TIMED_OUT, done.stdout, stderr.lstrip("\n"))


def telling_line(done: subprocess.CompletedProcess[str]) -> str:
    """The line of a failed run that says why: docker's own error, else the last line."""
    lines = [
        line.strip() for line in (done.stderr + "\n" + done.stdout).splitlines() if line.strip()
    ]
    errors = [line for line in lines if "Error" in line or "error:" in line]
    return ((errors or lines or ["no output"])[-1 if not errors else 0])[:300]


def run_process(command: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    """Run with a time limit (the whole process group is killed at the limit)."""
    return finished(proc.run(command, timeout=timeout, missing_fix="install it or put it on PATH"))


def script_path(name: str) -> Path:
    return Path({"probe": probe.__file__, "suite": suite.__file__}[name])


class Target(Protocol):
    """Where verify runs probe.py, suite.py, the project's tests and its own commands."""

    mode: str  # "host" or "image": the result file's mode and which hints a failure gives
    emulation_expected: bool  # the target runs under emulation on purpose (QEMU, Rosetta)

    def gpus_visible(self) -> bool:
        """Whether an NVIDIA GPU reaches what runs there."""
        ...

    def run_script(self, script: str, *args: str) -> subprocess.CompletedProcess[str]:
        """probe.py or suite.py with `args`, within RUN_TIMEOUT."""
        ...

    def run_tests(self, root: Path) -> subprocess.CompletedProcess[str]:
        """pytest over the project at `root`, within RUN_TIMEOUT."""
        ...

    def run_command(self, argv: Sequence[str], root: Path, timeout: float) -> proc.Result:
        """One of the project's own commands (stderr merged into stdout), within `timeout`."""
        ...

    def describe(self) -> dict[str, Any] | None:
        """The result file's `image`: what was run, or None for a host venv."""
        ...

    def refusal(self, done: subprocess.CompletedProcess[str]) -> ConfigError | None:
        """The error a script run without a result means the target itself is unusable (then
        no check can run there), or None: the script's own failure."""
        ...


@dataclass
class HostTarget:
    python: Path
    mode: str = "host"
    emulation_expected: bool = False

    def gpus_visible(self) -> bool:
        return host_has_nvidia()

    def command(self, script: str, *args: str) -> list[str]:
        return [str(self.python), str(script_path(script)), *args]

    def tests_command(self, root: Path) -> list[str]:
        return [str(self.python), *PYTEST, str(root)]

    def run_script(self, script: str, *args: str) -> subprocess.CompletedProcess[str]:
        return run_process(self.command(script, *args), RUN_TIMEOUT)

    def run_tests(self, root: Path) -> subprocess.CompletedProcess[str]:
        return run_process(self.tests_command(root), RUN_TIMEOUT)

    def run_command(self, argv: Sequence[str], root: Path, timeout: float) -> proc.Result:
        """`argv` with the venv first on PATH, in the project folder."""
        venv_bin = str(self.python.parent)
        env = {**os.environ, "PATH": venv_bin + os.pathsep + os.environ.get("PATH", "")}
        env["VIRTUAL_ENV"] = str(self.python.parent.parent)
        env.pop("PYTHONHOME", None)
        fix = f"install a POSIX shell at {argv[0]} (every run command starts there)"
        return proc.run(
            argv, timeout=timeout, cwd=root, env=env, missing_fix=fix, merge_stderr=True
        )

    def describe(self) -> dict[str, Any] | None:
        return None

    def refusal(self, done: subprocess.CompletedProcess[str]) -> ConfigError | None:
        return None


@dataclass
class ImageTarget:
    tag: str
    platform: str  # docker platform, e.g. "linux/arm64"
    image_id: str
    scripts: Path  # a folder holding probe.py and suite.py, mounted read-only
    gpus: bool = False
    emulation_expected: bool = False
    mode: str = "image"
    project_root: Path | None = None
    digest: str | None = None  # repo@sha256:... the image was pulled by or pushed as

    def gpus_visible(self) -> bool:
        return self.gpus

    def container_env(self) -> dict[str, str]:
        env = {"PYTHONDONTWRITEBYTECODE": "1"}
        fault = os.environ.get(suite.FAULT_ENV)
        if fault:  # the suite's test hook reaches the container too
            env[suite.FAULT_ENV] = fault
        return env

    def run(
        self, argv: Sequence[str], *mounts: str, workdir: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """`argv` in a fresh container of the image, the scripts mounted, within RUN_TIMEOUT."""
        done = du.run_container(
            self.tag,
            argv,
            timeout=RUN_TIMEOUT,
            platform=self.platform,
            mounts=(f"{self.scripts}:{IMAGE_SCRIPTS}:ro", *mounts),
            env=self.container_env(),
            workdir=workdir,
            gpus=self.gpus,
        )
        return finished(done)

    def run_script(self, script: str, *args: str) -> subprocess.CompletedProcess[str]:
        return self.run(["python", f"{IMAGE_SCRIPTS}/{script}.py", *args])

    def run_tests(self, root: Path) -> subprocess.CompletedProcess[str]:
        mount = f"{root}:{IMAGE_PROJECT}:ro"
        return self.run(["python", *PYTEST, IMAGE_PROJECT], mount, workdir=IMAGE_PROJECT)

    def run_command(self, argv: Sequence[str], root: Path, timeout: float) -> proc.Result:
        """`argv` in a fresh container of the image (the project is in the image; `root` is not
        mounted); a container past its limit is removed (by name: killing the client does not
        stop the container)."""
        return du.run_container(
            self.tag,
            argv,
            timeout=timeout,
            merge_stderr=True,
            platform=self.platform,
            name=f"archlock-run-{uuid.uuid4().hex[:12]}",
            gpus=self.gpus,
        )

    def describe(self) -> dict[str, Any]:
        described = {"tag": self.tag, "id": self.image_id, "platform": self.platform}
        return {**described, "digest": self.digest}

    def refusal(self, done: subprocess.CompletedProcess[str]) -> ConfigError | None:
        """126 / 127: the engine found no `python` to run in the image."""
        if done.returncode not in (126, 127):
            return None
        why = f"--image {self.tag}: cannot run `python` in it: {telling_line(done)}"
        return ConfigError(why, fix=IMAGE_PYTHON_FIX)


def stage_scripts(folder: Path) -> Path:
    """Copy probe.py and suite.py with their siblings (and nothing else) into `folder` for a
    read-only mount."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("probe", *probe.SIBLINGS, "suite", *suite.SIBLINGS):
        shutil.copyfile(script_path("probe").with_name(f"{name}.py"), folder / f"{name}.py")
    return folder


# -- this host ---------------------------------------------------------------------------------
def host_platform(sysm: probe.System | None = None) -> Platform | None:
    """The platform row of the hardware we are on, Rosetta or QEMU notwithstanding."""
    sysm = sysm or probe.System()
    facts = probe.emulation_facts(sysm, sysm.archs(sysm.executable()))
    os_name = probe.os_name(sysm.system())
    return platform_of(os_name, facts["host_arch"] or facts["process_arch"])


def host_has_nvidia(sysm: probe.System | None = None) -> bool:
    return probe.nvidia_driver(sysm or probe.System()) is not None


# -- an image: its facts, pulling it -----------------------------------------------------------
def inspect_image(tag: str) -> dict[str, Any]:
    done = du.run(["image", "inspect", tag], timeout=du.SHORT)
    if not done.ok:
        reason = (done.stderr.strip().splitlines() or ["no answer"])[-1]
        raise ConfigError(
            f"--image {tag}: docker cannot inspect it: {reason}",
            fix="build it first: archlock build --env NAME",
        )
    data = parse_json(
        done.stdout, f"docker image inspect {tag}", what="answer", fix="check the image"
    )
    data = data[0] if isinstance(data, list) and data else data
    if not isinstance(data, dict):
        raise ConfigError(
            f"--image {tag}: docker image inspect gave no image", fix="check the image"
        )
    return data


def image_platform(info: dict[str, Any]) -> str:
    variant = info.get("Variant")
    base = f"{info.get('Os', 'linux')}/{info.get('Architecture', '')}"
    return f"{base}/{variant}" if variant and info.get("Architecture") != "arm64" else base


def image_env_name(info: dict[str, Any], tag: str, requested: str | None) -> str:
    labels = (info.get("Config") or {}).get("Labels") or {}
    label = labels.get(ENV_LABEL)
    if requested and label and requested != label:
        raise ConfigError(
            f"--image {tag} is labelled {ENV_LABEL}={label}, not {requested}",
            fix=f"pass --env {label} or the right image",
        )
    if not (requested or label):
        raise ConfigError(
            f"--image {tag} has no {ENV_LABEL} label",
            fix="build it with archlock build, or pass --env NAME",
        )
    return requested or str(label)


def image_digest(ref: str, info: dict[str, Any]) -> str | None:
    """repo@sha256:... for the image: the reference itself when it is one, else a repo digest."""
    if "@sha256:" in ref:
        return ref
    repo = ref.rsplit(":", 1)[0] if ":" in ref.rsplit("/", 1)[-1] else ref
    digests = info.get("RepoDigests") or []
    known = [str(d) for d in digests]
    mine = [d for d in known if d.split("@", 1)[0] == repo]
    return (mine or known)[0] if known else None


def pull_image(image: str, platform: str | None) -> None:
    """`docker pull` the image (CI verifies by digest on a fresh runner), for that platform."""
    args = ["pull", "--quiet", *(["--platform", platform] if platform else []), image]
    done = finished(du.run(args, timeout=RUN_TIMEOUT))
    if done.returncode != 0:
        raise ExternalCommandError(f"--pull {image}: docker pull failed: {telling_line(done)}")


# -- a host venv synced from the lock ----------------------------------------------------------
def venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def venv_version(venv: Path) -> str | None:
    try:
        text = (venv / "pyvenv.cfg").read_text(encoding="utf-8")
    except OSError:
        return None
    found = re.search(r"^version(?:_info)?\s*=\s*(\d+\.\d+)", text, re.MULTILINE)
    return found.group(1) if found else None


def sync_commands(env: EnvSpec, venv: Path, lock: Path, index: Index | None) -> list[list[str]]:
    """`uv venv` + `uv pip sync --require-hashes` for the env's lock (argument lists after `uv`)."""
    keep = venv_version(venv) == env.python
    create = ["venv", "--python", env.python, "--allow-existing" if keep else "--clear", str(venv)]
    sync = ["pip", "sync", "--require-hashes", "--python", str(venv_python(venv)), str(lock)]
    if index is not None:
        location = index.url
        if index.is_flat_folder:
            sync += ["--find-links", location.removeprefix("file://")]
        else:
            sync += ["--extra-index-url", location, "--index-strategy", "unsafe-best-match"]
    return [create, sync]


def sync_venv(project: Project, env: EnvSpec, venv: Path) -> None:
    from archlock.core.uvtool import run_uv

    lock = project.env_lock(env.name)
    if not lock.is_file():
        raise ConfigError(
            f"{lock}: env {env.name} has no lock", fix=f"archlock lock --env {env.name}"
        )
    index = project.index(env.torch_index, env) if env.torch_index else None
    for args in sync_commands(env, venv, lock, index):
        run_uv(args, cwd=project.root, what=f"verify {env.name}: uv {args[0]} {args[1]}")
