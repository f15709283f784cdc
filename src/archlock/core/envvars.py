"""Environment variables that change what torch does, and where each one matters.

The probe records an allow-list of names (archlock.inenv.probe.ENV_NAMES / ENV_PREFIXES, so no
secret ever leaves a machine); this table says what each of them does, on which OS and for
which accelerator. The diagnosis reports the ones that matter; the rest are notes.
"""

from __future__ import annotations

from typing import Any

from archlock.core.spec import EnvSpec
from archlock.inenv.probe import ENV_PREFIXES

# NAME | the OS it matters on (- for all) | the accelerator it matters for (- for all) | effect
TABLE = """
PYTORCH_ENABLE_MPS_FALLBACK | macos | - | ops MPS lacks silently run on the CPU: slow, hides errors
PYTORCH_MPS_HIGH_WATERMARK_RATIO | macos | - | changes how much memory MPS may take before failing
PYTORCH_MPS_LOW_WATERMARK_RATIO | macos | - | changes when MPS starts freeing memory
SYSTEM_VERSION_COMPAT | macos | - | macOS reports itself as 10.16: installers pick other wheels
CUDA_VISIBLE_DEVICES | - | cuda | hides GPUs from torch (empty or -1 hides all)
NVIDIA_VISIBLE_DEVICES | - | cuda | hides GPUs from the container
CUDA_LAUNCH_BLOCKING | - | cuda | makes every CUDA call synchronous: slow, different timing
PYTORCH_CUDA_ALLOC_CONF | - | cuda | changes the CUDA caching allocator (fragmentation, OOM points)
PYTORCH_NO_CUDA_MEMORY_CACHING | - | cuda | disables the CUDA caching allocator: slow
CUBLAS_WORKSPACE_CONFIG | - | cuda | changes cuBLAS determinism and memory
KMP_DUPLICATE_LIB_OK | - | - | hides two OpenMP runtimes loaded at once: crashes or wrong results
ATEN_CPU_CAPABILITY | - | - | forces other CPU kernels (numerics and speed differ)
LD_PRELOAD | linux | - | loads libraries before the wheels' own (another CUDA, BLAS or libstdc++)
LD_LIBRARY_PATH | linux | - | may load another CUDA, cuDNN or BLAS than the locked nvidia-* wheels
DYLD_LIBRARY_PATH | macos | - | may load other libraries than the wheels' own
DYLD_FALLBACK_LIBRARY_PATH | macos | - | may load other libraries than the wheels' own
PYTHONPATH | - | - | imports from outside the env can shadow locked packages
PYTHONHOME | - | - | points the interpreter at another standard library
OMP_NUM_THREADS | - | - | changes CPU thread counts (speed, and float summation order)
MKL_NUM_THREADS | - | - | changes CPU thread counts
OPENBLAS_NUM_THREADS | - | - | changes CPU thread counts
ARCHLOCK_DEVICE | - | - | overrides the device archlock's suite picks
ARCHLOCK_SUITE_FAULT | - | - | a test hook that forces a suite failure
"""
PREFIX_EFFECT = "a torch setting: changes compilation, kernels or communication"


def _rows(table: str) -> dict[str, tuple[str | None, str | None, str]]:
    rows = {}
    for line in table.strip().splitlines():
        name, os_name, accelerator, what = (cell.strip() for cell in line.split("|", 3))
        rows[name] = (os_name.replace("-", "") or None, accelerator.replace("-", "") or None, what)
    return rows


# name -> (the OS it matters on or None for all, the accelerator it matters for or None, effect)
ENV_EFFECTS = _rows(TABLE)


def env_effect(name: str, os_name: str | None, accelerator: str) -> str | None:
    """What `name` does to torch on this OS / accelerator, or None where it has no effect."""
    if name in ENV_EFFECTS:
        only_os, only_accelerator, what = ENV_EFFECTS[name]
        elsewhere = only_os not in (None, os_name)
        return None if elsewhere or only_accelerator not in (None, accelerator) else what
    return PREFIX_EFFECT if name.startswith(ENV_PREFIXES) else None


def ignored_env(facts: dict[str, Any], env: EnvSpec) -> list[str]:
    """Variables set in the facts that have no effect on this platform (shown as notes)."""
    values, os_name = facts.get("env") or {}, (facts.get("os") or {}).get("name")
    return [
        name
        for name in sorted(values)
        if (name in ENV_EFFECTS or name.startswith(ENV_PREFIXES))
        and env_effect(name, os_name, env.accelerator) is None
    ]
