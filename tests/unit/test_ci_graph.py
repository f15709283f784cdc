"""The CI graph: the rendered workflow's jobs, the labels from settings, and `archlock ci`'s steps.

Every Linux env has build -> verify -> matrix; the Mac job verifies and uploads; the matrix job
runs also when a verify job failed and expects every env; every step that runs something is one
nox session call; `archlock ci` runs the same verbs for the same envs.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from archlock.build import render
from archlock.core.project import Project
from archlock.errors import CheckFailed, ConfigError
from archlock.verify import cigraph, cirun, jobsummary, matrix

REPO = Path(__file__).resolve().parents[2]
GPU = ["self-hosted", "linux", "x64", "gpu"]
MAC = ["self-hosted", "macOS", "ARM64"]
WIRING = ("python -m pip install nox uv",)  # the only run: lines that are not a nox session


def workflow(root: Path) -> dict[str, Any]:
    files, _ = render.render_project(root)
    text = next(t for p, t in files.items() if p.name == render.WORKFLOW_NAME)
    loaded: dict[str, Any] = yaml.safe_load(text)
    return loaded


def project_with(tmp_path: Path, ci: str) -> Path:
    """This repo's envs, locks and pyproject, plus a [tool.archlock.ci] section."""
    root = tmp_path / "p"
    shutil.copytree(REPO / "envs", root / "envs")
    text = (REPO / "pyproject.toml").read_text()
    (root / "pyproject.toml").write_text(text + "\n[tool.archlock.ci]\n" + ci + "\n")
    return root


def include(job: dict[str, Any]) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = job["strategy"]["matrix"]["include"]
    return entries


def linux_envs() -> list[str]:
    return cirun.linux_envs(Project.load(REPO))


def test_every_linux_env_has_build_verify_and_matrix() -> None:
    jobs = workflow(REPO)["jobs"]
    envs = linux_envs()
    assert envs == ["linux-amd64-cuda", "linux-arm64-cpu"]
    assert [e["env"] for e in include(jobs["build"])] == envs
    assert [e["env"] for e in include(jobs["verify"])] == envs
    assert jobs["verify"]["needs"] == "build"
    assert jobs["matrix"]["needs"] == ["verify", "mac"]
    assert jobs["matrix"]["if"].startswith("always()")
    gate = next(s["run"] for s in jobs["matrix"]["steps"] if "nox -s matrix" in s.get("run", ""))
    for env in [*envs, "macos-arm64"]:
        assert f"--expect {env}" in gate
    assert "--gate" in gate and '--summary "$GITHUB_STEP_SUMMARY"' in gate


def test_native_runners_by_default_and_qemu_only_when_asked() -> None:
    jobs = workflow(REPO)["jobs"]
    runners = {
        e["env"]: (e["runner"], e["qemu-runner"], e["require-device"])
        for e in include(jobs["verify"])
    }
    assert runners == {
        "linux-amd64-cuda": ('["ubuntu-24.04"]', '["ubuntu-24.04"]', "false"),
        "linux-arm64-cpu": ('["ubuntu-24.04-arm"]', '["ubuntu-24.04"]', "false"),
    }
    qemu = next(
        s for s in jobs["verify"]["steps"] if s.get("uses", "").startswith("docker/setup-qemu")
    )
    assert qemu["if"] == "matrix.platform != 'linux/amd64' && env.QEMU == 'true'"
    verify = next(s for s in jobs["verify"]["steps"] if "nox -s verify" in s.get("run", ""))
    assert '--pull --env "$ENV_NAME" --image "$REPO@$(cat "digests/$ENV_NAME")"' in verify["run"]
    assert verify["env"]["ARCHLOCK_REQUIRE_DEVICE"] == "${{ matrix.require-device }}"
    digest = next(s for s in jobs["verify"]["steps"] if "download-artifact" in s.get("uses", ""))
    assert digest["with"] == {"name": "digest-${{ matrix.env }}", "path": "digests"}


def test_verify_and_mac_jobs_upload_their_result_also_on_failure() -> None:
    jobs = workflow(REPO)["jobs"]
    for name in ("verify", "mac"):
        upload = next(
            s
            for s in jobs[name]["steps"]
            if s.get("uses", "").startswith("actions/upload-artifact")
        )
        assert upload["if"] == "always()"
        assert upload["with"]["path"] == "results/${{ matrix.env }}.json"
        assert upload["with"]["name"] == "result-${{ matrix.env }}"
    assert [e["env"] for e in include(jobs["mac"])] == ["macos-arm64"]
    assert include(jobs["mac"])[0]["runner"] == '["macos-14"]'
    runs = [s["run"] for s in jobs["mac"]["steps"] if "run" in s]
    assert runs[1:] == [
        "nox -s setup-mac",
        'nox -s verify -- --env "$ENV_NAME" --summary "$GITHUB_STEP_SUMMARY"',
    ]


def test_every_step_of_the_new_jobs_is_one_nox_session() -> None:
    jobs = workflow(REPO)["jobs"]
    for name in ("verify", "mac", "matrix"):
        for step in jobs[name]["steps"]:
            run = step.get("run")
            if run is None or run in WIRING or step.get("id") == "registry":
                continue
            assert (
                run.startswith("nox -s ") and "\n" not in run.strip() and run.count("nox -s") == 1
            ), run


def test_labels_come_from_settings(tmp_path: Path) -> None:
    root = project_with(
        tmp_path,
        f"runners = {{ linux-amd64-cuda = {GPU!r}, macos-arm64 = {MAC!r} }}".replace("'", '"'),
    )
    jobs = workflow(root)["jobs"]
    cuda = next(e for e in include(jobs["verify"]) if e["env"] == "linux-amd64-cuda")
    assert (cuda["runner"], cuda["qemu-runner"], cuda["require-device"]) == (
        '["self-hosted", "linux", "x64", "gpu"]',
        '["self-hosted", "linux", "x64", "gpu"]',
        "true",
    )
    mac = include(jobs["mac"])[0]
    assert (mac["runner"], mac["require-device"]) == ('["self-hosted", "macOS", "ARM64"]', "true")


@pytest.mark.parametrize(
    ("ci", "message"),
    [
        (
            'runners = { linux-amd64-cuda = "gpu" }',
            r"\[tool.archlock.ci\] runners: .*; runners.linux-amd64-cuda is not a list of strings",
        ),
        (
            'runners = { linux-amd64-cud = ["gpu"] }',
            r"runners.linux-amd64-cud: no such env \(fix: did you mean 'linux-amd64-cuda'\?\)",
        ),
        ("runners = { macos-arm64 = [] }", r"runners.macos-arm64: needs at least one label"),
        ('runners = { macos-arm64 = ["a b"] }', r"runners.macos-arm64: 'a b' is not allowed here"),
    ],
)
def test_bad_runner_labels_are_config_errors_naming_pyproject_and_the_key(
    tmp_path: Path, ci: str, message: str
) -> None:
    root = project_with(tmp_path, ci)
    with pytest.raises(ConfigError, match=message) as caught:
        render.render_project(root)
    assert str(caught.value).startswith(str(root / "pyproject.toml"))


def test_device_note_says_why_the_device_path_did_not_run_and_how_to_run_it() -> None:
    result: dict[str, Any] = {
        "env": "linux-amd64-cuda",
        "accelerator": "cuda",
        "checks": {"device": {"status": "skipped", "why": "no NVIDIA GPU on this host"}},
    }
    note = cigraph.device_note(result, cigraph.CiSettings({}))
    assert note is not None and note.startswith(
        "The CUDA device path was not run: no NVIDIA GPU on this host."
    )
    assert 'add linux-amd64-cuda = ["self-hosted", "linux", "x64", "gpu"]' in note
    labelled = cigraph.CiSettings({"linux-amd64-cuda": tuple(GPU)})
    assert "add linux-amd64-cuda" not in (cigraph.device_note(result, labelled) or "")
    result["checks"]["device"]["status"] = "pass"
    assert cigraph.device_note(result, labelled) is None


def test_archlock_ci_runs_the_same_graph() -> None:
    project = Project.load(REPO)
    args = argparse.Namespace(
        results=None, push=True, set=["linux-*.args.X=1"], network="host", ca_bundle=None
    )
    refs = {env: f"reg/app:it-{env}" for env in linux_envs()}
    steps = cirun.plan(project, args, refs)
    assert [s.name for s in steps] == [
        "render check",
        "build",
        "verify linux-amd64-cuda",
        "verify linux-arm64-cpu",
        "matrix",
    ]
    assert steps[1].args == ("--push", "--set", "linux-*.args.X=1", "--network=host")
    verify = steps[3].args
    assert (
        verify[:4] == ("--image", "reg/app:it-linux-arm64-cpu", "--env", "linux-arm64-cpu")
        and "--pull" in verify
    )
    assert steps[-1].args[2:] == ("--gate", "--expect=linux-amd64-cuda", "--expect=linux-arm64-cpu")
    jobs = workflow(REPO)["jobs"]
    assert [s.env for s in steps if s.verb == "verify"] == [
        e["env"] for e in include(jobs["verify"])
    ]


# -- the matrix job's gate and the job summaries ------------------------------------------------
def gate_result(
    env: str, device: str, losses: list[float], emulated: bool = False
) -> dict[str, Any]:
    return {
        "schema": "archlock.verify/1",
        "env": env,
        "accelerator": "cuda" if env.endswith("cuda") else "cpu",
        "mode": "image",
        "status": "pass",
        "device": device,
        "image": {
            "tag": f"r/app:it-{env}",
            "id": "sha256:1",
            "digest": f"r/app@sha256:{'ab' * 32}",
        },
        "host": {"description": f"Debian 12 for {env}", "emulated": emulated},
        "lock": {"path": f"envs/locks/{env}.txt", "sha256": "cd" * 32},
        "runner": {"name": "local", "kind": "not a CI runner"},
        "hardware": {
            "cpu": "AMD EPYC",
            "gpus": [],
            "nvidia_driver": None,
            "macos": None,
            "vm": True,
        },
        "created": "2026-01-01T00:00:00Z",
        "checks": {"device": {"status": "skipped", "why": "no NVIDIA GPU on this host"}},
        "suite": {"checks": {"training": {"losses": losses}}},
    }


def matrix_args(folder: Path, *expect: str, gate: bool = True) -> argparse.Namespace:
    return argparse.Namespace(
        project=folder.parent,
        results=folder,
        markdown=None,
        html=None,
        check=False,
        expect=list(expect),
        gate=gate,
        summary=folder / "summary.md",
    )


def write(folder: Path, *results: dict[str, Any]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for item in results:
        (folder / f"{item['env']}.json").write_text(json.dumps(item))
    return folder


def test_matrix_names_a_missing_env_after_writing_the_summary(tmp_path: Path) -> None:
    folder = write(tmp_path / "results", gate_result("linux-amd64-cuda", "cpu", [0.5, 0.25]))
    with pytest.raises(CheckFailed, match=r"no result for expected env\(s\) linux-arm64-cpu in "):
        matrix.run(matrix_args(folder, "linux-amd64-cuda", "linux-arm64-cpu"))
    summary = (folder / "summary.md").read_text()
    assert "| image digest | r/app@sha256:abab" in summary
    assert "| lock | envs/locks/linux-amd64-cuda.txt sha256:cdcd" in summary
    assert "| hardware | AMD EPYC, no GPU, virtual machine |" in summary
    assert "relative tolerance by the env's device: cpu 0.0001, cuda 0.001, mps 0.001." in summary
    with pytest.raises(CheckFailed, match=r"no result for expected env\(s\) macos-arm64 in "):
        matrix.run(matrix_args(tmp_path / "none", "macos-arm64"))


def test_matrix_gate_fails_when_an_env_disagrees_with_the_cpu_reference(tmp_path: Path) -> None:
    native = gate_result("linux-amd64-cuda", "cpu", [0.5, 0.25])
    arm = gate_result("linux-arm64-cpu", "cpu", [0.5, 0.2500001], emulated=True)
    folder = write(tmp_path / "results", arm, native)
    assert matrix.run(matrix_args(folder, "linux-amd64-cuda", "linux-arm64-cpu")) == 0
    text = (folder / "matrix.md").read_text()
    assert "CPU reference `linux-amd64-cuda (image)`" in text
    assert "| same losses as the CPU reference | reference (final loss 0.250000) | pass (" in text
    write(folder, gate_result("linux-arm64-cpu", "cpu", [0.5, 0.26], emulated=True))
    with pytest.raises(CheckFailed, match=r"envs disagree with the CPU reference: linux-arm64-cpu"):
        matrix.run(matrix_args(folder, "linux-amd64-cuda", "linux-arm64-cpu"))
    assert matrix.run(matrix_args(folder, gate=False)) == 0  # without --gate: the table only


def test_verify_summary_says_the_cuda_path_did_not_run_and_why(tmp_path: Path) -> None:
    result = gate_result("linux-amd64-cuda", "cpu", [0.5])
    result["checks"]["device"]["why"] = (
        "no NVIDIA GPU on this host; the CUDA device path was not exercised"
    )
    text = jobsummary.verify_markdown(result, Project.load(REPO))
    assert text.startswith("### verify linux-amd64-cuda (image): pass")
    assert (
        "image r/app@sha256:abab" in text
        and "lock envs/locks/linux-amd64-cuda.txt sha256 cdcdcdcdcdcd" in text
    )
    assert "> The CUDA device path was not run: no NVIDIA GPU on this host;" in text
    assert 'add linux-amd64-cuda = ["self-hosted", "linux", "x64", "gpu"]' in text
