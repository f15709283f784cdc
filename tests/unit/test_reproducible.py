"""archlock.build.reproducible: the epoch, the dated config and the load archive (no engine; reading
a real `docker save` stream is in tests/integration/test_proc.py)."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest

from archlock.build import reproducible
from archlock.core import proc
from archlock.errors import ConfigError

EPOCH = reproducible.DEFAULT_EPOCH


def test_epoch_is_a_constant_unless_the_standard_variable_says_otherwise() -> None:
    assert reproducible.source_date_epoch({}) == 315532800
    assert reproducible.source_date_epoch({"SOURCE_DATE_EPOCH": "1700000000"}) == 1700000000
    assert reproducible.stamp(EPOCH) == "1980-01-01T00:00:00Z"


@pytest.mark.parametrize("value", ["now", "-1", "1.5", "17000000000000", "1\n"])
def test_a_bad_epoch_is_one_config_error(value: str) -> None:
    with pytest.raises(ConfigError, match="SOURCE_DATE_EPOCH"):
        reproducible.source_date_epoch({"SOURCE_DATE_EPOCH": value})


@pytest.mark.parametrize(
    ("created", "dated"),
    [
        ("1980-01-01T00:00:00Z", True),
        ("1980-01-01T00:00:00.000000000Z", True),
        ("1980-01-01T00:00:00+00:00", True),
        ("2026-12-05T10:11:12.123456789Z", False),
        ("", False),
    ],
)
def test_an_image_is_dated_when_its_created_is_the_epoch(created: str, dated: bool) -> None:
    assert reproducible.dated(created, EPOCH) is dated


def config(created: str) -> dict[str, object]:
    return {
        "architecture": "amd64",
        "created": created,
        "history": [{"created": created, "created_by": "COPY"}, {"created": created}],
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + "a" * 64]},
        "config": {"Labels": {"b": "2", "a": "1"}},
    }


def test_two_builds_minutes_apart_get_one_config() -> None:
    first = reproducible.clamp_config(config("2026-12-04T15:00:00.1Z"), EPOCH)
    second = reproducible.clamp_config(config("2026-12-04T15:16:39.9Z"), EPOCH)
    assert first == second  # the image ID is this file's sha256
    fixed = json.loads(first)
    assert fixed["created"] == "1980-01-01T00:00:00Z"
    assert [h["created"] for h in fixed["history"]] == ["1980-01-01T00:00:00Z"] * 2
    assert fixed["rootfs"] == config("x")["rootfs"] and fixed["config"]["Labels"]["a"] == "1"


def test_the_load_archive_holds_the_config_and_manifest_only() -> None:
    body = reproducible.clamp_config(config("2026-12-04T15:00:00Z"), EPOCH)
    name = hashlib.sha256(body).hexdigest()
    manifest = [{"Config": f"{name}.json", "RepoTags": ["app:t"], "Layers": ["l1/layer.tar"]}]
    with tarfile.open(fileobj=io.BytesIO(reproducible._archive(name, body, manifest))) as tar:
        assert tar.getnames() == [f"{name}.json", "manifest.json"]
        assert tar.extractfile(f"{name}.json").read() == body  # type: ignore[union-attr]


def engine_store(monkeypatch: pytest.MonkeyPatch, root: Path) -> None:
    """`docker info` answers with an image store under `root` (the classic overlay2 layout)."""
    answer = proc.Result(("docker",), 0, f"{root}\toverlay2\n", "", False, 0.0, 10.0)
    monkeypatch.setattr(reproducible.du, "run", lambda args, timeout: answer)


def test_the_config_comes_from_the_store_only_when_its_sha256_is_the_id(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    body = json.dumps(config("2026-12-04T15:00:00Z")).encode()
    digest = hashlib.sha256(body).hexdigest()
    store = tmp_path / "image" / "overlay2" / "imagedb" / "content" / "sha256"
    store.mkdir(parents=True)
    (store / digest).write_bytes(body)
    engine_store(monkeypatch, tmp_path)
    found = reproducible.stored_config(f"sha256:{digest}")
    assert found is not None and reproducible.stored_diffs(found) == ["sha256:" + "a" * 64]
    (store / digest).write_bytes(body + b" ")  # not that config any more: the stream is used
    assert reproducible.stored_config(f"sha256:{digest}") is None
    assert reproducible.stored_config("sha256:" + "0" * 64) is None  # not in this store
