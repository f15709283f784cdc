"""The rules each answer once (archlock.core.rules): versions, wheel tags, the driver, the GPU."""

from __future__ import annotations

import pytest

from archlock.core.rules import versions, wheels
from archlock.core.rules.machine import Gpu, capability_gap, driver_rule


@pytest.mark.parametrize(
    ("have", "floor", "answer"),
    [
        ("13.6", "14.0", True),
        ("14", "14.0", False),
        ("570.26", "570.26", False),
        ("535.183.01", "580.65.06", True),
        (":", "580.65.06", None),  # not a version: say so, never "too old"
        ("", "14.0", None),
    ],
)
def test_below_is_pep_440_and_unknown_for_what_is_not_a_version(
    have: str, floor: str, answer: bool | None
) -> None:
    assert versions.below(have, floor) is answer


@pytest.mark.parametrize(
    ("name", "tags"),
    [
        (
            "torch-2.10.0-cp311-cp311-manylinux_2_28_x86_64.whl",
            ("manylinux_2_28_x86_64",),
        ),
        (
            "numpy-2.4.6-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
            ("manylinux_2_17_x86_64", "manylinux2014_x86_64"),
        ),
        ("idna-3.10-py3-none-any.whl", ("any",)),
        ("not-a-wheel.tar.gz", ()),
        ("torch.whl", ()),
    ],
)
def test_platform_tags_come_from_packagings_parser_in_the_names_order(
    name: str, tags: tuple[str, ...]
) -> None:
    assert wheels.platform_tags(name) == tags


def test_wheel_floors_and_sizes() -> None:
    assert wheels.glibc_floor("manylinux_2_28_aarch64") == "2.28"
    assert wheels.glibc_floor("manylinux2014_x86_64") == "2.17"
    assert wheels.macos_floor("macosx_14_0_arm64") == "14.0"
    assert wheels.glibc_floor("any") is None and wheels.macos_floor("win_amd64") is None
    package = {"wheels": [{"name": "a.whl", "size": 5}, {"url": "https://x/b.whl", "size": 9}]}
    assert wheels.wheel_size(package) == 9
    assert wheels.filename({"url": "https://x/b.whl"}) == "b.whl"


@pytest.mark.parametrize(
    ("driver", "cuda", "state"),
    [
        (None, "13.2", "missing"),
        (":", "13.2", "unreadable"),
        ("535.183.01", "13.0", "too-old"),
        ("575.00", "13.0", "too-old"),
        ("570.26", "12.9", "minor-compat"),
        ("580.95.05", "13.0", "fits"),
        ("580.95.05", "13.2", "fits"),  # a CUDA release newer than the table: the major's floor
    ],
)
def test_the_driver_rule(driver: str | None, cuda: str, state: str) -> None:
    assert driver_rule(driver, cuda).state == state


def test_the_gpu_rule_takes_the_locks_range_and_torchs_own_answer() -> None:
    assert capability_gap(Gpu("V100", "7.0"), ("7.5", "12.1")) == "below 7.5"
    assert capability_gap(Gpu("B200", "10.0"), ("5.0", "9.0")) == "above 9.0"
    assert capability_gap(Gpu("H100", "9.0"), ("7.5", None)) is None
    assert capability_gap(Gpu("K80", "3.7", supported=False), None) == "for it"
    assert capability_gap(Gpu("odd", "x.y"), ("7.5", "12.1")) is None


def test_a_probe_document_of_odd_types_is_a_machine_of_unknowns() -> None:
    from archlock.core.rules.machine import from_probe

    odd = from_probe(
        {"os": "linux", "gpu": True, "emulation": [], "torch": {"devices": "x"}, "python": 3}
    )
    assert (odd.os, odd.arch, odd.driver, odd.glibc, odd.gpus) == ("None", None, None, None, ())
    devices = [{"name": "H100", "capability": 9.0, "supported": "yes"}, 7]
    (gpu,) = from_probe({"torch": {"devices": devices}}).gpus
    assert (gpu.capability, gpu.supported) == ("9.0", None)
