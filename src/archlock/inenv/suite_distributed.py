"""The suite's distributed check: a 2-process all-reduce (nccl with one CUDA device per rank, gloo
otherwise), every rank with a time limit.

Standard library only (torch is passed in, and imported by each rank), Python >= 3.8, loaded by
suite.py as a sibling (see suite.py). suite.py loads it when it is imported, so a rank started
with `spawn` (which re-runs suite.py) finds `dist_worker` again.
"""

from __future__ import annotations

import os
import socket
import sys
import time

# its siblings, the same way inside the package and in a plain-file copy (see inenv/__init__.py)
from . import suite_device

DIST_TIMEOUT = 240.0  # two interpreters importing torch; about 40 s each under QEMU


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
        queue.put((rank, None, suite_device.one_line(exc)))


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
        return suite_device.result("skipped", "this torch build has no torch.distributed")
    backend, why = dist_plan(torch, device)
    os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo0" if sys.platform == "darwin" else "lo")
    fork = start_method(device) == "fork"
    ctx = multiprocessing.get_context("fork") if fork else multiprocessing.get_context("spawn")
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
        return suite_device.result(
            "fail", "%s all-reduce failed: %s" % (backend, detail), backend=backend
        )
    return suite_device.result("pass", why, backend=backend, world_size=2)


def collect(queue, procs) -> list:
    import queue as queue_module

    answers: list = []
    deadline = time.monotonic() + DIST_TIMEOUT
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
