"""`archlock scan`: find the code in a project that will not run on the other machines.

Reads every Python file of the project with `ast` (no regex on code) and reports what breaks
off CUDA, off Linux or off x86_64: hard-coded cuda devices, unguarded `torch.cuda.*` calls, a
literal nccl backend, CUDA-only imports without a fallback, `torch.compile` without a device
guard, unguarded MPS, architecture paths, x86-only branches and float64 where MPS is possible.
`archlock scan --list-rules` prints the rules (`rules.py` is the catalogue).

Usage::

    archlock scan [PATH] [--format text|json|sarif] [--output FILE] [--fail-on SEVERITY]

PATH (a folder or a .py file) defaults to the project (`--project`). Paths in reports are
relative to the project when PATH lies inside it, else to PATH. Folders that are hidden,
virtualenvs (`pyvenv.cfg`), `build`, `dist`, `__pycache__`, `node_modules`, `site-packages` and
`*.egg-info` are skipped. The command exits 6 (CheckFailed) when findings at or above
`--fail-on` exist: error, warning (default), note, or never.

Guarded code is not reported: a branch under `if torch.cuda.is_available():`, a conditional
expression (`"cuda" if torch.cuda.is_available() else "cpu"`), the rest of a block after an
early exit (`if not torch.cuda.is_available(): return`), an `and` operand after a check, a test
under a `skipif` decorator, an import inside `try: ... except ImportError:` (see `guards.py`).

Suppress one line with a reason (required; see `suppress.py`)::

    torch.cuda.synchronize()  # archlock: ignore[AL102] only called from the CUDA benchmark

Configure per project in pyproject.toml (see `config.py`)::

    [tool.archlock.scan]
    disable = ["AL105"]                      # rules off everywhere
    per-path = { "tests/*" = ["AL101"] }     # rules off for paths matching a glob
    exclude = ["tests/fixtures"]             # paths not scanned at all (unless named as PATH)
    fail-on = "error"                        # default for --fail-on

Unknown keys or rule ids are a ConfigError naming the file, the key and a did-you-mean.
"""

from __future__ import annotations

from archlock.scan.cli import register, run

__all__ = ["register", "run"]
