"""archlock repro: reading reports, picking the env, every drift kind and its order, and the
reproduction plan (where, what, which command, which verdict) without docker or network.

Reports come from tests/fixtures/reports (real reports, see regenerate.py); each test edits the
fields it is about. Envs and locks are this repository's own (envs/*.yaml, envs/locks/*.txt).
"""

from __future__ import annotations

import copy
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from archlock import cli
from archlock.core.diagnose import KINDS
from archlock.core.lockfile import pins as lock_pins
from archlock.core.lockfile import same_version
from archlock.core.platforms import PLATFORMS
from archlock.core.project import Project
from archlock.errors import ConfigError
from archlock.lock import expect as lock_expect
from archlock.repro import run as rr
from archlock.repro import sandbox
from archlock.repro.drift import Target, diagnose
from archlock.repro.reportfile import load_report
from archlock.repro.repro import choose_env, make_target

REPO = Path(__file__).resolve().parents[2]
REPORTS = REPO / "tests" / "fixtures" / "reports"
PROJECT = Project.load(REPO)


def recorded(name: str = "linux-amd64-venv") -> dict[str, Any]:
    return json.loads((REPORTS / f"{name}.json").read_text())


def target(env_name: str) -> Target:
    env = next(e for e in PROJECT.all_envs() if e.name == env_name)
    lock = PROJECT.env_lock(env.name)
    return Target(
        env=env,
        lock_rel=f"envs/locks/{env.name}.txt",
        lock_sha256="0" * 64,
        pins=lock_pins(lock.read_text()),
        project_name=PROJECT.name,
        expect=lock_expect.load(PROJECT.locks_dir, env),  # the lock's build: CUDA 12.8 for 2.10
    )


def matching(report: dict[str, Any], tgt: Target, **torch: Any) -> dict[str, Any]:
    """The report edited to hold exactly the lock's packages and a torch that imports."""
    doc = copy.deepcopy(report)
    doc["probe"]["distributions"] = [
        {"name": n, "version": v, "wheel_tags": [], "installer": "uv"}
        for n, v in sorted(tgt.pins.items())
    ]
    doc["probe"]["torch"] = {
        "importable": True,
        "version": tgt.pins["torch"],
        "local": None,
        "cuda": None,
        "hip": None,
        "mps_built": False,
        "devices": [],
        **torch,
    }
    return doc


def cuda_report(**gpu: Any) -> tuple[dict[str, Any], Target]:
    tgt = target("linux-amd64-cuda")
    doc = matching(
        recorded(),
        tgt,
        cuda="12.8",
        cuda_available=True,
        device_count=1,
        devices=[{"index": 0, "name": "NVIDIA H100", "capability": "9.0", "supported": True}],
    )
    doc["probe"]["gpu"] = {"nvidia_driver": "570.86.15", **gpu}
    return doc, tgt


def mac_report() -> tuple[dict[str, Any], Target]:
    tgt = target("macos-arm64")
    return matching(recorded("macos-arm64-answers"), tgt, mps_built=True, mps_available=True), tgt


def kinds(doc: dict[str, Any], tgt: Target) -> list[str]:
    return [d.kind for d in diagnose(doc, tgt)]


# -- drift, one kind at a time --------------------------------------------------------------------


def test_a_report_that_matches_its_lock_has_no_drift() -> None:
    assert kinds(*cuda_report()) == []
    assert kinds(*mac_report()) == []


def test_rosetta_is_the_first_cause() -> None:
    doc, tgt = mac_report()
    doc["probe"]["python"].update(arch="x86_64", binary_archs=["x86_64", "arm64"])
    doc["probe"]["emulation"].update(emulated=True, by="rosetta", process_arch="x86_64")
    doc["probe"]["env"] = {"PYTORCH_ENABLE_MPS_FALLBACK": "1"}
    drift = diagnose(doc, tgt)
    assert [d.kind for d in drift] == ["interpreter-arch", "env-var"]
    assert "under Rosetta 2" in drift[0].title and "nox -s setup-mac" in drift[0].fix


def test_wrong_arch_interpreter_on_linux() -> None:
    doc, tgt = cuda_report()
    doc["probe"]["python"]["arch"] = "arm64"
    assert kinds(doc, tgt)[0] == "interpreter-arch"


def test_python_minor_differs() -> None:
    doc, tgt = cuda_report()
    doc["probe"]["python"]["version"] = "3.12.4"
    drift = diagnose(doc, tgt)
    assert drift[0].kind == "python-version" and "uv venv --python 3.11" in drift[0].fix


@pytest.mark.parametrize(
    ("version", "cuda", "says"),
    [
        ("2.10.0+cpu", None, "torch 2.10.0+cpu (CPU-only build) is installed"),
        ("2.13.0+cpu", None, "torch 2.13.0+cpu (CPU-only build) is installed"),
        ("2.10.0", "12.6", "torch 2.10.0 (CUDA 12.6 build) is installed"),
    ],
)
def test_torch_version_or_build_differs(version: str, cuda: str | None, says: str) -> None:
    doc, tgt = cuda_report()
    doc["probe"]["torch"].update(version=version, cuda=cuda)
    for dist in doc["probe"]["distributions"]:
        if dist["name"] == "torch":
            dist["version"] = version
    drift = diagnose(doc, tgt)
    assert drift[0].kind == "torch" and drift[0].title.startswith(says)
    assert "pins torch 2.10.0 (CUDA 12.8 build)" in drift[0].title
    assert (
        drift[0].fix == "in the env: uv pip sync --require-hashes envs/locks/linux-amd64-cuda.txt"
    )


def test_torch_without_mps_on_a_mac_env() -> None:
    doc, tgt = mac_report()
    doc["probe"]["torch"]["mps_built"] = False
    assert kinds(doc, tgt)[0] == "torch"


def test_torch_build_known_from_the_label_when_it_does_not_import() -> None:
    doc, tgt = cuda_report()
    doc["probe"]["torch"] = {
        "importable": False,
        "error": "ImportError: libcudnn.so.9: cannot open",
    }
    next(d for d in doc["probe"]["distributions"] if d["name"] == "torch")["version"] = "2.10.0+cpu"
    assert kinds(doc, tgt)[:2] == ["torch", "torch-import"]


def test_packages_missing_different_extra_and_what_is_never_extra() -> None:
    doc, tgt = cuda_report()
    dists = [d for d in doc["probe"]["distributions"] if d["name"] != "sympy"]
    next(d for d in dists if d["name"] == "numpy")["version"] = "1.26.4"
    next(d for d in dists if d["name"] == "filelock")["version"] = "4.2.11.0"  # the same version
    dists += [
        {"name": n, "version": v}
        for n, v in (("flash-attn", "2.7.0"), ("pip", "24.0"), ("archlock", "0.1.0"))
    ]
    doc["probe"]["distributions"] = dists
    drift = diagnose(doc, tgt)
    assert [d.kind for d in drift] == ["packages-missing", "packages-different", "packages-extra"]
    assert drift[0].details == ("sympy==1.14.0",)
    assert drift[1].details == ("numpy 1.26.4 (lock: 2.4.6)",)
    assert drift[2].details == (
        "flash-attn 2.7.0",
    )  # pip is tooling, archlock is the project itself


def test_compiled_files_of_another_arch() -> None:
    doc, tgt = cuda_report()
    doc["probe"]["binaries"] = {
        "compiled": 9,
        "expected_arch": "x86_64",
        "expected_format": "elf",
        "foreign_total": 1,
        "foreign": [
            {
                "path": "numpy/_core/_multiarray_umath.so",
                "site": "~/v",
                "format": "elf",
                "archs": ["arm64"],
            }
        ],
    }
    drift = diagnose(doc, tgt)
    assert drift[0].kind == "compiled-arch" and "reinstall numpy" in drift[0].fix


@pytest.mark.parametrize(
    ("version", "drifts"), [("13.6", ["macos-floor"]), ("14.0", []), ("15.1", [])]
)
def test_macos_below_the_floor(version: str, drifts: list[str]) -> None:
    doc, tgt = mac_report()
    doc["probe"]["os"]["version"] = version
    assert kinds(doc, tgt) == drifts


@pytest.mark.parametrize(
    ("driver", "says"),
    [
        (None, "no NVIDIA driver is loaded"),
        ("470.57.02", "too old for CUDA 12.8 (needs >= 525.60.13)"),
        ("535.54.03", "older than CUDA 12.8's own (570.26)"),
    ],
)
def test_cuda_driver_too_old(driver: str | None, says: str) -> None:
    doc, tgt = cuda_report(nvidia_driver=driver)
    drift = diagnose(doc, tgt)
    assert [d.kind for d in drift] == ["cuda-driver"] and says in drift[0].title


def test_gpu_without_kernels_in_the_build() -> None:
    doc, tgt = cuda_report()
    doc["probe"]["torch"].update(
        arch_list=["sm_75", "sm_80", "sm_90"],
        devices=[{"index": 0, "name": "Tesla K80", "capability": "3.7", "supported": False}],
    )
    drift = diagnose(doc, tgt)
    assert [d.kind for d in drift] == ["cuda-arch"] and "Tesla K80" in drift[0].title


def test_behaviour_changing_variables_by_platform() -> None:
    doc, tgt = cuda_report()
    doc["probe"]["env"] = {
        "OMP_NUM_THREADS": "1",
        "CUDA_VISIBLE_DEVICES": "",
        "PYTORCH_ENABLE_MPS_FALLBACK": "1",
        "VIRTUAL_ENV": "~/v",
        "TORCHINDUCTOR_FX_GRAPH_CACHE": "1",
    }
    titles = [d.title for d in diagnose(doc, tgt)]
    assert [t.split("=")[0] for t in titles] == [
        "CUDA_VISIBLE_DEVICES",
        "OMP_NUM_THREADS",
        "TORCHINDUCTOR_FX_GRAPH_CACHE",
    ]


def test_qemu_emulation_is_the_last_note() -> None:
    doc, tgt = cuda_report()
    doc["probe"]["emulation"].update(emulated=True, by="qemu-user", host_arch="arm64")
    doc["probe"]["env"] = {"OMP_NUM_THREADS": "1"}
    assert kinds(doc, tgt) == ["env-var", "emulation"]


def test_every_kind_at_once_comes_out_in_impact_order() -> None:
    doc, tgt = cuda_report(nvidia_driver="535.54.03")
    doc["probe"]["python"].update(arch="arm64", version="3.12.1")
    doc["probe"]["torch"].update(version="2.13.0+cpu", cuda=None)
    doc["probe"]["distributions"] = doc["probe"]["distributions"][1:] + [
        {"name": "extra-thing", "version": "1"}
    ]
    doc["probe"]["binaries"] = {
        "foreign_total": 1,
        "foreign": [{"path": "a/b.so", "archs": ["x86_64"]}],
    }
    doc["probe"]["env"] = {"LD_PRELOAD": "/usr/lib/libfoo.so"}
    doc["probe"]["emulation"].update(emulated=True, by="qemu-user", host_arch="x86_64")
    found = kinds(doc, tgt)
    order = [kind for kind, _ in KINDS]
    assert found == sorted(found, key=order.index)
    assert found[:3] == ["interpreter-arch", "python-version", "torch"] and found[-1] == "emulation"


def test_versions_compare_as_releases() -> None:
    assert (
        same_version("1.0", "1.0.0")
        and not same_version("2.10.0+cpu", "2.10.0")
        and not same_version("1.1", "1.10")
    )


# -- reading a report ------------------------------------------------------------------------------


def broken(tmp_path: Path, edit) -> Path:
    doc = recorded()
    edit(doc)
    path = tmp_path / "r.json"
    path.write_text(json.dumps(doc))
    return path


@pytest.mark.parametrize(
    ("edit", "says"),
    [
        (
            lambda d: d.update(schema="archlock.report/2"),
            "schema: 'archlock.report/2' is newer than this archlock reads",
        ),
        (
            lambda d: d.update(schema="something/1"),
            "schema: 'something/1' is not an archlock report",
        ),
        (lambda d: d["probe"]["python"].pop("version"), "probe.python.version: missing"),
        (
            lambda d: d["probe"].update(distributions={}),
            "probe.distributions: expected a list, found dict",
        ),
        (
            lambda d: d["probe"]["distributions"].append({"name": "x"}),
            "probe.distributions[1].version: missing",
        ),
        (
            lambda d: d["command"].update(exit_code="1"),
            "command.exit_code: expected an integer, found str",
        ),
        (
            lambda d: d["command"].update(exit_code=True),
            "command.exit_code: expected an integer, found bool",
        ),
        (lambda d: d["command"]["argv"].append(3), "command.argv[3]: expected a string, found int"),
        (
            lambda d: d["probe"].update(schema="archlock.probe/9"),
            "probe.schema: 'archlock.probe/9' is not archlock.probe/1",
        ),
        (lambda d: d.pop("probe"), "probe: missing"),
    ],
)
def test_a_malformed_report_is_one_line_naming_file_and_key(
    tmp_path: Path, edit, says: str
) -> None:
    path = broken(tmp_path, edit)
    with pytest.raises(ConfigError) as caught:
        load_report(path)
    line = caught.value.line()
    assert line.startswith(f"{path}: {says}") and "\n" not in line


def test_not_json_and_not_there(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "r.json"
    path.write_text("{'single': 'quotes'}")
    assert cli.main(["--project", str(REPO), "repro", str(path), "--diff-only"]) == 2
    err = capsys.readouterr().err
    assert (
        err.count("\n") == 1
        and f"{path}: not JSON (line 1 column 2" in err
        and "Traceback" not in err
    )
    with pytest.raises(ConfigError, match="no such report file"):
        load_report(tmp_path / "missing.json")


def test_a_bare_probe_document_is_a_report_without_lock_or_command(tmp_path: Path) -> None:
    path = tmp_path / "probe.json"
    path.write_text(json.dumps(recorded()["probe"]))
    report = load_report(path)
    assert report["command"] is None and report["platform"] == "linux-amd64"


# -- which env -------------------------------------------------------------------------------------


def test_env_named_by_report_then_platform_then_flag() -> None:
    report = recorded()
    report["lock"]["env"] = "linux-arm64-cpu"
    assert choose_env(PROJECT, report, None, Path("r.json"))[0].name == "linux-arm64-cpu"
    report["lock"]["env"] = "gone"
    env, how = choose_env(PROJECT, report, None, Path("r.json"))
    assert env.name == "linux-amd64-cuda" and how.startswith("matched by the report's platform")
    assert choose_env(PROJECT, report, "macos-arm64", Path("r.json"))[1] == "chosen with --env"
    report["probe"]["os"]["name"] = "freebsd"
    with pytest.raises(ConfigError, match=r"r.json: platform: no env in .* targets"):
        choose_env(PROJECT, report, None, Path("r.json"))


def test_a_lock_changed_since_the_report_is_said() -> None:
    report = recorded()
    env = next(e for e in PROJECT.all_envs() if e.name == "linux-amd64-cuda")
    report["lock"]["sha256"] = "f" * 64
    tgt = make_target(PROJECT, env, report)
    assert (
        tgt.lock_rel == "envs/locks/linux-amd64-cuda.txt"
        and "differs from this checkout's" in tgt.notes[0]
    )


# -- where and what to reproduce ------------------------------------------------------------------


def test_macos_report_on_linux_is_refused_plainly_with_the_approximation() -> None:
    report, _ = mac_report()
    said = rr.where_to_run(report, PLATFORMS["linux-amd64"], rr.Options())
    assert (
        isinstance(said, str)
        and "cannot be reproduced in a container" in said
        and "--approximate linux-arm64" in said
    )
    approx = rr.where_to_run(
        report, PLATFORMS["linux-amd64"], rr.Options(approximate="linux-arm64")
    )
    assert (
        approx.kind == "image"
        and approx.platform.docker_platform == "linux/arm64"
        and "no MPS" in approx.approximate
    )
    on_mac = rr.where_to_run(report, PLATFORMS["macos-arm64"], rr.Options())
    assert (on_mac.kind, on_mac.platform.name) == ("venv", "macos-arm64")


def test_linux_report_goes_to_an_image_of_its_platform() -> None:
    report = recorded()
    assert (
        rr.where_to_run(report, PLATFORMS["macos-arm64"], rr.Options()).platform.docker_platform
        == "linux/amd64"
    )
    assert rr.where_to_run(report, PLATFORMS["linux-amd64"], rr.Options(venv=True)).kind == "venv"
    with pytest.raises(
        ConfigError, match="--venv: this host is linux-arm64, the report is linux-amd64"
    ):
        rr.where_to_run(report, PLATFORMS["linux-arm64"], rr.Options(venv=True))


def test_report_versions_leave_out_local_builds_and_the_project() -> None:
    report = recorded()
    report["probe"]["distributions"] += [
        {"name": "torch", "version": "2.13.0+cpu"},
        {"name": "archlock", "version": "0.1.0"},
    ]
    reqs = rr.report_requirements(report, "archlock", rr.Options())
    assert reqs.lines == ["tinydep==1.0"] and reqs.python == "3.11" and not reqs.hashes
    assert [pin for pin, _ in reqs.left_out] == ["torch==2.13.0+cpu", "archlock==0.1.0"]
    assert "not on PyPI" in reqs.left_out[0][1]
    with_links = rr.report_requirements(report, "archlock", rr.Options(find_links=Path("/w")))
    assert "torch==2.13.0+cpu" in with_links.lines


def test_preflight_names_what_pypi_cannot_give() -> None:
    answers = iter(
        [
            (
                1,
                "cause: Because there is no version of six==0.0.999 and you require six==0.0.999, "
                "we can conclude ...",
            ),
            (
                1,
                "cause: Because mlx==0.20.0 has no wheels "
                "with a matching platform tag (e.g., `manylinux_2_28_x86_64`)",
            ),
            (0, ""),
        ]
    )

    def fake_uv(cmd, **_):
        code, err = next(answers)
        assert "--no-deps" in cmd and "x86_64-manylinux_2_28" in cmd
        return subprocess.CompletedProcess(cmd, code, "", err)

    reqs = rr.Requirements(
        ["six==0.0.999", "mlx==0.20.0", "numpy==2.4.6"],
        hashes=False,
        source="report",
        python="3.11",
    )
    out = rr.preflight(reqs, PLATFORMS["linux-amd64"], rr.Options(), run=fake_uv)
    assert out.lines == ["numpy==2.4.6"]
    assert out.left_out == [
        ("six==0.0.999", "this version is not on PyPI (or the index given)"),
        ("mlx==0.20.0", "no wheel of this version for linux/amd64"),
    ]


def test_preflight_offline_is_a_note_not_a_failure() -> None:
    def offline(cmd, **_):
        return subprocess.CompletedProcess(
            cmd, 2, "", "error: Failed to fetch: `https://index.invalid/simple/six/`"
        )

    reqs = rr.preflight(
        rr.Requirements(["six==1.16.0"], False, "report", "3.11"),
        PLATFORMS["linux-amd64"],
        rr.Options(),
        run=offline,
    )
    assert reqs.lines == ["six==1.16.0"] and "could not check the versions" in reqs.notes[0]


def test_rerun_maps_the_teammates_interpreter_and_project_paths() -> None:
    report = recorded()
    report["project"]["root"] = "~/proj"
    report["probe"]["python"]["prefix"] = "~/proj/.venv"
    report["command"]["argv"] = [
        "~/proj/.venv/bin/pytest",
        "~/proj/tests/test_x.py",
        "-k",
        "~/elsewhere",
    ]
    assert rr.rerun_argv(report, "/opt/venv/bin", "/app") == [
        "/opt/venv/bin/pytest",
        "/app/tests/test_x.py",
        "-k",
        "~/elsewhere",
    ]
    report["command"]["argv"] = ["python3.11", "train.py"]
    assert rr.rerun_argv(report, "/opt/venv/bin", None) == ["/opt/venv/bin/python", "train.py"]


def test_carried_env_drops_machine_paths() -> None:
    report = recorded()
    report["probe"]["env"] = {"OMP_NUM_THREADS": "2", "PYTHONPATH": "~/lib", "VIRTUAL_ENV": "~/v"}
    assert rr.carried_env(report) == ({"OMP_NUM_THREADS": "2"}, ["PYTHONPATH", "VIRTUAL_ENV"])


# -- verdicts --------------------------------------------------------------------------------------

THEIRS = [
    '  File "~/p/.venv/lib/python3.11/site-packages/x/y.py", line 3, in <module>',
    "ImportError: cannot import name 'Z' from 'x.y' "
    "(~/p/.venv/lib/python3.11/site-packages/x/y.py)",
]
OURS = [
    '  File "/opt/venv/lib/python3.11/site-packages/x/y.py", line 3, in <module>',
    "ImportError: cannot import name 'Z' from 'x.y' "
    "(/opt/venv/lib/python3.11/site-packages/x/y.py)",
]


def reqs(source: str = "report", left_out: int = 0) -> rr.Requirements:
    return rr.Requirements(["x==1"], source == "lock", source, "3.11", [("a==1", "why")] * left_out)


def test_signature_ignores_paths_and_addresses() -> None:
    assert (
        rr.signature(THEIRS)
        == rr.signature(OURS)
        == "ImportError: cannot import name 'Z' from 'x.y' (y.py)"
    )
    assert rr.signature(["Segmentation fault at 0x7f00ab", ""]) == "Segmentation fault at 0x?"


@pytest.mark.parametrize(
    ("before", "now", "tail", "source", "status"),
    [
        (1, 1, OURS, "report", "reproduced"),
        (1, 2, OURS, "report", "fails-differently"),
        (1, 1, ["ValueError: other"], "report", "fails-differently"),
        (1, 0, ["ok"], "report", "does-not-fail"),
        (1, 0, ["ok"], "lock", "fixed-by-lock"),
        (0, 0, ["ok"], "report", "both-pass"),
    ],
)
def test_verdicts(before: int, now: int, tail: list[str], source: str, status: str) -> None:
    assert (
        rr.verdict({"exit_code": before, "output_tail": THEIRS}, now, tail, reqs(source))["status"]
        == status
    )


def test_a_partial_reproduction_says_so() -> None:
    said = rr.verdict({"exit_code": 1, "output_tail": THEIRS}, 1, OURS, reqs(left_out=2))
    assert said["text"].endswith("(partial: 2 package(s) left out)")


# -- images, settings ------------------------------------------------------------------------------


def test_dockerfile_installs_exactly_the_pins_with_the_ca_secret() -> None:
    text = sandbox.dockerfile(
        "archlock/debian-bookworm:amd64",
        "archlock/uv:0.13.9-amd64",
        reqs("lock"),
        rr.Options(),
        {"io.archlock.repro.env": "linux-amd64-cpu"},
    )
    assert "FROM archlock/uv:0.13.9-amd64 AS uv\nFROM archlock/debian-bookworm:amd64\n" in text
    assert (
        "--mount=type=secret,id=ca-bundle" in text
        and "SSL_CERT_FILE=/run/secrets/ca-bundle" in text
    )
    assert (
        "uv venv --python 3.11 /opt/venv" in text
        and "uv pip sync --python /opt/venv/bin/python --require-hashes" in text
    )
    assert "# syntax" not in text
    with pytest.raises(ConfigError):
        sandbox.dockerfile("evil image; rm -rf /", "uv", reqs(), rr.Options(), {})


def test_ca_bundle_and_uv_image_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # a project reads its settings once, environment included: each state gets its own project
    monkeypatch.delenv(rr.cabundle.CA_ENV, raising=False)
    monkeypatch.delenv(rr.UV_IMAGE_ENV, raising=False)
    project = Project.load(REPO)
    assert rr.default_ca_bundle(project, "none") is None
    pem = tmp_path / "ca.pem"
    pem.write_text("x")
    assert rr.default_ca_bundle(project, str(pem)) == pem
    with pytest.raises(ConfigError, match="CA bundle .* not found"):
        rr.default_ca_bundle(project, str(tmp_path / "nope.pem"))
    # the uv image: the same setting render reads, the same environment override
    assert rr.default_uv_image(project, None) == rr.DEFAULT_UV_IMAGE
    monkeypatch.setenv(rr.cabundle.CA_ENV, str(pem))
    monkeypatch.setenv(rr.UV_IMAGE_ENV, "registry.example/uv:1")
    project = Project.load(REPO)
    assert rr.default_ca_bundle(project, None) == pem
    assert rr.default_uv_image(project, None) == "registry.example/uv:1"
    assert rr.default_uv_image(project, "other/uv:2") == "other/uv:2"


def test_diff_only_prints_the_drift_with_fixes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = recorded()
    report["probe"]["env"] = {"OMP_NUM_THREADS": "1"}
    path = tmp_path / "r.json"
    path.write_text(json.dumps(report))
    assert (
        cli.main(
            [
                "--project",
                str(REPO),
                "repro",
                str(path),
                "--diff-only",
                "--json",
                str(tmp_path / "o.json"),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert (
        "env:  linux-amd64-cuda (matched by the report's platform, linux-amd64; "
        "the report's env linux-amd64-cpu has no lock here)" in out
    )
    assert (
        "  1. [torch] torch is not installed; envs/locks/linux-amd64-cuda.txt pins torch 2.10.0"
        in out
    )
    assert (
        "     fix: in the env: uv pip sync --require-hashes envs/locks/linux-amd64-cuda.txt" in out
    )
    result = json.loads((tmp_path / "o.json").read_text())
    assert result["schema"] == "archlock.repro/1" and result["reproduction"] is None
    assert [d["kind"] for d in result["drift"]] == [
        "torch",
        "packages-missing",
        "packages-extra",
        "cuda-driver",
        "env-var",
    ]


def test_as_locked_approximation_uses_the_lock_of_the_platform_it_runs_on() -> None:
    from archlock.repro.repro import locked_env_for

    mac = next(e for e in PROJECT.all_envs() if e.name == "macos-arm64")
    assert locked_env_for(PROJECT, mac, PLATFORMS["macos-arm64"]) is mac
    assert locked_env_for(PROJECT, mac, PLATFORMS["linux-arm64"]).name == "linux-arm64-cpu"
    assert (
        sandbox.image_tag("ab" * 32, PLATFORMS["linux-arm64"], "lock")
        == "archlock-repro/linux-arm64:lock-abababababab"
    )


def test_a_report_whose_output_tail_is_not_a_list_is_one_line(tmp_path: Path) -> None:
    """Found by tests/fuzz: `command.output_tail: true` was iterated before it was checked."""
    from archlock.errors import ConfigError
    from archlock.repro.reportfile import load_report

    source = REPORTS / "linux-amd64-venv.json"
    doc = json.loads(source.read_text(encoding="utf-8"))
    doc["command"] = {"argv": ["true"], "exit_code": 0, "output_tail": True}
    path = tmp_path / "report.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(ConfigError, match="command.output_tail: expected a list"):
        load_report(path)
