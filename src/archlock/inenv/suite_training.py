"""The suite's training checks: a fixed-seed, fixed-data tiny MLP trained on the device (training),
the same run on CPU within the device's tolerance (loss_parity), and a checkpoint saved on the
device and loaded on CPU (checkpoint).

Standard library only (torch is passed in), Python >= 3.8, loaded by suite.py as a sibling (see
suite.py).
"""

from __future__ import annotations

import io
import math

# its siblings, the same way inside the package and in a plain-file copy (see inenv/__init__.py)
from . import suite_device

# Relative per-step loss tolerance against the CPU run. CPU vs CPU is the same code path; GPUs
# reduce in other orders (TF32 is switched off for the comparison).
LOSS_TOLERANCE = {"cpu": 1e-5, "cuda": 1e-3, "mps": 1e-3}
TRAIN_STEPS = 12


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
        return suite_device.result("fail", "loss is not finite: %s" % losses, losses=losses)
    if losses[-1] >= losses[0] * 0.9:
        return suite_device.result(
            "fail", "loss did not fall: %.4f -> %.4f" % (losses[0], losses[-1]), losses=losses
        )
    return suite_device.result(
        "pass", "%d steps, loss %.4f -> %.4f" % (len(losses), losses[0], losses[-1]), losses=losses
    )


def check_parity(device: str, device_losses: list[float], cpu_losses: list[float]) -> dict:
    tolerance = LOSS_TOLERANCE.get(device, 1e-3)
    worst = max(abs(a - b) / max(abs(b), 1e-12) for a, b in zip(device_losses, cpu_losses))
    facts = {"tolerance": tolerance, "max_rel_diff": worst, "cpu_losses": cpu_losses}
    if worst > tolerance:
        why = "%s losses differ from CPU by %.2e relative (> %.0e)" % (device, worst, tolerance)
        return suite_device.result("fail", why, **facts)
    return suite_device.result(
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
    return suite_device.result(
        status,
        "saved on %s, loaded on cpu; outputs differ by %.1e" % (device, error),
        max_error=error,
    )
