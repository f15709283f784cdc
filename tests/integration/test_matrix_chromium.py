"""The matrix page in a real browser: headless Chromium renders every cell."""

from __future__ import annotations

import argparse
import html
import json
import re
import subprocess
from pathlib import Path
from typing import Any

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


def verify_result(env: str, mode: str, **overrides: tuple[str, str]) -> dict[str, Any]:
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


# Real-shaped long values: a registry digest, a lock hash, a CI runner, a long CPU name.
DIGEST = "sha256:" + "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
LOCK_SHA = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
# Runs on load: every cell whose content is wider than the cell, closed and with every <details>
# open (the full value), and the table's width, written into the DOM for --dump-dom.
MEASURE = """<script>
function overflowing() {
  const found = [];
  for (const cell of document.querySelectorAll('#matrix td, #matrix th')) {
    const right = cell.getBoundingClientRect().right;
    const inner = [...cell.querySelectorAll('*')]
      .some(e => e.getBoundingClientRect().right > right + 0.5);
    if (cell.scrollWidth > cell.clientWidth || inner) {
      const row = cell.parentElement.dataset;
      found.push([cell.dataset.env || '', row.fact || row.check || cell.textContent.slice(0, 20),
                  cell.scrollWidth, cell.clientWidth]);
    }
  }
  return found;
}
window.addEventListener('load', () => {
  const closed = overflowing();
  document.querySelectorAll('#matrix details').forEach(d => { d.open = true; });
  const opened = overflowing();
  const table = document.getElementById('matrix').getBoundingClientRect().width;
  const cells = document.querySelectorAll('#matrix td, #matrix th').length;
  document.body.dataset.measured = JSON.stringify({closed, opened, table, cells,
                                                   window: window.innerWidth});
});
</script>"""


def long_result(env: str, mode: str) -> dict[str, Any]:
    item = verify_result(env, mode)
    if mode == "image":
        item["image"] = {
            "tag": f"ghcr.io/example-organisation/research-model-training:{env}-0123456789ab",
            "digest": f"ghcr.io/example-organisation/research-model-training@{DIGEST}",
            "id": DIGEST,
        }
    item["lock"] = {"path": f"envs/locks/{env}.txt", "sha256": LOCK_SHA, "torch": "2.10.0"}
    item["runner"] = {"name": "GitHub Actions 1000000042", "kind": "github-hosted", "os": "Linux"}
    item["hardware"] = {"cpu": "Intel(R) Xeon(R) Platinum 8488C CPU @ 2.40GHz", "gpus": []}
    return item


@pytest.mark.integration
def test_no_cell_overflows_at_1400_px_and_hashes_are_one_click_away(tmp_path: Path) -> None:
    """Digests and lock hashes once ran over into the next column."""
    if not CHROMIUM.exists():
        pytest.skip("host-lacks: Debian chromium at /usr/bin/chromium")
    results = tmp_path / "results"
    results.mkdir()
    items = [
        long_result("linux-amd64-cuda", "image"),
        long_result("linux-arm64-cpu", "host"),
        long_result("linux-arm64-cpu", "image"),
    ]
    for number, item in enumerate(items):
        (results / f"{item['env']}.{item['mode']}.{number}.json").write_text(json.dumps(item))
    args = argparse.Namespace(project=tmp_path, results=None, markdown=None, html=None, check=False)
    assert matrix.run(args) == 0
    page = (results / "matrix.html").read_text()
    short = f"<summary>envs/locks/linux-arm64-cpu.txt sha256:{LOCK_SHA[:12]}\u2026</summary>"
    assert short in page  # shortened ...
    assert f'title="envs/locks/linux-arm64-cpu.txt sha256:{LOCK_SHA}"' in page  # ... on hover
    assert f"<code>envs/locks/linux-arm64-cpu.txt sha256:{LOCK_SHA}</code>" in page  # on click
    probe = tmp_path / "probe.html"
    probe.write_text(page.replace("</body>", MEASURE + "\n</body>"))
    dom = chromium(probe, tmp_path / "profile", "--window-size=1400,900", "--dump-dom").stdout
    found = re.search(r'data-measured="([^"]*)"', dom)
    assert found, dom[-2000:]
    measured = json.loads(html.unescape(found.group(1)))
    assert measured["window"] == 1400 and measured["cells"] > 50
    assert measured["closed"] == [] and measured["opened"] == [], measured
    assert measured["table"] <= 1400
