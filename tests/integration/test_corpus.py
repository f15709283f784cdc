"""The acceptance corpus (tests/fixtures/corpus, its README says what each project is): projects
shaped like the repositories people have, each taken through init -> lock -> audit -> render ->
build -> verify (host, linux/amd64 and linux/arm64 images) -> matrix, as a user runs archlock
(the CLI in a child process). Each ends green or with the documented refusal: one line naming
the file, the key and the fix, a non-zero exit, nothing half-written.

1. gpt-unpinned: unpinned `torch`. init points the CPU envs at the PyTorch CPU index. Where that
   index is reachable the project locks and goes on green; where it is not (this machine, CI
   here) init ends with the one-line refusal naming the index, ARCHLOCK_INDEX_PYTORCH_CPU and
   accept-cuda-stack, and every later stage refuses in one line naming the missing lock. Its
   images are never built: an unpinned torch is the newest release, a new 6+ GB CUDA layer.
2. chargpt-writes: writes its data and checkpoint under its folder and a log under HOME; in the
   image as uid 10001 (host: HOME is the test's own folder).
3. shell-pipeline: a run with a variable, `&&` and a pipe (`| tee`).
4. config-sdist: OmegaConf with the pure-Python sdist antlr4-python3-runtime 4.9.3.
5. cuda-extension: the torch CUDA extension sdist adam-atan2 0.0.3. audit refuses (exit 6) with
   the true fix per env; host verify fails `imports` naming the missing compiled backend.
6. a clone of (2) in a folder of another name: lock --check, init --check and render --check
   pass; relocking gives byte-identical files; its images have (2)'s layers (so (2)'s image
   verify stands for them) and its host verify passes.

Cost (the corpus must add at most 10 minutes to a warm CI run and about 8 GB of disk): (2), (3)
and the clone keep tests/fixtures/projects/train-requirements' requirements.txt byte for byte.
Their per-env locks are then identical to test_init_project's (the lock is folder-free, and the
run settings are not its input), and so are their Dockerfiles up to the final labels, so every
dependency layer (the 7.5 GB CUDA venv) is a BuildKit cache hit shared with that test: each
build adds only the source layer. (4) needs a new dependency set, and a new amd64 CUDA venv
layer set cannot share torch's (the 7.5 GB venv again, over the disk cap, about 3 minutes): so
(4) builds and verifies its linux/arm64 image, where a pure-Python sdist matters (it used to put
the whole arm64 install back under emulation; here the build machine's uv builds it, a 170 MB
venv), and verifies the amd64 side on
the host, whose venv holds the same amd64 wheels plus the same sdist-built wheel. (5) builds no
image: `archlock build` does not consult audit, so it would build a new 7.5 GB CUDA layer only
to install adam-atan2 without its backend, the failure host verify shows in 30 s. In the images
verify skips the suite's torch checks (IMAGE_SKIP): the venv layers are test_init_project's,
which runs the whole suite in them; what the corpus adds is each project's own run.

The wall time per project is printed in pytest's summary at the end of the run.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import tomllib
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from endtoend import (
    CORPUS_TIMES,
    archlock,
    build_images,
    built_tags,
    ok,
    opt_into_toolchain,
    uv_cache_dir,
)

pytestmark = pytest.mark.integration

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "corpus"
IMAGE_ENVS = ("linux-amd64-cuda", "linux-arm64-cpu")
HOST_ENV = "linux-amd64-cuda"  # CI's machines (and this test's) are linux/amd64
TAG = f"corpus-{uuid.uuid4().hex[:10]}"  # this run's images only; removed at the end
IMAGE_SKIP = ("sdpa", "compile", "autocast", "distributed", "training", "loss_parity", "checkpoint")
TIMES: dict[str, float] = {}
MADE: list[str] = []  # image tags this module built


@contextmanager
def timed(project: str) -> Iterator[None]:
    start = time.monotonic()
    try:
        yield
    finally:
        TIMES[project] = TIMES.get(project, 0.0) + time.monotonic() - start


@pytest.fixture(scope="module", autouse=True)
def wall_times(request: pytest.FixtureRequest) -> Iterator[None]:
    """The times go in the run's stash; conftest's terminal summary prints them (a line written
    here, in a test's teardown, would be captured and dropped with a passing test's output)."""
    yield
    times = {name: round(seconds, 1) for name, seconds in sorted(TIMES.items())}
    request.config.stash[CORPUS_TIMES] = times


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("corpus")


@pytest.fixture(scope="module")
def host_env(work: Path) -> dict[str, str]:
    """The runs write under HOME: the test's own, with the machine's uv cache kept (uv's default
    cache is under HOME, and a fresh one would download torch again)."""
    home = work / "home"
    home.mkdir()
    return {"HOME": str(home), "UV_CACHE_DIR": uv_cache_dir()}


@pytest.fixture(scope="module")
def images(infra: dict[str, str]) -> Iterator[None]:
    """Removes every image this module tagged (docker tests take it after `infra`)."""
    yield
    if MADE:
        subprocess.run(
            ["docker", "image", "rm", *MADE], capture_output=True, timeout=600, check=False
        )


def initialised(work: Path, name: str, run: str, metric: str, folder: str = "") -> Path:
    """The fixture copied, `archlock init --run --metric` (lock and render), then the user's one
    edit: a compiler in the amd64 image (image.toolchain: true), rendered again."""
    root = work / (folder or name)
    shutil.copytree(CORPUS / name, root)
    with timed(name):
        out = ok(archlock(root, "init", "--run", run, "--metric", metric))
        opt_into_toolchain(root)
        ok(archlock(root, "render"))
    assert out.splitlines()[-1].startswith("archlock init: done; next: archlock ")
    return root


def green_until_verify(root: Path, name: str, host_env: dict[str, str]) -> dict[str, Any]:
    """lock --check, init --check, render --check and audit pass; host verify passes; returns
    the host result."""
    with timed(name):
        for check in (("lock", "--check"), ("init", "--check"), ("render", "--check")):
            ok(archlock(root, *check))
        audit = ok(archlock(root, "audit"))
        verify = archlock(root, "verify", env=host_env)
    assert "error:" not in audit and "warning:" not in audit, audit
    assert verify.returncode == 0, verify.stdout[-3000:] + verify.stderr[-2000:]
    return json.loads((root / "results" / f"{HOST_ENV}.host.json").read_text())


def build(
    root: Path, name: str, infra: dict[str, str], envs: tuple[str, ...] = (), tag: str = TAG
) -> dict[str, str]:
    envs = envs or IMAGE_ENVS
    with timed(name):
        done = build_images(root, infra, tag, envs)
    built = built_tags(ok(done))
    MADE.extend(tag for tags in built.values() for tag in tags)
    assert sorted(built) == sorted(envs), done.stdout
    assert "archlock build: build context " in done.stdout
    return {env: tags[0] for env, tags in built.items()}


def verify_images(root: Path, name: str, tags: dict[str, str]) -> dict[str, dict[str, Any]]:
    results = {}
    for env, tag in tags.items():
        skips = [a for check in IMAGE_SKIP for a in ("--skip", check)]
        with timed(name):
            done = archlock(root, "verify", "--image", tag, *skips)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
        results[env] = json.loads((root / "results" / f"{env}.image.json").read_text())
        assert results[env]["checks"]["imports"]["status"] == "pass", results[env]["checks"]
    return results


def matrix(root: Path, name: str, columns: int) -> list[str]:
    """`archlock matrix --gate`: one column per result; the run's metric agrees in every one.
    Returns the Markdown table's lines."""
    with timed(name):
        ok(archlock(root, "matrix", "--gate"))
    lines = (root / "results" / "matrix.md").read_text().splitlines()
    header = next(line for line in lines if line.startswith("| feature |"))
    assert header.count("|") == columns + 2, header
    assert next(line for line in lines if line.startswith("| verify |")).count("**pass**") == (
        columns
    )
    same = next(line for line in lines if line.startswith("| same metric as other envs"))
    assert same.count("reference (") == 1 and same.count("| pass (") == columns - 1, same
    return lines


def run_check(result: dict[str, Any]) -> dict[str, Any]:
    run: dict[str, Any] = result["checks"]["run_1"]
    assert (run["status"], run["exit"]) == ("pass", 0), run
    return run


# -- 1. requirements-only, unpinned torch -------------------------------------------------------
def test_unpinned_torch_locks_where_the_cpu_index_is_reachable_else_refuses_in_one_line(
    work: Path, host_env: dict[str, str]
) -> None:
    name = "gpt-unpinned"
    root = work / name
    shutil.copytree(CORPUS / name, root)
    with timed(name):
        first = archlock(root, "init", "--run", "python train.py", "--metric", r"loss ([0-9.]+)")
    url = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["archlock"]["indexes"][
        "pytorch-cpu"
    ]
    if index_reachable(url):
        assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
        lock = (root / "envs" / "locks" / "linux-arm64-cpu.txt").read_text()
        assert "+cpu" in lock and "nvidia" not in lock
        host = green_until_verify(root, name, host_env)
        run_check(host)
        matrix(root, name, 1)
        return
    assert first.returncode == 4, first.stdout[-3000:] + first.stderr[-3000:]
    assert first.stderr.count("\n") == 1 and "Traceback" not in first.stderr, first.stderr
    assert first.stderr.startswith(
        f"archlock init: error: {root}/envs/linux-arm64-cpu.yaml: torch.index 'pytorch-cpu' "
        f"at {url} (from {root}/pyproject.toml [tool.archlock.indexes]) is unreachable (fix: "
        "set ARCHLOCK_INDEX_PYTORCH_CPU to a reachable mirror URL or a local folder of wheels, "
        "or keep PyPI's torch whatever its build: delete `torch:` and add "
        "`accept-cuda-stack: true` in linux-arm64-cpu.yaml; then run "
        f"`archlock --project {root} init`)"
    ), first.stderr
    # init's own files stay (the fix, then init again finishes); no lock, no render, no journal
    assert not (root / "uv.lock").exists() and not (root / "envs" / "locks").exists()
    assert not (root / "docker").exists() and not list(root.glob(".archlock/commit/*.json"))
    missing = f"{root}/envs/locks/{HOST_ENV}.txt"
    refusals = {
        ("lock", "--check"): (5, "uv.lock is missing; "),
        ("init", "--check"): (5, "init's files are current, but the locks are not: "),
        ("audit",): (5, f"{root}/envs/locks/pylock.{HOST_ENV}.toml: no lock for env {HOST_ENV}"),
        ("render",): (2, f"{missing}: lock missing for env {HOST_ENV}"),
        ("build",): (2, f"{missing}: lock missing for env {HOST_ENV}"),
        ("verify",): (2, f"{missing}: env {HOST_ENV} has no lock"),
        ("matrix",): (2, f"{root}/results: no results folder"),
    }
    for args, (code, text) in refusals.items():
        with timed(name):
            done = archlock(root, *args, env=host_env)
        line = f"archlock {args[0]}: error: {text}"
        assert done.returncode == code and done.stderr.startswith(line), (args, done.stderr)
        assert done.stderr.count("\n") == 1 and "(fix: " in done.stderr, (args, done.stderr)
    assert not (root / "docker").exists() and not (root / "results").exists()


def index_reachable(url: str) -> bool:
    """Whether the index answers at all (any HTTP status counts: the host is there)."""
    try:
        urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=30)
    except urllib.error.HTTPError:
        return True
    except (OSError, ValueError):
        return False
    return True


# -- 2. writes data, checkpoints and HOME; 6. its clone -----------------------------------------
CHARGPT_RUN = "python train.py --max-iters 5"
WROTE = (
    "data/shakespeare_char/train.bin",
    "out-shakespeare-char/ckpt.pt",
)


@pytest.fixture(scope="module")
def chargpt(work: Path) -> Path:
    return initialised(work, "chargpt-writes", CHARGPT_RUN, r"val loss ([0-9.]+)")


@pytest.fixture(scope="module")
def chargpt_images(chargpt: Path, infra: dict[str, str], images: None) -> dict[str, str]:
    return build(chargpt, "chargpt-writes", infra)


@pytest.fixture(scope="module")
def clone(work: Path, chargpt: Path) -> Path:
    """(2) as a teammate's `git clone` into another folder: what .gitignore keeps out stays out."""
    root = work / "teammate" / "nanogpt-fork"
    ignored = shutil.ignore_patterns(".archlock", "results", "data", "out-*", "__pycache__")
    shutil.copytree(chargpt, root, ignore=ignored)
    return root


def test_chargpt_writes_data_and_checkpoints_in_its_folder_and_home_on_the_host(
    chargpt: Path, host_env: dict[str, str]
) -> None:
    run = run_check(green_until_verify(chargpt, "chargpt-writes", host_env))
    for path in WROTE:
        assert (chargpt / path).is_file() and f"wrote {chargpt / path} (" in run["tail"], run
    log = Path(host_env["HOME"], ".cache", "chargpt", "runs.jsonl")
    assert json.loads(log.read_text().splitlines()[-1])["val_loss"] == pytest.approx(
        run["metric"], abs=1e-4
    )


@pytest.mark.docker
def test_chargpt_writes_as_the_run_user_in_both_images_and_the_matrix_agrees(
    chargpt: Path, chargpt_images: dict[str, str], host_env: dict[str, str]
) -> None:
    if not (chargpt / "results" / f"{HOST_ENV}.host.json").is_file():
        ok(archlock(chargpt, "verify", env=host_env))
    for env, result in verify_images(chargpt, "chargpt-writes", chargpt_images).items():
        tail = run_check(result)["tail"]
        for path in (*(f"/app/{p}" for p in WROTE), "/home/app/.cache/chargpt/runs.jsonl"):
            assert f"wrote {path} (" in tail and "uid 10001)" in tail, (env, tail)
    matrix(chargpt, "chargpt-writes", 1 + len(chargpt_images))


def test_a_clone_in_another_folder_is_current_and_relocks_byte_identical(
    chargpt: Path, clone: Path
) -> None:
    name = "clone"
    with timed(name):
        for check in (("lock", "--check"), ("init", "--check"), ("render", "--check")):
            ok(archlock(clone, *check))
        ok(archlock(clone, "lock", "--force"))
        ok(archlock(clone, "render", "--check"))
    locks = ["uv.lock", *(f"envs/locks/{p.name}" for p in (chargpt / "envs" / "locks").iterdir())]
    assert len(locks) > 6
    for path in locks:
        assert (clone / path).read_bytes() == (chargpt / path).read_bytes(), path


@pytest.mark.docker
def test_the_clone_builds_the_same_layers_and_verifies_on_the_host(
    clone: Path, chargpt_images: dict[str, str], infra: dict[str, str], host_env: dict[str, str]
) -> None:
    """The clone's images have (2)'s layers below the source: the same locks and the same
    Dockerfiles (the image name travels in pyproject.toml), so every dependency step is a cache
    hit. The source layer is the last, and differs: (2)'s run left data/shakespeare_char/ in its
    folder, which the context keeps as an empty folder (`!data/**/*.py` keeps scripts there).
    Its images are not verified again: below the source they are (2)'s, verified above, and the
    2.5 minutes that would cost are over the corpus's budget. Its host venv is its own."""
    name = "clone"
    theirs = build(clone, name, infra, tag=f"{TAG}-clone")  # the image name is (2)'s
    for env, tag in theirs.items():
        ours = chargpt_images[env]
        assert tag != ours and layers(tag)[:-1] == layers(ours)[:-1], env
    with timed(name):
        ok(archlock(clone, "verify", env=host_env))
    run_check(json.loads((clone / "results" / f"{HOST_ENV}.host.json").read_text()))
    matrix(clone, name, 1)


def layers(tag: str) -> list[str]:
    done = subprocess.run(
        ["docker", "image", "inspect", "--format", "{{json .RootFS.Layers}}", tag],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return list(json.loads(done.stdout))


# -- 3. a run with a variable, && and a pipe ----------------------------------------------------
PIPELINE_RUN = 'STEPS=5; python prepare.py && python train.py --steps "$STEPS" | tee train.log'


@pytest.fixture(scope="module")
def pipeline(work: Path) -> Path:
    return initialised(work, "shell-pipeline", PIPELINE_RUN, r"loss ([0-9.]+)")


def assert_ran_through_the_shell(run: dict[str, Any]) -> None:
    lines = run["tail"].splitlines()
    assert lines[0] == "prepared 64 points in data/points.npy", lines  # then train.py, via tee
    assert lines[1:] == [line for line in lines[1:] if line.startswith("step ")] and len(lines) == 6
    assert run["command"] == PIPELINE_RUN and run["metric"] == float(lines[-1].split()[-1])


def test_a_run_with_a_variable_and_a_pipe_runs_through_the_shell_on_the_host(
    pipeline: Path, host_env: dict[str, str]
) -> None:
    run = run_check(green_until_verify(pipeline, "shell-pipeline", host_env))
    assert_ran_through_the_shell(run)
    assert (pipeline / "train.log").read_text().splitlines() == run["tail"].splitlines()[1:]


@pytest.mark.docker
def test_a_run_with_a_variable_and_a_pipe_runs_through_the_shell_in_both_images(
    pipeline: Path, infra: dict[str, str], images: None, host_env: dict[str, str]
) -> None:
    if not (pipeline / "results" / f"{HOST_ENV}.host.json").is_file():
        ok(archlock(pipeline, "verify", env=host_env))
    tags = build(pipeline, "shell-pipeline", infra)
    for result in verify_images(pipeline, "shell-pipeline", tags).values():
        assert_ran_through_the_shell(run_check(result))
    matrix(pipeline, "shell-pipeline", 1 + len(tags))


# -- 4. a pure-Python sdist ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def config_sdist(work: Path) -> Path:
    return initialised(work, "config-sdist", "python train.py", r"loss ([0-9.]+)")


def test_a_pure_python_sdist_is_info_only_and_builds_on_the_build_machine(
    config_sdist: Path, host_env: dict[str, str]
) -> None:
    name = "config-sdist"
    with timed(name):
        for check in (("lock", "--check"), ("init", "--check"), ("render", "--check")):
            ok(archlock(config_sdist, *check))
        audit = ok(archlock(config_sdist, "audit", "--strict"))  # not even a warning
        verify = archlock(config_sdist, "verify", env=host_env)
    for platform in ("linux-amd64", "linux-arm64", "macos-arm64"):
        assert (
            f"info: antlr4-python3-runtime 4.9.3 has no wheel for {platform}; its sdist is pure "
            "Python (only Python sources and no extension modules): it builds into a wheel on "
            "any CPU, by the build machine's uv, with no compiler"
        ) in audit, audit
    dockerfile = (config_sdist / "docker" / "linux-arm64-cpu.Dockerfile").read_text()
    assert (
        "from=uv-build,source=/uv,target=/tmp/archlock/uv" in dockerfile
    )  # the build machine's uv
    assert "--no-build" not in dockerfile  # which builds the sdist
    assert verify.returncode == 0, verify.stdout[-3000:] + verify.stderr[-2000:]
    host = json.loads((config_sdist / "results" / f"{HOST_ENV}.host.json").read_text())
    assert "run fit-5-steps at lr 0.05" in run_check(host)["tail"]  # antlr parsed ${...}


@pytest.mark.docker
def test_a_pure_python_sdist_in_the_arm64_image(
    config_sdist: Path, infra: dict[str, str], images: None, host_env: dict[str, str]
) -> None:
    name = "config-sdist"
    if not (config_sdist / "results" / f"{HOST_ENV}.host.json").is_file():
        ok(archlock(config_sdist, "verify", env=host_env))
    tags = build(config_sdist, name, infra, ("linux-arm64-cpu",))
    result = verify_images(config_sdist, name, tags)["linux-arm64-cpu"]
    assert "run fit-5-steps at lr 0.05" in run_check(result)["tail"]
    matrix(config_sdist, name, 2)  # the host (amd64) and the arm64 image: see the docstring


# -- 5. a torch CUDA-extension sdist -------------------------------------------------------------
def test_a_torch_cuda_extension_is_refused_by_audit_and_fails_verify_by_its_missing_backend(
    work: Path, host_env: dict[str, str]
) -> None:
    name = "cuda-extension"
    root = initialised(work, name, "python train.py", r"loss ([0-9.]+)")
    why = "(its setup.py builds with torch.utils.cpp_extension)"
    with timed(name):
        ok(archlock(root, "lock", "--check"))
        audit = archlock(root, "audit")
        verify = archlock(root, "verify", env=host_env)
        ok(archlock(root, "matrix"))
    assert audit.returncode == 6, audit.stdout + audit.stderr
    assert audit.stderr == (
        "archlock audit: error: 3 finding(s) at or above error (fix: see the report above)\n"
    )
    assert (
        f"  error: adam-atan2 0.0.3 is a torch extension built from source {why}: built without "
        "torch (uv's isolated build) it installs without its compiled backend and its import "
        "fails (fix: build its wheel with the locked torch and the CUDA toolkit (nvcc) present "
        "and no build isolation (`pip wheel --no-build-isolation --no-deps adam-atan2==0.0.3` in "
        "an image with both, TORCH_CUDA_ARCH_LIST set) and install it from a prebuilt wheel "
        "index or folder, or pin a release that ships wheels)\n"
    ) in audit.stdout
    for env, accelerator in (("linux-arm64-cpu", "cpu"), ("macos-arm64", "mps")):
        section = audit.stdout.split(f"{env}: ", 1)[1]
        assert section.splitlines()[1] == (
            f"  error: adam-atan2 0.0.3 is a torch CUDA extension built from source {why}; a "
            f"{accelerator} env has no CUDA to build or run its backend (fix: keep it out of "
            "this env with a marker (`adam-atan2; sys_platform == 'linux' and platform_machine "
            "== 'x86_64'`) and fall back in code where its import fails)"
        )
    dockerfile = (root / "docker" / "linux-arm64-cpu.Dockerfile").read_text()
    assert (
        "from=uv,source=/uv,target=/tmp/archlock/uv" in dockerfile
    )  # not pure Python: the target's uv
    assert "uv-build" not in dockerfile
    assert verify.returncode == 6, verify.stdout[-3000:] + verify.stderr[-2000:]
    first = (
        f"archlock verify: error: {HOST_ENV}: 2 check(s) failed (imports, run_1); first: imports: "
        "1 installed module(s) do not import: adam_atan2 0.0.3: import adam_atan2: "
        "ModuleNotFoundError: No module named 'adam_atan2_backend'; "
    )
    fix = (
        "(fix: adam_atan2 is installed without its module adam_atan2_backend (a source build "
        "that skipped its compiled part): build it with what it compiles against (torch, the "
        "CUDA toolchain) present, or install a prebuilt wheel; "
    )
    assert verify.stderr.startswith(first) and fix in verify.stderr, verify.stderr
    assert verify.stderr.count("\n") == 1, verify.stderr
    result = json.loads((root / "results" / f"{HOST_ENV}.host.json").read_text())
    run = result["checks"]["run_1"]  # train.py imports it too
    assert (run["status"], run["exit"]) == ("fail", 1) and "adam_atan2_backend" in run["tail"], run
    table = (root / "results" / "matrix.md").read_text()
    assert "| verify | **fail** |" in table and "adam_atan2_backend" in table
