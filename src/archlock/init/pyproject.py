"""What `archlock init` adds to pyproject.toml: text edits that keep every byte of the user's.

Only missing tables and keys are added (a table's keys go right under its header, a missing
table at the end); nothing the user wrote is rewritten. Where a value the user set contradicts
what archlock needs, init refuses with the line to change by hand. Every edit is re-read with
tomllib before anything is written.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from archlock.errors import ConfigError

REQUIREMENTS_NOTE = """\
# archlock settings for a requirements.txt project (written by `archlock init`). There is no
# [project] table on purpose: the project stays requirements-only, and archlock locks it through
# a stand-in pyproject it generates, with [tool.uv] environments for every env in envs/.
"""
ARCHLOCK_TABLE = """\
# archlock's settings (`archlock --help`). Lock more than the dependencies with
# groups = ["..."] / extras = ["..."].
"""
CPU_INDEX = "pytorch-cpu"
CPU_INDEX_URL = "https://download.pytorch.org/whl/cpu"
INDEXES_LINES = f"""\
# The wheel indexes envs/*.yaml name in torch.index: the CPU envs take torch's +cpu build from
# the PyTorch CPU index. Where it is unreachable, ARCHLOCK_INDEX_PYTORCH_CPU names a mirror
# (a URL or a folder of wheels); the locks then still install from this URL.
{CPU_INDEX} = "{CPU_INDEX_URL}"
"""
IMAGE_LINES = """\
# The image name (tags <image>:<tag>-<env>), the folder's name when init ran: written down so
# that a clone in a folder of another name renders the same docker/ files and workflow.
image = {}
"""
VERIFY_EXAMPLE = """\
# Your own run in every env (host venv and image), with a time limit; the metric's number
# must agree across envs within tolerance:
# run = ["python train.py --max-iters 5"]
# metric = "loss ([0-9.]+)"
# tolerance = 1e-3
# timeout = 900
"""


def toml_list(values: Sequence[str]) -> str:
    return "[\n" + "".join(f"    {json.dumps(v)},\n" for v in values) + "]"


def table_of(data: dict[str, Any], dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(data, dict) or part not in data:
            return None
        data = data[part]
    return data


def add_keys(text: str, table: str, lines: str, where: Path) -> str:
    """`lines` under `[table]`'s header, or a new `[table]` at the end when there is none."""
    header = re.search(rf"^\[{re.escape(table)}\][ \t]*(#.*)?$", text, re.MULTILINE)
    if header:
        at = header.end() + 1 if header.end() < len(text) else len(text)
        prefix = text[:at] if text[:at].endswith("\n") else text[:at] + "\n"
        return prefix + lines + text[at:]
    if table_of(tomllib.loads(text), table) is not None:  # a dotted-key or inline table
        raise ConfigError(
            f"{where}: [{table}] is written without its own header, "
            "so archlock init cannot add to it",
            fix=f"add these lines to [{table}] by hand: {' '.join(lines.split())}",
        )
    gap = "" if not text or text.endswith("\n\n") else "\n" if text.endswith("\n") else "\n\n"
    return f"{text}{gap}[{table}]\n{lines}"


def uv_environments(text: str, markers: list[str], where: Path) -> str:
    """[tool.uv] environments and required-environments covering every env's platform."""
    uv = table_of(tomllib.loads(text), "tool.uv") or {}
    lines = ""
    for key in ("environments", "required-environments"):
        have = uv.get(key)
        if have is None:
            lines += f"{key} = {toml_list(markers)}\n"
            continue
        missing = [m for m in markers if normal(m) not in {normal(h) for h in have}]
        if missing:
            raise ConfigError(
                f"{where}: [tool.uv] {key}: does not cover {', '.join(missing)}",
                fix=f"add {', '.join(json.dumps(m) for m in missing)} to {key}",
            )
    return add_keys(text, "tool.uv", lines, where) if lines else text


def normal(marker: str) -> str:
    return re.sub(r"\s+", " ", marker.replace('"', "'")).strip()


def archlock_tables(
    text: str, run: list[str], metric: str | None, where: Path, image: str | None = None
) -> str:
    """[tool.archlock] (with hints), [tool.archlock.render] image (when `image` is given and
    none is set) and [tool.archlock.verify] (the run, or an example)."""
    data = tomllib.loads(text)
    if table_of(data, "tool.archlock") is None:
        text = add_keys(text, "tool.archlock", ARCHLOCK_TABLE, where)
    if image and table_of(data, "tool.archlock.render.image") is None:
        text = add_keys(text, "tool.archlock.render", IMAGE_LINES.format(json.dumps(image)), where)
    indexes = table_of(data, "tool.archlock.indexes")
    if not isinstance(indexes, dict) or CPU_INDEX not in indexes:
        text = add_keys(text, "tool.archlock.indexes", INDEXES_LINES, where)
    verify = table_of(data, "tool.archlock.verify")
    if verify is None:
        return add_keys(
            text, "tool.archlock.verify", verify_lines(run, metric) or VERIFY_EXAMPLE, where
        )
    for key, wanted in (("run", run or None), ("metric", metric)):
        if wanted is None or verify.get(key) == wanted:
            continue
        if key in verify:
            raise ConfigError(
                f"{where}: [tool.archlock.verify] {key} is already {json.dumps(verify[key])}",
                fix=f"change it by hand, or run init without --{key}",
            )
        line = verify_lines(run, None) if key == "run" else verify_lines([], metric)
        text = add_keys(text, "tool.archlock.verify", line, where)
    return text


def verify_lines(run: list[str], metric: str | None) -> str:
    lines = f"run = {toml_list(run)}\n" if run else ""
    return lines + (f"metric = {json.dumps(metric)}\n" if metric else "")


def updated(
    path: Path,
    kind: str,
    markers: list[str],
    run: list[str],
    metric: str | None,
    image: str | None = None,
) -> str:
    """pyproject.toml's text with archlock's additions (a new file for a requirements project).
    `image`: the image name to write down when none is set (a requirements project's)."""
    text = path.read_text(encoding="utf-8") if path.is_file() else REQUIREMENTS_NOTE
    if kind == "pyproject":
        text = uv_environments(text, markers, path)
    text = archlock_tables(text, run, metric, path, image)
    try:
        tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:  # an edit archlock cannot make safely
        raise ConfigError(
            f"{path}: archlock init's additions would not parse ({exc})", fix="add them by hand"
        ) from None
    return text
