"""Shared by the fuzz tests: the per-surface input counter, the nasty values, the one assertion.

Every generated input goes through `attempt(surface, call)`: the call may return or raise an
ArchlockError whose message is one line; anything else (a traceback for the user) fails the
test. `COUNTS` is printed at the end of the run (tests/fuzz/conftest.py).
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import tempfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from archlock.errors import ArchlockError

COUNTS: Counter[str] = Counter()
# FUZZ_TALLY=1: record unexpected exceptions by surface and kind instead of failing (to measure
# an older checkout); printed at the end with the counts
TALLY: Counter[str] = Counter()
TALLYING = os.environ.get("FUZZ_TALLY") == "1"
# how many inputs each test tries: FUZZ_SCALE=4 multiplies them for a longer local campaign
SCALE = float(os.environ.get("FUZZ_SCALE", "1"))


def examples(n: int) -> int:
    return max(1, int(n * SCALE))


def attempt(surface: str, call: Callable[[], Any]) -> tuple[Any, ArchlockError | None]:
    """(result, None) or (None, the ArchlockError): never any other exception."""
    COUNTS[surface] += 1
    if TALLYING:
        signal.signal(signal.SIGALRM, _hang)
        signal.alarm(HANG_SECONDS)
    try:
        return call(), None
    except Hang:
        TALLY[f"{surface}: hang (over {HANG_SECONDS} s)"] += 1
        return None, None
    except MemoryError:
        if not TALLYING:
            raise
        TALLY[f"{surface}: MemoryError"] += 1
        return None, None
    except ArchlockError as exc:
        line = exc.line()
        if TALLYING and ("\n" in line or "\r" in line):
            TALLY[f"{surface}: message of several lines"] += 1
            return None, exc
        assert line and "\n" not in line and "\r" not in line, f"not one line: {line!r}"
        return None, exc
    except Exception as exc:
        if not TALLYING:
            raise
        TALLY[f"{surface}: {type(exc).__name__}"] += 1
        return None, None
    finally:
        if TALLYING:
            signal.alarm(0)


HANG_SECONDS = 5


class Hang(BaseException):
    pass


def _hang(signum: int, frame: Any) -> None:
    raise Hang()


def flag(surface: str, kind: str, ok: bool, detail: Any = "") -> None:
    """An assertion on an outcome (injected line, half-written file) that FUZZ_TALLY counts."""
    if ok:
        return
    if TALLYING:
        TALLY[f"{surface}: {kind}"] += 1
        return
    raise AssertionError(f"{surface}: {kind}: {detail!r}")


# characters that split lines or mean something to a shell, YAML, HCL, TOML or a Dockerfile
BREAKERS = [
    "\n",
    "\r",
    "\r\n",
    "\x00",
    "\x0b",
    "\x0c",
    "\x1b",
    "\x7f",
    "\x85",
    "\u2028",
    "\u2029",
    "\ufeff",
]
SPECIALS = [
    '"',
    "'",
    "\\",
    "$",
    "`",
    "${",
    "${{",
    "%{",
    "$(",
    "#",
    ";",
    "&&",
    "|",
    " ",
    "\t",
    "..",
    "/",
    ":",
]

nasty_char = st.sampled_from(BREAKERS + SPECIALS)


def nasty_text(base: st.SearchStrategy[str] | None = None) -> st.SearchStrategy[str]:
    """A valid-looking value with a line break or special character inserted or appended."""
    base = base if base is not None else st.text(max_size=20)
    return st.one_of(
        st.text(max_size=30),
        st.builds(lambda a, c: a + c, base, nasty_char),  # the `$` hole: "3.11\n"
        st.builds(lambda a, c, b: a + c + b, base, nasty_char, base),
        st.builds(lambda c, a: c + a, nasty_char, base),
    )


json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    nasty_text(),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def scratch(label: str) -> Path:
    """A scratch folder for one test module, removed when the run ends."""
    folder = Path(tempfile.mkdtemp(prefix=f"archlock-fuzz-{label}-"))
    atexit.register(shutil.rmtree, folder, True)
    return folder


def tree_state(root: Path) -> dict[str, bytes]:
    """Every file under `root` with its bytes: compare before and after a failing run."""
    state = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.is_symlink():
            state[path.relative_to(root).as_posix()] = path.read_bytes()
    return state


def has_control(text: str) -> bool:
    return any(ord(c) < 32 or ord(c) == 127 or c in "\x85\u2028\u2029" for c in text)
