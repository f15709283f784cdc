"""A project nobody here wrote, end to end: init -> lock -> render -> build -> verify -> matrix.

The fixture is requirements-only (torch pinned as the repository pins it, so the uv cache and
wheels are shared with the repository's own image builds; numpy; setuptools; a tiny train.py
printing `loss X`). `archlock init --run ... --metric ...` writes its env specs and settings and
locks and renders; the user then opts the amd64 image into a compiler (`image.toolchain: true`).
Both images are built (local debootstrap bases, bytecode compilation off to keep torch's builds
short), verified with the project's own run in each, and the matrix holds the
run's final loss to one number across both architectures.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from endtoend import archlock, build_images, built_tags, ok, opt_into_toolchain

pytestmark = [pytest.mark.docker, pytest.mark.integration]

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "projects" / "train-requirements"
RUN = "python train.py --steps 5"
METRIC = r"loss ([0-9.]+)"
TAG = "it"
ENVS = {"linux-amd64-cuda": "amd64", "linux-arm64-cpu": "arm64"}


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("init") / "trainer"
    shutil.copytree(FIXTURE, root)
    out = ok(archlock(root, "init", "--run", RUN, "--metric", METRIC))
    assert "archlock init: render:" in out
    assert sorted(p.name for p in (root / "envs" / "locks").glob("*.txt")) == sorted(
        f"{name}.txt" for name in (*ENVS, "macos-arm64")
    )
    opt_into_toolchain(root)
    ok(archlock(root, "render"))
    assert "gcc g++ libc6-dev" in (root / "docker" / "linux-amd64-cuda.Dockerfile").read_text()
    second = ok(archlock(root, "init", "--run", RUN, "--metric", METRIC))  # idempotent, edits kept
    assert "kept          envs/linux-amd64-cuda.yaml" in second
    ok(archlock(root, "render", "--check"))
    return root


@pytest.fixture(scope="module")
def images(project: Path, infra: dict[str, str]):
    tags = {env: f"trainer:{TAG}-{env}" for env in ENVS}
    built = built_tags(ok(build_images(project, infra, TAG)))
    assert all(tag in built.get(env, ()) for env, tag in tags.items()), built
    yield tags
    subprocess.run(
        ["docker", "image", "rm", *tags.values()], capture_output=True, timeout=300, check=False
    )


def test_toolchain_costs_about_400_mb(images: dict[str, str]) -> None:
    history = subprocess.run(
        [
            "docker",
            "history",
            "--no-trunc",
            "--format",
            "{{.Size}}\t{{.CreatedBy}}",
            images["linux-amd64-cuda"],
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    layer = next(line for line in history.splitlines() if "gcc g++ libc6-dev" in line)
    size = layer.split("\t")[0]
    print(f"toolchain layer: {size}")
    assert size.endswith("MB") and 250 < float(size[:-2]) < 600, layer


def test_verify_runs_the_projects_own_command_in_both_images_and_matrix_agrees(
    project: Path, images: dict[str, str]
) -> None:
    results = {}
    for env, tag in images.items():
        out = project / "results" / f"{env}-image.json"
        done = archlock(project, "verify", "--image", tag, "--output", str(out))
        results[env] = json.loads(out.read_text())
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    for result in results.values():
        run = result["checks"]["run_1"]
        assert (run["status"], run["command"], run["exit"]) == ("pass", RUN, 0), run
        assert run["tail"].splitlines()[-1].startswith("step 5 loss ") and run["duration"] > 0
        assert run["metric"] == float(run["tail"].split()[-1])
    compile_check = results["linux-amd64-cuda"]["checks"]["compile"]
    assert compile_check["status"] == "pass", compile_check  # the toolchain made it run
    out = ok(archlock(project, "matrix"))
    assert f"| run: {RUN} | pass (exit 0," in out
    assert f"| same metric as other envs: {RUN} | reference (" in out
    matrix = (project / "results" / "matrix.md").read_text()
    row = next(line for line in matrix.splitlines() if line.startswith("| same metric"))
    assert "| pass (" in row, row
