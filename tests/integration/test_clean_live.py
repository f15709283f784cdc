"""archlock clean against the real engine: a labelled image of a throwaway project is listed by
--dry-run (and stays), then removed by clean; every other image stays.

Only the `images` part is run for real: the other parts act on the whole engine and registry
(dangling layers, build cache, registry blobs), which other projects on the machine share; their
planning is unit-tested, and --dry-run runs them here (it removes nothing).
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from archlock.core import docker as du

pytestmark = [pytest.mark.integration, pytest.mark.docker]

ENV = "linux-amd64-cuda"  # a shipped default env: the project below has no envs/ of its own


def engine_images() -> set[str]:
    return set(du.output(["image", "ls", "-a", "-q", "--no-trunc"]).split())


def archlock(project: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "archlock", "--project", str(project), "clean", *argv],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


@pytest.fixture
def labelled_image(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A project named uniquely, and one image built with the labels its Dockerfiles set."""
    if not du.engine_running():
        pytest.fail("the Docker engine is not running: run scripts/local-infra.sh")
    name = f"cleantest-{uuid.uuid4().hex[:12]}"
    project = tmp_path / "project"
    project.mkdir()
    (project / "requirements.txt").write_text("packaging\n")
    (project / "pyproject.toml").write_text(f'[tool.archlock.render]\nimage = "{name}"\n')
    context = tmp_path / "context"
    context.mkdir()
    (context / "marker").write_text(name * 1000)  # unique content: no earlier layer matches
    (context / "Dockerfile").write_text(
        "FROM scratch\nCOPY marker /marker\n"
        f'LABEL io.archlock.env="{ENV}" org.opencontainers.image.title="{name} {ENV}"\n'
    )
    tag = f"{name}:dev-{ENV}"
    done = du.run(["build", "-q", "-t", tag, str(context)], timeout=300)
    assert done.ok, done.why()
    yield project, tag
    du.remove_images(tag)


def test_dry_run_lists_the_image_then_clean_removes_only_it(
    labelled_image: tuple[Path, str],
) -> None:
    project, tag = labelled_image
    image_id = du.inspect_image(tag)["Id"]  # type: ignore[index]
    before = engine_images()

    dry = archlock(project, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    print(dry.stdout)
    assert f"archlock clean: images: would remove {tag} (" in dry.stdout
    assert "archlock clean: would free: " in dry.stdout
    assert engine_images() == before  # a dry run removes nothing

    done = archlock(project, "--only", "images")
    assert done.returncode == 0, done.stderr
    print(done.stdout)
    assert f"archlock clean: images: removed {tag}" in done.stdout
    assert not du.image_exists(tag)
    assert engine_images() == before - {image_id}  # nothing else touched
