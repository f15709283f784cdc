"""Image mode against a real engine. The arm64 base image has no `python` on PATH (only the
env images built by archlock do): verify refuses it in one line. A built linux-arm64-cpu image,
where one exists, is verified for real under QEMU with the loss hook planted."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from archlock.project import Project

REPO = Path(__file__).resolve().parents[2]


def docker_ready() -> bool:
    if shutil.which("docker") is None:
        return False
    return (
        subprocess.run(["docker", "info"], capture_output=True, timeout=60, check=False).returncode
        == 0
    )


def archlock(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ARCHLOCK_")}
    return subprocess.run(
        [sys.executable, "-m", "archlock", "--project", str(REPO), *args],
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
        env={**clean, **env},
    )


def image_exists(ref: str) -> bool:
    return (
        subprocess.run(
            ["docker", "image", "inspect", ref], capture_output=True, timeout=60, check=False
        ).returncode
        == 0
    )


@pytest.fixture
def engine() -> None:
    if not docker_ready():
        pytest.skip("host-lacks: a running Docker engine")


@pytest.mark.docker
def test_an_image_without_python_on_path_is_refused_in_one_line(engine: None) -> None:
    env = next(e for e in Project.load(REPO).all_envs() if e.name == "linux-arm64-cpu")
    if not (env.image_base and image_exists(env.image_base)):
        pytest.skip(
            f"host-lacks: the base image {env.image_base} (scripts/local-infra.sh builds it)"
        )
    done = archlock("verify", "--image", env.image_base, "--env", env.name)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1, done.stderr
    assert f"--image {env.image_base}: cannot run `python` in it" in done.stderr
    assert "(fix: an env image must have the env's interpreter on PATH as `python`" in done.stderr


@pytest.mark.docker
def test_built_arm64_image_under_qemu_with_the_loss_hook(engine: None, tmp_path: Path) -> None:
    found = subprocess.run(
        ["docker", "images", "-q", "--filter", "label=io.archlock.env=linux-arm64-cpu"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.split()
    if not found:
        pytest.skip(
            "host-lacks: a built linux-arm64-cpu image (the build integration tests make one)"
        )
    out = tmp_path / "r.json"
    done = archlock(
        "verify", "--image", found[0], "--output", str(out), ARCHLOCK_SUITE_FAULT="loss"
    )
    assert done.returncode == 6, done.stderr
    assert "1 check(s) failed (loss_parity)" in done.stderr
    result = json.loads(out.read_text())
    assert result["probe"]["python"]["arch"] == "arm64"
    if result["probe"]["emulation"]["host_arch"] != "arm64":
        assert result["checks"]["emulation"]["why"].endswith(
            "as expected for an image of another platform"
        )
        assert result["checks"]["compile"]["why"].startswith("emulated CPU")
    passed = {n for n, c in result["checks"].items() if c["status"] == "pass"}
    assert {
        "interpreter",
        "native_binaries",
        "packages",
        "torch_version",
        "torch_build",
        "training",
    } <= passed
