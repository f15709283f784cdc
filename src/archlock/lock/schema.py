"""`archlock schema`: write the env spec JSON Schema that editors use (`--check` for drift)."""

from __future__ import annotations

import argparse
import json
from importlib import resources
from pathlib import Path

from archlock.errors import DriftError
from archlock.core.fsutil import GENERATED_MARK, atomic_write, current_text
from archlock.core.spec import json_schema

REGENERATE = "archlock schema"


def schema_path() -> Path:
    return Path(str(resources.files("archlock") / "data" / "env.schema.json"))


def schema_text() -> str:
    schema = {"$comment": f"{GENERATED_MARK} - regenerate with: {REGENERATE}", **json_schema()}
    return json.dumps(schema, indent=2) + "\n"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("schema", help="write the JSON Schema of env specs (for editors)")
    parser.add_argument("--check", action="store_true", help="fail if the committed schema is stale")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    path, text = schema_path(), schema_text()
    current = current_text(path)
    if args.check:
        if current != text:
            raise DriftError(f"{path}: stale env spec schema", fix=f"run `{REGENERATE}` and commit it")
        print(f"{path.name} is current")
        return 0
    if current != text:
        atomic_write(path, text)
    print(f"wrote {path}")
    return 0
