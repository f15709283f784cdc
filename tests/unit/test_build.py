"""archlock build: the plan from render's data, --set, both command forms, and missing tools."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from archlock import cli
from archlock.build import build, plan, render
from archlock.core import docker as du
from archlock.errors import ConfigError, ToolMissingError

SHA = "ab" * 32


def image(env: str, platform: str, **changes: object) -> render.ImageTarget:
    values: dict[str, object] = {
        "env": env,
        "platforms": (platform,),
        "python": "3.11",
        "accelerator": "cpu",
        "base_image": "debian:bookworm-slim",
        "lock_path": f"envs/locks/{env}.txt",
        "lock_sha256": SHA,
        "install_project": True,
        "runner": "ubuntu-24.04",
    }
    values.update(changes)
    return render.ImageTarget(**values)  # type: ignore[arg-type]


TARGETS = [
    image("gpu", "linux/amd64"),
    image("cpu", "linux/arm64"),
    image("extra", "linux/amd64", opt_in=True),
]
VARS = plan.variables(render.RenderSettings(image_name="app"), {})


def test_variables_default_like_the_bake_file_and_yield_to_the_environment() -> None:
    assert VARS == {
        "REGISTRY": "",
        "IMAGE": "app",
        "TAG": "dev",
        "UV_IMAGE": render.DEFAULT_UV_IMAGE,
        "SOURCE_URL": "",
        "REVISION": "",
        "COMPILE_BYTECODE": "1",
        "SOURCE_DATE_EPOCH": "315532800",
    }
    env = plan.variables(
        render.RenderSettings(image_name="app"),
        {"REGISTRY": "127.0.0.1:5000/", "TAG": "t1", "PATH": "x"},
    )
    assert env["REGISTRY"] == "127.0.0.1:5000/" and env["TAG"] == "t1" and "PATH" not in env


def test_plan_has_one_target_per_env_with_tags_args_and_the_manifest() -> None:
    the_plan = plan.make_plan(TARGETS, {**VARS, "REGISTRY": "r:5000/"}, (), ())
    assert [t.name for t in the_plan.targets] == ["gpu", "cpu", "extra"]
    gpu = the_plan.targets[0]
    assert gpu.dockerfile == "docker/gpu.Dockerfile" and gpu.platform == "linux/amd64"
    assert gpu.tags == ("r:5000/app:dev-gpu",)
    assert gpu.args == {
        "BASE_IMAGE": "debian:bookworm-slim",
        "UV_IMAGE": render.DEFAULT_UV_IMAGE,
        "SOURCE_URL": "",
        "REVISION": "",
        "COMPILE_BYTECODE": "1",
        "SOURCE_DATE_EPOCH": "315532800",
    }
    assert the_plan.manifest == "r:5000/app:dev"
    assert [t.in_manifest for t in the_plan.targets] == [
        True,
        True,
        False,
    ]  # opt-in: not in the list


def test_targets_and_groups_select_envs() -> None:
    assert plan.select(TARGETS, ("cpu",)) == ["cpu"]
    assert plan.select(TARGETS, ("cpu-release", "gpu")) == ["cpu", "gpu"]
    assert plan.select(TARGETS, ("multiarch",)) == ["gpu", "cpu"]
    assert plan.select(TARGETS, ("release",)) == ["gpu", "cpu", "extra"]
    with pytest.raises(ConfigError, match="'nope': no such env or group"):
        plan.select(TARGETS, ("nope",))


def test_sets_match_patterns_like_bake() -> None:
    sets = ("*.args.UV_IMAGE=local/uv", "c*.tags=one,two", "gpu.tags=other", "cpu.no-cache=true")
    cpu = plan.make_plan(TARGETS, VARS, ("cpu",), sets).targets[0]
    assert cpu.args["UV_IMAGE"] == "local/uv" and cpu.args["BASE_IMAGE"] == "debian:bookworm-slim"
    assert cpu.tags == ("one", "two") and cpu.no_cache is True
    assert plan.make_plan(TARGETS, VARS, ("cpu",), ("*.tags=",)).targets[0].tags == ()


@pytest.mark.parametrize(
    "item, message",
    [("tags", "TARGET.KEY=VALUE"), ("*.platform=linux/arm64", "does not set 'platform'")],
)
def test_bad_sets_are_config_errors(item: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        plan.make_plan(TARGETS, VARS, ("cpu",), (item,))


def test_buildx_command_loads_by_default_with_host_network_entitlement() -> None:
    cpu = plan.make_plan(TARGETS, VARS, ("cpu",), ()).targets[0]
    flags = plan.Flags(network="host", ca_bundle=Path("/ca.pem"), progress_plain=True)
    cmd = plan.buildx_args(cpu, flags, attestations=True)
    assert cmd[:6] == [
        "buildx",
        "build",
        "--platform",
        "linux/arm64",
        "-f",
        "docker/cpu.Dockerfile",
    ]
    assert cmd[cmd.index("-t") + 1] == "app:dev-cpu" and "BASE_IMAGE=debian:bookworm-slim" in cmd
    assert (
        cmd[cmd.index("--network") + 1] == "host"
        and cmd[cmd.index("--allow") + 1] == "network.host"
    )
    assert "id=ca-bundle,src=/ca.pem" in cmd and cmd[cmd.index("--progress") + 1] == "plain"
    assert "--load" in cmd and "--push" not in cmd and cmd[-1] == "."


def test_buildx_push_attaches_attestations_only_where_the_driver_can() -> None:
    cpu = plan.make_plan(TARGETS, VARS, ("cpu",), ()).targets[0]
    able = plan.buildx_args(cpu, plan.Flags(push=True), attestations=True)
    assert "--push" in able and "--load" not in able
    assert "--sbom=true" in able and "--provenance=mode=max" in able
    assert able[able.index("--cache-to") + 1] == "type=registry,ref=app:buildcache-cpu,mode=max"
    unable = plan.buildx_args(cpu, plan.Flags(push=True), attestations=False)
    assert (
        "--sbom=false" in unable and "--provenance=false" in unable and "--cache-to" not in unable
    )


def test_fallback_command_is_a_plain_build_of_the_same_target() -> None:
    cpu = plan.make_plan(TARGETS, VARS, ("cpu",), ("*.no-cache=1",)).targets[0]
    cmd = plan.fallback_args(cpu, plan.Flags(network="host"))
    assert cmd[:4] == ["build", "--platform", "linux/arm64", "-f"]
    assert "--allow" not in cmd and "--no-cache" in cmd and cmd[-1] == "."
    # the same arguments as buildx, apart from what only buildx has
    assert cmd[1:-1] == plan.buildx_args(cpu, plan.Flags(network="host"), True)[2:-4]


def test_plan_of_this_repository_matches_its_rendered_dockerfiles(repo: Path) -> None:
    the_plan = build.plan_for(build.BuildOptions(project=repo, env={"REGISTRY": "127.0.0.1:5000/"}))
    assert the_plan.targets
    for target in the_plan.targets:
        assert (repo / target.dockerfile).is_file()
        assert target.tags[0].startswith("127.0.0.1:5000/")
    assert the_plan.manifest.startswith("127.0.0.1:5000/")


def test_loopback_registries_are_insecure_others_not() -> None:
    assert build._is_loopback("127.0.0.1:5000/app:dev")
    assert build._is_loopback("localhost:5000/app:dev")
    assert not build._is_loopback("ghcr.io/team/app:dev")
    assert not build._is_loopback("app:dev")


# -- the container runner, missing tools and settings -----------------------------------------
@pytest.fixture
def no_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    du.engine.cache_clear()
    monkeypatch.delenv(du.ENGINE_ENV, raising=False)
    monkeypatch.setattr(du.shutil, "which", lambda name: None)
    monkeypatch.setattr(du, "_executable", lambda path: False)
    yield
    du.engine.cache_clear()


def test_no_docker_or_podman_is_one_actionable_line(no_engine: None) -> None:
    with pytest.raises(ToolMissingError, match="no docker or podman client found"):
        du.engine()


def test_engine_is_found_once_and_podman_counts(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    podman = tmp_path / "podman"
    podman.write_text("#!/bin/sh\n")
    podman.chmod(0o755)
    du.engine.cache_clear()
    monkeypatch.setenv(du.ENGINE_ENV, str(podman))
    try:
        assert du.engine() == du.Engine(str(podman), "podman")
        monkeypatch.setenv(du.ENGINE_ENV, "/nowhere/docker")
        assert du.engine().cli == str(podman)  # found once per process
    finally:
        du.engine.cache_clear()


def test_engine_down_is_tool_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(du, "engine_running", lambda: False)
    with pytest.raises(ToolMissingError, match="engine is not running"):
        build.build(build.BuildOptions(project=Path("/proj")))


def test_cli_without_docker_exits_3_with_one_line(
    no_engine: None, capsys: pytest.CaptureFixture[str], repo: Path
) -> None:
    code = cli.main(["build", "--project", str(repo), "--no-render-check"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 3
    assert err == [
        f"archlock build: error: no docker or podman client found (fix: {du.MISSING_FIX})"
    ]


def test_ca_bundle_from_flag_env_settings_or_the_system(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from archlock.core import cabundle, settings

    pem = tmp_path / "ca.pem"
    pem.write_text("pem")

    def chosen(cli: str | None, table: dict[str, str], environ: dict[str, str]) -> Path | None:
        values = settings.read({"build": table}, settings.Build, tmp_path, environ=environ)
        return cabundle.resolve(settings.given(values, ca_bundle=cli).ca_bundle)

    monkeypatch.setattr(cabundle, "system_bundle", lambda: Path("/system.pem"))
    assert chosen(None, {}, {}) == Path("/system.pem")  # one rule with repro: the system bundle
    assert chosen("none", {}, {}) is None
    assert chosen(None, {"ca-bundle": "none"}, {}) is None
    assert chosen(str(pem), {"ca-bundle": "none"}, {}) == pem
    assert chosen(None, {"ca-bundle": str(pem)}, {}) == pem
    assert chosen(None, {"ca-bundle": "none"}, {build.CA_ENV: str(pem)}) == pem
    with pytest.raises(ConfigError, match="not found"):
        chosen(str(tmp_path / "missing.pem"), {}, {})


def test_build_refuses_stale_renders_before_touching_docker(
    tmp_path: Path,
    fixtures: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    project = tmp_path / "app"
    shutil.copytree(fixtures / "projects" / "requirements-app", project)
    locks = project / "envs" / "locks"
    locks.mkdir(parents=True)
    for env in ("linux-amd64-cuda", "linux-arm64-cpu"):
        (locks / f"{env}.txt").write_text(f"torch==2.10.0 --hash=sha256:{'0' * 64}\n")
    assert cli.main(["render", "--project", str(project)]) == 0
    (locks / "linux-amd64-cuda.txt").write_text(f"torch==2.10.1 --hash=sha256:{'2' * 64}\n")
    monkeypatch.setattr(du, "engine_running", lambda: pytest.fail("docker must not be reached"))
    capsys.readouterr()
    assert cli.main(["build", "--project", str(project)]) == 5
    assert "rendered files are stale: docker/linux-amd64-cuda.Dockerfile" in capsys.readouterr().err


def test_an_env_without_wheels_for_its_platform_is_announced() -> None:
    emulated = image(
        "old",
        "linux/arm64",
        deps_on_build_platform=False,
        emulated_because="no linux/arm64 wheel for x",
    )
    the_plan = plan.make_plan([*TARGETS, emulated], VARS, ("old", "cpu"), ())
    assert the_plan.notes == [
        "old: the venv installs with linux/arm64's uv, emulated on other machines: "
        "no linux/arm64 wheel for x"
    ]
    assert plan.make_plan([*TARGETS, emulated], VARS, ("cpu",), ()).notes == []


def test_every_target_is_dated_by_the_epoch_not_the_clock() -> None:
    cpu = plan.make_plan(TARGETS, VARS, ("cpu",), ()).targets[0]
    assert cpu.args["SOURCE_DATE_EPOCH"] == "315532800"
    dated = plan.variables(
        render.RenderSettings(image_name="x"), {"SOURCE_DATE_EPOCH": "1700000000"}
    )
    assert dated["SOURCE_DATE_EPOCH"] == "1700000000"
    assert "--build-arg" in plan.buildx_args(cpu, plan.Flags(), attestations=False)


@pytest.mark.parametrize(
    ("driver", "loaded_then_pushed"), [("docker", True), ("docker-container", False)]
)
def test_an_engine_builder_pushes_only_what_it_loaded_and_settled(
    monkeypatch: pytest.MonkeyPatch, driver: str, loaded_then_pushed: bool
) -> None:
    """The engine's own BuildKit dates the config with the clock: load, settle, then push."""
    the_plan = plan.make_plan(TARGETS, VARS, ("cpu",), ())
    ran: list[list[str]] = []
    settled: list[tuple[str, int]] = []
    monkeypatch.setattr(du, "buildx_driver", lambda: driver)
    monkeypatch.setattr(du, "containerd_store", lambda: False)
    monkeypatch.setattr(du, "docker_cli", lambda: "docker")
    monkeypatch.setattr(build, "_run", lambda report, options, argv, what: ran.append(list(argv)))
    monkeypatch.setattr(
        build.reproducible,
        "settle",
        lambda tag, epoch, timeout: settled.append((tag, epoch)) or "sha256:" + "c" * 64,
    )
    options = build.BuildOptions(project=Path("."), push=True, quiet=True)
    report = build._buildx(the_plan, options)
    (target,) = the_plan.targets
    built = ran[0]
    if loaded_then_pushed:
        assert "--load" in built and "--push" not in built
        assert settled == [(target.tags[0], 315532800)]
        assert ran[1:] == [["docker", "push", tag] for tag in target.tags]
        assert report.images[0].image_id == "sha256:" + "c" * 64
    else:
        assert "--push" in built and not settled and len(ran) == 1
        assert report.images[0].image_id == ""
