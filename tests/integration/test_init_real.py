"""archlock init on a pyproject project, for real (uv against PyPI, no docker): it locks and
renders, `lock --check` and `render --check` then pass, and a second init changes nothing."""

from __future__ import annotations

import shutil
import tomllib
from pathlib import Path

import pytest
from endtoend import archlock

pytestmark = pytest.mark.integration


def test_init_locks_and_renders_a_pyproject_project(tmp_path: Path, fixtures: Path) -> None:
    root = tmp_path / "app"
    shutil.copytree(fixtures / "projects" / "pyproject-app", root)
    first = archlock(root, "init")
    assert first.returncode == 0, first.stdout + first.stderr
    assert (root / "uv.lock").is_file()
    assert sorted(p.name for p in (root / "envs" / "locks").glob("*.txt")) == [
        "linux-amd64-cuda.txt",
        "linux-arm64-cpu.txt",
        "macos-arm64.txt",
    ]
    assert (root / "docker" / "linux-arm64-cpu.Dockerfile").is_file()
    for check in (("lock", "--check"), ("render", "--check"), ("init", "--check")):
        done = archlock(root, *check)
        assert done.returncode == 0, f"{check}: {done.stdout}{done.stderr}"
    again = archlock(root, "init")
    assert again.returncode == 0 and "create" not in again.stdout and "update" not in again.stdout
    assert "render: 0 of" in again.stdout


def test_unpinned_torch_locks_its_cpu_envs_from_the_cpu_index_or_says_how(
    tmp_path: Path,
) -> None:
    """A requirements-only project with unpinned torch: init points its CPU envs at the PyTorch
    CPU index. Where no index or mirror is reachable, the lock error is one line naming the
    index, the mirror variable, accept-cuda-stack and the command to run next; following it
    locks, and `init --check` passes only then."""
    root = tmp_path / "gpt"
    root.mkdir()
    (root / "requirements.txt").write_text("torch\nnumpy\n")
    unreachable = {"ARCHLOCK_INDEX_PYTORCH_CPU": "http://127.0.0.1:9/simple"}
    first = archlock(root, "init", env=unreachable)
    assert first.returncode == 4, first.stdout + first.stderr
    assert first.stderr.count("\n") == 1, first.stderr
    assert "envs/linux-arm64-cpu.yaml: torch.index 'pytorch-cpu' at http://127.0.0.1:9/simple" in (
        first.stderr
    )
    assert "set ARCHLOCK_INDEX_PYTORCH_CPU to a reachable mirror" in first.stderr
    assert "`accept-cuda-stack: true` in linux-arm64-cpu.yaml" in first.stderr
    assert first.stderr.rstrip().endswith(f"then run `archlock --project {root} init`)")
    assert 'pytorch-cpu = "https://download.pytorch.org/whl/cpu"' in (
        (root / "pyproject.toml").read_text()
    )
    check = archlock(root, "init", "--check")
    assert check.returncode == 5 and "the locks are not: uv.lock is missing" in check.stderr
    # the fix's second way: keep PyPI's (CUDA) build of torch in the arm64 env
    spec = root / "envs" / "linux-arm64-cpu.yaml"
    text = spec.read_text()
    kept = text[: text.index("torch:\n")] + text[text.index("expect:") :]
    spec.write_text(kept + "accept-cuda-stack: true\n")
    again = archlock(root, "init")
    assert again.returncode == 0, again.stdout + again.stderr
    assert again.stdout.splitlines()[-1] == (
        f"archlock init: done; next: archlock --project {root} build && "
        f"archlock --project {root} verify"
    )
    assert archlock(root, "init", "--check").returncode == 0


def test_the_cpu_env_init_writes_locks_from_a_mirror_and_points_at_the_real_index(
    tmp_path: Path,
) -> None:
    """init's CPU env, locked through ARCHLOCK_INDEX_PYTORCH_CPU (a folder holding the +cpu
    wheel, standing in for the PyTorch CPU index): torch's +cpu build, no CUDA stack, and the
    pylock points at the URL init wrote, so the lock installs from the real index."""
    from test_lock_real import NO_CACHE, standin_wheel

    wheel = standin_wheel(tmp_path)
    root = tmp_path / "app"
    root.mkdir()
    (root / "requirements.txt").write_text("torch==2.13.0\n")
    written = archlock(root, "init", "--no-lock")
    assert written.returncode == 0, written.stdout + written.stderr
    mirror = {"ARCHLOCK_INDEX_PYTORCH_CPU": str(wheel.parent), **NO_CACHE}
    done = archlock(root, "lock", "--env", "linux-amd64-cpu", env=mirror)
    assert done.returncode == 0, done.stdout + done.stderr
    lock = (root / "envs" / "locks" / "linux-amd64-cpu.txt").read_text()
    assert "torch==2.13.0+cpu" in lock and "nvidia" not in lock
    pylock = tomllib.loads((root / "envs" / "locks" / "pylock.linux-amd64-cpu.toml").read_text())
    torch = next(p for p in pylock["packages"] if p["name"] == "torch")
    assert torch["wheels"][0]["url"].startswith(
        "https://download.pytorch.org/whl/cpu/torch-2.13.0%2Bcpu-"
    )
