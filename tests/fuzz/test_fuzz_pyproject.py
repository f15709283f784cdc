"""pyproject.toml settings and requirements.txt lines: generated tables, values and lines give
a project or one ConfigError line, and what loads never carries a control character on."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from fuzz_support import attempt, examples, flag, has_control, json_values, nasty_text, scratch
from hypothesis import given, settings
from hypothesis import strategies as st

from archlock.build import render
from archlock.core import settings as settings_table
from archlock.core.project import Project

SCRATCH = scratch("pyproject")
BASE: dict[str, Any] = {
    "project": {
        "name": "app",
        "version": "0",
        "requires-python": ">=3.11",
        "dependencies": ["numpy>=1.26"],
    },
    "dependency-groups": {"workload": ["torch==2.10.0"]},
    "tool": {"archlock": {"groups": ["workload"], "render": {"image": "team/app"}}},
}
KEYS = [
    ("tool",),
    ("tool", "archlock"),
    ("tool", "uv"),
    ("tool", "uv", "environments"),
    ("project",),
    ("project", "name"),
    ("project", "dependencies"),
    ("project", "optional-dependencies"),
    ("project", "requires-python"),
    ("dependency-groups",),
    ("dependency-groups", "workload"),
    *[("tool", "archlock", name) for name in settings_table.SECTIONS if name],
    *[("tool", "archlock", key) for key in settings_table.SECTIONS[""]],
    *[
        ("tool", "archlock", section, key)
        for section, keys in settings_table.SECTIONS.items()
        if section
        for key in keys
    ],
    ("tool", "archlock", "render", "builder-nodes", "linux/arm64"),
    ("tool", "archlock", "render", "runners", "linux/amd64"),
    ("tool", "archlock", "bogus"),
]


def toml_value(value: Any) -> str:
    """A TOML inline value (strings as JSON strings: every JSON escape is a TOML escape)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return (
            "nan"
            if math.isnan(value)
            else ("inf" if value > 0 else "-inf")
            if math.isinf(value)
            else repr(value)
        )
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value if v is not None) + "]"
    if isinstance(value, dict):
        return (
            "{"
            + ", ".join(
                f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items() if v is not None
            )
            + "}"
        )
    return '""'


def toml_text(data: dict[str, Any]) -> str:
    return "".join(f"{json.dumps(k)} = {toml_value(v)}\n" for k, v in data.items() if v is not None)


def with_value(path: tuple[str, ...], value: Any) -> dict[str, Any]:
    data = json.loads(json.dumps(BASE))
    here = data
    for key in path[:-1]:
        here = here.setdefault(key, {})
        if not isinstance(here, dict):
            return data
    here[path[-1]] = value
    return data


def load_everything(root: Path) -> Any:
    project = Project.load(root)
    for kind in settings_table.TYPES:
        settings_table.read(project.table, kind, project.root / "pyproject.toml")
    rendered = render.load_settings(project)
    return project, rendered, project.direct_requirements()


def check_loaded(loaded: Any) -> None:
    _, rendered, lines = loaded
    values = [
        rendered.image_name,
        rendered.uv_image,
        rendered.registry,
        rendered.workflow_dir,
        *rendered.runners,
        *rendered.runners.values(),
        *rendered.builder_nodes,
        *rendered.builder_nodes.values(),
        *lines,
    ]
    for value in values:
        flag("pyproject", "control character accepted", not has_control(value), value)


setting_value = st.one_of(
    json_values,
    nasty_text(
        st.sampled_from(
            [".github/workflows", "team/app", "ghcr.io/team/", "ssh://node", "ubuntu-24.04-arm"]
        )
    ),
    st.dictionaries(
        nasty_text(st.sampled_from(["linux/arm64", "linux/amd64"])), nasty_text(), max_size=2
    ),
    st.lists(nasty_text(st.sampled_from(["workload", "numpy>=1", "torch==2.10.0"])), max_size=3),
)


@settings(max_examples=examples(500))
@given(st.sampled_from(KEYS), setting_value)
def test_generated_pyproject_settings(path: tuple[str, ...], value: Any) -> None:
    root = SCRATCH / "settings"
    root.mkdir(exist_ok=True)
    (root / "pyproject.toml").write_text(toml_text(with_value(path, value)), encoding="utf-8")
    loaded, _ = attempt("pyproject", lambda: load_everything(root))
    if loaded is not None:
        check_loaded(loaded)


@settings(max_examples=examples(150))
@given(
    st.one_of(
        st.binary(max_size=120),
        st.text(max_size=120).map(lambda t: t.encode("utf-8", "surrogatepass")),
    )
)
def test_generated_pyproject_bytes(raw: bytes) -> None:
    root = SCRATCH / "bytes"
    root.mkdir(exist_ok=True)
    (root / "pyproject.toml").write_bytes(raw)
    attempt("pyproject", lambda: load_everything(root))


requirement_line = st.one_of(
    st.text(max_size=40),
    nasty_text(
        st.sampled_from(
            [
                "torch==2.10.0",
                "numpy>=1.26",
                "pkg[extra]>=1; python_version > '3.8'",
                "pkg @ https://example.org/pkg.whl",
                "-e .",
                "--index-url x",
                "torch=2",
            ]
        )
    ),
)


@settings(max_examples=examples(400))
@given(st.lists(requirement_line, min_size=1, max_size=5))
def test_generated_requirements_lines(lines: list[str]) -> None:
    root = SCRATCH / "requirements"
    root.mkdir(exist_ok=True)
    (root / "pyproject.toml").unlink(missing_ok=True)
    (root / "requirements.txt").write_text(
        "\n".join(lines), encoding="utf-8", errors="surrogatepass"
    )
    found, error = attempt("requirements", lambda: Project.load(root).direct_requirements())
    if error is not None:
        located = "requirements.txt" in error.message
        flag("requirements", "error without the file", located, error.message)
    for line in found or []:
        flag("requirements", "control character accepted", not has_control(line), line)
