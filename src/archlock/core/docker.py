"""Safe values for Dockerfiles, bake files and workflows, and where the docker tools are.

Every value that comes from a spec or a setting passes one of the checks or quoting functions
below before it reaches a rendered file. Checks reject; quoting escapes what a format would
interpret. Both refuse control characters, so no value can start a new instruction.
"""

from __future__ import annotations

import json
import re
import shutil
import unicodedata
from pathlib import Path

from archlock.core import proc
from archlock.errors import ConfigError, ToolMissingError
from archlock.core.spec import NAME_RE

# An OCI reference: [host[:port]/]path[:tag][@sha256:digest]
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
IMAGE_REF_RE = re.compile(
    rf"^(?:[a-z0-9]+(?:[.-][a-z0-9]+)*(?::[0-9]{{1,5}})?/)?{_COMPONENT}(?:/{_COMPONENT})*"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[0-9a-f]{64})?$"
)
# a tag prefix: empty, or [host[:port]/]path/ ending in a slash
REGISTRY_PREFIX_RE = re.compile(rf"^(?:[a-z0-9]+(?:[.-][a-z0-9]+)*(?::[0-9]{{1,5}})?/(?:{_COMPONENT}/)*)?$")
IMAGE_NAME_RE = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
ENV_NAME_RE = NAME_RE  # the spec loader's rule for env file names, checked again before rendering
PYTHON_RE = re.compile(r"^3\.[0-9]{1,2}$")
DOCKER_PLATFORM_RE = re.compile(r"^linux/(?:amd64|arm64|arm/v7|ppc64le|s390x|riscv64)$")
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
REL_PATH_RE = re.compile(r"^(?!/)(?!.*(?:^|/)\.\.(?:/|$))[A-Za-z0-9._/-]+$")
URL_RE = re.compile(r"^https?://[A-Za-z0-9.-]+(?::[0-9]{1,5})?(?:/[A-Za-z0-9._~/%+-]*)?$")
RUNNER_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
BUILDER_ENDPOINT_RE = re.compile(r"^(?:(?:ssh|tcp|unix|docker-container)://[A-Za-z0-9._@:/-]+|[A-Za-z0-9][A-Za-z0-9_.-]*)$")
_WORD_RE = re.compile(r"^[A-Za-z0-9._/:@+=,-]+$")
_HCL_VAR_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_-]*)\}")


def check(value: object, pattern: re.Pattern[str], what: str, fix: str) -> str:
    """`value` if it is a string matching `pattern`, else a ConfigError naming `what`."""
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise ConfigError(f"{what}: {value!r} is not allowed here", fix=fix)
    return value


def _no_control(value: str, what: str) -> str:
    for char in value:
        if unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp"):
            raise ConfigError(f"{what}: {value!r} holds a control or line-break character", fix="remove it")
    return value


# -- quoting filters (registered in the Jinja environment) ------------------------------------
def dockerfile_word(value: str) -> str:
    """A bare word for a Dockerfile (ARG default, COPY source): no spaces, quotes or `$`."""
    if not _WORD_RE.fullmatch(value):
        raise ConfigError(f"Dockerfile value {value!r} is not a plain word", fix="use letters, digits and ._/:@+=,-")
    return value


def dockerfile_str(value: str) -> str:
    """A double-quoted string that the Dockerfile parser and a POSIX shell both read literally."""
    _no_control(value, "Dockerfile value")
    escaped = re.sub(r'([\\"$`])', r"\\\1", value)
    return f'"{escaped}"'


def hcl_str(value: str) -> str:
    """An HCL string literal with no interpolation: `${`, `%{`, quotes and backslashes escaped."""
    _no_control(value, "bake value")
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("${", "$${").replace("%{", "%%{")
    return f'"{escaped}"'


def hcl_template(value: str) -> str:
    """An HCL string whose `${NAME}` references are meant as bake variables; nothing else is live."""
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
        raise ConfigError(f"workflow value {value!r} holds an Actions expression", fix="remove `${{`")
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


# -- tools ------------------------------------------------------------------------------------
def docker_cli() -> str:
    """The docker client to use: one on PATH, else Debian's. ToolMissingError if none runs."""
    for candidate in (shutil.which("docker"), "/usr/bin/docker"):
        if candidate and Path(candidate).exists():
            return candidate
    raise ToolMissingError(
        "docker is not installed", fix="install Docker (or run scripts/local-infra.sh on Debian) and retry"
    )


QUERY_TIMEOUT = 60.0  # seconds for docker to answer a version or info query


def has_buildx(docker: str) -> bool:
    return proc.run([docker, "buildx", "version"], timeout=QUERY_TIMEOUT).ok


def classic_cli(docker: str) -> str:
    """A client whose plain `docker build` has BuildKit built in (Debian's 20.10 does; 23+ needs buildx)."""
    for candidate in ("/usr/bin/docker", docker):
        if Path(candidate).exists() and _client_major(candidate) < 23:
            return candidate
    return docker


def _client_major(docker: str) -> int:
    result = proc.run([docker, "version", "--format", "{{.Client.Version}}"], timeout=QUERY_TIMEOUT)
    match = re.match(r"(\d+)\.", result.stdout.strip())
    return int(match.group(1)) if match else 99


def engine_running(docker: str) -> bool:
    result = proc.run([docker, "info", "--format", "{{.ServerVersion}}"], timeout=QUERY_TIMEOUT)
    return result.ok and bool(result.stdout.strip())  # a daemon that does not answer is not running
