"""The venv's layer plan: which locked packages share an image layer, decided from the lock.

A dependency bump should move only the bytes that changed, so the venv is not one layer:
torch; the nvidia-* stack (in chunks, see WHEEL_BUDGET); each other package whose wheel is over
BIG; the rest. Lower layers change least often. Sizes are the wheel
sizes the env's pylock declares for its platform. The image's own stage installs each layer's
packages in a RUN of their own (`pinned`: the lock's hashed entries, written into that RUN), so
a layer's bytes are its packages' files, a bump rebuilds the layers from its package's up, and
no stage holds a second copy of the venv (peak disk about the image's size, not twice it).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any

from archlock.core.lockfile import canonical

BIG = 50_000_000  # bytes of wheel: a package above it gets its own layer
# Installed bytes are about 1.45 x wheel bytes (a CUDA venv: 6.2 GB from 4.3 GB of wheels), and a
# layer must stay under 4 GB: at most 2 GB of wheels per nvidia chunk leaves room.
WHEEL_BUDGET = 2_000_000_000
REST = "rest"
_NAME = re.compile(r"[a-z0-9][a-z0-9-]*")
_ENTRY = re.compile(r"([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^]]*\])?\s*==")


@dataclass(frozen=True)
class Layer:
    name: str  # a folder name: lowercase letters, digits, dashes
    packages: tuple[str, ...]  # canonical names; empty for REST (everything else)
    wheel_bytes: int

    # the lock's entries for this layer ("name==version --hash=sha256:..."), set by `pinned`
    requirements: tuple[str, ...] = ()


def wheel_sizes(
    packages: Iterable[tuple[str, list[dict[str, Any]]]], fits: Callable[[dict[str, Any]], bool]
) -> dict[str, int]:
    """Canonical name -> bytes of the largest wheel `fits(wheel)` accepts, from a pylock's
    (name, wheels) pairs as render read and checked them."""
    sizes = {}
    for raw, wheels in packages:
        name = canonical(raw)
        fitting = [int(w.get("size", 0)) for w in wheels if fits(w)]
        if _NAME.fullmatch(name):
            sizes[name] = max(fitting, default=0)
    return sizes


def plan(sizes: dict[str, int]) -> tuple[Layer, ...]:
    """The layers for these packages, bottom first; always ends with REST."""
    layers: list[Layer] = []
    if "torch" in sizes:
        layers.append(Layer("torch", ("torch",), sizes["torch"]))
    nvidia = sorted(n for n in sizes if n.startswith("nvidia-"))
    layers += _chunks("nvidia", nvidia, sizes)
    taken = {p for layer in layers for p in layer.packages}
    for name in sorted(n for n in sizes if n not in taken and sizes[n] > BIG):
        layers.append(Layer(f"pkg-{name}", (name,), sizes[name]))
        taken.add(name)
    rest = sum(size for name, size in sizes.items() if name not in taken)
    return (*layers, Layer(REST, (), rest))


def _chunks(prefix: str, names: list[str], sizes: dict[str, int]) -> list[Layer]:
    """`names` in order, cut into runs of at most WHEEL_BUDGET wheel bytes."""
    runs: list[list[str]] = []
    total = 0
    for name in names:
        if not runs or total + sizes[name] > WHEEL_BUDGET:
            runs.append([])
            total = 0
        runs[-1].append(name)
        total += sizes[name]
    if len(runs) == 1:
        return [Layer(prefix, tuple(runs[0]), sum(sizes[n] for n in runs[0]))]
    return [
        Layer(f"{prefix}-{i}", tuple(run), sum(sizes[n] for n in run))
        for i, run in enumerate(runs, 1)
    ]


def entries(lock_text: str) -> dict[str, str]:
    """Canonical name -> its entry in a hashed requirements lock, on one line
    ("name==1.0 --hash=sha256:..."); comments and continuation backslashes dropped."""
    blocks: list[list[str]] = []
    for line in lock_text.splitlines():
        words = line.rstrip().removesuffix("\\").split()
        if not words or words[0].startswith("#"):
            continue
        if line[:1].isspace() and blocks:
            blocks[-1] += words
        else:
            blocks.append(words)
    found = {}
    for words in blocks:
        match = _ENTRY.match(words[0])
        if match:
            found[canonical(match.group(1))] = " ".join(words)
    return found


def pinned(layers: tuple[Layer, ...], lock_text: str) -> tuple[Layer, ...]:
    """The plan with each layer's lock entries; a layer the lock gives nothing is left out."""
    found = entries(lock_text)
    taken = {p for layer in layers for p in layer.packages}
    pinned_layers = []
    for layer in layers:
        names = layer.packages if layer.packages else tuple(n for n in found if n not in taken)
        lines = tuple(found[n] for n in sorted(names) if n in found)
        if lines:
            pinned_layers.append(replace(layer, requirements=lines))
    return tuple(pinned_layers)
