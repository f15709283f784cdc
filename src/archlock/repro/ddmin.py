"""Delta debugging over a drift set: the smallest subset of differences that still fails.

Pure logic, no processes: `minimize(items, test)` asks `test(subset)` (FAIL, PASS or UNRESOLVED)
and returns a 1-minimal failing subset with every trial in order. Tested subsets are cached, so
no subset is tried twice.

1. The whole set must FAIL (the teammate's env reproduces) and the empty set must PASS (the
   locked env is fine); otherwise there is nothing to narrow and the result says which.
2. Narrow, culprit by culprit: a binary search for the shortest prefix that, with the culprits
   found so far, still fails; its last item is one more culprit. After each culprit, the found
   set alone is tried; when it fails, narrowing ends. For a monotone test (fails exactly when a
   culprit set C is present), that costs at most k*ceil(log2 n) + k - 1 trials for |C| = k, and
   finds a pair that fails only together as the pair.
3. Check 1-minimality: every subset with one culprit removed is tried (the cache answers most).
   Any surprise -- an UNRESOLVED answer, a smaller failing subset, a broken search invariant --
   hands over to Zeller's ddmin (granularity from 2, subsets then complements), which guarantees
   a 1-minimal result for any test, starting from the smallest failing subset known.

A test may raise `OutOfTime`: the result then carries the smallest failing subset seen so far and
`complete` False.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


class Outcome(enum.Enum):
    FAIL = "fail"  # fails the recorded way
    PASS = "pass"  # the command succeeds
    UNRESOLVED = "unresolved"  # neither: cannot install, fails differently, timed out


class OutOfTime(Exception):
    """Raised by a test when the run's time is spent."""


@dataclass(frozen=True)
class Trial:
    number: int
    indices: tuple[int, ...]  # positions in `items`
    outcome: Outcome
    phase: str  # "reproduce" | "lock" | "narrow" | "minimal" | "ddmin"


@dataclass(frozen=True)
class Result(Generic[T]):
    status: str  # "narrowed" | "does-not-reproduce" | "lock-fails" | "out-of-time" | "unresolved"
    culprits: tuple[T, ...]
    indices: tuple[int, ...]
    trials: tuple[Trial, ...]
    complete: bool  # True: `culprits` is 1-minimal (each one removed, it no longer fails)


def bound(n: int, k: int) -> float:
    """The trial budget the narrowing keeps to for monotone tests: 2*k*log2(n) + 2."""
    return 2 * k * math.log2(n) + 2 if n > 0 else 2


def _size_then_items(indices: tuple[int, ...]) -> tuple[int, tuple[int, ...]]:
    return len(indices), indices


class _Surprise(Exception):
    """The monotone search met an answer it cannot use: ddmin takes over."""


class Tester(Generic[T]):
    """`test` over index sets, cached, every new trial logged."""

    def __init__(self, items: Sequence[T], test: Callable[[tuple[T, ...]], Outcome]) -> None:
        self.items = tuple(items)
        self.test = test
        self.cache: dict[frozenset[int], Outcome] = {}
        self.log: list[Trial] = []
        self.phase = "reproduce"

    def __call__(self, indices: Sequence[int]) -> Outcome:
        key = frozenset(indices)
        if key not in self.cache:
            ordered = tuple(sorted(key))
            outcome = self.test(tuple(self.items[i] for i in ordered))
            self.cache[key] = outcome
            self.log.append(Trial(len(self.log) + 1, ordered, outcome, self.phase))
        return self.cache[key]

    def smallest_failing(self) -> tuple[int, ...]:
        failing = [key for key, outcome in self.cache.items() if outcome is Outcome.FAIL]
        if not failing:
            return ()
        ordered: list[tuple[int, ...]] = [tuple(sorted(key)) for key in failing]
        return min(ordered, key=_size_then_items)


def minimize(items: Sequence[T], test: Callable[[tuple[T, ...]], Outcome]) -> Result[T]:
    """The 1-minimal failing subset of `items` under `test`, and every trial."""
    tester = Tester(items, test)
    everything = tuple(range(len(tester.items)))
    try:
        if tester(everything) is not Outcome.FAIL:
            return _result(tester, "does-not-reproduce", (), complete=True)
        tester.phase = "lock"
        if tester([]) is not Outcome.PASS:
            return _result(tester, "lock-fails", (), complete=True)
        tester.phase = "narrow"
        try:
            found = _narrow(tester, everything)
            tester.phase = "minimal"
            found = _check_minimal(tester, found)
        except _Surprise:
            tester.phase = "ddmin"
            found = ddmin(tester, tester.smallest_failing())
    except OutOfTime:
        return _result(tester, "out-of-time", tester.smallest_failing(), complete=False)
    return _result(tester, "narrowed", found, complete=True)


def _result(tester: Tester[T], status: str, indices: Sequence[int], complete: bool) -> Result[T]:
    ordered = tuple(sorted(indices))
    return Result(
        status=status,
        culprits=tuple(tester.items[i] for i in ordered),
        indices=ordered,
        trials=tuple(tester.log),
        complete=complete,
    )


def _narrow(tester: Tester[T], everything: tuple[int, ...]) -> tuple[int, ...]:
    """Culprit by culprit; invariant: `found + rest` fails."""
    found: list[int] = []
    rest = list(everything)
    while True:
        if found:
            outcome = tester(found)
            if outcome is Outcome.FAIL:
                return tuple(found)
            if outcome is Outcome.UNRESOLVED or not rest:
                raise _Surprise
        low, high = 0, len(rest)  # found + rest[:low] passes, found + rest[:high] fails
        while high - low > 1:
            middle = (low + high) // 2
            outcome = tester(found + rest[:middle])
            if outcome is Outcome.UNRESOLVED:
                raise _Surprise
            low, high = (low, middle) if outcome is Outcome.FAIL else (middle, high)
        found.append(rest[high - 1])
        del rest[high - 1 :]


def _check_minimal(tester: Tester[T], found: tuple[int, ...]) -> tuple[int, ...]:
    if len(found) < 2:
        return found
    for index in found:
        if tester([i for i in found if i != index]) is not Outcome.PASS:
            raise _Surprise
    return found


def ddmin(tester: Tester[T], start: Sequence[int]) -> tuple[int, ...]:
    """Zeller's ddmin from a failing `start`: 1-minimal for any test."""
    current = list(start)
    granularity = 2
    while len(current) >= 2:
        parts = _split(current, granularity)
        reduced = next((part for part in parts if tester(part) is Outcome.FAIL), None)
        if reduced is not None:
            current, granularity = reduced, 2
            continue
        if granularity > 2:
            complements = ([i for i in current if i not in part] for part in parts)
            reduced = next((c for c in complements if tester(c) is Outcome.FAIL), None)
            if reduced is not None:
                current, granularity = reduced, max(granularity - 1, 2)
                continue
        if granularity >= len(current):
            break
        granularity = min(2 * granularity, len(current))
    return tuple(current)


def _split(items: list[int], parts: int) -> list[list[int]]:
    size, extra = divmod(len(items), parts)
    out, start = [], 0
    for number in range(parts):
        end = start + size + (1 if number < extra else 0)
        out.append(items[start:end])
        start = end
    return out
