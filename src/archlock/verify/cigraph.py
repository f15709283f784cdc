"""The CI graph as data: which env is verified where, and what the matrix job expects.

One graph, two readers: the workflow template renders it (build -> verify -> matrix per Linux
env, the Mac job, the matrix job) and `archlock ci` runs it on this machine. Runner labels are
project data (`[tool.archlock.ci] runners`, env name -> labels): an env without labels is verified
on the GitHub-hosted runner of its architecture, which has no NVIDIA GPU and, on macOS, is a
virtual Mac whose MPS cannot compute. An env with labels is verified there and must use its
device (`verify --require-device`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from archlock.core import docker as du
from archlock.core import settings
from archlock.errors import ConfigError

HOSTED_MAC = "macos-14"  # GitHub-hosted Apple Silicon: a virtual Mac (MPS reported, not usable)
HOSTED_AMD64 = "ubuntu-24.04"
LABELS_EXAMPLE = {
    "cuda": '["self-hosted", "linux", "x64", "gpu"]',
    "mps": '["self-hosted", "macOS", "ARM64"]',
}


@dataclass(frozen=True)
class CiSettings:
    runners: dict[str, tuple[str, ...]]  # env name -> runner labels

    def labels(self, env: str) -> tuple[str, ...] | None:
        return self.runners.get(env)


@dataclass(frozen=True)
class VerifyJob:
    """One verify job: where it runs and what it passes to `nox -s verify`."""

    env: str
    platform: str | None  # docker platform of the image; None for a host (Mac) job
    accelerator: str
    runs_on: tuple[str, ...]  # runner labels
    qemu_runs_on: tuple[str, ...]  # where it runs when the QEMU fallback is asked for
    require_device: bool  # labels were given: the env's device must be used

    @property
    def runs_on_json(self) -> str:
        return json.dumps(list(self.runs_on))

    @property
    def qemu_runs_on_json(self) -> str:
        return json.dumps(list(self.qemu_runs_on))

    @property
    def verify_args(self) -> str:
        return "--require-device" if self.require_device else ""


def load(project: Any) -> CiSettings:
    """`[tool.archlock.ci]`, checked: every key names an env of the project, every label a label."""
    raw = settings.section(project, "ci")["runners"]
    known = [spec.name for spec in project.all_envs()]
    where = f"{project.root / 'pyproject.toml'}: [tool.archlock.ci] runners"
    for env, labels in raw.items():
        if env not in known:
            raise ConfigError(f"{where}.{env}: no such env", fix=settings.suggest(env, known))
        if not labels:
            raise ConfigError(
                f"{where}.{env}: needs at least one label",
                fix=f"write {env} = {LABELS_EXAMPLE['cuda']}",
            )
        for label in labels:
            du.check(
                label, du.RUNNER_RE, f"{where}.{env}", "runner labels are letters, digits and ._-"
            )
    return CiSettings({env: tuple(labels) for env, labels in raw.items()})


def linux_job(env: str, platform: str, accelerator: str, hosted: str, ci: CiSettings) -> VerifyJob:
    """A Linux env's verify job: its labels, else the hosted runner its image was built on."""
    labels = ci.labels(env)
    if labels:
        return VerifyJob(env, platform, accelerator, labels, labels, True)
    return VerifyJob(env, platform, accelerator, (hosted,), (HOSTED_AMD64,), False)


def mac_job(env: str, accelerator: str, ci: CiSettings) -> VerifyJob:
    labels = ci.labels(env)
    runs_on = labels or (HOSTED_MAC,)
    return VerifyJob(env, None, accelerator, runs_on, runs_on, bool(labels))


def workflow_context(targets: list[Any], mac_envs: list[Any], ci: CiSettings) -> dict[str, Any]:
    """What workflow.yml.j2 needs beyond the build targets: the verify jobs and expected envs."""
    linux = [
        linux_job(t.env, t.platforms[0], t.accelerator, t.runner, ci)
        for t in targets
        if not t.opt_in
    ]
    macs = [mac_job(spec.name, spec.accelerator, ci) for spec in mac_envs]
    return {"verify_jobs": linux, "mac_jobs": macs, "expected_envs": [j.env for j in linux + macs]}


def mac_envs(project: Any) -> list[Any]:
    """The macOS envs CI verifies: not opt-in, with a lock."""
    return [
        spec
        for spec in project.all_envs()
        if spec.platform.os == "macos" and not spec.opt_in and project.env_lock(spec.name).is_file()
    ]


def device_note(result: dict[str, Any], ci: CiSettings | None) -> str | None:
    """Why the env's device path did not run here, and how to make CI run it, or None."""
    check = (result.get("checks") or {}).get("device") or {}
    if check.get("status") != "skipped":
        return None
    accelerator = result.get("accelerator")
    name = {"cuda": "CUDA", "mps": "MPS"}.get(accelerator or "", str(accelerator))
    note = f"The {name} device path was not run: {check.get('why', 'no reason recorded')}."
    if ci is not None and not ci.labels(result["env"]):
        example = LABELS_EXAMPLE.get(accelerator or "", '["self-hosted"]')
        note += (
            f" [tool.archlock.ci] runners names no runner for {result['env']}, so CI verifies it"
            f" on a hosted runner without one; to run it, add {result['env']} = {example}."
        )
    return note
