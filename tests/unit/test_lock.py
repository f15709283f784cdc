"""Lock logic that needs no network: stamps, derivation, mirrors, floors, torch agreement."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from archlock.core import commit, lockfile
from archlock.core.project import Index, Project
from archlock.core.spec import load_spec
from archlock.errors import ConfigError, DriftError, ResolveError
from archlock.lock import resolve as lock

PYLOCK = """\
lock-version = "1.0"
created-by = "uv"
requires-python = ">=3.11"

[[packages]]
name = "torch"
version = "2.13.0+cpu"
wheels = [{ url = "file:///mirror/wheels/\
torch-2.13.0%2Bcpu-cp311-cp311-manylinux_2_28_x86_64.whl", hashes = { sha256 = "bbbb" } }]

[[packages]]
name = "filelock"
version = "4.2.11"
sdist = { url = "https://files.example/filelock-4.2.11.tar.gz", hashes = { sha256 = "ffff" } }
wheels = [{ url = "https://files.example/filelock-4.2.11-py3-none-any.whl", \
hashes = { sha256 = "aaaa" } }]
"""


@pytest.fixture
def app(tmp_path: Path, fixtures: Path) -> Project:
    shutil.copytree(fixtures / "projects" / "torch-mirror", tmp_path / "app")
    return Project.load(tmp_path / "app")


def test_requirements_are_pins_and_hashes_only() -> None:
    text = lock.requirements_from_pylock(PYLOCK)
    assert text == (
        "filelock==4.2.11 \\\n    --hash=sha256:aaaa \\\n    --hash=sha256:ffff\n"
        "torch==2.13.0+cpu \\\n    --hash=sha256:bbbb\n"
    )
    assert "://" not in text and "/mirror" not in text


def test_mirror_pylock_points_at_the_real_index() -> None:
    index = Index("pytorch-cpu", "/mirror/wheels", "https://real.invalid/whl/cpu", "$X")
    out = lock.relocate_mirror(PYLOCK, index)
    assert (
        'url = "https://real.invalid/whl/cpu/torch-2.13.0%2Bcpu-cp311-cp311-manylinux_2_28_x86_64.whl"'
        in out
    )
    assert "/mirror/" not in out
    assert "https://files.example/filelock-4.2.11.tar.gz" in out  # PyPI files untouched


def test_pins_become_constraints_without_local_labels() -> None:
    pins = "torch==2.10.0+cpu ; sys_platform == 'linux'\nsix==1.16.0\n"
    assert lock.strip_local(pins) == "torch==2.10.0 ; sys_platform == 'linux'\nsix==1.16.0\n"
    assert lock.pinned_version(pins, "torch") == "2.10.0"
    assert lock.pinned_version("torch==1 ; a\ntorch==2 ; b\n", "torch") is None


def test_stamp_round_trip_and_reasons(app: Project) -> None:
    env = app.envs(["linux-amd64-cpu"])[0]
    inputs = lock.env_inputs(app, env, "torch==2.13.0\n")
    for path in (app.env_lock(env.name), app.env_pylock(env.name)):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(lock.stamped("torch==2.13.0+cpu\n", env, inputs))
    assert lock.staleness(app, env, inputs) is None
    assert (
        lock.staleness(app, env, lock.env_inputs(app, env, "torch==2.14.0\n"))
        == "uv.lock's pins changed"
    )
    app.env_lock(env.name).write_text(app.env_lock(env.name).read_text() + "six==1.0\n")
    assert lock.staleness(app, env, inputs) == f"{env.name}.txt was edited by hand"
    app.env_pylock(env.name).unlink()
    assert lock.staleness(app, env, inputs) == f"{app.env_lock(env.name).name} was edited by hand"


def test_spec_change_is_named(app: Project) -> None:
    env = app.envs(["linux-amd64-cpu"])[0]
    before = lock.env_inputs(app, env, "")
    spec = app.envs_dir / "linux-amd64-cpu.yaml"
    spec.write_text(spec.read_text().replace('"3.11"', '"3.12"'))
    after = lock.env_inputs(app, load_spec(spec), "")
    changed = [k for k in before if before[k] != after[k]]
    assert changed == ["spec"]


def test_header_names_the_regenerating_command(app: Project) -> None:
    env = app.envs(["linux-amd64-cpu"])[0]
    text = lock.stamped("x==1\n", env, lock.env_inputs(app, env, ""))
    assert text.splitlines()[1] == "# Regenerate with: nox -s lock  (or: archlock lock)"
    assert "torch from index pytorch-cpu" in text


def test_macos_floor_fails_before_resolving(tmp_path: Path) -> None:
    spec = tmp_path / "mac.yaml"
    spec.write_text('platform: macos-arm64\npython: "3.11"\naccelerator: mps\nmacos: "13.0"\n')
    env = load_spec(spec)
    lock.preflight_macos(env, "2.10.0")  # 2.10 still has macOS 11+ wheels
    with pytest.raises(
        ConfigError, match=r'macos: torch 2.15.0 has no wheel for macOS 13.0.*set macos: "14.0"'
    ):
        lock.preflight_macos(env, "2.15.0")


def test_uv_platform_tag_failure_becomes_the_macos_fix(tmp_path: Path) -> None:
    spec = tmp_path / "mac.yaml"
    spec.write_text('platform: macos-arm64\npython: "3.11"\naccelerator: mps\nmacos: "13.0"\n')
    uv_said = ResolveError(
        "no solution: Because torch==2.99.0 has no wheels "
        "with a matching platform tag (e.g., `macosx_13_0_arm64`)"
    )
    explained = lock.explain_resolve_failure(uv_said, load_spec(spec), None, "2.99.0")
    assert isinstance(explained, ConfigError)
    assert "macos: torch 2.99.0 has no wheel for macOS 13.0" in explained.line()


def test_unreachable_index_names_the_override(app: Project) -> None:
    env = app.envs(["linux-amd64-cpu"])[0]
    index = Index(
        "pytorch-cpu",
        "http://127.0.0.1:9/simple",
        "https://real.invalid",
        "$ARCHLOCK_INDEX_PYTORCH_CPU",
    )
    explained = lock.explain_resolve_failure(
        ResolveError("x: an index is unreachable: tcp connect error"), env, index, "2.13.0"
    )
    assert "torch.index 'pytorch-cpu' at http://127.0.0.1:9/simple" in explained.line()
    assert "set ARCHLOCK_INDEX_PYTORCH_CPU" in explained.line()
    # a CPU env may keep PyPI's build instead; the line says where and how
    assert (
        "or keep PyPI's torch whatever its build: delete `torch:` and add "
        "`accept-cuda-stack: true` in linux-amd64-cpu.yaml"
    ) in explained.line()
    assert "\n" not in explained.line()


def test_torch_must_agree_across_envs(repo: Path) -> None:
    cpu, cuda, mac = (e for e in Project.load(repo).all_envs() if e.name != "linux-arm64-cpu")
    same = [
        lock.EnvOutcome(cpu, "locked", None, "2.10.0+cpu"),
        lock.EnvOutcome(cuda, "locked", None, "2.10.0"),
    ]
    lock.check_torch_agrees(same)  # builds differ, the release is the same
    older_mac = lock.EnvOutcome(mac, "locked", None, "2.11.0")
    with pytest.raises(
        ResolveError,
        match=r"torch differs between envs \(linux-amd64-cpu=2.10.0\+cpu, "
        r"linux-amd64-cuda=2.10.0, macos-arm64=2.11.0\)",
    ):
        lock.check_torch_agrees([*same, older_mac])


def test_index_needs_a_url(app: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    env = app.envs(["linux-amd64-cpu"])[0]
    monkeypatch.delenv("ARCHLOCK_INDEX_PYTORCH_CPU", raising=False)
    assert app.index("pytorch-cpu", env).url == "https://pytorch-cpu.invalid/whl/cpu"
    monkeypatch.setenv("ARCHLOCK_INDEX_PYTORCH_CPU", "relative/folder")
    chosen = app.index("pytorch-cpu", env)
    assert chosen.is_flat_folder and chosen.is_mirror and Path(chosen.url).is_absolute()
    with pytest.raises(ConfigError, match="set ARCHLOCK_INDEX_OTHER=URL-or-folder"):
        app.index("other", env)


def test_standin_pyproject_for_requirements_projects(tmp_path: Path, fixtures: Path) -> None:
    shutil.copytree(fixtures / "projects" / "requirements-app", tmp_path / "r")
    project = Project.load(tmp_path / "r")
    assert project.kind == "requirements"
    text = lock.standin_pyproject(project, project.envs())
    assert 'dependencies = ["six==1.16.0", "idna==3.10"]' in text
    assert "required-environments" in text and "platform_machine == 'aarch64'" in text
    assert 'name = "requirements-txt"' in text  # never the folder's name: clones share uv.lock


def test_pyproject_environments_must_cover_every_env(tmp_path: Path, fixtures: Path) -> None:
    shutil.copytree(fixtures / "projects" / "torch-mirror", tmp_path / "t")
    (tmp_path / "t" / "envs" / "arm.yaml").write_text(
        'platform: linux-arm64\npython: "3.11"\naccelerator: cpu\n'
    )
    project = Project.load(tmp_path / "t")
    with pytest.raises(ConfigError, match="does not cover env arm"):
        lock.check_environments(project, project.envs(["arm"]))


def test_environments_are_compared_as_markers_not_as_text() -> None:
    where = "pyproject.toml: [tool.uv] environments"
    same = lock._normal_marker('sys_platform=="linux"  and platform_machine == "x86_64"', where)
    assert same == lock._normal_marker(
        "sys_platform == 'linux' and platform_machine == 'x86_64'", where
    )
    with pytest.raises(ConfigError, match="is not a marker"):
        lock._normal_marker("sys_platform === linux", where)


@pytest.mark.parametrize(
    ("setting", "expected"),
    [
        ('grups = ["x"]', "did you mean 'groups'"),
        ('groups = "workload"', "groups: must be a list of strings"),
        ('groups = ["nope"]', "no dependency group 'nope'"),
        ("indexes = { a = 1 }", "indexes: must be a table of strings"),
    ],
)
def test_bad_project_settings(tmp_path: Path, setting: str, expected: str) -> None:
    (tmp_path / "pyproject.toml").write_text(
        f'[project]\nname = "x"\nversion = "0"\n[tool.archlock]\n{setting}\n'
    )
    with pytest.raises(ConfigError, match=expected):
        Project.load(tmp_path)


def test_requirements_option_lines_are_refused(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text("--index-url http://x\nsix\n")
    with pytest.raises(ConfigError, match="option lines"):
        Project.load(tmp_path).direct_requirements()


def test_no_project_is_a_clean_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="neither pyproject.toml nor requirements.txt"):
        Project.load(tmp_path)


def test_opt_in_envs_are_skipped_until_named_or_locked(repo: Path) -> None:
    project = Project.load(repo)
    default = {e.name for e in project.envs()}
    assert "linux-amd64-cpu" not in default
    assert {"macos-arm64", "linux-amd64-cuda", "linux-arm64-cpu"} <= default
    assert [e.name for e in project.envs(["linux-amd64-cpu"])] == ["linux-amd64-cpu"]
    with pytest.raises(ConfigError, match="did you mean 'linux-arm64-cpu'"):
        project.envs(["linux-arm64-cp"])


def test_a_malformed_stamp_is_a_stale_lock_named_by_its_file(app: Project) -> None:
    env = app.envs(["linux-amd64-cpu"])[0]
    inputs = lock.env_inputs(app, env, "torch==2.13.0\n")
    for path in (app.env_lock(env.name), app.env_pylock(env.name)):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(lock.stamped("torch==2.13.0+cpu\n", env, inputs))
    text = app.env_lock(env.name).read_text()
    garbage = lockfile.STAMP_RE.sub("# archlock-inputs: garbage-without-equals", text)
    app.env_lock(env.name).write_text(garbage)
    assert lock.staleness(app, env, inputs) == (
        f"{env.name}.txt has a malformed archlock-inputs stamp "
        "('garbage-without-equals' is not key=value)"
    )
    commit.refuse_torn_locks(
        app.root, app.locks_dir
    )  # not a tear: the stale lock is named by --check


def test_two_locks_of_one_env_with_different_stamps_are_a_torn_set(app: Project) -> None:
    env = app.envs(["linux-amd64-cpu"])[0]
    old, new = (lock.env_inputs(app, env, f"torch=={v}\n") for v in ("2.13.0", "2.14.0"))
    app.locks_dir.mkdir(parents=True, exist_ok=True)
    app.env_lock(env.name).write_text(lock.stamped("torch==2.14.0+cpu\n", env, new))
    app.env_pylock(env.name).write_text(lock.stamped("torch==2.13.0+cpu\n", env, old))
    with pytest.raises(DriftError) as torn:
        commit.refuse_torn_locks(app.root, app.locks_dir)
    assert torn.value.line() == (
        f"an interrupted lock left old and new files (envs/locks/{env.name}.txt) "
        "(fix: run `archlock lock`)"
    )
