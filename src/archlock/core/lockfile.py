"""The per-env lock format: reading pins, writing the stamped header, reading the stamps back.

A lock (`envs/locks/<env>.txt`, and `pylock.<env>.toml` beside it) is archlock's generated
header followed by uv's body. The header stamps hashes of the inputs the lock was made from and
of the body itself, so `archlock lock --check` can tell a stale lock from a hand-edited one
without resolving. `lock` writes this format; verify and repro only read it.
"""

from __future__ import annotations

import hashlib
import re

from packaging.utils import canonicalize_name

from archlock.core.fsutil import header_lines
from archlock.core.rules.versions import release

FORMAT = "1"
REGENERATE = "nox -s lock  (or: archlock lock)"
STAMP_RE = re.compile(r"^# archlock-inputs: (?P<inputs>.+)$", re.MULTILINE)
BODY_RE = re.compile(r"^# archlock-body: sha256=(?P<body>[0-9a-f]+)$", re.MULTILINE)
PIN_RE = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;\\]+)")


def canonical(name: str) -> str:
    """PEP 503 normalised project name (`Typing_Extensions` -> `typing-extensions`)."""
    return str(canonicalize_name(name))


def pins(text: str) -> dict[str, str]:
    """{canonical name: version} from a hashed requirements lock (or any `name==version` lines)."""
    found = {}
    for line in text.splitlines():
        match = PIN_RE.match(line)
        if match:
            found[canonical(match.group(1))] = match.group(2)
    return found


def pinned(text: str, name: str) -> str | None:
    """The version `text` pins for `name`, if it pins exactly one."""
    return pins(text).get(canonical(name))


def public_version(version: str) -> str:
    """The version without its local label: 2.10.0+cpu -> 2.10.0."""
    return version.split("+", 1)[0]


def same_version(one: str, other: str) -> bool:
    """PEP 440 equality ("1.0" == "1.0.0"; epochs, pre/post releases and labels count)."""
    mine, theirs = release(one), release(other)
    if mine is None or theirs is None:  # not versions: compared as text
        return one.strip().lower() == other.strip().lower()
    return mine == theirs


# -- stamps -------------------------------------------------------------------------------------
def digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def body_of(text: str) -> str:
    """The lock without its comment lines: what the body stamp hashes."""
    return "".join(line for line in text.splitlines(keepends=True) if not line.startswith("# "))


class StampError(ValueError):
    """A stamp line that is not `key=value` pairs (a hand edit): the lock counts as stale."""


def read_stamp(text: str) -> tuple[dict[str, str], str | None]:
    """(the stamped inputs, the stamped body hash) of a lock; ({}, None) for an unstamped file.
    A malformed `# archlock-inputs:` line raises StampError, whose text says what is wrong."""
    match = STAMP_RE.search(text)
    inputs: dict[str, str] = {}
    for part in match.group("inputs").split() if match else []:
        key, equals, value = part.partition("=")
        if not (key and equals):
            shown = part if len(part) <= 40 else part[:40] + "..."
            raise StampError(f"has a malformed archlock-inputs stamp ({shown!r} is not key=value)")
        inputs[key] = value
    body = BODY_RE.search(text)
    return inputs, body.group("body") if body else None


def stamped(body: str, describe: str, inputs: dict[str, str]) -> str:
    """`body` under the generated header: what it is for, its inputs' hashes, its own hash."""
    head = [
        *header_lines(REGENERATE),
        f"# env: {describe}",
        "# archlock-inputs: " + " ".join(f"{k}={v}" for k, v in inputs.items()),
        f"# archlock-body: sha256={digest(body_of(body))}",
    ]
    return "\n".join(head) + "\n" + body
