"""The rule catalogue and the finding type. Every rule the scan can report is a row here.

Facts the checks share (which modules are GPU-only, which strings name an architecture) are
data in this module too, so a new package or path is one line, not a new branch in a check.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath

SEVERITIES = ("note", "warning", "error")  # ascending; SARIF uses the same three level names


def severity_rank(severity: str) -> int:
    return SEVERITIES.index(severity)


@dataclass(frozen=True, kw_only=True)
class Rule:
    id: str  # "AL101"
    name: str  # kebab-case, stable: "hardcoded-cuda-device"
    severity: str  # one of SEVERITIES
    doc: str  # one line: what the rule finds and why it breaks elsewhere
    fix: str  # one line: what to write instead
    library_only: bool = False  # test files are exempt (they name such things on purpose)


RULES: tuple[Rule, ...] = (
    Rule(
        id="AL001",
        name="unparsable-file",
        severity="error",
        doc="Python cannot parse, decode or read the file (or it is over 1 MB or 400,000 syntax "
        "nodes, or not a regular file), so nothing in it was scanned.",
        fix="fix the syntax error (the scan parses with this Python's grammar); a file that "
        "cannot be read or is generated, list under [tool.archlock.scan] exclude",
    ),
    Rule(
        id="AL002",
        name="suppression-without-reason",
        severity="error",
        doc="An `# archlock: ignore[...]` comment must name rules and give a reason; "
        "without both it suppresses nothing.",
        fix="write `# archlock: ignore[AL101] why this line is safe on every machine`",
    ),
    Rule(
        id="AL003",
        name="unknown-rule-suppressed",
        severity="warning",
        doc="A suppression names a rule id that does not exist (a typo hides nothing).",
        fix="use an id that `archlock scan --list-rules` prints",
    ),
    Rule(
        id="AL004",
        name="unused-suppression",
        severity="note",
        doc="A suppression names a rule that reports nothing on its line.",
        fix="remove the stale `# archlock: ignore[...]` comment",
    ),
    Rule(
        id="AL101",
        name="hardcoded-cuda-device",
        severity="error",
        doc="A CUDA device is chosen unconditionally (`.cuda()`, `device=\"cuda\"`, "
        "`torch.device(\"cuda\")`, `.to(\"cuda\")`); it fails on MPS and CPU-only hosts.",
        fix="pick the device once at runtime (cuda if torch.cuda.is_available(), else mps if "
        "torch.backends.mps.is_available(), else cpu) and pass it around; use `.to(device)`",
    ),
    Rule(
        id="AL102",
        name="unguarded-cuda-call",
        severity="error",
        doc="A `torch.cuda.*` call runs without a CUDA availability check; it raises or "
        "silently does nothing off CUDA (seeding, empty_cache and queries are exempt).",
        fix="guard it with `if torch.cuda.is_available():` (or `device.type == \"cuda\"`), or "
        "use the device-agnostic API (torch.amp, torch.accelerator)",
    ),
    Rule(
        id="AL103",
        name="literal-nccl-backend",
        severity="error",
        doc="`init_process_group` gets the literal backend \"nccl\", which exists only with "
        "CUDA; CPU and MPS hosts need gloo.",
        fix="pass `backend=\"nccl\" if torch.cuda.is_available() else \"gloo\"`",
    ),
    Rule(
        id="AL104",
        name="gpu-only-import",
        severity="error",
        doc="A CUDA-only package (flash_attn, xformers, apex, bitsandbytes, triton) is imported "
        "with no fallback; the module fails to import where it has no wheel.",
        fix="import it inside `try: ... except ImportError:` with a fallback path (for "
        "attention: torch.nn.functional.scaled_dot_product_attention)",
    ),
    Rule(
        id="AL105",
        name="unguarded-compile",
        severity="warning",
        doc="`torch.compile` runs with no device guard; it is unsupported or unstable on MPS "
        "and slow to warm up on CPU.",
        fix="compile only where it is supported, e.g. `if device.type == \"cuda\": model = "
        "torch.compile(model)`",
    ),
    Rule(
        id="AL106",
        name="unguarded-mps",
        severity="error",
        doc="MPS is used (`\"mps\"` device, `torch.mps.*`) without "
        "`torch.backends.mps.is_available()`; it fails on Linux and on Macs without MPS.",
        fix="guard it with `if torch.backends.mps.is_available():` and fall back to cpu",
    ),
    Rule(
        id="AL107",
        name="arch-specific-path",
        severity="warning",
        doc="A hard-coded architecture path or triplet "  # archlock: ignore[AL107] its own doc
        "(x86_64-linux-gnu, /usr/local/cuda, /opt/homebrew) in library code exists on one kind "
        "of machine only (test files are exempt).",
        fix="ask at runtime (sysconfig, shutil.which, CUDA_HOME, `brew --prefix`) or branch on "
        "platform.machine() for every target",
        library_only=True,
    ),
    Rule(
        id="AL108",
        name="x86-only-branch",
        severity="warning",
        doc="A branch on the machine name (`platform.machine() == \"x86_64\"`) gives arm64 "
        "(aarch64, Apple Silicon) no path: its else exits, or is missing while x86 defines names.",
        fix="add the arm64/aarch64 case (or an else that works everywhere) next to x86_64",
    ),
    Rule(
        id="AL109",
        name="float64-on-mps",
        severity="warning",
        doc="float64 (`torch.float64`, `torch.double`, `.double()`) is used in a module that "
        "can put tensors on MPS, which has no float64.",
        fix="use float32 on MPS, e.g. `dtype = torch.float32 if device.type == \"mps\" else "
        "torch.float64`",
    ),
)

RULES_BY_ID: dict[str, Rule] = {rule.id: rule for rule in RULES}

# Top-level modules that ship CUDA-only wheels (or none at all for macOS / arm64).
GPU_ONLY_MODULES = frozenset({"flash_attn", "xformers", "apex", "bitsandbytes", "triton"})

# torch.cuda.* / torch.mps.* calls that are safe everywhere: queries, and calls torch
# documents as silently ignored when the backend is absent.
SAFE_ACCEL_CALLS: dict[str, frozenset[str]] = {
    "torch.cuda": frozenset(
        {
            "is_available",
            "is_initialized",
            "device_count",
            "manual_seed",
            "manual_seed_all",
            "seed",
            "seed_all",
            "empty_cache",
        }
    ),
    "torch.mps": frozenset({"is_available", "device_count", "manual_seed", "seed"}),
}

# Substrings of string literals that exist on one architecture or OS only.
ARCH_PATH_MARKERS = (
    "x86_64-linux-gnu",  # archlock: ignore[AL107] the rule's own pattern table
    "aarch64-linux-gnu",  # archlock: ignore[AL107] the rule's own pattern table
    "/usr/local/cuda",  # archlock: ignore[AL107] the rule's own pattern table
    "/opt/homebrew",  # archlock: ignore[AL107] the rule's own pattern table
)

X86_NAMES = frozenset({"x86_64", "amd64", "x64", "x86", "i386", "i686"})
ARM_NAMES = frozenset({"arm64", "aarch64", "arm64e", "arm", "armv7l", "armv8", "armv8l"})


def is_test_path(path: str) -> bool:
    """`tests/...`, `test/...`, `test_*.py`, `*_test.py`, `conftest.py`."""
    pure = PurePosixPath(path)
    in_tests = any(part in ("tests", "test") for part in pure.parts[:-1])
    name = pure.name
    test_file = name.startswith("test_") or name.endswith("_test.py") or name == "conftest.py"
    return in_tests or test_file


def applies(rule_id: str, path: str) -> bool:
    """Whether a rule covers this file at all (library-only rules skip test files)."""
    rule = RULES_BY_ID.get(rule_id)
    return not (rule and rule.library_only and is_test_path(path))


@dataclass(frozen=True, order=True, kw_only=True)
class Finding:
    path: str  # POSIX path relative to the scan base
    line: int  # 1-based
    col: int  # 1-based, in characters
    rule_id: str
    message: str

    @property
    def rule(self) -> Rule:
        return RULES_BY_ID[self.rule_id]

    @property
    def severity(self) -> str:
        return self.rule.severity
