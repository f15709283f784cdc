"""Find the files, parse each with `ast`, run the checks, apply suppressions and config.

`scan_source` scans one file's text (what the rule tests use); `scan_path` scans a project
folder or a single file and returns a `ScanResult` with paths relative to the scan base.
"""

from __future__ import annotations

import ast
import io
import os
import re
import tokenize
from dataclasses import dataclass, field
from pathlib import Path

from archlock.core.fsutil import read_input_bytes
from archlock.errors import ConfigError
from archlock.scan import config as scan_config
from archlock.scan import suppress
from archlock.scan.checks import Hit
from archlock.scan.config import ScanConfig
from archlock.scan.rules import Finding, applies, severity_rank
from archlock.scan.visitor import scan_tree

MAX_BYTES = 1 << 20  # a bigger .py file is generated code; parsing it costs seconds and GBs
MAX_NODES = 400_000
SKIP_DIRS = frozenset({"__pycache__", "node_modules", "build", "dist", "site-packages"})
LINE_BREAK = re.compile(r"\r\n|\r|\n")


@dataclass(frozen=True, kw_only=True)
class ScanResult:
    base: Path  # paths in findings are relative to this folder
    files: tuple[str, ...]  # every file scanned
    findings: tuple[Finding, ...]
    config: ScanConfig = field(default_factory=ScanConfig)

    def at_or_above(self, severity: str) -> list[Finding]:
        if severity == "never":
            return []
        floor = severity_rank(severity)
        return [f for f in self.findings if severity_rank(f.severity) >= floor]


def _finding(hit: Hit, lines: list[str], path: str) -> Finding:
    rule_id, node, message = hit
    line = getattr(node, "lineno", 1)
    text = lines[line - 1] if line <= len(lines) else ""
    offset = getattr(node, "col_offset", 0)  # ast counts UTF-8 bytes; report characters
    col = len(text.encode("utf-8")[:offset].decode("utf-8", errors="ignore")) + 1
    return Finding(path=path, line=line, col=col, rule_id=rule_id, message=message)


def _unparsable(path: str, message: str, line: int = 1, col: int = 1) -> list[Finding]:
    return [Finding(path=path, line=line, col=max(col, 1), rule_id="AL001", message=message)]


def scan_source(
    source: str, path: str = "<string>", config: ScanConfig | None = None
) -> list[Finding]:
    """Findings for one file's text, sorted, after suppressions and config."""
    config = config or ScanConfig()

    def active(rule_id: str) -> bool:
        return applies(rule_id, path) and config.enabled(rule_id, path)

    try:
        tree = ast.parse(source, filename=path)
        too_many = _too_complex(tree)
        hits = [] if too_many else scan_tree(tree)
    except SyntaxError as exc:
        found = _unparsable(path, f"cannot parse: {exc.msg}", exc.lineno or 1, exc.offset or 1)
    except ValueError as exc:  # e.g. NUL bytes
        found = _unparsable(path, f"cannot parse: {exc}")
    except (RecursionError, MemoryError):
        found = _unparsable(path, "cannot scan: expressions nested too deeply")
    else:
        if too_many:
            found = _unparsable(
                path, f"not scanned: over {MAX_NODES} syntax nodes (generated code?)"
            )
            return sorted(f for f in found if active(f.rule_id))
        lines = LINE_BREAK.split(source)
        raw = sorted({_finding(hit, lines, path) for hit in hits})
        found = suppress.apply(raw, source, path, active)
    return sorted(f for f in found if active(f.rule_id))


def _too_complex(tree: ast.AST) -> bool:
    return any(count > MAX_NODES for count, _ in enumerate(ast.walk(tree)))


def _decode(data: bytes) -> str:
    encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    return data.decode(encoding)


def scan_file(file: Path, path: str, config: ScanConfig) -> list[Finding]:
    try:
        source = _decode(read_input_bytes(file, what="Python file", limit=MAX_BYTES))
    except (SyntaxError, UnicodeDecodeError, LookupError) as exc:
        found = _unparsable(path, f"cannot decode: {exc}")
    except ConfigError as exc:  # not a regular file, unreadable, or over the size limit
        found = _unparsable(path, f"not scanned: {exc.message.split(': ', 1)[-1]}")
    else:
        return scan_source(source, path, config)
    return [f for f in found if config.enabled(f.rule_id, path)]


def _relative(path: Path, base: Path) -> str:
    return path.relative_to(base).as_posix()


def _skip_dir(folder: Path) -> bool:
    name = folder.name
    hidden_or_tool = name.startswith(".") or name in SKIP_DIRS or name.endswith(".egg-info")
    return hidden_or_tool or _is_venv(folder)


def _is_venv(folder: Path) -> bool:
    """A virtualenv under any name. A folder that cannot be entered is not known to be one: the
    walk then fails to list it, and that is a finding (AL001), not a traceback."""
    try:
        return (folder / "pyvenv.cfg").exists()
    except OSError:
        return False


def discover(
    target: Path, base: Path, config: ScanConfig, unreadable: list[OSError] | None = None
) -> list[Path]:
    """The .py files under `target`, skipping tool folders and excluded paths; folders that
    cannot be listed are added to `unreadable`.

    A path named explicitly is scanned even when `exclude` covers it.
    """
    unreadable = [] if unreadable is None else unreadable
    if target.is_file():
        return [target]
    named = target != base and config.excluded(_relative(target, base))
    found = []
    for folder, dirs, files in os.walk(target, onerror=unreadable.append):
        here = Path(folder)
        dirs[:] = sorted(
            d
            for d in dirs
            if not _skip_dir(here / d) and (named or not config.excluded(_relative(here / d, base)))
        )
        for name in sorted(files):
            rel = _relative(here / name, base)
            if name.endswith(".py") and (named or not config.excluded(rel)):
                found.append(here / name)
    return found


def _unlisted(error: OSError, base: Path, config: ScanConfig) -> Finding:
    """A folder the scan could not list: a finding, so a gate never passes it unread."""
    folder = Path(error.filename or base)
    rel = _relative(folder, base) if folder == base or base in folder.parents else folder.as_posix()
    return Finding(
        path=rel,
        line=1,
        col=1,
        rule_id="AL001",
        message=f"folder not scanned: {error.strerror or error}",
    )


def scan_base(target: Path, project: Path) -> Path:
    """Paths are reported relative to the project when the target lies inside it."""
    if target == project or project in target.parents:
        return project
    return target if target.is_dir() else target.parent


def scan_path(target: Path, project: Path) -> ScanResult:
    """Scan a folder or one .py file; config comes from the base folder's pyproject.toml."""
    target, project = target.resolve(), project.resolve()
    if not target.exists():
        message = f"{target}: no such file or folder to scan"
        raise ConfigError(message, fix="pass a project folder or a .py file")
    if not target.is_dir() and not target.is_file():  # /dev/null, a FIFO, a socket
        message = f"{target}: not a folder or a regular file"
        raise ConfigError(message, fix="pass a project folder or a .py file")
    if target.is_file() and target.suffix != ".py":
        raise ConfigError(f"{target}: not a Python file", fix="pass a project folder or a .py file")
    base = scan_base(target, project)
    config = scan_config.load(base / "pyproject.toml")
    unreadable: list[OSError] = []
    files = discover(target, base, config, unreadable)
    findings: list[Finding] = [_unlisted(error, base, config) for error in unreadable]
    for file in files:
        findings += scan_file(file, _relative(file, base), config)
    rel_files = tuple(sorted(_relative(file, base) for file in files))
    return ScanResult(base=base, files=rel_files, findings=tuple(sorted(findings)), config=config)
