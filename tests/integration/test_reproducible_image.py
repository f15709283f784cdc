"""Same lock, same source, same base: the same image, to the bit, for both platforms.

A requirements-only project (six, idna: small, no torch) is made an archlock project (init:
lock + render), then built cold twice, minutes apart: once with buildx, once with the BuildKit
fallback, each with --no-cache and its own tag. Bytecode compilation stays on (the .pyc files are
what differs first). This engine's BuildKit (v0.8) cannot rewrite layer timestamps itself, so
both paths go through archlock's rewrite after the build; a builder with BuildKit >= 0.13 gets
`rewrite-timestamp=true` instead. Either way the image IDs must be equal per platform.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from archlock.build import build, reproducible

pytestmark = [pytest.mark.docker, pytest.mark.integration]

REPO = Path(__file__).resolve().parents[2]
FIXTURE = REPO / "tests" / "fixtures" / "projects" / "requirements-app"
ENVS = ("linux-amd64-cuda", "linux-arm64-cpu")


@pytest.fixture(scope="module")
def infra() -> dict[str, str]:
    if os.geteuid() != 0:
        pytest.skip("host-lacks: root, which scripts/local-infra.sh needs")
    done = subprocess.run(
        ["bash", str(REPO / "scripts" / "local-infra.sh"), "--print-env"],
        capture_output=True,
        text=True,
        timeout=1500,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("repro-image") / "smallapp"
    shutil.copytree(FIXTURE, root)
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ARCHLOCK_")}
    clean.pop("SOURCE_DATE_EPOCH", None)
    done = subprocess.run(
        [sys.executable, "-m", "archlock", "--project", str(root), "init"],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
        env=clean,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return root


def build_cold(
    project: Path, infra: dict[str, str], tag: str, fallback: bool, made: list[str]
) -> dict[str, str]:
    bundle = Path("/etc/ssl/certs/ca-certificates.crt")
    options = build.BuildOptions(
        project=project,
        targets=ENVS,
        network="host",
        ca_bundle=bundle if bundle.is_file() else None,
        no_cache=True,
        quiet=True,
        force_fallback=fallback,
        sets=(f"*.args.BASE_IMAGE={infra['ARCHLOCK_BASE_IMAGE']}",),
        env={"UV_IMAGE": infra["ARCHLOCK_UV_IMAGE"], "TAG": tag},
    )
    report = build.build(options)
    made += [t for image in report.images for t in image.tags]
    ids = {}
    for image in report.images:
        found = subprocess.run(
            ["docker", "image", "inspect", "--format", "{{.Id}} {{.Created}}", image.tags[0]],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        ).stdout.split()
        assert found[1].startswith("1980-01-01T00:00:00"), found  # the epoch, not the clock
        ran = subprocess.run(
            [
                "docker",
                "run",
                "--rm",
                "--platform",
                image.platform,
                image.tags[0],
                "python",
                "-c",
                "import idna, six; print(six.__version__)",
            ],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )  # the venv put together again from its layers works
        assert ran.stdout.strip() == "1.16.0", ran.stderr[-2000:]
        ids[image.platform] = found[0]
    return ids


def test_two_cold_builds_give_the_same_image_per_platform(
    project: Path, infra: dict[str, str]
) -> None:
    made: list[str] = []
    try:
        first = build_cold(project, infra, "r1", False, made)
        second = build_cold(project, infra, "r2", True, made)
    finally:
        if made:
            subprocess.run(["docker", "image", "rm", *made], capture_output=True, timeout=300)
    print(f"first: {first}\nsecond: {second}")
    assert set(first) == {"linux/amd64", "linux/arm64"}
    assert first == second
    assert reproducible.DEFAULT_EPOCH == 315532800
