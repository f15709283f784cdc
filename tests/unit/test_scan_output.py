"""Report formats (text, JSON, SARIF 2.1.0) and the `archlock scan` command line."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from archlock.cli import main
from archlock.scan.engine import scan_path
from archlock.scan.output import render_json, render_rules, render_sarif, render_text
from archlock.scan.rules import RULES

SARIF_LEVELS = {"none", "note", "warning", "error"}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    files = {
        "train.py": """\
            import torch
            model = Model().cuda()
            model = torch.compile(model)
        """,
        "pkg/util.py": "x = 1\n",
        "pkg/dist.py": """\
            import torch.distributed as dist
            dist.init_process_group("nccl")
        """,
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(textwrap.dedent(text), encoding="utf-8")
    return tmp_path


# formats


def test_text_groups_findings_per_file_with_a_fix_line(project: Path) -> None:
    text = render_text(scan_path(project, project))
    blocks = text.split("\n\n")
    assert blocks[0].splitlines() == [
        "pkg/dist.py:2:25 AL103 `init_process_group` gets the literal backend 'nccl', "
        "which needs CUDA [error]",
        f"    fix: {RULES[6].fix}",
    ]
    assert blocks[1].splitlines()[0] == (
        "train.py:2:9 AL101 `Model().cuda()` hard-codes the CUDA device [error]"
    )
    assert blocks[1].splitlines()[2].startswith("train.py:3:9 AL105 ")
    assert blocks[-1] == "3 findings (2 errors, 1 warning) in 2 of 3 files\n"


def test_text_for_a_clean_project(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("x = 1\n", encoding="utf-8")
    assert render_text(scan_path(tmp_path, tmp_path)) == "no findings in 1 file scanned\n"


def test_json_report(project: Path) -> None:
    document = json.loads(render_json(scan_path(project, project)))
    assert document["format"] == "archlock-scan" and document["version"] == 1
    assert document["files_scanned"] == 3
    assert document["summary"] == {"error": 2, "warning": 1, "note": 0}
    assert document["findings"][0] == {
        "path": "pkg/dist.py",
        "line": 2,
        "col": 25,
        "rule": "AL103",
        "name": "literal-nccl-backend",
        "severity": "error",
        "message": "`init_process_group` gets the literal backend 'nccl', which needs CUDA",
        "fix": RULES[6].fix,
    }


def _require(obj: dict, *keys: str) -> None:
    missing = [key for key in keys if key not in obj]
    assert not missing, f"SARIF object lacks required {missing}: {obj}"


def assert_valid_sarif(log: dict) -> None:
    """The SARIF 2.1.0 requirements code-scanning services rely on (checked offline)."""
    _require(log, "version", "runs")
    assert log["version"] == "2.1.0" and isinstance(log["runs"], list)
    for run in log["runs"]:
        _require(run, "tool")
        _require(run["tool"], "driver")
        driver = run["tool"]["driver"]
        _require(driver, "name", "rules")
        rules = driver["rules"]
        for rule in rules:
            _require(rule, "id", "shortDescription", "help")
            _require(rule["shortDescription"], "text")
            _require(rule["help"], "text")
            assert rule["defaultConfiguration"]["level"] in SARIF_LEVELS
        for result in run["results"]:
            _require(result, "ruleId", "level", "message", "locations")
            _require(result["message"], "text")
            assert result["level"] in SARIF_LEVELS
            assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
            physical = result["locations"][0]["physicalLocation"]
            uri = physical["artifactLocation"]["uri"]
            assert uri and not uri.startswith("/") and ":" not in uri  # relative to the scan root
            region = physical["region"]
            assert region["startLine"] >= 1 and region["startColumn"] >= 1


def test_sarif_is_structurally_valid_2_1_0(project: Path) -> None:
    log = json.loads(render_sarif(scan_path(project, project)))
    assert_valid_sarif(log)
    run = log["runs"][0]
    assert [rule["id"] for rule in run["tool"]["driver"]["rules"]] == [r.id for r in RULES]
    first = run["results"][0]
    assert first["ruleId"] == "AL103" and first["level"] == "error"
    location = first["locations"][0]["physicalLocation"]
    assert location["artifactLocation"]["uri"] == "pkg/dist.py"
    assert location["region"] == {"startLine": 2, "startColumn": 25}


def test_sarif_uri_is_percent_encoded(tmp_path: Path) -> None:
    (tmp_path / "my script.py").write_text("m = M().cuda()\n", encoding="utf-8")
    log = json.loads(render_sarif(scan_path(tmp_path, tmp_path)))
    assert_valid_sarif(log)
    uri = log["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]
    assert uri["uri"] == "my%20script.py"


def test_rule_list_names_every_rule() -> None:
    text = render_rules()
    for rule in RULES:
        entry = f"{rule.id}  {rule.severity:<7}  {rule.name}\n    {rule.doc}\n    fix: {rule.fix}"
        assert entry in text


# command line (through archlock.cli.main, as a user runs it)


def test_cli_clean_project_exits_zero(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "a.py").write_text("x = 1\n", encoding="utf-8")
    assert main(["--project", str(tmp_path), "scan"]) == 0
    assert capsys.readouterr().out == "no findings in 1 file scanned\n"


def test_cli_findings_exit_6_after_printing_the_report(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--project", str(project), "scan"]) == 6
    out, err = capsys.readouterr()
    assert "train.py:2:9 AL101" in out
    assert err.startswith("archlock scan: error: 3 findings at or above warning (fix: ")


@pytest.mark.parametrize(("fail_on", "code"), [("error", 6), ("never", 0)])
def test_cli_fail_on(project: Path, fail_on: str, code: int) -> None:
    assert main(["scan", str(project), "--project", str(project), "--fail-on", fail_on]) == code


def test_cli_fail_on_error_passes_warnings(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("import torch\nm = torch.compile(m)\n", encoding="utf-8")
    assert main(["--project", str(tmp_path), "scan", "--fail-on", "error"]) == 0
    assert main(["--project", str(tmp_path), "scan"]) == 6


def test_cli_fail_on_default_comes_from_config(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("import torch\nm = torch.compile(m)\n", encoding="utf-8")
    config = '[tool.archlock.scan]\nfail-on = "error"\n'
    (tmp_path / "pyproject.toml").write_text(config, encoding="utf-8")
    assert main(["--project", str(tmp_path), "scan"]) == 0
    assert main(["--project", str(tmp_path), "scan", "--fail-on", "warning"]) == 6


def test_cli_output_writes_sarif_file(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_file = tmp_path / "reports" / "scan.sarif"
    argv = ["--project", str(project), "scan", "--format", "sarif", "--output", str(out_file)]
    assert main([*argv, "--fail-on", "never"]) == 0
    assert_valid_sarif(json.loads(out_file.read_text(encoding="utf-8")))
    summary = "3 findings (2 errors, 1 warning) in 2 of 3 files"
    assert capsys.readouterr().out == f"wrote {out_file}: {summary}\n"
    assert [p.name for p in out_file.parent.iterdir()] == ["scan.sarif"]  # no temp file left


def test_cli_json_to_stdout_is_pure_json(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main(["--project", str(project), "scan", "--format", "json"])
    assert json.loads(capsys.readouterr().out)["summary"]["error"] == 2


def test_cli_list_rules(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scan", "--list-rules"]) == 0
    assert capsys.readouterr().out == render_rules()


def test_cli_config_mistake_is_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = '[tool.archlock.scan]\nexlude = ["x"]\n'
    (tmp_path / "pyproject.toml").write_text(config, encoding="utf-8")
    assert main(["--project", str(tmp_path), "scan"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pyproject.toml: [tool.archlock.scan] exlude: unknown key" in err
    assert "did you mean 'exclude'?" in err


def test_cli_missing_path_is_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--project", str(tmp_path), "scan", str(tmp_path / "nope")]) == 2
    assert "no such file or folder to scan" in capsys.readouterr().err
