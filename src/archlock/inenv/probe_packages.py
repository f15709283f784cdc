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
