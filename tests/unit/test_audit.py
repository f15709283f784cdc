"""Audit findings from recorded pylocks: source builds, known breakers, CUDA stack in CPU envs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from archlock import cli
from archlock.core.project import Project
from archlock.lock import audit


def pkg(name: str, version: str = "1.0", size: int | None = 1000, sdist: bool = False) -> str:
    wheels = (
        f'wheels = [{{ url = "https://files.example/{name}.whl", size = {size}, '
        f'hashes = {{ sha256 = "aa" }} }}]'
        if size
        else ""
    )
    src = (
        'sdist = { url = "https://files.example/x.tar.gz", hashes = { sha256 = "bb" } }'
        if sdist
        else ""
    )
    return f'[[packages]]\nname = "{name}"\nversion = "{version}"\n{src}\n{wheels}\n'


@pytest.fixture
def project(tmp_path: Path, repo: Path) -> Project:
    (tmp_path / "requirements.txt").write_text("torch\n")
    shutil.copytree(repo / "envs", tmp_path / "envs", ignore=shutil.ignore_patterns("locks"))
    (tmp_path / "envs" / "locks").mkdir()
    return Project.load(tmp_path)


def write(project: Project, env: str, *packages: str) -> None:
    project.env_pylock(env).write_text('lock-version = "1.0"\n' + "\n".join(packages))


def test_clean_env_has_no_findings(project: Project) -> None:
    write(project, "linux-arm64-cpu", pkg("torch", "2.10.0", 150_000_000), pkg("filelock"))
    result = audit.audit_env(project, project.envs(["linux-arm64-cpu"])[0])
    assert result.findings == [] and result.torch == "2.10.0" and result.wheel_bytes == 150_001_000


def test_source_build_is_reported(project: Project) -> None:
    write(project, "macos-arm64", pkg("lmdbish", size=None, sdist=True))
    (finding,) = audit.audit_env(project, project.envs(["macos-arm64"])[0]).findings
    assert (finding.kind, finding.severity) == ("source-build", "warning")
    assert "builds from source" in finding.message


def sdist_only(name: str, kind: str, why: str) -> str:
    return pkg(name, size=None, sdist=True).replace(
        'version = "1.0"\n',
        f'version = "1.0"\ntool.archlock = {{ sdist-kind = "{kind}", why = "{why}" }}\n',
    )


def test_source_only_packages_are_told_apart_by_kind(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    write(
        project,
        "linux-arm64-cpu",
        sdist_only("antlr4-python3-runtime", "pure-python", "only Python sources"),
        sdist_only("cdeps", "compiled", "it ships compiled-language sources (src/a.c)"),
    )
    env = project.envs(["linux-arm64-cpu"])[0]
    pure, compiled = audit.audit_env(project, env).findings
    assert (pure.kind, pure.severity) == ("pure-python-sdist", "info")
    assert "builds into a wheel on any CPU, by the build machine's uv" in pure.message
    assert (compiled.kind, compiled.severity) == ("compiled-sdist", "warning")
    assert "(src/a.c)" in compiled.message
    assert "`image.toolchain: true` in linux-arm64-cpu.yaml" in compiled.fix
    assert cli.main(["--project", str(project.root), "audit", "--env", "linux-arm64-cpu"]) == 0


def test_a_torch_extension_gets_the_build_that_works_not_a_compiler(project: Project) -> None:
    why = "its setup.py builds with torch.utils.cpp_extension"
    for env_name in ("linux-amd64-cuda", "linux-arm64-cpu", "macos-arm64"):
        write(project, env_name, sdist_only("adam-atan2", "torch-extension", why))
    (cuda,) = audit.audit_env(project, project.envs(["linux-amd64-cuda"])[0]).findings
    assert (cuda.kind, cuda.severity) == ("torch-extension-sdist", "error")
    assert "installs without its compiled backend" in cuda.message and why in cuda.message
    assert "--no-build-isolation" in cuda.fix and "CUDA toolkit (nvcc)" in cuda.fix
    assert "prebuilt wheel" in cuda.fix and "compiler is in the image" not in cuda.fix
    for env_name in ("linux-arm64-cpu", "macos-arm64"):
        (finding,) = audit.audit_env(project, project.envs([env_name])[0]).findings
        assert finding.severity == "error" and "has no CUDA to build or run" in finding.message
        assert "adam-atan2; sys_platform == 'linux' and platform_machine == 'x86_64'" in (
            finding.fix
        )


def test_an_unclassified_sdist_says_how_to_classify_it(project: Project) -> None:
    write(project, "linux-arm64-cpu", pkg("oldlib", size=None, sdist=True))
    (finding,) = audit.audit_env(project, project.envs(["linux-arm64-cpu"])[0]).findings
    assert finding.fix.startswith("run `archlock lock --force --env linux-arm64-cpu`")


@pytest.mark.parametrize(
    ("env", "package", "replacement"),
    [
        ("linux-arm64-cpu", "faiss-gpu", "faiss-cpu"),
        ("macos-arm64", "faiss-gpu-cu12", "faiss-cpu"),
        ("macos-arm64", "flash-attn", "scaled_dot_product_attention"),
        ("linux-arm64-cpu", "xformers", "SDPA"),
        ("macos-arm64", "bitsandbytes", "torchao"),
        ("macos-arm64", "triton", "sys_platform == 'linux'"),
        ("macos-arm64", "lmdb", "macosx arm64 wheels"),
    ],
)
def test_known_breakers_name_the_replacement(
    project: Project, env: str, package: str, replacement: str
) -> None:
    write(project, env, pkg(package))
    findings = audit.audit_env(project, project.envs([env])[0]).findings
    assert [(f.kind, f.severity) for f in findings] == [("known-breaker", "error")]
    assert replacement in findings[0].fix


@pytest.mark.parametrize("package", ["flash-attn", "triton", "bitsandbytes", "xformers"])
def test_breakers_are_fine_where_they_belong(project: Project, package: str) -> None:
    write(project, "linux-amd64-cuda", pkg(package), pkg("nvidia-cublas-cu12", size=500_000_000))
    assert audit.audit_env(project, project.envs(["linux-amd64-cuda"])[0]).findings == []


def test_cpu_env_with_cuda_stack_reports_bytes(project: Project) -> None:
    write(
        project,
        "linux-arm64-cpu",
        pkg("torch"),
        pkg("nvidia-cublas-cu13", size=600_000_000),
        pkg("nvidia-cudnn-cu13", size=700_000_000),
        pkg("cuda-bindings", size=12_000_000),
    )
    (finding,) = audit.audit_env(project, project.envs(["linux-arm64-cpu"])[0]).findings
    assert finding.kind == "cuda-stack-in-cpu-env"
    assert "3 packages" in finding.message and "1.31 GB" in finding.message
    assert "PyTorch CPU index" in finding.fix


def test_cli_json_output_and_exit_code(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    for env in ("linux-amd64-cuda", "linux-arm64-cpu"):
        write(project, env, pkg("torch"))
    write(project, "macos-arm64", pkg("torch"), pkg("triton"))
    code = cli.main(["--project", str(project.root), "audit", "--format", "json"])
    out, err = capsys.readouterr()
    assert code == 6 and "1 finding(s) at or above error" in err
    report = json.loads(out)
    assert report["schema"] == "archlock.audit/1"
    assert [e["env"] for e in report["envs"]] == [
        "linux-amd64-cuda",
        "linux-arm64-cpu",
        "macos-arm64",
    ]
    assert report["envs"][2]["findings"][0]["package"] == "triton"


def test_missing_lock_is_a_clean_error(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["--project", str(project.root), "audit"]) == 5
    assert "no lock for env" in capsys.readouterr().err


def test_an_accepted_cuda_stack_is_no_finding(project: Project) -> None:
    """Audit asks lock's CUDA-stack rule: `accept-cuda-stack: true` keeps the build quietly."""
    spec = project.envs_dir / "linux-arm64-cpu.yaml"
    spec.write_text(spec.read_text() + "accept-cuda-stack: true\n")
    write(project, "linux-arm64-cpu", pkg("torch"), pkg("nvidia-cublas-cu13", size=600_000_000))
    assert audit.audit_env(project, project.envs(["linux-arm64-cpu"])[0]).findings == []


def test_an_mps_env_is_not_a_cpu_env_for_the_cuda_stack_rule(project: Project) -> None:
    write(project, "macos-arm64", pkg("torch"), pkg("cuda-bindings", size=12_000_000))
    assert audit.audit_env(project, project.envs(["macos-arm64"])[0]).findings == []
