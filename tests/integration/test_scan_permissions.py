"""scan on a real tree with a folder its user cannot read: one finding, never a traceback."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


def test_a_folder_without_permissions_is_a_finding_for_a_real_user() -> None:
    """A real unreadable folder, scanned by an unprivileged user (as root: a child run through
    setpriv as nobody, since root reads every folder)."""
    root = Path(tempfile.mkdtemp(prefix="archlock-scan-"))  # not under root's private tmp
    try:
        root.chmod(0o755)
        for name in ("ok.py", "locked/hidden.py"):
            (root / name).parent.mkdir(exist_ok=True)
            (root / name).write_text("import torch\nmodel = Model().cuda()\n")
        (root / "locked").chmod(0)
        code = (
            "import sys; from pathlib import Path; from archlock.scan.engine import scan_path; "
            "r = scan_path(Path(sys.argv[1]), Path(sys.argv[1])); "
            "print(list(r.files), [f.path for f in r.findings if f.rule_id == 'AL001'])"
        )
        argv = [sys.executable, "-c", code, str(root)]
        if os.geteuid() == 0:
            argv = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *argv]
        src = str(Path(__file__).resolve().parents[2] / "src")
        env = {**os.environ, "PYTHONPATH": src, "HOME": str(root)}
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "['ok.py'] ['locked']"
    finally:
        (root / "locked").chmod(0o755)
        shutil.rmtree(root)
