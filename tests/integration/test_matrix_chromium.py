"""The matrix page in a real browser: headless Chromium renders every cell."""

from __future__ import annotations

import argparse
import html
import json
import re
import subprocess
from pathlib import Path

import pytest

from archlock.verify import matrix
from archlock.verify.matrixtable import FEATURES

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium(page: Path, profile: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    command = [str(CHROMIUM), *FLAGS, f"--user-data-dir={profile}", *extra, page.as_uri()]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)


def verify_result(env: str, mode: str, **overrides: tuple[str, str]) -> dict:
    checks = {check: {"status": "pass", "why": f"{check} ok"} for _, check in FEATURES}
    for name, (status, why) in overrides.items():
        checks[name] = {"status": status, "why": why}
    return {
        "schema": "archlock.verify/1",
        "env": env,
        "mode": mode,
        "status": "pass",
        "device": "cpu",
        "created": "2026-01-01T00:00:00Z",
        "image": {"tag": f"app:{env}"} if mode == "image" else None,
        "host": {"description": f"host of {env}"},
        "checks": checks,
        "suite": {"checks": {"distributed": {"backend": "gloo"}}},
    }


@pytest.mark.integration
def test_chromium_renders_every_cell(tmp_path: Path) -> None:
    if not CHROMIUM.exists():
        pytest.skip("host-lacks: Debian chromium at /usr/bin/chromium")
    results = tmp_path / "results"
    results.mkdir()
    items = [
        verify_result("linux-amd64-cuda", "host", device=("skipped", "no NVIDIA GPU on this host")),
        verify_result(
            "linux-arm64-cpu",
            "image",
            compile=("skipped", "emulated CPU (QEMU)"),
            loss_parity=("fail", "cpu losses differ from CPU"),
        ),
    ]
    for item in items:
        (results / f"{item['env']}.json").write_text(json.dumps(item))
    args = argparse.Namespace(project=tmp_path, results=None, markdown=None, html=None, check=False)
    assert matrix.run(args) == 0
    page = results / "matrix.html"

    dom = chromium(page, tmp_path / "profile", "--dump-dom").stdout
    cells = re.findall(
        r'<td class="cell (\w+)" data-env="([^"]+)" data-check="(\w+)"[^>]*>([^<]*)</td>', dom
    )
    assert len(cells) == (len(FEATURES) + 1) * 2  # + the cross-env loss row
    found = {(env, check): (status, html.unescape(text)) for status, env, check, text in cells}
    assert found[("linux-amd64-cuda", "device")] == (
        "skipped",
        "skipped: no NVIDIA GPU on this host",
    )
    assert found[("linux-arm64-cpu (image)", "compile")] == (
        "skipped",
        "skipped: emulated CPU (QEMU)",
    )
    assert found[("linux-arm64-cpu (image)", "loss_parity")] == (
        "fail",
        "fail: cpu losses differ from CPU",
    )
    assert found[("linux-amd64-cuda", "distributed")] == ("pass", "pass (gloo)")
    assert "host of linux-arm64-cpu [image app:linux-arm64-cpu]" in dom

    shot = tmp_path / "matrix.png"
    chromium(page, tmp_path / "profile2", f"--screenshot={shot}", "--window-size=1400,900")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 5000
