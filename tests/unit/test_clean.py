"""archlock clean: which images are archlock's, how much cache is beyond the cap, which registry
blobs go, and what a dry run prints (the engine's answers stand in; nothing is removed)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pytest

from archlock.build import clean
from archlock.errors import ConfigError

GB = 10**9


def image(ident: str, tags: list[str], labels: dict[str, str] | None, size: int) -> dict[str, Any]:
    return {"Id": ident, "RepoTags": tags, "Size": size, "Config": {"Labels": labels}}


OURS = {clean.ENV_LABEL: "linux-arm64-cpu", clean.TITLE_LABEL: "archlock linux-arm64-cpu"}
OTHER_PROJECT = {clean.ENV_LABEL: "linux-arm64-cpu", clean.TITLE_LABEL: "other linux-arm64-cpu"}
INSPECTED = [
    image("sha256:a", ["archlock:dev-linux-arm64-cpu", "reg/archlock:it-linux-arm64-cpu"], OURS, 3),
    image("sha256:b", ["other:dev-linux-arm64-cpu"], OTHER_PROJECT, 5),
    image("sha256:c", ["archlock/debian-bookworm:arm64"], None, 70),  # a base: no archlock label
    image("sha256:d", [], OURS, 7),  # untagged, still ours
    image("sha256:e", ["someone/app:1"], {"maintainer": "x"}, 11),
]


def test_only_images_labelled_by_archlock_are_selected_and_by_default_this_projects() -> None:
    mine = clean.select_images(INSPECTED, {"archlock linux-arm64-cpu"})
    assert [(i.what, i.size) for i in mine] == [
        ("archlock:dev-linux-arm64-cpu reg/archlock:it-linux-arm64-cpu", 3),
        ("sha256:d", 7),
    ]
    every = clean.select_images(INSPECTED, None)
    assert sorted(i.size for i in every) == [3, 5, 7]  # never the base, never someone's app


def test_project_titles_follow_the_render_settings(repo: Path) -> None:
    titles = clean.project_titles(repo)
    assert "archlock linux-amd64-cuda" in titles and "archlock macos-arm64" in titles


@pytest.mark.parametrize(
    ("size", "reclaimable", "cap", "excess"),
    [
        ("53.8GB", "53.8GB", 20 * GB, 33_800_000_000),
        ("53.8GB", "10GB (18%)", 20 * GB, 10 * GB),  # in-use records stay
        ("447.4MB", "447.4MB", 20 * GB, 0),
        ("20GB", "20GB", 20 * GB, 0),
    ],
)
def test_cache_beyond_the_cap(size: str, reclaimable: str, cap: int, excess: int) -> None:
    rows = [
        {"Type": "Images", "Size": "90GB", "Reclaimable": "90GB"},
        {"Type": "Build Cache", "Size": size, "Reclaimable": reclaimable},
    ]
    items = clean.cache_excess(rows, cap)
    assert sum(i.size for i in items) == excess and len(items) == (1 if excess else 0)


@pytest.mark.parametrize(
    ("text", "nbytes"),
    [("20GB", 20 * GB), ("447.4MB", 447_400_000), ("1.5 kB", 1500), ("512", 512), ("2G", 2 * GB)],
)
def test_sizes_read_like_docker_prints_them(text: str, nbytes: int) -> None:
    assert clean.parse_size(text) == nbytes


@pytest.mark.parametrize("text", ["", "lots", "-1GB", "20 PB", "20GB\n1"])
def test_a_bad_size_is_one_line(text: str) -> None:
    with pytest.raises(ConfigError, match="is not a size"):
        clean.parse_size(text)


def test_registry_blobs_are_sized_from_the_storage(tmp_path: Path) -> None:
    digest = "ab" * 32
    data = tmp_path / "docker/registry/v2/blobs/sha256/ab" / digest / "data"
    data.parent.mkdir(parents=True)
    data.write_bytes(b"x" * 1234)
    output = (
        "archlock/uv: marking manifest sha256:" + "cd" * 32 + " \n"
        f"blob eligible for deletion: sha256:{digest}\n"
        f"blob eligible for deletion: sha256:{'ef' * 32}\n"  # already gone: counts 0
        "3 blobs marked, 2 blobs and 0 manifests eligible for deletion\n"
    )
    items = clean.registry_blobs(output, tmp_path)
    assert [(i.what, i.size) for i in items] == [
        (f"sha256:{digest}", 1234),
        (f"sha256:{'ef' * 32}", 0),
    ]


def test_registry_config_and_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "registry.yml"
    config.write_text(
        "version: 0.1\nstorage:\n  filesystem: {rootdirectory: /srv/reg}\n"
        "  delete: {enabled: true}\n"
    )
    monkeypatch.setenv("ARCHLOCK_INFRA_DIR", str(tmp_path))
    monkeypatch.delenv(clean.REGISTRY_CONFIG_ENV, raising=False)
    assert clean.registry_config(None) == config
    assert clean.registry_root(config) == Path("/srv/reg")
    monkeypatch.setenv("ARCHLOCK_INFRA_DIR", str(tmp_path / "none"))
    assert clean.registry_config(None) is None
    with pytest.raises(ConfigError, match="no registry config there"):
        clean.registry_config(tmp_path / "missing.yml")
    config.write_text("version: 0.1\nstorage: {inmemory: {}}\n")
    with pytest.raises(ConfigError, match="rootdirectory: missing"):
        clean.registry_root(config)


def test_the_dry_run_lists_each_item_and_the_total() -> None:
    plan = clean.Plan(
        items=[
            clean.Item("cache", "build cache beyond 20.00 GB (of 53.80 GB)", 33_800_000_000),
            clean.Item("images", "archlock:dev-linux-amd64-cuda", 7_500_000_000),
        ],
        notes=["registry: docker-registry is not installed: skipped"],
    )
    assert clean.render_plan(plan, dry_run=True) == [
        "images: would remove archlock:dev-linux-amd64-cuda (7.50 GB)",
        "cache: would remove build cache beyond 20.00 GB (of 53.80 GB) (33.80 GB)",
        "note: registry: docker-registry is not installed: skipped",
        "would free: 41.30 GB (images can share layers: at most)",
    ]


def test_the_cap_comes_from_the_flag_then_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(clean.CAP_ENV, raising=False)
    assert clean._cap(None) == 20 * GB
    monkeypatch.setenv(clean.CAP_ENV, "8GB")
    assert clean._cap(None) == 8 * GB
    assert clean._cap("1GB") == GB
    monkeypatch.setenv(clean.CAP_ENV, "a lot")
    with pytest.raises(ConfigError, match=r"^\$ARCHLOCK_BUILD_CACHE_CAP: 'a lot' is not a size"):
        clean._cap(None)


def test_the_verb_is_registered_with_its_options() -> None:
    from archlock import cli

    args = cli.build_parser().parse_args(
        ["clean", "--dry-run", "--only", "images", "--all-projects"]
    )
    assert isinstance(args, argparse.Namespace)
    assert (args.dry_run, args.only, args.all_projects) == (True, ["images"], True)
