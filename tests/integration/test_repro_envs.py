"""Real broken environments, made here, through `report` and then `repro --diff-only`.

Each venv is real (uv venv), with real wheels installed offline and real files planted in its
site-packages; the report script runs inside it as a plain file. Where a case needs another OS or
architecture than this host's, the probe gets recorded system answers and the test says so.
The first drift must name the planted cause.
"""

from __future__ import annotations

import importlib.util
import json
import sysconfig
from pathlib import Path

import pytest

from archlock import cli
from archlock.inenv import probe, probe_headers, probe_system

pytestmark = pytest.mark.integration  # real venvs (uv) and real processes

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
_spec = importlib.util.spec_from_file_location("envmaker", FIXTURES / "reports" / "envmaker.py")
em = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(em)  # type: ignore[union-attr]

TINY = {"tinydep/__init__.py": "VALUE = 1\n"}
RAISING_TORCH = {
    "torch/__init__.py": "raise OSError('libtorch_cpu.so: cannot open shared object file: "
    "No such file or directory')\n"
}


def diff_only(project: Path, report: Path, tmp: Path, *extra: str) -> dict:
    out = tmp / "repro.json"
    code = cli.main(
        ["--project", str(project), "repro", str(report), "--diff-only", "--json", str(out), *extra]
    )
    assert code == 0
    return json.loads(out.read_text())


def tiny_project(
    tmp: Path,
    env: str,
    platform: str,
    accelerator: str,
    pins: list[tuple[str, str, str]],
    extra: str = "",
) -> Path:
    return em.write_project(
        tmp / "project",
        {env: em.spec(platform, accelerator, extra=extra)},
        {env: em.lock_text(env, platform, "3.11", accelerator, pins)},
    )


@pytest.fixture
def tinydep(tmp_path: Path) -> tuple[Path, tuple[str, str, str]]:
    wheel = em.build_wheel(tmp_path / "wheels", "tinydep", "1.0", TINY)
    return wheel, ("tinydep", "1.0", em.sha256(wheel))


def real_x86_64_extension() -> Path:
    """A real x86_64 extension module from this interpreter's own lib-dynload."""
    folder = Path(sysconfig.get_config_var("DESTSHARED") or "")
    for path in sorted(folder.glob("*.so")):
        if probe_headers.binary_archs(str(path)) == ["x86_64"]:
            return path
    pytest.skip("host-lacks: an x86_64 interpreter with compiled extension modules")


def test_x86_64_extension_in_an_arm64_tree(tmp_path: Path, tinydep) -> None:
    """Real venv, real x86_64 .so planted; the arm64 claim is recorded answers (a Graviton)."""
    wheel, pin = tinydep
    project = tiny_project(tmp_path, "linux-arm64-cpu", "linux-arm64", "cpu", [pin])
    venv = em.make_venv(tmp_path / "venv", wheel)
    planted = em.site_packages(venv) / "tinydep" / "_speedups.cpython-311-x86_64-linux-gnu.so"
    planted.write_bytes(real_x86_64_extension().read_bytes())
    report = em.run_report_with_answers(
        venv, project, tmp_path / "report.json", "linux-arm64-native"
    )
    assert report["platform"] == "linux-arm64" and report["lock"]["env"] == "linux-arm64-cpu"
    result = diff_only(project, tmp_path / "report.json", tmp_path)
    first = result["drift"][0]
    assert first["kind"] == "compiled-arch", result["drift"]
    assert "tinydep/_speedups.cpython-311-x86_64-linux-gnu.so (x86_64)" in first["details"]
    assert "not arm64" in first["title"] and "reinstall tinydep" in first["fix"]
    assert [d["kind"] for d in result["drift"]] == ["compiled-arch"]


def test_arm64_elf_in_this_x86_64_tree(tmp_path: Path, tinydep, fixtures: Path) -> None:
    """Real x86_64 venv and probe, no recorded answers; the planted file carries the real ELF
    header of an arm64 shared object (libtorch_global_deps.so from torch's aarch64 wheel)."""
    if probe_system.normalize_arch(probe.System().machine()) != "x86_64":
        pytest.skip("host-lacks: an x86_64 host (this case plants arm64 files into a native tree)")
    wheel, pin = tinydep
    project = tiny_project(tmp_path, "linux-amd64-cpu", "linux-amd64", "cpu", [pin])
    venv = em.make_venv(tmp_path / "venv", wheel)
    planted = em.site_packages(venv) / "tinydep" / "_speedups.cpython-311-aarch64-linux-gnu.so"
    planted.write_bytes((fixtures / "probe" / "aarch64-libtorch_global_deps.ehdr").read_bytes())
    report = em.run_report(venv, project, tmp_path / "report.json")
    assert report["probe"]["python"]["arch"] == "x86_64"
    result = diff_only(project, tmp_path / "report.json", tmp_path)
    assert [d["kind"] for d in result["drift"]] == ["compiled-arch"]
    assert (
        "tinydep/_speedups.cpython-311-aarch64-linux-gnu.so (arm64)"
        in result["drift"][0]["details"]
    )


def test_mps_fallback_set_on_a_mac(tmp_path: Path, tinydep) -> None:
    """Real venv and a real PYTORCH_ENABLE_MPS_FALLBACK in its environment; the macOS answers are
    recorded (an M2 on macOS 14.5)."""
    wheel, pin = tinydep
    project = tiny_project(
        tmp_path, "macos-arm64", "macos-arm64", "mps", [pin], extra='macos: "14.0"\n'
    )
    venv = em.make_venv(tmp_path / "venv", wheel)
    env = em.clean_env(venv, PYTORCH_ENABLE_MPS_FALLBACK="1")
    report = em.run_report_with_answers(
        venv, project, tmp_path / "report.json", "mac-native-arm64", env=env
    )
    assert report["probe"]["env"] == {"PYTORCH_ENABLE_MPS_FALLBACK": "1"}
    result = diff_only(project, tmp_path / "report.json", tmp_path)
    first = result["drift"][0]
    assert first["kind"] == "env-var" and first["title"].startswith(
        "PYTORCH_ENABLE_MPS_FALLBACK=1 is set"
    )
    assert first["fix"].startswith("unset PYTORCH_ENABLE_MPS_FALLBACK")


def test_mps_fallback_on_linux_is_a_note_not_a_cause(tmp_path: Path, tinydep, capsys) -> None:
    wheel, pin = tinydep
    project = tiny_project(tmp_path, "linux-amd64-cpu", "linux-amd64", "cpu", [pin])
    venv = em.make_venv(tmp_path / "venv", wheel)
    em.run_report(
        venv,
        project,
        tmp_path / "report.json",
        env=em.clean_env(venv, PYTORCH_ENABLE_MPS_FALLBACK="1"),
    )
    result = diff_only(project, tmp_path / "report.json", tmp_path)
    assert result["drift"] == []
    assert "without effect on this platform: PYTORCH_ENABLE_MPS_FALLBACK" in capsys.readouterr().out


def test_importing_torch_raises(tmp_path: Path, tinydep) -> None:
    """A torch 2.10.0 distribution (as locked) whose torch/__init__.py raises on import."""
    wheel, pin = tinydep
    torch_wheel = em.build_wheel(tmp_path / "wheels", "torch", "2.10.0", RAISING_TORCH)
    project = tiny_project(
        tmp_path,
        "linux-amd64-cpu",
        "linux-amd64",
        "cpu",
        [pin, ("torch", "2.10.0", em.sha256(torch_wheel))],
    )
    venv = em.make_venv(tmp_path / "venv", wheel, torch_wheel)
    report = em.run_report(venv, project, tmp_path / "report.json", "python", "-c", "import torch")
    assert report["probe"]["torch"]["importable"] is False
    assert report["command"]["exit_code"] == 1
    assert report["command"]["output_tail"][-1].startswith("OSError: libtorch_cpu.so: cannot open")
    result = diff_only(project, tmp_path / "report.json", tmp_path)
    first = result["drift"][0]
    assert first["kind"] == "torch-import", result["drift"]
    assert "OSError: libtorch_cpu.so: cannot open shared object file" in first["title"]
    assert [d["kind"] for d in result["drift"]] == ["torch-import"]
