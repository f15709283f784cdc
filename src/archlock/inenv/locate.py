"""Which lock an environment was meant to follow: its project, the platform it was meant for,
its torch build (CPU / CUDA / ROCm / MPS), and the env lock that matches them.

Standard library only, Python >= 3.8: it runs inside the env being reported, as a file beside
report.py or from a bundle. The host side asks the same questions here (`build_of` is the one
torch-build classification; `intended_platform` names a report's platform).
"""

from __future__ import annotations

import hashlib
import os
import re

LOCK_HEAD = re.compile(
    r"^# env: (?P<env>\S+) \((?P<platform>[a-z0-9-]+), "
    r"Python (?P<python>[0-9.]+), (?P<accelerator>[a-z]+)\)",
    re.MULTILINE,
)
ARCH_WORDS = {"x86_64": "amd64", "arm64": "arm64"}


def find_project(start: str) -> str | None:
    """The nearest folder at or above `start` holding envs/, pyproject.toml or requirements.txt."""
    folder = os.path.abspath(start)
    while True:
        if any(
            os.path.exists(os.path.join(folder, n))
            for n in ("envs", "pyproject.toml", "requirements.txt")
        ):
            return folder
        parent = os.path.dirname(folder)
        if parent == folder:
            return None
        folder = parent


def intended_platform(doc: dict) -> str | None:
    """The platform name this env belongs to, as archlock's table spells it ("linux-amd64").

    macOS: the hardware's architecture (Rosetta is a mistake to report, not a platform).
    Linux: the interpreter's own architecture (QEMU emulation is chosen on purpose)."""
    os_name = (doc.get("os") or {}).get("name")
    emulation, python = doc.get("emulation") or {}, doc.get("python") or {}
    arch = emulation.get("host_arch") if os_name == "macos" else python.get("arch")
    arch = arch or python.get("arch")
    if not os_name or not arch:
        return None
    return "%s-%s" % (os_name, ARCH_WORDS.get(arch, arch))


def torch_build(doc: dict) -> str | None:
    """ "cuda" | "rocm" | "mps" | "cpu" of the probed torch (see build_of)."""
    version = next(
        (
            d.get("version")
            for d in doc.get("distributions") or []
            if d.get("name", "").lower() == "torch"
        ),
        None,
    )
    return build_of(doc.get("torch") or {}, version)[0]


def build_of(facts: dict, version: str | None) -> tuple:
    """(build, CUDA version) of a torch: "cuda" | "rocm" | "mps" | "cpu" (or None), from the
    probe's torch facts when torch imports, else from its version's local label (+cu128, +cpu).
    The one classification: the host side (archlock.core.diagnose, verify) asks this too."""
    if facts.get("importable"):
        if facts.get("cuda"):
            return "cuda", facts["cuda"]
        if facts.get("hip"):
            return "rocm", None
        return ("mps" if facts.get("mps_built") else "cpu"), None
    label = (version or "").partition("+")[2]
    if label.startswith("cu") and label[2:].isdigit() and len(label) > 3:
        return "cuda", "%s.%s" % (label[2:-1], label[-1])
    if label.startswith("rocm"):
        return "rocm", None
    return ("cpu", None) if label == "cpu" else (None, None)


# torch builds as build_of names them, and how people say them (%s: the CUDA version)
BUILD_TEXT = {
    "cuda": "CUDA %s build",
    "rocm": "ROCm build",
    "mps": "MPS build",
    "cpu": "CPU-only build",
}


def build_text(build: str, cuda) -> str:
    text = BUILD_TEXT[build]
    return text % cuda if "%s" in text else text


def read_text(path: str, limit: int = 1 << 22) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read(limit)
    except OSError:
        return None


def spec_value(root: str, env: str, key: str) -> str | None:
    match = re.search(
        r"^%s:\s*[\"']?([A-Za-z0-9.-]+)" % key,
        read_text(os.path.join(root, "envs", env + ".yaml")) or "",
        re.MULTILINE,
    )
    return match.group(1) if match else None


def lock_candidates(root: str) -> list[dict]:
    """Every env lock in the project, with the platform its header (or spec) names."""
    folder = os.path.join(root, "envs", "locks")
    found = []
    for name in sorted(os.listdir(folder)) if os.path.isdir(folder) else []:
        if not name.endswith(".txt"):
            continue
        env = name[:-4]
        head = LOCK_HEAD.search(read_text(os.path.join(folder, name), 4096) or "")
        found.append(
            {
                "env": env,
                "platform": head.group("platform") if head else spec_value(root, env, "platform"),
                "python": head.group("python") if head else spec_value(root, env, "python"),
                "accelerator": head.group("accelerator")
                if head
                else spec_value(root, env, "accelerator"),
            }
        )
    return found


def file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def lock_record(root: str | None, env: str | None, platform: str | None, build: str | None) -> dict:
    """{env, path, sha256, platform, python, accelerator, matched_by, candidates, problem}."""
    empty = {  # type: dict[str, object]
        "env": env,
        "path": None,
        "sha256": None,
        "platform": None,
        "python": None,
        "accelerator": None,
        "matched_by": None,
        "candidates": [],
        "problem": None,
    }
    if root is None:
        return dict(
            empty, problem="no project folder found (envs/, pyproject.toml or requirements.txt)"
        )
    candidates = lock_candidates(root)
    chosen, matched_by = pick_lock(candidates, env, platform, build)
    record = dict(empty, candidates=[c["env"] for c in candidates])
    if chosen is None:
        if env:
            return dict(
                record,
                problem="envs/locks/%s.txt does not exist (run: archlock lock --env %s)"
                % (env, env),
            )
        return dict(
            record, problem="no lock in envs/locks/ targets %s" % (platform or "this platform")
        )
    path = os.path.join(root, "envs", "locks", chosen["env"] + ".txt")
    return dict(
        record,
        env=chosen["env"],
        path="envs/locks/%s.txt" % chosen["env"],
        sha256=file_sha256(path),
        platform=chosen["platform"],
        python=chosen["python"],
        accelerator=chosen["accelerator"],
        matched_by=matched_by,
    )


def pick_lock(candidates: list[dict], env: str | None, platform: str | None, build: str | None):
    if env:
        named = [c for c in candidates if c["env"] == env]
        return (named[0], "--env") if named else (None, None)
    mine = [c for c in candidates if c["platform"] == platform]
    same_build = [c for c in mine if build and c["accelerator"] == build]
    if same_build:
        return same_build[0], "platform and torch build"
    return (mine[0], "platform") if mine else (None, None)
