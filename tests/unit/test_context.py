"""The build context: .gitignore -> dockerignore patterns, Docker's matching, the size line."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import pytest

from archlock.build import context, render
from archlock.build.context import Matcher

MB = 1000 * 1000


@pytest.mark.parametrize(
    ("line", "pattern"),
    [
        ("data/", "**/data"),  # a name with a slash only at the end: anywhere in git ...
        ("wandb/", "**/wandb"),  # ... so anywhere in Docker too
        ("*.bin", "**/*.bin"),
        ("/out", "out"),  # anchored
        ("/out/", "out"),
        ("src/gen/*.c", "src/gen/*.c"),  # a middle slash anchors
        ("**/logs", "**/logs"),
        ("!keep.bin", "!**/keep.bin"),
        ("!/data/small.txt", "!data/small.txt"),
        ("file[!0-9].txt", "**/file[^0-9].txt"),  # git's negated class in Go's spelling
        ("\\#notes", "**/#notes"),
        ("\\!bang/x", "/!bang/x"),  # a literal "!": not an exception
        ("trailing   ", "**/trailing"),
        ("", None),
        ("# a comment", None),
        ("/", None),
        ("evil\u2028line", None),  # a control character could split the generated file
    ],
)
def test_gitignore_lines_become_dockerignore_patterns(line: str, pattern: str | None) -> None:
    assert context.from_gitignore(line) == pattern


@pytest.mark.parametrize(
    ("patterns", "path", "left_out"),
    [
        (["data/**", "!data/**/*.py"], "data/shakespeare/train.bin", True),
        (["data/**", "!data/**/*.py"], "data/shakespeare/prepare.py", False),
        (["data/**", "!data/**/*.py"], "data/prepare.py", False),
        (["data/**"], "src/pkg/data/table.json", False),  # anchored at the root
        (["**/*.bin"], "model.bin", True),  # ** matches no folder too
        (["**/*.bin"], "a/b/model.bin", True),
        (["checkpoints"], "checkpoints/step-1/model.safetensors", True),  # a parent matches
        (["*.txt"], "envs/locks/x.txt", False),  # * stops at a slash
        (["**/*.txt", "!envs/locks/x.txt"], "envs/locks/x.txt", False),
        (["!x.bin", "**/*.bin"], "x.bin", True),  # the last matching pattern wins
        (["/out"], "out/ckpt.pt", True),  # a leading slash means the root
        (["ru?s"], "runs/1", True),
        (["file[^0-9].txt"], "file1.txt", False),
        (["file[^0-9].txt"], "fileA.txt", True),
    ],
)
def test_matching_follows_docker(patterns: list[str], path: str, left_out: bool) -> None:
    assert Matcher(patterns).excluded(path) is left_out


def test_a_left_out_folder_is_walked_only_for_an_exception_inside_it() -> None:
    matcher = Matcher(["data/**", "!data/**/*.py", "checkpoints"])
    assert matcher.may_keep_inside("data") and not matcher.may_keep_inside("checkpoints")


def sparse(path: Path, size: int) -> None:
    """A file of `size` bytes that takes no disk (measure reads sizes, never contents)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        handle.truncate(size)


def project_tree(root: Path) -> None:
    sparse(root / "data" / "openwebtext" / "train.bin", 150 * MB)
    (root / "data" / "openwebtext" / "prepare.py").write_text("print('prepare')\n")
    sparse(root / "datasets" / "images" / "a.tar", 180 * MB)  # not a default: .gitignore's job
    sparse(root / "out" / "ckpt.pt", 90 * MB)
    sparse(root / "src" / "model.py", 2 * MB)
    sparse(root / "assets" / "vocab.json", 40 * MB)
    sparse(root / ".git" / "objects" / "pack", 500 * MB)
    (root / "train.py").write_text("print('loss 1.0')\n")


def test_measure_applies_the_generated_patterns(tmp_path: Path) -> None:
    project_tree(tmp_path)
    size = context.measure(tmp_path, context.context_patterns(tmp_path))
    assert dict(size.by_top) == {
        "datasets": 180 * MB,
        "assets": 40 * MB,
        "src": 2 * MB,
        "data": len("print('prepare')\n"),  # the script stays, the dataset does not
        "train.py": len("print('loss 1.0')\n"),
    }
    line = context.describe(size)
    assert line.startswith("build context 222.0 MB (5 files), over 200.0 MB: biggest datasets")
    assert "datasets 180.0 MB, assets 40.0 MB, src 2.0 MB;" in line
    assert line.endswith(
        "add what the image does not need to .gitignore (the generated "
        ".dockerignore follows it) and run archlock render"
    )
    (tmp_path / ".gitignore").write_text("/datasets/\n")
    smaller = context.measure(tmp_path, context.context_patterns(tmp_path))
    assert context.describe(smaller) == "build context 42.0 MB (5 files)"  # + .gitignore


def test_links_are_not_followed(tmp_path: Path) -> None:
    sparse(tmp_path / "elsewhere" / "big", 300 * MB)
    (tmp_path / "proj").mkdir()
    os.symlink(tmp_path / "elsewhere", tmp_path / "proj" / "link")
    size = context.measure(tmp_path / "proj", [])
    assert size.total < 1000 and size.files == 1


def test_human_sizes() -> None:
    assert [context.human(n) for n in (0, 999, 1000, 1_500_000, 2 * 10**12)] == [
        "0 B",
        "999 B",
        "1.0 kB",
        "1.5 MB",
        "2000.0 GB",
    ]


def test_the_rendered_dockerignore_holds_the_gitignore_and_keeps_the_lock(
    tmp_path: Path,
) -> None:
    (tmp_path / ".gitignore").write_text("*.txt\n!keep.bin\n")
    target = render.ImageTarget(
        env="linux-arm64-cpu",
        platforms=("linux/arm64",),
        python="3.11",
        accelerator="cpu",
        base_image="debian:bookworm-slim",
        lock_path="envs/locks/linux-arm64-cpu.txt",
        lock_sha256="ab" * 32,
        install_project=False,
        runner="ubuntu-24.04-arm",
    )
    files = render.render_files(tmp_path, render.RenderSettings(image_name="demo"), [target])
    text = files[tmp_path / "docker" / "linux-arm64-cpu.Dockerfile.dockerignore"]
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert lines[-3:] == ["**/*.txt", "!**/keep.bin", "!envs/locks/linux-arm64-cpu.txt"]
    assert "data/**" in lines and "**/*.safetensors" in lines and "**/wandb" in lines
    matcher = Matcher(lines)
    assert not matcher.excluded("envs/locks/linux-arm64-cpu.txt")  # kept beside the source
    assert matcher.excluded("notes.txt") and not matcher.excluded("keep.bin")


def test_render_prints_the_context_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    project_tree(tmp_path)
    monkeypatch.setattr(render, "render_checked", lambda *_: ({}, [], []))
    args = argparse.Namespace(project=tmp_path, workflow_dir=None, check=True)
    assert render.run(args) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-1].startswith("archlock render: build context 222.0 MB (5 files), over 200.0 MB")
