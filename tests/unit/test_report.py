"""archlock report: redaction, lock matching, the failing command, the files, and the three ways
it runs (the verb, a plain file on Python 3.8, the self-contained generated script)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from archlock import cli
from archlock.inenv import locate, redact, report

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
_spec = importlib.util.spec_from_file_location("envmaker", FIXTURES / "reports" / "envmaker.py")
em = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(em)  # type: ignore[union-attr]


# -- redaction ----------------------------------------------------------------------------------


def test_home_paths_become_tilde_everywhere_but_not_lookalikes() -> None:
    red = redact.Redactor(["/home/alice"])
    doc = red.value(
        {
            "python": {"executable": "/home/alice/proj/.venv/bin/python"},
            "tail": [
                'File "/home/alice/proj/x.py", line 3',
                "/home/alicex/other",
                "cd /home/alice",
            ],
            "/home/alice/key": ["/home/alice"],
        }
    )
    assert doc == {
        "python": {"executable": "~/proj/.venv/bin/python"},
        "tail": ['File "~/proj/x.py", line 3', "/home/alicex/other", "cd ~"],
        "~/key": ["~"],
    }


def test_a_root_home_is_not_redacted_into_nonsense(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", "/")
    assert redact.home_folders() == []
    assert redact.Redactor().text("/usr/bin/python") == "/usr/bin/python"


def test_secrets_in_argv_output_and_urls() -> None:
    red = redact.Redactor([])
    argv = red.argv(
        ["train.py", "--token", "hf_abc", "--api-key=xyz", "--epochs", "3", "WANDB_API_KEY=k1"]
    )
    assert argv == [
        "train.py",
        "--token",
        "<redacted>",
        "--api-key=<redacted>",
        "--epochs",
        "3",
        "WANDB_API_KEY=<redacted>",
    ]
    line = red.text(
        "AWS_SECRET_ACCESS_KEY=abc123 pulling https://bob:hunter2@example.invalid/x HF_TOKEN=t"
    )
    assert line == (
        "AWS_SECRET_ACCESS_KEY=<redacted> pulling https://<redacted>@example.invalid/x "
        "HF_TOKEN=<redacted>"
    )


# -- which lock ----------------------------------------------------------------------------------


def lock_file(root: Path, env: str, platform: str, accelerator: str, header: bool = True) -> None:
    text = em.lock_text(env, platform, "3.11", accelerator, [("six", "1.16.0", "0" * 64)])
    if not header:
        text = "\n".join(line for line in text.splitlines() if not line.startswith("#")) + "\n"
    (root / "envs" / "locks").mkdir(parents=True, exist_ok=True)
    (root / "envs" / "locks" / f"{env}.txt").write_text(text)


def test_lock_matched_by_platform_then_torch_build(tmp_path: Path) -> None:
    lock_file(tmp_path, "linux-amd64-cuda", "linux-amd64", "cuda")
    lock_file(tmp_path, "linux-amd64-cpu", "linux-amd64", "cpu")
    lock_file(tmp_path, "linux-arm64-cpu", "linux-arm64", "cpu")
    cpu = locate.lock_record(str(tmp_path), None, "linux-amd64", "cpu")
    assert (cpu["env"], cpu["matched_by"]) == ("linux-amd64-cpu", "platform and torch build")
    assert cpu["path"] == "envs/locks/linux-amd64-cpu.txt"
    assert cpu["sha256"] == locate.file_sha256(
        str(tmp_path / "envs" / "locks" / "linux-amd64-cpu.txt")
    )
    unknown = locate.lock_record(str(tmp_path), None, "linux-amd64", None)
    assert (unknown["env"], unknown["matched_by"]) == ("linux-amd64-cpu", "platform")
    named = locate.lock_record(str(tmp_path), "linux-arm64-cpu", "linux-amd64", "cpu")
    assert (named["env"], named["matched_by"]) == ("linux-arm64-cpu", "--env")


def test_lock_platform_from_the_spec_when_the_header_is_gone(tmp_path: Path) -> None:
    lock_file(tmp_path, "gpu", "linux-amd64", "cuda", header=False)
    (tmp_path / "envs" / "gpu.yaml").write_text(
        'platform: linux-amd64\npython: "3.12"\naccelerator: cuda\n'
    )
    record = locate.lock_record(str(tmp_path), None, "linux-amd64", None)
    assert (record["env"], record["python"], record["accelerator"]) == ("gpu", "3.12", "cuda")


def test_lock_problems_are_said_not_raised(tmp_path: Path) -> None:
    lock_file(tmp_path, "linux-amd64-cuda", "linux-amd64", "cuda")
    assert (
        "does not exist"
        in locate.lock_record(str(tmp_path), "nope", "linux-amd64", None)["problem"]
    )
    assert (
        "no lock in envs/locks/ targets macos-arm64"
        in locate.lock_record(str(tmp_path), None, "macos-arm64", None)["problem"]
    )
    assert "no project folder" in locate.lock_record(None, None, "linux-amd64", None)["problem"]


def test_intended_platform_is_the_hardware_on_macos_and_the_interpreter_on_linux() -> None:
    rosetta = {
        "os": {"name": "macos"},
        "emulation": {"host_arch": "arm64"},
        "python": {"arch": "x86_64"},
    }
    qemu = {
        "os": {"name": "linux"},
        "emulation": {"host_arch": "x86_64"},
        "python": {"arch": "arm64"},
    }
    assert locate.intended_platform(rosetta) == "macos-arm64"
    assert locate.intended_platform(qemu) == "linux-arm64"


def test_torch_build_from_facts_or_version_label() -> None:
    assert locate.torch_build({"torch": {"importable": True, "cuda": "12.8"}}) == "cuda"
    assert locate.torch_build({"torch": {"importable": True, "mps_built": True}}) == "mps"
    broken = {
        "torch": {"importable": False},
        "distributions": [{"name": "torch", "version": "2.13.0+cpu"}],
    }
    assert locate.torch_build(broken) == "cpu"
    broken["distributions"][0]["version"] = "2.10.0+cu128"
    assert locate.torch_build(broken) == "cuda"


# -- the failing command -------------------------------------------------------------------------


# -- the files -----------------------------------------------------------------------------------


def recorded() -> dict:
    return json.loads((FIXTURES / "reports" / "linux-amd64-venv.json").read_text())


def test_markdown_is_short_and_paste_able() -> None:
    doc = recorded()
    doc["command"]["output_tail"].append("a ``` fence inside the output")
    text = report.markdown(doc, "r.json")
    assert text.startswith("### archlock report: linux-amd64, Python 3.11.7")
    assert "- **Lock**: env `linux-amd64-cpu`, `envs/locks/linux-amd64-cpu.txt` sha256" in text
    assert (
        "- **Command**: `python -c 'import json, tinydep; json.loads('\"'\"'{'\"'\"')'` -> exit 1"
        in text
    )
    assert "````text" in text and text.count("````") == 2  # a fence longer than any in the output
    assert text.rstrip().endswith(
        "Diagnose: `archlock repro r.json` (or `nox -s repro -- r.json`)."
    )
    assert len(text.splitlines()) < 45


def test_writes_are_atomic(tmp_path: Path) -> None:
    target = tmp_path / "r.json"
    target.write_text("old")
    report.write_atomic(str(target), "new")
    assert target.read_text() == "new" and [p.name for p in tmp_path.iterdir()] == ["r.json"]


# -- how it runs ---------------------------------------------------------------------------------


def test_generated_script_check_and_overwrite_rules(tmp_path: Path) -> None:
    bundle = tmp_path / "r.py"
    assert cli.main(["report", "--write-script", str(bundle)]) == 0
    assert cli.main(["report", "--write-script", str(bundle), "--check"]) == 0
    bundle.write_text(bundle.read_text() + "# edited\n")
    assert cli.main(["report", "--write-script", str(bundle), "--check"]) == 5
    mine = tmp_path / "mine.py"
    mine.write_text("print('not generated')\n")
    assert cli.main(["report", "--write-script", str(mine)]) == 2
    assert mine.read_text() == "print('not generated')\n"


def test_the_verb_in_process_and_a_missing_interpreter(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("VIRTUAL_ENV", raising=False)
    monkeypatch.chdir(tmp_path)
    assert cli.main(["--project", str(tmp_path), "report", "--no-torch", "--no-scan"]) == 0
    assert json.loads((tmp_path / "archlock-report.json").read_text())["tool"]["mode"] == "archlock"
    assert cli.main(["report", "--python", str(tmp_path / "nope" / "python")]) == 2


def test_output_problem_refuses_folders_and_device_nodes(tmp_path: Path) -> None:
    """Checked before any work: a rename onto /dev/null would replace the device itself."""
    assert "is a folder" in (report.output_problem(str(tmp_path)) or "")
    assert "not a regular file" in (report.output_problem("/dev/null") or "")
    assert report.output_problem(str(tmp_path / "new" / "report.json")) is None


def test_an_output_folder_that_refuses_files_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """/proc passes the up-front check (a folder root may write in), then refuses the file."""
    monkeypatch.delenv("VIRTUAL_ENV", raising=False)
    monkeypatch.chdir(tmp_path)
    argv = ["--project", str(tmp_path), "report", "--no-torch", "--no-scan", "-o", "/proc/x/r.json"]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("archlock report: error: --output /proc/x/r.json: cannot write /proc/x")
    assert err.endswith("give --output a writable path") and "\n" not in err


def test_when_the_markdown_cannot_be_written_no_json_is_left(tmp_path: Path) -> None:
    (tmp_path / "r.md").mkdir()  # renaming onto a folder fails after the JSON is in place
    problem = report.write_both(str(tmp_path / "r.json"), "{}", str(tmp_path / "r.md"), "# r")
    assert problem is not None and "cannot write" in problem
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.md"]
