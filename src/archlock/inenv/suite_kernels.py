"""The suite's kernel checks: sdpa (attention against a float32 reference, through flash-attn or
the first SDPA kernel that runs), compile (torch.compile against eager, or why it cannot work
here) and autocast (the device's autocast dtype).

Standard library only (torch is passed in; triton and flash-attn are imported where present),
Python >= 3.8, loaded by suite.py as a sibling (see suite.py).
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import importlib.util
import math
import os
import shutil
import tempfile

# its siblings, the same way inside the package and in a plain-file copy (see inenv/__init__.py)
from . import suite_device

AUTOCAST_TOLERANCE = 5e-2  # bf16 keeps 8 bits of mantissa


# ---------------------------------------------------------------------------------------------
# sdpa
# ---------------------------------------------------------------------------------------------


def qkv(torch, dtype):
    gen = torch.Generator().manual_seed(1)
    shape = (2, 2, 8, 16)  # batch, heads, sequence, head dim
    return [torch.randn(shape, generator=gen, dtype=torch.float32).to(dtype) for _ in range(3)]


def attention_reference(torch, q, k, v):
    scores = q.float() @ k.float().transpose(-2, -1) / math.sqrt(q.shape[-1])
    return torch.softmax(scores, dim=-1) @ v.float()


def sdpa_kernels(torch):
    """(name, context manager factory) for each SDPA kernel torch can be pinned to."""
    try:
        from torch.nn.attention import SDPBackend, sdpa_kernel
    except ImportError:
        return [("default", None)]
    names = ["FLASH_ATTENTION", "EFFICIENT_ATTENTION", "CUDNN_ATTENTION", "MATH"]
    return [
        (name, functools.partial(sdpa_kernel, [getattr(SDPBackend, name)]))
        for name in names
        if hasattr(SDPBackend, name)
    ]


def run_flash_attn(torch, device: str):
    """flash-attn's own kernel, when the package is installed (CUDA only)."""
    try:
        import flash_attn
    except ImportError:
        return None, "flash-attn not installed"
    q, k, v = [t.to(device) for t in qkv(torch, torch.float16)]
    out = flash_attn.flash_attn_func(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))
    return (out.transpose(1, 2), "flash-attn %s" % getattr(flash_attn, "__version__", "?")), None


def run_sdpa(torch, device: str):
    """SDPA through the first kernel that runs on this device; returns (output, kernel, tried)."""
    import torch.nn.functional as F

    dtype = torch.float16 if device == "cuda" else torch.float32
    q, k, v = [t.to(device) for t in qkv(torch, dtype)]
    tried: list[str] = []
    for name, context in sdpa_kernels(torch):
        try:
            if context is None:
                return F.scaled_dot_product_attention(q, k, v), name, tried
            with context():
                return F.scaled_dot_product_attention(q, k, v), name, tried
        except RuntimeError as exc:
            tried.append("%s: %s" % (name, suite_device.one_line(exc)[:120]))
    raise RuntimeError("no SDPA kernel ran: " + "; ".join(tried))


def check_sdpa(torch, device: str) -> dict:
    q, k, v = qkv(torch, torch.float32)
    expected = attention_reference(torch, q, k, v)
    flash, missing = run_flash_attn(torch, device) if device == "cuda" else (None, None)
    if flash is not None:
        out, impl = flash
        kernel, why = "flash-attn", "flash-attn kernel"
    else:
        out, kernel, tried = run_sdpa(torch, device)
        impl = "sdpa"
        why = "SDPA %s kernel" % kernel + (" (%s)" % missing if missing else "")
        if tried:
            why += "; fell back from " + ", ".join(item.split(":")[0] for item in tried)
    error = (out.float().cpu() - expected).abs().max().item()
    tolerance = 2e-3 if out.dtype != torch.float32 else 1e-4
    status = "pass" if error <= tolerance else "fail"
    if status == "fail":
        why = "attention differs from the float32 reference by %.2e (> %.0e)" % (error, tolerance)
    return suite_device.result(status, why, impl=impl, kernel=kernel, max_error=error)


# ---------------------------------------------------------------------------------------------
# compile
# ---------------------------------------------------------------------------------------------


INSTALL_COMPILER = "install g++ or clang (an archlock image: image.toolchain: true in its env spec)"


def compile_blocker(torch, device: str, emulated: bool) -> str | None:
    """Why torch.compile cannot work here, or None when it should."""
    if not hasattr(torch, "compile"):
        return "torch %s has no torch.compile" % torch.__version__
    if emulated:
        return "emulated CPU (QEMU / Rosetta): inductor would take minutes; run natively to check"
    if device == "mps":
        return "inductor's MPS backend is a prototype; eager MPS is what the project relies on"
    if device == "cuda":
        try:
            import triton  # noqa: F401
        except ImportError:
            return "triton is not installed (inductor's CUDA backend needs it)"
        if not any(shutil.which(c) for c in (os.environ.get("CC") or "cc", "gcc", "clang")):
            return (
                "no C compiler on PATH (triton builds its launcher with one); " + INSTALL_COMPILER
            )
        return None
    compiler = os.environ.get("CXX") or "c++"
    if not shutil.which(compiler) and not shutil.which("g++") and not shutil.which("clang++"):
        return "no C++ compiler on PATH (inductor's CPU backend compiles C++); " + INSTALL_COMPILER
    if importlib.util.find_spec("setuptools") is None:
        return (
            "setuptools is not installed and inductor's CPU backend imports it "
            "(torch.utils.cpp_extension); add setuptools to the locked dependencies"
        )
    return None


@contextlib.contextmanager
def private_compile_cache():
    """Inductor's and triton's caches in a folder removed afterwards, unless the user chose them:
    their defaults (/tmp/torchinductor_<user>, ~/.triton) grew by the run and were never cleaned,
    3 GB on a machine that verifies again and again."""
    names = [n for n in ("TORCHINDUCTOR_CACHE_DIR", "TRITON_CACHE_DIR") if not os.environ.get(n)]
    folder = tempfile.mkdtemp(prefix="archlock-compile-")
    for name in names:
        os.environ[name] = os.path.join(folder, name.split("_")[0].lower())
    headers = private_header_dir(os.path.join(folder, "headers"))
    try:
        yield
    finally:
        for name in names:
            os.environ.pop(name, None)
        headers()
        shutil.rmtree(folder, ignore_errors=True)


def private_header_dir(folder: str):
    """Inductor's precompiled header (123 MB) goes in `folder`; returns what puts it back. Its
    place ignores TORCHINDUCTOR_CACHE_DIR (codecache's module globals, under the temp folder),
    and its key holds the venv's include path, so every venv left one more there: 250 MB a CI
    run. Where this torch has no such globals there is nothing to move."""
    try:
        codecache = importlib.import_module("torch._inductor.codecache")
    except Exception:  # an inductor that does not import: check_compile reports it
        return lambda: None
    moved = {"_HEADER_DIR": folder, "_HEADER_LOCK_DIR": os.path.join(folder, "locks")}
    saved = {name: getattr(codecache, name) for name in moved if hasattr(codecache, name)}
    if len(saved) == len(moved):
        for name, value in moved.items():
            setattr(codecache, name, value)

    def restore() -> None:
        for name, value in saved.items():
            setattr(codecache, name, value)

    return restore


def check_compile(torch, device: str, emulated: bool) -> dict:
    blocker = compile_blocker(torch, device, emulated)
    if blocker:
        return suite_device.result("skipped", blocker)
    if device not in ("cpu", "cuda"):  # compile_blocker said why; this keeps the guard in sight
        return suite_device.result("skipped", "torch.compile is checked on cpu and cuda only")

    def func(x, w):
        return torch.tanh(x @ w) * 2.0 + 1.0

    gen = torch.Generator().manual_seed(2)
    x = torch.randn(16, 16, generator=gen).to(device)
    w = torch.randn(16, 16, generator=gen).to(device)
    with private_compile_cache():
        compiled = torch.compile(func, backend="inductor")
        error = (compiled(x, w) - func(x, w)).abs().max().item()
    status = "pass" if error < 1e-4 else "fail"
    return suite_device.result(
        status,
        "inductor output matches eager (max error %.1e)" % error,
        backend="inductor",
        max_error=error,
    )


# ---------------------------------------------------------------------------------------------
# autocast
# ---------------------------------------------------------------------------------------------


def autocast_dtype(torch, device: str):
    if device == "cuda" and torch.cuda.is_available():
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device == "mps":
        return torch.float16
    return torch.bfloat16


def check_autocast(torch, device: str) -> dict:
    dtype = autocast_dtype(torch, device)
    torch.manual_seed(3)
    gen = torch.Generator().manual_seed(3)
    layer = torch.nn.Linear(32, 8)
    with torch.no_grad():
        layer.weight.copy_(torch.randn(8, 32, generator=gen) / 6)
    x = torch.randn(4, 32, generator=gen)
    expected = layer(x)
    layer = layer.to(device)
    with torch.autocast(device_type=device, dtype=dtype):
        out = layer(x.to(device))
    error = (out.float().cpu() - expected).abs().max().item()
    name = str(dtype).replace("torch.", "")
    if out.dtype != dtype:
        return suite_device.result(
            "fail", "autocast produced %s, expected %s" % (out.dtype, name), dtype=name
        )
    status = "pass" if error <= AUTOCAST_TOLERANCE else "fail"
    return suite_device.result(
        status,
        "Linear under autocast runs in %s (max error %.1e)" % (name, error),
        dtype=name,
        max_error=error,
    )
