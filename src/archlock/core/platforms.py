"""The one table of platform facts. Code asks this table; it never branches on platform names.

Adding a target platform means adding a row here (and, for images, a base in the env spec).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class Platform:
    name: str  # the env spec's `platform:` value
    os: str  # "linux" | "macos"
    machine: str  # what platform.machine() reports natively ("x86_64", "aarch64", "arm64")
    binary_arch: str  # the architecture name the probe gives ELF / Mach-O files ("x86_64", "arm64")
    uv_python_platform: str  # `uv pip compile --python-platform`
    marker: str  # PEP 508 marker selecting this platform in a universal lock
    docker_platform: str | None  # buildx / OCI platform, None where containers can't run it
    accelerators: frozenset[str]  # accelerators this platform can have
    default_macos: str | None = None  # macOS floor the lock targets unless the spec says otherwise


PLATFORMS: dict[str, Platform] = {
    "macos-arm64": Platform(
        name="macos-arm64",
        os="macos",
        machine="arm64",
        binary_arch="arm64",
        uv_python_platform="aarch64-apple-darwin",
        marker="sys_platform == 'darwin' and platform_machine == 'arm64'",
        docker_platform=None,
        accelerators=frozenset({"mps", "cpu"}),
        default_macos="14.0",
    ),
    "linux-amd64": Platform(
        name="linux-amd64",
        os="linux",
        machine="x86_64",
        binary_arch="x86_64",
        uv_python_platform="x86_64-manylinux_2_28",
        marker="sys_platform == 'linux' and platform_machine == 'x86_64'",
        docker_platform="linux/amd64",
        accelerators=frozenset({"cuda", "cpu"}),
    ),
    "linux-arm64": Platform(
        name="linux-arm64",
        os="linux",
        machine="aarch64",
        binary_arch="arm64",
        uv_python_platform="aarch64-manylinux_2_28",
        marker="sys_platform == 'linux' and platform_machine == 'aarch64'",
        docker_platform="linux/arm64",
        accelerators=frozenset({"cuda", "cpu"}),
    ),
}

ACCELERATORS = ("cuda", "mps", "cpu")

# Release facts about torch that decide what a lock may target. (first torch version, fact)
# torch >= 2.12 publishes macOS wheels only for macOS 14+ (macosx_14_0_arm64).
TORCH_MACOS_FLOORS: tuple[tuple[str, str], ...] = (("2.12", "14.0"),)


def for_host(system: str, machine: str) -> Platform | None:
    """The platform row for `platform.system()` / `platform.machine()` answers, if any."""
    os_name = {"Linux": "linux", "Darwin": "macos"}.get(system)
    for platform in PLATFORMS.values():
        if platform.os == os_name and platform.machine == machine:
            return platform
    return None


def torch_macos_floor(torch_version: str) -> str | None:
    """The lowest macOS that has wheels for this torch release, where the table knows one."""
    release = tuple(int(part) for part in torch_version.split("+")[0].split(".")[:2])
    floor = None
    for first, macos in TORCH_MACOS_FLOORS:
        if release >= tuple(int(part) for part in first.split(".")):
            floor = macos
    return floor
