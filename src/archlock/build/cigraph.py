"""The CI graph as data: where each env is built and verified, and what the matrix job expects.

One graph, two readers: the workflow template renders it (per Linux env a build job and a verify
job that needs only that build; a verify job per Mac env; the matrix gate; publish after all of
them) and `archlock ci` runs it on this machine. Runner labels are project data
(`[tool.archlock.ci] runners` for verify jobs, `build-runners` for builds; env name -> labels): an
env without labels runs on the GitHub-hosted runner of its architecture, which has no NVIDIA GPU
and, on macOS, is a virtual Mac whose MPS cannot compute. An env with verify labels must use its
device there (`verify --require-device`). Fork and Dependabot pull requests never reach a
labelled runner: their jobs fall back to the hosted one (see `UNTRUSTED`).
"""

from __future__ import annotations

import datetime
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from archlock.build import diskbudget, runners
from archlock.core import docker as du
from archlock.core import settings
from archlock.core.project import Project
from archlock.core.spec import EnvSpec
from archlock.errors import ConfigError

HOSTED_MAC = runners.HOSTED_MAC
HOSTED_AMD64 = runners.HOSTED_AMD64
LABELS_EXAMPLE = {
    "cuda": '["self-hosted", "linux", "x64", "gpu"]',
    "mps": '["self-hosted", "macOS", "ARM64"]',
}
# A pull request from a fork or from Dependabot: a read-only token, no secrets. It never logs in,
# never uploads SARIF and never runs on a team's own (labelled) runner.
UNTRUSTED = (
    "github.event_name == 'pull_request' && (github.event.pull_request.head.repo.fork"
    " || github.event.pull_request.user.login == 'dependabot[bot]')"
)
QEMU_ASKED = "inputs.qemu || vars.ARCHLOCK_ARM64_QEMU == 'true'"
SECRET_RE = re.compile(r"^(?!GITHUB_)[A-Za-z_][A-Za-z0-9_]{0,99}$")
GHCR = "ghcr.io"


class ImageBuild(Protocol):
    """What the graph reads of one image to build (archlock.build.render.ImageTarget)."""

    @property
    def env(self) -> str: ...
    @property
    def platforms(self) -> tuple[str, ...]: ...
    @property
    def accelerator(self) -> str: ...
    @property
    def runner(self) -> str: ...
    @property
    def opt_in(self) -> bool: ...
    @property
    def wheel_bytes(self) -> int: ...


@dataclass(frozen=True)
class CiSettings:
    runners: dict[str, tuple[str, ...]]  # env name -> runner labels for its verify job
    build_runners: dict[str, tuple[str, ...]] = field(default_factory=dict)  # ... for its build
    username_secret: str | None = None  # registry login from these repository secrets
    password_secret: str | None = None

    def labels(self, env: str) -> tuple[str, ...] | None:
        return self.runners.get(env)


def _runs_on(labels: tuple[str, ...], hosted: str) -> str:
    """A job's runs-on for a team's labels: the hosted runner for untrusted pull requests."""
    team = json.dumps(list(labels))
    return du.gh(f"fromJSON(({UNTRUSTED}) && '{json.dumps([hosted])}' || '{team}')")


def _hosted_runs_on(hosted: str, qemu_fallback: bool) -> str:
    if qemu_fallback and hosted != HOSTED_AMD64:
        return du.gh(f"({QEMU_ASKED}) && '{HOSTED_AMD64}' || '{hosted}'")
    return du.yaml_str(hosted)


@dataclass(frozen=True)
class BuildJob:
    """One env's image build: where it runs and whether the hosted runner frees disk first."""

    env: str
    platform: str
    hosted: str  # the hosted runner of its architecture
    labels: tuple[str, ...] | None  # [tool.archlock.ci] build-runners
    disk: diskbudget.DiskPlan

    @property
    def id(self) -> str:
        return f"build-{self.env}"

    @property
    def runs_on(self) -> str:
        if self.labels:
            return _runs_on(self.labels, self.hosted)
        return _hosted_runs_on(self.hosted, qemu_fallback=True)

    @property
    def free_disk(self) -> bool:
        """Rendered when the estimate exceeds a hosted runner's free disk: it runs only there."""
        return self.disk.free_disk


@dataclass(frozen=True)
class VerifyJob:
    """One verify job: where it runs and what it passes to `nox -s verify`."""

    env: str
    platform: str | None  # docker platform of the image; None for a host (Mac) job
    accelerator: str
    runs_on_labels: tuple[str, ...]  # runner labels
    qemu_runs_on: tuple[str, ...]  # where it runs when the QEMU fallback is asked for
    require_device: bool  # labels were given: the env's device must be used

    @property
    def id(self) -> str:
        return f"verify-{self.env}"

    @property
    def runs_on(self) -> str:
        hosted = self.qemu_runs_on[0] if self.platform is not None else HOSTED_MAC
        if self.require_device:
            return _runs_on(self.runs_on_labels, hosted)
        return _hosted_runs_on(self.runs_on_labels[0], qemu_fallback=self.platform is not None)

    @property
    def require_device_value(self) -> str:
        """ARCHLOCK_REQUIRE_DEVICE: true on the team's runner, false where it fell back."""
        if not self.require_device:
            return du.yaml_str("false")
        return du.gh(f"({UNTRUSTED}) && 'false' || 'true'")


@dataclass(frozen=True)
class Login:
    username: str  # a rendered expression
    password: str
    workflow_token: bool  # GITHUB_TOKEN: it logs in to GHCR only


def load(project: Project) -> CiSettings:
    """`[tool.archlock.ci]`, checked: every key names an env of the project, every label a label,
    every secret a secret name."""
    raw = project.settings.ci
    known = [spec.name for spec in project.all_envs()]
    where = f"{project.root / 'pyproject.toml'}: [tool.archlock.ci]"
    return CiSettings(
        _labels(raw.runners, known, f"{where} runners"),
        _labels(raw.build_runners, known, f"{where} build-runners"),
        _secret(raw.registry_username_secret, f"{where} registry-username-secret"),
        _secret(raw.registry_password_secret, f"{where} registry-password-secret"),
    )


def _secret(name: str | None, where: str) -> str | None:
    if name is None:
        return None
    return du.check(name, SECRET_RE, where, "a repository secret's name, e.g. REG_TOKEN")


def _labels(
    raw: Mapping[str, tuple[str, ...]], known: list[str], where: str
) -> dict[str, tuple[str, ...]]:
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
    return {env: tuple(labels) for env, labels in raw.items()}


def login(ci: CiSettings) -> Login:
    """The registry login: named secrets when set, else the workflow's token for GHCR."""
    username = (
        du.gh(f"secrets.{ci.username_secret}") if ci.username_secret else du.gh("github.actor")
    )
    password = (
        du.gh(f"secrets.{ci.password_secret}")
        if ci.password_secret
        else du.gh("secrets.GITHUB_TOKEN")
    )
    return Login(username, password, ci.password_secret is None)


def linux_job(env: str, platform: str, accelerator: str, hosted: str, ci: CiSettings) -> VerifyJob:
    """A Linux env's verify job: its labels, else the hosted runner its image was built on."""
    labels = ci.labels(env)
    if labels:
        return VerifyJob(env, platform, accelerator, labels, (hosted,), True)
    return VerifyJob(env, platform, accelerator, (hosted,), (HOSTED_AMD64,), False)


def mac_job(env: str, accelerator: str, ci: CiSettings) -> VerifyJob:
    labels = ci.labels(env)
    runs_on = labels or (HOSTED_MAC,)
    return VerifyJob(env, None, accelerator, runs_on, (HOSTED_MAC,), bool(labels))


def build_job(target: ImageBuild, ci: CiSettings) -> BuildJob:
    disk = diskbudget.plan(target.wheel_bytes)
    labels = ci.build_runners.get(target.env)
    return BuildJob(target.env, target.platforms[0], target.runner, labels, disk)


def workflow_context(
    targets: Sequence[ImageBuild], mac_envs: list[EnvSpec], ci: CiSettings
) -> dict[str, Any]:
    """What workflow.yml.j2 needs beyond the build targets: per-env jobs, login, expected envs."""
    shipped = [t for t in targets if not t.opt_in]
    builds = [build_job(t, ci) for t in shipped]
    linux = [linux_job(t.env, t.platforms[0], t.accelerator, t.runner, ci) for t in shipped]
    macs = [mac_job(spec.name, spec.accelerator, ci) for spec in mac_envs]
    return {
        "builds": builds,
        "verify_jobs": linux,
        "mac_jobs": macs,
        "expected_envs": [j.env for j in linux + macs],
        "login": login(ci),
        "untrusted": UNTRUSTED,
        "free_disk_paths": diskbudget.FREE_DISK_PATHS,
    }


def problems(context: dict[str, Any], registry_prefix: str, today: datetime.date) -> list[str]:
    """What would make the rendered workflow fail on GitHub: `render` warns, `--check` fails."""
    found = []
    for job in [*context["verify_jobs"], *context["mac_jobs"]]:
        found += [f"{job.id}: {line}" for line in runners.retired(job.runs_on_labels, today)]
    for build in context["builds"]:
        labels = build.labels or (build.hosted,)
        found += [f"{build.id}: {line}" for line in runners.retired(labels, today)]
        if build.disk.too_big and not build.labels:
            found.append(
                f"{build.id}: its build needs about {build.disk.peak_gb} of disk at peak, more than"
                " a hosted runner has even after freeing its toolchains; name a larger runner:"
                f' [tool.archlock.ci] build-runners = {{ {build.env} = ["LABEL"] }}'
            )
    host = registry_prefix.split("/", 1)[0]
    if host and host != GHCR and context["login"].workflow_token:
        found.append(
            f"registry {host} is not GHCR, so the workflow's GITHUB_TOKEN cannot log in to it: set"
            " [tool.archlock.ci] registry-username-secret and registry-password-secret"
        )
    return found


def mac_envs(project: Project) -> list[EnvSpec]:
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
