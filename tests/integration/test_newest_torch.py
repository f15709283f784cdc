"""The newest torch on PyPI, for real: `uv lock` is metadata-only (about 5 s), so these run against
PyPI itself. Expectations must match what was locked; lock must refuse what cannot run."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from packaging.version import Version

from archlock import cli
from archlock.core.project import Project
from archlock.lock import expect, machines

pytestmark = pytest.mark.integration


def newest_torch(fixtures: Path, tmp_path: Path) -> Path:
    project = tmp_path / "newest-torch"
    shutil.copytree(fixtures / "projects" / "newest-torch", project)
    return project


def archlock(project: Path, *args: str) -> int:
    return cli.main(["--project", str(project), *args])


def test_newest_torch_locks_and_renders_for_three_targets_with_the_locked_builds(
    fixtures: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = newest_torch(fixtures, tmp_path)
    assert archlock(project, "lock") == 0
    out = capsys.readouterr().out
    assert "note: linux-arm64-cpu: accept-cuda-stack: keeping torch" in out
    loaded = Project.load(project)
    found = {env.name: expect.load(loaded.locks_dir, env) for env in loaded.envs()}
    assert all(e is not None and not e.notes for e in found.values())  # files written by lock
    amd64, arm64, mac = (found[n] for n in ("linux-amd64-cuda", "linux-arm64-cpu", "macos-arm64"))
    assert amd64 and arm64 and mac
    assert Version(amd64.torch or "0") >= Version("2.15.0")  # the newest release when written
    assert amd64.torch == arm64.torch == mac.torch
    assert amd64.build == "cuda" and amd64.cuda and amd64.cuda.startswith("13.")
    assert amd64.driver == "580.65.06" and amd64.capabilities and amd64.capabilities[0] == "7.5"
    assert re.fullmatch(r"the lock's nvidia-cuda-runtime 13\.\d+\.\d+", amd64.evidence)
    assert arm64.build == "cuda" and arm64.cuda_stack_bytes > 1_000_000_000  # accepted, measured
    assert (
        mac.build == "mps"
        and mac.macos
        and (mac.macos.version, mac.macos.package) == ("14.0", "torch")
    )
    for name, exp in found.items():  # what lock stored is what the committed pylock says
        pylock = loaded.env_pylock(name).read_text(encoding="utf-8")
        env = next(e for e in loaded.envs() if e.name == name)
        assert expect.derive(env, pylock) == exp
    assert archlock(project, "lock", "--check") == 0
    assert "linux-amd64-cuda         unchanged  torch " in capsys.readouterr().out
    assert archlock(project, "render") == 0
    for name in ("linux-amd64-cuda", "linux-arm64-cpu"):
        assert (project / "docker" / f"{name}.Dockerfile").is_file()
    assert archlock(project, "render", "--check") == 0


def test_lock_refuses_a_machine_whose_driver_is_too_old_naming_the_driver_needed(
    fixtures: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = newest_torch(fixtures, tmp_path)
    shutil.copy(fixtures / "machines" / "gpu-old-driver.json", project / "envs" / "machines")
    spec = project / "envs" / "linux-amd64-cuda.yaml"
    spec.write_text(spec.read_text().replace("[gpu-h100]", "[gpu-h100, gpu-old-driver]"))
    assert archlock(project, "lock") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert re.search(
        r"NVIDIA driver 535\.183\.01 on gpu-old-driver is too old for torch [\d.]+'s CUDA 13\.\d+ "
        r"build: CUDA 13 needs driver >= 580\.65\.06",
        err,
    )
    assert "upgrade the NVIDIA driver on gpu-old-driver to >= 580.65.06" in err
    assert not (project / "envs" / "locks").exists()  # nothing half-written


def test_a_cpu_env_that_would_lock_the_cuda_stack_fails_at_lock_time(
    fixtures: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = newest_torch(fixtures, tmp_path)
    spec = project / "envs" / "linux-arm64-cpu.yaml"
    spec.write_text(spec.read_text().replace("accept-cuda-stack: true\n", ""))
    assert archlock(project, "lock") == 2
    err = capsys.readouterr().err
    assert "a CUDA 13." in err and "for cpu env linux-arm64-cpu" in err
    assert "PyTorch CPU index" in err and "accept-cuda-stack: true" in err
    assert "rebuild" not in err
    assert not (project / "envs" / "locks").exists()


def test_probe_profile_records_this_machine(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "requirements.txt").write_text("six\n")
    assert archlock(tmp_path, "probe", "--profile", "this-host") == 0
    path = tmp_path / "envs" / "machines" / "this-host.json"
    assert capsys.readouterr().out.startswith(f"wrote {path}: linux")
    doc = json.loads(path.read_text())
    machine = machines.from_profile(doc, str(path))
    assert (
        machine.platform is not None and machine.glibc
    )  # a glibc Linux host in the platform table
    nvidia = doc["nvidia"]
    assert nvidia["driver"] or nvidia["error"]  # nvidia-smi answered, or why it did not
