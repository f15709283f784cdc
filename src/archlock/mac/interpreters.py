"""Finding Python interpreters on a Mac and judging them: never by name or path.

An interpreter fits when its Mach-O header has an arm64 slice AND, run with `arch -arm64`, it
reports `arm64` and the env's Python version. A universal2 build passes; an x86_64-only build
(Intel Homebrew, an old installer, an x86 conda) fails before it is ever run.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

from archlock.inenv.probe_headers import macho_archs
from archlock.mac.host import NATIVE_PREFIX
from archlock.mac.system import MacSystem

NATIVE_SLICES = ("arm64", "arm64e")
PROBE_CODE = (
    "import platform,sys; "
    "print(platform.machine(), '%d.%d' % sys.version_info[:2], sys.implementation.name)"
)
CONDA_BASES = (
    "~/miniforge3",
    "~/mambaforge",
    "~/miniconda3",
    "~/anaconda3",
    "/opt/homebrew/Caskroom/miniforge/base",
    "/opt/homebrew/Caskroom/miniconda/base",
)


@dataclass(frozen=True)
class Candidate:
    path: str
    source: str  # where it was found: Homebrew, uv, pyenv, conda, python.org, PATH, macOS


@dataclass(frozen=True)
class Judgement:
    candidate: Candidate
    archs: tuple[str, ...]  # Mach-O slices; () when the file is not Mach-O
    machine: str | None  # platform.machine() when run with `arch -arm64`
    version: str | None  # "3.11"
    fits: bool
    reason: str

    @property
    def x86_only(self) -> bool:
        return bool(self.archs) and not any(arch in NATIVE_SLICES for arch in self.archs)

    def describe(self) -> str:
        slices = "+".join(self.archs) or "not Mach-O"
        return f"{self.candidate.path} ({self.candidate.source}, {slices}): {self.reason}"


def has_native_slice(archs: tuple[str, ...] | list[str]) -> bool:
    return any(arch in NATIVE_SLICES for arch in archs)


# -- discovery ---------------------------------------------------------------------------------


def discover(system: MacSystem, python: str, uv: str | None) -> list[Candidate]:
    """Every interpreter of version `python` worth judging, best source first, no duplicates."""
    found: list[Candidate] = []
    seen: set[str] = set()
    for source, pattern in _patterns(system, python):
        for path in system.glob(pattern):
            _add(system, found, seen, Candidate(path, source))
    for path in _uv_managed(system, python, uv):
        _add(system, found, seen, Candidate(path, "uv"))
    for path in path_entries(system, f"python{python}"):
        _add(system, found, seen, Candidate(path, "PATH"))
    return found


def system_python(system: MacSystem) -> Candidate | None:
    """Apple's /usr/bin/python3: tried last, only when nothing else fits (without the command
    line tools it is a stub that opens an installer dialog)."""
    path = "/usr/bin/python3"
    return Candidate(path, "macOS") if system.is_executable(path) else None


def _patterns(system: MacSystem, python: str) -> list[tuple[str, str]]:
    home, env = system.home(), system.environ()
    uv_dir = env.get("UV_PYTHON_INSTALL_DIR") or f"{home}/.local/share/uv/python"
    pyenv = env.get("PYENV_ROOT") or f"{home}/.pyenv"
    patterns = [
        ("Homebrew", f"/opt/homebrew/bin/python{python}"),
        ("Homebrew", f"/opt/homebrew/opt/python@{python}/bin/python{python}"),
        ("uv", f"{uv_dir}/cpython-{python}.*/bin/python{python}"),
        ("pyenv", f"{pyenv}/versions/{python}.*/bin/python{python}"),
    ]
    for base in CONDA_BASES:
        base = base.replace("~", home, 1)
        patterns += [
            ("conda", f"{base}/bin/python{python}"),
            ("conda", f"{base}/envs/*/bin/python{python}"),
        ]
    framework = f"/Library/Frameworks/Python.framework/Versions/{python}/bin/python{python}"
    return [*patterns, ("python.org", framework)]


def _uv_managed(system: MacSystem, python: str, uv: str | None) -> list[str]:
    if not uv:
        return []
    argv = [uv, "python", "list", "--only-installed", "--managed-python", "--all-arches"]
    result = system.capture([*argv, "--output-format", "json", python])
    if result.returncode != 0:
        return []
    try:
        rows = json.loads(result.stdout or "[]")
    except json.JSONDecodeError:
        return []
    return [str(row["path"]) for row in rows if isinstance(row, dict) and row.get("path")]


def _add(system: MacSystem, found: list[Candidate], seen: set[str], candidate: Candidate) -> None:
    if not system.is_executable(candidate.path):
        return
    real = system.realpath(candidate.path)
    if real not in seen:
        seen.add(real)
        found.append(candidate)


def path_entries(system: MacSystem, name: str) -> list[str]:
    """Every executable `name` on PATH, in the order the shell would find them."""
    hits = []
    for folder in system.environ().get("PATH", "").split(os.pathsep):
        if folder and system.is_executable(f"{folder.rstrip('/')}/{name}"):
            hits.append(f"{folder.rstrip('/')}/{name}")
    return hits


# -- judgement ---------------------------------------------------------------------------------


def judge(system: MacSystem, candidate: Candidate, python: str) -> Judgement:
    head = system.head(candidate.path) or b""
    archs = tuple(macho_archs(head))
    if archs and not has_native_slice(archs):
        reason = (
            f"{'+'.join(archs)} only: it runs under Rosetta 2, where PyPI's newest torch is 2.2.2"
        )
        return Judgement(candidate, archs, None, None, False, reason)
    if not archs and not head.startswith(b"#!"):
        return Judgement(candidate, archs, None, None, False, "not a Mach-O executable")
    result = system.capture([*NATIVE_PREFIX, candidate.path, "-c", PROBE_CODE])
    words = result.stdout.split()
    if result.returncode != 0 or len(words) != 3:
        first = (result.stderr.strip().splitlines() or ["no output"])[0]
        return Judgement(candidate, archs, None, None, False, f"failed to run natively: {first}")
    machine, version, implementation = words
    fits, reason = _verdict(machine, version, implementation, python)
    if fits and not archs:  # a launcher script (a pyenv shim): only a real binary is chosen
        fits, reason = False, f"a launcher script that starts a {reason} interpreter"
    return Judgement(candidate, archs, machine, version, fits, reason)


def _verdict(machine: str, version: str, implementation: str, python: str) -> tuple[bool, str]:
    if machine != "arm64":
        return False, f"reports {machine} even when run with `arch -arm64`"
    if implementation != "cpython":
        return False, f"{implementation}, not CPython"
    if version != python:
        return False, f"native, but Python {version} (the env needs {python})"
    return True, f"native arm64, Python {version}"


def choose(
    system: MacSystem, python: str, uv: str | None
) -> tuple[Judgement | None, list[Judgement]]:
    """The first fitting interpreter, best source first, and every judgement made on the way."""
    judged = [judge(system, candidate, python) for candidate in discover(system, python, uv)]
    fit = next((j for j in judged if j.fits), None)
    if fit is None:
        fallback = system_python(system)
        if fallback is not None and fallback.path not in {j.candidate.path for j in judged}:
            judged.append(judge(system, fallback, python))
            fit = judged[-1] if judged[-1].fits else None
    return fit, judged


def uv_install_request(python: str) -> str:
    """What `uv python install` / `uv venv --python` take for a native CPython of this version."""
    return f"cpython-{python}-macos-aarch64-none"


# -- uv itself ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class UvChoice:
    path: str | None  # a uv with an arm64 slice, or None
    rejected: tuple[tuple[str, tuple[str, ...]], ...]  # (path, slices) of x86_64-only uvs


def choose_uv(system: MacSystem, given: str | None) -> UvChoice:
    """A uv that can run natively. An x86_64-only uv runs under Rosetta, and so would the
    universal interpreters it starts: it would pick Intel wheels."""
    home = system.home()
    places = ([given] if "/" in given else path_entries(system, given)) if given else []
    places += path_entries(system, "uv") + [
        f"{home}/.local/bin/uv",
        f"{home}/.cargo/bin/uv",
        "/opt/homebrew/bin/uv",
    ]
    rejected: list[tuple[str, tuple[str, ...]]] = []
    seen: set[str] = set()
    for path in places:
        if not path or not system.is_executable(path) or system.realpath(path) in seen:
            continue
        seen.add(system.realpath(path))
        archs = tuple(macho_archs(system.head(path) or b""))
        if has_native_slice(archs):
            return UvChoice(path, tuple(rejected))
        rejected.append((path, archs))
    return UvChoice(None, tuple(rejected))
