"""A real venv with a torch other than the lock's: torch 2.13.0+cpu (a CPU wheel this machine's
pip can fetch) where this repository's envs lock torch 2.10.0. Its report, diagnosed against this
repository, must name torch first."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from archlock import cli

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location(
    "envmaker", REPO / "tests" / "fixtures" / "reports" / "envmaker.py"
)
em = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(em)  # type: ignore[union-attr]
TORCH = "torch==2.13.0+cpu"


@pytest.fixture(scope="module")
def torch_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pip = shutil.which("pip3") or shutil.which("pip")
    if pip is None:
        pytest.fail("no pip on PATH to fetch the CPU torch wheel")
    folder = tmp_path_factory.mktemp("torch-wheel")
    done = subprocess.run(
        [pip, "download", "--no-deps", TORCH, "-d", str(folder)],
        capture_output=True,
        text=True,
        check=False,
    )
    wheels = sorted(folder.glob("torch-2.13.0+cpu-*.whl"))
    if done.returncode != 0 or not wheels:
        pytest.fail(f"pip download {TORCH} failed: {done.stderr.strip()[-300:]}")
    return wheels[0]


def test_torch_other_than_the_lock_is_the_first_cause(tmp_path: Path, torch_wheel: Path) -> None:
    venv = em.make_venv(tmp_path / "venv")
    em.install(
        venv, torch_wheel
    )  # torch alone: its own dependencies are missing, as in a hand-made env
    check = "import torch; assert torch.cuda.is_available(), 'no CUDA in ' + torch.__version__"
    report = em.run_report(
        venv, REPO, tmp_path / "report.json", "python", "-c", check, cwd=tmp_path
    )
    assert (
        report["lock"]["env"] == "linux-amd64-cuda" and report["lock"]["matched_by"] == "platform"
    )
    assert report["command"]["exit_code"] == 1
    out = tmp_path / "repro.json"
    assert (
        cli.main(
            [
                "--project",
                str(REPO),
                "repro",
                str(tmp_path / "report.json"),
                "--diff-only",
                "--json",
                str(out),
            ]
        )
        == 0
    )
    drift = json.loads(out.read_text())["drift"]
    first = drift[0]
    assert first["kind"] == "torch", drift
    assert first["title"].startswith(
        "torch 2.13.0+cpu (CPU-only build) is installed; envs/locks/linux-amd64-cuda.txt "
        "pins torch 2.10.0 (CUDA 12.8 build)"
    )
    assert (
        first["fix"] == "in the env: uv pip sync --require-hashes envs/locks/linux-amd64-cuda.txt"
    )


def test_torch_that_imports_reports_its_build(tmp_path: Path, torch_wheel: Path) -> None:
    """The same wheel with its dependencies (from PyPI): torch imports and says it is CPU-only."""
    venv = em.make_venv(tmp_path / "venv")
    em.install(venv, torch_wheel, offline=False, deps=True)  # its dependencies from PyPI
    report = em.run_report(venv, REPO, tmp_path / "report.json", cwd=tmp_path)
    torch = report["probe"]["torch"]
    assert (torch["importable"], torch["version"], torch["cuda"], torch["local"]) == (
        True,
        "2.13.0+cpu",
        None,
        "cpu",
    )
    out = tmp_path / "repro.json"
    assert (
        cli.main(
            [
                "--project",
                str(REPO),
                "repro",
                str(tmp_path / "report.json"),
                "--diff-only",
                "--json",
                str(out),
            ]
        )
        == 0
    )
    kinds = [d["kind"] for d in json.loads(out.read_text())["drift"]]
    assert kinds[0] == "torch" and "torch-import" not in kinds
