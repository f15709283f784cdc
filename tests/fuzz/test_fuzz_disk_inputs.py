"""Files and folders archlock reads or writes besides specs and settings: a pylock render reads
(any TOML, any bytes), a scanned tree with folders it cannot enter, a report's output path, and
the sizes `clean` takes. Each ends in a result or one ConfigError line, never a traceback."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from unittest import mock

from fuzz_support import attempt, examples, flag, nasty_text, scratch
from hypothesis import given, settings
from hypothesis import strategies as st

from archlock.build import clean, render
from archlock.core.platforms import PLATFORMS
from archlock.inenv import report
from archlock.scan.engine import scan_path

ROOT = scratch("disk")
ARM = PLATFORMS["linux-arm64"]
WHEEL = "torch-2.10.0-cp311-cp311-manylinux_2_28_aarch64.whl"
TOML_PIECES = st.sampled_from(
    [
        'lock-version = "1.0"\n',
        "packages = 5\n",
        'packages = "x"\n',
        "packages = [1, 2]\n",
        "packages = []\n",
        "[[packages]]\n",
        'name = "torch"\n',
        "name = 5\n",
        'version = "1"\n',
        "wheels = 5\n",
        "wheels = [1]\n",
        'wheels = ["x"]\n',
        "wheels = [{}]\n",
        f'wheels = [{{ name = "{WHEEL}" }}]\n',
        f'wheels = [{{ url = "https://files.example/{WHEEL}" }}]\n',
        "wheels = [{ name = 5 }]\n",
        'wheels = [{ path = "../x.whl" }]\n',
        'wheels = [{ name = "not-a-wheel" }]\n',
        "[packages.wheels]\n",
        "[[packages.wheels]]\n",
        "x = " + "9" * 5000 + "\n",
        "a = [" * 200 + "]" * 200 + "\n",
        "# \xff\n",
        "\x00\n",
    ]
)


@settings(max_examples=examples(300))
@given(st.lists(st.one_of(TOML_PIECES, st.text(max_size=30)), max_size=10))
def test_pylock_texts(pieces: list[str]) -> None:
    path = ROOT / "pylock.fuzz.toml"
    path.write_text("".join(pieces), encoding="utf-8", errors="surrogateescape")
    found, _ = attempt("pylock", lambda: render.targets_without_wheels(path, ARM))
    flag("pylock", "not an answer", found is None or isinstance(found, str), found)


@settings(max_examples=examples(150))
@given(st.binary(max_size=300))
def test_pylock_bytes(raw: bytes) -> None:
    path = ROOT / "pylock.bytes.toml"
    path.write_bytes(raw)
    attempt("pylock", lambda: render.targets_without_wheels(path, ARM))


FOLDERS = st.lists(
    st.sampled_from(["a", "b", "venv", ".hidden", "pkg.egg-info", "build", "deep/er", "x y"]),
    min_size=1,
    max_size=5,
    unique=True,
)


@settings(max_examples=examples(100))
@given(FOLDERS, st.data())
def test_scan_trees_with_folders_it_cannot_enter(folders: list[str], data: st.DataObject) -> None:
    """Root reads every folder, so the kernel's refusal is stood in for: stat of anything inside
    a denied folder and listing it raise PermissionError, as for a user without permission."""
    tree = scratch("scantree")
    for name in folders:
        (tree / name).mkdir(parents=True, exist_ok=True)
        (tree / name / "m.py").write_text("import torch\nx = torch.zeros(1).cuda()\n")
        if name == "venv" and data.draw(st.booleans()):
            (tree / name / "pyvenv.cfg").write_text("home = /usr\n")
    denied = {tree / n for n in data.draw(st.lists(st.sampled_from(folders), max_size=3))}
    real_stat, real_scandir = os.stat, os.scandir

    def stat(path: Any, *args: Any, **kwargs: Any) -> os.stat_result:
        if Path(str(path)).parent in denied:
            raise PermissionError(13, "Permission denied", str(path))
        return real_stat(path, *args, **kwargs)

    def scandir(path: Any = ".") -> Any:
        if Path(str(path)) in denied:
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    with mock.patch.object(os, "stat", stat), mock.patch.object(os, "scandir", scandir):
        result, _ = attempt("scan-tree", lambda: scan_path(tree, tree))
    if result is not None:
        read = {Path(f).parts[0] for f in result.files}
        flag("scan-tree", "denied folder read", not read & {p.name for p in denied}, read)


# folders that refuse a new file even to root (pseudo filesystems), a device node, a plain file,
# and a scratch folder (the one place a write may succeed): nothing else is ever written to
OUTPUT_DIRS = st.sampled_from(
    ["/proc/x", "/proc/self", "/proc", "/sys", "/sys/x", "/dev/null", "a-file", "a-file/x", "ok"]
)


def _write_report(path: str) -> str | None:
    return report.output_problem(path) or report.write_both(
        path, "{}\n", report.markdown_path(path), "# r\n"
    )


@settings(max_examples=examples(100))
@given(OUTPUT_DIRS, st.sampled_from(["r.json", "r", ".json", "x.json/y.json"]))
def test_report_outputs_that_refuse_files(folder: str, name: str) -> None:
    base = scratch("report-out")
    (base / "a-file").write_text("x")
    where = folder if folder.startswith("/") else str(base / folder)
    path = os.path.join(where, name)
    problem, _ = attempt("report-out", lambda: _write_report(path))
    flag("report-out", "not one line", problem is None or "\n" not in problem, problem)
    if problem is not None and not folder.startswith("/"):
        flag("report-out", "written on failure", not os.path.exists(path), path)
    flag("report-out", "refusing folder accepted", problem is not None or folder == "ok", path)


@settings(max_examples=examples(200))
@given(nasty_text(st.sampled_from(["20GB", "447.4MB", "1.5 kB", "512", "2G"])))
def test_clean_sizes(text: str) -> None:
    found, _ = attempt("clean-size", lambda: clean.parse_size(text))
    flag("clean-size", "negative size", found is None or found >= 0, (text, found))
