"""archlock build: the bake-file reader, --set, the fallback plan, and missing tools."""

from __future__ import annotations

from pathlib import Path

import pytest

from archlock import cli

from archlock.build import bakefile

from archlock.build import build
from archlock.core import docker as du
from archlock.errors import ConfigError, ToolMissingError

BAKE = '''
# comment
// another
/* block
   comment */
variable "REGISTRY" {
  default = ""
}
variable "TAG" { default = "dev" }
variable "FULL" {
  default = "${REGISTRY}app:${TAG}"
}
variable "PUSHING" {
  default = false
}
group "default" {
  targets = ["a", "b"]
}
group "all" {
  targets = ["default", "c"]
}
target "_common" {
  context = "."
  args = {
    UV_IMAGE = "uv:1"
    KEEP = "yes"
  }
}
target "a" {
  inherits = ["_common"]
  dockerfile = "docker/a.Dockerfile"
  platforms = ["linux/amd64"]
  tags = ["${REGISTRY}app:${TAG}-a"]
  args = {
    UV_IMAGE = "uv:2"
    "QUOTED" = "x\\"y"
    LITERAL = "$${NOT_A_VAR}"
  }
}
target "b" {
  inherits = ["_common"]
  dockerfile = "docker/b.Dockerfile"
  platforms = ["linux/amd64", "linux/arm64"]
  tags = ["${REGISTRY}app:${TAG}-b"]
}
target "c" {
  inherits = ["b"]
  attest = ["type=sbom"]
  cache-to = ["type=registry,ref=x"]
  no-cache = true
}
'''

DOCKER = "/usr/bin/docker"


def load(env: dict[str, str] | None = None) -> bakefile.BakeFile:
    return bakefile.parse(BAKE, Path("docker-bake.hcl"), env=env or {})


def options(**changes: object) -> build.BuildOptions:
    return build.BuildOptions(project=Path("/proj"), **changes)  # type: ignore[arg-type]


# -- the reader ---------------------------------------------------------------------------------
def test_reader_resolves_variables_inherits_and_groups() -> None:
    bake = load()
    assert bake.targets_of("all") == ["a", "b", "c"]
    a = bake.target("a")
    assert a.tags == ("app:dev-a",)
    assert a.args == {"UV_IMAGE": "uv:2", "KEEP": "yes", "QUOTED": 'x"y', "LITERAL": "${NOT_A_VAR}"}
    c = bake.target("c")
    assert c.platforms == ("linux/amd64", "linux/arm64") and c.dockerfile == "docker/b.Dockerfile"
    assert c.attest == ("type=sbom",) and c.no_cache is True
    assert bake.variable("FULL") == "app:dev"
    assert bake.variable("PUSHING") == "false"


def test_environment_overrides_variables_like_bake() -> None:
    bake = load({"REGISTRY": "127.0.0.1:5000/", "TAG": "t1"})
    assert bake.target("a").tags == ("127.0.0.1:5000/app:t1-a",)
    assert bake.variable("FULL") == "127.0.0.1:5000/app:t1"


@pytest.mark.parametrize(
    "text, message",
    [
        ('target "t" {\n  tags = [upper("x")]\n}\n', "cannot read"),
        ('target "t" {\n  tags = ["${A ? 1 : 2}"]\n}\n', "outside what archlock reads"),
        ('function "f" {\n  params = []\n}\n', "block 'function'"),
        ('target "t" {\n  tags = ["\\q"]\n}\n', "escape"),
        ('target "t" {\n  tags = ["x"]\n', "expected"),
        ('target "t" {\n  args = ["x"]\n}\n', "must be a map"),
    ],
)
def test_reader_refuses_what_it_cannot_read_with_a_line(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        bake = bakefile.parse(text, Path("f.hcl"), env={})
        bake.target("t")
    assert "f.hcl" in info.value.line()


def test_unknown_target_and_variable_cycles_are_clean_errors() -> None:
    with pytest.raises(ConfigError, match="no target or group 'nope'"):
        load().targets_of("nope")
    cyclic = bakefile.parse('variable "A" {\n default = "${B}"\n}\nvariable "B" {\n default = "${A}"\n}\n', Path("f"), env={})
    with pytest.raises(ConfigError, match="refers to itself"):
        cyclic.variable("A")


def test_reader_reads_the_rendered_bake_file(repo: Path) -> None:
    bake = bakefile.load(repo / "docker" / "docker-bake.hcl", env={})
    for name in bake.targets_of("default"):
        target = bake.target(name)
        assert (repo / target.dockerfile).is_file()
        assert target.platforms and target.tags
        assert "BASE_IMAGE" in target.args and "UV_IMAGE" in target.args


# -- --set --------------------------------------------------------------------------------------
def test_apply_sets_matches_patterns_and_merges_like_bake() -> None:
    target = load().target("b")
    changed, ignored = build.apply_sets(
        target,
        ("*.args.UV_IMAGE=local/uv", "b.platform=linux/arm64", "a.tags=other", "b*.tags=one", "*.tags=two", "*.cache-to=x", "*.bogus=1"),
    )
    assert changed.args["UV_IMAGE"] == "local/uv" and changed.args["KEEP"] == "yes"
    assert changed.platforms == ("linux/arm64",)
    assert changed.tags == ("one", "two")
    assert ignored == ["cache-to", "bogus"]


def test_empty_set_clears_a_list() -> None:
    changed, _ = build.apply_sets(load().target("a"), ("*.tags=",))
    assert changed.tags == ()


def test_malformed_set_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="TARGET.KEY=VALUE"):
        build.apply_sets(load().target("a"), ("tags",))


# -- the fallback plan --------------------------------------------------------------------------
def test_fallback_builds_each_platform_separately_from_the_bake_file() -> None:
    steps, notes = build.fallback_plan(DOCKER, load(), options(ca_bundle=Path("/ca.pem"), network="host"))
    assert [(s.target, s.platform) for s in steps] == [("a", "linux/amd64"), ("b", "linux/amd64"), ("b", "linux/arm64")]
    a = list(steps[0].command)
    assert a[:5] == [DOCKER, "build", "--platform", "linux/amd64", "-f"] and a[5] == "docker/a.Dockerfile"
    assert "--build-arg" in a and "UV_IMAGE=uv:2" in a
    assert a[a.index("-t") + 1] == "app:dev-a"
    assert "id=ca-bundle,src=/ca.pem" in a and a[a.index("--network") + 1] == "host"
    assert a[-1] == "."
    # several platforms: a per-arch tag each, the plain tag becomes the pushed list
    assert steps[1].tags == ("app:dev-b-amd64",) and steps[2].tags == ("app:dev-b-arm64",)
    assert notes == []


def test_fallback_announces_what_needs_buildx() -> None:
    steps, notes = build.fallback_plan(DOCKER, load(), options(targets=("c",), sets=("*.cache-from=y",)))
    assert "--no-cache" in steps[0].command
    assert any("attestations need buildx" in n for n in notes)
    assert any("cache-from needs buildx" in n for n in notes)


def test_fallback_plan_of_the_rendered_release_group(repo: Path) -> None:
    bake = bakefile.load(repo / "docker" / "docker-bake.hcl", env={"REGISTRY": "127.0.0.1:5000/"})
    steps, notes = build.fallback_plan(DOCKER, bake, options(push=True))
    assert {s.target for s in steps} == {f"{n}-release" for n in bake.targets_of("default")}
    assert all(t.startswith("127.0.0.1:5000/") for s in steps for t in s.tags)
    assert any("attestations" in n for n in notes)


def test_bake_command_passes_load_push_and_sets_through() -> None:
    cmd = build.bake_command(DOCKER, Path("docker/docker-bake.hcl"), options(sets=("*.args.X=1",), ca_bundle=Path("/ca.pem")))
    assert cmd[:5] == [DOCKER, "buildx", "bake", "-f", "docker/docker-bake.hcl"]
    assert "--load" in cmd and cmd[-1] == "default"
    assert "*.secrets=id=ca-bundle,src=/ca.pem" in cmd and "*.args.X=1" in cmd
    pushed = build.bake_command(DOCKER, Path("f"), options(push=True))
    assert "--push" in pushed and "--load" not in pushed and pushed[-1] == "release"


def test_loopback_registries_are_insecure_others_not() -> None:
    assert build._is_loopback("127.0.0.1:5000/app:dev")
    assert build._is_loopback("localhost:5000/app:dev")
    assert not build._is_loopback("ghcr.io/team/app:dev")
    assert not build._is_loopback("app:dev")


# -- missing tools and settings -----------------------------------------------------------------
def test_no_docker_is_one_actionable_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(du.shutil, "which", lambda name: None)
    monkeypatch.setattr(du.Path, "exists", lambda self: False)
    with pytest.raises(ToolMissingError, match="docker is not installed"):
        du.docker_cli()


def test_engine_down_is_tool_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(du, "docker_cli", lambda: DOCKER)
    monkeypatch.setattr(du, "engine_running", lambda docker: False)
    with pytest.raises(ToolMissingError, match="engine is not running"):
        build.build(options())


def test_cli_without_docker_exits_3_with_one_line(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], repo: Path) -> None:
    monkeypatch.setattr(du.shutil, "which", lambda name: None)
    monkeypatch.setattr(du.Path, "exists", lambda self: False)
    code = cli.main(["build", "--project", str(repo), "--no-render-check"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 3
    assert err == ["archlock build: error: docker is not installed (fix: install Docker (or run scripts/local-infra.sh on Debian) and retry)"]


def test_ca_bundle_from_flag_env_settings_or_the_system(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from archlock.core import cabundle, settings

    pem = tmp_path / "ca.pem"
    pem.write_text("pem")

    def chosen(cli: str | None, table: dict[str, str], environ: dict[str, str]) -> Path | None:
        values = settings.read({"build": table}, "build", tmp_path, cli={"ca-bundle": cli}, environ=environ)
        return cabundle.resolve(values["ca-bundle"])

    monkeypatch.setattr(cabundle, "system_bundle", lambda: Path("/system.pem"))
    assert chosen(None, {}, {}) == Path("/system.pem")  # one rule with repro: the system bundle
    assert chosen("none", {}, {}) is None
    assert chosen(None, {"ca-bundle": "none"}, {}) is None
    assert chosen(str(pem), {"ca-bundle": "none"}, {}) == pem
    assert chosen(None, {"ca-bundle": str(pem)}, {}) == pem
    assert chosen(None, {"ca-bundle": "none"}, {build.CA_ENV: str(pem)}) == pem
    with pytest.raises(ConfigError, match="not found"):
        chosen(str(tmp_path / "missing.pem"), {}, {})


def test_build_refuses_stale_renders_before_touching_docker(tmp_path: Path, fixtures: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    project = tmp_path / "app"
    shutil.copytree(fixtures / "projects" / "requirements-app", project)
    locks = project / "envs" / "locks"
    locks.mkdir(parents=True)
    for env in ("linux-amd64-cuda", "linux-arm64-cpu"):
        (locks / f"{env}.txt").write_text(f"torch==2.10.0 --hash=sha256:{'0' * 64}\n")
    assert cli.main(["render", "--project", str(project)]) == 0
    (locks / "linux-amd64-cuda.txt").write_text(f"torch==2.10.1 --hash=sha256:{'2' * 64}\n")
    monkeypatch.setattr(du, "docker_cli", lambda: pytest.fail("docker must not be reached"))
    capsys.readouterr()
    assert cli.main(["build", "--project", str(project)]) == 5
    assert "rendered files are stale: docker/linux-amd64-cuda.Dockerfile" in capsys.readouterr().err
