"""The shared suite: does torch behave the same here as everywhere else? JSON out.

Runs as a plain file (`python3 suite.py [--device cuda|mps|cpu] [--output F]`) with only the
standard library and torch on Python >= 3.8; it imports no other archlock module. Its parts are
the sibling files named in SIBLINGS (suite_device.py: the device and every check's result shape,
suite_kernels.py: sdpa, compile, autocast, suite_distributed.py: distributed, suite_training.py:
training, loss_parity, checkpoint), which travel with it and are imported relatively, the way
every in-env script imports its siblings (inenv/__init__.py). It is tiny on purpose, so it
finishes under QEMU emulation.

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
import json
import os
import sys
import time
import types

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
FAULT_ENV = "ARCHLOCK_SUITE_FAULT"

# -------------------------------------------------------------------------------------------
# The parts: from the package or from this file's folder
# -------------------------------------------------------------------------------------------

# the in-env modules this one loads (whatever copies suite.py copies them too), each after those
# it uses itself
SIBLINGS = ("suite_device", "suite_kernels", "suite_distributed", "suite_training")


PLAIN_PACKAGE = "archlock_inenv"  # what a plain-file copy's folder becomes (inenv/__init__.py)
if not __package__:  # a plain file: its relative imports resolve in that package (PEP 366)
    __package__ = PLAIN_PACKAGE
    globals()["__spec__"] = None  # a spec's own parent ("") would contradict __package__
    if PLAIN_PACKAGE not in sys.modules:
        sys.modules[PLAIN_PACKAGE] = types.ModuleType(PLAIN_PACKAGE)
        sys.modules[PLAIN_PACKAGE].__path__ = [os.path.dirname(os.path.abspath(__file__))]
try:
    from . import suite_device
    from . import suite_distributed as distributed
    from . import suite_kernels as kernels
    from . import suite_training as training
except ImportError as exc:  # a copy without its parts
    raise SystemExit(
        "suite.py: %s; its parts must sit next to this file: %s"
        % (exc, ", ".join(name + ".py" for name in SIBLINGS))
    ) from None

DEVICE_ENV = suite_device.DEVICE_ENV
LOSS_TOLERANCE = training.LOSS_TOLERANCE  # verify's matrix compares runs with it
result = suite_device.result
one_line = suite_device.one_line


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
    runs: dict = {}

    def device_run():
        runs["device"] = training.train(torch, device, fault=fault)
        return training.check_training(runs["device"][1])

    def parity():
        if "device" not in runs:
            return result("skipped", "the device training run did not finish")
        return training.check_parity(device, runs["device"][1], training.train(torch, "cpu")[1])

    def checkpoint():
        if "device" not in runs:
            return result("skipped", "the device training run did not finish")
        return training.check_checkpoint(torch, runs["device"][0], device)

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
    doc: dict = {"schema": SCHEMA, "torch": None, "device": None, "fault": fault, "checks": {}}
    try:
        import torch
    except Exception as exc:  # noqa: BLE001 - the suite reports it and exits non-zero
        doc["error"] = "torch does not import: " + one_line(exc)
        doc["seconds"] = round(time.monotonic() - start, 3)
        return doc
    doc["torch"] = torch.__version__
    checks = doc["checks"]
    device, checks["device"] = suite_device.select_device(torch, requested, virtual)
    doc["device"] = device
    timed(checks, "sdpa", skip, kernels.check_sdpa, torch, device)
    timed(checks, "compile", skip, kernels.check_compile, torch, device, emulated)
    timed(checks, "autocast", skip, kernels.check_autocast, torch, device)
    timed(checks, "distributed", skip, distributed.check_distributed, torch, device)
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
