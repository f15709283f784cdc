"""Real `archlock verify` on this host: sync the host env from its lock, run probe + suite in it,
then plant faults in that env and check that verify names each one with the right fix."""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from archlock.core.project import Project
from archlock.verify.checks import FAULT_FIX
from archlock.verify.targets import host_platform

REPO = Path(__file__).resolve().parents[2]
FOREIGN_MACHINE = {"x86_64": (183, "arm64"), "arm64": (62, "x86_64")}


def archlock(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ARCHLOCK_")}
    return subprocess.run(
        [sys.executable, "-m", "archlock", *args],
        capture_output=True,
        text=True,
        env={**clean, **env},
        timeout=1800,
        check=False,
    )


@pytest.fixture(scope="module")
def host_env():  # type: ignore[no-untyped-def]
    if shutil.which("uv") is None:
        pytest.skip("host-lacks: uv on PATH")
    platform = host_platform()
    envs = [e for e in Project.load(REPO).envs() if platform and e.platform.name == platform.name]
    if not envs:
        here = platform.name if platform else "this host"
        pytest.skip(f"host-lacks: an env of this repository for {here}")
    return sorted(envs, key=lambda e: e.opt_in)[0]


@pytest.fixture(scope="module")
def synced(host_env, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:  # type: ignore[no-untyped-def]
    work = tmp_path_factory.mktemp("verify")
    venv, out = work / "venv", work / "good.json"
    done = archlock("--project", str(REPO), "verify", "--venv", str(venv), "--output", str(out))
    assert done.returncode == 0, done.stdout + done.stderr
    return venv, json.loads(out.read_text())


def site_packages(venv: Path) -> Path:
    return next((venv / "lib").glob("python3.*/site-packages"))


@pytest.mark.integration
def test_host_env_synced_from_its_lock_passes(synced: tuple[Path, dict], host_env) -> None:  # type: ignore[no-untyped-def]
    _, result = synced
    assert (result["schema"], result["env"], result["status"]) == (
        "archlock.verify/1",
        host_env.name,
        "pass",
    )
    checks = result["checks"]
    for name in (
        "interpreter",
        "emulation",
        "native_binaries",
        "packages",
        "torch_version",
        "torch_build",
        "training",
        "loss_parity",
        "checkpoint",
        "sdpa",
        "autocast",
        "distributed",
    ):
        assert checks[name]["status"] == "pass", (name, checks[name])
    assert checks["device"]["status"] in ("pass", "skipped")
    assert (
        result["suite"]["checks"]["training"]["losses"][-1]
        < result["suite"]["checks"]["training"]["losses"][0]
    )


@pytest.mark.integration
def test_planted_foreign_arch_object_is_named(
    synced: tuple[Path, dict], repo: Path, tmp_path: Path
) -> None:
    venv, result = synced
    machine, name = FOREIGN_MACHINE[result["probe"]["python"]["arch"]]
    planted = site_packages(venv) / "archlock_planted"
    planted.mkdir()
    ident = b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8)
    (planted / "_evil.so").write_bytes(ident + struct.pack("<HHI", 3, machine, 1) + bytes(40))
    try:
        done = archlock(
            "--project",
            str(repo),
            "verify",
            "--venv",
            str(venv),
            "--no-sync",
            "--output",
            str(tmp_path / "r.json"),
            "--skip",
            "distributed",
        )
    finally:
        shutil.rmtree(planted)
    assert done.returncode == 6
    native = result["probe"]["python"]["arch"]
    assert (
        f"native_binaries: 1 compiled file(s) in site-packages are not {native}: "
        f"archlock_planted/_evil.so ({name})" in done.stderr
    )
    # a re-sync keeps a package at its locked version as it is: the fix recreates the venv
    fix = "(fix: reinstall archlock_planted from the lock with a native interpreter (remove"
    assert (
        fix in done.stderr and f"then archlock verify --env {result['env']} --venv " in done.stderr
    )


@pytest.mark.integration
def test_wrong_torch_build_is_named(
    synced: tuple[Path, dict], host_env, repo: Path, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    venv, result = synced
    project = tmp_path / "proj"
    (project / "envs" / "locks").mkdir(parents=True)
    (project / "requirements.txt").write_text("torch\n")
    (project / "envs" / "cpu-only.yaml").write_text(
        f'platform: {host_env.platform.name}\npython: "{host_env.python}"\naccelerator: cpu\n'
        "torch:\n  index: pytorch-cpu\n  variant: cpu\n"
    )
    lock = Project.load(repo).env_lock(host_env.name).read_text()
    torch = result["lock"]["torch"]
    (project / "envs" / "locks" / "cpu-only.txt").write_text(
        lock.replace(f"torch=={torch} ", f"torch=={torch}+cpu ")
    )
    out = tmp_path / "r.json"
    done = archlock(
        "--project",
        str(project),
        "verify",
        "--env",
        "cpu-only",
        "--venv",
        str(venv),
        "--no-sync",
        "--output",
        str(out),
        "--skip",
        "distributed",
    )
    assert done.returncode == 6, done.stderr
    checks = json.loads(out.read_text())["checks"]
    assert checks["torch_build"]["status"] == "fail"
    assert checks["torch_build"]["why"].endswith("; cpu-only needs the +cpu build")
    assert "torch_build" in done.stderr


@pytest.mark.integration
def test_loss_mismatch_from_the_hook_is_named(
    synced: tuple[Path, dict], repo: Path, tmp_path: Path
) -> None:
    venv, _ = synced
    done = archlock(
        "--project",
        str(repo),
        "verify",
        "--venv",
        str(venv),
        "--no-sync",
        "--output",
        str(tmp_path / "r.json"),
        "--skip",
        "distributed",
        ARCHLOCK_SUITE_FAULT="loss",
    )
    assert done.returncode == 6
    assert "1 check(s) failed (loss_parity)" in done.stderr
    assert "losses differ from CPU by" in done.stderr
    assert done.stderr.rstrip().endswith(f"(fix: {FAULT_FIX})")
