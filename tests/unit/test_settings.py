"""The one settings reader: precedence, unknown keys, wrong types."""

from __future__ import annotations

from pathlib import Path

import pytest

from archlock.core import settings
from archlock.errors import ConfigError

WHERE = Path("/p/pyproject.toml")


def test_precedence_cli_over_environment_over_file_over_default() -> None:
    table = {"build": {"network": "bridge"}}
    assert settings.read(table, "build", WHERE, environ={})["network"] == "bridge"
    env = {"ARCHLOCK_BUILD_NETWORK": "none"}
    assert settings.read(table, "build", WHERE, environ=env)["network"] == "none"
    assert settings.read(table, "build", WHERE, cli={"network": "host"}, environ=env)["network"] == "host"
    assert settings.read({}, "build", WHERE, environ={})["network"] is None


@pytest.mark.parametrize(
    ("table", "section", "expected"),
    [
        ({"build": {"netwrok": "host"}}, "build", r"\[tool.archlock.build\] netwrok: unknown key \(fix: did you mean 'network'\?\)"),
        ({"build": {"network": 5}}, "build", r"network: must be a string \(fix: write network = \"text\"\)"),
        ({"groups": "workload"}, "", r"\[tool.archlock\] groups: must be a list of strings"),
        ({"render": {"runners": {"linux/amd64": 1}}}, "render", r"runners: must be a table of strings"),
        ({"render": {"runners": "ubuntu"}}, "render", r"runners: must be a table of strings"),
        ({"scan": {"per-path": {"a": "AL101"}}}, "scan", r"per-path: must be a table of string lists"),
        (
            {"ci": {"runners": {"linux-amd64-cuda": "gpu"}}},
            "ci",
            r"\[tool.archlock.ci\] runners: must be a table of string lists; "
            r"runners.linux-amd64-cuda is not a list of strings "
            r"\(fix: write runners = \{ \"linux-amd64-cuda\" = \[\"name\"\] \}\)",
        ),
        (
            {"ci": {"runners": {"macos-arm64": ["self-hosted", 1]}}},
            "ci",
            r"runners.macos-arm64 is not a list",
        ),
    ],
)
def test_bad_values_name_the_file_the_key_and_the_fix(table: dict, section: str, expected: str) -> None:
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
    key = settings.Key("n", "int", 1, "a count", env="ARCHLOCK_TEST_N")
    settings.SECTIONS["test-only"] = {"n": key}
    try:
        assert settings.read({}, "test-only", WHERE, environ={"ARCHLOCK_TEST_N": "7"})["n"] == 7
        with pytest.raises(ConfigError, match=r"\$ARCHLOCK_TEST_N: 'x' is not a whole number"):
            settings.read({}, "test-only", WHERE, environ={"ARCHLOCK_TEST_N": "x"})
    finally:
        del settings.SECTIONS["test-only"]
