"""What the end-to-end tests share: archlock as a user runs it (a child process, a clean
environment), the local image infrastructure (scripts/local-infra.sh) and how a project's images
are built on it.

The `infra` fixture itself lives in conftest.py; these are plain functions.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from archlock.build import build

REPO = Path(__file__).resolve().parents[2]
# the ordinary local path: the engine's own BuildKit, one platform per `docker build`, host
# networking on any engine; bytecode compilation off to keep torch's builds short on a small
# machine (test_reproducible_image builds with it on)
BUILD_FLAGS = ("--fallback", "--network", "host")
# test_corpus's wall time per project, {name: seconds}, printed in the terminal summary
CORPUS_TIMES = pytest.StashKey[dict[str, float]]()


def archlock(
    root: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 1800
) -> subprocess.CompletedProcess[str]:
    """`archlock --project ROOT ARGS...` in a child, without the caller's ARCHLOCK_* settings."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ARCHLOCK_")}
    clean.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "archlock", "--project", str(root), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env=clean,
    )


def ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


def docker(*args: str, timeout: float = 600) -> str:
    done = subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    assert done.returncode == 0, f"docker {' '.join(args)}: {done.stderr[-2000:]}"
    return done.stdout


def local_infra() -> dict[str, str]:
    """scripts/local-infra.sh (idempotent): its ARCHLOCK_BASE_IMAGE, ARCHLOCK_UV_IMAGE, ..."""
    done = subprocess.run(
        ["bash", str(REPO / "scripts" / "local-infra.sh"), "--print-env"],
        capture_output=True,
        text=True,
        timeout=1500,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)


def local_uv_image(arch: str) -> str:
    """The local engine's uv image for one arch, as scripts/local-infra.sh names it."""
    text = (REPO / "scripts" / "local-infra.sh").read_text()
    name = re.search(r'^UV_NAME="([^"]+)"', text, re.M)
    version = re.search(r'UV_VERSION="\$\{UV_VERSION:-([0-9.]+)\}"', text)
    assert name and version, "scripts/local-infra.sh: UV_NAME or UV_VERSION not found"
    return f"{name.group(1)}:{version.group(1)}-{arch}"


def ca_bundle() -> Path | None:
    for value in (
        os.environ.get(build.CA_ENV),
        os.environ.get("SSL_CERT_FILE"),
        "/etc/ssl/certs/ca-certificates.crt",
    ):
        if value and Path(value).is_file():
            return Path(value)
    return None


def opt_into_toolchain(root: Path) -> None:
    """What a user of the amd64 image does for torch.compile: `image.toolchain: true` (the
    spec's last section is `image:`). Projects that share a lock share this step's layers too."""
    spec = root / "envs" / "linux-amd64-cuda.yaml"
    spec.write_text(spec.read_text() + "  toolchain: true\n")


def build_images(
    root: Path, infra: dict[str, str], tag: str, envs: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    """`archlock build` of the project's images (`envs`: only these) on the local bases (the
    multi-arch list: each $BUILDPLATFORM stage takes the build machine's base from it)."""
    bundle = ca_bundle()
    args = [*BUILD_FLAGS, "--set", f"*.args.BASE_IMAGE={infra['ARCHLOCK_BASE_IMAGE']}"]
    args += ["--ca-bundle", str(bundle)] if bundle else []
    args += [a for env in envs for a in ("--env", env)]
    variables = {"UV_IMAGE": infra["ARCHLOCK_UV_IMAGE"], "TAG": tag, "COMPILE_BYTECODE": "0"}
    return archlock(root, "build", *args, env=variables, timeout=3600)


def built_tags(build_output: str) -> dict[str, tuple[str, ...]]:
    """{env: tags} from `archlock build`'s "built ENV PLATFORM in N s: TAG ..." lines."""
    built = {}
    for line in build_output.splitlines():
        if line.startswith("archlock build: built "):
            head, _, tags = line.removeprefix("archlock build: built ").partition(": ")
            built[head.split()[0]] = tuple(tags.split())
    return built


def uv_cache_dir() -> str:
    """The uv cache this machine already has, so a run with another HOME does not download
    torch again (uv's default cache is under HOME)."""
    done = subprocess.run(
        ["uv", "cache", "dir"], capture_output=True, text=True, timeout=60, check=True
    )
    return done.stdout.strip()


def gone(pid: int, within: float = 10.0) -> bool:
    """Whether process `pid` is gone, or a zombie left for its new parent to reap, within `within`
    seconds. A SIGKILLed process is torn down after the signal is sent (state R for a moment on
    a busy machine: a CI run saw it), so a check right after the kill races with the kernel."""
    deadline = time.monotonic() + within
    while True:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            return True
        if state == "Z":
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
