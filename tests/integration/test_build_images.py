"""Real images: both shipped Linux envs built for linux/amd64 and linux/arm64, by real buildx and by
the BuildKit fallback, pushed, compared and verified inside.

Runs with `pytest --integration` as root on a Debian host: scripts/local-infra.sh provides the
engine, buildx, QEMU 10, base images made without Docker Hub, a registry on 127.0.0.1:5000 and a
local uv image. `archlock build --push` then builds every env with buildx (the build platform's uv
installs the venv: arm64 emulates only a shell, the interpreter and the compiler) and assembles the
list with imagetools; `archlock build --push --fallback` builds the same targets with the engine's
BuildKit. Both run on one engine, so the second reuses the first's layer cache: what is compared is
what each path asks the engine to build (same layers, labels and lock sha256), and each build is
paid once. Every image is verified inside (`archlock verify --image`).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from endtoend import ca_bundle, docker

from archlock.build import build
from archlock.core.project import Project
from archlock.lock import expect as lock_expect

pytestmark = [pytest.mark.docker, pytest.mark.integration]

REPO = Path(__file__).resolve().parents[2]
REPO_LOCKS = REPO / "envs" / "locks"
TAGS = {"buildx": "it", "fallback": "it-fallback"}
INSIDE = r"""
import json, os, platform, shutil, sys
out = {"machine": platform.machine(), "executable": sys.executable, "uid": os.getuid(),
       "uv": shutil.which("uv")}
import torch
out.update(torch=torch.__version__, cuda=torch.version.cuda,
           cuda_available=torch.cuda.is_available(),
           device="cuda" if torch.cuda.is_available() else "cpu", total=float(torch.ones(8).sum()))
print(json.dumps(out))
"""


def options(
    infra: dict[str, str], project: Path, tag: str, extra_sets: tuple[str, ...] = (), **changes: Any
) -> build.BuildOptions:
    """Local uv image and registry; every env on this host's debootstrap base, the multi-arch list
    (the $BUILDPLATFORM stages take the build platform's image from it, the rest the target's)."""
    env = {
        "UV_IMAGE": infra["ARCHLOCK_UV_IMAGE"],
        "REGISTRY": infra["ARCHLOCK_REGISTRY"] + "/",
        "TAG": tag,
    }
    sets = (f"*.args.BASE_IMAGE={infra['ARCHLOCK_BASE_IMAGE']}", *extra_sets)
    return build.BuildOptions(
        project=project,
        network="host",
        ca_bundle=ca_bundle(),
        env=env,
        quiet=True,
        sets=sets,
        **changes,
    )


@pytest.fixture(scope="session")
def pushed(infra: dict[str, str]) -> dict[str, build.BuildReport]:
    """Both paths, pushed: {"buildx": report, "fallback": report}."""
    build.check_rendered(REPO)
    reports = {}
    for mode, tag in TAGS.items():
        reports[mode] = build.build(
            options(infra, REPO, tag, push=True, force_fallback=mode == "fallback")
        )
        assert reports[mode].mode == mode and reports[mode].images, reports[mode].notes
    return reports


def linux_envs() -> list:
    return [e for e in Project.load(REPO).envs() if e.platform.docker_platform]


def ref(infra: dict[str, str], mode: str, env_name: str) -> str:
    return f"{infra['ARCHLOCK_REGISTRY']}/archlock:{TAGS[mode]}-{env_name}"


def locked_torch(env_name: str) -> str:
    text = Project.load(REPO).env_lock(env_name).read_text()
    match = re.search(r"^torch==(\S+)", text, re.MULTILINE)
    assert match, f"no torch pin in the {env_name} lock"
    return match.group(1)


def inspect(tag: str) -> dict[str, Any]:
    return json.loads(docker("image", "inspect", tag))[0]


@pytest.mark.parametrize("env", linux_envs(), ids=lambda e: e.name)
def test_buildx_and_fallback_build_the_same_image(
    pushed: dict[str, build.BuildReport], infra: dict[str, str], env
) -> None:
    lock = Project.load(REPO).env_lock(env.name)
    seen = {}
    for mode in TAGS:
        info = inspect(ref(infra, mode, env.name))
        labels = info["Config"]["Labels"]
        assert labels["io.archlock.env"] == env.name
        assert labels["io.archlock.lock-sha256"] == hashlib.sha256(lock.read_bytes()).hexdigest()
        assert info["Architecture"] == env.platform.docker_platform.split("/")[1]
        assert info["Config"]["User"] == "10001:10001"
        seen[mode] = (
            info["RootFS"]["Layers"],
            labels,
            info["Config"]["Env"],
            info["Config"]["Cmd"],
        )
    assert seen["buildx"] == seen["fallback"]  # same layer content (diff ids), labels, env, command


@pytest.mark.parametrize("env", linux_envs(), ids=lambda e: e.name)
def test_image_runs_the_locked_torch_on_its_architecture(
    pushed: dict[str, build.BuildReport], infra: dict[str, str], env
) -> None:
    tag = ref(infra, "buildx", env.name)
    out = docker(
        "run", "--rm", "--platform", env.platform.docker_platform, tag, "python", "-c", INSIDE
    )
    facts = json.loads(out.strip().splitlines()[-1])
    assert facts["machine"] == env.platform.machine
    assert facts["executable"] == "/opt/venv/bin/python"
    assert facts["uid"] == 10001 and facts["uv"] is None
    pin = locked_torch(env.name)
    assert facts["torch"] == pin or facts["torch"].split("+")[0] == pin
    assert facts["total"] == 8.0
    if env.accelerator == "cuda":
        locked = lock_expect.load(
            REPO_LOCKS, env
        )  # the CUDA build, from the lock's nvidia-* wheels
        assert locked is not None and facts["cuda"] == locked.cuda
        assert facts["device"] == "cpu" and facts["cuda_available"] is False  # no GPU on this host
    else:
        assert facts["cuda"] is None


def test_arm64_dependencies_come_from_the_build_platform_stage(
    pushed: dict[str, build.BuildReport],
) -> None:
    """The arm64 image's venv steps are the cross-install ones (the build platform's uv, with
    --python-platform); the arch benchmark measures what that saves."""
    lines = "\n".join(pushed["buildx"].log).splitlines()
    assert step_state(lines, "--python-platform aarch64-manylinux_2_28 --python-version 3.11") in (
        "DONE",
        "CACHED",
    )
    dockerfile = (REPO / "docker" / "linux-arm64-cpu.Dockerfile").read_text()
    assert "FROM --platform=$BUILDPLATFORM ${UV_IMAGE} AS uv-build" in dockerfile
    assert "--mount=type=bind,from=uv-build,source=/uv,target=/tmp/archlock/uv" in dockerfile


@pytest.mark.parametrize("mode", TAGS)
def test_manifest_list_holds_one_image_per_platform(
    pushed: dict[str, build.BuildReport], infra: dict[str, str], mode: str
) -> None:
    name = f"{infra['ARCHLOCK_REGISTRY']}/archlock:{TAGS[mode]}"
    assert pushed[mode].manifests == [name]
    listing = json.loads(docker("manifest", "inspect", "--insecure", name))
    platforms = {
        f"{m['platform']['os']}/{m['platform']['architecture']}" for m in listing["manifests"]
    }
    assert platforms == {"linux/amd64", "linux/arm64"}


def test_each_path_says_what_it_could_not_attach(pushed: dict[str, build.BuildReport]) -> None:
    if "docker" in (
        subprocess.run(
            ["docker", "buildx", "inspect"],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        ).stdout
        or ""
    ):
        assert any("cannot attach SBOM/provenance" in note for note in pushed["buildx"].notes)
    assert any(
        "attestations" in note and "need buildx" in note for note in pushed["fallback"].notes
    )


def test_source_only_change_reuses_the_dependency_layer(
    pushed: dict[str, build.BuildReport], infra: dict[str, str], tmp_path: Path
) -> None:
    copy = tmp_path / "project"
    tracked = subprocess.run(
        ["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True
    ).stdout
    for name in filter(
        None, tracked.decode().split("\0")
    ):  # the project as committed: never a venv
        (copy / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, copy / name)
    # content no earlier run can have built: a warm BuildKit cache must not make COPY a hit
    nonce = uuid.uuid4().hex
    (copy / "src" / "archlock" / "_touched.py").write_text(f"CHANGED = {nonce!r}\n")
    tag = f"archlock-it:source-change-{nonce[:12]}"
    try:
        report = build.build(
            options(
                infra,
                copy,
                TAGS["buildx"],
                (f"linux-arm64-cpu.tags={tag}",),
                targets=("linux-arm64-cpu",),
            )
        )
        lines = "\n".join(report.log).splitlines()
        venv = step_states(lines, "--require-hashes --no-deps")  # one step per layer of the venv
        assert venv == ["CACHED"] * len(venv), "\n".join(lines[-60:])  # torch not reinstalled
        assert step_state(lines, "COPY . /src/app") == "DONE"  # the new source, dated
        assert step_state(lines, "/src/ /") == "DONE"  # and its layer in the image
        changed = docker(
            "run",
            "--rm",
            "--platform",
            "linux/arm64",
            tag,
            "python",
            "-c",
            "import archlock._touched as t; print(t.CHANGED)",
        )
        assert changed.strip() == nonce  # the installed project is the new source, no cached wheel
    finally:
        subprocess.run(
            ["docker", "image", "rm", tag], capture_output=True, timeout=120, check=False
        )


def step_state(lines: list[str], needle: str) -> str:
    """CACHED or DONE for the first BuildKit step whose title holds `needle` (plain progress)."""
    return step_states(lines, needle)[0]


def step_states(lines: list[str], needle: str) -> list[str]:
    """CACHED or DONE for each BuildKit step whose title holds `needle`, in order."""
    steps = dict.fromkeys(
        line.split()[0] for line in lines if line.startswith("#") and needle in line
    )
    assert steps, f"no step holds {needle!r}"
    found = []
    for step in steps:
        states = [
            line.split()[1]
            for line in lines
            if line.split()[:1] == [step] and line.split()[1:2] in (["CACHED"], ["DONE"])
        ]
        assert states, f"no end state for step {step} ({needle})"
        found.append(states[-1])
    return found


def archlock(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ARCHLOCK_")}
    return subprocess.run(
        [sys.executable, "-m", "archlock", "--project", str(REPO), *args],
        capture_output=True,
        text=True,
        timeout=1500,
        check=False,
        env={**clean, **env},
    )


@pytest.mark.parametrize("mode", TAGS)
@pytest.mark.parametrize("env", linux_envs(), ids=lambda e: e.name)
def test_verify_passes_inside_each_image(
    pushed: dict[str, build.BuildReport], infra: dict[str, str], env, mode: str, tmp_path: Path
) -> None:
    """`archlock verify --image` for both architectures and both paths; the buildx results feed
    CI's matrix."""
    tag = ref(infra, mode, env.name)
    out = (REPO / "results" if mode == "buildx" else tmp_path) / f"{env.name}-image.json"
    done = archlock("verify", "--image", tag, "--output", str(out))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    result = json.loads(out.read_text())
    assert (result["env"], result["mode"], result["status"]) == (env.name, "image", "pass")
    assert result["probe"]["python"]["arch"] == env.platform.binary_arch
    assert result["checks"]["native_binaries"]["status"] == "pass"
    assert result["checks"]["loss_parity"]["status"] == "pass"
    expected_device = "skipped" if env.accelerator == "cuda" else "pass"  # no GPU on this host
    assert result["checks"]["device"]["status"] == expected_device


def test_verify_catches_a_loss_mismatch_inside_the_arm64_image(
    pushed: dict[str, build.BuildReport], infra: dict[str, str], tmp_path: Path
) -> None:
    tag = ref(infra, "buildx", "linux-arm64-cpu")
    out = tmp_path / "r.json"
    done = archlock("verify", "--image", tag, "--output", str(out), ARCHLOCK_SUITE_FAULT="loss")
    assert done.returncode == 6, done.stderr
    assert "1 check(s) failed (loss_parity)" in done.stderr
    result = json.loads(out.read_text())
    if result["probe"]["emulation"]["host_arch"] != "arm64":
        assert result["checks"]["emulation"]["why"].endswith(
            "as expected for an image of another platform"
        )


def test_an_image_without_python_on_path_is_refused_in_one_line(infra: dict[str, str]) -> None:
    base = infra["ARCHLOCK_BASE_IMAGE_ARM64"]  # Debian's python3 only: no `python` on PATH
    done = archlock("verify", "--image", base, "--env", "linux-arm64-cpu")
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1, done.stderr
    assert f"--image {base}: cannot run `python` in it" in done.stderr
