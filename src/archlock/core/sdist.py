"""THE answer to "what is this source-only package?": read from its sdist, never by building it.

A locked package without a wheel for an env's platform installs from its sdist. What that costs
depends on what is inside, so `archlock lock` looks (the archive is fetched by the URL and
checked against the sha256 the lock pins; nothing in it is run) and records the kind in the
env's pylock, as PEP 751 allows, under `[packages.tool.archlock]`:

* `pure-python`: only Python. It builds into a `py3-none-any` wheel anywhere, so the
  build platform's uv builds it with the image's interpreter; uv itself is not emulated.
* `torch-extension`: it compiles against torch (and CUDA) at build time: its build requirements
  name torch, or its setup.py uses `torch.utils.cpp_extension`, or it ships `.cu` sources. Built
  in an isolated environment without torch, such a package "installs" without its compiled
  backend and fails at import, so it needs torch and the CUDA toolchain present at build time
  (no build isolation) or a prebuilt wheel.
* `compiled`: C, C++, Cython, Rust or Fortran sources, or a compiling build backend: it needs a
  compiler for the target, so it builds on the target's platform.

The rule reads the archive's names and its build files (pyproject.toml, setup.py, setup.cfg);
`Kind.why` says which fact decided.
"""

from __future__ import annotations

import hashlib
import io
import re
import tarfile
import tomllib
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

PURE = "pure-python"
TORCH_EXTENSION = "torch-extension"
COMPILED = "compiled"
KINDS = (PURE, TORCH_EXTENSION, COMPILED)

COMPILED_SOURCES = (".c", ".cc", ".cpp", ".cxx", ".c++", ".pyx", ".rs", ".f", ".f90", ".for")
CUDA_SOURCES = (".cu", ".cuh")
COMPILING_BUILD_REQUIRES = (
    "cython",
    "pybind11",
    "nanobind",
    "setuptools-rust",
    "maturin",
    "scikit-build",
    "scikit-build-core",
    "meson-python",
    "cmake",
    "cffi",
)
TORCH_BUILD_USES = re.compile(r"torch\.utils\.cpp_extension|\b(CUDAExtension|CppExtension)\b")
EXTENSION_USES = re.compile(r"\bext_modules\b|\bExtension\s*\(")
BUILD_FILES = ("pyproject.toml", "setup.py", "setup.cfg")
MAX_BUILD_FILE = 1 << 20
MAX_ARCHIVE = 200 << 20  # a source-only package above this is left unclassified
FETCH_TIMEOUT_S = 120


@dataclass(frozen=True)
class Kind:
    kind: str  # one of KINDS
    why: str  # the fact that decided, for messages


class UnreadableSdist(Exception):
    """The archive could not be fetched, checked or opened; the package stays unclassified."""


def classify(filename: str, data: bytes) -> Kind:
    """The kind of the sdist `filename` whose bytes are `data`."""
    names, build_files = _read_archive(filename, data)
    requires = _build_requires(build_files.get("pyproject.toml", ""))
    setup = build_files.get("setup.py", "") + "\n" + build_files.get("setup.cfg", "")
    if "torch" in requires:
        return Kind(TORCH_EXTENSION, "its build requirements name torch")
    used = TORCH_BUILD_USES.search(setup)
    if used:
        return Kind(TORCH_EXTENSION, f"its setup.py builds with {used.group(0)}")
    cuda = next((n for n in names if n.lower().endswith(CUDA_SOURCES)), None)
    if cuda:
        return Kind(TORCH_EXTENSION, f"it ships CUDA sources ({cuda})")
    compiling = sorted(set(requires) & set(COMPILING_BUILD_REQUIRES))
    if compiling:
        return Kind(COMPILED, f"its build requirements name {', '.join(compiling)}")
    source = next((n for n in names if n.lower().endswith(COMPILED_SOURCES)), None)
    if source:
        return Kind(COMPILED, f"it ships compiled-language sources ({source})")
    if EXTENSION_USES.search(setup):
        return Kind(COMPILED, "its setup.py declares extension modules")
    return Kind(PURE, "only Python sources and no extension modules")


def _read_archive(filename: str, data: bytes) -> tuple[list[str], dict[str, str]]:
    """Member names (below the top folder) and the top-level build files' text."""
    try:
        if filename.endswith(".zip"):
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                members = [(i.filename, i.file_size) for i in archive.infolist()]
                wanted = _build_members(members)
                texts = {key: archive.read(name) for key, name in wanted.items()}
        else:
            with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as archive:
                infos = [i for i in archive.getmembers() if i.isfile()]
                wanted = _build_members([(i.name, i.size) for i in infos])
                texts = {}
                for key, name in wanted.items():
                    member = archive.extractfile(name)
                    texts[key] = member.read() if member else b""
                members = [(i.name, i.size) for i in infos]
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError, KeyError) as exc:
        raise UnreadableSdist(f"{filename}: not a readable sdist archive ({exc})") from None
    names = [name.split("/", 1)[1] if "/" in name else name for name, _ in members]
    return names, {k: v.decode("utf-8", "replace") for k, v in texts.items()}


def _build_members(members: list[tuple[str, int]]) -> dict[str, str]:
    """`pyproject.toml` etc. -> their member names at the archive's top folder."""
    found = {}
    for name, size in members:
        parts = name.strip("/").split("/")
        if len(parts) == 2 and parts[1] in BUILD_FILES and size <= MAX_BUILD_FILE:
            found[parts[1]] = name
    return found


def _build_requires(pyproject: str) -> list[str]:
    """Canonical names of [build-system] requires (an unreadable pyproject names none)."""
    try:
        requires = tomllib.loads(pyproject).get("build-system", {}).get("requires", [])
    except tomllib.TOMLDecodeError:
        return []
    names = []
    for item in requires if isinstance(requires, list) else []:
        match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", str(item))
        if match:
            names.append(re.sub(r"[-_.]+", "-", match.group(1)).lower())
    return names


# -- the lock's record ----------------------------------------------------------------------
def recorded(package: dict[str, Any]) -> str | None:
    """The kind `archlock lock` recorded for a pylock package, or None (not classified)."""
    tool = package.get("tool")
    table = tool.get("archlock") if isinstance(tool, dict) else None
    kind = table.get("sdist-kind") if isinstance(table, dict) else None
    return kind if kind in KINDS else None


def recorded_why(package: dict[str, Any]) -> str:
    tool = package.get("tool")
    table = tool.get("archlock") if isinstance(tool, dict) else None
    why = table.get("why") if isinstance(table, dict) else None
    return why if isinstance(why, str) else ""


Fetch = Callable[[str], bytes]


def fetch_url(url: str) -> bytes:
    """The bytes at `url` (https:// or file://), with a time limit and a size cap."""
    if urllib.parse.urlsplit(url).scheme not in ("https", "http", "file"):
        raise UnreadableSdist(f"{url}: not an http(s) or file URL")
    try:
        with urllib.request.urlopen(url, timeout=FETCH_TIMEOUT_S) as answer:  # noqa: S310
            data: bytes = answer.read(MAX_ARCHIVE + 1)
    except (OSError, ValueError) as exc:
        raise UnreadableSdist(f"{url}: could not be fetched ({exc})") from None
    if len(data) > MAX_ARCHIVE:
        raise UnreadableSdist(f"{url}: larger than {MAX_ARCHIVE >> 20} MB")
    return data


def annotate(pylock: str, fetch: Fetch = fetch_url) -> tuple[str, list[str]]:
    """The pylock with each wheel-less package's kind recorded after its `version` line, and a
    note per package that could not be classified (it then stays unrecorded)."""
    notes: list[str] = []
    packages = tomllib.loads(pylock).get("packages", [])
    for package in packages:
        sdist = package.get("sdist")
        if package.get("wheels") or not isinstance(sdist, dict) or recorded(package):
            continue
        name, version = str(package.get("name")), str(package.get("version"))
        try:
            kind = classify_locked(sdist, fetch)
        except UnreadableSdist as exc:
            notes.append(f"{name} {version}: source-only, kind unknown: {exc}")
            continue
        line = f'tool.archlock = {{ sdist-kind = "{kind.kind}", why = {_toml_str(kind.why)} }}\n'
        pylock = _insert_after_version(pylock, name, version, line)
    return pylock, notes


def classify_locked(sdist: dict[str, Any], fetch: Fetch) -> Kind:
    url = str(sdist.get("url") or "")
    if not url and sdist.get("path"):
        url = "file://" + str(sdist["path"])
    data = fetch(url)
    want = (sdist.get("hashes") or {}).get("sha256")
    if want and hashlib.sha256(data).hexdigest() != want:
        raise UnreadableSdist(f"{url}: sha256 differs from the lock's")
    filename = urllib.parse.unquote(url.rsplit("/", 1)[-1])
    return classify(filename, data)


def _insert_after_version(pylock: str, name: str, version: str, line: str) -> str:
    pattern = re.compile(
        rf'(^\[\[packages\]\]\nname = "{re.escape(name)}"\nversion = "{re.escape(version)}"\n)',
        re.MULTILINE,
    )
    return pattern.sub(lambda m: m.group(1) + line, pylock, count=1)


def _toml_str(text: str) -> str:
    """A TOML basic string (JSON's escapes are TOML's for what `why` holds)."""
    import json

    return json.dumps(re.sub(r"[\x00-\x1f\x7f]", " ", text))
