"""`archlock init`: make an existing project (pyproject.toml or requirements.txt) an archlock one.

Writes editable env specs for the canonical targets (envs/*.yaml, the opt-in CPU one included),
adds `[tool.uv]` environments / required-environments (pyproject projects) and `[tool.archlock]`
settings to pyproject.toml (a requirements-only project gets a pyproject.toml holding only those:
archlock locks it through a generated stand-in), a thin noxfile with the archlock sessions
(an existing one of the user's is kept, with how to merge), `.gitignore` lines, then locks and
renders. Idempotent; a user's file is replaced only with `--force`; `--dry-run` prints the diff;
`--check` fails (exit 5) naming each file init would change.
"""

from archlock.init.cli import register, run

__all__ = ["register", "run"]
