"""One bisect trial: a throwaway container over the cached base image (the locked env) that applies
a subset of the drift, then reruns the report's command; and the cleanup of everything a run
made.

A trial installs the subset's package versions with uv (`--no-deps`, exactly those versions)
from a uv cache volume the run shares, uninstalls what the subset says is missing, sets the
subset's variables, and runs the command with its output merged in order. No image is built per
trial: the container's own writable layer is the thin layer. Every container and volume carries
the label `io.archlock.repro.bisect=<run id>`, so `cleanup` finds them after a Ctrl-C too.
"""

from __future__ import annotations

import posixpath
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from archlock.core import docker as du
from archlock.repro import run as rr
from archlock.repro.ddmin import Outcome
from archlock.repro.driftset import Change

LABEL = "io.archlock.repro.bisect"
INSTALL_FAILED = "archlock-bisect: applying the drift failed"
CACHE = "/archlock-uv-cache"
CA_PATH = "/archlock-ca.pem"


@dataclass(frozen=True)
class Runner:
    """What every trial of one run shares."""

    run_id: str
    image: str  # the cached base: the locked env
    platform: str  # docker platform
    report: dict[str, Any]
    project: Path
    ca_bundle: Path | None

    @property
    def volume(self) -> str:
        return f"archlock-bisect-{self.run_id}"


def script(changes: Sequence[Change]) -> str:
    """The shell a trial runs: apply the packages, then exec the command ("$@"), output merged."""
    install = [f"{c.name}=={c.report}" for c in changes if c.kind in ("version", "extra")]
    remove = [c.name for c in changes if c.kind == "missing"]
    uv = "uv pip {verb} --quiet --python /opt/venv/bin/python"
    steps = []
    if install:
        words = " ".join(shlex.quote(pin) for pin in install)
        steps.append(uv.format(verb="install") + f" --no-deps {words}")
    if remove:
        steps.append(uv.format(verb="uninstall") + " " + " ".join(shlex.quote(n) for n in remove))
    ca = f"if [ -s {CA_PATH} ]; then export SSL_CERT_FILE={CA_PATH}; fi; "
    prefix = f"( {ca}{' && '.join(steps)} ) || {{ echo {shlex.quote(INSTALL_FAILED)}; exit 3; }}; "
    return (prefix if steps else "") + 'exec "$@" 2>&1'


def container(runner: Runner, changes: Sequence[Change], name: str) -> du.Container:
    """The trial's container: the subset applied over the locked env, the recorded command run,
    the uv cache a volume shared by the run's trials; labelled so cleanup finds it."""
    env = {"UV_CACHE_DIR": CACHE, "UV_NO_PROGRESS": "1", "UV_LINK_MODE": "copy", "NO_COLOR": "1"}
    env.update(sorted((c.name, str(c.report)) for c in changes if c.kind == "env"))
    mounts = [f"{runner.volume}:{CACHE}"]
    if runner.ca_bundle:
        mounts.append(f"{runner.ca_bundle}:{CA_PATH}:ro")
    rel = rr.project_cwd(runner.report, runner.project)
    if rel is not None:
        mounts.append(f"{runner.project}:/app:ro")
    argv = rr.rerun_argv(runner.report, "/opt/venv/bin", "/app" if rel is not None else None)
    return du.Container(
        runner.image,
        ("-c", script(changes), "sh", *argv),
        platform=runner.platform,
        name=name,
        labels={LABEL: runner.run_id},
        mounts=tuple(mounts),
        env=env,
        workdir=posixpath.normpath(f"/app/{rel}") if rel is not None else None,
        entrypoint="sh",
        network="host",
    )


@dataclass(frozen=True)
class Ran:
    outcome: Outcome
    exit_code: int | None
    signature: str
    why: str
    seconds: float


def classify(report: dict[str, Any], code: int | None, lines: list[str], timed_out: bool) -> Ran:
    """FAIL: the recorded exit code and last error line; PASS: exit 0; else UNRESOLVED."""
    recorded = report["command"]
    sign = rr.signature(lines)
    if timed_out:
        return Ran(Outcome.UNRESOLVED, None, sign, "timed out", 0.0)
    if any(INSTALL_FAILED in line for line in lines):
        reason = " ".join(line.strip() for line in lines[-4:-1] if line.strip())[:300]
        return Ran(Outcome.UNRESOLVED, code, sign, f"the subset did not install: {reason}", 0.0)
    if code == 0:
        return Ran(Outcome.PASS, code, sign, "the command passes", 0.0)
    if code == recorded["exit_code"] and sign == rr.signature(recorded.get("output_tail") or []):
        return Ran(Outcome.FAIL, code, sign, "fails the recorded way", 0.0)
    return Ran(Outcome.UNRESOLVED, code, sign, f"fails differently: exit {code}: {sign}", 0.0)


def run_trial(runner: Runner, changes: Sequence[Change], number: int, timeout: float) -> Ran:
    name = f"archlock-bisect-{runner.run_id}-{number}"
    done = container(runner, changes, name).run(timeout=timeout)
    lines = done.stdout.splitlines() or done.stderr.splitlines()
    ran = classify(runner.report, done.returncode, lines, done.timed_out)
    return Ran(ran.outcome, ran.exit_code, ran.signature, ran.why, done.duration)


def prepare(runner: Runner) -> None:
    du.output(
        ["volume", "create", "--label", f"{LABEL}={runner.run_id}", runner.volume],
        what="creating the trials' uv cache volume",
    )


def cleanup(run_id: str, images: Sequence[str] = ()) -> None:
    """Remove every container and volume of the run (and `images`); failures are ignored."""
    found = du.run(["ps", "-aq", "--filter", f"label={LABEL}={run_id}"], timeout=du.SHORT)
    ids = found.stdout.split() if found.ok else []
    if ids:
        du.run(["rm", "--force", *ids], timeout=du.SHORT)
    vols = du.run(["volume", "ls", "-q", "--filter", f"label={LABEL}={run_id}"], timeout=du.SHORT)
    if vols.ok and vols.stdout.split():
        du.run(["volume", "rm", "--force", *vols.stdout.split()], timeout=du.SHORT)
    du.remove_images(*images)
