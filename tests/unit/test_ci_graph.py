"""The CI graph: the rendered workflow's jobs, the labels from settings, and `archlock ci`'s steps.

Every Linux env has build -> verify -> matrix; the Mac job verifies and uploads; the matrix job
runs also when a verify job failed and expects every env; every step that runs something is one
nox session call; `archlock ci` runs the same verbs for the same envs.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from archlock.build import render
from archlock.core.project import Project
from archlock.errors import ConfigError
from archlock.verify import cigraph, cirun

REPO = Path(__file__).resolve().parents[2]
GPU = ["self-hosted", "linux", "x64", "gpu"]
MAC = ["self-hosted", "macOS", "ARM64"]
WIRING = ("python -m pip install nox uv",)  # the only run: lines that are not a nox session


def workflow(root: Path) -> dict[str, Any]:
    files, _ = render.render_project(root)
    text = next(t for p, t in files.items() if p.name == render.WORKFLOW_NAME)
    return yaml.safe_load(text)


def project_with(tmp_path: Path, ci: str) -> Path:
    """This repo's envs, locks and pyproject, plus a [tool.archlock.ci] section."""
    root = tmp_path / "p"
    shutil.copytree(REPO / "envs", root / "envs")
    text = (REPO / "pyproject.toml").read_text()
    (root / "pyproject.toml").write_text(text + "\n[tool.archlock.ci]\n" + ci + "\n")
    return root


def include(job: dict[str, Any]) -> list[dict[str, Any]]:
    return job["strategy"]["matrix"]["include"]


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
    result = {
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
