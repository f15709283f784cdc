"""The one diagnosis: the questions verify and repro used to answer differently, answered once.

Probe documents come from test_verify's builders (the shapes the real probe prints).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from test_verify import LOCK, env_spec, failures, probe_doc, suite_doc

from archlock.core import diagnose
from archlock.core.lockfile import pins, same_version
from archlock.repro.drift import Target
from archlock.repro.drift import diagnose as repro_diagnose
from archlock.verify.checks import compare


def ctx(env=None, lock: str = LOCK, **over) -> diagnose.Context:
    env = env or env_spec()
    return diagnose.Context(env, pins(lock), "envs/locks/x.txt", "resync", **over)


@pytest.mark.parametrize(
    ("one", "other", "same"),
    [
        ("1.0", "1.0.0", True),
        ("4.2.11.0", "4.2.11", True),
        ("2.10.0+cpu", "2.10.0", False),
        ("1.1", "1.10", False),
        ("1.0rc1", "1.0", False),  # a pre-release is not the release
        ("1.0.post1", "1.0", False),
        ("1!1.0", "1.0", False),  # another epoch
        ("not a version", "Not A Version", True),  # unparseable: compared as text
    ],
)
def test_versions_are_pep_440(one: str, other: str, same: bool) -> None:
    assert same_version(one, other) is same


def test_a_pre_release_of_a_locked_package_is_a_difference_in_both_verbs() -> None:
    doc = probe_doc()
    doc["distributions"][0]["version"] = "2.4.6rc1"  # numpy; `!=` saw this, same_version did not
    found = diagnose.diagnose(doc, ctx())
    assert [f.kind for f in found if f.severity == "error"] == ["packages-different"]
    assert found[0].details == ("numpy 2.4.6rc1 (lock: 2.4.6)",)


def test_the_macos_floor_is_the_higher_of_the_env_and_torch() -> None:
    env = env_spec("macos-arm64", "macos-arm64", "mps", macos="13.0")
    lock = LOCK.replace("torch==2.10.0", "torch==2.12.0")
    doc = probe_doc("arm64", "macos", version="2.12.0", local=None, cuda=None, mps_built=True)
    doc["distributions"][1]["version"] = "2.12.0"
    doc["os"]["version"] = "13.6"
    (found,) = [f for f in diagnose.diagnose(doc, ctx(env, lock)) if f.kind == "macos-floor"]
    assert found.why == "macOS 13.6 is below torch 2.12.0's wheels' floor 14.0"
    assert found.fix == "upgrade macOS to 14.0 or later, or pin an older torch and re-lock"
    # verify asks the same question (it used to read only the env's floor)
    checks = compare(ctx(env, lock), doc, suite_doc("mps"))
    assert failures(checks) == {"macos": found.why}


def test_tooling_and_the_project_itself_are_never_extra() -> None:
    doc = probe_doc()
    doc["distributions"] += [
        {"name": "distribute", "version": "0.7"},
        {"name": "My_Project", "version": "1.0"},
        {"name": "flash-attn", "version": "2.7.0"},
    ]
    checks = compare(ctx(project_name="my-project"), doc, suite_doc())
    assert checks["packages"]["extra"] == ["flash-attn"]


def test_verify_and_repro_name_the_same_causes(repo: Path) -> None:
    env = env_spec()
    doc = probe_doc(version="2.10.0+cpu", local="cpu", cuda=None, arch_list=[])
    doc["python"]["version"] = "3.12.1"
    doc["distributions"] = [d for d in doc["distributions"] if d["name"] != "numpy"]
    target = Target(env, "envs/locks/x.txt", "0" * 64, pins(LOCK), "archlock")
    kinds = [d.kind for d in repro_diagnose({"probe": doc}, target)]
    assert kinds == ["python-version", "torch", "packages-missing"]
    bad = failures(compare(ctx(env), doc, suite_doc()))
    assert sorted(bad) == ["interpreter", "packages", "torch_build"]
    assert bad["interpreter"] == "Python 3.12.1; env linux-amd64-cuda is locked for Python 3.11"


def test_findings_come_most_likely_cause_first_and_carry_what_was_compared() -> None:
    doc = probe_doc("arm64", version="2.9.0+cu128")
    doc["env"] = {"OMP_NUM_THREADS": "1"}
    found = diagnose.diagnose(doc, ctx())
    assert [f.kind for f in found] == ["interpreter-arch", "torch", "cuda-driver", "env-var"]
    arch = found[0]
    assert (arch.subject, arch.expected, arch.found, arch.severity) == (
        "interpreter",
        "x86_64",
        "arm64",
        "error",
    )
    assert found[-1].severity == "warning"


def test_every_variable_the_diagnosis_explains_is_one_the_probe_records() -> None:
    from archlock.inenv import probe

    unseen = [name for name in diagnose.ENV_EFFECTS if not probe.env_allowed(name)]
    assert unseen == []  # a name the probe never records could never be diagnosed


@pytest.mark.parametrize("driver", ["", ":", "five-seventy"])
def test_an_unreadable_driver_version_is_a_finding_not_a_crash(driver: str) -> None:
    doc = probe_doc()
    doc["gpu"] = {"nvidia_driver": driver}
    (found,) = [f for f in diagnose.diagnose(doc, ctx()) if f.kind == "cuda-driver"]
    assert (found.found, found.severity) == (driver, "warning")
    assert "is not a version" in found.why


@pytest.mark.parametrize("archs", [7, "x86_64", [7, "x86_64"], None])
def test_foreign_archs_of_any_shape_are_one_finding_not_a_crash(archs: object) -> None:
    doc = probe_doc()
    doc["binaries"] = {
        "foreign_total": 1,
        "expected_arch": "x86_64",
        "foreign": [{"path": "numpy/core/_multiarray.so", "archs": archs, "format": "ELF"}],
    }
    (found,) = [f for f in diagnose.diagnose(doc, ctx()) if f.kind == "compiled-arch"]
    assert found.why.startswith("1 compiled file(s) in site-packages are not x86_64: ")
    assert found.details[0].startswith("numpy/core/_multiarray.so (")
    assert "reinstall numpy " in found.fix


def test_a_torch_pin_that_is_not_a_version_sets_no_macos_floor_and_no_crash() -> None:
    env = env_spec("macos-arm64", "macos-arm64", "mps", macos="13.0")
    lock = LOCK.replace("torch==2.10.0", "torch==latest")
    doc = probe_doc("arm64", "macos", version="2.12.0", local=None, cuda=None, mps_built=True)
    doc["os"]["version"] = "12.7"
    (found,) = [f for f in diagnose.diagnose(doc, ctx(env, lock)) if f.kind == "macos-floor"]
    assert found.why == "macOS 12.7 is below the env's floor 13.0"


def failed_import(dist: str, module: str, error: str) -> dict[str, str]:
    return {"distribution": dist, "version": "0.0.3", "module": module, "error": error}


@pytest.mark.parametrize(
    ("failure", "fix"),
    [
        (  # a source-only CUDA extension built without torch: its backend never compiled
            failed_import(
                "adam-atan2",
                "adam_atan2",
                "ModuleNotFoundError: No module named 'adam_atan2_backend'",
            ),
            "adam-atan2 is installed without its module adam_atan2_backend (a source build that "
            "skipped its compiled part): build it with what it compiles against (torch, the CUDA "
            "toolchain) present, or install a prebuilt wheel; then resync",
        ),
        (
            failed_import("ext", "ext", "ModuleNotFoundError: No module named 'ext._C'"),
            "ext is installed without its module ext._C",
        ),
        (  # another distribution's module, which the project does not declare
            failed_import("plotter", "plotter", "ModuleNotFoundError: No module named 'pandas'"),
            "plotter imports pandas, which is not installed: add the distribution that provides "
            "it to the project's dependencies and re-lock",
        ),
        (
            failed_import("odd", "odd", "RuntimeError: no display"),
            "run `python -c 'import odd'` in this env for the whole error, then fix or replace "
            "odd in the lock (resync)",
        ),
    ],
)
def test_a_module_that_does_not_import_fails_verify_with_the_fix_for_its_cause(
    failure: dict[str, str], fix: str
) -> None:
    doc = probe_doc()
    doc["imports"] = {"checked": 12, "failed": [failure]}
    found = [f for f in diagnose.diagnose(doc, ctx()) if f.kind == "packages-import"]
    assert len(found) == 1 and found[0].severity == "error"
    assert found[0].fix.startswith(fix)
    module = failure["module"]
    assert found[0].why == (
        f"1 installed module(s) do not import: {failure['distribution']} 0.0.3: "
        f"import {module}: {failure['error']}"
    )
    check = compare(ctx(), doc, suite_doc())["imports"]
    assert (check["status"], check["why"], check["fix"]) == ("fail", found[0].why, found[0].fix)


def test_the_import_check_passes_skips_or_says_why_it_did_not_run() -> None:
    doc = probe_doc()
    doc["imports"] = {"checked": 12, "failed": []}
    assert compare(ctx(), doc, suite_doc())["imports"] == {
        "status": "pass",
        "why": "all 12 top-level modules import",
        "summary": "12 modules",
    }
    doc["imports"] = {"skipped": "--no-imports"}
    assert compare(ctx(), doc, suite_doc())["imports"]["status"] == "skipped"
    doc["imports"] = None
    doc["errors"] = {"imports": "OSError: no such file"}
    broken = compare(ctx(), doc, suite_doc())["imports"]
    assert broken["status"] == "fail" and broken["why"].endswith("OSError: no such file")
