"""The ddmin core (archlock.repro.ddmin) on synthetic oracles, property-based.

Monotone oracles (the command fails exactly when a culprit set C is present): the result is C,
1-minimal, in at most 2*k*log2(n) + 2 trials. Arbitrary oracles (FAIL / PASS / UNRESOLVED drawn
per subset): the result still fails and is 1-minimal. Hypothesis runs derandomized with no
example database, so every run tries the same inputs.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from hypothesis import given, settings
from hypothesis import strategies as st

from archlock.repro.ddmin import Outcome, OutOfTime, bound, minimize

FIXED = settings(derandomize=True, database=None, deadline=None, max_examples=300)


def monotone(culprits: set[int]) -> Callable[[tuple[int, ...]], Outcome]:
    return lambda subset: Outcome.FAIL if culprits <= set(subset) else Outcome.PASS


@st.composite
def culprit_sets(draw: st.DrawFn) -> tuple[int, set[int]]:
    n = draw(st.integers(min_value=1, max_value=64))
    k = draw(st.integers(min_value=1, max_value=min(n, 8)))
    return n, set(draw(st.permutations(range(n)))[:k])


@FIXED
@given(culprit_sets())
def test_monotone_oracle_finds_the_culprit_set_within_the_bound(case: tuple[int, set[int]]) -> None:
    n, culprits = case
    result = minimize(list(range(n)), monotone(culprits))
    assert result.status == "narrowed" and result.complete
    assert set(result.culprits) == culprits
    assert len(result.trials) <= bound(n, len(culprits)), (n, sorted(culprits), len(result.trials))
    subsets = [trial.indices for trial in result.trials]
    assert len(subsets) == len(set(subsets))  # the cache: no subset tried twice
    assert [t.phase for t in result.trials[:2]] == ["reproduce", "lock"]


@FIXED
@given(st.integers(min_value=2, max_value=64), st.data())
def test_every_item_a_culprit_stays_within_the_bound(n: int, data: st.DataObject) -> None:
    k = data.draw(st.integers(min_value=max(1, n - 3), max_value=n))
    culprits = set(range(n - k, n))
    result = minimize(list(range(n)), monotone(culprits))
    assert set(result.culprits) == culprits and len(result.trials) <= bound(n, k)


def drawn_oracle(seed: int, n: int) -> Callable[[tuple[int, ...]], Outcome]:
    """Any answer per subset (a hash of the seed and the subset), except: everything fails and
    nothing passes, so there is something to narrow."""

    def oracle(subset: tuple[int, ...]) -> Outcome:
        if len(subset) == n:
            return Outcome.FAIL
        if not subset:
            return Outcome.PASS
        digest = hashlib.sha256(f"{seed}:{subset}".encode()).digest()
        return (Outcome.FAIL, Outcome.PASS, Outcome.UNRESOLVED)[digest[0] % 3]

    return oracle


@FIXED
@given(st.integers(min_value=1, max_value=10), st.integers(min_value=0, max_value=10**6))
def test_any_oracle_gives_a_failing_one_minimal_subset(n: int, seed: int) -> None:
    oracle = drawn_oracle(seed, n)
    result = minimize(list(range(n)), oracle)
    assert result.status == "narrowed" and result.complete
    assert oracle(result.culprits) is Outcome.FAIL
    for item in result.culprits:
        assert oracle(tuple(i for i in result.culprits if i != item)) is not Outcome.FAIL


def test_a_pair_that_fails_only_together_is_found_as_the_pair() -> None:
    result = minimize(list("abcdefgh"), monotone({"c", "f"}))  # type: ignore[arg-type]
    assert result.culprits == ("c", "f")
    assert [t.outcome for t in result.trials[:2]] == [Outcome.FAIL, Outcome.PASS]


def test_either_of_two_culprits_alone_is_enough() -> None:
    result = minimize(list(range(10)), lambda s: Outcome.FAIL if {2, 7} & set(s) else Outcome.PASS)
    assert len(result.culprits) == 1 and result.culprits[0] in {2, 7}


def test_nothing_to_narrow_when_the_whole_set_passes() -> None:
    result = minimize([1, 2, 3], lambda s: Outcome.PASS)
    assert result.status == "does-not-reproduce" and result.culprits == ()
    assert len(result.trials) == 1


def test_nothing_to_narrow_when_the_lock_fails_too() -> None:
    result = minimize([1, 2, 3], lambda s: Outcome.FAIL)
    assert result.status == "lock-fails" and [t.phase for t in result.trials] == [
        "reproduce",
        "lock",
    ]


def test_out_of_time_keeps_the_smallest_failing_subset_seen() -> None:
    calls: list[tuple[int, ...]] = []

    def oracle(subset: tuple[int, ...]) -> Outcome:
        calls.append(subset)
        if len(calls) > 4:
            raise OutOfTime
        return Outcome.FAIL if 5 in subset else Outcome.PASS

    result = minimize(list(range(16)), oracle)
    assert result.status == "out-of-time" and not result.complete
    assert 5 in result.culprits and len(result.culprits) < 16
    assert len(result.trials) == 4


def test_unresolved_trials_hand_over_to_ddmin() -> None:
    # installing 1 without 2 cannot work (UNRESOLVED); 3 is the culprit
    def oracle(subset: tuple[int, ...]) -> Outcome:
        if 1 in subset and 2 not in subset:
            return Outcome.UNRESOLVED
        return Outcome.FAIL if 3 in subset else Outcome.PASS

    result = minimize([0, 1, 2, 3, 4, 5], oracle)
    assert result.culprits == (3,) and result.complete
    assert any(t.phase == "ddmin" for t in result.trials) or all(
        t.outcome is not Outcome.UNRESOLVED for t in result.trials
    )
