"""The venv's layer plan (archlock.build.layers): groups from wheel sizes, and the split script run
on a real folder tree shaped like a venv."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from archlock.build import layers

MB = 1_000_000


def test_torch_then_nvidia_then_big_packages_then_the_rest() -> None:
    sizes = {
        "torch": 900 * MB,
        "nvidia-cublas-cu12": 600 * MB,
        "nvidia-nccl-cu12": 300 * MB,
        "triton": 190 * MB,
        "numpy": 17 * MB,
        "tqdm": MB,
    }
    plan = layers.plan(sizes)
    assert [(layer.name, layer.packages) for layer in plan] == [
        ("torch", ("torch",)),
        ("nvidia", ("nvidia-cublas-cu12", "nvidia-nccl-cu12")),
        ("pkg-triton", ("triton",)),
        ("rest", ()),
    ]
    assert plan[-1].wheel_bytes == 18 * MB and plan[1].argument.startswith("nvidia=nvidia-cub")
    # a bump of a small package changes no layer but the rest
    assert layers.plan({**sizes, "tqdm": 2 * MB})[:-1] == plan[:-1]


def test_the_nvidia_stack_is_cut_to_stay_under_4_gb_installed() -> None:
    sizes = {f"nvidia-{n}": 700 * MB for n in "abcde"}
    plan = layers.plan(sizes)
    assert [layer.name for layer in plan] == ["nvidia-1", "nvidia-2", "nvidia-3", "rest"]
    assert all(layer.wheel_bytes <= layers.WHEEL_BUDGET for layer in plan)
    assert layers.plan({}) == (layers.Layer("rest", (), 0),)


def test_wheel_sizes_come_from_the_pylock_wheels_that_fit() -> None:
    wheels = [{"url": "a-x86_64.whl", "size": 10}, {"url": "a-aarch64.whl", "size": 99}]
    packages = [("Typing_Extensions", wheels)]
    assert layers.wheel_sizes(packages, lambda w: "x86" in w["url"]) == {"typing-extensions": 10}


def make_venv(root: Path) -> None:
    site = root / "lib" / "python3.11" / "site-packages"
    files = {
        "bin/python3.11": "",
        "bin/big-cli": "",
        "pyvenv.cfg": "home = /usr/bin\n",
        "lib/python3.11/site-packages/big/__init__.py": "",
        "lib/python3.11/site-packages/big/__pycache__/__init__.cpython-311.pyc": "",
        "lib/python3.11/site-packages/small.py": "",
        "lib/python3.11/site-packages/__pycache__/small.cpython-311.pyc": "",
        "lib/python3.11/site-packages/big_pkg-1.0.dist-info/RECORD": (
            "big/__init__.py,sha256=x,0\n../../../bin/big-cli,sha256=y,0\n"
            "big_pkg-1.0.dist-info/RECORD,,\n"
        ),
        "lib/python3.11/site-packages/small-2.0.dist-info/RECORD": "small.py,,\n",
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    (root / "include").mkdir()
    (root / "lib64").symlink_to("lib")
    assert site.is_dir()


def test_split_moves_each_file_to_its_owners_layer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    venv, out = tmp_path / "venv", tmp_path / "layers"
    make_venv(venv)
    script = layers.SPLIT_SCRIPT.replace("'/opt/venv','/opt/layers'", f"'{venv}','{out}'")
    assert script != layers.SPLIT_SCRIPT
    monkeypatch.setattr(sys, "argv", ["split", "big=big-pkg", "unused=nothing", "rest="])
    exec(compile(script, "split", "exec"), {})  # noqa: S102 - our own script, on our own tree
    tree = {
        p.relative_to(out).as_posix()
        for p in out.rglob("*")
        if p.is_file() or p.is_symlink() or not any(p.iterdir())
    }
    assert tree == {
        "big/opt/venv/bin/big-cli",
        "big/opt/venv/lib/python3.11/site-packages/big/__init__.py",
        "big/opt/venv/lib/python3.11/site-packages/big/__pycache__/__init__.cpython-311.pyc",
        "big/opt/venv/lib/python3.11/site-packages/big_pkg-1.0.dist-info/RECORD",
        "rest/opt/venv/bin/python3.11",
        "rest/opt/venv/pyvenv.cfg",
        "rest/opt/venv/include",
        "rest/opt/venv/lib64",
        "rest/opt/venv/lib/python3.11/site-packages/small.py",
        "rest/opt/venv/lib/python3.11/site-packages/__pycache__/small.cpython-311.pyc",
        "rest/opt/venv/lib/python3.11/site-packages/small-2.0.dist-info/RECORD",
        "unused/opt/venv",
    }
    assert not venv.exists() and (out / "rest/opt/venv/lib64").is_symlink()
