"""Rendered fields and scan inputs: no value reaches a rendered file with a line break or a
control character in it (it is refused with one line), and no source text crashes the scan."""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path
from typing import Any

from fuzz_support import attempt, examples, flag, has_control, nasty_text, scratch
from hypothesis import given, settings
from hypothesis import strategies as st

from archlock.build import context, render
from archlock.core import docker as du
from archlock.scan.config import ScanConfig
from archlock.scan.engine import scan_file, scan_source

ROOT = scratch("render")
TARGET = render.ImageTarget(
    env="linux-arm64-cpu",
    platforms=("linux/arm64",),
    python="3.11",
    accelerator="cpu",
    base_image="debian:bookworm-slim",
    lock_path="envs/locks/linux-arm64-cpu.txt",
    lock_sha256="ab" * 32,
    install_project=True,
    runner="ubuntu-24.04-arm",
    extra_index_url="https://download.example.org/whl/cpu",
    sdists_built_here=("antlr4-python3-runtime",),
)
SETTINGS = render.RenderSettings(
    image_name="team/app",
    registry="ghcr.io/team/",
    builder_nodes={"linux/arm64": "ssh://arm-node"},
)
BASELINE = render.render_files(ROOT, SETTINGS, [TARGET])
TEXT_FIELDS = [
    f.name
    for f in dataclasses.fields(render.ImageTarget)
    if isinstance(getattr(TARGET, f.name), str)
]
SETTING_FIELDS = ["image_name", "uv_image", "registry", "workflow_dir"]


def lines_of(files: dict[Path, str]) -> list[int]:
    """Line counts by file role (an env's name is in its files' names, so not by name)."""
    return sorted(text.count("\n") for text in files.values())


def check_rendered(files: dict[Path, str]) -> None:
    flag("render", "injected line", lines_of(files) == lines_of(BASELINE), lines_of(files))
    for path, text in files.items():
        flag(
            "render",
            "control character rendered",
            not has_control(text.replace("\n", "")),
            path.name,
        )
    for path in files:
        flag(
            "render",
            "path outside the project",
            ROOT in path.parents and not has_control(str(path)),
            str(path),
        )


def field_value(current: str) -> Any:
    return nasty_text(st.just(current))


@settings(max_examples=examples(350))
@given(st.data())
def test_rendered_fields(data: st.DataObject) -> None:
    where = data.draw(
        st.sampled_from(["target", "sdist", "settings", "node-key", "node-value", "runner-key"])
    )
    # the fields to replace; the replacing (and its validation) happens inside build()
    target_changes: dict[str, Any] = {}
    settings_changes: dict[str, Any] = {}
    if where == "target":
        name = data.draw(st.sampled_from(TEXT_FIELDS))
        target_changes[name] = data.draw(field_value(getattr(TARGET, name)))
    elif where == "sdist":  # a pure-Python sdist's name, as the lock recorded it
        target_changes["sdists_built_here"] = (data.draw(field_value("antlr4-python3-runtime")),)
    elif where == "settings":
        name = data.draw(st.sampled_from(SETTING_FIELDS))
        settings_changes[name] = data.draw(field_value(getattr(SETTINGS, name)))
    else:
        key = data.draw(field_value("linux/arm64")) if where != "node-value" else "linux/arm64"
        value = (
            data.draw(field_value("ssh://arm-node")) if where == "node-value" else "ssh://arm-node"
        )
        if where == "runner-key":
            settings_changes["runners"] = {**render.DEFAULT_RUNNERS, key: "ubuntu-24.04-arm"}
        else:
            settings_changes["builder_nodes"] = {key: value}

    def build() -> dict[Path, str]:
        targets = [dataclasses.replace(TARGET, **target_changes)] if target_changes else [TARGET]
        chosen = dataclasses.replace(SETTINGS, **settings_changes) if settings_changes else SETTINGS
        return render.render_files(ROOT, chosen, targets)

    files, _ = attempt("render", build)
    if files is not None and where != "runner-key":
        check_rendered(files)


@settings(max_examples=examples(250))
@given(st.sampled_from(sorted(du.FILTERS)), nasty_text())
def test_quoting_filters(name: str, value: str) -> None:
    quoted, _ = attempt("render", lambda: du.FILTERS[name](value))
    if quoted is not None:
        flag("render", "control character quoted through", not has_control(quoted), (name, quoted))


TOKENS = [
    "import torch\n",
    "torch",
    ".",
    "cuda",
    "(",
    ")",
    "\n",
    " ",
    "    ",
    "if ",
    ":",
    "device",
    " = ",
    "'cuda'",
    "mps",
    "x",
    "[",
    "]",
    ",",
    "+",
    "-",
    "*",
    "lambda ",
    "def f():\n",
    "#",
    "# archlock: ignore[AL101]",
    "# archlock: ignore[",
    "\\",
    "'",
    '"',
    "\x00",
    "\r",
    "\t",
    "1",
    "else:",
    "elif ",
    "not ",
    "is_available()",
    "to(",
    "'mps'",
    "\u2028",
    "\ufeff",
    "async ",
    "await ",
    "match x:\n",
    "case 1:\n",
    "(" * 50,
    "-" * 200,
]


@settings(max_examples=examples(400))
@given(
    st.one_of(st.lists(st.sampled_from(TOKENS), max_size=40).map("".join), st.text(max_size=200))
)
def test_scan_source_texts(source: str) -> None:
    attempt("scan", lambda: scan_source(source, "fuzz.py", ScanConfig()))


GLOBS = ["*.bin", "/data/", "!keep", "[z-a]", "a/**/b", "\\#x", "\\", "[", "**", "!/", "a\\"]


@settings(max_examples=examples(150))
@given(st.binary(max_size=300))
def test_scan_file_bytes(raw: bytes) -> None:
    path = ROOT / "fuzz.py"
    path.write_bytes(raw)
    attempt("scan", lambda: scan_file(path, "fuzz.py", ScanConfig()))


def test_scan_pathological_sources() -> None:
    for source in (
        "x = " + "+".join(["1"] * 100_000),
        "x = " + "-" * 100_000 + "1",
        "x = a" + ".b" * 100_000,
        "x = [" + ",".join(["1"] * 200_000) + "]",
    ):
        found, _ = attempt("scan", lambda s=source: scan_source(s, "big.py", ScanConfig()))
        flag("scan", "pathological source not reported", found is not None)


GLOBS = ["*.bin", "/data/", "!keep", "[z-a]", "a/**/b", "\\#x", "\\", "[", "**", "!/", "a\\"]


@settings(max_examples=examples(150))
@given(st.lists(st.one_of(nasty_text(), st.sampled_from(GLOBS)), max_size=6))
def test_gitignore_lines_reach_the_dockerignore_as_one_pattern_each(lines: list[str]) -> None:
    root = Path(tempfile.mkdtemp(dir=ROOT))
    (root / ".gitignore").write_text("\n".join(lines) + "\n", encoding="utf-8", newline="")

    def build() -> tuple[list[str], bool]:
        patterns = context.context_patterns(root)
        files = render.render_files(root, SETTINGS, [TARGET])
        text = files[root / "docker" / f"{TARGET.env}.Dockerfile.dockerignore"]
        flag("render", "control character rendered", not has_control(text.replace("\n", "")))
        listed = [x for x in text.splitlines() if x and not x.startswith("#")]
        flag("render", "injected line", listed == [*patterns, f"!{TARGET.lock_path}"], listed)
        return patterns, context.Matcher(listed).excluded("envs/locks/linux-arm64-cpu.txt")

    result, _ = attempt("render", build)
    if result is not None:
        flag("render", "the lock left out of the context", result[1] is False)
