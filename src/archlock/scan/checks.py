"""The checks: each looks at one node in its guard context and returns the hits it finds.

A hit is `(rule_id, node, message)`; the visitor walks the tree and keeps the context, the
engine turns hits into findings with positions. Checks read only the node they are given (for
branch rules: that branch's tests and statements; for AL109: the enclosing function).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

from archlock.scan.guards import Fact, ModuleInfo, leaf_positive, terminates
from archlock.scan.names import device_kind, dotted, identifier, is_x86_test, leading_text, words
from archlock.scan.rules import ARCH_PATH_MARKERS, ARM_NAMES, GPU_ONLY_MODULES, SAFE_ACCEL_CALLS

Hit = tuple[str, ast.AST, str]

DEVICE_FIRST_ARG = frozenset(
    {
        "torch.device",
        "torch.set_default_device",
        "torch.autocast",
        "torch.amp.autocast",
        "torch.amp.GradScaler",
        "torch.Generator",
    }
)
FLOAT64_NAMES = frozenset({"torch.float64", "torch.double", "torch.DoubleTensor"})
DEVICE_GUARDS = ("cuda", "mps", "platform")


@dataclass(frozen=True)
class Context:
    """What holds where the visitor stands."""

    facts: frozenset[Fact] = frozenset()
    import_fallback: bool = False  # inside `try: ... except ImportError:`
    in_compare: bool = False  # inside a comparison (`x.dtype == torch.float64` reads, not uses)
    device_scope: bool = True  # the enclosing function handles a device (or names MPS)

    def holds(self, category: str, value: bool = True) -> bool:
        return (category, value) in self.facts

    def checks_any(self, categories: tuple[str, ...]) -> bool:
        return any(category in categories for category, _ in self.facts)


def snippet(node: ast.AST, limit: int = 48) -> str:
    text = ast.unparse(node)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _device_hit(kind: str, node: ast.AST, shown: str, ctx: Context) -> list[Hit]:
    if kind == "cuda" and not ctx.holds("cuda"):
        return [("AL101", node, f"`{shown}` hard-codes the CUDA device")]
    if kind == "mps" and not ctx.holds("mps"):
        return [("AL106", node, f"`{shown}` uses MPS without checking mps.is_available()")]
    return []


def device_value(
    name: str, value: ast.AST | None, node: ast.AST, ctx: Context, sep: str = "="
) -> list[Hit]:
    """`device = "cuda"`, `device="cuda"` as a keyword, parameter default or dict entry."""
    if value is None or "device" not in words(name) and name != "map_location":
        return []
    kind = device_kind(value)
    return _device_hit(kind, node, f"{name}{sep}{snippet(value)}", ctx) if kind else []


def _positional_device(node: ast.Call, ctx: Context, info: ModuleInfo) -> list[Hit]:
    func = node.func
    if isinstance(func, ast.Attribute) and func.attr == "cuda" and not node.args:
        return _device_hit("cuda", node, snippet(node), ctx)
    is_to = isinstance(func, ast.Attribute) and func.attr == "to"
    if not node.args or not (is_to or dotted(func, info.names) in DEVICE_FIRST_ARG):
        return []
    kind = device_kind(node.args[0])
    return _device_hit(kind, node, snippet(node), ctx) if kind else []


def _keyword_devices(node: ast.Call, ctx: Context, info: ModuleInfo) -> list[Hit]:
    hits: list[Hit] = []
    is_device = dotted(node.func, info.names) == "torch.device"
    for kw in node.keywords:
        kind = device_kind(kw.value) if is_device and kw.arg == "type" else None
        if kind:
            hits += _device_hit(kind, kw.value, f"type={snippet(kw.value)}", ctx)
        elif kw.arg and kw.arg.islower():  # `env(ARCHLOCK_DEVICE="mps")` sets a variable
            hits += device_value(kw.arg, kw.value, kw.value, ctx)
    if identifier(node.func) == "add_argument":  # parser.add_argument("--device", default="cuda")
        options = [leading_text(arg) or "" for arg in node.args]
        default = next((kw.value for kw in node.keywords if kw.arg == "default"), None)
        if default is not None and any("device" in option for option in options):
            hits += device_value("device", default, default, ctx)
    return hits


def _accel_api(node: ast.Call, ctx: Context, info: ModuleInfo) -> list[Hit]:
    resolved = dotted(node.func, info.names) or ""
    module, _, attr = resolved.rpartition(".")
    if attr in SAFE_ACCEL_CALLS.get(module, ()):
        return []
    shown = f"{snippet(node.func)}({'...' if node.args or node.keywords else ''})"
    if resolved.startswith("torch.cuda.") and not ctx.holds("cuda"):
        return [("AL102", node, f"`{shown}` runs without a CUDA availability check")]
    if resolved.startswith("torch.mps.") and not ctx.holds("mps"):
        return [("AL106", node, f"`{shown}` uses MPS without checking mps.is_available()")]
    return []


def _nccl(node: ast.Call, ctx: Context) -> list[Hit]:
    if identifier(node.func) != "init_process_group" or ctx.holds("cuda"):
        return []
    backend = next((kw.value for kw in node.keywords if kw.arg == "backend"), None)
    backend = backend or (node.args[0] if node.args else None)
    text = backend.value if isinstance(backend, ast.Constant) else None
    if backend is None or not isinstance(text, str) or "nccl" not in text.lower():
        return []
    if "gloo" in text.lower():
        return []
    message = f"`init_process_group` gets the literal backend {text!r}, which needs CUDA"
    return [("AL103", backend, message)]


def compile_use(node: ast.AST, ctx: Context, info: ModuleInfo) -> list[Hit]:
    """`torch.compile(model)` or `@torch.compile` outside any device guard."""
    target = node.func if isinstance(node, ast.Call) else node
    if dotted(target, info.names) != "torch.compile" or ctx.checks_any(DEVICE_GUARDS):
        return []
    message = f"`{snippet(target)}` has no device guard (unsupported or unstable on MPS)"
    return [("AL105", node, message)]


def _float64_safe(ctx: Context, info: ModuleInfo) -> bool:
    if not (info.can_use_mps and ctx.device_scope) or ctx.in_compare:
        return True
    return ctx.holds("mps", False) or ctx.holds("cuda")


def handles_device(node: ast.AST) -> bool:
    """Does this function touch a device (`device`, `self.device`, "mps")? If not, its tensors
    stay on the CPU default and float64 is fine."""
    for sub in ast.walk(node):
        name = identifier(sub)
        if (name and {"device", "mps"} & set(words(name))) or device_kind(sub) == "mps":
            return True
    return False


def float64_use(node: ast.AST, ctx: Context, info: ModuleInfo) -> list[Hit]:
    """`torch.float64` / `torch.double` / `.double()` where the device can be MPS: the file names
    MPS and the enclosing function handles a device."""
    if _float64_safe(ctx, info):
        return []
    if isinstance(node, ast.Call):
        func = node.func
        is_double = isinstance(func, ast.Attribute) and func.attr == "double" and not node.args
        shown = snippet(node) if is_double else None
    else:
        shown = dotted(node, info.names) if dotted(node, info.names) in FLOAT64_NAMES else None
    if shown is None:
        return []
    return [("AL109", node, f"`{shown}` is float64, which MPS does not support")]


def call(node: ast.Call, ctx: Context, info: ModuleInfo) -> list[Hit]:
    """Every call-shaped rule."""
    return [
        *_positional_device(node, ctx, info),
        *_keyword_devices(node, ctx, info),
        *_accel_api(node, ctx, info),
        *_nccl(node, ctx),
        *compile_use(node, ctx, info),
        *float64_use(node, ctx, info),
    ]


def gpu_import(node: ast.Import | ast.ImportFrom, ctx: Context) -> list[Hit]:
    """`import flash_attn` with no try/except ImportError and no guard around it."""
    if ctx.import_fallback or ctx.facts:
        return []
    if isinstance(node, ast.ImportFrom):
        modules = [node.module or ""] if not node.level else []
    else:
        modules = [alias.name for alias in node.names]
    hits: list[Hit] = []
    for module in modules:
        top = module.split(".")[0]
        if top in GPU_ONLY_MODULES:
            message = f"`{snippet(node)}` has no fallback; {top} installs only on CUDA machines"
            hits.append(("AL104", node, message))
    return hits


def arch_path(node: ast.Constant, ctx: Context, info: ModuleInfo) -> list[Hit]:
    """A string literal holding a one-architecture path or triplet."""
    in_platform_branch = ctx.checks_any(("platform",))
    if not isinstance(node.value, str) or id(node) in info.docstrings or in_platform_branch:
        return []
    for marker in ARCH_PATH_MARKERS:
        if marker in node.value:
            return [("AL107", node, f"hard-coded `{marker}` exists on one kind of machine only")]
    return []


def _mentions_arm(node: ast.AST) -> bool:
    """Any string in the branch naming arm64 ("aarch64", "libfoo-arm64.so", "arm")."""
    for sub in ast.walk(node):
        if isinstance(sub, ast.Constant) and isinstance(sub.value, str):
            text = sub.value.lower()
            if text == "arm" or any(name in text for name in ARM_NAMES - {"arm"}):
                return True
    return False


def _x86_tests(test: ast.AST, info: ModuleInfo) -> list[tuple[ast.AST, bool]]:
    """The x86-only comparisons in a test, each with whether it holds when the test holds."""
    negated = isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not)
    found = []
    for node in ast.walk(test.operand if isinstance(test, ast.UnaryOp) and negated else test):
        is_flag = isinstance(node, ast.Name) and node.id in info.x86_flags
        if is_flag or is_x86_test(node, info.names, info.machine_vars):
            found.append((node, leaf_positive(node) != negated))
    return found


def _elif_chain(head: ast.If) -> list[ast.If]:
    chain = [head]
    while len(chain[-1].orelse) == 1 and isinstance(chain[-1].orelse[0], ast.If):
        chain.append(chain[-1].orelse[0])
    return chain


def _binds_names(stmts: list[ast.stmt]) -> bool:
    """Does the block define a name (`lib = ...`, an import, a def) that code after it may use?"""
    for stmt in stmts:
        for node in ast.walk(stmt):
            if isinstance(node, (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.ClassDef)):
                return True
            targets = node.targets if isinstance(node, ast.Assign) else []
            targets += [node.target] if isinstance(node, (ast.AnnAssign, ast.AugAssign)) else []
            if any(isinstance(target, ast.Name) for target in targets):
                return True
    return False


def _arm_left_out(x86_body: list[ast.stmt], other: list[ast.stmt], info: ModuleInfo) -> bool:
    """arm64 takes `other`: it is left out when that path exits, or is missing while the x86
    path defines something."""
    if other:
        return terminates(other, info)
    return _binds_names(x86_body)


def x86_branch(head: ast.If, info: ModuleInfo) -> list[Hit]:
    """An if/elif chain on the machine name that names x86_64 and gives arm64 no working path."""
    chain = _elif_chain(head)
    tests = [(link, found) for link in chain for found in _x86_tests(link.test, info)]
    if not tests or _mentions_arm(head):
        return []
    final_else = chain[-1].orelse
    hits: list[Hit] = []
    for link, (node, positive) in tests:
        if positive:
            left_out = _arm_left_out(link.body, final_else, info)
        else:  # `!= "x86_64"`: the body is where arm64 goes
            left_out = terminates(link.body, info)
        if left_out:
            message = f"`{snippet(node)}` branches on x86 and gives arm64 no path"
            hits.append(("AL108", node, message))
    return hits


def x86_assert(node: ast.Assert, info: ModuleInfo) -> list[Hit]:
    if _mentions_arm(node):
        return []
    found = [sub for sub, positive in _x86_tests(node.test, info) if positive]
    return [("AL108", sub, f"`{snippet(sub)}` asserts x86 and rejects arm64") for sub in found]
