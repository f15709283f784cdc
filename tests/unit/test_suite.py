"""The shared suite: its pure decisions here, and real torch runs when an interpreter has torch.

Tests that need torch use this interpreter when it imports torch, else the one named by
ARCHLOCK_TEST_TORCH_PYTHON (a venv with a CPU torch is enough); otherwise they skip.
"""

from __future__ import annotations

import sys
from types import SimpleNamespace

import pytest
from standin_torch import VM_MPS_ERROR, stand_in_torch

from archlock.inenv import suite, suite_device, suite_distributed, suite_kernels, suite_training


def test_parity_within_and_beyond_tolerance() -> None:
    cpu = [0.5, 0.25, 0.125]
    assert suite_training.check_parity("cuda", [0.5, 0.2501, 0.125], cpu)["status"] == "pass"
    bad = suite_training.check_parity("cuda", [0.5, 0.3, 0.125], cpu)
    assert bad["status"] == "fail"
    assert bad["why"] == "cuda losses differ from CPU by 2.00e-01 relative (> 1e-03)"


def test_training_must_fall_and_stay_finite() -> None:
    assert suite_training.check_training([1.0, 0.5, 0.2])["status"] == "pass"
    assert (
        suite_training.check_training([1.0, 0.99])["why"] == "loss did not fall: 1.0000 -> 0.9900"
    )
    assert suite_training.check_training([1.0, float("nan")])["status"] == "fail"


def test_exit_codes() -> None:
    assert suite.exit_code({"checks": {"a": {"status": "pass"}, "b": {"status": "skipped"}}}) == 0
    assert suite.exit_code({"checks": {"a": {"status": "fail"}}}) == 1
    assert suite.exit_code({"error": "torch does not import", "checks": {}}) == 2


def test_fork_only_for_cpu_on_linux() -> None:
    assert suite_distributed.start_method("cuda") == "spawn"
    assert suite_distributed.start_method("mps") == "spawn"
    expected = "fork" if sys.platform.startswith("linux") else "spawn"
    assert suite_distributed.start_method("cpu") == expected


def fake_torch(**answers: object) -> SimpleNamespace:
    """Stands in for what an installed torch answers about itself (version, compile support)."""
    return SimpleNamespace(__version__="2.10.0", compile=object(), **answers)


def test_compile_is_skipped_with_a_reason_where_it_cannot_work() -> None:
    assert "emulated" in suite_kernels.compile_blocker(fake_torch(), "cpu", emulated=True)
    assert "MPS" in suite_kernels.compile_blocker(fake_torch(), "mps", emulated=False)
    old = SimpleNamespace(__version__="1.13.1")
    assert (
        suite_kernels.compile_blocker(old, "cpu", emulated=False)
        == "torch 1.13.1 has no torch.compile"
    )


def test_compile_blocked_without_a_compiler(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(suite_kernels.shutil, "which", lambda name: None)
    assert suite_kernels.compile_blocker(fake_torch(), "cpu", emulated=False).startswith(
        "no C++ compiler on PATH"
    )
    assert "image.toolchain: true" in suite_kernels.compile_blocker(
        fake_torch(), "cpu", emulated=False
    )


def test_compile_on_cuda_needs_a_c_compiler_for_tritons_launcher(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "triton", SimpleNamespace())
    monkeypatch.setattr(suite_kernels.shutil, "which", lambda name: None)
    blocker = suite_kernels.compile_blocker(fake_torch(), "cuda", emulated=False)
    assert blocker.startswith("no C compiler on PATH (triton builds its launcher")
    monkeypatch.setattr(
        suite_kernels.shutil, "which", lambda name: "/usr/bin/gcc" if name == "gcc" else None
    )
    assert suite_kernels.compile_blocker(fake_torch(), "cuda", emulated=False) is None


# -- device selection with a stand-in torch that reports devices it cannot use -----------------
def test_a_usable_device_is_selected() -> None:
    device, check = suite_device.select_device(stand_in_torch(mps="ok"), None)
    assert (device, check["status"]) == ("mps", "pass")
    assert check["usable"] == {"cuda": False, "mps": True, "cpu": True}


def test_mps_that_cannot_allocate_on_a_virtual_mac_is_skipped_with_the_reason() -> None:
    vm_mps = stand_in_torch(mps="raise:" + VM_MPS_ERROR)
    device, check = suite_device.select_device(vm_mps, None, virtual=True)
    assert (device, check["status"]) == ("cpu", "skipped")
    assert check["why"].startswith("virtual Mac: MPS unusable (RuntimeError: MPS backend out of")
    assert check["why"].endswith("; ran on cpu")
    assert check["available"]["mps"] is True and check["usable"]["mps"] is False


def test_the_same_mps_on_real_hardware_is_a_failure() -> None:
    real_mps = stand_in_torch(mps="raise:" + VM_MPS_ERROR)
    device, check = suite_device.select_device(real_mps, None, virtual=False)
    assert (device, check["status"]) == ("cpu", "fail")
    assert check["why"].startswith("mps is reported available but cannot run a kernel: Runtime")


def test_mps_that_computes_wrong_numbers_is_not_selected() -> None:
    device, check = suite_device.select_device(stand_in_torch(mps="wrong"), None, virtual=True)
    assert (device, check["status"]) == ("cpu", "skipped")
    assert "a 4x4 matmul gave 0.0, the CPU " in check["why"]


def test_cuda_reported_but_without_a_kernel_is_a_failure_even_in_a_vm() -> None:
    error = "raise:CUDA error: no kernel image is available for execution on the device"
    device, check = suite_device.select_device(stand_in_torch(cuda=error), None, virtual=True)
    assert (device, check["status"]) == ("cpu", "fail")
    assert check["why"] == (
        "cuda is reported available but cannot run a kernel: RuntimeError: CUDA error: "
        "no kernel image is available for execution on the device; ran on cpu"
    )
    device, check = suite_device.select_device(stand_in_torch(cuda=error), "cuda")
    assert (device, check["status"]) == ("cpu", "fail")
    assert check["why"].startswith("cuda requested (--device / ARCHLOCK_DEVICE) but not usable")
