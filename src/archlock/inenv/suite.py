"""The shared suite: does torch behave the same here as everywhere else? JSON out.

Runs as a plain file (`python3 suite.py [--device cuda|mps|cpu] [--output F]`) with only the
standard library and torch on Python >= 3.8; it must not import other archlock modules. It is
tiny on purpose, so it finishes under QEMU emulation.

Schema `archlock.suite/1`:

    schema   "archlock.suite/1"
    torch    torch.__version__ (or null when torch does not import; then `error` says why)
    device   the device the checks ran on; fault: the ARCHLOCK_SUITE_FAULT value or null
    checks   {name: {"status": "pass"|"fail"|"skipped", "why": one line, "seconds", ...facts}}
    seconds  total wall time

Checks, in order: device (the first of CUDA > MPS > CPU that torch reports and that computes a
small op like the CPU, unless --device / ARCHLOCK_DEVICE says otherwise; a reported device that
cannot compute fails the check with its error, except MPS on a VM with --virtual-machine),
sdpa (scaled_dot_product_attention against a float32 reference; flash-attn on CUDA when
installed, else the first SDPA kernel that runs, named), compile (torch.compile against eager,
skipped with the reason where it cannot work), autocast (the device's autocast dtype), distributed
(2-process all-reduce: nccl with one CUDA device per rank, gloo otherwise), training (a fixed-seed,
fixed-data tiny MLP on the device), loss_parity (the same run on CPU, per-step losses within the
device's tolerance) and checkpoint (saved on the device, loaded on CPU, same outputs).

Test hook: ARCHLOCK_SUITE_FAULT=loss perturbs the device run's initial weights, so loss_parity
fails the way a real numerical divergence would.
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import json
import math
import os
import platform
import shutil
import socket
import sys
import time

SCHEMA = "archlock.suite/1"
CHECKS = (
    "device",
    "sdpa",
    "compile",
    "autocast",
    "distributed",
    "training",
    "loss_parity",
    "checkpoint",
)
DEVICE_ENV = "ARCHLOCK_DEVICE"
FAULT_ENV = "ARCHLOCK_SUITE_FAULT"
# Relative per-step loss tolerance against the CPU run. CPU vs CPU is the same code path; GPUs
# reduce in other orders (TF32 is switched off for the comparison).
LOSS_TOLERANCE = {"cpu": 1e-5, "cuda": 1e-3, "mps": 1e-3}
AUTOCAST_TOLERANCE = 5e-2  # bf16 keeps 8 bits of mantissa
TRAIN_STEPS = 12
DIST_TIMEOUT = 240.0  # two interpreters importing torch; about 40 s each under QEMU


def one_line(exc: BaseException) -> str:
    text = ("%s: %s" % (type(exc).__name__, exc)).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__


def result(status: str, why: str, **facts) -> dict:
    out = {"status": status, "why": why}
    out.update(facts)
    return out


# ---------------------------------------------------------------------------------------------
# device
# ---------------------------------------------------------------------------------------------


def mps_available(torch) -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def available_devices(torch) -> dict[str, bool]:
    """What torch reports; not yet whether the device can compute (see device_unusable)."""
    return {"cuda": bool(torch.cuda.is_available()), "mps": mps_available(torch), "cpu": True}


def device_unusable(torch, device: str) -> str | None:
    """None when a small op on `device` gives the CPU's numbers, else why not (one line).

    A reported device is not a usable one: a virtual Mac reports MPS and cannot allocate on it,
    a GPU without kernels for its architecture reports CUDA and fails at the first launch."""
    try:
        x = torch.arange(16, dtype=torch.float32).reshape(4, 4) / 7.0
        expected = float((x @ x.t() + 1.0).sum().item())
        on_device = x.to(device)
        got = float((on_device @ on_device.t() + 1.0).sum().item())  # .item() waits for the kernel
    except Exception as exc:  # noqa: BLE001 - the reason is the result
        return one_line(exc)
    if not math.isfinite(got) or abs(got - expected) > 1e-4 * max(1.0, abs(expected)):
        return "a 4x4 matmul gave %r, the CPU %r" % (got, expected)
    return None


def device_problems(unusable: dict, virtual: bool) -> tuple[str, list[str]]:
    """("fail" | "skipped" | "pass", reasons) for the reported devices that cannot compute.
    Only MPS on a virtual machine is excused: Apple's Virtualization framework gives no usable
    GPU, so a hosted macOS runner cannot run the MPS path; anywhere else it is a failure."""
    reasons, excused = [], True
    for name, why in sorted(unusable.items()):
        if name == "mps" and virtual:
            reasons.append("virtual Mac: MPS unusable (%s)" % why)
        else:
            excused = False
            reasons.append("%s is reported available but cannot run a kernel: %s" % (name, why))
    if not reasons:
        return "pass", []
    return ("skipped" if excused else "fail"), reasons


def select_device(torch, requested: str | None, virtual: bool = False) -> tuple[str, dict]:
    """(device, check): the requested device, else the first of CUDA > MPS > CPU that is reported
    AND computes a small op like the CPU; a reported device that cannot is named with its error."""
    found = available_devices(torch)
    unusable = {}
    for name in ("cuda", "mps"):
        why = device_unusable(torch, name) if found[name] else None
        if why:
            unusable[name] = why
    usable = {name: found[name] and name not in unusable for name in found}
    facts = {"available": found, "usable": usable, "unusable": unusable}
    status, reasons = device_problems(unusable, virtual)
    if requested:
        if usable.get(requested):
            return requested, result("pass", "%s requested and usable" % requested, **facts)
        why = "%s requested (--device / %s) but not usable here; ran on cpu" % (
            requested,
            DEVICE_ENV,
        )
        return "cpu", result("fail", "; ".join([why] + reasons), **facts)
    device = next(name for name in ("cuda", "mps", "cpu") if usable[name])
    why = "auto: first usable of cuda > mps > cpu"
    if reasons:
        why = "%s; ran on %s" % ("; ".join(reasons), device)
    return device, result(status, why, name=device_name(torch, device), **facts)


def device_name(torch, device: str) -> str:
    if device == "cuda" and torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    if device == "mps":
        return "Apple GPU (MPS)"
    return platform.processor() or platform.machine()


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
        (name, lambda member=getattr(SDPBackend, name): sdpa_kernel([member]))
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
    tried = []
    for name, context in sdpa_kernels(torch):
        try:
            if context is None:
                return F.scaled_dot_product_attention(q, k, v), name, tried
            with context():
                return F.scaled_dot_product_attention(q, k, v), name, tried
        except RuntimeError as exc:
            tried.append("%s: %s" % (name, one_line(exc)[:120]))
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
    return result(status, why, impl=impl, kernel=kernel, max_error=error)


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
            return "no C compiler on PATH (triton builds its launcher with one); " + INSTALL_COMPILER
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


def check_compile(torch, device: str, emulated: bool) -> dict:
    blocker = compile_blocker(torch, device, emulated)
    if blocker:
        return result("skipped", blocker)
    if device not in ("cpu", "cuda"):  # compile_blocker said why; this keeps the guard in sight
        return result("skipped", "torch.compile is checked on cpu and cuda only")

    def func(x, w):
        return torch.tanh(x @ w) * 2.0 + 1.0

    gen = torch.Generator().manual_seed(2)
    x = torch.randn(16, 16, generator=gen).to(device)
    w = torch.randn(16, 16, generator=gen).to(device)
    compiled = torch.compile(func, backend="inductor")
    error = (compiled(x, w) - func(x, w)).abs().max().item()
    status = "pass" if error < 1e-4 else "fail"
    return result(
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
        return result("fail", "autocast produced %s, expected %s" % (out.dtype, name), dtype=name)
    status = "pass" if error <= AUTOCAST_TOLERANCE else "fail"
    return result(
        status,
        "Linear under autocast runs in %s (max error %.1e)" % (name, error),
        dtype=name,
        max_error=error,
    )


# ---------------------------------------------------------------------------------------------
# distributed
# ---------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def dist_worker(rank: int, world: int, port: int, backend: str, queue) -> None:
    """One rank: join the group, all-reduce [rank + 1], report the sum (expected 3 for 2 ranks)."""
    try:
        import torch
        import torch.distributed as dist

        dist.init_process_group(
            backend,
            init_method="tcp://127.0.0.1:%d" % port,
            rank=rank,
            world_size=world,
            timeout=__import__("datetime").timedelta(seconds=120),
        )
        device = "cpu"
        if backend == "nccl" and torch.cuda.is_available():
            torch.cuda.set_device(rank)
            device = "cuda:%d" % rank
        tensor = torch.tensor([float(rank + 1)], device=device)
        dist.all_reduce(tensor)
        dist.destroy_process_group()
        queue.put((rank, tensor.item(), None))
    except Exception as exc:  # noqa: BLE001 - reported to the parent
        queue.put((rank, None, one_line(exc)))


def dist_plan(torch, device: str) -> tuple[str, str]:
    if device == "cuda" and torch.cuda.is_available() and torch.distributed.is_nccl_available():
        if torch.cuda.device_count() >= 2:
            return "nccl", "nccl across 2 GPUs"
        return "gloo", "nccl needs one GPU per rank and this host has 1; gloo on CPU tensors"
    return "gloo", "gloo (the %s backend)" % device


def start_method(device: str) -> str:
    # fork reuses the imported torch (seconds, not minutes, under QEMU) but is unsafe once CUDA
    # is initialised and on macOS; spawn starts clean interpreters.
    if device == "cpu" and sys.platform.startswith("linux"):
        return "fork"
    return "spawn"


def check_distributed(torch, device: str) -> dict:
    import multiprocessing

    if not torch.distributed.is_available():
        return result("skipped", "this torch build has no torch.distributed")
    backend, why = dist_plan(torch, device)
    os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo0" if sys.platform == "darwin" else "lo")
    ctx = multiprocessing.get_context(start_method(device))
    queue, port = ctx.Queue(), free_port()
    # daemon ranks: a hung rank is killed with the suite, never waited for at exit
    procs = [
        ctx.Process(target=dist_worker, args=(rank, 2, port, backend, queue), daemon=True)
        for rank in (0, 1)
    ]
    for proc in procs:
        proc.start()
    answers = collect(queue, procs)
    errors = [err for _, _, err in answers if err]
    sums = sorted(value for _, value, _ in answers if value is not None)
    if errors or sums != [3.0, 3.0]:
        detail = errors[0] if errors else "ranks answered %s, expected [3.0, 3.0]" % sums
        return result("fail", "%s all-reduce failed: %s" % (backend, detail), backend=backend)
    return result("pass", why, backend=backend, world_size=2)


def collect(queue, procs) -> list:
    import queue as queue_module

    answers, deadline = [], time.monotonic() + DIST_TIMEOUT
    while len(answers) < len(procs) and time.monotonic() < deadline:
        try:
            answers.append(queue.get(timeout=1.0))
        except queue_module.Empty:
            if all(not proc.is_alive() for proc in procs) and queue.empty():
                break
    for proc in procs:
        proc.join(timeout=5)
        if proc.is_alive():
            proc.terminate()
            proc.join(timeout=5)
        if proc.is_alive():
            proc.kill()  # a rank stuck in native code may ignore SIGTERM
            proc.join(timeout=5)
    queue.cancel_join_thread()  # do not wait at exit for a queue a killed rank held
    missing = len(procs) - len(answers)
    return answers + [(None, None, "a rank gave no answer within %d s" % DIST_TIMEOUT)] * missing


# ---------------------------------------------------------------------------------------------
# training, loss parity, checkpoint
# ---------------------------------------------------------------------------------------------


def fixed_data(torch):
    """64 samples of 8 features and a smooth target, computed (not sampled) so every machine
    starts from the same numbers."""
    rows = torch.arange(64, dtype=torch.float32).unsqueeze(1)
    cols = torch.arange(8, dtype=torch.float32).unsqueeze(0)
    x = torch.sin(rows * 0.37 + cols * 1.3)
    y = (x[:, :4].sum(dim=1, keepdim=True) - x[:, 4:].prod(dim=1, keepdim=True)).tanh()
    return x, y


def make_model(torch, fault: bool):
    torch.manual_seed(0)  # CPU generator: the same stream on every platform
    model = torch.nn.Sequential(torch.nn.Linear(8, 32), torch.nn.Tanh(), torch.nn.Linear(32, 1))
    if fault:
        with torch.no_grad():
            model[0].weight.add_(0.25)
    return model


def train(torch, device: str, fault: bool = False):
    """Full-batch SGD for TRAIN_STEPS steps; returns (model, losses)."""
    if device == "cuda" and torch.cuda.is_available():
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    model = make_model(torch, fault).to(device)
    x, y = [t.to(device) for t in fixed_data(torch)]
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    losses = []
    for _ in range(TRAIN_STEPS):
        optimizer.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return model, losses


def check_training(losses: list[float]) -> dict:
    if not all(math.isfinite(value) for value in losses):
        return result("fail", "loss is not finite: %s" % losses, losses=losses)
    if losses[-1] >= losses[0] * 0.9:
        return result(
            "fail", "loss did not fall: %.4f -> %.4f" % (losses[0], losses[-1]), losses=losses
        )
    return result(
        "pass", "%d steps, loss %.4f -> %.4f" % (len(losses), losses[0], losses[-1]), losses=losses
    )


def check_parity(device: str, device_losses: list[float], cpu_losses: list[float]) -> dict:
    tolerance = LOSS_TOLERANCE.get(device, 1e-3)
    worst = max(abs(a - b) / max(abs(b), 1e-12) for a, b in zip(device_losses, cpu_losses))
    facts = {"tolerance": tolerance, "max_rel_diff": worst, "cpu_losses": cpu_losses}
    if worst > tolerance:
        why = "%s losses differ from CPU by %.2e relative (> %.0e)" % (device, worst, tolerance)
        return result("fail", why, **facts)
    return result(
        "pass", "%s losses match CPU within %.0e (worst %.1e)" % (device, tolerance, worst), **facts
    )


def check_checkpoint(torch, model, device: str) -> dict:
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    buffer.seek(0)
    try:
        state = torch.load(buffer, map_location="cpu", weights_only=True)
    except TypeError:  # torch < 1.13 has no weights_only
        state = torch.load(buffer, map_location="cpu")
    restored = make_model(torch, fault=False)
    restored.load_state_dict(state)
    x, _ = fixed_data(torch)
    with torch.no_grad():
        error = (restored(x) - model(x.to(device)).cpu()).abs().max().item()
    tolerance = LOSS_TOLERANCE.get(device, 1e-3)
    status = "pass" if error <= tolerance else "fail"
    return result(
        status,
        "saved on %s, loaded on cpu; outputs differ by %.1e" % (device, error),
        max_error=error,
    )


# ---------------------------------------------------------------------------------------------
# running the checks
# ---------------------------------------------------------------------------------------------


def timed(checks: dict, name: str, skip: list[str], func, *args) -> None:
    if name in skip:
        checks[name] = result("skipped", "--skip %s" % name)
        return
    start = time.monotonic()
    try:
        checks[name] = func(*args)
    except Exception as exc:  # noqa: BLE001 - a failing check is a result, not a crash
        checks[name] = result("fail", one_line(exc))
    checks[name]["seconds"] = round(time.monotonic() - start, 3)


def training_checks(torch, device: str, fault: bool, checks: dict, skip: list[str]) -> None:
    runs = {}

    def device_run():
        runs["device"] = train(torch, device, fault=fault)
        return check_training(runs["device"][1])

    def parity():
        if "device" not in runs:
            return result("skipped", "the device training run did not finish")
        return check_parity(device, runs["device"][1], train(torch, "cpu")[1])

    def checkpoint():
        if "device" not in runs:
            return result("skipped", "the device training run did not finish")
        return check_checkpoint(torch, runs["device"][0], device)

    timed(checks, "training", skip, device_run)
    timed(checks, "loss_parity", skip, parity)
    timed(checks, "checkpoint", skip, checkpoint)


def run_suite(
    requested: str | None,
    emulated: bool = False,
    skip: list[str] | None = None,
    virtual: bool = False,
) -> dict:
    start, skip = time.monotonic(), skip or []
    fault = os.environ.get(FAULT_ENV) or None
    doc = {"schema": SCHEMA, "torch": None, "device": None, "fault": fault, "checks": {}}
    try:
        import torch
    except Exception as exc:  # noqa: BLE001 - the suite reports it and exits non-zero
        doc["error"] = "torch does not import: " + one_line(exc)
        doc["seconds"] = round(time.monotonic() - start, 3)
        return doc
    doc["torch"] = torch.__version__
    checks = doc["checks"]
    device, checks["device"] = select_device(torch, requested, virtual)
    doc["device"] = device
    timed(checks, "sdpa", skip, check_sdpa, torch, device)
    timed(checks, "compile", skip, check_compile, torch, device, emulated)
    timed(checks, "autocast", skip, check_autocast, torch, device)
    timed(checks, "distributed", skip, check_distributed, torch, device)
    training_checks(torch, device, fault == "loss", checks, skip)
    doc["seconds"] = round(time.monotonic() - start, 3)
    return doc


def exit_code(doc: dict) -> int:
    if doc.get("error"):
        return 2
    return 1 if any(check["status"] == "fail" for check in doc["checks"].values()) else 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="suite.py", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--device",
        choices=("cuda", "mps", "cpu"),
        default=os.environ.get(DEVICE_ENV) or None,
        help="run on this device (default: $%s, else cuda > mps > cpu)" % DEVICE_ENV,
    )
    parser.add_argument(
        "--emulated",
        action="store_true",
        help="this interpreter is emulated (QEMU / Rosetta): skip what only wastes time",
    )
    parser.add_argument(
        "--virtual-machine",
        action="store_true",
        help="this machine is a VM (probe: vm.virtual): an unusable MPS is skipped, not failed",
    )
    parser.add_argument(
        "--skip", action="append", default=[], choices=CHECKS[1:], help="skip a check"
    )
    parser.add_argument("--output", "-o", help="write the JSON here instead of stdout")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sys.stdout.flush()
    json_out = os.dup(1)  # torch and gloo print to fd 1 from C++; only the JSON goes there
    os.dup2(2, 1)
    try:
        doc = run_suite(
            args.device, emulated=args.emulated, skip=args.skip, virtual=args.virtual_machine
        )
    finally:
        sys.stdout.flush()
        os.dup2(json_out, 1)
        os.close(json_out)
    text = json.dumps(doc, indent=2) + "\n"
    if args.output:
        with open(args.output + ".tmp", "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(args.output + ".tmp", args.output)
    else:
        sys.stdout.write(text)
    return exit_code(doc)


if __name__ == "__main__":
    sys.exit(main())
