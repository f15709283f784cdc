"""GitHub-hosted runner labels as data: what each is and when GitHub retires it.

A job whose label has been retired never gets a runner: it waits until it is cancelled, and
every job that needs it never starts. `render` warns about a label past its retirement date;
`render --check` fails on it. A label not in the table (a self-hosted or larger runner's) is the
project's own business and is not checked.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass


@dataclass(frozen=True)
class HostedRunner:
    label: str
    os: str  # linux | macos
    arch: str  # x64 | arm64
    retired: datetime.date | None  # the day GitHub stops serving it (None: no date announced)
    source: str  # where the date (or the image) is announced
    note: str = ""


def _date(text: str) -> datetime.date:
    return datetime.date.fromisoformat(text)


RUNNER_IMAGES = "actions/runner-images"
HOSTED: dict[str, HostedRunner] = {
    r.label: r
    for r in (
        HostedRunner("ubuntu-24.04", "linux", "x64", None, RUNNER_IMAGES),
        HostedRunner("ubuntu-24.04-arm", "linux", "arm64", None, RUNNER_IMAGES),
        HostedRunner("ubuntu-22.04", "linux", "x64", None, RUNNER_IMAGES),
        HostedRunner("ubuntu-22.04-arm", "linux", "arm64", None, RUNNER_IMAGES),
        HostedRunner("ubuntu-20.04", "linux", "x64", _date("2025-04-15"), f"{RUNNER_IMAGES}#11101"),
        HostedRunner("macos-13", "macos", "x64", _date("2025-12-04"), f"{RUNNER_IMAGES}#13046"),
        HostedRunner("macos-14", "macos", "arm64", _date("2026-11-02"), f"{RUNNER_IMAGES}#13518"),
        HostedRunner("macos-15", "macos", "arm64", None, RUNNER_IMAGES, "a virtual Mac: no MPS"),
        HostedRunner("macos-26", "macos", "arm64", None, RUNNER_IMAGES, "a virtual Mac: no MPS"),
        HostedRunner("macos-latest", "macos", "arm64", None, RUNNER_IMAGES, "moves with GitHub"),
    )
}
# The default hosted Mac: the newest arm64 image GitHub serves (a virtual Mac: MPS is reported
# but cannot compute, so verify skips the device with that reason).
HOSTED_MAC = "macos-26"
HOSTED_AMD64 = "ubuntu-24.04"


def retired(labels: tuple[str, ...], today: datetime.date) -> list[str]:
    """One line per hosted label in `labels` that GitHub has retired by `today`."""
    lines = []
    for label in labels:
        row = HOSTED.get(label)
        if row is not None and row.retired is not None and row.retired <= today:
            lines.append(
                f"runner label {label!r} was retired on {row.retired.isoformat()} ({row.source}):"
                " a job on it never starts"
            )
    return lines


def current(os: str, arch: str) -> list[str]:
    """Hosted labels of that OS and architecture with no retirement date (for a fix line)."""
    return [r.label for r in HOSTED.values() if (r.os, r.arch) == (os, arch) and not r.retired]
