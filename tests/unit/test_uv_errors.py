"""uv's failures as the user sees them: uv's lines kept readable, its hints about settings
archlock wrote dropped, the file to edit named. Each message is checked against uv's own text
for its cause (recorded from uv 0.13)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from archlock.core.project import Project
from archlock.core.uvtool import classify_failure
from archlock.errors import ExternalCommandError, ResolveError, exit_code_of
from archlock.lock import resolve

# `uv lock` of a requirements.txt stand-in (envs at Python 3.11) needing django==6.0
NEEDS_NEWER_PYTHON = """\
Using CPython 3.11.7 interpreter at: /usr/bin/python3
error: No solution found when resolving dependencies for split (markers: python_full_version == '3.11.*' and platform_machine == 'arm64' and sys_platform == 'darwin')
  cause: Because the requested Python version (>=3.11) does not satisfy Python>=3.12 and django==6.0 depends on Python>=3.12, we can conclude that django==6.0 cannot be used.
         And because your project depends on django==6.0, we can conclude that your project's requirements are unsatisfiable.

hint: The resolution failed for an environment that is not the current one, consider limiting the environments with `tool.uv.environments`.

hint: The `requires-python` value (>=3.11) includes Python versions that are not supported by your dependencies (e.g., django==6.0 only supports >=3.12). Consider using a more restrictive `requires-python` value (like >=3.12).
"""  # noqa: E501
NO_SUCH_VERSION = """\
error: No solution found when resolving dependencies for split (markers: platform_machine == 'arm64' and sys_platform == 'darwin')
  cause: Because there is no version of six==999 and your project depends on six==999, we can conclude that your project's requirements are unsatisfiable.

hint: The resolution failed for an environment that is not the current one, consider limiting the environments with `tool.uv.environments`.
"""  # noqa: E501

# `uv lock` where PyPI's certificate is signed by a proxy's CA that uv does not trust
UNTRUSTED_PROXY = """\
error: Failed to fetch: `https://pypi.org/simple/six/`
  cause: error sending request for url (https://pypi.org/simple/six/)
  cause: client error (Connect)
  cause: invalid peer certificate: UnknownIssuer
"""


@pytest.fixture
def req_project(tmp_path: Path, fixtures: Path) -> Project:
    shutil.copytree(fixtures / "projects" / "requirements-app", tmp_path / "r")
    return Project.load(tmp_path / "r")


@pytest.fixture
def py_project(tmp_path: Path, fixtures: Path) -> Project:
    shutil.copytree(fixtures / "projects" / "pyproject-app", tmp_path / "p")
    return Project.load(tmp_path / "p")


def test_uvs_lines_stay_lines_without_its_chatter() -> None:
    exc = classify_failure(NEEDS_NEWER_PYTHON, "uv lock (/p)")
    assert isinstance(exc, ResolveError) and exc.message == "uv lock (/p): no solution"
    assert exc.detail[0].startswith("error: No solution found")
    assert exc.detail[2] == (
        "         And because your project depends on django==6.0, we can conclude that your "
        "project's requirements are unsatisfiable."
    )
    assert not any(line.startswith("Using ") for line in exc.detail)
    other = classify_failure("error: Failed to build `x`\n  cause: boom\n", "uv export")
    assert isinstance(other, ExternalCommandError)
    assert other.detail == ("error: Failed to build `x`", "  cause: boom")


def test_a_python_floor_names_requirements_and_the_env_python_not_requires_python(
    req_project: Project,
) -> None:
    raw = classify_failure(NEEDS_NEWER_PYTHON, "uv lock")
    assert isinstance(raw, ResolveError)
    exc = resolve.for_the_user(raw, req_project, None)
    assert exc.fix == (
        f"edit {req_project.root}/requirements.txt, or raise `python:` in envs/*.yaml to a "
        "Python the requirement supports; uv's reasons follow"
    )
    text = "\n".join(exc.detail)
    assert "django==6.0 depends on Python>=3.12" in text  # the cause stays
    assert "hint:" not in text  # both hints name settings archlock wrote


def test_a_missing_version_names_the_file_and_drops_the_environments_hint(
    req_project: Project, py_project: Project
) -> None:
    raw = classify_failure(NO_SUCH_VERSION, "uv lock")
    assert isinstance(raw, ResolveError)
    exc = resolve.for_the_user(raw, req_project, None)
    assert exc.fix == f"edit {req_project.root}/requirements.txt; uv's reasons follow"
    assert [line for line in exc.detail if "hint" in line] == []
    mine = resolve.for_the_user(raw, py_project, None)
    assert mine.fix == f"edit {py_project.root}/pyproject.toml; uv's reasons follow"


def test_a_pyproject_keeps_uvs_requires_python_hint_its_user_wrote_it(
    py_project: Project,
) -> None:
    raw = classify_failure(NEEDS_NEWER_PYTHON, "uv lock")
    assert isinstance(raw, ResolveError)
    exc = resolve.for_the_user(raw, py_project, None)
    hints = [line for line in exc.detail if line.startswith("hint:")]
    assert len(hints) == 1 and "requires-python" in hints[0]


def test_an_env_lock_names_the_env_spec(req_project: Project) -> None:
    env = req_project.envs(["linux-arm64-cpu"])[0]
    raw = classify_failure(NEEDS_NEWER_PYTHON, f"{env.path}: locking env {env.name}")
    assert isinstance(raw, ResolveError)
    exc = resolve.explain_resolve_failure(raw, env, None, None, req_project)
    assert isinstance(exc, ResolveError)
    assert exc.fix and f"raise `python:` in {env.path}" in exc.fix


def test_the_cli_prints_the_line_then_uvs_lines_indented(
    req_project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    raw = classify_failure(NO_SUCH_VERSION, "uv lock (/r)")
    assert isinstance(raw, ResolveError)
    exc = resolve.for_the_user(raw, req_project, None)

    def fail() -> int:
        raise exc

    assert exit_code_of("lock", fail) == 4
    err = capsys.readouterr().err.splitlines()
    assert err[0] == (
        "archlock lock: error: uv lock (/r): no solution "
        f"(fix: edit {req_project.root}/requirements.txt; uv's reasons follow)"
    )
    assert err[1].startswith("  error: No solution found") and len(err) == 3
    assert err[2].startswith("    cause: Because there is no version of six==999")


def test_an_unreachable_index_is_not_blamed_on_a_file(req_project: Project) -> None:
    raw = classify_failure(UNTRUSTED_PROXY, "uv lock (/r)")
    assert isinstance(raw, ResolveError) and raw.message == "uv lock (/r): an index is unreachable"
    exc = resolve.for_the_user(raw, req_project, None)
    assert exc.fix and exc.fix.startswith("make the index reachable") and "edit" not in exc.fix
    assert exc.detail[-1] == "  cause: invalid peer certificate: UnknownIssuer"
