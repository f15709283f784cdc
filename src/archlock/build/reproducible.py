"""Same inputs, same image: the build's timestamp and the layer-timestamp rewrite.

SOURCE_DATE_EPOCH is a constant by default (1980-01-01, the floor of a wheel's zip dates), not
the commit time: BuildKit's `rewrite-timestamp` clamps every file newer than the epoch to it,
including the directories a COPY creates with the build's clock time, so an epoch that moved
with each commit would change the bytes of every layer, the unchanged dependency layers too.
The standard variable overrides it (`SOURCE_DATE_EPOCH=$(git log -1 --format=%ct)`).

BuildKit reads the epoch for the image config's timestamps from v0.11 and rewrites layer
timestamps from v0.13 (exporter option `rewrite-timestamp=true`). Older builders (Debian 12's
engine has BuildKit v0.8 behind buildx's `docker` driver, which ignores both) get the same
rewrite here, after `--load`: the image is saved, every layer's file times are clamped to the
epoch, the config's `created` times set to it, and the result loaded under the same tags.
"""

from __future__ import annotations

import hashlib
import json
import re
import tarfile
import tempfile
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from archlock.core import docker as du
from archlock.errors import ConfigError, ExternalCommandError

DEFAULT_EPOCH = 315532800  # 1980-01-01T00:00:00Z
REWRITE_SINCE = (0, 13)  # BuildKit's exporter option rewrite-timestamp=true
NO_REWRITE = (
    "the builder's BuildKit {version} cannot rewrite layer timestamps (v0.13 can): archlock "
    "rewrites them after the build (save, clamp to SOURCE_DATE_EPOCH, load; then push if asked)"
)
PUSH_NO_REWRITE = (
    "the builder's BuildKit {version} cannot rewrite layer timestamps (v0.13 can): the pushed "
    "image's digest changes from build to build (a docker-container builder fixes it)"
)
_PAX_TIMES = ("mtime", "atime", "ctime")


def source_date_epoch(environ: Mapping[str, str]) -> int:
    """The build's epoch: $SOURCE_DATE_EPOCH when set, else DEFAULT_EPOCH (never the clock)."""
    value = environ.get("SOURCE_DATE_EPOCH", "")
    if not value:
        return DEFAULT_EPOCH
    if not re.fullmatch(r"[0-9]{1,11}", value):
        raise ConfigError(
            f"environment SOURCE_DATE_EPOCH={value!r}: not a Unix time in seconds",
            fix="set it to whole seconds, e.g. $(git log -1 --format=%ct), or unset it",
        )
    return int(value)


def buildkit_version() -> tuple[int, int] | None:
    """The current buildx builder's BuildKit (major, minor); None when it does not say."""
    done = du.run(["buildx", "inspect"], timeout=du.SHORT)
    match = re.search(r"BuildKit version:\s*v?(\d+)\.(\d+)", done.stdout) if done.ok else None
    return (int(match.group(1)), int(match.group(2))) if match else None


def can_rewrite(version: tuple[int, int] | None) -> bool:
    return version is not None and version >= REWRITE_SINCE


def version_text(version: tuple[int, int] | None) -> str:
    return f"v{version[0]}.{version[1]}" if version else "(version unknown)"


# -- the rewrite for builders that cannot ------------------------------------------------------
def rewrite_loaded(tag: str, epoch: int, timeout: float) -> str:
    """Clamp the loaded image `tag` to `epoch` (layers and config); returns its new image ID."""
    before = du.inspect_image(tag)
    with tempfile.TemporaryDirectory(prefix="archlock-rewrite-") as tmp:
        work = Path(tmp)
        _docker(["save", "-o", str(work / "in.tar"), tag], timeout, f"docker save {tag}")
        _rewrite_archive(work / "in.tar", work / "out.tar", epoch)
        (work / "in.tar").unlink()
        _docker(["load", "-i", str(work / "out.tar")], timeout, f"docker load of {tag}")
    found = du.inspect_image(tag)
    image_id = str(found["Id"]) if found else ""
    if before and before["Id"] != image_id:
        du.remove_images(str(before["Id"]))  # the unclamped image, now untagged (its layers stay)
    return image_id


def _docker(args: list[str], timeout: float, what: str) -> None:
    done = du.run(args, timeout=timeout)
    if not done.ok:
        raise ExternalCommandError(f"{what} failed: {done.why()}", fix="see the message above")


def _rewrite_archive(source: Path, target: Path, epoch: int) -> None:
    """A `docker save` archive -> the same image with every timestamp clamped to `epoch`."""
    with (
        tarfile.open(source) as archive,
        tarfile.open(target, "w", format=tarfile.PAX_FORMAT) as out,
    ):
        manifest = json.loads(_member_bytes(archive, "manifest.json"))
        entries = []
        for entry in manifest:
            config = json.loads(_member_bytes(archive, entry["Config"]))
            layers = [_copy_layer(archive, out, name, epoch) for name in entry["Layers"]]
            config_bytes = clamp_config(config, [f"sha256:{d}" for d in layers], epoch)
            config_name = hashlib.sha256(config_bytes).hexdigest() + ".json"
            _add(out, config_name, config_bytes)
            layer_names = [f"{d}/layer.tar" for d in layers]
            entries.append(
                {"Config": config_name, "RepoTags": entry["RepoTags"], "Layers": layer_names}
            )
        _add(out, "manifest.json", json.dumps(entries).encode())


def clamp_config(config: dict[str, Any], diff_ids: list[str], epoch: int) -> bytes:
    """The image config with its `created` times at `epoch` and the rewritten layers' IDs."""
    stamp = datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    config = {**config, "created": stamp, "rootfs": {**config["rootfs"], "diff_ids": diff_ids}}
    config["history"] = [{**h, "created": stamp} for h in config.get("history", [])]
    return json.dumps(config, separators=(",", ":")).encode()


def _copy_layer(archive: tarfile.TarFile, out: tarfile.TarFile, name: str, epoch: int) -> str:
    """One layer, rewritten into a temporary file, added as `<diff id>/layer.tar`."""
    source = archive.extractfile(name)
    if source is None:
        raise ExternalCommandError(f"docker save: {name} is not a file", fix="rebuild the image")
    with tempfile.TemporaryFile() as spool:
        with (
            tarfile.open(fileobj=source, mode="r|") as layer,
            tarfile.open(fileobj=spool, mode="w|", format=tarfile.PAX_FORMAT) as writer,
        ):
            for member in layer:
                clamp_member(member, epoch)
                writer.addfile(member, layer.extractfile(member) if member.isfile() else None)
        size = spool.tell()
        spool.seek(0)
        digest = hashlib.file_digest(spool, "sha256")
        spool.seek(0)
        diff_id = digest.hexdigest()
        info = tarfile.TarInfo(f"{diff_id}/layer.tar")
        info.size, info.mtime = size, 0
        out.addfile(info, spool)
    return diff_id


def clamp_member(member: tarfile.TarInfo, epoch: int) -> None:
    """What BuildKit's rewrite-timestamp does to one entry: times newer than `epoch` become it."""
    member.mtime = min(int(member.mtime), epoch)
    member.pax_headers = {k: v for k, v in member.pax_headers.items() if k not in _PAX_TIMES}


def _member_bytes(archive: tarfile.TarFile, name: str) -> bytes:
    found = archive.extractfile(name)
    if found is None:
        raise ExternalCommandError(f"docker save: {name} missing", fix="rebuild the image")
    return found.read()


def _add(out: tarfile.TarFile, name: str, data: bytes) -> None:
    import io

    info = tarfile.TarInfo(name)
    info.size, info.mtime = len(data), 0
    out.addfile(info, io.BytesIO(data))
