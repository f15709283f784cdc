"""An image runs real training code: the run user (uid 10001) writes data and checkpoints in the
project folder, files in HOME and in every cache the image points at; the build context leaves
out what .gitignore and the ML defaults name; and no layer repeats the source to change its owner.

A tiny project (an empty lock: nothing to download) rendered with archlock's templates and built
for linux/amd64 by the engine's BuildKit on the local debootstrap base from scripts/local-infra.sh
(shared layer cache: the base, uv). The project's own run goes through verify's runner
(`/bin/sh -c` in the container), with `&&` and a pipe, as a user would write it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import uuid
from pathlib import Path

import pytest
from endtoend import ca_bundle, docker

from archlock.build import render
from archlock.verify import runs
from archlock.verify.targets import ImageTarget

pytestmark = [pytest.mark.docker, pytest.mark.integration]

ENV = "linux-amd64-cpu"
LOCK = f"envs/locks/{ENV}.txt"
CACHES = ("XDG_CACHE_HOME", "TORCH_HOME", "HF_HOME", "WANDB_DIR")
LEFT_OUT = ("data/shakespeare/train.bin", "bigdata", "notes.log", "old.ckpt", "wandb")
PREPARE = """\
import pathlib
here = pathlib.Path(__file__).parent
(here / "meta.txt").write_text("vocab 65")
print("prepared", here)
"""
TRAIN = """\
import json, os, pathlib, sys
facts = {"uid": os.getuid(), "cwd": os.getcwd(), "home": os.environ["HOME"],
         "present": [p for p in LEFT_OUT if os.path.exists(p)],
         "kept": os.path.exists("data/shakespeare/prepare.py"),
         "caches": {k: os.environ[k] for k in CACHES}}
pathlib.Path("data/shakespeare/train.bin").write_bytes(b"\\0" * 4096)
pathlib.Path("checkpoints").mkdir(exist_ok=True)
pathlib.Path("checkpoints/ckpt.pt").write_bytes(b"weights")
pathlib.Path(os.environ["HOME"], "history.txt").write_text("home")
for key in facts["caches"]:
    folder = pathlib.Path(os.environ[key], "archlock-probe")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "entry").write_text(key)
print(json.dumps(facts))
sys.stderr.write("warming up\\n")  # one write: print's text and newline are two
print("loss 0.5")
""".replace("LEFT_OUT", repr(LEFT_OUT)).replace("CACHES", repr(CACHES))


def make_project(root: Path) -> str:
    """The project's files; returns the sha256 of its (empty) lock."""
    (root / "data" / "shakespeare").mkdir(parents=True)
    (root / "data" / "shakespeare" / "prepare.py").write_text(PREPARE)
    (root / "data" / "shakespeare" / "train.bin").write_bytes(b"\1" * 1000)
    (root / "bigdata").mkdir()
    (root / "bigdata" / "shard-0").write_bytes(b"\2" * 1000)
    (root / "wandb").mkdir()
    (root / "wandb" / "run.log").write_text("old run")
    (root / "notes.log").write_text("old notes")
    (root / "old.ckpt").write_bytes(b"\3" * 1000)
    (root / "train.py").write_text(TRAIN)
    # 2 MB of source, so a second copy of it (a chown layer) would show in the layer sizes
    (root / "vocab.txt").write_text("".join(f"token-{n:07d}\n" for n in range(150_000)))
    (root / ".gitignore").write_text("*.log\n/bigdata/\n")
    lock = root / LOCK
    lock.parent.mkdir(parents=True)
    lock.write_text("# an env without packages\n")
    return hashlib.sha256(lock.read_bytes()).hexdigest()


def render_and_build(root: Path, lock_sha: str, local: dict[str, str], tag: str) -> None:
    target = render.ImageTarget(
        env=ENV,
        platforms=("linux/amd64",),
        python="3.11",
        accelerator="cpu",
        base_image="debian:bookworm-slim",  # the build arg below points it at the local base
        lock_path=LOCK,
        lock_sha256=lock_sha,
        install_project=False,
        runner="ubuntu-24.04",
    )
    settings = render.RenderSettings(image_name="writable", uv_image=local["ARCHLOCK_UV_IMAGE"])
    for path, text in render.render_files(root, settings, [target]).items():
        if path.parent.name == "docker" and path.name.startswith(ENV):  # Dockerfile, .dockerignore
            path.parent.mkdir(exist_ok=True)
            path.write_text(text)
    command = ["docker", "build", "--platform", "linux/amd64", "-f", f"docker/{ENV}.Dockerfile"]
    command += ["--build-arg", f"BASE_IMAGE={local['ARCHLOCK_BASE_IMAGE']}"]
    command += ["--build-arg", f"UV_IMAGE={local['ARCHLOCK_UV_IMAGE']}", "-t", tag]
    bundle = ca_bundle()
    command += ["--secret", f"id=ca-bundle,src={bundle}"] if bundle else []
    done = subprocess.run(
        [*command, "."],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
        env={**os.environ, "DOCKER_BUILDKIT": "1"},
    )
    assert done.returncode == 0, done.stderr[-4000:]


def test_the_run_user_writes_in_the_project_home_and_caches(
    infra: dict[str, str],
    tmp_path: Path,
) -> None:
    root = tmp_path / "trainer"
    root.mkdir()
    tag = f"archlock-it-writable:{uuid.uuid4().hex[:12]}"
    render_and_build(root, make_project(root), infra, tag)
    try:
        line = (
            "mkdir -p out && python data/shakespeare/prepare.py "
            "&& python train.py | tee out/train.txt && ls -n checkpoints data/shakespeare"
        )
        metric = runs.compile_metric(r"loss ([0-9.]+)", "test")
        settings = runs.RunSettings((line,), metric, 1e-3, 300.0)
        target = ImageTarget(tag, "linux/amd64", "", root)  # run commands mount no scripts
        check = runs.run_checks(settings, root, target)["run_1"]
        assert check["status"] == "pass", check
        assert check["metric"] == 0.5 and "warming up" in check["tail"]  # through the pipe
        # stdout and stderr are two streams merged at write granularity: find the facts anywhere
        found = re.search(r'\{"uid".*?\}\}', check["tail"])
        assert found, check["tail"]
        facts = json.loads(found.group(0))
        assert (facts["uid"], facts["cwd"], facts["home"]) == (10001, "/app", "/home/app")
        assert facts["present"] == [] and facts["kept"] is True  # context: left out, scripts kept
        assert facts["caches"] == {
            "XDG_CACHE_HOME": "/home/app/.cache",
            "TORCH_HOME": "/home/app/.cache/torch",
            "HF_HOME": "/home/app/.cache/huggingface",
            "WANDB_DIR": "/home/app",
        }
        assert "prepared /app/data/shakespeare" in check["tail"]
        assert " 10001 10001 " in check["tail"]  # ls -n: the files written are the user's
        assert_no_layer_repeats_the_source(tag, root)
    finally:
        docker("image", "rm", tag)


def assert_no_layer_repeats_the_source(tag: str, root: Path) -> None:
    """The source layer is about the size of the source, and nothing after it adds more than a
    few kB (a `chown -R` layer would add the whole source again)."""
    history = docker("history", "--no-trunc", "--human=false", "--format", "{{json .}}", tag)
    layers = [json.loads(line) for line in history.splitlines()]  # newest first
    # BuildKit records the instruction without its flags: "COPY /src/ / # buildkit"
    source = next(i for i, x in enumerate(layers) if str(x["CreatedBy"]).startswith("COPY /src/ /"))
    source_size = int(layers[source]["Size"])
    vocab = (root / "vocab.txt").stat().st_size
    assert vocab <= source_size < vocab + 200_000
    after = sum(int(x["Size"]) for x in layers[:source])
    assert after < 10_000, layers[:source]
    assert not any("chown" in str(x.get("CreatedBy")) and "COPY" not in str(x) for x in layers)
