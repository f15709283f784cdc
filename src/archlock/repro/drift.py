"""Drift between a teammate's report and the lock of the env it was meant to follow.

`diagnose(report, target)` returns every difference as a `Drift`, most likely cause first. The
order is the table `KINDS`: what breaks everything (a wrong interpreter) before what breaks torch,
before package differences, before what changes behaviour quietly. Each drift carries its fix.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from archlock.core.platforms import CUDA_MAJOR_FLOOR, CUDA_TOOLKIT_DRIVER, torch_macos_floor
from archlock.lock.expect import cuda_of_pins
from archlock.lock.resolve import canonical, lock_pins
from archlock.lock.resolve import public_version as public
from archlock.core.spec import EnvSpec

# (kind, why it ranks here) -- the order IS the ranking
KINDS: tuple[tuple[str, str], ...] = (
    ("platform", "another OS than the env's: nothing in the lock applies"),
    (
        "interpreter-arch",
        "a wrong-architecture interpreter (Rosetta, QEMU) gets other wheels for everything",
    ),
    ("python-version", "another Python minor resolves other wheels and may lack some"),
    (
        "torch",
        "the torch version or build (CPU / CUDA / MPS) decides devices, kernels and numerics",
    ),
    ("torch-import", "torch is installed as locked but does not import"),
    ("packages-missing", "a locked package is not installed"),
    ("packages-different", "a package is installed at another version than the lock's"),
    (
        "packages-extra",
        "a package the lock does not have can change code paths (flash-attn, triton, ...)",
    ),
    ("compiled-arch", "a compiled file of another architecture fails to load when imported"),
    ("macos-floor", "macOS below the lock's floor: no wheels for it, or MPS ops missing"),
    ("cuda-driver", "a driver older than torch's CUDA build disables CUDA or PTX JIT"),
    ("cuda-arch", "torch has no kernels for the GPU's compute capability"),
    ("env-var", "an environment variable that changes torch's behaviour is set"),
    ("emulation", "the interpreter is emulated: slow, otherwise the same platform"),
)
RANK = {kind: index for index, (kind, _) in enumerate(KINDS)}
TOOLING = frozenset({"pip", "setuptools", "wheel", "uv", "distribute"})


@dataclass(frozen=True)
class Drift:
    kind: str
    title: str
    fix: str
    details: tuple[str, ...] = ()

    @property
    def rank(self) -> int:
        return RANK[self.kind]

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "rank": self.rank + 1,
            "title": self.title,
            "fix": self.fix,
            "details": list(self.details),
        }


@dataclass(frozen=True)
class Target:
    """The env a report is compared with, and its lock as this checkout has it."""

    env: EnvSpec
    lock_rel: str  # envs/locks/<env>.txt
    lock_sha256: str
    pins: dict[str, str]  # canonical name -> version
    project_name: str
    notes: list[str] = field(default_factory=list)


def same_version(one: str, other: str) -> bool:
    """PEP 440 equality for the release forms locks hold ("1.0" == "1.0.0"; labels compared)."""

    def key(version: str) -> tuple[Any, ...]:
        release, _, label = version.lower().partition("+")
        parts = release.split(".")
        while len(parts) > 1 and parts[-1] == "0":
            parts.pop()
        return tuple(parts), label

    return key(one) == key(other)


def installed(report: dict[str, Any]) -> dict[str, str]:
    return {canonical(d["name"]): d["version"] for d in report["probe"].get("distributions") or []}


def resync(target: Target) -> str:
    if target.env.platform.os == "macos":
        return f"rebuild the env natively from its lock: nox -s setup-mac (or uv pip sync --require-hashes {target.lock_rel})"
    return f"in the env: uv pip sync --require-hashes {target.lock_rel}"


def minor(version: str | None) -> str | None:
    parts = (version or "").split(".")
    return ".".join(parts[:2]) if len(parts) >= 2 else None


def version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", version)[:3])


# ---------------------------------------------------------------------------------------------
# the checks, one per concern
# ---------------------------------------------------------------------------------------------


def check_platform(report: dict[str, Any], target: Target) -> list[Drift]:
    os_name = (report["probe"].get("os") or {}).get("name")
    want = target.env.platform
    if os_name == want.os:
        return []
    return [
        Drift(
            "platform",
            f"the report is from {os_name}; env {target.env.name} is for {want.os} ({want.name})",
            f"compare with an env for {report.get('platform') or os_name}: archlock repro REPORT --env NAME",
        )
    ]


def check_interpreter(report: dict[str, Any], target: Target) -> list[Drift]:
    python, emulation = report["probe"].get("python") or {}, report["probe"].get("emulation") or {}
    want = target.env.platform
    arch, archs = python.get("arch"), "/".join(python.get("binary_archs") or ["?"])
    if emulation.get("by") == "rosetta":
        return [
            Drift(
                "interpreter-arch",
                f"the interpreter runs as {arch} under Rosetta 2 on Apple Silicon (binary: {archs}); "
                f"{want.name} needs a native {want.binary_arch} Python",
                "use a native arm64 Python: nox -s setup-mac (it rebuilds the venv from the lock)",
                (f"interpreter: {python.get('executable')}",),
            )
        ]
    if arch and arch != want.binary_arch:
        return [
            Drift(
                "interpreter-arch",
                f"the interpreter runs as {arch} (binary: {archs}); {want.name} needs {want.binary_arch}",
                f"recreate the env with a native {want.binary_arch} Python, then {resync(target)}",
                (f"interpreter: {python.get('executable')}",),
            )
        ]
    return []


def check_python(report: dict[str, Any], target: Target) -> list[Drift]:
    version = (report["probe"].get("python") or {}).get("version")
    if minor(version) in (None, target.env.python):
        return []
    return [
        Drift(
            "python-version",
            f"Python {version}; env {target.env.name} is locked for Python {target.env.python}",
            f"recreate the venv with Python {target.env.python} (uv venv --python {target.env.python}), "
            f"then {resync(target)}",
        )
    ]


def build_of(facts: dict[str, Any], version: str | None) -> str | None:
    """ "CUDA 12.8" / "ROCm" / "MPS" / "CPU-only" from torch's facts or its version label."""
    if facts.get("importable"):
        if facts.get("cuda"):
            return f"CUDA {facts['cuda']}"
        if facts.get("hip"):
            return "ROCm"
        return "MPS" if facts.get("mps_built") else "CPU-only"
    label = (version or "").partition("+")[2]
    if label.startswith("cu") and label[2:].isdigit():
        return f"CUDA {label[2:-1]}.{label[-1]}"
    return {"cpu": "CPU-only"}.get(label)


def locked_build(env: EnvSpec, cuda: str | None) -> str:
    if env.torch_variant:
        return f"+{env.torch_variant} build"
    return {
        "cuda": f"CUDA {cuda or ''} build".replace("  ", " "),
        "mps": "MPS build",
        "cpu": "CPU-only build",
    }[env.accelerator]


def build_mismatch(env: EnvSpec, build: str | None, label: str, cuda: str | None) -> bool:
    if build is None:
        return False
    if env.torch_variant:
        return label != env.torch_variant
    if env.accelerator == "cuda":
        return not build.startswith("CUDA") or bool(
            cuda and build != f"CUDA {cuda}"
        )
    if env.accelerator == "mps":
        return build != "MPS"
    return build not in (
        "CPU-only",
        "MPS",
    )  # an env for CPU: a CUDA build works, but drags 2.5 GB along


def check_torch(report: dict[str, Any], target: Target) -> list[Drift]:
    facts, env = report["probe"].get("torch") or {}, target.env
    locked, have = target.pins.get("torch"), installed(report).get("torch")
    have = have or (facts.get("version") if facts.get("importable") else None)
    if not locked:
        return []
    cuda = cuda_of_pins(target.pins)  # the lock's CUDA release, from its runtime wheel
    want = f"torch {locked} ({locked_build(env, cuda)})"
    if have is None:
        return [
            Drift("torch", f"torch is not installed; {target.lock_rel} pins {want}", resync(target))
        ]
    build = build_of(facts, have)
    shown = f"torch {have}" + (f" ({build} build)" if build else "")
    if not same_version(public(have), public(locked)) or build_mismatch(
        env, build, have.partition("+")[2], cuda
    ):
        return [
            Drift(
                "torch",
                f"{shown} is installed; {target.lock_rel} pins {want}",
                resync(target),
                torch_details(facts),
            )
        ]
    return []


def torch_details(facts: dict[str, Any]) -> tuple[str, ...]:
    keys = ("cuda", "cudnn", "mps_built", "cuda_available", "git_version")
    return tuple(f"{key}: {facts[key]}" for key in keys if facts.get(key) not in (None, "", []))


def check_torch_import(report: dict[str, Any], target: Target) -> list[Drift]:
    facts = report["probe"].get("torch") or {}
    if facts.get("importable") or "skipped" in facts or not facts:
        return []
    if "torch" not in installed(report):  # not installed at all: check_torch says so
        return []
    error = facts.get("error", "unknown error")
    return [
        Drift(
            "torch-import",
            f"import torch fails: {error}",
            f"reinstall torch as locked ({resync(target)}); if it still fails, the error names the "
            "missing library or the broken file",
        )
    ]


def check_packages(report: dict[str, Any], target: Target) -> list[Drift]:
    have = installed(report)
    pins = {name: version for name, version in target.pins.items() if name != "torch"}
    own = canonical(target.project_name)
    missing = sorted(f"{n}=={v}" for n, v in pins.items() if n not in have)
    different = sorted(
        f"{n} {have[n]} (lock: {v})"
        for n, v in pins.items()
        if n in have and not same_version(have[n], v)
    )
    extra = sorted(
        f"{n} {v}"
        for n, v in have.items()
        if n not in target.pins and n not in TOOLING and n != own and n != "torch"
    )
    out = []
    if missing:
        out.append(
            Drift(
                "packages-missing",
                f"{len(missing)} locked package(s) not installed: {short(missing)}",
                resync(target),
                tuple(missing),
            )
        )
    if different:
        out.append(
            Drift(
                "packages-different",
                f"{len(different)} package(s) at another version than the lock: {short(different)}",
                resync(target),
                tuple(different),
            )
        )
    if extra:
        out.append(
            Drift(
                "packages-extra",
                f"{len(extra)} package(s) the lock does not have: {short(extra)}",
                f"remove them (uv pip sync removes what the lock lacks: {resync(target)}), or add them to "
                "the project's dependencies and re-lock",
                tuple(extra),
            )
        )
    return out


def short(items: list[str], count: int = 3) -> str:
    more = f" and {len(items) - count} more" if len(items) > count else ""
    return ", ".join(items[:count]) + more


def check_binaries(report: dict[str, Any], target: Target) -> list[Drift]:
    scan = report["probe"].get("binaries") or {}
    total = scan.get("foreign_total") or 0
    if not total:
        return []
    expected = scan.get("expected_arch") or target.env.platform.binary_arch
    files = tuple(
        f"{item['path']} ({'/'.join(item.get('archs') or []) or item.get('format')})"
        for item in scan.get("foreign") or []
    )
    packages = sorted({item["path"].split("/", 1)[0] for item in scan.get("foreign") or []})
    return [
        Drift(
            "compiled-arch",
            f"{total} compiled file(s) in site-packages are not {expected}: {short(list(files))}",
            f"reinstall {', '.join(packages[:5]) or 'them'} from the lock with a native interpreter "
            f"({resync(target)} --reinstall); never copy a venv between machines",
            files,
        )
    ]


def check_macos(report: dict[str, Any], target: Target) -> list[Drift]:
    osf = report["probe"].get("os") or {}
    if osf.get("name") != "macos" or target.env.platform.os != "macos":
        return []
    floors = [
        f
        for f in (
            target.env.macos,
            torch_macos_floor(target.pins["torch"]) if "torch" in target.pins else None,
        )
        if f
    ]
    floor = max(floors, key=version_tuple) if floors else None
    have = osf.get("version") or "0"
    if floor is None or version_tuple(have) >= version_tuple(floor):
        return []
    return [
        Drift(
            "macos-floor",
            f"macOS {have} is below {floor}, the floor of {target.lock_rel}",
            f"upgrade macOS to {floor} or later (torch's wheels for this lock need it), or lower the env's "
            "`macos:` and pin an older torch, then re-lock",
        )
    ]




def cuda_of(report: dict[str, Any], target: Target) -> str | None:
    facts = report["probe"].get("torch") or {}
    if facts.get("importable"):
        return facts.get("cuda")
    return cuda_of_pins(target.pins)


def check_cuda_driver(report: dict[str, Any], target: Target) -> list[Drift]:
    if (report["probe"].get("os") or {}).get("name") != "linux":
        return []
    cuda = cuda_of(report, target)
    if not cuda or (
        target.env.accelerator != "cuda" and not (report["probe"].get("torch") or {}).get("cuda")
    ):
        return []
    driver = (report["probe"].get("gpu") or {}).get("nvidia_driver")
    floor, shipped = CUDA_MAJOR_FLOOR.get(cuda.split(".")[0]), CUDA_TOOLKIT_DRIVER.get(cuda)
    if driver is None:
        return [
            Drift(
                "cuda-driver",
                f"no NVIDIA driver is loaded; torch's CUDA {cuda} build runs on the CPU here",
                f"on a GPU machine install the NVIDIA driver >= {shipped or floor}; on a CPU-only machine "
                "use a CPU env (e.g. linux-amd64-cpu)",
            )
        ]
    if floor and version_tuple(driver) < version_tuple(floor):
        return [
            Drift(
                "cuda-driver",
                f"NVIDIA driver {driver} is too old for CUDA {cuda} (needs >= {floor}): "
                "torch.cuda.is_available() is False",
                f"upgrade the driver to >= {shipped or floor}",
            )
        ]
    if shipped and version_tuple(driver) < version_tuple(shipped):
        return [
            Drift(
                "cuda-driver",
                f"NVIDIA driver {driver} is older than CUDA {cuda}'s own ({shipped}): it runs "
                "through minor version compatibility, without PTX JIT (GPUs newer than the build fail)",
                f"upgrade the driver to >= {shipped}",
            )
        ]
    return []


def check_cuda_arch(report: dict[str, Any], target: Target) -> list[Drift]:
    facts = report["probe"].get("torch") or {}
    bad = [d for d in facts.get("devices") or [] if not d.get("supported", True)]
    if not bad:
        return []
    arches = " ".join(facts.get("arch_list") or [])
    return [
        Drift(
            "cuda-arch",
            f"torch {facts.get('version')} has no kernels for {bad[0].get('name')} "
            f"(compute capability {bad[0].get('capability')}); it is built for {arches}",
            "use a torch build whose arch list covers this GPU (a newer CUDA build), and re-lock",
        )
    ]


# name -> (the OS it matters on or None for all, the accelerator it matters for or None, what it does)
ENV_EFFECTS: dict[str, tuple[str | None, str | None, str]] = {
    "PYTORCH_ENABLE_MPS_FALLBACK": (
        "macos",
        None,
        "ops MPS lacks silently run on the CPU: slow, and it hides the missing-op error",
    ),
    "PYTORCH_MPS_HIGH_WATERMARK_RATIO": (
        "macos",
        None,
        "changes how much memory MPS may take before failing",
    ),
    "PYTORCH_MPS_LOW_WATERMARK_RATIO": ("macos", None, "changes when MPS starts freeing memory"),
    "SYSTEM_VERSION_COMPAT": (
        "macos",
        None,
        "macOS reports itself as 10.16: installers pick other wheels",
    ),
    "CUDA_VISIBLE_DEVICES": (None, "cuda", "hides GPUs from torch (empty or -1 hides all)"),
    "NVIDIA_VISIBLE_DEVICES": (None, "cuda", "hides GPUs from the container"),
    "CUDA_LAUNCH_BLOCKING": (
        None,
        "cuda",
        "makes every CUDA call synchronous: slow, different timing",
    ),
    "PYTORCH_CUDA_ALLOC_CONF": (
        None,
        "cuda",
        "changes the CUDA caching allocator (fragmentation, OOM points)",
    ),
    "PYTORCH_NO_CUDA_MEMORY_CACHING": (None, "cuda", "disables the CUDA caching allocator: slow"),
    "CUBLAS_WORKSPACE_CONFIG": (None, "cuda", "changes cuBLAS determinism and memory"),
    "KMP_DUPLICATE_LIB_OK": (
        None,
        None,
        "hides two OpenMP runtimes loaded at once: crashes or wrong results",
    ),
    "ATEN_CPU_CAPABILITY": (None, None, "forces other CPU kernels (numerics and speed differ)"),
    "LD_PRELOAD": (
        "linux",
        None,
        "loads libraries before the wheels' own (another CUDA, BLAS or libstdc++)",
    ),
    "LD_LIBRARY_PATH": (
        "linux",
        None,
        "may load another CUDA, cuDNN or BLAS than the locked nvidia-* wheels",
    ),
    "DYLD_LIBRARY_PATH": ("macos", None, "may load other libraries than the wheels' own"),
    "DYLD_FALLBACK_LIBRARY_PATH": ("macos", None, "may load other libraries than the wheels' own"),
    "PYTHONPATH": (None, None, "imports from outside the env can shadow locked packages"),
    "PYTHONHOME": (None, None, "points the interpreter at another standard library"),
    "OMP_NUM_THREADS": (None, None, "changes CPU thread counts (speed, and float summation order)"),
    "MKL_NUM_THREADS": (None, None, "changes CPU thread counts"),
    "OPENBLAS_NUM_THREADS": (None, None, "changes CPU thread counts"),
    "ARCHLOCK_DEVICE": (None, None, "overrides the device archlock's suite picks"),
    "ARCHLOCK_SUITE_FAULT": (None, None, "a test hook that forces a suite failure"),
}
ENV_PREFIX_EFFECT = ("TORCH_", "TORCHINDUCTOR_", "TORCHDYNAMO_", "NCCL_", "PYTORCH_")


def env_effect(name: str, os_name: str | None, accelerator: str) -> str | None:
    """What `name` does to torch on this OS / accelerator, or None where it has no effect."""
    if name in ENV_EFFECTS:
        only_os, only_acc, what = ENV_EFFECTS[name]
        if (only_os and only_os != os_name) or (only_acc and only_acc != accelerator):
            return None
        return what
    if name.startswith(ENV_PREFIX_EFFECT):
        return "a torch setting: changes compilation, kernels or communication"
    return None


def check_env_vars(report: dict[str, Any], target: Target) -> list[Drift]:
    env = report["probe"].get("env") or {}
    os_name = (report["probe"].get("os") or {}).get("name")
    order = list(ENV_EFFECTS)
    out = []
    for name in sorted(env, key=lambda n: (order.index(n) if n in order else len(order), n)):
        what = env_effect(name, os_name, target.env.accelerator)
        if what:
            out.append(
                Drift(
                    "env-var",
                    f"{name}={env[name]} is set: {what}",
                    f"unset {name} and rerun; keep it only if the project documents it",
                )
            )
    return out


def check_emulation(report: dict[str, Any], target: Target) -> list[Drift]:
    emulation = report["probe"].get("emulation") or {}
    if not emulation.get("emulated") or emulation.get("by") == "rosetta":
        return []
    return [
        Drift(
            "emulation",
            f"the interpreter is emulated by {emulation.get('by')} on a "
            f"{emulation.get('host_arch')} host: expect 10-50x slower runs",
            f"run on {target.env.platform.name} hardware for timing; results should otherwise match",
        )
    ]


CHECKS = (
    check_platform,
    check_interpreter,
    check_python,
    check_torch,
    check_torch_import,
    check_packages,
    check_binaries,
    check_macos,
    check_cuda_driver,
    check_cuda_arch,
    check_env_vars,
    check_emulation,
)


def diagnose(report: dict[str, Any], target: Target) -> list[Drift]:
    """Every drift, most likely cause first (the order of KINDS; stable within a kind)."""
    found = [drift for check in CHECKS for drift in check(report, target)]
    return sorted(found, key=lambda drift: drift.rank)


def ignored_env(report: dict[str, Any], target: Target) -> list[str]:
    """Variables set in the report that have no effect on this platform (shown as notes)."""
    env = report["probe"].get("env") or {}
    os_name = (report["probe"].get("os") or {}).get("name")
    return [
        name
        for name in sorted(env)
        if (name in ENV_EFFECTS or name.startswith(ENV_PREFIX_EFFECT))
        and env_effect(name, os_name, target.env.accelerator) is None
    ]
