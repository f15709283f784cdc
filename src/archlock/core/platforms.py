"""The one table of platform facts. Code asks this table; it never branches on platform names.

Adding a target platform means adding a row here (and, for images, a base in the env spec).
"""

from __future__ import annotations

from dataclasses import dataclass

from archlock.core.rules.versions import below, version_tuple


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
    native_setup: str | None = None  # the command that builds an env natively, where one exists
    default_macos: str | None = None  # macOS floor the lock targets unless the spec says otherwise
    # the first torch release whose PyPI wheel for this platform is a CUDA build ("0": every one;
    # None: none), so a CPU env here takes torch's +cpu build from the PyTorch CPU index
    pypi_torch_cuda_from: str | None = None


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
        native_setup="nox -s setup-mac",
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
        pypi_torch_cuda_from="0",
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
        pypi_torch_cuda_from="2.11",
    ),
}


@dataclass(frozen=True, kw_only=True)
class Accelerator:
    """What an env's `accelerator:` means: which torch builds serve it and what it needs."""

    name: str  # the env spec's `accelerator:` value, and torch's device type
    builds: frozenset[str]  # torch builds that serve it (see torch_build)
    build_text: str  # the build its lock means, as people say it ({cuda}: the CUDA version)
    wrong_build: str  # why another build is wrong ({env}: the env's name)
    available: str | None  # the torch fact saying the device works here (None: always)
    unavailable: str = ""  # why the device may be missing where the env otherwise runs
    cuda: bool = False  # a CUDA build: the nvidia-* wheels, the NVIDIA driver, --gpus


ACCELERATOR_TABLE: dict[str, Accelerator] = {
    "cuda": Accelerator(
        name="cuda",
        builds=frozenset({"cuda"}),
        build_text="CUDA {cuda} build",
        wrong_build="{env} needs a CUDA build",
        available="cuda_available",
        unavailable="no NVIDIA GPU on this host",
        cuda=True,
    ),
    "mps": Accelerator(
        name="mps",
        builds=frozenset({"mps"}),
        build_text="MPS build",
        wrong_build="it has no MPS support; {env} needs the macOS arm64 build",
        available="mps_available",
        unavailable="MPS is not available here (a virtual Mac, or macOS < 12.3)",
    ),
    "cpu": Accelerator(
        name="cpu",
        builds=frozenset({"cpu", "mps"}),  # macOS arm64's one build runs on the CPU too
        build_text="CPU-only build",
        wrong_build="{env} is a CPU env",
        available=None,
    ),
}
ACCELERATORS = tuple(ACCELERATOR_TABLE)

# Release facts about torch that decide what a lock may target. (first torch version, fact)
# torch >= 2.12 publishes macOS wheels only for macOS 14+ (macosx_14_0_arm64).
TORCH_MACOS_FLOORS: tuple[tuple[str, str], ...] = (("2.12", "14.0"),)


def platform_of(os_name: str | None, arch: str | None) -> Platform | None:
    """The row for an OS ("linux", "macos") and an architecture, named as the probe names
    binaries ("x86_64", "arm64") or as `platform.machine()` does ("aarch64")."""
    for platform in PLATFORMS.values():
        if platform.os == os_name and arch in (platform.binary_arch, platform.machine):
            return platform
    return None


def for_host(system: str, machine: str) -> Platform | None:
    """The platform row for `platform.system()` / `platform.machine()` answers, if any."""
    from archlock.inenv.probe import os_name

    return platform_of(os_name(system), machine)


def torch_macos_floor(torch_version: str) -> str | None:
    """The lowest macOS that has wheels for this torch release, where the table knows one."""
    release = version_tuple(torch_version)[:2]  # () when it is not a version: no floor known
    floor = None
    for first, macos in TORCH_MACOS_FLOORS:
        if release and release >= version_tuple(first):
            floor = macos
    return floor


def macos_floor(env_floor: str | None, torch_version: str | None) -> tuple[str, bool] | None:
    """(floor, whether torch's wheels set it): the higher of an env's `macos:` and the floor of
    the locked torch's wheels; torch's when they are equal (it is the reason that cannot move)."""
    torch_floor = torch_macos_floor(torch_version) if torch_version else None
    if torch_floor and (env_floor is None or not below(torch_floor, env_floor)):
        return torch_floor, True
    return (env_floor, False) if env_floor else None


# CUDA Toolkit release notes, table 3: the driver each toolkit ships with (Linux x86_64), and the
# floor under which a CUDA major does not run at all (minor version compatibility).
CUDA_TOOLKIT_DRIVER = {
    "11.8": "520.61.05",
    "12.0": "525.60.13",
    "12.1": "530.30.02",
    "12.2": "535.54.03",
    "12.3": "545.23.06",
    "12.4": "550.54.14",
    "12.5": "555.42.02",
    "12.6": "560.28.03",
    "12.8": "570.26",
    "12.9": "575.51.03",
    "13.0": "580.65.06",
}
CUDA_MAJOR_FLOOR = {"11": "450.80.02", "12": "525.60.13", "13": "580.65.06"}
# The compute capabilities each CUDA toolkit can build kernels for (its `-arch=sm_XY` range),
# from the CUDA release notes: (first CUDA release, lowest capability, highest capability).
# 12.0 dropped Kepler; 12.8 added Blackwell (10.0, 12.0); 12.9 added 10.3 and 12.1; 13.0 dropped
# Maxwell, Pascal and Volta (< 7.5). A torch build carries a subset of its toolkit's range.
CUDA_CAPABILITIES: tuple[tuple[str, str, str], ...] = (
    ("11.8", "3.5", "9.0"),
    ("12.0", "5.0", "9.0"),
    ("12.8", "5.0", "12.0"),
    ("12.9", "5.0", "12.1"),
    ("13.0", "7.5", "12.1"),
)


def cuda_min_driver(cuda: str) -> str | None:
    """The oldest NVIDIA driver a torch build for CUDA `cuda` ("13.2") runs on, if known."""
    return CUDA_MAJOR_FLOOR.get(cuda.split(".")[0])


def cuda_capability_range(cuda: str) -> tuple[str, str | None] | None:
    """(lowest, highest) compute capability the CUDA `cuda` toolkit builds kernels for; the
    highest is None for a release newer than the table's last row (it may know newer GPUs)."""
    release = version_tuple(cuda)[:2]
    rows = [row for row in CUDA_CAPABILITIES if release >= version_tuple(row[0])]
    if not rows:
        return None
    first, low, high = rows[-1]
    newer_than_table = rows[-1] is CUDA_CAPABILITIES[-1] and release > version_tuple(first)
    return low, None if newer_than_table else high
