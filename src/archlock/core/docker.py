"""The container engine: safe values for the files it reads, and the one way to run its client.

Quoting: every value that comes from a spec or a setting passes one of the checks or quoting
functions below before it reaches a rendered file. Checks reject; quoting escapes what a format
would interpret. Both refuse control characters, so no value can start a new instruction.

Running: `engine()` finds docker or podman once; every call goes through `archlock.core.proc`
with a time limit (`run`, `stream`, `output`, `image_exists`, ...); every container runs as a
`Container` (`run_container` for a one-off).
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from archlock.core import proc
from archlock.core.spec import NAME_RE
from archlock.core.text import has_control
from archlock.errors import ConfigError, ExternalCommandError, ToolMissingError

# An OCI reference: [host[:port]/]path[:tag][@sha256:digest]
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
IMAGE_REF_RE = re.compile(
    rf"^(?:[a-z0-9]+(?:[.-][a-z0-9]+)*(?::[0-9]{{1,5}})?/)?{_COMPONENT}(?:/{_COMPONENT})*"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[0-9a-f]{64})?$"
)
# a tag prefix: empty, or [host[:port]/]path/ ending in a slash
REGISTRY_PREFIX_RE = re.compile(
    rf"^(?:[a-z0-9]+(?:[.-][a-z0-9]+)*(?::[0-9]{{1,5}})?/(?:{_COMPONENT}/)*)?$"
)
IMAGE_NAME_RE = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
ENV_NAME_RE = NAME_RE  # the spec loader's rule for env file names, checked again before rendering
PYTHON_RE = re.compile(r"^3\.[0-9]{1,2}$")
DOCKER_PLATFORM_RE = re.compile(r"^linux/(?:amd64|arm64|arm/v7|ppc64le|s390x|riscv64)$")
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
REL_PATH_RE = re.compile(r"^(?!/)(?!.*(?:^|/)\.\.(?:/|$))[A-Za-z0-9._/-]+$")
URL_RE = re.compile(r"^https?://[A-Za-z0-9.-]+(?::[0-9]{1,5})?(?:/[A-Za-z0-9._~/%+-]*)?$")
RUNNER_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
BUILDER_ENDPOINT_RE = re.compile(
    r"^(?:(?:ssh|tcp|unix|docker-container)://[A-Za-z0-9._@:/-]+|[A-Za-z0-9][A-Za-z0-9_.-]*)$"
)
_WORD_RE = re.compile(r"^[A-Za-z0-9._/:@+=,-]+$")
_HCL_VAR_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_-]*)\}")


def check(value: object, pattern: re.Pattern[str], what: str, fix: str) -> str:
    """`value` if it is a string matching `pattern`, else a ConfigError naming `what`."""
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise ConfigError(f"{what}: {value!r} is not allowed here", fix=fix)
    return value


def _no_control(value: str, what: str) -> str:
    if has_control(value):
        raise ConfigError(
            f"{what}: {value!r} holds a control or line-break character", fix="remove it"
        )
    return value


# -- quoting filters (registered in the Jinja environment) ------------------------------------
def dockerfile_word(value: str) -> str:
    """A bare word for a Dockerfile (ARG default, COPY source): no spaces, quotes or `$`."""
    if not _WORD_RE.fullmatch(value):
        raise ConfigError(
            f"Dockerfile value {value!r} is not a plain word",
            fix="use letters, digits and ._/:@+=,-",
        )
    return value


def dockerfile_str(value: str) -> str:
    """A double-quoted string that the Dockerfile parser and a POSIX shell both read literally."""
    _no_control(value, "Dockerfile value")
    escaped = re.sub(r'([\\"$`])', r"\\\1", value)
    return f'"{escaped}"'


def hcl_str(value: str) -> str:
    """An HCL string literal with no interpolation: `${`, `%{`, quotes and backslashes escaped."""
    _no_control(value, "bake value")
    escaped = (
        value.replace("\\", "\\\\").replace('"', '\\"').replace("${", "$${").replace("%{", "%%{")
    )
    return f'"{escaped}"'


def hcl_template(value: str) -> str:
    """An HCL string whose `${NAME}` references are bake variables; nothing else is live."""
    _no_control(value, "bake value")
    parts = _HCL_VAR_RE.split(value)
    out = []
    for index, part in enumerate(parts):
        out.append("${" + part + "}" if index % 2 else hcl_str(part)[1:-1])
    return '"' + "".join(out) + '"'


def yaml_str(value: str) -> str:
    """A YAML double-quoted scalar that GitHub Actions never evaluates as an expression."""
    _no_control(value, "workflow value")
    if "${{" in value:
        raise ConfigError(
            f"workflow value {value!r} holds an Actions expression", fix="remove `${{`"
        )
    return json.dumps(value)


def gh(expression: str) -> str:
    """`${{ expression }}` for a workflow (templates only pass literal expressions here)."""
    return "${{ " + expression + " }}"


FILTERS = {
    "dockerfile_word": dockerfile_word,
    "dockerfile_str": dockerfile_str,
    "hcl_str": hcl_str,
    "hcl_template": hcl_template,
    "yaml_str": yaml_str,
}


# -- the container runner: docker or podman, found once, every call with a time limit ---------
ENGINE_ENV = "ARCHLOCK_CONTAINER_CLI"  # a docker-compatible client to use instead of the search
MISSING_FIX = "install Docker (on Debian as root: scripts/local-infra.sh) or podman, and retry"
SHORT = 120.0  # seconds for a query (inspect, version, tag, rm)


@dataclass(frozen=True)
class Engine:
    cli: str  # path of the client
    kind: str  # "docker" | "podman"


@functools.cache
def engine() -> Engine:
    """The container client: $ARCHLOCK_CONTAINER_CLI, else docker on PATH, else Debian's
    /usr/bin/docker, else podman. ToolMissingError if none is installed."""
    chosen = os.environ.get(ENGINE_ENV)
    candidates = (
        [chosen] if chosen else [shutil.which("docker"), "/usr/bin/docker", shutil.which("podman")]
    )
    for candidate in candidates:
        if candidate and _executable(candidate):
            return Engine(
                candidate, "podman" if Path(candidate).name.startswith("podman") else "docker"
            )
    where = (
        f"${ENGINE_ENV}={chosen} is not an executable"
        if chosen
        else "no docker or podman client found"
    )
    raise ToolMissingError(where, fix=MISSING_FIX)


def _executable(path: str) -> bool:
    return Path(path).is_file() and os.access(path, os.X_OK)


def docker_cli() -> str:
    return engine().cli


def run(
    args: Sequence[str],
    *,
    timeout: float,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    input: str | None = None,
    merge_stderr: bool = False,
) -> proc.Result:
    """`<client> args...`, captured."""
    return proc.run(
        [engine().cli, *args],
        timeout=timeout,
        merge_stderr=merge_stderr,
        cwd=cwd,
        env=env,
        input=input,
        missing_fix=MISSING_FIX,
    )


def stream(
    args: Sequence[str],
    *,
    timeout: float,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> proc.Result:
    """`<client> args...` with its output passed through (builds)."""
    return proc.stream(
        [engine().cli, *args], timeout=timeout, cwd=cwd, env=env, missing_fix=MISSING_FIX
    )


def output(
    args: Sequence[str], *, timeout: float = SHORT, what: str | None = None, **kwargs: Any
) -> str:
    """stdout of `<client> args...`; ExternalCommandError naming the command and why otherwise."""
    done = run(args, timeout=timeout, **kwargs)
    if not done.ok:
        name = what or f"{Path(engine().cli).name} {' '.join(args[:3])}"
        raise ExternalCommandError(
            f"{name} failed: {done.why()}", fix="see the message above; is the engine running?"
        )
    return done.stdout


def engine_running() -> bool:
    return run(["info"], timeout=SHORT).ok


@functools.cache
def has_buildx() -> bool:
    return engine().kind == "docker" and run(["buildx", "version"], timeout=SHORT).ok


def buildx_driver() -> str:
    """The current builder's driver ("docker", "docker-container", "remote", ...), "" if unknown."""
    done = run(["buildx", "inspect"], timeout=SHORT)
    match = re.search(r"^Driver:\s*(\S+)", done.stdout, re.MULTILINE) if done.ok else None
    return match.group(1) if match else ""


def containerd_store() -> bool:
    """Does the engine keep images in the containerd store (which holds attestations)?"""
    done = run(["info", "--format", "{{json .DriverStatus}}"], timeout=SHORT)
    return done.ok and "io.containerd.snapshotter" in done.stdout


def classic_cli() -> str:
    """A client whose plain `build` has BuildKit built in (Debian's 20.10: yes; 23+: buildx)."""
    if engine().kind == "podman":
        return engine().cli  # podman build is its own builder (buildah)
    for candidate in ("/usr/bin/docker", engine().cli):
        if Path(candidate).exists() and _client_major(candidate) < 23:
            return candidate
    return engine().cli


def _client_major(cli: str) -> int:
    done = proc.run([cli, "version", "--format", "{{.Client.Version}}"], timeout=SHORT)
    match = re.match(r"(\d+)\.", done.stdout.strip())
    return int(match.group(1)) if match else 99


def image_exists(ref: str) -> bool:
    return run(["image", "inspect", ref], timeout=SHORT).ok


def inspect_image(ref: str) -> dict[str, Any] | None:
    """`image inspect` of one image, None if the engine does not have it."""
    done = run(["image", "inspect", ref], timeout=SHORT)
    if not done.ok:
        return None
    found = json.loads(done.stdout or "[]")
    return found[0] if found else None


def remove_images(*refs: str) -> None:
    """Remove images if present (cleanup: failures are ignored)."""
    if refs:
        run(["image", "rm", "--force", *refs], timeout=SHORT)


@dataclass(frozen=True)
class Container:
    """One `run --rm` of an image: every container archlock starts is described by one of these
    (verify's targets and runs, repro's reproduction and bisect trials, the build bench)."""

    image: str
    argv: tuple[str, ...] = ()
    platform: str | None = None
    name: str | None = None  # lets a container outliving its client be removed by name
    labels: Mapping[str, str] = field(default_factory=dict)
    gpus: bool = False  # every GPU of the host is passed in (`--gpus all`)
    mounts: tuple[str, ...] = ()  # `-v` values: host:container[:ro], or volume:container
    env: Mapping[str, str] = field(default_factory=dict)
    workdir: str | None = None
    entrypoint: str | None = None
    network: str | None = None
    user: str | None = None

    def args(self) -> list[str]:
        """The client's arguments (after `docker` or `podman`)."""
        args = ["run", "--rm"]
        args += ["--platform", self.platform] if self.platform else []
        args += [f"--name={self.name}"] if self.name else []
        for key, value in self.labels.items():
            args += ["--label", f"{key}={value}"]
        args += ["--gpus", "all"] if self.gpus else []
        for mount in self.mounts:
            args += ["-v", mount]
        for key, value in self.env.items():
            args += ["-e", f"{key}={value}"]
        args += ["-w", self.workdir] if self.workdir else []
        args += ["--entrypoint", self.entrypoint] if self.entrypoint else []
        args += ["--network", self.network] if self.network else []
        args += ["--user", self.user] if self.user else []
        return [*args, self.image, *self.argv]

    def run(self, *, timeout: float, merge_stderr: bool = False) -> proc.Result:
        """Run it; the container is removed even when the limit passes (`merge_stderr`: as
        proc.run)."""
        done = run(self.args(), timeout=timeout, merge_stderr=merge_stderr)
        if done.timed_out and self.name:
            run(["rm", "--force", self.name], timeout=SHORT)  # the client died, maybe not it
        return done


def run_container(
    image: str,
    argv: Sequence[str] = (),
    *,
    timeout: float,
    merge_stderr: bool = False,
    platform: str | None = None,
    mounts: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    workdir: str | None = None,
    entrypoint: str | None = None,
    network: str | None = None,
    user: str | None = None,
    name: str | None = None,
    gpus: bool = False,
) -> proc.Result:
    """A one-off `Container(...).run(...)`."""
    container = Container(
        image,
        tuple(argv),
        platform=platform,
        name=name,
        gpus=gpus,
        mounts=tuple(mounts),
        env=dict(env or {}),
        workdir=workdir,
        entrypoint=entrypoint,
        network=network,
        user=user,
    )
    return container.run(timeout=timeout, merge_stderr=merge_stderr)
