"""Does the locked build fit its env and its machines? Lock refuses early; verify says the same.

Recorded machine profiles (tests/fixtures/machines) meet trimmed real pylocks of torch 2.10 and
2.15 (tests/fixtures/pylocks). Every failure's fix must be true for its cause: re-syncing from
the lock only when the installed env differs from the lock, never when the lock is what's wrong.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from test_verify import probe_doc, suite_doc

from archlock.core.diagnose import Context
from archlock.core.rules.build import Expectations, Floor, build_misfit
from archlock.core.rules.machine import Gpu, Machine
from archlock.core.spec import EnvSpec, load_spec
from archlock.errors import ConfigError
from archlock.lock import expect, fit, machines
from archlock.verify.checks import check_machine, compare

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
DEFAULT_ENVS = Path(__file__).resolve().parents[2] / "src" / "archlock" / "data" / "envs"
RESYNC = "rebuild the image from the lock: archlock build --env {name}"


def env(name: str, **over: Any) -> EnvSpec:
    return dataclasses.replace(load_spec(DEFAULT_ENVS / f"{name}.yaml"), **over)


def lock_of(spec: EnvSpec, torch: str) -> Expectations:
    platform = spec.platform.name
    text = (FIXTURES / "pylocks" / f"torch-{torch}-{platform}.toml").read_text(encoding="utf-8")
    return expect.derive(spec, text)


def machine(name: str) -> Machine:
    path = FIXTURES / "machines" / f"{name}.json"
    return machines.from_profile(json.loads(path.read_text(encoding="utf-8")), str(path))


def refusal(spec: EnvSpec, torch: str, *names: str) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        fit.refuse(spec, lock_of(spec, torch), [machine(n) for n in names])
    return caught.value


# -- lock time: the build against the env ---------------------------------------------------


def test_a_cpu_env_whose_lock_resolves_a_cuda_build_is_refused_with_the_cpu_index_fix() -> None:
    error = refusal(env("linux-arm64-cpu"), "2.15.0")
    assert "the lock resolves torch 2.15.0, a CUDA 13.2 build" in error.message
    assert (
        "for cpu env linux-arm64-cpu" in error.message
        and "GB of nvidia-*/cuda-* wheels" in error.message
    )
    assert "PyTorch CPU index" in error.fix and "index: pytorch-cpu, variant: cpu" in error.fix
    assert "accept-cuda-stack: true" in error.fix and "rebuild" not in error.fix


def test_accept_cuda_stack_keeps_the_cuda_build_with_a_note() -> None:
    spec = env("linux-arm64-cpu", accept_cuda_stack=True)
    fit.refuse(spec, lock_of(spec, "2.15.0"), [])
    (note,) = fit.notes(spec, lock_of(spec, "2.15.0"), [])
    assert "keeping torch 2.15.0's CUDA 13.2 build" in note


def test_torch_2_10_on_graviton_is_the_cpu_build_and_fits() -> None:
    spec = env("linux-arm64-cpu", machines=("graviton-al2023",))
    fit.refuse(spec, lock_of(spec, "2.10.0"), [machine("graviton-al2023")])


def test_a_cuda_env_whose_index_serves_a_cpu_build_names_the_index() -> None:
    spec = env("linux-amd64-cuda", torch_index="mirror")
    cpu = Expectations("x", "linux-amd64", "2.13.0+cpu", "cpu", None, "its local version +cpu")
    misfit = build_misfit(spec, cpu)
    assert misfit and "index 'mirror' serves no CUDA build" in misfit.why
    assert "torch.variant" in misfit.fix


# -- lock time: the build against recorded machines -----------------------------------------


def test_a_gpu_server_whose_driver_is_too_old_is_refused_naming_the_driver_needed() -> None:
    error = refusal(env("linux-amd64-cuda"), "2.15.0", "gpu-old-driver")
    assert error.message.endswith(
        "NVIDIA driver 535.183.01 on gpu-old-driver is too old for torch 2.15.0's CUDA 13.2 "
        "build: CUDA 13 needs driver >= 580.65.06"
    )
    assert error.fix.startswith("upgrade the NVIDIA driver on gpu-old-driver to >= 580.65.06")
    assert "lock a torch build for CUDA 12.x" in error.fix  # what driver 535 does run


def test_the_same_server_runs_torch_2_10s_cuda_12_8_build() -> None:
    spec = env("linux-amd64-cuda")
    fit.refuse(spec, lock_of(spec, "2.10.0"), [machine("gpu-old-driver"), machine("gpu-h100")])


def test_a_gpu_older_than_the_cuda_release_supports_is_refused() -> None:
    error = refusal(env("linux-amd64-cuda"), "2.15.0", "gpu-volta")
    assert "Tesla V100-SXM2-16GB on gpu-volta has compute capability 7.0" in error.message
    assert "CUDA 13.2 build carries no kernels below 7.5" in error.message
    assert error.fix.startswith("lock a torch build for CUDA 12.9")
    fit.refuse(
        env("linux-amd64-cuda"), lock_of(env("linux-amd64-cuda"), "2.10.0"), [machine("gpu-volta")]
    )


def test_a_gpu_newer_than_the_cuda_release_knows_is_refused() -> None:
    spec = env("linux-amd64-cuda")
    old = dataclasses.replace(lock_of(spec, "2.10.0"), cuda="12.6", capabilities=("5.0", "9.0"))
    blackwell = Machine(
        "b200",
        "test",
        "linux",
        "x86_64",
        driver="580.95.05",
        gpus=(Gpu("NVIDIA B200", "10.0"),),
    )
    (misfit,) = fit.machine_misfits(spec, old, blackwell, "profile")
    assert misfit.why.endswith("carries no kernels above 9.0")
    assert misfit.fix.startswith("lock a torch build for a newer CUDA release")


def test_a_cuda_env_serving_a_machine_without_a_driver_is_refused() -> None:
    spec = env("linux-amd64-cuda")
    bare = dataclasses.replace(machine("gpu-h100"), driver=None, gpus=())
    (misfit,) = fit.machine_misfits(spec, lock_of(spec, "2.15.0"), bare, "profile")
    assert (
        misfit.why
        == "machine gpu-h100 has no NVIDIA driver; torch's CUDA 13.2 build would run on its CPU"
    )


def test_a_mac_below_the_wheels_macos_floor_is_refused() -> None:
    error = refusal(env("macos-arm64"), "2.15.0", "mac-ventura")
    assert error.message.endswith(
        "macOS 13.6.7 on mac-ventura is below 14.0, the floor of torch's macosx_14_0_arm64 wheel"
    )
    assert error.fix.startswith("upgrade macOS on mac-ventura to 14.0 or later")
    spec = env("macos-arm64")
    fit.refuse(spec, lock_of(spec, "2.10.0"), [machine("mac-ventura")])  # 2.10 has macOS 11 wheels


def test_a_host_with_glibc_below_the_manylinux_tag_is_refused() -> None:
    error = refusal(env("linux-arm64-cpu"), "2.10.0", "graviton-al2")
    assert error.message.endswith(
        "glibc 2.26 on graviton-al2 is below 2.28, "
        "the floor of torch's manylinux_2_28_aarch64 wheel"
    )
    assert error.fix.startswith("run the env in its image there (archlock build")


def test_a_machine_of_another_platform_is_refused() -> None:
    error = refusal(env("linux-amd64-cuda"), "2.10.0", "graviton-al2023")
    assert (
        "machine graviton-al2023" in error.message
        and "is linux-arm64; env linux-amd64-cuda targets linux-amd64" in error.message
    )
    assert error.fix.startswith("remove graviton-al2023 from machines in linux-amd64-cuda.yaml")


def test_every_misfit_is_named_in_one_line() -> None:
    error = refusal(env("linux-arm64-cpu"), "2.15.0", "graviton-al2")
    assert "(and 1 more: glibc 2.26 on graviton-al2" in error.message
    assert "\n" not in error.message


def test_a_virtual_mac_gets_a_note_not_a_refusal() -> None:
    spec = env("macos-arm64")
    (note,) = fit.notes(spec, lock_of(spec, "2.15.0"), [machine("mac-vm")])
    assert "machine mac-vm is a virtual Mac: MPS is not usable there" in note


def test_a_missing_or_broken_profile_names_the_probe_command(tmp_path: Path) -> None:
    spec = env("linux-amd64-cuda", machines=("gpu-a100",))
    with pytest.raises(ConfigError) as caught:
        machines.load_all(tmp_path / "envs", spec)
    assert "machines: no profile 'gpu-a100'" in caught.value.message
    assert caught.value.fix.startswith("run `archlock probe --profile gpu-a100` on that machine")
    (tmp_path / "envs" / "machines").mkdir(parents=True)
    (tmp_path / "envs" / "machines" / "gpu-a100.json").write_text('{"schema": "archlock.probe/1"}')
    with pytest.raises(ConfigError, match="not a machine profile: schema is 'archlock.probe/1'"):
        machines.load_all(tmp_path / "envs", spec)


# -- verify time: each wrong build or machine, with the fix true for its cause ----------------


def torch_facts(version: str, cuda: str | None = None, **over: Any) -> dict[str, Any]:
    facts = {
        "importable": True,
        "version": version,
        "local": version.partition("+")[2] or None,
        "cuda": cuda,
        "hip": None,
        "mps_built": False,
        "devices": [],
    }
    return {**facts, **over}


def probe(
    torch: dict[str, Any],
    driver: str | None = None,
    glibc: str = "2.36",
    os_name: str = "linux",
    version: str = "12",
) -> dict[str, Any]:
    return {
        "os": {"name": os_name, "version": version, "libc": {"name": "glibc", "version": glibc}},
        "emulation": {"host_arch": "x86_64"},
        "torch": torch,
        "gpu": {"nvidia_driver": driver},
    }


def verify_torch(spec: EnvSpec, exp: Expectations | None, version: str, cuda: str | None) -> dict:
    """verify's torch_build check for an image holding torch `version` (CUDA `cuda`)."""
    doc = probe_doc(
        "arm64" if "arm64" in spec.name else "x86_64",
        version=version,
        local=version.partition("+")[2] or None,
        cuda=cuda,
        arch_list=[],
    )
    next(d for d in doc["distributions"] if d["name"] == "torch")["version"] = version
    pins = {"torch": exp.torch if exp and exp.torch else version}
    ctx = Context(spec, pins, "envs/locks/x.txt", RESYNC.format(name=spec.name), expect=exp)
    return compare(ctx, doc, suite_doc())["torch_build"]


def test_verify_image_differs_from_its_lock_fix_is_rebuild() -> None:
    spec = env("linux-amd64-cuda")
    check = verify_torch(spec, lock_of(spec, "2.15.0"), "2.15.0", "12.8")
    assert check["status"] == "fail"
    assert check["why"] == "torch 2.15.0 (CUDA 12.8 build); the lock has a CUDA 13.2 build"
    assert check["fix"] == "rebuild the image from the lock: archlock build --env linux-amd64-cuda"


def test_verify_lock_itself_wrong_fix_names_the_index_not_a_rebuild() -> None:
    """A cpu env locked before lock refused CUDA builds: the image IS the lock."""
    spec = env("linux-arm64-cpu")
    check = verify_torch(spec, lock_of(spec, "2.15.0"), "2.15.0", "13.2")
    assert check["status"] == "fail"
    assert "the lock resolves torch 2.15.0, a CUDA 13.2 build" in check["why"]
    assert "PyTorch CPU index" in check["fix"] and "rebuild" not in check["fix"]


def test_verify_accepted_cuda_stack_passes() -> None:
    spec = env("linux-arm64-cpu", accept_cuda_stack=True)
    check = verify_torch(spec, lock_of(spec, "2.15.0"), "2.15.0", "13.2")
    assert (check["status"], check["why"]) == ("pass", "torch 2.15.0 (CUDA 13.2 build)")


def verify_checks(
    spec: EnvSpec, doc: dict[str, Any], exp: Expectations | None, where: str
) -> dict[str, Any]:
    """verify's checks of a machine (its probe `doc`) for an env locked as `exp`."""
    pins = {"torch": exp.torch if exp and exp.torch else "2.15.0"}
    resync = RESYNC.format(name=spec.name)
    ctx = Context(spec, pins, "envs/locks/x.txt", resync, True, True, expect=exp, where=where)
    return compare(ctx, doc, suite_doc()) | {"machine": check_machine(doc, ctx)}


def test_verify_without_expectations_falls_back_to_the_accelerator() -> None:
    spec = env("linux-arm64-cpu")
    check = verify_torch(spec, None, "2.15.0", "13.2")
    assert check["why"] == "torch 2.15.0 (CUDA 13.2 build); linux-arm64-cpu is a CPU env"
    doc = probe(torch_facts("2.15.0"))
    assert verify_checks(spec, doc, None, "host")["machine"]["status"] == "skipped"


def test_verify_driver_too_old_is_the_device_check_and_its_fix_is_the_driver() -> None:
    spec = env("linux-amd64-cuda")
    doc = probe(torch_facts("2.15.0", "13.2", cuda_available=False), driver="535.183.01")
    checks = verify_checks(spec, doc, lock_of(spec, "2.15.0"), "image")
    device = checks["device"]
    assert (
        device["status"] == "fail" and "too old for CUDA 13.2 (needs >= 580.65.06)" in device["why"]
    )
    assert device["fix"].startswith("upgrade the NVIDIA driver on this machine to >= 580.65.06")
    assert "lock a torch build for CUDA 12.x" in device["fix"]  # the same fix lock time gives
    assert checks["machine"]["status"] == "pass"  # one fact, one check


def test_verify_gpu_without_kernels_fix_is_another_cuda_build() -> None:
    spec = env("linux-amd64-cuda")
    v100 = [{"name": "Tesla V100", "capability": "7.0", "supported": False}]
    doc = probe(
        torch_facts("2.15.0", "13.2", devices=v100, cuda_available=True), driver="580.95.05"
    )
    checks = verify_checks(spec, doc, lock_of(spec, "2.15.0"), "host")
    device = checks["device"]
    assert "carries no kernels below 7.5: Tesla V100 (sm 7.0)" in device["why"]
    assert device["fix"].startswith("lock a torch build for CUDA 12.9")
    assert checks["machine"]["status"] == "pass"


def test_verify_gpu_outside_the_locks_range_fails_even_where_torch_was_not_asked() -> None:
    spec = env("linux-amd64-cuda")
    v100 = [{"name": "Tesla V100", "capability": "7.0"}]
    doc = probe(
        torch_facts("2.15.0", "13.2", devices=v100, cuda_available=True), driver="580.95.05"
    )
    device = verify_checks(spec, doc, lock_of(spec, "2.15.0"), "host")["device"]
    assert device["status"] == "fail" and "no kernels below 7.5" in device["why"]


def test_verify_glibc_below_the_floor_fix_depends_on_where_it_runs() -> None:
    spec = env("linux-arm64-cpu")
    doc = probe(torch_facts("2.10.0"), glibc="2.26")
    doc["emulation"]["host_arch"] = "arm64"
    exp = lock_of(spec, "2.10.0")
    in_image = verify_checks(spec, doc, exp, "image")["machine"]
    assert (
        in_image["fix"]
        == "set image.base in linux-arm64-cpu.yaml to a base with glibc >= 2.28, then rebuild"
    )
    on_host = verify_checks(spec, doc, exp, "host")["machine"]
    assert on_host["fix"].startswith("run the env in its image there")


def test_verify_macos_below_the_wheel_floor_is_the_macos_check_only() -> None:
    spec = env("macos-arm64", macos="13.0")
    doc = probe(torch_facts("2.10.0", mps_built=True), os_name="macos", version="13.6")
    exp = dataclasses.replace(
        lock_of(spec, "2.10.0"), macos=Floor("14.0", "numpy", "macosx_14_0_arm64")
    )
    checks = verify_checks(spec, doc, exp, "host")
    assert checks["macos"]["why"] == (
        "macOS 13.6 on this machine is below 14.0, the floor of numpy's macosx_14_0_arm64 wheel"
    )
    assert checks["macos"]["fix"].startswith("upgrade macOS on this machine to 14.0 or later")
    assert checks["machine"]["status"] == "pass"  # one fact, one check


def test_verify_a_machine_that_meets_the_needs_says_which() -> None:
    spec = env("linux-amd64-cuda")
    doc = probe(torch_facts("2.15.0", "13.2"), driver="580.95.05")
    check = verify_checks(spec, doc, lock_of(spec, "2.15.0"), "image")["machine"]
    assert check == {"status": "pass", "why": "meets the lock's needs: glibc >= 2.28"}


def test_an_unreadable_driver_in_a_profile_is_a_finding_not_too_old() -> None:
    spec = env("linux-amd64-cuda")
    odd = dataclasses.replace(machine("gpu-h100"), driver=":")
    (misfit,) = fit.machine_misfits(spec, lock_of(spec, "2.15.0"), odd, "profile")
    assert "driver version ':'" in misfit.why and "is not a version" in misfit.why
    assert "too old" not in misfit.why
    assert misfit.fix.startswith("check the driver with nvidia-smi, then probe again")


def test_lock_notes_carry_the_specs_deprecations(tmp_path: Path) -> None:
    path = tmp_path / "linux-amd64-cuda.yaml"
    shipped = (DEFAULT_ENVS / "linux-amd64-cuda.yaml").read_text()
    path.write_text(shipped.replace("  device: cuda\n", '  device: cuda\n  cuda: "12.8"\n'))
    spec = load_spec(path)
    (note,) = fit.notes(spec, lock_of(spec, "2.15.0"), [])
    assert "expect.cuda is deprecated and ignored" in note and "expect.json" in note
