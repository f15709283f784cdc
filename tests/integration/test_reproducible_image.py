"""Same lock, same source, same base: the same image, to the bit, for both platforms.

An installable project (six, idna and a module of its own: small, no torch, so its project stage
runs too) is made an archlock project (init: lock + render), then built cold twice: once with
buildx, once with the BuildKit fallback, each with --no-cache and its own tag, and the second
from a copy of the project whose files have other dates and modes (a clone elsewhere, another
umask). Bytecode compilation stays on (the .pyc files are what differs first). This engine's
BuildKit (v0.8) writes the build's clock into the image config; `archlock build` settles it.
The image IDs (the config's sha256, which names every layer's digest) must be equal per platform.

This engine has one builder (buildx's `docker` driver is the engine's BuildKit), so the two builds
share it: --no-cache makes every step run again, but not on a second machine.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import endtoend
import pytest
from endtoend import docker

from archlock.build import build
from archlock.verify import resultfile, targets

pytestmark = [pytest.mark.docker, pytest.mark.integration]

REPO = Path(__file__).resolve().parents[2]
FIXTURE = REPO / "tests" / "fixtures" / "projects" / "packaged-app"
ENVS = ("linux-amd64-cuda", "linux-arm64-cpu")
TAGS: dict[tuple[str, str], str] = {}  # (build label, platform) -> the image's tag
CHECK = (
    "import os, stat, idna, packaged_app; "
    "print(packaged_app.GREETING, os.stat('/').st_uid, os.stat('/app').st_uid, "
    "stat.filemode(os.stat('/app/pyproject.toml').st_mode), "
    "int.from_bytes(open(idna.__spec__.cached, 'rb').read()[4:8], 'little'))"
)


@pytest.fixture(scope="module")
def infra() -> dict[str, str]:
    if os.geteuid() != 0:
        pytest.skip("host-lacks: root, which scripts/local-infra.sh needs")
    return endtoend.local_infra()


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("repro-image") / "packaged"
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


def elsewhere(project: Path) -> Path:
    """The same project as another clone: other file dates, group-writable modes."""
    copy = project.parent / "elsewhere" / "packaged"
    shutil.copytree(project, copy)
    for path in [copy, *copy.rglob("*")]:
        if not path.is_symlink():
            path.chmod(path.stat().st_mode | 0o020)
            os.utime(path, (1_700_000_000, 1_700_000_000))
    return copy


def build_cold(
    project: Path, infra: dict[str, str], tag: str, fallback: bool, made: list[str]
) -> dict[str, str]:
    options = build.BuildOptions(
        project=project,
        targets=ENVS,
        network="host",
        ca_bundle=endtoend.ca_bundle(),
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
        created = docker("image", "inspect", "--format", "{{.Created}}", image.tags[0]).strip()
        assert created.startswith("1980-01-01T00:00:00"), created  # the epoch, not the clock
        ran = docker(
            "run", "--rm", "--platform", image.platform, image.tags[0], "python", "-c", CHECK
        ).strip()
        # the venv put together again from its layers works, the project's module is installed,
        # / stays root's, /app is the run user's, modes are the same whatever the umask, and a
        # dependency's .pyc (compiled on the build machine for both platforms) is there and
        # hash-checked (flags 3: hash-based, checked against the source)
        assert ran == "packaged-app with six 1.16.0 0 10001 -rw-r--r-- 3", ran
        ids[image.platform] = image.image_id
        TAGS[(tag, image.platform)] = image.tags[0]
    return ids


@pytest.fixture(scope="module")
def first(project: Path, infra: dict[str, str]) -> Iterator[dict[str, str]]:
    """The first cold build (buildx); its images stay for the module's tests."""
    made: list[str] = []
    try:
        yield build_cold(project, infra, "r1", False, made)
    finally:
        if made:
            subprocess.run(["docker", "image", "rm", *made], capture_output=True, timeout=300)


def test_two_cold_builds_give_the_same_image_per_platform(
    project: Path, infra: dict[str, str], first: dict[str, str]
) -> None:
    made: list[str] = []
    try:
        second = build_cold(elsewhere(project), infra, "r2", True, made)
    finally:
        if made:
            subprocess.run(["docker", "image", "rm", *made], capture_output=True, timeout=300)
    print(f"first: {first}\nsecond: {second}")
    assert set(first) == {"linux/amd64", "linux/arm64"}
    assert all(value.startswith("sha256:") for value in first.values())
    assert first == second


def test_repro_of_a_result_taken_in_the_image_rebuilds_it_bit_identical(
    project: Path, infra: dict[str, str], first: dict[str, str], tmp_path: Path
) -> None:
    """A verify result of the amd64 image (its real probe, its real ID) through `archlock repro`:
    the env's image rebuilt from this checkout has the report's ID."""
    tag = TAGS[("r1", "linux/amd64")]
    info = targets.inspect_image(tag)
    image = targets.ImageTarget(
        tag, "linux/amd64", info["Id"], targets.stage_scripts(tmp_path / "scripts")
    )
    probe = image.run_script("probe")
    assert probe.returncode == 0, probe.stderr[-2000:]
    result = {
        "schema": resultfile.SCHEMA,
        "env": ENVS[0],
        "platform": "linux-amd64",
        "mode": "image",
        "image": image.describe(),
        "created": "2026-12-05T00:00:00Z",
        "probe": json.loads(probe.stdout),
    }
    path = tmp_path / f"{ENVS[0]}.image.json"
    path.write_text(json.dumps(result))
    out = tmp_path / "repro.json"
    args = ["repro", str(path), "--base", infra["ARCHLOCK_BASE_IMAGE"], "--json", str(out)]
    done = endtoend.archlock(project, *args, "--uv-image", infra["ARCHLOCK_UV_IMAGE"])
    written = json.loads(out.read_text()) if out.is_file() else {}
    rebuilt = written.get("rebuild") or {}
    left = [rebuilt.get("tag"), (written.get("reproduction") or {}).get("image")]
    subprocess.run(["docker", "image", "rm", *filter(None, left)], capture_output=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "Image: bit-identical" in done.stdout, done.stdout[-3000:]
    assert rebuilt["report_id"] == rebuilt["rebuilt_id"] == first["linux/amd64"]
