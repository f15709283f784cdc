"""Real images: both shipped Linux envs built for linux/amd64 and linux/arm64 (QEMU), checked inside.

Runs with `pytest --integration` as root on a Debian host: scripts/local-infra.sh provides the
engine, QEMU, base images made without Docker Hub, a registry on 127.0.0.1:5000 and a local uv
image. Then `archlock build --push` builds every env of the bake file's release group (the
fallback when buildx is missing), pushes it, and assembles the multi-arch list.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from archlock.build import build
from archlock.core.project import Project
from archlock.lock import expect as lock_expect

pytestmark = [pytest.mark.docker, pytest.mark.integration]

REPO = Path(__file__).resolve().parents[2]
REPO_LOCKS = REPO / "envs" / "locks"
TAG = "it"
INSIDE = r"""
import json, os, platform, shutil, sys
out = {"machine": platform.machine(), "executable": sys.executable, "uid": os.getuid(), "uv": shutil.which("uv")}
import torch
out.update(torch=torch.__version__, cuda=torch.version.cuda, cuda_available=torch.cuda.is_available(),
           device="cuda" if torch.cuda.is_available() else "cpu", total=float(torch.ones(8).sum()))
print(json.dumps(out))
"""


def docker(*args: str, timeout: float = 600) -> str:
    done = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, check=False)
    assert done.returncode == 0, f"docker {' '.join(args)}: {done.stderr[-2000:]}"
    return done.stdout


@pytest.fixture(scope="module")
def infra() -> dict[str, str]:
    if os.geteuid() != 0:
        pytest.skip("host-lacks: root, which scripts/local-infra.sh needs (packages, dockerd, binfmt)")
    done = subprocess.run(
        ["bash", str(REPO / "scripts" / "local-infra.sh"), "--print-env"], capture_output=True, text=True, timeout=1500, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)


def ca_bundle() -> Path | None:
    for value in (os.environ.get(build.CA_ENV), os.environ.get("SSL_CERT_FILE"), "/etc/ssl/certs/ca-certificates.crt"):
        if value and Path(value).is_file():
            return Path(value)
    return None


def options(infra: dict[str, str], project: Path, extra_sets: tuple[str, ...] = (), **changes: object) -> build.BuildOptions:
    """Local uv image and registry; every env on this host's debootstrap base of its arch (the
    specs may name public bases that Docker Hub would serve elsewhere)."""
    env = {"UV_IMAGE": infra["ARCHLOCK_UV_IMAGE"], "REGISTRY": infra["ARCHLOCK_REGISTRY"] + "/", "TAG": TAG}
    bases = tuple(
        f"{e.name}*.args.BASE_IMAGE={infra['ARCHLOCK_BASE_IMAGE_' + e.platform.docker_platform.split('/')[1].upper()]}"
        for e in linux_envs()
    )
    return build.BuildOptions(project=project, network="host", ca_bundle=ca_bundle(), env=env, quiet=True, sets=bases + extra_sets, **changes)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def pushed(infra: dict[str, str]) -> build.BuildReport:
    build.check_rendered(REPO)
    report = build.build(options(infra, REPO, push=True))
    assert report.images, report.notes
    return report


def linux_envs() -> list:
    return [e for e in Project.load(REPO).envs() if e.platform.docker_platform]


def locked_torch(env_name: str) -> str:
    text = Project.load(REPO).env_lock(env_name).read_text()
    match = re.search(r"^torch==(\S+)", text, re.M)
    assert match, f"no torch pin in the {env_name} lock"
    return match.group(1)


@pytest.mark.parametrize("env", linux_envs(), ids=lambda e: e.name)
def test_image_runs_the_locked_torch_on_its_architecture(pushed: build.BuildReport, infra: dict[str, str], env) -> None:
    tag = f"{infra['ARCHLOCK_REGISTRY']}/archlock:{TAG}-{env.name}"
    facts = json.loads(docker("run", "--rm", "--platform", env.platform.docker_platform, tag, "python", "-c", INSIDE).strip().splitlines()[-1])
    assert facts["machine"] == env.platform.machine
    assert facts["executable"] == "/opt/venv/bin/python"
    assert facts["uid"] == 10001 and facts["uv"] is None
    pin = locked_torch(env.name)
    assert facts["torch"] == pin or facts["torch"].split("+")[0] == pin
    assert facts["total"] == 8.0
    if env.accelerator == "cuda":
        locked = lock_expect.load(REPO_LOCKS, env)  # the CUDA build, from the lock's nvidia-* wheels
        assert locked is not None and facts["cuda"] == locked.cuda
        assert facts["device"] == "cpu" and facts["cuda_available"] is False  # no GPU on this host
    else:
        assert facts["cuda"] is None


@pytest.mark.parametrize("env", linux_envs(), ids=lambda e: e.name)
def test_image_labels_name_env_and_lock(pushed: build.BuildReport, infra: dict[str, str], env) -> None:
    tag = f"{infra['ARCHLOCK_REGISTRY']}/archlock:{TAG}-{env.name}"
    info = json.loads(docker("image", "inspect", tag))[0]
    labels = info["Config"]["Labels"]
    lock = Project.load(REPO).env_lock(env.name)
    assert labels["io.archlock.env"] == env.name
    assert labels["io.archlock.lock-sha256"] == hashlib.sha256(lock.read_bytes()).hexdigest()
    assert info["Architecture"] == env.platform.docker_platform.split("/")[1]


def test_manifest_list_holds_one_image_per_platform(pushed: build.BuildReport, infra: dict[str, str]) -> None:
    name = f"{infra['ARCHLOCK_REGISTRY']}/archlock:{TAG}"
    assert name in pushed.manifests
    listing = json.loads(docker("manifest", "inspect", "--insecure", name))
    platforms = {f"{m['platform']['os']}/{m['platform']['architecture']}" for m in listing["manifests"]}
    assert platforms == {"linux/amd64", "linux/arm64"}


def test_source_only_change_reuses_the_dependency_layer(pushed: build.BuildReport, infra: dict[str, str], tmp_path: Path) -> None:
    copy = tmp_path / "project"
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
    for name in filter(None, tracked.decode().split("\0")):  # the project as committed: never a venv
        (copy / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, copy / name)
    (copy / "src" / "archlock" / "_touched.py").write_text("CHANGED = 'yes'\n")
    tag = "archlock-it:source-change"
    report = build.build(options(infra, copy, (f"linux-arm64-cpu.tags={tag}",), targets=("linux-arm64-cpu",)))
    lines = "\n".join(report.log).splitlines()
    assert step_state(lines, "uv pip sync") == "CACHED", "\n".join(lines[-60:])  # torch not reinstalled
    assert step_state(lines, "COPY . /app") == "DONE"  # the source layer did change
    changed = docker("run", "--rm", "--platform", "linux/arm64", tag, "python", "-c", "import archlock._touched as t; print(t.CHANGED)")
    assert changed.strip() == "yes"  # the installed project is the new source, not a cached wheel
    docker("image", "rm", tag)


def step_state(lines: list[str], needle: str) -> str:
    """CACHED or DONE for the BuildKit step whose title holds `needle` (plain progress output)."""
    step = next(line.split()[0] for line in lines if line.startswith("#") and needle in line)
    states = [line.split()[1] for line in lines if line.split()[:1] == [step] and line.split()[1:2] in (["CACHED"], ["DONE"])]
    assert states, f"no end state for step {step} ({needle})"
    return states[-1]


def archlock(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ARCHLOCK_")}
    return subprocess.run([sys.executable, "-m", "archlock", "--project", str(REPO), *args],
                          capture_output=True, text=True, timeout=1500, check=False, env={**clean, **env})


@pytest.mark.parametrize("env", linux_envs(), ids=lambda e: e.name)
def test_verify_passes_inside_each_image(pushed: build.BuildReport, infra: dict[str, str], env) -> None:
    """`archlock verify --image` for both architectures; the results feed CI's matrix."""
    tag = f"{infra['ARCHLOCK_REGISTRY']}/archlock:{TAG}-{env.name}"
    out = REPO / "results" / f"{env.name}-image.json"
    done = archlock("verify", "--image", tag, "--output", str(out))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    result = json.loads(out.read_text())
    assert (result["env"], result["mode"], result["status"]) == (env.name, "image", "pass")
    assert result["probe"]["python"]["arch"] == env.platform.binary_arch
    assert result["checks"]["native_binaries"]["status"] == "pass"
    assert result["checks"]["loss_parity"]["status"] == "pass"
    expected_device = "skipped" if env.accelerator == "cuda" else "pass"  # no GPU on this host
    assert result["checks"]["device"]["status"] == expected_device


def test_verify_catches_a_loss_mismatch_inside_the_arm64_image(pushed: build.BuildReport, infra: dict[str, str], tmp_path: Path) -> None:
    tag = f"{infra['ARCHLOCK_REGISTRY']}/archlock:{TAG}-linux-arm64-cpu"
    out = tmp_path / "r.json"
    done = archlock("verify", "--image", tag, "--output", str(out), ARCHLOCK_SUITE_FAULT="loss")
    assert done.returncode == 6, done.stderr
    assert "1 check(s) failed (loss_parity)" in done.stderr
    result = json.loads(out.read_text())
    if result["probe"]["emulation"]["host_arch"] != "arm64":
        assert result["checks"]["emulation"]["why"].endswith("as expected for an image of another platform")


def test_an_image_without_python_on_path_is_refused_in_one_line(infra: dict[str, str]) -> None:
    base = infra["ARCHLOCK_BASE_IMAGE_ARM64"]  # Debian's python3 only: no `python` on PATH
    done = archlock("verify", "--image", base, "--env", "linux-arm64-cpu")
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1, done.stderr
    assert f"--image {base}: cannot run `python` in it" in done.stderr
