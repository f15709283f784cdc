"""No import reaches up a layer, and no import (lazy ones included) closes a cycle.

Every module under src/archlock is parsed with ast; every `import` and `from ... import`
counts, wherever it sits (module level, inside a function, under `if TYPE_CHECKING:`). The
layers are docs/DEVELOPING.md's (its "Layers" section), lowest first; a module may import its
own package and any lower layer, never a higher one, and never a package beside it.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"
ROOT = SRC / "archlock"
DEVELOPING = Path(__file__).resolve().parents[2] / "docs" / "DEVELOPING.md"

# lowest first; the packages on one line are peers and do not import each other
LAYERS: tuple[tuple[str, ...], ...] = (
    ("archlock", "archlock.inenv"),  # the version; the in-env scripts import nothing of ours
    ("archlock.errors",),
    ("archlock.core",),  # core.rules sits inside: it may ask core, core's diagnosis asks it
    ("archlock.lock", "archlock.build", "archlock.scan", "archlock.mac"),
    ("archlock.verify",),
    ("archlock.repro", "archlock.init"),
    ("archlock.cli",),
    ("archlock.__main__",),
)


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(ROOT.rglob("*.py"))}


def imports(name: str) -> Iterator[str]:
    """The archlock modules `name` imports: `from pkg import mod` names the module mod."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names if alias.name.startswith("archlock"))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([node.module] if node.module else []))
            if not base.startswith("archlock"):
                continue
            for alias in node.names:
                inner = f"{base}.{alias.name}"
                yield inner if inner in MODULES else base


def graph() -> dict[str, set[str]]:
    return {name: {t for t in imports(name) if t != name} for name in MODULES}


def layer_of(name: str) -> tuple[int, str]:
    """(layer, the package that places it): the longest listed prefix of the module's name."""
    best = (-1, "")
    for index, packages in enumerate(LAYERS):
        for package in packages:
            if (name == package or name.startswith(package + ".")) and len(package) > len(best[1]):
                best = (index, package)
    assert best[0] >= 0, f"{name} is in no layer: add its package to LAYERS and DEVELOPING.md"
    return best


def upward(edges: dict[str, set[str]]) -> list[str]:
    found = []
    for source, targets in sorted(edges.items()):
        (mine, own) = layer_of(source)
        for target in sorted(targets):
            (theirs, other) = layer_of(target)
            if own == other:
                continue
            if theirs > mine or (theirs == mine and own != other):
                found.append(f"{source} -> {target}")
    return found


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(edges.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_no_import_reaches_up_a_layer() -> None:
    assert upward(graph()) == []


def test_no_import_closes_a_cycle() -> None:
    assert cycles(graph()) == []


def test_every_package_is_in_a_layer_and_the_doc_lists_the_layers() -> None:
    for name in MODULES:
        layer_of(name)
    text = DEVELOPING.read_text(encoding="utf-8")
    section = text.split("## Layers", 1)[1].split("\n## ", 1)[0]
    for packages in LAYERS:
        for package in packages:
            short = package.removeprefix("archlock.").replace(".", "/")
            assert f"`{short if package != 'archlock' else 'archlock/__init__.py'}`" in section


def test_the_checker_sees_lazy_relative_and_type_checking_imports() -> None:
    edges = graph()
    assert "archlock.build.render" in edges["archlock.verify.cirun"]  # inside a function
    assert (
        "archlock.inenv.probe_system" in edges["archlock.inenv.probe_torch"]
    )  # TYPE_CHECKING, `from .`
    assert upward({"archlock.core.x": {"archlock.lock.fit"}}) == [
        "archlock.core.x -> archlock.lock.fit"
    ]
    assert upward({"archlock.lock.x": {"archlock.build.render"}}) == [
        "archlock.lock.x -> archlock.build.render"
    ]
    assert cycles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["a", "b"]]
