"""A stand-in for torch that reports CUDA / MPS devices it may not be able to use.

The suite's usability check (a small op on the device, compared with the CPU) runs against it in
unit tests: a virtual Mac's MPS that cannot allocate, a GPU without kernels, a device that
computes wrong numbers.
"""

from __future__ import annotations

from types import SimpleNamespace

VM_MPS_ERROR = (
    "MPS backend out of memory (MPS allocated: 0 bytes, other allocations: 0 bytes, "
    "max allowed: 0 bytes)"
)


class StandInTensor:
    """Just enough of a tensor for the suite's usability op (arange / reshape / @ / + / sum).
    `wrong` makes every result on this device zero, like an accelerator computing garbage."""

    def __init__(self, rows: list[list[float]], device: str = "cpu", wrong: bool = False) -> None:
        self.rows, self.device, self.wrong = rows, device, wrong

    def _new(self, rows: list[list[float]]) -> StandInTensor:
        if self.wrong:
            rows = [[0.0 for _ in row] for row in rows]
        return type(self)(rows, self.device, self.wrong)

    def reshape(self, n: int, m: int) -> StandInTensor:
        flat = [v for row in self.rows for v in row]
        return self._new([flat[i * m : (i + 1) * m] for i in range(n)])

    def __truediv__(self, k: float) -> StandInTensor:
        return self._new([[v / k for v in row] for row in self.rows])

    def __add__(self, k: float) -> StandInTensor:
        return self._new([[v + k for v in row] for row in self.rows])

    def t(self) -> StandInTensor:
        return self._new([list(col) for col in zip(*self.rows, strict=False)])

    def __matmul__(self, other: StandInTensor) -> StandInTensor:
        cols = list(zip(*other.rows, strict=True))
        rows = self.rows
        return self._new(
            [[sum(a * b for a, b in zip(r, c, strict=True)) for c in cols] for r in rows]
        )

    def sum(self) -> StandInTensor:
        return self._new([[sum(v for row in self.rows for v in row)]])

    def item(self) -> float:
        return self.rows[0][0]


def stand_in_torch(cuda: str | None = None, mps: str | None = None) -> SimpleNamespace:
    """A torch that reports CUDA / MPS available; each is "ok", "raise:<error>" or "wrong"."""
    behaviour = {"cuda": cuda, "mps": mps}

    def to(tensor: StandInTensor, device: str) -> StandInTensor:
        kind = behaviour.get(device) or "ok"
        if kind.startswith("raise:"):
            raise RuntimeError(kind[len("raise:") :])
        return type(tensor)(tensor.rows, device, wrong=kind == "wrong")

    StandIn = type("StandIn", (StandInTensor,), {"to": to})
    return SimpleNamespace(
        float32="float32",
        arange=lambda n, dtype=None: StandIn([[float(i) for i in range(n)]]),
        cuda=SimpleNamespace(
            is_available=lambda: cuda is not None, get_device_name=lambda i: "Stand-in GPU"
        ),
        backends=SimpleNamespace(mps=SimpleNamespace(is_available=lambda: mps is not None)),
    )
