"""A small evaluator of a GitHub Actions workflow's job graph: `needs`, `if` and `runs-on`.

It knows the subset of the expression language the rendered workflow uses and refuses anything
else (so a template change that needs more must extend it knowingly): literals ('text', true,
false, null, numbers), context paths under github., inputs., vars., env., needs., runner., the
operators ! == != && || and parentheses, and the functions success(), failure(), cancelled(),
always() and fromJSON(). Semantics follow GitHub's documentation: `&&`/`||` return an operand,
strings compare case-insensitively, a job `if` without a status function means
`success() && (...)`, and success()/failure() look at every job the job needs, transitively.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

TOKEN = re.compile(
    r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<num>-?[0-9]+(?:\.[0-9]+)?)"
    r"|(?P<op>&&|\|\||==|!=|!|\(|\)|,)"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_-]*(?:\.[A-Za-z_][A-Za-z0-9_-]*)*))"
)
ROOTS = ("github", "inputs", "vars", "env", "needs", "runner")
STATUS = ("success", "failure", "cancelled", "always")


class Unsupported(ValueError):
    """An expression outside the subset this evaluator knows."""


def tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        match = TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            raise Unsupported(f"cannot read {text[pos:]!r} in {text!r}")
        kind = match.lastgroup or ""
        out.append((kind, match.group(kind)))
        pos = match.end()
    return out


@dataclass
class Parser:
    """Recursive descent, GitHub's precedence: ! > == != > && > ||."""

    items: list[tuple[str, str]]
    lookup: Callable[[str], Any]
    status: Callable[[str], bool]
    pos: int = 0

    def peek(self) -> str | None:
        return self.items[self.pos][1] if self.pos < len(self.items) else None

    def take(self, expected: str | None = None) -> tuple[str, str]:
        if self.pos >= len(self.items):
            raise Unsupported("expression ends early")
        item = self.items[self.pos]
        if expected is not None and item[1] != expected:
            raise Unsupported(f"expected {expected!r}, found {item[1]!r}")
        self.pos += 1
        return item

    def parse(self) -> Any:
        value = self.either()
        if self.pos != len(self.items):
            raise Unsupported(f"unexpected {self.peek()!r}")
        return value

    def either(self) -> Any:
        value = self.both()
        while self.peek() == "||":
            self.take()
            right = self.both()
            value = value if truthy(value) else right
        return value

    def both(self) -> Any:
        value = self.compare()
        while self.peek() == "&&":
            self.take()
            right = self.compare()
            value = right if truthy(value) else value
        return value

    def compare(self) -> Any:
        value = self.unary()
        while self.peek() in ("==", "!="):
            op = self.take()[1]
            same = equal(value, self.unary())
            value = same if op == "==" else not same
        return value

    def unary(self) -> Any:
        if self.peek() == "!":
            self.take()
            return not truthy(self.unary())
        return self.atom()

    def atom(self) -> Any:
        kind, text = self.take()
        if text == "(" and kind == "op":
            value = self.either()
            self.take(")")
            return value
        if kind == "str":
            return text[1:-1].replace("''", "'")
        if kind == "num":
            return float(text)
        if kind != "name":
            raise Unsupported(f"unexpected {text!r}")
        if self.peek() == "(":
            return self.call(text)
        literals = {"true": True, "false": False, "null": None}
        if text in literals:
            return literals[text]
        if text.split(".")[0] not in ROOTS:
            raise Unsupported(f"context {text!r} is outside the evaluated subset")
        return self.lookup(text)

    def call(self, name: str) -> Any:
        self.take("(")
        if name in STATUS:
            self.take(")")
            return self.status(name)
        if name != "fromJSON":
            raise Unsupported(f"function {name}() is outside the evaluated subset")
        argument = self.either()
        self.take(")")
        return json.loads(str(argument))


def truthy(value: Any) -> bool:
    return value not in (None, False, "", 0, 0.0)


def equal(a: Any, b: Any) -> bool:
    if isinstance(a, str) and isinstance(b, str):
        return a.lower() == b.lower()
    return bool(a == b)


def unwrap(text: Any) -> str:
    """The expression inside `${{ }}` (GitHub strips it in `if:`), else the text itself."""
    value = str(text).strip()
    if value.startswith("${{") and value.endswith("}}"):
        return value[3:-2].strip()
    return value


def evaluate(
    text: Any, values: Mapping[str, Any], status: Callable[[str], bool] | None = None
) -> Any:
    def lookup(path: str) -> Any:
        return values.get(path)

    def no_status(name: str) -> bool:
        raise Unsupported(f"{name}() is only for if:")

    return Parser(tokens(unwrap(text)), lookup, status or no_status).parse()


def uses_status(text: str) -> bool:
    return any(kind == "name" and value in STATUS for kind, value in tokens(text))


def runs_on(job: Mapping[str, Any], values: Mapping[str, Any]) -> tuple[str, ...]:
    """A job's runner labels: a label, a list, or an expression giving one of them."""
    raw = job["runs-on"]
    if isinstance(raw, list):
        return tuple(raw)
    text = str(raw)
    value = evaluate(text, values) if "${{" in text else text
    return tuple(value) if isinstance(value, list) else (str(value),)


# -- the run ------------------------------------------------------------------------------------
@dataclass
class Scenario:
    event: dict[str, Any]  # github.* values: event_name, event.pull_request..., ref_type
    fails: set[str] = field(default_factory=set)  # jobs that fail when they run
    cancel_after: str | None = None  # the run is cancelled while this job runs
    runners: set[str] | None = None  # labels some runner offers (None: any hosted label)
    previous: dict[str, str] | None = None  # "re-run failed jobs": the first attempt's results
    artifacts: dict[str, str] = field(default_factory=dict)  # what earlier attempts uploaded


@dataclass
class Run:
    results: dict[str, str]  # job -> success | failure | skipped | cancelled | waiting
    runs_on: dict[str, tuple[str, ...]]
    steps: dict[str, list[str]]  # job -> names (or uses) of the steps that ran
    artifacts: dict[str, str]  # artifact name -> job that uploaded it


def needs_of(job: Mapping[str, Any]) -> list[str]:
    raw = job.get("needs", [])
    return [raw] if isinstance(raw, str) else list(raw)


def ancestors(jobs: Mapping[str, Any], name: str) -> set[str]:
    found: set[str] = set()
    todo = needs_of(jobs[name])
    while todo:
        item = todo.pop()
        if item not in found:
            found.add(item)
            todo += needs_of(jobs[item])
    return found


def order(jobs: Mapping[str, Any]) -> list[str]:
    done: list[str] = []
    while len(done) < len(jobs):
        ready = [n for n in jobs if n not in done and all(d in done for d in needs_of(jobs[n]))]
        if not ready:
            raise Unsupported("the needs graph has a cycle")
        done += ready
    return done


def simulate(workflow: Mapping[str, Any], scenario: Scenario) -> Run:
    jobs = workflow["jobs"]
    base = {f"github.{k}": v for k, v in scenario.event.items()}
    run = Run({}, {}, {}, dict(scenario.artifacts))
    rerun = _rerun_set(jobs, scenario.previous)
    cancelled = False
    for name in order(jobs):
        if scenario.previous is not None and name not in rerun:
            run.results[name] = scenario.previous[name]
            continue
        job = jobs[name]
        values = dict(base)
        values.update({f"needs.{n}.result": run.results.get(n) for n in needs_of(job)})
        if any(run.results.get(n) == "waiting" for n in needs_of(job)):
            run.results[name] = "waiting"
            continue
        status = _status(jobs, name, run.results, cancelled)
        condition = job.get("if", "success()")
        text = unwrap(condition)
        if not uses_status(text):
            text = f"success() && ({text})"
        if not truthy(evaluate(text, values, status)):
            run.results[name] = "skipped"
            continue
        labels = runs_on(job, values)
        run.runs_on[name] = labels
        if scenario.runners is not None and not set(labels) <= scenario.runners:
            run.results[name] = "waiting"  # no runner offers these labels: queued, never started
            continue
        failed = name in scenario.fails
        if name == scenario.cancel_after:
            cancelled = True
        result = (
            "cancelled" if name == scenario.cancel_after else "failure" if failed else "success"
        )
        _steps(run, name, job, values, labels, result)
        run.results[name] = result
    return run


def _rerun_set(jobs: Mapping[str, Any], previous: dict[str, str] | None) -> set[str]:
    if previous is None:
        return set(jobs)
    failed = {n for n, r in previous.items() if r in ("failure", "cancelled")}
    return failed | {n for n in jobs if ancestors(jobs, n) & failed}


def _status(
    jobs: Mapping[str, Any], name: str, results: Mapping[str, str], cancelled: bool
) -> Callable[[str], bool]:
    above = [results.get(n) for n in ancestors(jobs, name)]

    def status(function: str) -> bool:
        if function == "always":
            return True
        if function == "cancelled":
            return cancelled
        if function == "failure":
            return "failure" in above
        return not cancelled and all(r == "success" for r in above)

    return status


def _steps(
    run: Run,
    name: str,
    job: Mapping[str, Any],
    values: Mapping[str, Any],
    labels: tuple[str, ...],
    result: str,
) -> None:
    """The steps that ran; a failing job fails at its first step of work (a `nox -s` session or
    an image build), and the steps after it see failure() or cancelled()."""
    env = {f"env.{k}": v for k, v in job.get("env", {}).items() if "${{" not in str(v)}
    hosted = "self-hosted" not in labels
    scope = {**values, **env, "runner.environment": "github-hosted" if hosted else "self-hosted"}
    state = "success"  # until the job's first step of work, then its result
    ran: list[str] = []
    for step in job["steps"]:
        passed = {s: state == s for s in ("success", "failure", "cancelled")}
        condition = unwrap(step.get("if", "success()"))
        if not uses_status(condition):
            condition = f"success() && ({condition})"
        status = {**passed, "always": True}
        if not truthy(evaluate(condition, scope, status.__getitem__)):
            continue
        ran.append(step.get("name") or step.get("uses") or step.get("run", ""))
        if "upload-artifact" in step.get("uses", ""):
            _upload(run, name, step, scope)
        if "nox -s" in step.get("run", "") or "bake-action" in step.get("uses", ""):
            state = result  # the job's work: where it fails or is cancelled
    run.steps[name] = ran


def _upload(run: Run, job: str, step: Mapping[str, Any], scope: Mapping[str, Any]) -> None:
    """An upload: the artifact's name, resolved; a second upload needs `overwrite: true`."""
    name = re.sub(
        r"\$\{\{\s*(.*?)\s*\}\}", lambda m: str(evaluate(m.group(1), scope)), step["with"]["name"]
    )
    if name in run.artifacts and step["with"].get("overwrite") is not True:
        raise AssertionError(f"{job}: artifact {name} exists (409 Conflict without overwrite)")
    run.artifacts[name] = job
