"""Check that archlock's sdist and wheel carry what an installed archlock reads besides its
modules: the templates, the in-env scripts and the package data. Standard library only.

    python scripts/check-dist.py dist/     # what `nox -s dist` runs after `uv build`
"""

from __future__ import annotations

import sys
import tarfile
import zipfile
from pathlib import Path

# wheel layout; the sdist's source tree is mapped onto it
MUST_HOLD = {
    "archlock/templates/workflow.yml.j2",
    "archlock/templates/Dockerfile.j2",
    "archlock/templates/init-noxfile.py.j2",
    "archlock/inenv/probe.py",
    "archlock/inenv/suite.py",
    "archlock/inenv/report.py",
    "archlock/data/env.schema.json",
}


def members(archive: Path) -> set[str]:
    if archive.name.endswith(".whl"):
        with zipfile.ZipFile(archive) as wheel:
            return set(wheel.namelist())
    with tarfile.open(archive) as sdist:
        names = [name.split("/", 1)[1] for name in sdist.getnames() if "/" in name]
    return {n.removeprefix("src/") if n.startswith("src/") else f"archlock/{n}" for n in names}


def main(folder: Path) -> int:
    archives = sorted([*folder.glob("*.whl"), *folder.glob("*.tar.gz")])
    if len(archives) != 2:
        print(f"check-dist: {folder}: {[a.name for a in archives]} is not one sdist and one wheel")
        return 1
    for archive in archives:
        missing = sorted(MUST_HOLD - members(archive))
        if missing:
            print(f"check-dist: {archive.name} lacks {', '.join(missing)}")
            return 1
        print(f"check-dist: {archive.name}: templates, in-env scripts and data present")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
