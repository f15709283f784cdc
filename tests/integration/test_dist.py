"""archlock as users install it: `uv build` makes an sdist and a wheel holding the templates and
the in-env scripts; that wheel, installed into a clean venv (no source tree on the path), runs
init, lock and render on a fixture project, and init pins exactly that wheel in the noxfile."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


def run(cmd: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        cmd, capture_output=True, text=True, timeout=600, check=False, env=env, cwd=cwd
    )
    assert done.returncode == 0, f"{' '.join(cmd)}\n{done.stdout}{done.stderr}"
    return done


def test_the_built_wheel_installs_and_runs_init_lock_and_render(
    tmp_path: Path, fixtures: Path
) -> None:
    uv = shutil.which("uv") or str(Path(sys.executable).parent / "uv")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ARCHLOCK_", "VIRTUAL_ENV"))}
    env.pop("PYTHONPATH", None)
    env["UV_CACHE_DIR"] = str(tmp_path / "uv-cache")  # nothing from an earlier run
    dist = tmp_path / "dist"
    run([uv, "build", "--out-dir", str(dist), str(REPO)], env, tmp_path)
    run([sys.executable, str(REPO / "scripts" / "check-dist.py"), str(dist)], env, tmp_path)
    (wheel,) = dist.glob("*.whl")
    venv = tmp_path / "venv"
    run([uv, "venv", "--python", sys.executable, str(venv)], env, tmp_path)
    python = str(venv / "bin" / "python")
    run([uv, "pip", "install", "--python", python, str(wheel)], env, tmp_path)
    where = run([python, "-c", "import archlock; print(archlock.__file__)"], env, tmp_path)
    assert where.stdout.startswith(str(venv)), where.stdout  # the wheel, not the source tree

    root = tmp_path / "app"
    shutil.copytree(fixtures / "projects" / "pyproject-app", root)
    archlock = [str(venv / "bin" / "archlock"), "--project", str(root)]
    first = run([*archlock, "init"], env, tmp_path)
    assert "render:" in first.stdout, first.stdout
    for check in (("lock", "--check"), ("render", "--check")):
        run([*archlock, *check], env, tmp_path)
    assert (root / ".github" / "workflows" / "archlock-images.yml").is_file()
    noxfile = (root / "noxfile.py").read_text()
    assert f'"ARCHLOCK_INSTALL", \'archlock @ {wheel.as_uri()}' in noxfile, noxfile[:1200]
