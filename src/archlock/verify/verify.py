"""`archlock verify`: prove that an env is the one we locked and that torch behaves there.

Host mode syncs `.archlock/venvs/<env>` from the env's hashed lock (or takes `--venv PATH
--no-sync`), runs `probe.py` and `suite.py` as plain files with that venv's interpreter and
compares what they saw with the env spec and the lock. Image mode (`--image TAG`) runs the same
two files inside a built image (`python` on PATH is the env's interpreter, the image's
`io.archlock.env` label names the env).

Result `archlock.verify/1`, one file per env (`results/<env>.json`):

    schema, env, platform, accelerator, mode ("host"|"image"), image ({tag, id, platform,
    digest} or null), host ({description, os, arch, emulated, by, gpus}), created (UTC), archlock
    (version), lock ({path, torch, sha256}), runner ({name, kind, os, arch}: the CI runner, or
    "local"), hardware ({cpu, gpus, nvidia_driver, macos, vm}), device (what the suite trained
    on), status ("pass"|"fail"),
    checks {name: {status: "pass"|"fail"|"skipped", why, fix (failures only)}},
    probe (archlock.probe/1), suite (archlock.suite/1)   -- paths under the project or home
                                                            are written as <project>/ and ~/
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from archlock import __version__
from archlock.core import diagnose, proc
from archlock.core.diagnose import Context
from archlock.core.fsutil import atomic_write
from archlock.core.jsonsrc import parse_json
from archlock.core.lockfile import pins as lock_pins
from archlock.core.platforms import (
    ACCELERATOR_TABLE,
    Accelerator,
    Platform,
    platform_of,
)
from archlock.errors import CheckFailed, ConfigError, ExternalCommandError, ToolMissingError
from archlock.inenv import probe, suite
from archlock.inenv.locate import build_of, build_text
from archlock.lock import expect as lock_expect
from archlock.lock import fit
from archlock.verify import runs

SCHEMA = "archlock.verify/1"
ENV_LABEL = "io.archlock.env"
IMAGE_SCRIPTS = "/opt/archlock-verify"
RUN_TIMEOUT = 1800.0  # torch imports take ~40 s under QEMU; the suite imports it three times
REQUIRE_DEVICE_ENV = "ARCHLOCK_REQUIRE_DEVICE"  # CI's GPU / real-Mac runners set it

Check = dict[str, Any]
Runner = Callable[[list[str], float], "subprocess.CompletedProcess[str]"]


def passed(why: str, **facts: Any) -> Check:
    return {"status": "pass", "why": why, **facts}


def failed(why: str, fix: str, **facts: Any) -> Check:
    return {"status": "fail", "why": why, "fix": fix, **facts}


def skipped(why: str, **facts: Any) -> Check:
    return {"status": "skipped", "why": why, **facts}


TIMED_OUT = 124  # the exit status a run past its limit reports (as timeout(1) does)


def run_process(command: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    """Run with a time limit (the whole process group is killed at the limit). A hang becomes
    exit 124 with the partial output and a last line saying so: a failed check, not a stuck job."""
    done = proc.run(command, timeout=timeout, missing_fix="install it or put it on PATH")
    if not done.timed_out:
        return subprocess.CompletedProcess(command, done.returncode or 0, done.stdout, done.stderr)
    stderr = (
        done.stderr.rstrip()
        + f"\nerror: {shlex.join(command[:3])} ...: {done.why().split(':')[0]}\n"
    )
    return subprocess.CompletedProcess(command, TIMED_OUT, done.stdout, stderr.lstrip("\n"))


# ---------------------------------------------------------------------------------------------
# which env, which host
# ---------------------------------------------------------------------------------------------


def host_platform(sysm: probe.System | None = None) -> Platform | None:
    """The platform row of the hardware we are on, Rosetta or QEMU notwithstanding."""
    sysm = sysm or probe.System()
    facts = probe.emulation_facts(sysm, sysm.archs(sysm.executable()))
    os_name = probe.os_name(sysm.system())
    return platform_of(os_name, facts["host_arch"] or facts["process_arch"])


def choose_env(envs: list[Any], name: str | None, host: Platform | None, where: Path) -> Any:
    """The named env, else the first env for this host's platform (non-opt-in first)."""
    if name:
        for env in envs:
            if env.name == name:
                return env
        raise ConfigError(
            f"--env {name}: no such env in {where}",
            fix=f"known envs: {', '.join(e.name for e in envs)}",
        )
    mine = sorted(
        (e for e in envs if host and e.platform.name == host.name), key=lambda e: e.opt_in
    )
    if not mine:
        label = host.name if host else "this host"
        raise ConfigError(
            f"{where}: no env targets {label}",
            fix=f"pass --env NAME, or add an env spec with `platform: {label}`",
        )
    return mine[0]


def project_envs(project: Any, name: str | None) -> list[Any]:
    return project.envs([name]) if name else project.envs()


# ---------------------------------------------------------------------------------------------
# where the scripts run: a venv on this host, or a built image
# ---------------------------------------------------------------------------------------------


@dataclass
class HostTarget:
    python: Path
    mode: str = "host"
    emulation_expected: bool = False

    def command(self, script: str, *args: str) -> list[str]:
        return [str(self.python), str(script_path(script)), *args]

    def tests_command(self, root: Path) -> list[str]:
        return [str(self.python), "-m", "pytest", "-q", "-p", "no:cacheprovider", str(root)]

    def describe(self) -> dict[str, Any] | None:
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
    extra: list[str] = field(default_factory=list)
    digest: str | None = None  # repo@sha256:... the image was pulled by or pushed as

    def docker_run(self, *mounts: str, workdir: str | None = None) -> list[str]:
        command = [
            "docker",
            "run",
            "--rm",
            "--platform",
            self.platform,
            "-e",
            "PYTHONDONTWRITEBYTECODE=1",
        ]
        if os.environ.get(suite.FAULT_ENV):  # the suite's test hook reaches the container too
            command += ["-e", suite.FAULT_ENV]
        if self.gpus:
            command += ["--gpus", "all"]
        for mount in (f"{self.scripts}:{IMAGE_SCRIPTS}:ro", *mounts):
            command += ["-v", mount]
        if workdir:
            command += ["-w", workdir]
        return [*command, *self.extra, self.tag]

    def command(self, script: str, *args: str) -> list[str]:
        return [*self.docker_run(), "python", f"{IMAGE_SCRIPTS}/{script}.py", *args]

    def tests_command(self, root: Path) -> list[str]:
        run = self.docker_run(f"{root}:/opt/archlock-project:ro", workdir="/opt/archlock-project")
        return [
            *run,
            "python",
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "/opt/archlock-project",
        ]

    def describe(self) -> dict[str, Any]:
        described = {"tag": self.tag, "id": self.image_id, "platform": self.platform}
        return {**described, "digest": self.digest}


def script_path(name: str) -> Path:
    return Path({"probe": probe.__file__, "suite": suite.__file__}[name])


def stage_scripts(folder: Path) -> Path:
    """Copy probe.py and suite.py with their siblings (and nothing else) into `folder` for a
    read-only mount."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("probe", *probe.SIBLINGS, "suite", *suite.SIBLINGS):
        shutil.copyfile(script_path("probe").with_name(f"{name}.py"), folder / f"{name}.py")
    return folder


def inspect_image(tag: str, runner: Runner) -> dict[str, Any]:
    done = runner(["docker", "image", "inspect", tag], 120.0)
    if done.returncode != 0:
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
    return requested or label


def host_has_nvidia(sysm: probe.System | None = None) -> bool:
    return probe.nvidia_driver(sysm or probe.System()) is not None


# ---------------------------------------------------------------------------------------------
# syncing a host venv from the lock
# ---------------------------------------------------------------------------------------------


def venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def venv_version(venv: Path) -> str | None:
    try:
        text = (venv / "pyvenv.cfg").read_text(encoding="utf-8")
    except OSError:
        return None
    found = re.search(r"^version(?:_info)?\s*=\s*(\d+\.\d+)", text, re.MULTILINE)
    return found.group(1) if found else None


def sync_commands(env: Any, venv: Path, lock: Path, index: Any | None) -> list[list[str]]:
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


def sync_venv(project: Any, env: Any, venv: Path) -> None:
    from archlock.core.uvtool import run_uv

    lock = project.env_lock(env.name)
    if not lock.is_file():
        raise ConfigError(
            f"{lock}: env {env.name} has no lock", fix=f"archlock lock --env {env.name}"
        )
    index = project.index(env.torch_index, env) if env.torch_index else None
    for args in sync_commands(env, venv, lock, index):
        run_uv(args, cwd=project.root, what=f"verify {env.name}: uv {args[0]} {args[1]}")


# ---------------------------------------------------------------------------------------------
# running probe, suite and the project's tests
# ---------------------------------------------------------------------------------------------


def parse_json_output(text: str) -> dict[str, Any] | None:
    """The JSON document a script printed (ignoring anything printed before it)."""
    for start in [m.start() for m in re.finditer(r"^\{", text, re.MULTILINE)]:
        try:
            value, _ = json.JSONDecoder().raw_decode(text[start:])
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    return None


def telling_line(done: subprocess.CompletedProcess[str]) -> str:
    """The line of a failed run that says why: docker's own error, else the last line."""
    lines = [
        line.strip() for line in (done.stderr + "\n" + done.stdout).splitlines() if line.strip()
    ]
    errors = [line for line in lines if "Error" in line or "error:" in line]
    return ((errors or lines or ["no output"])[-1 if not errors else 0])[:300]


def run_script(
    target: Any, runner: Runner, script: str, *args: str
) -> tuple[dict[str, Any] | None, str]:
    done = runner(target.command(script, *args), RUN_TIMEOUT)
    doc = parse_json_output(done.stdout)
    if doc is None:
        if target.mode == "image" and done.returncode in (126, 127):
            raise ConfigError(
                f"--image {target.tag}: cannot run `python` in it: {telling_line(done)}",
                fix="an env image must have the env's interpreter on PATH as `python` (archlock build images do)",
            )
        return None, f"{script}.py exited {done.returncode} without a result: {telling_line(done)}"
    return doc, ""


def run_project_tests(target: Any, runner: Runner, root: Path) -> Check:
    done = runner(target.tests_command(root), RUN_TIMEOUT)
    lines = [line for line in done.stdout.strip().splitlines() if line.strip()]
    last = lines[-1] if lines else (done.stderr.strip().splitlines() or ["no output"])[-1]
    if done.returncode == 0:
        return passed(f"pytest: {last}")
    if "No module named pytest" in done.stderr:
        return failed(
            "pytest is not installed in the env", "add pytest to a dependency group the envs lock"
        )
    return failed(
        f"pytest exited {done.returncode}: {last}",
        "run the project's tests in this env and fix them",
    )


def suite_args(probe_doc: dict[str, Any] | None, device: str | None, skip: list[str]) -> list[str]:
    args = []
    if probe_doc and (probe_doc.get("emulation") or {}).get("emulated"):
        args.append("--emulated")
    if probe_doc and (probe_doc.get("vm") or {}).get("virtual"):
        args.append("--virtual-machine")
    if device:
        args += ["--device", device]
    for name in skip:
        args += ["--skip", name]
    return args


# ---------------------------------------------------------------------------------------------
# the diagnosis (archlock.core.diagnose) as checks
# ---------------------------------------------------------------------------------------------

Findings = list[diagnose.Finding]


def first(findings: Findings, *kinds: str) -> diagnose.Finding | None:
    return next((f for f in findings if f.kind in kinds and f.severity == "error"), None)


def check_interpreter(doc: dict[str, Any], findings: Findings) -> Check:
    found = first(findings, "platform", "interpreter-arch", "python-version")
    if found:
        return failed(found.why, found.fix)
    python = doc.get("python") or {}
    return passed(
        f"{python.get('implementation', 'python')} {python.get('version')} runs as {python.get('arch')}"
    )


def check_emulation(doc: dict[str, Any], findings: Findings, ctx: Context) -> Check:
    facts = doc.get("emulation") or {}
    found = first(findings, "emulation")
    if found:
        return failed(found.why, found.fix)
    if not facts.get("emulated"):
        return passed(f"native on {facts.get('host_arch') or 'this'} hardware", summary="native")
    by, host = facts.get("by"), facts.get("host_arch")
    arch = first(findings, "interpreter-arch")
    if arch and not ctx.emulation_expected:  # an interpreter of the wrong architecture
        return failed(f"this interpreter runs under {by} on a {host} host", arch.fix)
    return passed(
        f"emulated by {by} on a {host} host, as expected for an image of another platform",
        summary=f"{by} on {host}, expected",
    )


def check_macos_floor(doc: dict[str, Any], findings: Findings, ctx: Context) -> Check | None:
    floor = diagnose.macos_floor(ctx.env, ctx.pins)
    if floor is None:
        return None
    found = first(findings, "macos-floor")
    if found:
        return failed(found.why, found.fix)
    return passed(f"macOS {(doc.get('os') or {}).get('version')} >= {floor[0]}")


def check_native_binaries(doc: dict[str, Any], findings: Findings) -> Check:
    scan = doc.get("binaries") or {}
    if "skipped" in scan or "foreign_total" not in scan:
        return failed("the compiled-file scan did not run", "run the probe without --no-scan")
    found = first(findings, "compiled-arch")
    if found:
        return failed(found.why, found.fix, foreign=found.data["foreign"])
    count, want = scan.get("compiled", 0), scan.get("expected_arch")
    return passed(f"{count} compiled files, all {want}", summary=f"{count} files, all {want}")


def check_packages(findings: Findings, ctx: Context) -> Check:
    missing, wrong = first(findings, "packages-missing"), first(findings, "packages-different")
    extra: list[str] = next((f.data["names"] for f in findings if f.kind == "packages-extra"), [])
    if missing or wrong:
        parts = [f"missing {', '.join(missing.data['names'][:5])}"] if missing else []
        parts += [f"different {', '.join(wrong.data['names'][:5])}"] if wrong else []
        why = f"installed packages differ from {ctx.lock_name}: {'; '.join(parts)}"
        return failed(why, ctx.resync, extra=extra)
    return passed(
        f"all {len(ctx.pins)} locked packages installed at their locked versions", extra=extra
    )


def torch_doc(doc: dict[str, Any]) -> dict[str, Any]:
    return doc.get("torch") or {}


def check_torch_version(doc: dict[str, Any], findings: Findings, ctx: Context) -> Check:
    facts, locked = torch_doc(doc), ctx.pins.get("torch")
    broken, torch = first(findings, "torch-import"), first(findings, "torch")
    if broken:
        return failed(broken.why, broken.fix)
    if torch and torch.found is None:
        return failed(torch.why, torch.fix)
    if torch and torch.data["version"]:
        return failed(
            f"torch {torch.data['have']} is installed; {ctx.lock_name} pins {locked}", torch.fix
        )
    if not facts.get("importable"):
        return failed(f"torch does not import: {facts.get('error', 'not probed')}", ctx.resync)
    return passed(f"torch {facts['version']}" + (f" as locked ({locked})" if locked else ""))


def check_torch_build(doc: dict[str, Any], findings: Findings) -> Check:
    torch = first(findings, "torch")
    if torch and torch.data.get("build"):
        return failed(f"torch {torch.data['shown']}; {torch.data['build']}", torch.fix)
    facts = torch_doc(doc)
    if not facts.get("importable"):
        return skipped("torch does not import (see torch_version)")
    build, cuda = build_of(facts, facts.get("version"))
    have = build_text(build or "cpu", cuda)
    return passed(f"torch {facts['version']} ({have})", summary=f"{facts['version']}, {have}")


def check_device(
    env: Any,
    doc: dict[str, Any],
    suite_doc: dict[str, Any] | None,
    findings: Findings,
    ctx: Context,
) -> Check:
    facts, want = torch_doc(doc), ACCELERATOR_TABLE[env.expect_device]
    ran = (suite_doc or {}).get("device")
    if want.available and not facts.get(want.available):
        return device_missing(want, findings, ctx)
    unsupported = first(findings, "cuda-arch")
    if unsupported:
        return failed(unsupported.why, unsupported.fix)
    unusable = suite_unusable(suite_doc).get(want.name)
    if unusable:
        return reported_but_unusable(want, doc, unusable)
    if ran != want.name:
        return failed(
            f"the suite ran on {ran}, {env.name} expects {want.name}",
            f"unset ARCHLOCK_DEVICE / --device, or check the {want.name} runtime",
        )
    names = ", ".join(d["name"] for d in facts.get("devices") or [])
    if names:
        return passed(f"the suite trained on {ran} ({names})", summary=f"{ran}: {names}")
    return passed(f"the suite trained on {ran}", summary=ran)


def device_missing(want: Accelerator, findings: Findings, ctx: Context) -> Check:
    if want.cuda and ctx.host_gpu:
        driver = first(findings, "cuda-driver")
        if driver:
            return failed(driver.why, driver.fix)
        return failed(
            "an NVIDIA driver is loaded but torch.cuda.is_available() is False",
            "check the driver supports this CUDA build (nvidia-smi) and that the GPU is visible (--gpus all)",
        )
    exercised = f"the {want.name.upper()} device path was not exercised"
    return skipped(f"{want.unavailable}; {exercised}, build checks still apply")


def suite_unusable(suite_doc: dict[str, Any] | None) -> dict[str, str]:
    """Devices torch reported that failed the suite's small op, with the error (suite.py)."""
    device = ((suite_doc or {}).get("checks") or {}).get("device") or {}
    return device.get("unusable") or {}


UNUSABLE_FIX = {
    "cuda": "check the driver supports this CUDA build (nvidia-smi) and that the GPU is healthy",
    "mps": "run on Apple Silicon outside a VM, on macOS >= 12.3, with torch's MPS build",
}


def reported_but_unusable(want: Accelerator, doc: dict[str, Any], why: str) -> Check:
    """A device torch reports but cannot compute on: a failure, except MPS on a virtual Mac
    (Apple's Virtualization framework gives no usable GPU; hosted macOS runners are VMs)."""
    if want.name == "mps" and (doc.get("vm") or {}).get("virtual"):
        return skipped(
            f"virtual Mac: MPS unusable ({why}); the MPS path needs a real Apple Silicon machine"
        )
    return failed(
        f"{want.name.upper()} is reported available but cannot run a kernel: {why}",
        UNUSABLE_FIX.get(want.name, "check the device's driver and runtime"),
    )


def required(check: Check, want: str, require_device: bool) -> Check:
    """With --require-device (a GPU or real-Mac runner), a skipped device path is a failure."""
    if check["status"] != "skipped" or not require_device:
        return check
    return failed(
        f"the {want} device path is required here (--require-device) but did not run: "
        + check["why"],
        f"run this job on a machine whose {want} device works (see [tool.archlock.ci] runners)",
    )


SUITE_FIXES = {
    "device": "unset ARCHLOCK_DEVICE or pass a device this host has",
    "sdpa": "check the torch build's attention kernels (and flash-attn's build, if installed)",
    "compile": "see the error; install a C++ compiler (CPU) or triton (CUDA), or report it upstream",
    "autocast": "check the torch build supports autocast on this device",
    "distributed": "check that localhost TCP works and the backend is built (gloo / nccl)",
    "training": "the tiny training run failed: see the error and the torch build",
    "loss_parity": "device numerics differ from CPU: check the torch build and TF32 / determinism settings",
    "checkpoint": "a checkpoint saved on the device does not load on CPU: check torch.save / torch.load",
}
FAULT_FIX = "unset ARCHLOCK_SUITE_FAULT: it is a test hook that forces this failure"


def suite_checks(suite_doc: dict[str, Any] | None, error: str) -> dict[str, Check]:
    if suite_doc is None or suite_doc.get("error"):
        why = error or (suite_doc or {}).get("error") or "the suite did not run"
        return {"suite": failed(why, "make torch import in this env, then verify again")}
    out = {}
    for name, check in suite_doc.get("checks", {}).items():
        key = "suite_device" if name == "device" else name
        out[key] = {k: v for k, v in check.items() if k in ("status", "why")}
        if check["status"] == "fail":
            fault = suite_doc.get("fault") and name == "loss_parity"
            out[key]["fix"] = (
                FAULT_FIX if fault else SUITE_FIXES.get(name, "see the suite's output")
            )
    return out


def compare(
    ctx: Context, doc: dict[str, Any], suite_doc: dict[str, Any] | None, suite_error: str = ""
) -> dict[str, Check]:
    findings = diagnose.diagnose(doc, ctx)
    checks: dict[str, Check] = {
        "interpreter": check_interpreter(doc, findings),
        "emulation": check_emulation(doc, findings, ctx),
    }
    floor = check_macos_floor(doc, findings, ctx)
    if floor:
        checks["macos"] = floor
    checks["native_binaries"] = check_native_binaries(doc, findings)
    checks["packages"] = check_packages(findings, ctx)
    checks["torch_version"] = check_torch_version(doc, findings, ctx)
    checks["torch_build"] = check_torch_build(doc, findings)
    checks["device"] = check_device(ctx.env, doc, suite_doc, findings, ctx)
    checks.update(suite_checks(suite_doc, suite_error))
    return checks


# ---------------------------------------------------------------------------------------------
# the result file
# ---------------------------------------------------------------------------------------------


def host_description(doc: dict[str, Any]) -> dict[str, Any]:
    osf, emu = doc.get("os") or {}, doc.get("emulation") or {}
    gpus = [d["name"] for d in torch_doc(doc).get("devices") or []]
    arch = emu.get("process_arch") or (doc.get("python") or {}).get("arch")
    text = f"{osf.get('distro') or osf.get('name')} {osf.get('version') or ''}".strip() + f" {arch}"
    cpu = (doc.get("machine") or {}).get("cpu_model")
    text += f", {cpu}" if cpu else ""
    text += f", {', '.join(gpus)}" if gpus else ", no GPU"
    if emu.get("emulated"):
        text += f" (emulated by {emu.get('by')} on {emu.get('host_arch')})"
    return {
        "description": text,
        "os": osf.get("name"),
        "arch": arch,
        "emulated": bool(emu.get("emulated")),
        "by": emu.get("by"),
        "gpus": gpus,
    }


def runner_facts(environ: dict[str, str] | None = None) -> dict[str, Any]:
    """Which CI runner produced the result (GitHub Actions' RUNNER_* variables), or "local"."""
    environ = dict(os.environ) if environ is None else environ
    if environ.get("GITHUB_ACTIONS") != "true":
        return {"name": "local", "kind": "not a CI runner"}
    return {
        "name": environ.get("RUNNER_NAME"),
        "kind": environ.get("RUNNER_ENVIRONMENT"),  # github-hosted | self-hosted
        "os": environ.get("RUNNER_OS"),
        "arch": environ.get("RUNNER_ARCH"),
    }


def hardware_facts(doc: dict[str, Any]) -> dict[str, Any]:
    """What the matrix shows per column: CPU, GPU model and driver, macOS version, VM or not."""
    osf = doc.get("os") or {}
    return {
        "cpu": (doc.get("machine") or {}).get("cpu_model"),
        "gpus": [d["name"] for d in torch_doc(doc).get("devices") or []],
        "nvidia_driver": (doc.get("gpu") or {}).get("nvidia_driver"),
        "macos": osf.get("version") if osf.get("name") == "macos" else None,
        "vm": (doc.get("vm") or {}).get("virtual"),
    }


def file_sha256(path: Path) -> str | None:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None


def redact(value: Any, replacements: list[tuple[str, str]]) -> Any:
    """Write paths under the project as <project>/ and under home as ~/ (results get shared)."""
    if isinstance(value, str):
        for prefix, short in replacements:
            if prefix and (value == prefix or value.startswith(prefix + "/")):
                return short + value[len(prefix) :]
        return value
    if isinstance(value, list):
        return [redact(item, replacements) for item in value]
    if isinstance(value, dict):
        return {key: redact(item, replacements) for key, item in value.items()}
    return value


def build_result(
    ctx: Context,
    target: Any,
    doc: dict[str, Any],
    suite_doc: dict[str, Any] | None,
    checks: dict[str, Check],
    root: Path,
) -> dict[str, Any]:
    env = ctx.env
    status = "fail" if any(c["status"] == "fail" for c in checks.values()) else "pass"
    result = {
        "schema": SCHEMA,
        "env": env.name,
        "platform": env.platform.name,
        "accelerator": env.accelerator,
        "mode": target.mode,
        "image": target.describe(),
        "host": host_description(doc),
        "created": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "archlock": __version__,
        "lock": {"path": ctx.lock_name, "torch": ctx.pins.get("torch")},
        "runner": runner_facts(),
        "hardware": hardware_facts(doc),
        "device": (suite_doc or {}).get("device"),
        "status": status,
        "checks": checks,
        "probe": doc,
        "suite": suite_doc,
    }
    return redact(result, [(str(root), "<project>"), (str(Path.home()), "~")])


def summary(result: dict[str, Any]) -> str:
    lines = [f"verify {result['env']} ({result['mode']}, {result['host']['description']}):"]
    for name, check in result["checks"].items():
        lines.append(f"  {check['status']:<8} {name:<16} {check['why']}")
    for name, check in result["checks"].items():
        if check["status"] == "fail":
            lines.append(f"  fix {name}: {check['fix']}")
    return "\n".join(lines)


def raise_on_failure(result: dict[str, Any], output: Path) -> None:
    bad = [(name, c) for name, c in result["checks"].items() if c["status"] == "fail"]
    if bad:
        first, check = bad[0]
        raise CheckFailed(
            f"{result['env']}: {len(bad)} check(s) failed ({', '.join(n for n, _ in bad)}); "
            f"first: {first}: {check['why']}; result in {output}",
            fix=check["fix"],
        )


# ---------------------------------------------------------------------------------------------
# the verb
# ---------------------------------------------------------------------------------------------


def resync_hint(env: Any, target: Any, venv: Path | None) -> str:
    if target.mode == "image":
        return f"rebuild the image from the lock: archlock build --env {env.name}"
    return f"re-sync the venv from the lock: archlock verify --env {env.name}" + (
        f" --venv {venv}" if venv else ""
    )


def reinstall_hint(env: Any, target: Any, venv: Path | None) -> str:
    """A sync keeps an installed package at its locked version as it is, files and all."""
    if target.mode == "image":
        return resync_hint(env, target, venv)
    where = venv or Path(".archlock") / "venvs" / env.name
    again = f"archlock verify --env {env.name}" + (f" --venv {venv}" if venv else "")
    return f"remove {where}, then {again} recreates it from the lock"


def verify_target(
    project: Any, env: Any, target: Any, args: argparse.Namespace, runner: Runner
) -> dict[str, Any]:
    own_runs = runs.load(project)  # [tool.archlock.verify]: checked before anything runs
    lock = project.env_lock(env.name)
    pins = lock_pins(lock.read_text(encoding="utf-8")) if lock.is_file() else {}
    lock_name = str(lock.relative_to(project.root)) if lock.is_file() else "(no lock)"
    ctx = Context(
        env,
        pins,
        lock_name,
        resync_hint(env, target, args.venv),
        target.emulation_expected,
        getattr(target, "gpus", False) or (target.mode == "host" and host_has_nvidia()),
        project_name=project.name,
        reinstall=reinstall_hint(env, target, args.venv),
        expect=lock_expect.load(project.locks_dir, env),
    )
    doc, error = run_script(target, runner, "probe")
    if doc is None:
        raise ExternalCommandError(f"verify {env.name}: {error}")
    suite_doc, suite_error = run_script(
        target, runner, "suite", *suite_args(doc, args.device, args.skip)
    )
    checks = compare(ctx, doc, suite_doc, suite_error)
    require = bool(getattr(args, "require_device", False))
    checks["device"] = required(checks["device"], env.expect_device, require)
    checks["machine"] = fit.check_machine(env, doc, ctx.expect, target.mode)  # the lock's needs
    if env.project_tests:
        checks["project_tests"] = run_project_tests(target, runner, project.root)
    checks.update(runs.run_checks(own_runs, project.root, target))
    result = build_result(ctx, target, doc, suite_doc, checks, project.root)
    result["lock"]["sha256"] = file_sha256(lock)
    return result


def host_target(project: Any, env: Any, args: argparse.Namespace) -> HostTarget:
    here = host_platform()
    if here is None or env.platform.name != here.name:
        raise ConfigError(
            f"env {env.name} targets {env.platform.name}; this host is {here.name if here else 'not in the platform table'}",
            fix=f"verify it in its image (archlock verify --image TAG) or on a {env.platform.name} machine",
        )
    venv = (args.venv or project.root / ".archlock" / "venvs" / env.name).absolute()
    if not args.no_sync:
        sync_venv(project, env, venv)
    if not venv_python(venv).exists():
        raise ConfigError(
            f"--venv {venv}: no bin/python in it",
            fix="pass the folder of a virtual environment, or drop --no-sync",
        )
    return HostTarget(venv_python(venv))


def image_target(project: Any, args: argparse.Namespace, runner: Runner) -> tuple[Any, ImageTarget]:
    if shutil.which("docker") is None:
        raise ToolMissingError("docker is not installed", fix="install Docker to verify images")
    if getattr(args, "pull", False):
        pull_image(project, args, runner)
    info = inspect_image(args.image, runner)
    name = image_env_name(info, args.image, args.env)
    env = choose_env(project.envs([name]), name, None, project.envs_dir)
    platform = image_platform(info)
    if env.platform.docker_platform and platform != env.platform.docker_platform:
        raise ConfigError(
            f"--image {args.image} is {platform}; env {env.name} is {env.platform.docker_platform}",
            fix=f"build the image for {env.platform.docker_platform}",
        )
    here = host_platform()
    scripts = stage_scripts(project.root / ".archlock" / "verify-scripts")
    require = bool(getattr(args, "require_device", False))
    gpus = env.accelerator_facts.cuda and (host_has_nvidia() or require)
    expected = here is None or here.docker_platform != platform
    target = ImageTarget(args.image, platform, info.get("Id", ""), scripts, gpus, expected)
    target.digest = image_digest(args.image, info)
    return env, target


def pull_image(project: Any, args: argparse.Namespace, runner: Runner) -> None:
    """`docker pull` the image (CI verifies by digest on a fresh runner), for --env's platform."""
    command = ["docker", "pull", "--quiet"]
    if args.env:
        env = choose_env(project.envs([args.env]), args.env, None, project.envs_dir)
        if env.platform.docker_platform:
            command += ["--platform", env.platform.docker_platform]
    done = runner([*command, args.image], RUN_TIMEOUT)
    if done.returncode != 0:
        raise ExternalCommandError(f"--pull {args.image}: docker pull failed: {telling_line(done)}")


def image_digest(ref: str, info: dict[str, Any]) -> str | None:
    """repo@sha256:... for the image: the reference itself when it is one, else a repo digest."""
    if "@sha256:" in ref:
        return ref
    repo = ref.rsplit(":", 1)[0] if ":" in ref.rsplit("/", 1)[-1] else ref
    digests = info.get("RepoDigests") or []
    known = [str(d) for d in digests]
    mine = [d for d in known if d.split("@", 1)[0] == repo]
    return (mine or known)[0] if known else None


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "verify", help="prove an env is the locked one and torch behaves the same there"
    )
    parser.add_argument(
        "--env", help="the env to verify (default: the one for this host, or the image's label)"
    )
    parser.add_argument(
        "--venv", type=Path, help="the venv to verify (default: .archlock/venvs/<env>)"
    )
    parser.add_argument(
        "--no-sync", action="store_true", help="use the venv as it is; do not sync it from the lock"
    )
    parser.add_argument("--image", help="verify inside this built image instead of a host venv")
    parser.add_argument("--output", type=Path, help="result file (default: results/<env>.json)")
    parser.add_argument("--device", choices=("cuda", "mps", "cpu"), help="force the suite's device")
    parser.add_argument(
        "--skip", action="append", default=[], choices=suite.CHECKS[1:], help="skip a suite check"
    )
    add_ci_arguments(parser)
    parser.set_defaults(func=run)


def add_ci_arguments(parser: argparse.ArgumentParser) -> None:
    """What CI's verify jobs pass: pull by digest, a required device, the job summary."""
    parser.add_argument("--pull", action="store_true", help="docker pull the --image first")
    parser.add_argument(
        "--require-device",
        action="store_true",
        default=os.environ.get(REQUIRE_DEVICE_ENV, "").lower() in ("1", "true"),
        help="fail when the env's device (cuda, mps) is not used; pass the GPUs in "
        f"(also ${REQUIRE_DEVICE_ENV}=true)",
    )
    parser.add_argument(
        "--summary", type=Path, help="append the checks as Markdown here ($GITHUB_STEP_SUMMARY)"
    )


def run(args: argparse.Namespace, runner: Runner = run_process) -> int:
    from archlock.core.project import Project

    project = Project.load(args.project)
    if args.image:
        if args.venv or args.no_sync:
            raise ConfigError(
                "--image cannot be combined with --venv / --no-sync", fix="drop one of them"
            )
        env, target = image_target(project, args, runner)
    else:
        env = choose_env(
            project_envs(project, args.env), args.env, host_platform(), project.envs_dir
        )
        target = host_target(project, env, args)
    result = verify_target(project, env, target, args, runner)
    output = args.output or project.root / "results" / f"{env.name}.json"
    atomic_write(output, json.dumps(result, indent=2) + "\n")
    print(summary(result))
    if getattr(args, "summary", None):
        from archlock.verify import jobsummary

        jobsummary.append(args.summary, jobsummary.verify_markdown(result, project))
    raise_on_failure(result, output)
    print(f"verify {env.name}: all checks pass or are skipped with a reason; result in {output}")
    return 0
