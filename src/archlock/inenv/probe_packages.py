"""The probe's view of what is installed: the interpreter, its distributions (with their wheel
tags) and the compiled files under site-packages, by architecture.

Standard library only, Python >= 3.8, loaded by probe.py as a sibling (see probe.py).
"""

from __future__ import annotations

import contextlib
import os
import platform
import sys

# its siblings, the same way inside the package and in a plain-file copy (see inenv/__init__.py)
from . import probe_headers as headers
from . import probe_system as system


def site_packages() -> list[str]:
    import site
    import sysconfig

    found = []
    candidates = [sysconfig.get_paths().get("purelib"), sysconfig.get_paths().get("platlib")]
    with contextlib.suppress(AttributeError):  # old virtualenv's site module has none
        candidates += site.getsitepackages()
    for path in candidates:
        if path and os.path.isdir(path) and os.path.realpath(path) not in found:
            found.append(os.path.realpath(path))
    return found


def python_facts(sysm: system.System, exe_archs: list[str]) -> dict:
    return {
        "version": platform.python_version(),
        "implementation": sys.implementation.name,
        "executable": sys.executable,
        "executable_resolved": sysm.executable(),
        "binary_archs": exe_archs,
        "arch": system.process_arch(sysm, exe_archs),
        "prefix": sys.prefix,
        "base_prefix": getattr(sys, "base_prefix", sys.prefix),
        "in_venv": sys.prefix != getattr(sys, "base_prefix", sys.prefix),
        "site_packages": site_packages(),
    }


def wheel_tags(text: str | None) -> list[str]:
    tags = []
    for line in (text or "").splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() == "Tag":
            tags.append(value.strip())
    return tags


def distributions() -> list[dict]:
    from importlib import metadata

    seen = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if not name or name.lower() in seen:
            continue  # the first on sys.path wins, as for imports
        seen[name.lower()] = {
            "name": name,
            "version": dist.version,
            "wheel_tags": wheel_tags(dist.read_text("WHEEL")),
            "installer": (dist.read_text("INSTALLER") or "").strip() or None,
        }
    return [seen[key] for key in sorted(seen)]


# Suffixes never compiled: skipped without opening, so a scan of torch stays quick under QEMU.
TEXT_SUFFIXES = frozenset(
    [
        ".py",
        ".pyc",
        ".pyi",
        ".pyx",
        ".pxd",
        ".h",
        ".hpp",
        ".cuh",
        ".c",
        ".cc",
        ".cpp",
        ".txt",
        ".md",
        ".rst",
        ".json",
        ".toml",
        ".yaml",
        ".yml",
        ".cfg",
        ".ini",
        ".html",
        ".js",
        ".css",
        ".csv",
        ".typed",
        ".in",
        ".pem",
        ".cmake",
        ".proto",
        ".png",
        ".svg",
        ".jinja",
        ".j2",
        ".zip",
    ]
)
FOREIGN_LIMIT = 200


def expected_format(system: str) -> str | None:
    return {"Linux": "elf", "Darwin": "mach-o"}.get(system)


def compiled_files(root: str):
    """(path, format, archs) for every ELF / Mach-O file under `root`, by magic, not by name."""
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files):
            if os.path.splitext(name)[1].lower() in TEXT_SUFFIXES:
                continue
            path = os.path.join(folder, name)
            if os.path.islink(path):
                continue
            head = headers.read_head(path)
            fmt = headers.header_format(head)
            if fmt:
                yield path, fmt, headers.header_archs(head)


def scan_binaries(sites: list[str], arch: str | None, fmt: str | None) -> dict:
    compiled, foreign = 0, []
    for site in sites:
        for path, found_fmt, archs in compiled_files(site):
            compiled += 1
            if found_fmt == fmt and arch in [system.normalize_arch(a) for a in archs]:
                continue
            foreign.append(
                {
                    "path": os.path.relpath(path, site),
                    "site": site,
                    "format": found_fmt,
                    "archs": archs,
                }
            )
    return {
        "compiled": compiled,
        "expected_arch": arch,
        "expected_format": fmt,
        "foreign": foreign[:FOREIGN_LIMIT],
        "foreign_total": len(foreign),
    }


# -- do the installed distributions import? -------------------------------------------------------
# Top-level names that are not the distribution's code, or are checked elsewhere: torch (the
# probe's own torch section imports it, with its facts), test and example folders some sdists
# install by mistake, and installers' hooks.
IMPORT_SKIP = frozenset(
    ["torch", "tests", "test", "testing", "docs", "examples", "benchmarks", "scripts"]
)
IMPORT_SKIP_DISTS = frozenset(["torch"])  # its functorch and torchgen are torch's, checked there
IMPORT_BUDGET = 900.0  # seconds for all the children together (torch-based ones under QEMU)
# The child: import each module in turn, saying so before and after (a crash or a hang is then
# pinned on the module it began).
IMPORTER = r"""
import importlib, sys
for name in sys.argv[1:]:
    sys.stdout.write("begin %s\n" % name); sys.stdout.flush()
    try:
        importlib.import_module(name)
    except BaseException as exc:
        text = ("%s: %s" % (type(exc).__name__, exc)).splitlines() or ["?"]
        sys.stdout.write("fail %s %s\n" % (name, text[0][:300]))
    else:
        sys.stdout.write("ok %s\n" % name)
    sys.stdout.flush()
"""


def top_level_modules(dist) -> list[str]:
    """The modules `dist` installs at the top of site-packages: from its RECORD (a package
    folder, a .py file, an extension module: what is really there), else top_level.txt (which
    setuptools may fill with folders it never installed, or stale names)."""
    files = dist.files
    if files:
        names = [module_of(str(path)) for path in files]
    else:
        listed = dist.read_text("top_level.txt") or ""
        names = [line.strip().replace("/", ".") for line in listed.splitlines()]
    found = []
    for name in names:
        if name and name not in found and importable_name(name):
            found.append(name)
    return sorted(found)


def module_of(path: str) -> str | None:
    """The top-level module a RECORD path belongs to, or None (metadata, scripts, data)."""
    parts = path.replace("\\", "/").split("/")
    head = parts[0]
    if head.startswith("..") or head.endswith((".dist-info", ".egg-info", ".data", ".pth")):
        return None
    if len(parts) > 1:  # a package folder (not numpy.libs, auditwheel's vendored libraries)
        return head if head.isidentifier() and head != "__pycache__" else None
    stem, ext = os.path.splitext(head)
    if ext == ".py":
        return stem
    if ext in (".so", ".pyd"):
        return stem.split(".")[0]
    return None


def importable_name(name: str) -> bool:
    top = name.split(".")[0]
    return (
        all(part.isidentifier() for part in name.split("."))
        and not top.startswith("__")
        and top not in IMPORT_SKIP
    )


def import_plan() -> list[tuple[str, str, str]]:
    """(module, distribution, version) for every top-level module of every distribution."""
    from importlib import metadata

    seen, plan = set(), []
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if not name or name.lower() in seen:
            continue
        seen.add(name.lower())
        if name.lower() in IMPORT_SKIP_DISTS:
            continue
        for module in top_level_modules(dist):
            plan.append((module, name, dist.version))
    return sorted(plan)


def run_importer(modules: list[str], timeout: float) -> tuple[dict, str | None]:
    """{module: None (imported) or the error} for the modules the child got to, and the module
    it was importing when it died or ran out of time (None when it finished)."""
    import subprocess

    command = [sys.executable, "-I", "-c", IMPORTER] + modules
    try:
        done = subprocess.run(
            command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, timeout=timeout
        )
        out, ended = done.stdout, "exited %d" % done.returncode
    except subprocess.TimeoutExpired as exc:
        out, ended = exc.stdout or b"", "timed out after %g s" % timeout
    results, current = {}, None
    for line in out.decode("utf-8", "replace").splitlines():
        word, _, rest = line.partition(" ")
        name, _, error = rest.partition(" ")
        if word == "begin":
            current = name
        elif word in ("ok", "fail") and name == current:
            results[name], current = (error or "failed") if word == "fail" else None, None
    if current is not None:
        results[current] = "the interpreter %s while importing it" % ended
    return results, current


def import_checks(budget: float = IMPORT_BUDGET) -> dict:
    """Each installed distribution's top-level modules, imported in a child interpreter (a crash
    or a hang in one does not stop the others), within `budget` seconds in all: {checked,
    failed: [{distribution, version, module, error}], unchecked: [modules the time ran out for]}."""
    import time

    plan = import_plan()
    pending = sorted(set(module for module, _, _ in plan))  # a namespace may span distributions
    results: dict = {}
    deadline = time.monotonic() + budget
    while pending and time.monotonic() < deadline - 1:
        got, stuck = run_importer(pending, deadline - time.monotonic())
        results.update(got)
        if stuck is None and len(got) < len(pending):  # the child died before it began
            for module in pending:
                results.setdefault(module, "the importing interpreter did not run")
        pending = [module for module in pending if module not in results]
    failed = [
        {"distribution": dist, "version": version, "module": module, "error": results[module]}
        for module, dist, version in plan
        if results.get(module)
    ]
    return {"checked": len(results), "failed": failed, "unchecked": pending}
