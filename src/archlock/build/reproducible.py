"""Same inputs, same image: the build's date, and the image config dated where the builder did not.

SOURCE_DATE_EPOCH is a constant by default (1980-01-01, the floor of a wheel's zip dates), never
the clock and not the commit time: an epoch that moved with each commit would change the bytes of
every layer it dates. The standard variable overrides it (`$(git log -1 --format=%ct)`).

The rendered Dockerfiles date every file their steps write (templates/Dockerfile.j2), so the
layers are the same from build to build on any BuildKit. The image config's `created` times are
the builder's: BuildKit takes them from SOURCE_DATE_EPOCH from v0.11 on; older ones (Debian 12's
engine has v0.8) write the clock. `settle` then rewrites the loaded image's config alone, its
dates set to the epoch and nothing else changed, and loads it back: `docker load` skips layers
the engine has, so the archive it reads holds the config and the manifest only, and settling a
7 GB image writes a few kilobytes. The config is read from the engine's image store where this
process can (root on the engine's machine; checked by its sha256), else from a streamed
`docker save` (a minute for the 7 GB CUDA image: CI's warm run went past 30 minutes with it).
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import tarfile
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from archlock.core import docker as du
from archlock.core import proc
from archlock.errors import ConfigError, ExternalCommandError

DEFAULT_EPOCH = 315532800  # 1980-01-01T00:00:00Z


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


def stamp(epoch: int) -> str:
    """The epoch as the image config writes a date."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def dated(created: str, epoch: int) -> bool:
    """Is an image's `Created` (as `docker image inspect` gives it) the epoch?"""
    text = re.sub(r"\.\d+", "", created.strip()).replace("+00:00", "Z")
    return text == stamp(epoch)


def clamp_config(config: dict[str, Any], epoch: int) -> bytes:
    """The image config with its `created` times at `epoch`, serialised the same way every time."""
    when = stamp(epoch)
    fixed = {**config, "created": when}
    if "history" in config:
        fixed["history"] = [{**entry, "created": when} for entry in config["history"]]
    return json.dumps(fixed, sort_keys=True, separators=(",", ":")).encode()


@dataclass(frozen=True)
class Saved:
    """What `docker save` of one image holds besides its layers."""

    config: dict[str, Any]
    layers: list[str]  # the archive's layer paths, in order
    layer_bytes: list[int]  # each layer's uncompressed size, in the same order


def settle(tag: str, epoch: int, timeout: float) -> str:
    """Date the loaded image `tag`'s config `epoch` if it is not; returns the image ID."""
    found = du.inspect_image(tag)
    if found is None:
        raise ExternalCommandError(f"{tag}: not in the engine after the build", fix="build again")
    if dated(str(found.get("Created", "")), epoch):
        return str(found["Id"])
    stored = stored_config(str(found["Id"]))
    if stored is not None:  # the engine's own copy: no archive of the whole image to read
        original, layers = stored, [f"{d.split(':')[-1]}/layer.tar" for d in stored_diffs(stored)]
    else:
        saved = read_saved(tag, timeout)
        original, layers = saved.config, saved.layers
    config = clamp_config(original, epoch)
    name = hashlib.sha256(config).hexdigest()
    manifest = [{"Config": f"{name}.json", "RepoTags": [tag], "Layers": layers}]
    with tempfile.TemporaryDirectory(prefix="archlock-settle-") as work:
        archive = Path(work) / "config.tar"
        archive.write_bytes(_archive(name, config, manifest))
        done = du.run(["load", "-i", str(archive)], timeout=timeout)
    if not done.ok:
        raise ExternalCommandError(
            f"docker load of {tag}'s dated config failed: {done.why()}", fix="see the message above"
        )
    if found["Id"] != f"sha256:{name}":
        du.remove_images(str(found["Id"]))  # the clock-dated config; its layers are the new one's
    return f"sha256:{name}"


def stored_config(image_id: str) -> dict[str, Any] | None:
    """The image's config as the classic image store keeps it, when this process can read it and
    its sha256 is `image_id` (so it is that config, byte for byte); None otherwise."""
    where = du.run(["info", "--format", "{{.DockerRootDir}}\t{{.Driver}}"], timeout=du.SHORT)
    root, _, driver = where.stdout.strip().partition("\t")
    if not (where.ok and root and driver and image_id.startswith("sha256:")):
        return None
    path = Path(root, "image", driver, "imagedb", "content", "sha256", image_id[7:])
    try:
        data = path.read_bytes()
        if hashlib.sha256(data).hexdigest() != image_id[7:]:
            return None
        config = json.loads(data)
    except (OSError, ValueError):
        return None
    return config if isinstance(config, dict) and stored_diffs(config) else None


def stored_diffs(config: dict[str, Any]) -> list[str]:
    """The config's layer diff IDs ([] when it names none)."""
    diffs = (config.get("rootfs") or {}).get("diff_ids") if isinstance(config, dict) else None
    return [str(d) for d in diffs] if isinstance(diffs, list) else []


def read_saved(tag: str, timeout: float) -> Saved:
    """The config and layer paths of `tag`, read from `docker save` as it streams (never stored)."""
    done, saved = proc.read(
        [du.docker_cli(), "save", tag], _saved_of, timeout=timeout, missing_fix=du.MISSING_FIX
    )
    if saved is None:
        why = done.why() if not done.ok else "no config in the archive"
        raise ExternalCommandError(f"docker save {tag} failed: {why}", fix="see the message above")
    return saved


def _saved_of(stream: IO[bytes]) -> Saved | None:
    """Read a `docker save` archive: the small JSON files are kept, the layers skipped."""
    small: dict[str, bytes] = {}
    sizes: dict[str, int] = {}
    try:
        with tarfile.open(fileobj=stream, mode="r|") as archive:
            for member in archive:
                sizes[member.name] = member.size
                if member.isfile() and member.name.endswith(".json") and "/" not in member.name:
                    data = archive.extractfile(member)
                    small[member.name] = data.read() if data else b""
        (entry,) = json.loads(small.get("manifest.json", b"[]"))
        paths = [str(p) for p in entry["Layers"]]
        return Saved(json.loads(small[entry["Config"]]), paths, [sizes[p] for p in paths])
    except (tarfile.TarError, OSError, ValueError, KeyError, TypeError):
        return None  # cut, or not a classic archive (the containerd store's builders date it)


def _archive(name: str, config: bytes, manifest: list[dict[str, Any]]) -> bytes:
    """A `docker load` archive of a config and its manifest: the layers are the engine's."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as out:
        for member, data in ((f"{name}.json", config), ("manifest.json", json.dumps(manifest))):
            raw = data.encode() if isinstance(data, str) else data
            info = tarfile.TarInfo(member)
            info.size = len(raw)
            out.addfile(info, io.BytesIO(raw))
    return buffer.getvalue()
