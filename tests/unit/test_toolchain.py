"""image.toolchain: a spec option that puts a C/C++ compiler into the image for torch.compile."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from archlock.build import render
from archlock.core.spec import load_spec
from archlock.errors import ConfigError

SPEC = (
    'platform: linux-arm64\npython: "3.11"\naccelerator: cpu\n'
    "image:\n  base: debian:bookworm-slim\n"
)


def spec(tmp_path: Path, extra: str = "") -> Path:
    path = tmp_path / "linux-arm64-cpu.yaml"
    path.write_text(SPEC + extra)
    return path


def target(toolchain: bool) -> render.ImageTarget:
    return render.ImageTarget(
        env="linux-arm64-cpu",
        platforms=("linux/arm64",),
        python="3.11",
        accelerator="cpu",
        base_image="debian:bookworm-slim",
        lock_path="envs/locks/linux-arm64-cpu.txt",
        lock_sha256="ab" * 32,
        install_project=False,
        runner="ubuntu-24.04-arm",
        toolchain=toolchain,
    )


def dockerfile(tmp_path: Path, toolchain: bool) -> str:
    files = render.render_files(
        tmp_path, render.RenderSettings(image_name="demo"), [target(toolchain)]
    )
    return files[tmp_path / "docker/linux-arm64-cpu.Dockerfile"]


def test_default_is_off_and_true_is_read(tmp_path: Path) -> None:
    assert load_spec(spec(tmp_path)).image_toolchain is False
    assert load_spec(spec(tmp_path, "  toolchain: true\n")).image_toolchain is True


def test_a_string_is_refused_with_file_line_and_key(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError, match=r"linux-arm64-cpu.yaml:6: image.toolchain: must be a bool"
    ):
        load_spec(spec(tmp_path, '  toolchain: "yes"\n'))


def test_the_compiler_is_installed_before_the_venv_only_when_asked(tmp_path: Path) -> None:
    without = dockerfile(tmp_path, False)
    assert "g++" not in without
    text = dockerfile(tmp_path, True)
    install = re.search(
        r"^RUN touch /tmp/.archlock-mark \\\n"
        r'\s+&& packages="gcc g\+\+ libc6-dev".*?apt-get install',
        text,
        re.DOTALL | re.MULTILINE,
    )
    assert install, text
    # in the image's stage, before the venv is made: a new lock does not reinstall the compiler
    assert (
        text.index("AS runtime") < install.start() < text.index("-m venv --without-pip /opt/venv")
    )
    assert "rm -rf /var/lib/apt/lists/*" in text
    # the logs apt and dpkg wrote hold the day: emptied, and every file the step wrote is dated
    assert "-newer /tmp/.archlock-mark -exec truncate --size=0 {} +" in text
    # Python.h (inductor includes it) from python3.11-dev only where the base's Python lacks it
    assert "python3.11 -c 'import os, sysconfig; raise SystemExit(not os.path.isfile(" in text
    assert 'packages="$packages python3.11-dev"' in text
