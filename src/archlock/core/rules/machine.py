"""A machine against a lock: the NVIDIA driver against the CUDA floor, the GPU's compute
capability, the macOS and glibc floors, and the platform itself.

A `Machine` comes from a recorded profile (archlock.lock.machines, at lock time) or from the
probe of the machine verify or repro runs on (`from_probe`). Each rule decides once; lock
(archlock.lock.fit) and the diagnosis (archlock.core.diagnose) phrase what it decided.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from archlock.core import platforms
from archlock.core.platforms import PLATFORMS, Platform
from archlock.core.rules.build import Expectations, Floor, Misfit
from archlock.core.rules.versions import below, release, version_tuple
from archlock.core.spec import EnvSpec


@dataclass(frozen=True)
class Gpu:
    name: str
    capability: str | None  # "8.0"; None where the driver did not say
    supported: bool | None = None  # torch's own answer (its arch list), where torch was asked


@dataclass(frozen=True)
class Machine:
    name: str
    source: str  # where the facts come from, for messages: a profile path or "this machine"
    os: str  # "linux" | "macos"
    arch: str | None  # hardware architecture, normalized like the probe ("x86_64", "arm64")
    glibc: str | None = None
    macos: str | None = None
    vm: bool | None = None
    driver: str | None = None  # NVIDIA driver version
    gpus: tuple[Gpu, ...] = ()

    @property
    def platform(self) -> Platform | None:
        for row in PLATFORMS.values():
            if row.os == self.os and row.binary_arch == self.arch:
                return row
        return None


def _text(value: object) -> str | None:
    return None if value is None or isinstance(value, (dict, list)) else str(value)


def _flag(value: object) -> bool | None:
    return value if isinstance(value, bool) else None


def _table(doc: Mapping[str, object], key: str) -> Mapping[str, object]:
    """doc[key] when it is a table; {} for anything else (a report may have been edited)."""
    value = doc.get(key)
    return value if isinstance(value, Mapping) else {}


def from_probe(doc: Mapping[str, object]) -> Machine:
    """The machine a probe ran on, from its `archlock.probe/1` document (any value of another
    type than the probe writes counts as unknown)."""
    osf, emu, torch = _table(doc, "os"), _table(doc, "emulation"), _table(doc, "torch")
    libc, devices = _table(osf, "libc"), torch.get("devices")
    gpus = tuple(
        Gpu(str(d.get("name") or "GPU"), _text(d.get("capability")), _flag(d.get("supported")))
        for d in (devices if isinstance(devices, list) else [])
        if isinstance(d, Mapping)
    )
    os_name = _text(osf.get("name"))
    return Machine(
        name="this machine",
        source="the probe",
        os=str(os_name),
        arch=_text(emu.get("host_arch")) or _text(_table(doc, "python").get("arch")),
        glibc=_text(libc.get("version")) if libc.get("name") == "glibc" else None,
        macos=_text(osf.get("version")) if os_name == "macos" else None,
        driver=_text(_table(doc, "gpu").get("nvidia_driver")),
        gpus=gpus,
    )


# -- the NVIDIA driver ----------------------------------------------------------------------
@dataclass(frozen=True)
class Driver:
    """THE driver rule's answer for a CUDA build."""

    state: str  # "missing" | "unreadable" | "too-old" | "minor-compat" | "fits"
    floor: str | None  # the CUDA major's floor (below it CUDA does not run at all)
    shipped: str | None  # the driver the CUDA toolkit shipped with (below it: no PTX JIT)

    @property
    def want(self) -> str | None:
        return self.shipped or self.floor


def driver_rule(driver: str | None, cuda: str) -> Driver:
    """An NVIDIA driver (None: none loaded) against a CUDA build ("13.2"). A version that is not
    a version is "unreadable": a finding of its own, never "too old"."""
    floor = platforms.CUDA_MAJOR_FLOOR.get(cuda.split(".")[0])
    shipped = platforms.CUDA_TOOLKIT_DRIVER.get(cuda)
    if driver is None:
        return Driver("missing", floor, shipped)
    if release(driver) is None:
        return Driver("unreadable", floor, shipped)
    if floor and below(driver, floor):
        return Driver("too-old", floor, shipped)
    if shipped and below(driver, shipped):
        return Driver("minor-compat", floor, shipped)
    return Driver("fits", floor, shipped)


def newest_cuda_major(driver: str) -> str | None:
    """The newest CUDA major a driver runs."""
    have = version_tuple(driver)
    runs = [m for m, floor in platforms.CUDA_MAJOR_FLOOR.items() if have >= version_tuple(floor)]
    return max(runs, key=int) if runs else None


def driver_upgrade_fix(who: str, need: str | None, cuda: str, driver: str) -> str:
    """Upgrade the driver, or lock a build for the CUDA major it runs."""
    runs = newest_cuda_major(driver)
    own = platforms.CUDA_TOOLKIT_DRIVER.get(cuda)
    alternative = (
        f", or lock a torch build for CUDA {runs}.x (an older torch, or torch's CUDA {runs}.x "
        "build from the PyTorch index via torch.index and torch.variant)"
        if runs
        else ""
    )
    own_text = f" ({own} or later for all of CUDA {cuda})" if own else ""
    return f"upgrade the NVIDIA driver on {who} to >= {need}{own_text}{alternative}"


UNREADABLE_DRIVER_FIX = "check the driver with nvidia-smi, then probe again"


# -- the GPU --------------------------------------------------------------------------------
def cuda_for_capability(capability: str) -> str | None:
    """The newest CUDA release in the table that builds kernels for this compute capability."""
    have = version_tuple(capability)
    fits = [
        first
        for first, low, high in platforms.CUDA_CAPABILITIES
        if version_tuple(low) <= have <= version_tuple(high)
    ]
    return fits[-1] if fits else None


def capability_gap(gpu: Gpu, capabilities: tuple[str, str | None] | None) -> str | None:
    """THE GPU rule: "below 7.5" / "above 9.0" when the build carries no kernels for the GPU's
    compute capability; torch's own "not supported" answer counts where it was asked."""
    if gpu.capability and release(gpu.capability) and capabilities:
        low, high = capabilities
        if below(gpu.capability, low):
            return f"below {low}"
        if high is not None and below(high, gpu.capability):
            return f"above {high}"
    if gpu.supported is False:
        return "for it"
    return None


def gpu_fix(gpu: Gpu, gap: str) -> str:
    other = cuda_for_capability(gpu.capability) if gpu.capability else None
    if gap.startswith("below") and other:
        return (
            f"lock a torch build for CUDA {other} (an older torch, or a build from the PyTorch "
            "index via torch.index and torch.variant)"
        )
    if gap.startswith("above"):
        return "lock a torch build for a newer CUDA release"
    return "use a torch build whose arch list covers this GPU (a newer CUDA build), and re-lock"


# -- the system floors ----------------------------------------------------------------------
FLOOR_LABEL = {"glibc": "glibc", "macos": "macOS"}


def floor_misfit(kind: str, have: str, floor: Floor, who: str, env: EnvSpec, where: str) -> Misfit:
    """`have` (glibc or macOS on `who`) is below the floor a locked wheel sets. `where` is
    "profile", "host" or "image" (in an image, glibc is the image's own: the fix is its base)."""
    label = FLOOR_LABEL[kind]
    why = (
        f"{label} {have} on {who} is below {floor.version}, the floor of "
        f"{floor.package}'s {floor.tag} wheel"
    )
    pin = f"pin {floor.package} to a release with wheels for {label} {have}"
    if kind == "macos":
        fix = f"upgrade macOS on {who} to {floor.version} or later, or {pin}"
    elif where == "image":
        base = f"set image.base in {env.path.name} to a base with glibc >= {floor.version}"
        fix = f"{base}, then rebuild"
    else:
        fix = (
            f"run the env in its image there (archlock build: the image brings its own glibc), "
            f"move {who} to an OS with glibc >= {floor.version}, or {pin}"
        )
    return Misfit(kind, why, fix)


def system_misfits(env: EnvSpec, exp: Expectations, machine: Machine, where: str) -> list[Misfit]:
    """The glibc and macOS floors of the locked wheels against the machine (a version that is
    unknown or not a version is no misfit)."""
    found = []
    glibc, macos = exp.glibc, exp.macos
    if machine.os == "linux" and machine.glibc and glibc and below(machine.glibc, glibc.version):
        found.append(floor_misfit("glibc", machine.glibc, glibc, machine.name, env, where))
    if machine.os == "macos" and machine.macos and macos and below(machine.macos, macos.version):
        found.append(floor_misfit("macos", machine.macos, macos, machine.name, env, where))
    return found
