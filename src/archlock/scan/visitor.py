"""The walk: visits every node once, keeping the guard context, and asks the checks.

Blocks are walked statement by statement so an early exit (`if not torch.cuda.is_available():
return`) guards the statements after it; branches, conditional expressions and `and`/`or`
operands get the facts their test establishes.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

from archlock.scan import checks, names
from archlock.scan.checks import Context, Hit
from archlock.scan.guards import (
    Fact,
    ModuleInfo,
    exit_facts,
    facts,
    is_import_fallback,
    loop_facts,
    module_info,
    skip_facts,
)


def scan_tree(tree: ast.Module) -> list[Hit]:
    """Every rule hit in a parsed module."""
    visitor = Visitor(module_info(tree))
    visitor.visit(tree)
    return visitor.hits


class Visitor(ast.NodeVisitor):
    def __init__(self, info: ModuleInfo) -> None:
        self.info = info
        self.ctx = Context()
        self.hits: list[Hit] = []
        self._elifs: set[int] = set()

    @contextmanager
    def _within(self, more: frozenset[Fact] = frozenset(), **changes: bool) -> Iterator[None]:
        saved = self.ctx
        self.ctx = replace(saved, facts=saved.facts | more, **changes)
        try:
            yield
        finally:
            self.ctx = saved

    def _facts(self, test: ast.AST, truth: bool) -> frozenset[Fact]:
        return facts(test, truth, self.info)

    def block(self, stmts: list[ast.stmt]) -> None:
        saved = self.ctx
        for stmt in stmts:
            self.visit(stmt)
            after = exit_facts(stmt, self.info)
            if after:
                self.ctx = replace(self.ctx, facts=self.ctx.facts | after)
        self.ctx = saved

    def generic_visit(self, node: ast.AST) -> None:
        for _name, value in ast.iter_fields(node):
            if isinstance(value, list) and value and isinstance(value[0], ast.stmt):
                self.block(value)
            elif isinstance(value, list):
                for item in value:
                    if isinstance(item, ast.AST):
                        self.visit(item)
            elif isinstance(value, ast.AST):
                self.visit(value)

    # branches

    def visit_If(self, node: ast.If) -> None:
        if id(node) not in self._elifs:
            self.hits += checks.x86_branch(node, self.info)
        if len(node.orelse) == 1 and isinstance(node.orelse[0], ast.If):
            self._elifs.add(id(node.orelse[0]))
        self.visit(node.test)
        with self._within(self._facts(node.test, True)):
            self.block(node.body)
        with self._within(self._facts(node.test, False)):
            self.block(node.orelse)

    def visit_IfExp(self, node: ast.IfExp) -> None:
        self.visit(node.test)
        with self._within(self._facts(node.test, True)):
            self.visit(node.body)
        with self._within(self._facts(node.test, False)):
            self.visit(node.orelse)

    def visit_BoolOp(self, node: ast.BoolOp) -> None:
        known: frozenset[Fact] = frozenset()
        passes = isinstance(node.op, ast.And)  # later operands run only if earlier ones passed
        for value in node.values:
            with self._within(known):
                self.visit(value)
            known |= self._facts(value, passes)

    def visit_Assert(self, node: ast.Assert) -> None:
        self.hits += checks.x86_assert(node, self.info)
        self.generic_visit(node)

    def visit_Compare(self, node: ast.Compare) -> None:
        with self._within(in_compare=True):
            self.generic_visit(node)

    def visit_For(self, node: ast.For | ast.AsyncFor) -> None:
        self.visit(node.target)
        self.visit(node.iter)
        with self._within(loop_facts(node, self.info)):
            self.block(node.body)
        self.block(node.orelse)

    visit_AsyncFor = visit_For

    # fallbacks and decorated definitions

    def visit_Try(self, node: ast.Try | ast.TryStar) -> None:
        with self._within(import_fallback=self.ctx.import_fallback or is_import_fallback(node)):
            self.block(node.body)
        for handler in node.handlers:
            self.visit(handler)
        self.block(node.orelse)
        self.block(node.finalbody)

    visit_TryStar = visit_Try

    def visit_With(self, node: ast.With | ast.AsyncWith) -> None:
        for item in node.items:
            self.visit(item)
        with self._within(import_fallback=self.ctx.import_fallback or is_import_fallback(node)):
            self.block(node.body)

    visit_AsyncWith = visit_With

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self._decorators(node.decorator_list)
        self._parameter_defaults(node.args)
        self.visit(node.args)
        if node.returns:
            self.visit(node.returns)
        scope = self.info.can_use_mps and checks.handles_device(node)  # only AL109 asks
        with self._within(skip_facts(node.decorator_list, self.info), device_scope=scope):
            self.block(node.body)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self._decorators(node.decorator_list)
        for base in [*node.bases, *node.keywords]:
            self.visit(base)
        with self._within(skip_facts(node.decorator_list, self.info)):
            self.block(node.body)

    def _decorators(self, decorators: list[ast.expr]) -> None:
        for dec in decorators:
            if not isinstance(dec, ast.Call):  # `@torch.compile` without arguments
                self.hits += checks.compile_use(dec, self.ctx, self.info)
            self.visit(dec)

    def _parameter_defaults(self, args: ast.arguments) -> None:
        positional = [*args.posonlyargs, *args.args]
        with_default = positional[len(positional) - len(args.defaults) :]
        pairs = [*zip(with_default, args.defaults, strict=True)]
        keyword_only = zip(args.kwonlyargs, args.kw_defaults, strict=True)
        pairs += [(arg, d) for arg, d in keyword_only if d is not None]
        for arg, default in pairs:
            self.hits += checks.device_value(arg.arg, default, default, self.ctx)

    # leaves

    def visit_Call(self, node: ast.Call) -> None:
        self.hits += checks.call(node, self.ctx, self.info)
        self.generic_visit(node)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        self.hits += checks.float64_use(node, self.ctx, self.info)
        self.generic_visit(node)

    def visit_Constant(self, node: ast.Constant) -> None:
        self.hits += checks.arch_path(node, self.ctx, self.info)

    def visit_Import(self, node: ast.Import | ast.ImportFrom) -> None:
        self.hits += checks.gpu_import(node, self.ctx)

    visit_ImportFrom = visit_Import

    def visit_Assign(self, node: ast.Assign | ast.AnnAssign) -> None:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        for name in filter(None, map(names.identifier, targets)):
            value = node.value
            self.hits += checks.device_value(name, value, value or node, self.ctx, sep=" = ")
        self.generic_visit(node)

    visit_AnnAssign = visit_Assign

    def visit_Dict(self, node: ast.Dict) -> None:
        for key, value in zip(node.keys, node.values, strict=True):
            if isinstance(key, ast.Constant) and isinstance(key.value, str):
                self.hits += checks.device_value(repr(key.value), value, value, self.ctx, ": ")
        self.generic_visit(node)
