"""The scan engine: file discovery, parse failures, suppressions and `[tool.archlock.scan]`."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from archlock.errors import ConfigError
from archlock.scan import config as scan_config
from archlock.scan.config import ScanConfig
from archlock.scan.engine import scan_path, scan_source
from archlock.scan.output import summary_line

CUDA_LINE = "import torch\nmodel = Model().cuda()\n"


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    return root


def rules(source: str, config: ScanConfig | None = None) -> list[tuple[str, int]]:
    return [(f.rule_id, f.line) for f in scan_source(textwrap.dedent(source), "m.py", config)]


# parse failures


def test_syntax_error_is_a_finding_not_a_traceback() -> None:
    (finding,) = scan_source("import torch\nprint 'hi'\n", "old.py")
    assert (finding.rule_id, finding.line, finding.path) == ("AL001", 2, "old.py")
    assert "cannot parse" in finding.message


def test_pathologically_nested_file_is_a_finding() -> None:
    source = "x = " + " + ".join(["'a'"] * 5000) + "\n"
    (finding,) = scan_source(source, "generated.py")
    assert finding.rule_id == "AL001"


def test_nul_bytes_are_a_finding() -> None:
    (finding,) = scan_source("x = 1\0\n", "bin.py")
    assert (finding.rule_id, finding.line) == ("AL001", 1)


def test_undecodable_file_is_a_finding(tmp_path: Path) -> None:
    (tmp_path / "latin.py").write_bytes(b"name = '\xe9t\xe9'\n")
    result = scan_path(tmp_path, tmp_path)
    assert [(f.rule_id, f.path) for f in result.findings] == [("AL001", "latin.py")]


def _deny(monkeypatch: pytest.MonkeyPatch, locked: Path) -> None:
    """What the kernel answers for a folder without read and search permission (root is never
    refused, so the unit test stands in for it): stat of anything inside it and listing it fail."""
    import os

    real_stat, real_scandir = os.stat, os.scandir

    def stat(path: object, *args: object, **kwargs: object) -> os.stat_result:
        if Path(str(path)).parent == locked:
            raise PermissionError(13, "Permission denied", str(path))
        return real_stat(path, *args, **kwargs)  # type: ignore[arg-type]

    def scandir(path: object = ".") -> object:
        if Path(str(path)) == locked:
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)  # type: ignore[call-overload]

    monkeypatch.setattr(os, "stat", stat)
    monkeypatch.setattr(os, "scandir", scandir)


def test_a_folder_that_cannot_be_read_is_a_finding_not_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path, {"ok.py": CUDA_LINE, "locked/hidden.py": CUDA_LINE})
    _deny(monkeypatch, tmp_path / "locked")
    result = scan_path(tmp_path, tmp_path)
    assert result.files == ("ok.py",)
    unlisted = [f for f in result.findings if f.rule_id == "AL001"]
    assert [(f.path, f.message) for f in unlisted] == [
        ("locked", "folder not scanned: Permission denied")
    ]
    # the summary counts the unlisted folder as a folder, not as one of the scanned files
    assert summary_line(result).endswith("in 1 of 1 files and 1 folder not scanned")


def test_encoding_cookie_is_honoured(tmp_path: Path) -> None:
    source = "# -*- coding: latin-1 -*-\nname = '\xe9t\xe9'; m = Model().cuda()\n"
    (tmp_path / "latin.py").write_bytes(source.encode("latin-1"))
    result = scan_path(tmp_path, tmp_path)
    assert [(f.rule_id, f.line, f.col) for f in result.findings] == [("AL101", 2, 19)]


# suppressions


def test_suppression_with_reason_silences_its_rule_on_its_line() -> None:
    source = "import torch\nm = Model().cuda()  # archlock: ignore[AL101] cluster-only job\n"
    assert rules(source) == []


def test_suppression_names_several_rules() -> None:
    source = """
        import torch
        m = torch.compile(Model().cuda())  # archlock: ignore[AL101, AL105] benchmark on H100 only
    """
    assert rules(source) == []


def test_suppression_only_covers_its_own_line() -> None:
    source = "import torch\n# archlock: ignore[AL101] wrong line\nm = Model().cuda()\n"
    assert rules(source) == [("AL004", 2), ("AL101", 3)]


def test_suppression_without_reason_is_reported_and_suppresses_nothing() -> None:
    found = scan_source("import torch\nm = Model().cuda()  # archlock: ignore[AL101]\n", "m.py")
    assert [(f.rule_id, f.line) for f in found] == [("AL101", 2), ("AL002", 2)]
    assert "gives no reason" in found[1].message


@pytest.mark.parametrize("comment", ["# archlock: ignore", "# archlock: ignore[] some reason"])
def test_suppression_without_rules_is_reported(comment: str) -> None:
    found = scan_source(f"import torch\nm = Model().cuda()  {comment}\n", "m.py")
    assert [f.rule_id for f in found] == ["AL101", "AL002"]
    assert "names no rule" in found[1].message


def test_punctuation_alone_is_not_a_reason() -> None:
    found = rules("m = Model().cuda()  # archlock: ignore[AL101] -\n")
    assert found == [("AL101", 1), ("AL002", 1)]


def test_unknown_rule_in_suppression_suggests_the_closest() -> None:
    found = scan_source("m = Model().cuda()  # archlock: ignore[AL1O1] typo\n", "m.py")
    assert [f.rule_id for f in found] == ["AL101", "AL003"]
    assert "did you mean AL101?" in found[1].message


def test_unused_suppression_is_a_note() -> None:
    found = scan_source("x = 1  # archlock: ignore[AL105] stale\n", "m.py")
    assert [(f.rule_id, f.severity) for f in found] == [("AL004", "note")]


def test_suppression_text_inside_a_string_is_not_a_suppression() -> None:
    assert rules("m = Model().cuda(); s = '# archlock: ignore[AL101] no'\n") == [("AL101", 1)]


@pytest.mark.parametrize(
    ("path", "reported"),
    [
        ("pkg/paths.py", ["AL107"]),
        ("tests/unit/test_paths.py", []),
        ("test/helpers.py", []),
        ("pkg/paths_test.py", []),
        ("conftest.py", []),
        ("pkg/testing.py", ["AL107"]),
    ],
)
def test_arch_paths_are_a_library_code_rule(path: str, reported: list[str]) -> None:
    found = scan_source("BREW = '/opt/homebrew/bin/brew'\n", path)
    assert [f.rule_id for f in found] == reported


def test_suppressing_a_rule_that_does_not_apply_to_the_file_is_not_unused() -> None:
    source = "BREW = '/opt/homebrew/bin/brew'  # archlock: ignore[AL107] a fake Mac\n"
    assert scan_source(source, "tests/test_mac.py") == []


# config


def test_config_disables_rules_everywhere_and_per_path() -> None:
    config = scan_config.from_table(
        {"disable": ["AL105"], "per-path": {"tests/*": ["AL101"]}}, "pyproject.toml"
    )
    assert not config.enabled("AL105", "src/a.py")
    assert not config.enabled("AL101", "tests/unit/test_a.py")
    assert config.enabled("AL101", "src/a.py")


def test_disabled_rule_is_not_reported_and_its_suppressions_are_not_unused() -> None:
    config = ScanConfig(disable=frozenset({"AL101"}))
    assert rules("m = Model().cuda()  # archlock: ignore[AL101] fine\n", config) == []


def test_exclude_glob_covers_folders() -> None:
    config = scan_config.from_table({"exclude": ["tests/fixtures"]}, "pyproject.toml")
    assert config.excluded("tests/fixtures/scan/gpu_research/train.py")
    assert not config.excluded("tests/unit/test_scan_rules.py")


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        (
            {"disabel": ["AL105"]},
            "[tool.archlock.scan] disabel: unknown key (fix: did you mean 'disable'?)",
        ),
        ({"per_path": {}}, "did you mean 'per-path'?"),
        ({"disable": ["AL150"]}, "disable names unknown rule 'AL150'"),
        ({"disable": "AL105"}, "disable: must be a list of strings"),
        ({"per-path": {"tests/*": ["AL11"]}}, "per-path 'tests/*' names unknown rule 'AL11'"),
        ({"per-path": ["tests/*"]}, "per-path: must be a table of string lists"),
        ({"fail-on": "warn"}, "fail-on is 'warn' (fix: did you mean 'warning'?)"),
    ],
)
def test_config_mistakes_are_one_line_config_errors(table: dict, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        scan_config.from_table(table, "proj/pyproject.toml")
    line = info.value.line()
    assert line.startswith("proj/pyproject.toml: ") and expected in line and "\n" not in line


def test_config_is_read_from_the_projects_pyproject(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "pyproject.toml": '[tool.archlock.scan]\nper-path = { "scripts/*" = ["AL101"] }\n',
            "scripts/run.py": CUDA_LINE,
            "pkg/core.py": CUDA_LINE,
        },
    )
    result = scan_path(tmp_path, tmp_path)
    assert [f.path for f in result.findings] == ["pkg/core.py"]


def test_invalid_toml_is_a_config_error(tmp_path: Path) -> None:
    write(tmp_path, {"pyproject.toml": "[tool.archlock.scan\n"})
    with pytest.raises(ConfigError, match="not valid TOML"):
        scan_path(tmp_path, tmp_path)


def test_pyproject_without_scan_table_means_defaults(tmp_path: Path) -> None:
    write(tmp_path, {"pyproject.toml": "[tool.archlock]\ngroups = ['workload']\n"})
    assert scan_config.load(tmp_path / "pyproject.toml") == ScanConfig()


# discovery and paths


def test_discovery_skips_tool_and_hidden_folders(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "pkg/model.py": CUDA_LINE,
            ".venv/lib/site.py": CUDA_LINE,
            ".nox/tests/x.py": CUDA_LINE,
            "build/lib/pkg/model.py": CUDA_LINE,
            "dist/x.py": CUDA_LINE,
            "pkg/__pycache__/x.py": CUDA_LINE,
            "pkg.egg-info/x.py": CUDA_LINE,
            "venv/pyvenv.cfg": "home = /usr/bin\n",
            "venv/lib/x.py": CUDA_LINE,
            "notes.txt": CUDA_LINE,
        },
    )
    result = scan_path(tmp_path, tmp_path)
    assert result.files == ("pkg/model.py",)


def test_exclude_skips_paths_unless_named_explicitly(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "pyproject.toml": '[tool.archlock.scan]\nexclude = ["tests/fixtures"]\n',
            "tests/fixtures/demo/train.py": CUDA_LINE,
            "tests/test_a.py": "x = 1\n",
        },
    )
    assert scan_path(tmp_path, tmp_path).files == ("tests/test_a.py",)
    named = scan_path(tmp_path / "tests/fixtures/demo", tmp_path)
    assert named.files == ("tests/fixtures/demo/train.py",)


def test_paths_are_relative_to_the_project_when_inside_it(tmp_path: Path) -> None:
    write(tmp_path, {"src/pkg/a.py": CUDA_LINE})
    result = scan_path(tmp_path / "src", tmp_path)
    assert result.base == tmp_path.resolve()
    assert [f.path for f in result.findings] == ["src/pkg/a.py"]


def test_target_outside_the_project_is_its_own_base(tmp_path: Path) -> None:
    other = write(tmp_path / "other", {"a.py": CUDA_LINE})
    result = scan_path(other / "a.py", tmp_path / "project")
    assert (result.base, result.files) == (other.resolve(), ("a.py",))


def test_missing_target_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file or folder"):
        scan_path(tmp_path / "nope", tmp_path)


def test_non_python_file_is_a_config_error(tmp_path: Path) -> None:
    write(tmp_path, {"README.md": "# hi\n"})
    with pytest.raises(ConfigError, match="not a Python file"):
        scan_path(tmp_path / "README.md", tmp_path)


def test_a_target_that_is_neither_folder_nor_file_is_a_config_error(tmp_path: Path) -> None:
    """/dev/null exists but is not a folder: one config error, not an AL001 finding whose fix
    says to repair a syntax error (the fuzz suite's input `scan /dev/null --output -5`)."""
    with pytest.raises(ConfigError, match="/dev/null: not a folder or a regular file"):
        scan_path(Path("/dev/null"), tmp_path)


def test_at_or_above_respects_severity_order(tmp_path: Path) -> None:
    source = "import torch\nm = torch.compile(m)\nx = 1  # archlock: ignore[AL101] x\n"
    write(tmp_path, {"a.py": source})
    result = scan_path(tmp_path, tmp_path)
    assert [f.rule_id for f in result.at_or_above("note")] == ["AL105", "AL004"]
    assert [f.rule_id for f in result.at_or_above("warning")] == ["AL105"]
    assert result.at_or_above("error") == [] and result.at_or_above("never") == []
