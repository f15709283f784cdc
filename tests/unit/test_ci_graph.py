"""The CI graph: the rendered workflow's jobs, the labels from settings, and `archlock ci`'s steps.

Every Linux env has build -> verify -> matrix; the Mac job verifies and uploads; the matrix job
runs also when a verify job failed and expects every env; every step that runs something is one
nox session call; `archlock ci` runs the same verbs for the same envs.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import datetime
import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import workflow_eval as wf
import yaml

from archlock.build import cigraph, diskbudget, render, runners
from archlock.cli import main
from archlock.core.project import Project
from archlock.errors import CheckFailed, ConfigError
from archlock.verify import cirun, jobsummary, matrix

REPO = Path(__file__).resolve().parents[2]
GPU = ["self-hosted", "linux", "x64", "gpu"]
MAC = ["self-hosted", "macOS", "ARM64"]
WIRING = ("python -m pip install nox uv",)  # the only run: lines that are not a nox session
WIRING_IDS = ("registry", "digest", "merge")  # shell glue: the registry, a digest, the list
WIRING_NAMES = ("Free disk", "Remove the image")  # a hosted runner's disk, a runner's images


def workflow_text(root: Path) -> str:
    files, _ = render.render_project(root)
    return next(t for p, t in files.items() if p.name == render.WORKFLOW_NAME)


def workflow(root: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(workflow_text(root))
    return loaded


def project_with(tmp_path: Path, ci: str) -> Path:
    """This repo's envs, locks and pyproject, plus a [tool.archlock.ci] section."""
    root = tmp_path / "p"
    shutil.copytree(REPO / "envs", root / "envs")
    text = (REPO / "pyproject.toml").read_text()
    (root / "pyproject.toml").write_text(text + "\n[tool.archlock.ci]\n" + ci + "\n")
    return root


def settings_of(root: Path) -> render.RenderSettings:
    return render.load_settings(Project.load(root))


def linux_envs() -> list[str]:
    return cirun.linux_envs(Project.load(REPO))


def test_every_linux_env_has_its_own_build_and_verify_job() -> None:
    jobs = workflow(REPO)["jobs"]
    envs = linux_envs()
    assert envs == ["linux-amd64-cuda", "linux-arm64-cpu"]
    for env in envs:
        assert jobs[f"build-{env}"]["needs"] == "render-check"
        assert jobs[f"verify-{env}"]["needs"] == f"build-{env}"  # only its own build
    builds = [f"build-{env}" for env in envs]
    verifies = [f"verify-{env}" for env in [*envs, "macos-arm64"]]
    assert jobs["matrix"]["needs"] == builds + verifies
    assert jobs["matrix"]["if"] == "!cancelled()"
    assert jobs["publish"]["needs"] == [*builds, *verifies, "matrix"]
    gate = next(s["run"] for s in jobs["matrix"]["steps"] if "nox -s matrix" in s.get("run", ""))
    for env in [*envs, "macos-arm64"]:
        assert f"--expect {env}" in gate
    assert "--gate" in gate and '--summary "$GITHUB_STEP_SUMMARY"' in gate


def test_native_runners_by_default_and_qemu_only_when_asked() -> None:
    jobs = workflow(REPO)["jobs"]
    push = {"github.event_name": "push"}
    qemu = {**push, "vars.ARCHLOCK_ARM64_QEMU": "true"}
    for kind in ("build", "verify"):
        amd, arm = jobs[f"{kind}-linux-amd64-cuda"], jobs[f"{kind}-linux-arm64-cpu"]
        assert wf.runs_on(amd, push) == wf.runs_on(amd, qemu) == ("ubuntu-24.04",)
        assert wf.runs_on(arm, push) == ("ubuntu-24.04-arm",)
        assert wf.runs_on(arm, qemu) == ("ubuntu-24.04",)
    for env in linux_envs():
        assert jobs[f"verify-{env}"]["env"]["ARCHLOCK_REQUIRE_DEVICE"] == "false"
    verify = jobs["verify-linux-arm64-cpu"]
    step = next(s for s in verify["steps"] if s.get("uses", "").startswith("docker/setup-qemu"))
    assert step["if"] == "env.PLATFORM != 'linux/amd64' && env.QEMU == 'true'"
    run = next(s for s in verify["steps"] if "nox -s verify" in s.get("run", ""))
    assert '--pull --env "$ENV_NAME" --image "$REPO@$(cat "digests/$ENV_NAME")"' in run["run"]
    digest = next(s for s in verify["steps"] if "download-artifact" in s.get("uses", ""))
    assert digest["with"] == {"name": "digest-linux-arm64-cpu", "path": "digests"}


def test_uploads_overwrite_keep_a_week_and_always_is_only_for_cleanup() -> None:
    text = workflow_text(REPO)
    jobs = yaml.safe_load(text)["jobs"]
    for name, job in jobs.items():
        assert isinstance(job.get("timeout-minutes"), int), name
        for step in job["steps"]:
            if "upload-artifact" in step.get("uses", ""):
                assert step["with"]["overwrite"] is True, (name, step)
                assert step["with"]["retention-days"] >= 7, (name, step)
            if "always()" in str(step.get("if", "")):
                assert step["name"].startswith("Remove the image this job"), (name, step)
        assert "always()" not in str(job.get("if", "")), name
    for env in [*linux_envs(), "macos-arm64"]:
        upload = next(
            s for s in jobs[f"verify-{env}"]["steps"] if "Upload the result" in s.get("name", "")
        )
        assert upload["if"] == "${{ !cancelled() }}"
        assert upload["with"]["path"] == "results/${{ env.ENV_NAME }}.json"
        # verify's own default is keyed by target (<env>.image.json, <env>.host.json): the job
        # names the file it uploads
        verify_runs = [
            s["run"] for s in jobs[f"verify-{env}"]["steps"] if "nox -s verify" in s.get("run", "")
        ]
        assert verify_runs and all('--output "results/$ENV_NAME.json"' in r for r in verify_runs)
    runs = [s["run"] for s in jobs["verify-macos-arm64"]["steps"] if "run" in s]
    assert runs[1:] == [
        "nox -s setup-mac",
        'nox -s verify -- --env "$ENV_NAME" --output "results/$ENV_NAME.json" '
        '--summary "$GITHUB_STEP_SUMMARY"',
    ]


def test_actions_are_pinned_by_sha_with_their_version_and_prs_cancel_only_prs() -> None:
    text = workflow_text(REPO)
    uses = re.findall(r"uses: (\S+)(.*)", text)
    assert len(uses) > 20
    for ref, comment in uses:
        assert re.fullmatch(r"[\w./-]+@[0-9a-f]{40}", ref), ref
        assert re.fullmatch(r"  # v[0-9]+\.[0-9]+\.[0-9]+", comment), (ref, comment)
    loaded = yaml.safe_load(text)
    cancel = loaded["concurrency"]["cancel-in-progress"]
    assert wf.evaluate(cancel, {"github.event_name": "pull_request"}) is True
    assert wf.evaluate(cancel, {"github.event_name": "push"}) is False
    assert loaded["permissions"] == {}


def test_every_step_of_the_graph_is_one_nox_session() -> None:
    jobs = workflow(REPO)["jobs"]
    for name, job in jobs.items():
        for step in job["steps"]:
            run = step.get("run")
            if run is None or run in WIRING or step.get("id") in WIRING_IDS:
                continue
            if step.get("name", "").startswith(WIRING_NAMES):
                continue
            assert (
                run.startswith("nox -s ") and "\n" not in run.strip() and run.count("nox -s") == 1
            ), (name, run)


PUSH = {"event_name": "push", "ref_type": "branch"}
SAME_REPO_PR = {
    "event_name": "pull_request",
    "event.pull_request.head.repo.fork": False,
    "event.pull_request.user.login": "dev",
}
FORK_PR = {**SAME_REPO_PR, "event.pull_request.head.repo.fork": True}
DEPENDABOT_PR = {**SAME_REPO_PR, "event.pull_request.user.login": "dependabot[bot]"}
LABELLED = f"runners = {{ linux-amd64-cuda = {GPU!r}, macos-arm64 = {MAC!r} }}".replace("'", '"')


def scope(event: dict[str, Any]) -> dict[str, Any]:
    return {f"github.{k}": v for k, v in event.items()}


def test_labels_come_from_settings_and_untrusted_prs_fall_back_to_hosted(tmp_path: Path) -> None:
    jobs = workflow(project_with(tmp_path, LABELLED))["jobs"]
    cuda, mac = jobs["verify-linux-amd64-cuda"], jobs["verify-macos-arm64"]
    for event in (PUSH, SAME_REPO_PR):
        assert wf.runs_on(cuda, scope(event)) == tuple(GPU)
        assert wf.runs_on(mac, scope(event)) == tuple(MAC)
        assert wf.evaluate(mac["env"]["ARCHLOCK_REQUIRE_DEVICE"], scope(event)) == "true"
    for event in (FORK_PR, DEPENDABOT_PR):
        assert wf.runs_on(mac, scope(event)) == ("macos-26",)
        assert wf.evaluate(mac["env"]["ARCHLOCK_REQUIRE_DEVICE"], scope(event)) == "false"
    assert wf.runs_on(jobs["verify-linux-arm64-cpu"], scope(PUSH)) == ("ubuntu-24.04-arm",)


def test_the_default_hosted_mac_is_a_current_arm64_image() -> None:
    mac = workflow(REPO)["jobs"]["verify-macos-arm64"]
    (label,) = wf.runs_on(mac, scope(PUSH))
    row = runners.HOSTED[label]
    assert (row.os, row.arch, row.retired) == ("macos", "arm64", None)


def test_a_retired_label_warns_on_render_and_fails_render_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = project_with(tmp_path, 'runners = { macos-arm64 = ["macos-14"] }')
    before = datetime.date(2026, 11, 1)
    assert render.render_checked(root, today=before)[2] == []
    problems = render.render_checked(root, today=datetime.date(2026, 11, 2))[2]
    assert problems == [
        "verify-macos-arm64: runner label 'macos-14' was retired on 2026-11-02"
        " (actions/runner-images#13518): a job on it never starts"
    ]
    args = argparse.Namespace(project=root, check=False, workflow_dir=None)
    assert render.run(args) == 0  # today is after the retirement: a warning
    assert "archlock render: warning: verify-macos-arm64: runner label 'macos-14'" in (
        capsys.readouterr().err
    )
    with pytest.raises(CheckFailed, match="the workflow would fail on GitHub: verify-macos-arm64"):
        render.run(argparse.Namespace(project=root, check=True, workflow_dir=None))


def test_the_heavy_env_frees_disk_or_takes_the_larger_runner_it_is_given(tmp_path: Path) -> None:
    jobs = workflow(REPO)["jobs"]
    assert diskbudget.plan(0).free_disk is False
    cuda = jobs["build-linux-amd64-cuda"]["steps"][0]
    assert cuda["name"].startswith("Free disk (the build needs about 15.9 GB")
    assert cuda["if"] == "runner.environment == 'github-hosted'"
    assert "sudo rm -rf /usr/local/lib/android" in cuda["run"]
    assert not any("Free disk" in s.get("name", "") for s in jobs["build-linux-arm64-cpu"]["steps"])
    big = project_with(tmp_path, 'build-runners = { linux-amd64-cuda = ["ubuntu-24.04-16core"] }')
    build = workflow(big)["jobs"]["build-linux-amd64-cuda"]
    assert wf.runs_on(build, scope(PUSH)) == ("ubuntu-24.04-16core",)
    assert wf.runs_on(build, scope(FORK_PR)) == ("ubuntu-24.04",)


def test_the_disk_budget_reads_the_largest_wheel_of_each_locked_package(tmp_path: Path) -> None:
    pylock = tmp_path / "pylock.x.toml"
    pylock.write_text(
        'lock-version = "1.0"\n'
        '[[packages]]\nname = "torch"\n'
        'wheels = [{ name = "a.whl", size = 900 }, { name = "b.whl", size = 1000 }]\n'
        '[[packages]]\nname = "six"\nwheels = [{ name = "c.whl" }]\n'
        '[[packages]]\nname = "nvidia-x"\nwheels = [{ name = "d.whl", size = 24 }]\n'
    )
    assert diskbudget.wheel_bytes(pylock) == 1024
    assert diskbudget.wheel_bytes(tmp_path / "missing.toml") == 0
    peak = diskbudget.plan(4 * diskbudget.GB)  # about this repository's CUDA lock
    assert (peak.free_disk, peak.too_big) == (True, False)
    assert diskbudget.plan(200_000_000).free_disk is False  # the arm64 CPU lock's size


def test_a_build_too_big_for_any_hosted_runner_is_a_problem_naming_the_setting() -> None:
    target = next(t for t in render.image_targets(Project.load(REPO), settings_of(REPO))[0])
    huge = dataclasses.replace(target, wheel_bytes=20 * diskbudget.GB)
    context = cigraph.workflow_context([huge], [], cigraph.CiSettings({}))
    (problem,) = cigraph.problems(context, "", datetime.date(2026, 12, 4))
    assert problem.startswith(f"build-{huge.env}: its build needs about 73")
    assert f'build-runners = {{ {huge.env} = ["LABEL"] }}' in problem


def test_registry_login_comes_from_named_secrets(tmp_path: Path) -> None:
    root = project_with(
        tmp_path,
        'registry-username-secret = "REG_USER"\nregistry-password-secret = "REG_TOKEN"',
    )
    (root / "pyproject.toml").write_text(
        (root / "pyproject.toml").read_text()
        + '\n[tool.archlock.render]\nregistry = "registry.example:5000/team/"\n'
    )
    jobs = workflow(root)["jobs"]
    logins = [
        s for job in jobs.values() for s in job["steps"] if "login-action" in s.get("uses", "")
    ]
    assert len(logins) == 5
    for step in logins:
        assert step["with"]["username"] == "${{ secrets.REG_USER }}"
        assert step["with"]["password"] == "${{ secrets.REG_TOKEN }}"
    assert render.render_checked(root)[2] == []
    plain = project_with(tmp_path / "plain", "")
    text = (plain / "pyproject.toml").read_text()
    (plain / "pyproject.toml").write_text(
        text.replace("[tool.archlock.ci]", '[tool.archlock.render]\nregistry = "quay.io/team/"')
    )
    (problem,) = render.render_checked(plain)[2]
    assert problem.startswith("registry quay.io is not GHCR")
    bad = project_with(tmp_path / "bad", 'registry-password-secret = "GITHUB_TOKEN"')
    with pytest.raises(
        ConfigError, match="registry-password-secret: 'GITHUB_TOKEN' is not allowed"
    ):
        render.render_project(bad)


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
    assert [f"verify-{s.env}" for s in steps if s.verb == "verify"] == [
        name for name in jobs if name.startswith("verify-linux")
    ]


# -- the graph, evaluated: which jobs run, on what, and what gets published ---------------------
def published(graph: dict[str, Any], run: wf.Run) -> list[str]:
    """The envs the publish job tags (all of ENVS when it ran), and their digests are there."""
    if run.results.get("publish") != "success":
        return []
    step = next(s for s in graph["jobs"]["publish"]["steps"] if s.get("id") == "merge")
    envs = str(step["env"]["ENVS"]).split()
    assert all(f"digest-{env}" in run.artifacts for env in envs), run.artifacts
    return envs


def test_a_push_where_everything_passes_publishes_every_env() -> None:
    graph = workflow(REPO)
    run = wf.simulate(graph, wf.Scenario(PUSH))
    assert set(run.results.values()) == {"success"}
    assert published(graph, run) == linux_envs()
    assert (
        "Upload to code scanning (not from forks or Dependabot; private repositories opt in)"
        in (run.steps["scan"])
    )


def test_one_envs_failed_build_skips_only_its_own_verify_and_publishes_nothing() -> None:
    graph = workflow(REPO)
    fails = {"build-linux-amd64-cuda", "matrix"}  # the gate fails: a result is missing
    run = wf.simulate(graph, wf.Scenario(PUSH, fails=fails))
    assert run.results["verify-linux-amd64-cuda"] == "skipped"
    assert run.results["verify-linux-arm64-cpu"] == "success"
    assert run.results["verify-macos-arm64"] == "success"
    assert run.results["matrix"] == "failure"  # it ran, and names what is missing
    assert run.results["publish"] == "skipped" and published(graph, run) == []
    assert "digest-linux-amd64-cuda" not in run.artifacts


def test_a_fork_or_dependabot_pr_never_logs_in_uploads_sarif_or_reaches_team_runners(
    tmp_path: Path,
) -> None:
    graph = workflow(project_with(tmp_path, LABELLED))
    for event in (FORK_PR, DEPENDABOT_PR):
        run = wf.simulate(graph, wf.Scenario(event))
        ran = [step for steps in run.steps.values() for step in steps]
        assert "Log in to the registry" not in ran
        assert not any("code scanning" in step for step in ran)
        assert all("self-hosted" not in labels for labels in run.runs_on.values()), run.runs_on
        assert run.results["verify-linux-amd64-cuda"] == "skipped"  # verified in its build
        build = run.steps["build-linux-amd64-cuda"]
        assert "Verify the pull request's image" in build
        assert build[-1].startswith("Remove the image this job loaded")
        assert {f"result-{env}" for env in [*linux_envs(), "macos-arm64"]} <= set(run.artifacts)
        assert run.results["matrix"] == "success" and run.results["publish"] == "skipped"
    same = wf.simulate(graph, wf.Scenario(SAME_REPO_PR))
    assert "Log in to the registry" in same.steps["build-linux-amd64-cuda"]  # for cache-from
    assert same.runs_on["verify-macos-arm64"] == tuple(MAC)


def test_a_cancelled_run_skips_the_gate_and_publish_and_cleans_the_runner() -> None:
    graph = workflow(REPO)
    run = wf.simulate(graph, wf.Scenario(PUSH, cancel_after="verify-linux-amd64-cuda"))
    assert run.results["verify-linux-amd64-cuda"] == "cancelled"
    assert run.results["matrix"] == "skipped"  # not red: !cancelled(), not always()
    assert run.results["publish"] == "skipped"
    steps = run.steps["verify-linux-amd64-cuda"]
    assert steps[-1] == "Remove the image this job pulled (a self-hosted runner keeps its disk)"
    assert "Upload the result (also when verify failed)" not in steps


def test_re_running_failed_jobs_overwrites_artifacts_and_publishes() -> None:
    graph = workflow(REPO)
    first = wf.simulate(graph, wf.Scenario(PUSH, fails={"verify-linux-amd64-cuda", "matrix"}))
    assert first.results["publish"] == "skipped"
    assert first.artifacts["result-linux-amd64-cuda"] == "verify-linux-amd64-cuda"
    again = wf.simulate(
        graph, wf.Scenario(PUSH, previous=dict(first.results), artifacts=dict(first.artifacts))
    )
    assert set(again.steps) == {"verify-linux-amd64-cuda", "matrix", "publish"}  # only those
    assert again.results["publish"] == "success"
    assert published(graph, again) == linux_envs()  # digests from the first attempt are kept


def test_without_gpu_labels_cuda_is_verified_on_a_hosted_runner_and_published() -> None:
    graph = workflow(REPO)
    run = wf.simulate(graph, wf.Scenario(PUSH, runners=set(runners.HOSTED)))
    assert run.runs_on["verify-linux-amd64-cuda"] == ("ubuntu-24.04",)
    assert graph["jobs"]["verify-linux-amd64-cuda"]["env"]["ARCHLOCK_REQUIRE_DEVICE"] == "false"
    assert published(graph, run) == linux_envs()


def test_a_gpu_label_no_runner_offers_holds_publish_back(tmp_path: Path) -> None:
    graph = workflow(project_with(tmp_path, LABELLED))
    run = wf.simulate(graph, wf.Scenario(PUSH, runners=set(runners.HOSTED) | set(MAC)))
    assert run.results["verify-linux-amd64-cuda"] == "waiting"
    assert run.results["matrix"] == run.results["publish"] == "waiting"
    assert published(graph, run) == []


def test_the_evaluator_refuses_what_it_does_not_know() -> None:
    for text in ("contains(github.ref, 'x')", "secrets.TOKEN", "github.ref =~ 'x'", "a.b"):
        with pytest.raises(wf.Unsupported):
            wf.evaluate(text, {})
    assert wf.evaluate("github.actor == 'Dependabot[bot]'", {"github.actor": "dependabot[bot]"})


def test_every_session_the_workflow_calls_is_in_the_init_noxfile(tmp_path: Path) -> None:
    root = tmp_path / "trainer"
    shutil.copytree(REPO / "tests" / "fixtures" / "projects" / "train-requirements", root)
    assert main(["--project", str(root), "init", "--no-lock"]) == 0
    shutil.copytree(REPO / "envs" / "locks", root / "envs" / "locks")  # render reads locks only
    graph = workflow(root)
    called = {
        session
        for job in graph["jobs"].values()
        for step in job["steps"]
        for session in re.findall(r"^nox -s ([\w-]+)", step.get("run", ""))
    }
    assert called == {"render-check", "verify", "setup-mac", "matrix", "scan"}
    assert called <= noxfile_sessions(root / "noxfile.py")


def noxfile_sessions(path: Path) -> set[str]:
    """The session names a noxfile declares (@nox.session, its name= when given)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.FunctionDef):
            continue
        for deco in node.decorator_list:
            call = deco if isinstance(deco, ast.Call) else None
            target = call.func if call else deco
            if ast.unparse(target) != "nox.session":
                continue
            named = [k.value for k in (call.keywords if call else []) if k.arg == "name"]
            names.add(ast.literal_eval(named[0]) if named else node.name)
    return names


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
