"""Where a report is rebuilt: an image for the report's platform (docker, `--network host`, the
CA bundle as the BuildKit secret `ca-bundle`), or a throwaway venv on the report's own platform;
and the recorded command run again there (in an image through archlock.core.docker, the one
container runner). What to install and the verdict are archlock.repro.run's.
"""

from __future__ import annotations

import os
import posixpath
import re
import secrets
import shutil
import time
from pathlib import Path
from typing import Any

from archlock.core import docker as du
from archlock.core import proc
from archlock.core.cabundle import CA_SECRET_ID
from archlock.core.fsutil import temp_dir
from archlock.core.platforms import Platform
from archlock.core.uvtool import uv_binary
from archlock.errors import ExternalCommandError, ToolMissingError
from archlock.inenv import command, probe
from archlock.inenv import report as report_script
from archlock.repro.run import (
    BUILD_TIMEOUT,
    IMAGE_NAME,
    Options,
    Requirements,
    Where,
    carried_env,
    index_args,
    project_cwd,
    rerun_argv,
)

MERGED_OUTPUT = 'exec "$@" 2>&1'  # sh -c: the command's stderr into its stdout, in order
TIMED_OUT = 124  # the exit code a run past its limit is given (as timeout(1) gives it)

# ---------------------------------------------------------------------------------------------
# images
# ---------------------------------------------------------------------------------------------


def dockerfile(
    base: str, uv_image: str, reqs: Requirements, options: Options, labels: dict[str, str]
) -> str:
    """templates/repro.Dockerfile.j2 for these versions (rendered through render's environment)."""
    from archlock.build import render

    return (
        render.environment()
        .get_template("repro.Dockerfile.j2")
        .render(
            source=reqs.source,
            python=reqs.python,
            uv_image=uv_image,
            base=base,
            ca_secret=CA_SECRET_ID,
            hashes=reqs.hashes,
            extra_index_url=options.extra_index_url,
            find_links=bool(options.find_links),
            labels=labels,
        )
    )


def build_context(folder: Path, text: str, reqs: Requirements, options: Options) -> None:
    (folder / "Dockerfile").write_text(text, encoding="utf-8")
    (folder / "requirements.txt").write_text(reqs.text(), encoding="utf-8")
    if options.find_links:
        (folder / "wheels").mkdir()
        for wheel in sorted(options.find_links.glob("*.whl")):
            shutil.copy2(wheel, folder / "wheels" / wheel.name)


def failure_reason(output: str) -> str:
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    keep = [
        re.sub(r"^#\d+ [\d.]+ ", "", line)
        for line in lines
        if re.search(r"(error|× |cause:|hint:|Because )", line)
    ]
    return " ".join((keep or lines)[-4:])[:600]


def build_image(
    tag: str, dockerfile_text: str, reqs: Requirements, where: Where, options: Options
) -> float:
    docker = du.classic_cli()
    if not du.engine_running():
        raise ToolMissingError(
            "the Docker engine is not running",
            fix="start dockerd (on Debian: scripts/local-infra.sh)",
        )
    started = time.monotonic()
    with temp_dir("repro") as tmp:
        build_context(Path(tmp), dockerfile_text, reqs, options)
        cmd = [
            docker,
            "build",
            "--platform",
            str(where.platform.docker_platform),
            "--network",
            "host",
            "-t",
            tag,
            str(tmp),
        ]
        if options.ca_bundle:
            cmd[2:2] = ["--secret", f"id={CA_SECRET_ID},src={options.ca_bundle}"]
        env = {**os.environ, "DOCKER_BUILDKIT": "1"}
        done = proc.run(cmd, timeout=BUILD_TIMEOUT, env=env, missing_fix=du.MISSING_FIX)
    if not done.ok:
        reason = done.why() if done.timed_out else failure_reason(done.stdout + done.stderr)
        raise ExternalCommandError(
            f"building the image of the {reqs.source}'s versions failed: {reason}",
            fix="check the base has python3 for that minor (or pass --base), the network "
            "and the CA bundle (--ca-bundle)",
        )
    return time.monotonic() - started


def image_tag(report_sha: str, platform: Platform, source: str) -> str:
    """archlock-repro/<platform>:<report|lock>-<sha256 prefix>: one image per report and source."""
    return f"{IMAGE_NAME}/{platform.name}:{source}-{report_sha[:12]}"


def run_in_image(
    tag: str, report: dict[str, Any], where: Where, project: Path, options: Options
) -> dict[str, Any]:
    """The recorded command in `tag`, through the one container runner (archlock.core.docker):
    its output merged in order inside the container, the last lines kept as a report keeps them.
    """
    rel = project_cwd(report, project)
    env, _ = carried_env(report)
    argv = rerun_argv(report, "/opt/venv/bin", "/app" if rel is not None else None)
    done = du.run_container(
        tag,
        ["-c", MERGED_OUTPUT, "sh", *argv],
        timeout=options.timeout,
        platform=str(where.platform.docker_platform),
        mounts=[f"{project}:/app:ro"] if rel is not None else [],
        env=dict(sorted(env.items())),
        workdir=posixpath.normpath(f"/app/{rel}") if rel is not None else None,
        entrypoint="sh",
        network="host",
        name=f"archlock-repro-{os.getpid()}-{secrets.token_hex(4)}",
    )
    lines = done.stdout.splitlines() + done.stderr.splitlines()
    for line in lines:
        print(f"    | {line}")
    keep = len(report["command"].get("output_tail") or []) or report_script.TAIL_LINES
    return {
        "exit_code": TIMED_OUT if done.returncode is None else done.returncode,
        "signal": None,
        "timed_out": done.timed_out,
        "duration_s": round(done.duration, 2),
        "output_tail": [line[: command.MAX_LINE] for line in lines[-keep:]],
        "output_lines": len(lines),
        "tail_lines": keep,
        "argv": argv,
    }


# ---------------------------------------------------------------------------------------------
# throwaway venvs (a macOS report on a Mac, or --venv on the report's own platform)
# ---------------------------------------------------------------------------------------------


def make_venv(folder: Path, reqs: Requirements, options: Options) -> Path:
    uv = uv_binary()
    env = {**os.environ, "NO_COLOR": "1", "UV_NO_PROGRESS": "1"}
    if options.ca_bundle:
        env["SSL_CERT_FILE"] = str(options.ca_bundle)
    (folder / "requirements.txt").write_text(reqs.text(), encoding="utf-8")
    steps = [
        [uv, "venv", "--quiet", "--python", reqs.python, str(folder / "venv")],
        [
            uv,
            "pip",
            "sync",
            "--quiet",
            "--python",
            str(folder / "venv" / "bin" / "python"),
            *(["--require-hashes"] if reqs.hashes else []),
            *index_args(options),
            str(folder / "requirements.txt"),
        ],
    ]
    for step in steps:
        done = proc.run(step, timeout=BUILD_TIMEOUT, env=env)
        if not done.ok:
            reason = done.why() if done.timed_out else failure_reason(done.stderr)
            raise ExternalCommandError(
                f"making the throwaway venv of the {reqs.source}'s versions failed: {reason}",
                fix="check the network and --ca-bundle",
            )
    return folder / "venv"


def run_in_venv(
    venv: Path, report: dict[str, Any], project: Path, options: Options
) -> dict[str, Any]:
    rel = project_cwd(report, project)
    cwd = project / rel if rel is not None else venv.parent
    argv = rerun_argv(report, str(venv / "bin"), str(project) if rel is not None else None)
    carried, _ = carried_env(report)
    env = {
        k: v for k, v in os.environ.items() if not probe.env_allowed(k)
    }  # this host's own settings stay out
    env.update(
        carried,
        VIRTUAL_ENV=str(venv),
        PATH=f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
    )
    tail = len(report["command"].get("output_tail") or []) or report_script.TAIL_LINES
    outcome = command.run_command(argv, str(cwd), options.timeout, tail, env=env)
    return dict(outcome, argv=argv)
