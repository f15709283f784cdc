"""The arch benchmark's inputs: the dependencies both Linux locks share, and their declared size."""

from __future__ import annotations

from pathlib import Path

from archlock.build import bench_build, render
from archlock.core.project import Project

H = "--hash=sha256:"


def entry(name: str, *hashes: str) -> str:
    return " \\\n    ".join([name, *(f"{H}{h * 64}" for h in hashes)]) + "\n"


AMD = (
    entry("numpy==2.4.6", "a", "0")
    + entry("torch==2.10.0", "b")
    + entry("nvidia-nccl-cu12==2.27.5", "c")
)
ARM = entry("numpy==2.4.6", "d", "0") + entry("torch==2.10.0", "e") + entry("sympy==1.14.0", "f")


def test_shared_lock_keeps_common_pins_with_every_platforms_hashes_and_leaves_torch_out() -> None:
    shared = bench_build.shared_lock([AMD, ARM])
    assert (
        shared
        == f"numpy==2.4.6 \\\n    {H}{'0' * 64} \\\n    {H}{'a' * 64} \\\n    {H}{'d' * 64}\n"
    )


def test_shared_lock_of_this_repository_installs_on_both_platforms(repo: Path) -> None:
    project = Project.load(repo)
    locks = [project.env_lock(name).read_text() for name in ("linux-amd64-cuda", "linux-arm64-cpu")]
    entries = bench_build.lock_entries(bench_build.shared_lock(locks))
    assert "torch" not in entries and "numpy" in entries and "sympy" in entries
    assert not any(name.startswith("nvidia") for name in entries)
    names = set(entries)
    for env in ("linux-amd64-cuda", "linux-arm64-cpu"):
        assert bench_build.declared_bytes(project.env_pylock(env), names) > 10_000_000


def test_arch_variants_differ_only_in_where_the_dependency_stage_runs() -> None:
    base = {
        "python": "3.11",
        "accelerator": "cpu",
        "base_image": "debian:bookworm",
        "lock_path": "x.txt",
        "lock_sha256": "0" * 64,
        "install_project": True,
        "runner": "r",
    }
    arm = render.ImageTarget(env="arm", platforms=("linux/arm64",), **base)  # type: ignore[arg-type]
    amd = render.ImageTarget(env="amd", platforms=("linux/amd64",), **base)  # type: ignore[arg-type]
    variants = bench_build.arch_variants(arm, amd, "numpy==1\n", "reg/base:list")
    before, after = variants["arm64_before"], variants["arm64_after"]
    assert not before.deps_on_build_platform and after.deps_on_build_platform
    assert before.lock_sha256 == after.lock_sha256 == variants["amd64"].lock_sha256
    assert {v.base_image for v in variants.values()} == {"reg/base:list"}
    # each variant installs the shared lock's entries, not its env's
    assert {v.layers[-1].requirements for v in variants.values()} == {("numpy==1",)}
    text = render.dockerfile_text(after, "uv:1", "bench")
    assert "--python-platform aarch64-manylinux_2_28" in text
    assert "$BUILDPLATFORM" not in render.dockerfile_text(before, "uv:1", "bench")
