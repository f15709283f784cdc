"""The in-environment scripts (archlock/inenv) run as plain files in envs that may have nothing
but the standard library, on Python >= 3.8: they import no other archlock module, and nothing
outside the standard library except torch and its optional kernels, inside functions."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

from archlock import inenv

INENV = Path(inenv.__file__).parent
SCRIPTS = sorted(p for p in INENV.glob("*.py") if p.name != "__init__.py")
OPTIONAL = {"torch", "triton", "flash_attn"}  # imported inside functions, where present
STDLIB = set(sys.stdlib_module_names)


def imports(tree: ast.AST) -> list[tuple[str, bool, int]]:
    """(top-level module, imported at module level, line) for every import in the file."""
    top = {id(node) for node in getattr(tree, "body", [])}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(a.name.split(".")[0], id(node) in top, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module != "__future__":
            found.append(((node.module or "").split(".")[0], id(node) in top, node.lineno))
    return found


def test_there_are_in_env_scripts() -> None:
    names = {p.stem for p in SCRIPTS}
    assert {"probe", "suite", "report", "locate", "command", "redact"} <= names


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_an_in_env_script_imports_only_the_standard_library(script: Path) -> None:
    tree = ast.parse(script.read_text(encoding="utf-8"))
    bad = [
        f"{script.name}:{line}: {module}"
        for module, top_level, line in imports(tree)
        if module not in STDLIB and (top_level or module not in OPTIONAL)
    ]
    assert bad == [], "in-env scripts may import only the standard library (torch inside functions)"


def test_the_check_catches_an_archlock_import() -> None:
    tree = ast.parse("import os\nfrom archlock.core import spec\n\ndef f():\n    import torch\n")
    found = imports(tree)
    assert ("archlock", True, 2) in found and ("torch", False, 5) in found
