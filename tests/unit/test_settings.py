"""The one settings reader: precedence, unknown keys, wrong types."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from archlock.core import settings
from archlock.core.project import Project
from archlock.errors import ConfigError

WHERE = Path("/p/pyproject.toml")


def test_precedence_cli_over_environment_over_file_over_default() -> None:
    table = {"build": {"network": "bridge"}}
    assert settings.read(table, settings.Build, WHERE, environ={}).network == "bridge"
    env = {"ARCHLOCK_BUILD_NETWORK": "none"}
    from_env = settings.read(table, settings.Build, WHERE, environ=env)
    assert from_env.network == "none"
    assert settings.given(from_env, network="host").network == "host"
    assert settings.given(from_env, network=None).network == "none"  # an option not given
    assert settings.read({}, settings.Build, WHERE, environ={}).network is None


@pytest.mark.parametrize(
    ("table", "section", "expected"),
    [
        (
            {"build": {"netwrok": "host"}},
            settings.Build,
            r"\[tool.archlock.build\] netwrok: unknown key \(fix: did you mean 'network'\?\)",
        ),
        (
            {"build": {"network": 5}},
            settings.Build,
            r"network: must be a string \(fix: write network = \"text\"\)",
        ),
        (
            {"groups": "workload"},
            settings.Top,
            r"\[tool.archlock\] groups: must be a list of strings",
        ),
        (
            {"render": {"runners": {"linux/amd64": 1}}},
            settings.Render,
            r"runners: must be a table of strings",
        ),
        (
            {"render": {"runners": "ubuntu"}},
            settings.Render,
            r"runners: must be a table of strings",
        ),
        (
            {"scan": {"per-path": {"a": "AL101"}}},
            settings.Scan,
            r"per-path: must be a table of string lists",
        ),
        (
            {"ci": {"runners": {"linux-amd64-cuda": "gpu"}}},
            settings.Ci,
            r"\[tool.archlock.ci\] runners: must be a table of string lists; "
            r"runners.linux-amd64-cuda is not a list of strings "
            r"\(fix: write runners = \{ \"linux-amd64-cuda\" = \[\"name\"\] \}\)",
        ),
        (
            {"ci": {"runners": {"macos-arm64": ["self-hosted", 1]}}},
            settings.Ci,
            r"runners.macos-arm64 is not a list",
        ),
    ],
)
def test_bad_values_name_the_file_the_key_and_the_fix(
    table: dict, section: type[settings.Section], expected: str
) -> None:
    with pytest.raises(ConfigError, match=expected) as caught:
        settings.read(table, section, WHERE, environ={})
    assert str(caught.value).startswith(f"{WHERE}: ")


@pytest.mark.parametrize(
    ("pyproject", "expected"),
    [
        ({"tool": 5}, "tool: must be a table"),
        ({"tool": {"archlock": 5}}, "tool.archlock: must be a table"),
    ],
)
def test_the_tables_themselves_must_be_tables(pyproject: dict, expected: str) -> None:
    with pytest.raises(ConfigError, match=expected):
        settings.raw_table(pyproject, WHERE)


def test_sections_must_be_tables_and_known() -> None:
    with pytest.raises(ConfigError, match=r"render: must be a table"):
        settings.check_top_level({"render": "x"}, WHERE)
    with pytest.raises(ConfigError, match=r"rendr: unknown key \(fix: did you mean 'render'\?\)"):
        settings.check_top_level({"rendr": {}}, WHERE)


def test_an_environment_value_of_the_wrong_kind_names_the_variable() -> None:
    env = "ARCHLOCK_BUILD_TIMEOUT"
    assert settings.read({}, settings.Build, WHERE, environ={env: "7"}).timeout == 7
    with pytest.raises(ConfigError, match=r"\$ARCHLOCK_BUILD_TIMEOUT: 'x' is not a whole number"):
        settings.read({}, settings.Build, WHERE, environ={env: "x"})


def test_every_declared_section_has_its_dataclass() -> None:
    assert sorted(kind.SECTION for kind in settings.TYPES) == sorted(settings.SECTIONS)


@pytest.mark.parametrize("kind", settings.TYPES)
def test_each_section_dataclass_holds_exactly_its_declared_keys(
    kind: type[settings.Section],
) -> None:
    declared = [settings.field_name(name) for name in settings.SECTIONS[kind.SECTION]]
    assert [field.name for field in dataclasses.fields(kind)] == declared


def test_values_come_back_typed_and_frozen() -> None:
    table = {"ci": {"runners": {"linux-amd64-cuda": ["self-hosted", "gpu"]}}}
    ci = settings.read(table, settings.Ci, WHERE, environ={})
    assert ci.runners == {"linux-amd64-cuda": ("self-hosted", "gpu")}
    assert ci.registry_password_secret is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        ci.registry_password_secret = "X"  # type: ignore[misc]


def test_a_project_reads_each_section_once_when_first_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "p"\n[tool.archlock.build]\nnetwork = "bridge"\n'
        '[tool.archlock.render]\nuv_image = "x"\n'
    )
    project = Project.load(tmp_path)  # a bad section fails only the verb that reads it
    monkeypatch.delenv("ARCHLOCK_BUILD_NETWORK", raising=False)
    assert project.settings.build.network == "bridge"
    monkeypatch.setenv("ARCHLOCK_BUILD_NETWORK", "host")
    assert project.settings.build is project.settings.build  # read once, shared by every verb
    assert project.settings.build.network == "bridge"
    with pytest.raises(ConfigError, match=r"uv_image: unknown key \(fix: did you mean 'uv-image'"):
        _ = project.settings.render
