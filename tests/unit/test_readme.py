"""README.md stays honest: every command in its console blocks is run by CI or by a named test.

When a command is added to the README, add it to EXERCISED with the file and the text in that
file that runs it; this test fails until both exist.
"""

from __future__ import annotations

import re
from pathlib import Path

EXERCISED: dict[str, tuple[str, str]] = {
    "pip install nox uv && nox": (".ci/run", "nox --report .nox-main.json"),
    "nox -s tests -- --integration": (".ci/run", "-s tests -- --integration"),
    "nox -s lock": ("tests/integration/test_lock_real.py", 'for session in ("lock", "lock-check", "audit")'),
    "nox -s lock-check": ("noxfile.py", '"lock-check", "audit", "render-check"'),
    "ARCHLOCK_INDEX_PYTORCH_CPU=/srv/wheels nox -s lock -- --env linux-amd64-cpu": (
        "tests/integration/test_lock_real.py", 'monkeypatch.setenv("ARCHLOCK_INDEX_PYTORCH_CPU", str(wheel.parent))'),
    "nox -s render": ("noxfile.py", '_archlock(session, "render", "--check")'),
    "nox -s build": ("tests/integration/test_build_images.py", "build.build(options(infra, copy, TAGS["),
    "nox -s build -- --push": ("tests/integration/test_build_images.py", "build.build(options(infra, REPO, tag, push=True"),
    "nox -s verify": ("noxfile.py", '"scan", "verify", "matrix"'),
    "nox -s verify -- --image archlock:dev-linux-arm64-cpu": (
        "tests/integration/test_build_images.py", 'archlock("verify", "--image", tag, "--output", str(out))'),
    "nox -s matrix": ("noxfile.py", '"scan", "verify", "matrix"'),
    "nox -s ci": (".ci/run", "nox --report .nox-ci.json -s ci --"),
    "nox -s setup-mac": (".ci/run", "nox -s setup-mac"),
    "archlock report -- python train.py": ("tests/integration/test_repro_venv.py", '"report",'),
    "nox -s repro -- archlock-report.json": ("tests/integration/test_repro_docker.py", "repro"),
    "nox -s scan": ("noxfile.py", '"render-check", "scan"'),
    "nox -s lock -- --project ../other-project": (
        "tests/integration/test_lock_real.py", '"-s", session, "--", "--project", str(project)'),
}


def readme_commands(text: str) -> list[str]:
    commands = []
    for block in re.findall(r"```console\n(.*?)```", text, re.DOTALL):
        for line in block.splitlines():
            command = re.split(r"\s{2,}#", line, maxsplit=1)[0].strip()
            if command:
                commands.append(command)
    return commands


def test_every_readme_command_is_exercised(repo: Path) -> None:
    commands = readme_commands((repo / "README.md").read_text())
    assert commands[:2] == ["pip install nox uv && nox", "nox -s tests -- --integration"]
    assert sorted(set(commands)) == sorted(EXERCISED), "map each README command to what runs it"
    for command, (where, evidence) in EXERCISED.items():
        assert evidence in (repo / where).read_text(), f"{command!r}: {where} no longer holds {evidence!r}"
