"""What leaves the machine in a report: paths under the home folder as `~`, secrets replaced.

`NAME=value` assignments whose name says TOKEN/SECRET/PASSWORD/KEY/..., values of `--token`-like
options and credentials in URLs become `<redacted>`. Standard library only, Python >= 3.8: it
runs inside the env being reported, as a file beside report.py or from a bundle.
"""

from __future__ import annotations

import os
import re

SECRET_WORDS = ("TOKEN", "SECRET", "PASSWORD", "PASSWD", "CREDENTIAL", "AUTH", "KEY", "COOKIE")
SECRET_ASSIGNMENT = re.compile(
    r"\b([A-Za-z0-9_]*(?:%s)[A-Za-z0-9_]*)=(\S+)" % "|".join(SECRET_WORDS), re.IGNORECASE
)
URL_CREDENTIALS = re.compile(r"\b([a-z][a-z0-9+.-]*://)[^/\s:@]+:[^/\s@]+@")
REDACTED = "<redacted>"


def home_folders() -> list[str]:
    found = []
    for path in (os.path.expanduser("~"), os.path.realpath(os.path.expanduser("~"))):
        path = path.rstrip("/")
        if len(path) > 1 and path not in found:
            found.append(path)
    return sorted(found, key=len, reverse=True)


class Redactor:
    """Rewrites strings so that nothing under the home folder or secret-looking leaves."""

    def __init__(self, homes: list[str] | None = None) -> None:
        homes = home_folders() if homes is None else homes
        self.patterns = [re.compile(re.escape(home) + r"(?=/|$|[^\w.-])") for home in homes]

    def text(self, value: str) -> str:
        for pattern in self.patterns:
            value = pattern.sub("~", value)
        value = SECRET_ASSIGNMENT.sub(lambda m: "%s=%s" % (m.group(1), REDACTED), value)
        return URL_CREDENTIALS.sub(lambda m: m.group(1) + REDACTED + "@", value)

    def value(self, value):
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, list):
            return [self.value(item) for item in value]
        if isinstance(value, dict):
            return {self.text(str(key)): self.value(item) for key, item in value.items()}
        return value

    def argv(self, argv: list[str]) -> list[str]:
        """Command words, with the values of secret-named options replaced."""
        out, hide_next = [], False
        for word in argv:
            if hide_next:
                out.append(REDACTED)
                hide_next = False
                continue
            name, sep, _ = word.partition("=")
            secret = word.startswith("-") and any(w in name.upper() for w in SECRET_WORDS)
            if secret and sep:
                out.append(name + "=" + REDACTED)
            else:
                out.append(self.text(word))
                hide_next = secret
        return out
