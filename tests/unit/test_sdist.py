"""core/sdist.py: the kind of a source-only package, read from hand-made sdists, and the lock's
record of it in the pylock."""

from __future__ import annotations

import hashlib
import io
import tarfile
import tomllib
import zipfile
from pathlib import Path

import pytest

from archlock.core import sdist

SDISTS = Path(__file__).resolve().parents[1] / "fixtures" / "sdists"


def pack(top: str, fmt: str = "tar.gz") -> tuple[str, bytes]:
    """The fixture folder `top` as an sdist archive (fixed timestamps and owners)."""
    root = SDISTS / top
    files = sorted(p for p in root.rglob("*") if p.is_file())
    buffer = io.BytesIO()
    if fmt == "zip":
        with zipfile.ZipFile(buffer, "w") as archive:
            for path in files:
                info = zipfile.ZipInfo(f"{top}/{path.relative_to(root).as_posix()}")
                archive.writestr(info, path.read_bytes())
    else:
        with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
            for path in files:
                data = path.read_bytes()
                member = tarfile.TarInfo(f"{top}/{path.relative_to(root).as_posix()}")
                member.size, member.mtime = len(data), 0
                archive.addfile(member, io.BytesIO(data))
    return f"{top}.{fmt}", buffer.getvalue()


@pytest.mark.parametrize(
    ("top", "fmt", "kind", "why"),
    [
        ("pure_runtime-4.9.3", "tar.gz", sdist.PURE, "only Python sources"),
        ("hatch_pure-1.0", "zip", sdist.PURE, "only Python sources"),
        (
            "fused_optim-0.0.3",
            "tar.gz",
            sdist.TORCH_EXTENSION,
            "its setup.py builds with torch.utils.cpp_extension",
        ),
        ("torch_requires-0.2", "tar.gz", sdist.TORCH_EXTENSION, "build requirements name torch"),
        ("c_speedups-1.0", "tar.gz", sdist.COMPILED, "compiled-language sources (src/fast.c)"),
        ("cython_requires-2.0", "zip", sdist.COMPILED, "build requirements name cython"),
    ],
)
def test_each_kind_is_told_from_the_archive(top: str, fmt: str, kind: str, why: str) -> None:
    found = sdist.classify(*pack(top, fmt))
    assert found.kind == kind
    assert why in found.why


def test_cuda_sources_alone_make_a_torch_extension() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("k-1/k/__init__.py", "")
        archive.writestr("k-1/csrc/k.cu", "__global__ void k() {}")
    found = sdist.classify("k-1.zip", buffer.getvalue())
    assert (found.kind, found.why) == (sdist.TORCH_EXTENSION, "it ships CUDA sources (csrc/k.cu)")


def test_an_archive_that_is_not_one_is_unreadable() -> None:
    with pytest.raises(sdist.UnreadableSdist, match=r"x-1.tar.gz: not a readable sdist archive"):
        sdist.classify("x-1.tar.gz", b"<html>not found</html>")


def pylock_for(packages: dict[str, tuple[str, bytes]]) -> str:
    parts = ['lock-version = "1.0"\ncreated-by = "uv"\n']
    for name, (filename, data) in packages.items():
        sha = hashlib.sha256(data).hexdigest()
        parts.append(
            f'\n[[packages]]\nname = "{name}"\nversion = "1"\n'
            f'sdist = {{ url = "https://files.example/{filename}", '
            f'hashes = {{ sha256 = "{sha}" }} }}\n'
        )
    parts.append(
        '\n[[packages]]\nname = "six"\nversion = "1.16.0"\n'
        'wheels = [{ url = "https://files.example/six-1.16.0-py2.py3-none-any.whl" }]\n'
    )
    return "".join(parts)


def test_lock_records_each_source_only_packages_kind_in_the_pylock() -> None:
    archives = {
        "pure-runtime": pack("pure_runtime-4.9.3"),
        "fused-optim": pack("fused_optim-0.0.3"),
    }
    served = {f"https://files.example/{f}": d for f, d in archives.values()}
    fetched: list[str] = []

    def fetch(url: str) -> bytes:
        fetched.append(url)
        return served[url]

    text, notes = sdist.annotate(pylock_for(archives), fetch)
    assert notes == []
    packages = {p["name"]: p for p in tomllib.loads(text)["packages"]}
    assert sdist.recorded(packages["pure-runtime"]) == sdist.PURE
    assert sdist.recorded(packages["fused-optim"]) == sdist.TORCH_EXTENSION
    assert "cpp_extension" in sdist.recorded_why(packages["fused-optim"])
    assert sdist.recorded(packages["six"]) is None and len(fetched) == 2  # wheels: not fetched
    again, _ = sdist.annotate(text, fetch)
    assert again == text and len(fetched) == 2  # recorded once, never twice


def test_a_hash_mismatch_or_a_failed_fetch_leaves_the_package_unclassified() -> None:
    good = pack("pure_runtime-4.9.3")
    lock = pylock_for({"pure-runtime": good, "c-speedups": pack("c_speedups-1.0")})

    def fetch(url: str) -> bytes:
        if url.endswith("c_speedups-1.0.tar.gz"):
            raise sdist.UnreadableSdist(f"{url}: could not be fetched (timed out)")
        return good[1] + b"tampered"

    text, notes = sdist.annotate(lock, fetch)
    assert text == lock
    assert notes == [
        "pure-runtime 1: source-only, kind unknown: "
        "https://files.example/pure_runtime-4.9.3.tar.gz: sha256 differs from the lock's",
        "c-speedups 1: source-only, kind unknown: "
        "https://files.example/c_speedups-1.0.tar.gz: could not be fetched (timed out)",
    ]


def test_only_web_and_file_urls_are_fetched() -> None:
    with pytest.raises(sdist.UnreadableSdist, match="not an http"):
        sdist.fetch_url("ftp://files.example/x-1.tar.gz")


def test_file_urls_are_read(tmp_path: Path) -> None:
    filename, data = pack("hatch_pure-1.0", "zip")
    (tmp_path / filename).write_bytes(data)
    assert sdist.fetch_url((tmp_path / filename).as_uri()) == data
