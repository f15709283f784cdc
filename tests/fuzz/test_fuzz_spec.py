"""Env specs (envs/<name>.yaml): generated values, YAML texts and bytes never crash the loader,
and a spec that loads holds no control character in any field that reaches a rendered file."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from fuzz_support import attempt, examples, flag, has_control, json_values, nasty_text, scratch
from hypothesis import given, settings
from hypothesis import strategies as st

from archlock.core.spec import CUDA_VERSION_RE, load_spec

VALID: dict[str, Any] = {
    "description": "a target",
    "platform": "linux-arm64",
    "python": "3.11",
    "accelerator": "cpu",
    "torch": {"index": "pytorch-cpu", "variant": "cpu"},
    "expect": {"device": "cpu"},
    "image": {"base": "python:3.11-slim-bookworm", "digest": "sha256:" + "a" * 64},
    "verify": {"project-tests": False},
}
PATHS = [
    ("description",),
    ("platform",),
    ("python",),
    ("accelerator",),
    ("opt-in",),
    ("macos",),
    ("torch",),
    ("torch", "index"),
    ("torch", "variant"),
    ("expect", "device"),
    ("expect", "cuda"),
    ("image", "base"),
    ("image", "digest"),
    ("verify", "project-tests"),
    ("unknown",),
]
SCRATCH = scratch("spec")


def spec_file(name: str = "fuzz-env") -> Path:
    return SCRATCH / f"{name}.yaml"


def mutated(path: tuple[str, ...], value: Any, drop: bool) -> dict[str, Any]:
    data = yaml.safe_load(yaml.safe_dump(VALID))
    here = data
    for key in path[:-1]:
        here = here.setdefault(key, {})
        if not isinstance(here, dict):
            return data
    if drop:
        here.pop(path[-1], None)
    else:
        here[path[-1]] = value
    return data


def assert_clean(spec: Any) -> None:
    for field in (
        "name",
        "python",
        "accelerator",
        "torch_index",
        "torch_variant",
        "macos",
        "expect_device",
        "expect_cuda",
        "image_base",
        "image_digest",
    ):
        value = getattr(spec, field)
        ok = value is None or (isinstance(value, str) and not has_control(value))
        flag("spec", "control character accepted", ok, (field, value))


field_value = st.one_of(
    json_values,
    nasty_text(
        st.sampled_from(
            [
                "3.11",
                "cpu",
                "cuda",
                "linux-arm64",
                "14.0",
                "12.8",
                "pypi",
                "python:3.11-slim",
                "sha256:" + "a" * 64,
            ]
        )
    ),
)


@settings(max_examples=examples(500))
@given(st.sampled_from(PATHS), field_value, st.booleans())
def test_generated_spec_values(path: tuple[str, ...], value: Any, drop: bool) -> None:
    target = spec_file()
    try:
        text = yaml.safe_dump(mutated(path, value, drop), allow_unicode=True)
    except (yaml.YAMLError, ValueError):
        return
    target.write_text(text, encoding="utf-8")
    spec, _ = attempt("spec", lambda: load_spec(target))
    if spec is not None:
        assert_clean(spec)
        check_expect_cuda(spec, yaml.safe_load(text))


def check_expect_cuda(spec: Any, data: Any) -> None:
    """A spec that loads holds expect.cuda only as a CUDA version in a CUDA env (deprecated
    and ignored, with a note); anything else was refused."""
    expect = data.get("expect") if isinstance(data, dict) else None
    if not isinstance(expect, dict) or expect.get("cuda") is None:  # `cuda:` alone: not given
        return
    value = expect["cuda"]
    meaningful = spec.accelerator == "cuda" and bool(re.fullmatch(CUDA_VERSION_RE, str(value)))
    flag("spec", "meaningless expect.cuda accepted", meaningful, (spec.accelerator, value))


CUDA_ENVS = [
    {"platform": "linux-amd64", "python": "3.11", "accelerator": "cuda"},
    {"platform": "linux-amd64", "python": "3.11", "accelerator": "cpu"},
    {"platform": "linux-arm64", "python": "3.11", "accelerator": "cpu"},
    {"platform": "macos-arm64", "python": "3.11", "accelerator": "mps"},
]


@settings(max_examples=examples(200))
@given(
    st.sampled_from(CUDA_ENVS),
    st.one_of(
        st.sampled_from(["12.8", "13.0", "11.8", "12", "12.8.1", "cu128", "", "none"]),
        nasty_text(st.just("12.8")),
        json_values,
    ),
)
def test_expect_cuda_in_every_accelerator(env: dict[str, str], value: Any) -> None:
    target = spec_file("cuda-env")
    try:
        text = yaml.safe_dump({**env, "expect": {"cuda": value}}, allow_unicode=True)
    except (yaml.YAMLError, ValueError):
        return
    target.write_text(text, encoding="utf-8")
    spec, _ = attempt("spec", lambda: load_spec(target))
    if spec is not None:
        check_expect_cuda(spec, yaml.safe_load(text))


yaml_pieces = st.sampled_from(
    [
        "a: &x [1, 2]\n",
        "b: *x\n",
        "c: &y {k: *y}\n",
        "<<: {python: '3.11'}\n",
        "p: !!python/name:os.system\n",
        "q: !custom 1\n",
        "r: !!binary aGk=\n",
        "s: !!set {a}\n",
        "t: 2020-01-01\n",
        "u: " + "9" * 5000 + "\n",
        "[" * 300 + "]" * 300 + "\n",
        "v: {" * 100 + "}" * 100 + "\n",
        "python: 3.11\n",
        "python: '3.11\\n'\n",
        "platform: linux-arm64\n",
        "accelerator: cpu\n",
        "? [a]\n: 1\n",
        "w: .nan\n",
        "\t- x\n",
        "---\n...\n",
        "x: |\n  a\n  b\n",
        "%YAML 1.1\n---\n",
        'y: "\\x00"\n',
        "z: @\n",
        "dup: 1\ndup: 2\n",
    ]
)


@settings(max_examples=examples(300))
@given(st.lists(st.one_of(yaml_pieces, st.text(max_size=40)), max_size=8))
def test_generated_yaml_texts(pieces: list[str]) -> None:
    target = spec_file()
    target.write_text("".join(pieces), encoding="utf-8", errors="surrogatepass")
    spec, _ = attempt("spec", lambda: load_spec(target))
    if spec is not None:
        assert_clean(spec)


@settings(max_examples=examples(100))
@given(st.binary(max_size=200))
def test_generated_bytes(raw: bytes) -> None:
    target = spec_file()
    target.write_bytes(raw)
    spec, _ = attempt("spec", lambda: load_spec(target))
    if spec is not None:
        assert_clean(spec)


def test_alias_bomb_is_refused_quickly() -> None:
    levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    levels += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 9)]
    spec_file().write_text("\n".join(levels) + "\n")
    _, error = attempt("spec", lambda: load_spec(spec_file()))
    flag("spec", "alias bomb accepted", error is not None and "expands" in error.message)


@pytest.mark.parametrize("kind", ["fifo", "folder", "dangling", "loop", "devzero", "non-utf8"])
def test_files_that_are_not_yaml_text(kind: str, tmp_path: Path) -> None:
    path = tmp_path / "env.yaml"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "folder":
        path.mkdir()
    elif kind == "dangling":
        path.symlink_to(tmp_path / "missing.yaml")
    elif kind == "loop":
        path.symlink_to(path)
    elif kind == "devzero":
        path.symlink_to("/dev/zero")
    else:
        path.write_bytes(b"python: \xff\xfe\n")
    _, error = attempt("spec", lambda: load_spec(path))
    flag("spec", f"{kind} not refused", error is not None and str(path) in error.message)
