"""Which archlock a project's noxfile installs: exactly the one the user ran `archlock init` with.

PEP 610's `direct_url.json` says where an installed distribution came from: a VCS URL and the
commit, a local folder, or an archive (a wheel or sdist, by path or URL, with its hash). Without
it, archlock came from an index and its version pins it. Never a bare name: anyone can register
a name on an index that archlock does not own.
"""

from __future__ import annotations

import json
import re
from importlib import metadata
from typing import Any

from archlock.errors import ConfigError

NAME = "archlock"
_URL_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"\\#@]+$")
_COMMIT_RE = re.compile(r"^[0-9a-fA-F]{7,64}$")
_HASH_RE = re.compile(r"^[a-z0-9]+=[0-9a-fA-F]{32,128}$")
_SUBDIR_RE = re.compile(r"^[A-Za-z0-9._/-]+$")
_VERSION_RE = re.compile(r"^[A-Za-z0-9.+!_-]+$")


def requirement() -> str:
    """The PEP 508 requirement that installs the running archlock again."""
    try:
        dist = metadata.distribution(NAME)
    except metadata.PackageNotFoundError:
        raise ConfigError(
            "archlock is not installed as a distribution, so init cannot pin it",
            fix="install archlock (uv tool install, pip install) and run archlock init again",
        ) from None
    text = dist.read_text("direct_url.json")
    return from_direct_url(json.loads(text) if text else None, dist.version)


def from_direct_url(direct: dict[str, Any] | None, version: str) -> str:
    """A pinned requirement from a PEP 610 document (None: installed from an index)."""
    if direct is None:
        _check(version, _VERSION_RE, "version")
        return f"{NAME}=={version}"
    url = _check(direct.get("url"), _URL_RE, "url")
    fragment = ""
    if direct.get("subdirectory") is not None:
        fragment = "#subdirectory=" + _check(direct["subdirectory"], _SUBDIR_RE, "subdirectory")
    vcs = direct.get("vcs_info")
    if isinstance(vcs, dict):
        commit = _check(vcs.get("commit_id"), _COMMIT_RE, "vcs_info.commit_id")
        kind = _check(vcs.get("vcs"), re.compile(r"^(git|hg|bzr|svn)$"), "vcs_info.vcs")
        return f"{NAME} @ {kind}+{url}@{commit}{fragment}"
    archive = direct.get("archive_info")
    if isinstance(archive, dict):
        hashes = archive.get("hashes") or {}
        named = [f"{k}={v}" for k, v in sorted(hashes.items()) if k == "sha256"]
        if not named and archive.get("hash"):
            named = [str(archive["hash"])]
        if named:
            fragment = "#" + _check(named[0], _HASH_RE, "archive_info.hashes")
        return f"{NAME} @ {url}{fragment}"
    if isinstance(direct.get("dir_info"), dict):
        return f"{NAME} @ {url}{fragment}"
    raise ConfigError(
        "archlock's direct_url.json names no vcs_info, archive_info or dir_info",
        fix="reinstall archlock from an index, a VCS URL or a folder",
    )


def _check(value: Any, pattern: re.Pattern[str], key: str) -> str:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise ConfigError(
            f"archlock's direct_url.json: {key}: {value!r} cannot be pinned",
            fix="reinstall archlock from an index, a VCS URL or a folder",
        )
    return value
