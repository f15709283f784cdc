"""The one rule for the CA bundle image builds trust (build, bench and repro alike).

Behind a TLS-intercepting proxy, uv and pip inside a build need the proxy's CA. The bundle
reaches builds as the BuildKit secret `ca-bundle` (never a layer). Which bundle: `--ca-bundle
FILE`, else $ARCHLOCK_CA_BUNDLE, else `[tool.archlock.build] ca-bundle` (that precedence is
archlock.core.settings'), else this host's system bundle when it has one. `none` at any of
those levels turns it off.
"""

from __future__ import annotations

import ssl
from pathlib import Path

from archlock.errors import ConfigError

CA_ENV = "ARCHLOCK_CA_BUNDLE"
CA_SECRET_ID = "ca-bundle"
OFF = "none"
DEBIAN_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"


def system_bundle() -> Path | None:
    paths = ssl.get_default_verify_paths()
    for candidate in (paths.cafile, paths.openssl_cafile, DEBIAN_BUNDLE):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


def resolve(setting: str | Path | None) -> Path | None:
    """The bundle for a setting already read in settings' precedence (None: not set)."""
    if setting is None or str(setting) == "":
        return system_bundle()
    if str(setting) == OFF:
        return None
    path = Path(setting).expanduser()
    if not path.is_file():
        raise ConfigError(
            f"CA bundle {path} not found",
            fix=f"pass --ca-bundle FILE (or set {CA_ENV}, or [tool.archlock.build] ca-bundle) to "
            f"a PEM file, or {OFF!r} to build without one",
        )
    return path
