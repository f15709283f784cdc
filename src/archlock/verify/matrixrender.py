"""The matrix rendered: Markdown (`results/matrix.md`) and a static HTML page (`matrix.html`)."""

from __future__ import annotations

import html
import re

import jinja2

from archlock.core.fsutil import GENERATED_MARK
from archlock.inenv.suite import LOSS_TOLERANCE
from archlock.verify.matrixtable import Column, Row, reference_key, tolerance

COMMAND = "nox -s matrix  (or: archlock matrix)"
FACT_ROWS = (
    ("runner", "runner"),
    ("hardware", "hardware"),
    ("image digest", "image"),
    ("lock", "lock"),
)


HASH = re.compile(r"\b(sha256:[0-9a-f]{12})[0-9a-f]{20,}\b")


def short_hashes(text: str) -> str:
    """Digests and lock hashes cut to `sha256:` and 12 hex digits, then `…`: 64 digits do not
    fit a column (the page keeps the full value one click away, and on hover)."""
    return HASH.sub(lambda found: found.group(1) + "\u2026", text)


def fact_rows(columns: list[Column]) -> list[tuple[str, str, list[tuple[str, str]]]]:
    """Per fact row: (label, name, [(full, shown) per column])."""
    rows = []
    for label, name in FACT_ROWS:
        values = [str(getattr(column, name) or "-") for column in columns]
        rows.append((label, name, [(value, short_hashes(value)) for value in values]))
    return rows


def tolerance_note(reference: str | None) -> str:
    per_device = ", ".join(f"{d} {tolerance(d):g}" for d in sorted(LOSS_TOLERANCE))
    ref = f"`{reference}`" if reference else "none (no result has training losses)"
    return (
        f"Loss agreement: every env's per-step training losses against the CPU reference {ref}, "
        f"relative tolerance by the env's device: {per_device}."
    )


def md_escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(columns: list[Column], rows: list[Row]) -> str:
    lines = [
        f"<!-- {GENERATED_MARK} - do not edit by hand. Regenerate with: {COMMAND} -->",
        "",
        "# Compatibility matrix",
        "",
        "| feature | " + " | ".join(md_escape(c.key) for c in columns) + " |",
        "|---" * (len(columns) + 1) + "|",
        "| produced on | "
        + " | ".join(md_escape(f"{c.host}, {c.created}") for c in columns)
        + " |",
        *(
            f"| {label} | " + " | ".join(md_escape(getattr(c, name) or "-") for c in columns) + " |"
            for label, name in FACT_ROWS
        ),
        "| verify | " + " | ".join(f"**{c.status}**" for c in columns) + " |",
    ]
    for row in rows:
        lines.append(
            f"| {md_escape(row.label)} | "
            + " | ".join(md_escape(cell.text) for cell in row.cells)
            + " |"
        )
    lines += ["", tolerance_note(reference_key(rows, columns)), ""]
    lines += ["Sources: " + ", ".join(f"`{c.source}`" for c in columns), ""]
    return "\n".join(lines)


def template() -> jinja2.Template:
    from archlock.build import render  # the one Jinja environment (HTML templates autoescape)

    return render.environment().get_template("matrix.html.j2")


def render_html(columns: list[Column], rows: list[Row]) -> str:
    header = html.escape(f"{GENERATED_MARK} - do not edit by hand. Regenerate with: {COMMAND}")
    note = tolerance_note(reference_key(rows, columns)).replace("`", "")  # Markdown's quotes
    return template().render(
        header=header, columns=columns, rows=rows, facts=fact_rows(columns), note=note
    )
