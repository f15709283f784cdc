"""Reports rebuilt and rerun in real images, and a report made in a real arm64 tree.

Needs the local images scripts/local-infra.sh makes (archlock/debian-bookworm:{amd64,arm64},
archlock/uv-static:<version>-amd64) and PyPI. A missing image or engine FAILS these tests: they are
the proof that a Linux report is rebuilt and rerun for real.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sysconfig
from pathlib import Path

import endtoend
import pytest

from archlock import cli
from archlock.core.docker import docker_cli, engine_running
from archlock.inenv import probe_headers

pytestmark = [pytest.mark.integration, pytest.mark.docker]

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures"
_spec = importlib.util.spec_from_file_location("envmaker", FIXTURES / "reports" / "envmaker.py")
em = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(em)  # type: ignore[union-attr]

BASE_AMD64 = "archlock/debian-bookworm:amd64"
BASE_ARM64 = "archlock/debian-bookworm:arm64"
FAILING = "from packaging.version import LegacyVersion; print('LegacyVersion is here')"


def uv_image() -> str:
    return endtoend.local_uv_image("amd64")


@pytest.fixture(scope="module")
def docker() -> str:
    cli_path = docker_cli()
    if not engine_running():
        pytest.fail("the Docker engine is not running: run scripts/local-infra.sh")
    for image in (BASE_AMD64, BASE_ARM64, uv_image()):
        found = subprocess.run(
            [cli_path, "image", "inspect", image], capture_output=True, check=False
        )
        if found.returncode != 0:
            pytest.fail(
                f"{image} is missing: run scripts/local-infra.sh "
                "(it builds the local bases and uv images)"
            )
    return cli_path


def locked_project(root: Path) -> Path:
    """A requirements project pinning packaging 21.3 for linux-amd64, locked by `archlock lock`."""
    root.mkdir(parents=True)
    (root / "requirements.txt").write_text("packaging==21.3\n")
    (root / "envs").mkdir()
    (root / "envs" / "linux-amd64-cpu.yaml").write_text(
        em.spec("linux-amd64", "cpu", extra=f"image:\n  base: {BASE_AMD64}\n")
    )
    assert cli.main(["--project", str(root), "lock"]) == 0
    return root


def repro(project: Path, report: Path, out: Path, *extra: str) -> dict:
    code = cli.main(
        [
            "--project",
            str(project),
            "repro",
            str(report),
            "--uv-image",
            uv_image(),
            "--json",
            str(out),
            *extra,
        ]
    )
    assert code == 0
    return json.loads(out.read_text())


def test_linux_report_rebuilt_and_rerun(tmp_path: Path, docker: str) -> None:
    project = locked_project(tmp_path / "project")
    venv = em.make_venv(tmp_path / "venv")
    em.install(venv, Path("packaging==24.1"), offline=False)  # from PyPI: the teammate upgraded it
    local = em.build_wheel(tmp_path / "wheels", "mytool", "1.0+local", {"mytool/__init__.py": ""})
    nowhere = em.build_wheel(tmp_path / "wheels", "six", "0.0.999", {"six.py": ""})
    em.install(venv, local, nowhere)
    report = em.run_report(venv, project, tmp_path / "report.json", "python", "-c", FAILING)
    assert report["command"]["exit_code"] == 1
    assert "cannot import name 'LegacyVersion'" in report["command"]["output_tail"][-1]

    result = repro(project, tmp_path / "report.json", tmp_path / "mine.json")
    kinds = [d["kind"] for d in result["drift"]]
    assert (
        kinds[:2] == ["packages-missing", "packages-different"]
        and "packaging 24.1 (lock: 21.3)" in result["drift"][1]["details"]
    )
    again = result["reproduction"]
    try:
        assert (
            again["where"] == "image"
            and again["platform"] == "linux-amd64"
            and again["source"] == "report"
        )
        assert {"pin": "mytool==1.0+local", "why": again["left_out"][0]["why"]} in again["left_out"]
        assert any(
            item["pin"] == "six==0.0.999" and "not on PyPI" in item["why"]
            for item in again["left_out"]
        )
        assert again["packages"] == 1  # packaging==24.1, exactly the report's version
        assert again["argv"][0] == "/opt/venv/bin/python"
        assert again["status"] == "reproduced", again
        assert again["exit_code"] == 1 and "LegacyVersion" in again["signature"]

        locked = repro(project, tmp_path / "report.json", tmp_path / "locked.json", "--as-locked")[
            "reproduction"
        ]
        assert locked["source"] == "lock" and locked["status"] == "fixed-by-lock", locked
        assert locked["output_tail"][-1] == "LegacyVersion is here"
    finally:
        for tag in {again.get("image"), locals().get("locked", {}).get("image")} - {None}:
            subprocess.run([docker, "rmi", "-f", tag], capture_output=True, check=False)


def arm64_project(root: Path, wheel: Path) -> Path:
    env, platform = "linux-arm64-cpu", "linux-arm64"
    return em.write_project(
        root,
        {env: em.spec(platform, "cpu", extra=f"image:\n  base: {BASE_ARM64}\n")},
        {env: em.lock_text(env, platform, "3.11", "cpu", [("tinydep", "1.0", em.sha256(wheel))])},
    )


def x86_64_extension() -> Path:
    for path in sorted(Path(sysconfig.get_config_var("DESTSHARED")).glob("*.so")):
        if probe_headers.binary_archs(str(path)) == ["x86_64"]:
            return path
    pytest.fail("no x86_64 extension module next to this interpreter")


def test_x86_64_extension_in_a_real_arm64_tree(tmp_path: Path, docker: str) -> None:
    """The report runs inside the arm64 image (QEMU): a real arm64 interpreter and venv, with a
    real x86_64 extension module planted in its site-packages."""
    wheel = em.build_wheel(
        tmp_path / "wheels", "tinydep", "1.0", {"tinydep/__init__.py": "VALUE = 1\n"}
    )
    project = arm64_project(tmp_path / "project", wheel)
    scripts = em.scripts(tmp_path / "scripts").parent
    (tmp_path / "out").mkdir()
    site = "/tmp/v/lib/python3.11/site-packages"
    steps = " && ".join(
        [
            "python3 -m venv --without-pip /tmp/v",
            "python3 -c 'import sys, zipfile; "
            "zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' "
            f"/w/{wheel.name} {site}",
            f"cp /x.so {site}/tinydep/_speedups.cpython-311-x86_64-linux-gnu.so",
            "cd /p && /tmp/v/bin/python /s/report.py -o /out/report.json",
        ]
    )
    subprocess.run(
        [
            docker,
            "run",
            "--rm",
            "--platform",
            "linux/arm64",
            "--network",
            "none",
            "-v",
            f"{scripts}:/s:ro",
            "-v",
            f"{project}:/p:ro",
            "-v",
            f"{wheel.parent}:/w:ro",
            "-v",
            f"{tmp_path / 'out'}:/out",
            "-v",
            f"{x86_64_extension()}:/x.so:ro",
            BASE_ARM64,
            "sh",
            "-c",
            steps,
        ],
        check=True,
        capture_output=True,
        timeout=600,
    )
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["probe"]["python"]["arch"] == "arm64" and report["platform"] == "linux-arm64"
    out = tmp_path / "repro.json"
    assert (
        cli.main(
            [
                "--project",
                str(project),
                "repro",
                str(tmp_path / "out" / "report.json"),
                "--diff-only",
                "--json",
                str(out),
            ]
        )
        == 0
    )
    drift = json.loads(out.read_text())["drift"]
    assert drift[0]["kind"] == "compiled-arch", drift
    assert "tinydep/_speedups.cpython-311-x86_64-linux-gnu.so (x86_64)" in drift[0]["details"]
    assert [d["kind"] for d in drift][1:] in ([], ["emulation"])  # QEMU on an x86_64 host is a note


def test_whole_arm64_extension_in_this_x86_64_tree(tmp_path: Path, docker: str) -> None:
    """The reverse, with a whole arm64 shared object taken from the arm64 image."""
    wheel = em.build_wheel(
        tmp_path / "wheels", "tinydep", "1.0", {"tinydep/__init__.py": "VALUE = 1\n"}
    )
    env, platform = "linux-amd64-cpu", "linux-amd64"
    project = em.write_project(
        tmp_path / "project",
        {env: em.spec(platform, "cpu")},
        {env: em.lock_text(env, platform, "3.11", "cpu", [("tinydep", "1.0", em.sha256(wheel))])},
    )
    venv = em.make_venv(tmp_path / "venv", wheel)
    planted = em.site_packages(venv) / "tinydep" / "_speedups.cpython-311-aarch64-linux-gnu.so"
    container = subprocess.run(
        [docker, "create", "--platform", "linux/arm64", BASE_ARM64],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    try:
        subprocess.run(
            [
                docker,
                "cp",
                f"{container}:/usr/lib/python3.11/lib-dynload/_json.cpython-311-aarch64-linux-gnu.so",
                str(planted),
            ],
            check=True,
            capture_output=True,
        )
    finally:
        subprocess.run([docker, "rm", container], capture_output=True, check=False)
    assert probe_headers.binary_archs(str(planted)) == ["arm64"] and planted.stat().st_size > 10_000
    em.run_report(venv, project, tmp_path / "report.json")
    out = tmp_path / "repro.json"
    assert (
        cli.main(
            [
                "--project",
                str(project),
                "repro",
                str(tmp_path / "report.json"),
                "--diff-only",
                "--json",
                str(out),
            ]
        )
        == 0
    )
    drift = json.loads(out.read_text())["drift"]
    assert [d["kind"] for d in drift] == ["compiled-arch"]


def test_macos_report_approximated_on_linux_arm64(tmp_path: Path, docker: str) -> None:
    """A macOS report (recorded answers, see tests/fixtures/reports) whose command failed with
    packaging 24.1: refused plainly without --approximate, rebuilt on linux/arm64 (QEMU) with it."""
    mac = json.loads((FIXTURES / "reports" / "macos-arm64-answers.json").read_text())
    linux = json.loads((FIXTURES / "reports" / "linux-amd64-venv.json").read_text())
    mac["probe"]["distributions"] = [
        {"name": "packaging", "version": "24.1", "wheel_tags": ["py3-none-any"]}
    ]
    mac["command"] = dict(
        linux["command"],
        argv=["python", "-c", FAILING],
        cwd_in_project=None,
        output_tail=[
            "ImportError: cannot import name 'LegacyVersion' from 'packaging.version' "
            "(~/v/lib/python3.11/site-packages/packaging/version.py)"
        ],
    )
    (tmp_path / "report.json").write_text(json.dumps(mac))
    wheel = em.build_wheel(tmp_path / "wheels", "tinydep", "1.0", {"tinydep/__init__.py": ""})
    project = arm64_project(tmp_path / "project", wheel)
    arm64_uv = uv_image().replace("-amd64", "-arm64")

    def repro_mac(*extra: str) -> dict:
        out = tmp_path / "out.json"
        args = [
            "--project",
            str(project),
            "repro",
            str(tmp_path / "report.json"),
            "--env",
            "linux-arm64-cpu",
        ]
        assert cli.main([*args, "--uv-image", arm64_uv, "--json", str(out), *extra]) == 0
        return json.loads(out.read_text())["reproduction"]

    refused = repro_mac()
    assert (
        refused["status"] == "unsupported"
        and "cannot be reproduced in a container" in refused["text"]
    )
    approx = repro_mac("--approximate", "linux-arm64")
    try:
        assert (approx["where"], approx["platform"]) == (
            "image",
            "linux-arm64",
        ) and "no MPS" in approx["approximate"]
        assert approx["status"] == "reproduced", approx
    finally:
        subprocess.run(
            [docker, "rmi", "-f", approx.get("image", "none")], capture_output=True, check=False
        )
