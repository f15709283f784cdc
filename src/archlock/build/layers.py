"""The venv's layer plan: which locked packages share an image layer, decided from the lock.

A dependency bump should move only the bytes that changed, so the venv is not one layer:
torch; the nvidia-* stack (in chunks, see WHEEL_BUDGET); each other package whose wheel is over
BIG; the rest (with the venv's own files). Lower layers change least often. Sizes are the wheel
sizes the env's pylock declares for its platform. The Dockerfile's dependency stage installs
the venv once and moves each file to its group's folder, /opt/layers/<layer>/opt/venv/, by the
RECORD of the distribution that owns it (SPLIT_SCRIPT); the runtime stage copies each folder onto
the image's root as its own layer (so the folders above the venv's files come from the folder,
dated and owned the same in every build, not from the copy).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from archlock.core.lockfile import canonical

BIG = 50_000_000  # bytes of wheel: a package above it gets its own layer
# Installed bytes are about 1.45 x wheel bytes (a CUDA venv: 6.2 GB from 4.3 GB of wheels), and a
# layer must stay under 4 GB: at most 2 GB of wheels per nvidia chunk leaves room.
WHEEL_BUDGET = 2_000_000_000
REST = "rest"
_NAME = re.compile(r"[a-z0-9][a-z0-9-]*")


@dataclass(frozen=True)
class Layer:
    name: str  # a folder name: lowercase letters, digits, dashes
    packages: tuple[str, ...]  # canonical names; empty for REST (everything else)
    wheel_bytes: int

    @property
    def argument(self) -> str:
        """The split script's argument for this layer: NAME=pkg,pkg."""
        return f"{self.name}={','.join(self.packages)}"


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


def split_lines() -> list[str]:
    """SPLIT_SCRIPT's lines, for the Dockerfile's printf (one quoted word per line)."""
    return SPLIT_SCRIPT.splitlines()


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


# Run in the dependency stage with the image's python3 (3.8+): moves every file of /opt/venv into
# /opt/layers/<layer>/opt/venv/ (same relative path) by the RECORD of the distribution owning it;
# a .pyc follows its source; files nobody owns (the venv's own) and empty folders go to REST.
SPLIT_SCRIPT = (
    "import csv,glob,os,re,sys\n"
    "V,O='/opt/venv','/opt/layers'\n"
    "of={p:g for g,ps in (a.split('=',1) for a in sys.argv[1:]) for p in ps.split(',') if p}\n"
    "own={}\n"
    "for g in [a.split('=',1)[0] for a in sys.argv[1:]]:\n"
    " os.makedirs(O+'/'+g+'/opt/venv',exist_ok=True)\n"
    "for sp in glob.glob(V+'/lib/python*/site-packages'):\n"
    " for d in os.listdir(sp):\n"
    "  if d.endswith('.dist-info'):\n"
    "   g=of.get(re.sub(r'[-_.]+','-',d[:-10].split('-')[0]).lower(),'" + REST + "')\n"
    "   with open(os.path.join(sp,d,'RECORD'),newline='') as f:\n"
    "    for row in csv.reader(f):\n"
    "     if row:own[os.path.normpath(os.path.join(sp,row[0]))]=g\n"
    "def group(p):\n"
    " g=own.get(p)\n"
    " if g is None and os.path.basename(os.path.dirname(p))=='__pycache__':\n"
    "  src=os.path.dirname(os.path.dirname(p))+'/'+os.path.basename(p).split('.')[0]+'.py'\n"
    "  g=own.get(src)\n"
    " return g or '" + REST + "'\n"
    "for root,dirs,files in os.walk(V,topdown=False):\n"
    " if not files and not dirs:os.makedirs(O+'/"
    + REST
    + "/opt/venv'+root[len(V):],exist_ok=True)\n"
    " for n in files+[d for d in dirs if os.path.islink(os.path.join(root,d))]:\n"
    "  p=os.path.join(root,n)\n"
    "  t=O+'/'+group(p)+'/opt/venv'+p[len(V):]\n"
    "  os.makedirs(os.path.dirname(t),exist_ok=True)\n"
    "  os.rename(p,t)\n"
    " os.rmdir(root)\n"
)
