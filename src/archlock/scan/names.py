"""What names and literals in a module refer to: import aliases, machine queries, device strings.

`import torch as T`, `from torch import cuda`, `import torch.distributed as dist` all bind a local
name to a module path; `dotted(node, names)` turns `T.cuda.synchronize` or `cuda.synchronize`
into "torch.cuda.synchronize". Resolution is flow-insensitive: every import in the file counts.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable

from archlock.scan.rules import X86_NAMES

MACHINE_CALLS = frozenset({"platform.machine", "platform.processor"})
MACHINE_ATTR_SOURCES = frozenset({"os.uname", "platform.uname"})  # `os.uname().machine`


def import_map(nodes: Iterable[ast.AST]) -> dict[str, str]:
    """Local name -> dotted module path, for every absolute import among the file's nodes."""
    names: dict[str, str] = {}
    for node in nodes:
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    names[alias.asname] = alias.name
                else:
                    top = alias.name.split(".")[0]
                    names[top] = top
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                if alias.name != "*":
                    names[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return names


def dotted(node: ast.AST, names: dict[str, str]) -> str | None:
    """`T.cuda.synchronize` -> "torch.cuda.synchronize" when `T` is an imported name."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name) or node.id not in names:
        return None
    return ".".join([names[node.id], *reversed(parts)])


def identifier(node: ast.AST) -> str | None:
    """The last name in `x`, `self.x` or `args.x`."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def words(name: str) -> list[str]:
    """`isCudaAvailable` / `use_cuda` -> lower-case words, so `timestamps` is not `mps`."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name)
    return re.findall(r"[a-z0-9]+", spaced.lower())


def call_name(node: ast.Call, names: dict[str, str]) -> str | None:
    """The resolved dotted name of what `node` calls, if it is an imported thing."""
    return dotted(node.func, names)


def is_machine_expr(node: ast.AST, names: dict[str, str], machine_vars: set[str]) -> bool:
    """`platform.machine()`, `os.uname().machine`, `.lower()` of either, or a name bound to one."""
    while isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and not node.args:
        if node.func.attr not in ("lower", "upper", "strip", "casefold"):
            break
        node = node.func.value
    if isinstance(node, ast.Call):
        return call_name(node, names) in MACHINE_CALLS
    if isinstance(node, ast.Attribute) and node.attr == "machine":
        inner = node.value
        return isinstance(inner, ast.Call) and call_name(inner, names) in MACHINE_ATTR_SOURCES
    return isinstance(node, ast.Name) and node.id in machine_vars


def machine_vars(nodes: Iterable[ast.AST], names: dict[str, str]) -> set[str]:
    """Names assigned from a machine query: `arch = platform.machine()`."""
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Assign) and is_machine_expr(node.value, names, found):
            found.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return found


def leading_text(node: ast.AST) -> str | None:
    """The literal start of a string expression: "cuda:" for f"cuda:{rank}" or "cuda:" + r."""
    if isinstance(node, ast.Constant):
        return node.value if isinstance(node.value, str) else None
    if isinstance(node, ast.JoinedStr) and node.values:
        return leading_text(node.values[0])
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return leading_text(node.left)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        return leading_text(node.func.value) if node.func.attr == "format" else None
    return None


def device_kind(node: ast.AST) -> str | None:
    """The device a literal names: "cuda" for "cuda", "cuda:0", f"cuda:{i}"; "mps"; else None."""
    text = (leading_text(node) or "").lower()
    for kind in ("cuda", "mps"):
        if text == kind or text.startswith(f"{kind}:"):
            return kind
    return None


def _literal_strings(node: ast.AST) -> list[str] | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        items = [_literal_strings(elt) for elt in node.elts]
        if all(item is not None for item in items):
            return [text for item in items for text in item or ()]
    return None


def is_x86_test(node: ast.AST, names: dict[str, str], machines: set[str]) -> bool:
    """`platform.machine() == "x86_64"`, `arch in ("x86_64", "AMD64")`, `.startswith("x86")`."""
    if isinstance(node, ast.Compare) and len(node.ops) == 1:
        left, right = node.left, node.comparators[0]
        for machine, other in ((left, right), (right, left)):
            texts = _literal_strings(other)
            if texts and is_machine_expr(machine, names, machines):
                return all(text.lower() in X86_NAMES for text in texts)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.args:
        texts = _literal_strings(node.args[0])
        if node.func.attr == "startswith" and texts:
            on_machine = is_machine_expr(node.func.value, names, machines)
            return on_machine and all(text.lower().startswith("x86") for text in texts)
    return False
