"""archlock.build.reproducible: the epoch, the builder's capability and the timestamp rewrite
of a `docker save` archive (real tar files; no engine)."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest

from archlock.build import reproducible
from archlock.errors import ConfigError

EPOCH = reproducible.DEFAULT_EPOCH


def test_epoch_is_a_constant_unless_the_standard_variable_says_otherwise() -> None:
    assert reproducible.source_date_epoch({}) == 315532800
    assert reproducible.source_date_epoch({"SOURCE_DATE_EPOCH": "1700000000"}) == 1700000000


@pytest.mark.parametrize("value", ["now", "-1", "1.5", "17000000000000", "1\n"])
def test_a_bad_epoch_is_one_config_error(value: str) -> None:
    with pytest.raises(ConfigError, match="SOURCE_DATE_EPOCH"):
        reproducible.source_date_epoch({"SOURCE_DATE_EPOCH": value})


def test_rewrite_timestamp_needs_buildkit_0_13() -> None:
    assert not reproducible.can_rewrite((0, 8)) and not reproducible.can_rewrite(None)
    assert reproducible.can_rewrite((0, 13)) and reproducible.can_rewrite((1, 0))
    assert reproducible.version_text((0, 8)) == "v0.8"


def layer(mtime: int, files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        folder = tarfile.TarInfo("opt/venv")
        folder.type, folder.mtime, folder.mode = tarfile.DIRTYPE, mtime, 0o755
        folder.pax_headers = {"atime": str(mtime), "SCHILY.xattr.user.x": "kept"}
        tar.addfile(folder)
        for name, data in files.items():
            info = tarfile.TarInfo(f"opt/venv/{name}")
            info.size, info.mtime = len(data), 100  # older than the epoch: kept
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def saved_image(path: Path, mtime: int, created: str) -> None:
    """A `docker save` archive of one image with one layer, built at `mtime`."""
    data = layer(mtime, {"a.py": b"print(1)\n"})
    diff = hashlib.sha256(data).hexdigest()
    config = {
        "architecture": "amd64",
        "created": created,
        "history": [{"created": created, "created_by": "COPY"}],
        "rootfs": {"type": "layers", "diff_ids": [f"sha256:{diff}"]},
    }
    blob = json.dumps(config).encode()
    manifest = [{"Config": "c.json", "RepoTags": ["app:t"], "Layers": [f"{diff}/layer.tar"]}]
    with tarfile.open(path, "w") as tar:
        for name, body in (
            (f"{diff}/layer.tar", data),
            ("c.json", blob),
            ("manifest.json", json.dumps(manifest).encode()),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))


def rewritten(tmp_path: Path, name: str, mtime: int, created: str) -> tuple[bytes, dict]:
    saved_image(tmp_path / f"{name}.tar", mtime, created)
    out = tmp_path / f"{name}-out.tar"
    reproducible._rewrite_archive(tmp_path / f"{name}.tar", out, EPOCH)
    with tarfile.open(out) as tar:
        manifest = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
        config = json.loads(tar.extractfile(manifest[0]["Config"]).read())  # type: ignore[union-attr]
        members = {m.name: m for m in tar.getmembers()}
        layer_bytes = tar.extractfile(manifest[0]["Layers"][0]).read()  # type: ignore[union-attr]
    assert manifest[0]["RepoTags"] == ["app:t"] and members
    return layer_bytes, {"config": config, "manifest": manifest}


def test_two_builds_at_different_times_become_one_image(tmp_path: Path) -> None:
    first, one = rewritten(tmp_path, "one", 1764800000, "2026-12-04T15:00:00.1Z")
    second, two = rewritten(tmp_path, "two", 1764800999, "2026-12-04T15:16:39.9Z")
    assert first == second and one == two  # same layer bytes, same config, same image ID
    config = one["config"]
    assert config["created"] == "1980-01-01T00:00:00Z"
    assert [h["created"] for h in config["history"]] == ["1980-01-01T00:00:00Z"]
    assert config["rootfs"]["diff_ids"] == [f"sha256:{hashlib.sha256(first).hexdigest()}"]
    assert (
        one["manifest"][0]["Config"]
        == hashlib.sha256(json.dumps(config, separators=(",", ":")).encode()).hexdigest() + ".json"
    )
    with tarfile.open(fileobj=io.BytesIO(first)) as tar:
        folder, source = tar.getmembers()
        assert folder.mtime == EPOCH and source.mtime == 100  # clamped, older ones kept
        assert folder.pax_headers.get("SCHILY.xattr.user.x") == "kept"
        assert "atime" not in folder.pax_headers
        assert tar.extractfile(source).read() == b"print(1)\n"  # type: ignore[union-attr]
