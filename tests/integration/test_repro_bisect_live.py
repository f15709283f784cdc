"""repro --bisect for real: planted culprits, narrowed in containers over one shared base image.

One project (four small pins, locked by `archlock lock` against PyPI) and one teammate venv with
seven drifts: packaging 24.1 (lock 21.3), six 1.17.0 (1.16.0), idna 3.7 (3.6), an extra
colorama, a missing iniconfig and pyparsing (21.3 needs it), and OMP_NUM_THREADS=3. Each test
records a report of another failing command in that venv, and `archlock repro --bisect` must name
its culprit: one package version, one variable, a pair that fails only together, a missing
package, and a failure that does not reproduce in a container. Every run stays within
2*k*log2(n) + 2 trials and 5 minutes; all share the base image (the locked env), which the module
removes at the end if it built it. Ctrl-C leaves nothing.

Needs the local images scripts/local-infra.sh makes and PyPI; run under the docker mutex.
"""

from __future__ import annotations

import importlib.util
import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import endtoend
import pytest

from archlock import cli
from archlock.core.docker import docker_cli, engine_running
from archlock.repro.ddmin import bound

pytestmark = [pytest.mark.integration, pytest.mark.docker]

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures"
_spec = importlib.util.spec_from_file_location("envmaker", FIXTURES / "reports" / "envmaker.py")
em = importlib.util.module_from_spec(_spec)  # type: ignore[arg-type]
_spec.loader.exec_module(em)  # type: ignore[union-attr]

BASE_AMD64 = "archlock/debian-bookworm:amd64"
LOCKED = "packaging==21.3\nsix==1.16.0\nidna==3.6\niniconfig==2.0.0\n"
TEAMMATE = ("packaging==24.1", "six==1.17.0", "idna==3.7", "colorama==0.4.6")
LABEL = "io.archlock.repro.bisect"
LIMIT = 300.0  # seconds per fixture (the acceptance)


def uv_image() -> str:
    return endtoend.local_uv_image("amd64")


def docker(*args: str) -> str:
    done = subprocess.run(
        [docker_cli(), *args], capture_output=True, text=True, check=False, timeout=120
    )
    return done.stdout


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    if not engine_running():
        pytest.fail("the Docker engine is not running: run scripts/local-infra.sh")
    for image in (BASE_AMD64, uv_image()):
        if not docker("image", "inspect", "--format", "{{.Id}}", image).strip():
            pytest.fail(f"{image} is missing: run scripts/local-infra.sh")
    root = tmp_path_factory.mktemp("bisect")
    project = root / "project"
    project.mkdir()
    (project / "requirements.txt").write_text(LOCKED)
    (project / "envs").mkdir()
    (project / "envs" / "linux-amd64-cpu.yaml").write_text(
        em.spec("linux-amd64", "cpu", extra=f"image:\n  base: {BASE_AMD64}\n")
    )
    assert cli.main(["--project", str(project), "lock"]) == 0
    venv = em.make_venv(root / "venv")
    em.install(venv, *(Path(pin) for pin in TEAMMATE), offline=False)
    before = set(docker("images", "-q", "--filter", "label=io.archlock.repro.source").split())
    world: dict[str, Any] = {"root": root, "project": project, "venv": venv, "bases": set()}
    yield world
    for image in world["bases"]:
        if docker("image", "inspect", "--format", "{{.Id}}", image).strip() not in before:
            docker("image", "rm", "--force", image)


def teammate_report(world: dict[str, Any], name: str, code: str) -> Path:
    out = world["root"] / name / "report.json"
    out.parent.mkdir()
    env = em.clean_env(world["venv"], OMP_NUM_THREADS="3")
    doc = em.run_report(world["venv"], world["project"], out, "python", "-c", code, env=env)
    assert doc["command"]["exit_code"] != 0, doc["command"]
    return out


def bisect(world: dict[str, Any], report: Path) -> tuple[dict[str, Any], float]:
    out = report.with_name("diagnosis.json")
    started = time.monotonic()
    code = cli.main(
        [
            "--project",
            str(world["project"]),
            "repro",
            str(report),
            "--bisect",
            "--uv-image",
            uv_image(),
            "--json",
            str(out),
            "--markdown",
            str(report.with_name("diagnosis.md")),
        ]
    )
    seconds = time.monotonic() - started
    assert code == 0
    found = json.loads(out.read_text())["bisect"]
    world["bases"].add(found["base"]["image"])
    print(f"\n{report.parent.name}: {found['trial_count']} trials, {seconds:.0f} s wall")
    assert seconds <= LIMIT, f"{seconds:.0f} s"
    assert not docker("ps", "-aq", "--filter", f"label={LABEL}").split()
    return found, seconds


def culprits(found: dict[str, Any]) -> list[str]:
    return [c["title"] for c in found.get("culprits") or []]


def within_bound(found: dict[str, Any]) -> None:
    n, k = len(found["drift_set"]), max(1, len(found.get("culprits") or []))
    assert n == 7, found["drift_set"]  # packaging 21.3 brings pyparsing into the lock
    assert found["trial_count"] <= bound(n, k), (found["trial_count"], bound(n, k))
    assert [t["phase"] for t in found["trials"][:2]] == ["reproduce", "lock"]
    assert [t["outcome"] for t in found["trials"][:2]] == ["fail", "pass"]


def test_one_package_version(world: dict[str, Any]) -> None:
    report = teammate_report(world, "version", "from packaging.version import LegacyVersion")
    found, _ = bisect(world, report)
    assert culprits(found) == ["packaging 24.1 (lock 21.3)"]
    assert (
        "alone reproduces the failure; with the locked packaging the command passes"
        in (found["text"])
    )
    assert found["fix"].startswith("uv pip install packaging==21.3")
    within_bound(found)
    md = report.with_name("diagnosis.md").read_text()
    assert "## Which drift breaks it" in md and "packaging 24.1 (lock 21.3)" in md


def test_one_environment_variable(world: dict[str, Any]) -> None:
    code = "import os; assert os.environ.get('OMP_NUM_THREADS') != '3', 'three threads deadlock'"
    found, _ = bisect(world, teammate_report(world, "envvar", code))
    assert culprits(found) == ["OMP_NUM_THREADS=3 (unset in the locked env)"]
    assert found["fix"].startswith("unset OMP_NUM_THREADS")
    within_bound(found)


def test_a_pair_that_fails_only_together(world: dict[str, Any]) -> None:
    code = (
        "import six, idna; "
        "assert (six.__version__, idna.__version__) != ('1.17.0', '3.7'), 'six 1.17 with idna 3.7'"
    )
    found, _ = bisect(world, teammate_report(world, "pair", code))
    assert culprits(found) == ["idna 3.7 (lock 3.6)", "six 1.17.0 (lock 1.16.0)"]
    assert "together reproduce the failure" in found["text"]
    within_bound(found)


def test_a_missing_package(world: dict[str, Any]) -> None:
    found, _ = bisect(world, teammate_report(world, "missing", "import iniconfig"))
    assert culprits(found) == ["iniconfig missing (lock 2.0.0)"]
    assert found["fix"].startswith("uv pip install iniconfig==2.0.0")
    within_bound(found)


def test_a_failure_that_does_not_reproduce_in_a_container(world: dict[str, Any]) -> None:
    stale = world["root"] / "stale-cache"
    stale.write_text("left over from an older checkout\n")  # only on the teammate's machine
    code = f"import os; assert not os.path.exists({str(stale)!r}), 'stale cache found'"
    found, _ = bisect(world, teammate_report(world, "outside", code))
    assert found["status"] == "does-not-reproduce" and found["trial_count"] == 1
    assert "the cause is outside the packages" in found["text"]
    assert any(line.startswith("NVIDIA driver:") for line in found["outside"])
    assert any(line.startswith("hardware:") for line in found["outside"])


def test_ctrl_c_leaves_no_container_volume_or_new_image(world: dict[str, Any]) -> None:
    # fails at once on the teammate's machine (a file only it has), hangs in a trial: so the run
    # is interrupted while a trial's container is up (a machine that is itself a container has
    # /.dockerenv too, so that marker cannot tell them apart)
    host_only = world["root"] / "host-only"
    host_only.write_text("only on the teammate's machine\n")
    code = (
        f"import os, sys, time; sys.exit(3) if os.path.exists({str(host_only)!r}) "
        "else time.sleep(120)"
    )
    report = teammate_report(world, "interrupt", code)
    images = set(docker("images", "-q", "--filter", "label=io.archlock.repro.source").split())
    # what an earlier, killed run may have left is not this run's to answer for
    containers = set(docker("ps", "-aq", "--filter", f"label={LABEL}").split())
    volumes = set(docker("volume", "ls", "-q", "--filter", f"label={LABEL}").split())
    argv = [sys.executable, "-m", "archlock", "--project", str(world["project"]), "repro"]
    argv += [str(report), "--bisect", "--uv-image", uv_image()]
    # Ctrl-C as a terminal sends it: SIGINT at its default, whatever this run inherited (a
    # background job of a non-interactive shell starts with SIGINT ignored, and so would the child)
    child = subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.default_int_handler),
    )
    try:
        deadline = time.monotonic() + LIMIT
        while not set(docker("ps", "-q", "--filter", f"label={LABEL}").split()) - containers:
            assert time.monotonic() < deadline and child.poll() is None, "no trial started"
            time.sleep(0.5)
        child.send_signal(signal.SIGINT)
        output, _ = child.communicate(timeout=120)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == 130, output
    assert "interrupted: the run's containers, volume and new images are removed" in output
    assert set(docker("ps", "-aq", "--filter", f"label={LABEL}").split()) <= containers
    assert set(docker("volume", "ls", "-q", "--filter", f"label={LABEL}").split()) <= volumes
    after = set(docker("images", "-q", "--filter", "label=io.archlock.repro.source").split())
    assert after <= images
