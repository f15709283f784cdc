"""Guards: what is known to hold inside a branch, from the test that leads into it.

A *fact* is `(category, holds)`: inside `if torch.cuda.is_available():` the fact
("cuda", True) holds; in its `else`, ("cuda", False). Categories:

* cuda     - a CUDA check: `torch.cuda.is_available()`, `device.type == "cuda"`, `args.use_gpu`
* mps      - an MPS check: `torch.backends.mps.is_available()`, `device.type == "mps"`
* platform - an OS / machine check: `sys.platform`, `platform.machine()`
* feature  - an optional-package check: `importlib.util.find_spec(...)`, `HAS_FLASH_ATTN`
* typing   - `if TYPE_CHECKING:` (the body never runs)

Facts come from `if`/`elif`/`else`, conditional expressions, `and`/`or` short-circuits, an
early exit (`if not torch.cuda.is_available(): return`), `assert`, a loop over
`range(torch.cuda.device_count())`, and skip decorators in tests.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from functools import reduce

from archlock.scan.names import (
    device_kind,
    dotted,
    identifier,
    import_map,
    is_x86_test,
    machine_vars,
    words,
)
from archlock.scan.rules import ARM_NAMES, GPU_ONLY_MODULES, X86_NAMES

Fact = tuple[str, bool]

PLATFORM_QUERIES = frozenset(
    {
        "sys.platform",
        "os.name",
        "os.uname",
        "platform.system",
        "platform.machine",
        "platform.processor",
        "platform.platform",
        "platform.uname",
        "platform.mac_ver",
    }
)
PLATFORM_WORDS = frozenset({"darwin", "linux", "win32", "windows", "macos"}) | X86_NAMES | ARM_NAMES
FEATURE_WORDS = frozenset({"available", "installed", "flash", "xformers", "apex", "bnb"}) | (
    GPU_ONLY_MODULES
)
EXIT_CALLS = frozenset({"sys.exit", "os._exit", "pytest.skip", "pytest.exit", "pytest.fail"})
EXIT_BUILTINS = frozenset({"exit", "quit"})
IMPORT_CATCHERS = frozenset({"ImportError", "ModuleNotFoundError", "Exception", "BaseException"})


@dataclass(kw_only=True)
class ModuleInfo:
    """What the checks need to know about the whole file before walking it."""

    names: dict[str, str]  # local name -> dotted import path
    machine_vars: set[str]  # names bound to platform.machine()
    x86_flags: set[str] = field(default_factory=set)  # names bound to `machine == "x86_64"`
    guard_vars: dict[str, frozenset[str]] = field(default_factory=dict)  # use_cuda -> {"cuda"}
    can_use_mps: bool = False  # the file names the MPS device or backend somewhere
    docstrings: set[int] = field(default_factory=set)  # id() of docstring constants


def module_info(tree: ast.Module) -> ModuleInfo:
    nodes = list(ast.walk(tree))
    names = import_map(nodes)
    info = ModuleInfo(names=names, machine_vars=machine_vars(nodes, names))
    for node in nodes:
        if isinstance(node, ast.Assign):
            _learn_assignment(node, info)
        elif isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            doc = node.body[0] if node.body else None
            if isinstance(doc, ast.Expr) and isinstance(doc.value, ast.Constant):
                info.docstrings.add(id(doc.value))
        if not info.can_use_mps and isinstance(node, (ast.Constant, ast.JoinedStr, ast.Attribute)):
            info.can_use_mps = _names_mps(node, info)
    return info


def _learn_assignment(node: ast.Assign, info: ModuleInfo) -> None:
    """`use_accel = torch.cuda.is_available()` makes `use_accel` a guard; likewise x86 flags."""
    targets = [name for name in map(identifier, node.targets) if name]
    if is_x86_test(node.value, info.names, info.machine_vars):
        info.x86_flags.update(targets)
    if _is_check(node.value, info):
        cats = leaf_categories(node.value, info)
        for name in targets if cats else ():
            info.guard_vars[name] = cats


def _names_mps(node: ast.AST, info: ModuleInfo) -> bool:
    if device_kind(node) == "mps":
        return True
    resolved = dotted(node, info.names) or ""
    return resolved.startswith(("torch.backends.mps", "torch.mps"))


def _is_check(node: ast.AST, info: ModuleInfo) -> bool:
    """A boolean-looking value: a comparison, `not`/`and`/`or`, or an `is_*`/`has_*` query call."""
    if isinstance(node, (ast.Compare, ast.BoolOp, ast.UnaryOp)):
        return True
    if not isinstance(node, ast.Call):
        return False
    name = identifier(node.func) or ""
    query = name.startswith(("is_", "has_")) or name in ("device_count", "find_spec")
    return query or dotted(node.func, info.names) in PLATFORM_QUERIES


def _word_categories(name: str) -> set[str]:
    cats: set[str] = set()
    for word in words(name):
        if word.startswith("cuda") or word.endswith(("gpu", "gpus")) or word == "nccl":
            cats.add("cuda")
        if word.startswith("mps"):
            cats.add("mps")
        if word in FEATURE_WORDS:
            cats.add("feature")
    if name == "TYPE_CHECKING":
        cats.add("typing")
    return cats


def _node_categories(node: ast.AST, info: ModuleInfo) -> set[str]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        text = node.value.lower()
        cats = _word_categories(text) - {"feature"}
        if text in PLATFORM_WORDS:
            cats.add("platform")
        if text in GPU_ONLY_MODULES:
            cats.add("feature")
        return cats
    name = identifier(node)
    if name is None:
        return set()
    cats = _word_categories(name) | set(info.guard_vars.get(name, ()))
    if isinstance(node, ast.Name) and name in info.machine_vars:
        cats.add("platform")
    resolved = dotted(node, info.names)
    if resolved in PLATFORM_QUERIES:
        cats.add("platform")
    if resolved == "importlib.util.find_spec":
        cats.add("feature")
    return cats


def leaf_categories(expr: ast.AST, info: ModuleInfo) -> frozenset[str]:
    """Every category a test expression checks, e.g. {"cuda"} for `x.device.type == "cuda"`."""
    cats: set[str] = set()
    for node in ast.walk(expr):
        cats |= _node_categories(node, info)
    return frozenset(cats)


def leaf_positive(expr: ast.AST) -> bool:
    """False for tests that hold when the thing is absent: `!=`, `not in`, `== 0`, `< 1`."""
    if not (isinstance(expr, ast.Compare) and len(expr.ops) == 1):
        return True
    op, right = expr.ops[0], expr.comparators[0]
    if isinstance(op, (ast.NotEq, ast.NotIn, ast.IsNot)):
        return False
    if not isinstance(right, ast.Constant) or isinstance(right.value, str):
        return True
    value = right.value
    if isinstance(op, (ast.Eq, ast.Is, ast.LtE)) and not value:
        return False
    return not (isinstance(op, ast.Lt) and value == 1)


def facts(test: ast.AST, truth: bool, info: ModuleInfo) -> frozenset[Fact]:
    """What holds when `test` evaluates to `truth`."""
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        return facts(test.operand, not truth, info)
    if isinstance(test, ast.BoolOp):
        parts = [facts(value, truth, info) for value in test.values]
        every = isinstance(test.op, ast.And) == truth  # and-true / or-false: all operands agree
        return reduce(frozenset.union if every else frozenset.intersection, parts)
    holds = leaf_positive(test) == truth
    return frozenset((cat, holds) for cat in leaf_categories(test, info))


def terminates(stmts: list[ast.stmt], info: ModuleInfo) -> bool:
    """Does this block always leave (return, raise, continue, break, sys.exit, pytest.skip)?"""
    if not stmts:
        return False
    last = stmts[-1]
    if isinstance(last, (ast.Return, ast.Raise, ast.Continue, ast.Break)):
        return True
    if isinstance(last, ast.If):
        return terminates(last.body, info) and terminates(last.orelse, info)
    if isinstance(last, ast.Expr) and isinstance(last.value, ast.Call):
        func = last.value.func
        if isinstance(func, ast.Name) and func.id in EXIT_BUILTINS:
            return True
        return dotted(func, info.names) in EXIT_CALLS
    return False


def exit_facts(stmt: ast.stmt, info: ModuleInfo) -> frozenset[Fact]:
    """Facts that hold for the statements after `stmt` in the same block."""
    if isinstance(stmt, ast.If):
        if terminates(stmt.body, info) and not terminates(stmt.orelse, info):
            return facts(stmt.test, False, info)
        if terminates(stmt.orelse, info) and not terminates(stmt.body, info):
            return facts(stmt.test, True, info)
    if isinstance(stmt, ast.Assert):
        return facts(stmt.test, True, info)
    if isinstance(stmt, ast.Assign) and any(identifier(t) == "pytestmark" for t in stmt.targets):
        return skip_facts([stmt.value], info)
    return frozenset()


def loop_facts(node: ast.For | ast.AsyncFor, info: ModuleInfo) -> frozenset[Fact]:
    """`for i in range(torch.cuda.device_count()):` runs its body only where there is a GPU."""
    loop = node.iter
    if isinstance(loop, ast.Call) and identifier(loop.func) == "range":
        return facts(loop, True, info)
    return frozenset()


def skip_facts(decorators: list[ast.expr], info: ModuleInfo) -> frozenset[Fact]:
    """`@pytest.mark.skipif(not torch.cuda.is_available(), ...)` guards the test's body."""
    found: frozenset[Fact] = frozenset()
    for dec in decorators:
        if not (isinstance(dec, ast.Call) and dec.args):
            continue
        name = dotted(dec.func, info.names) or identifier(dec.func) or ""
        if name.endswith(("mark.skipif", "skipIf")):
            found |= facts(dec.args[0], False, info)
        elif name.endswith("skipUnless"):
            found |= facts(dec.args[0], True, info)
    return found


def _catches_import_error(handler_type: ast.expr | None) -> bool:
    if handler_type is None:
        return True
    if isinstance(handler_type, ast.Tuple):
        return any(_catches_import_error(elt) for elt in handler_type.elts)
    return identifier(handler_type) in IMPORT_CATCHERS


def is_import_fallback(node: ast.AST) -> bool:
    """`try: ... except ImportError:` or `with contextlib.suppress(ImportError):`."""
    if isinstance(node, (ast.Try, ast.TryStar)):
        return any(_catches_import_error(handler.type) for handler in node.handlers)
    if isinstance(node, (ast.With, ast.AsyncWith)):
        for item in node.items:
            call = item.context_expr
            if isinstance(call, ast.Call) and identifier(call.func) == "suppress":
                return any(_catches_import_error(arg) for arg in call.args)
    return False
