"""A report taken in an archlock image names the image's ID (`archlock verify --image` records it):
rebuild that env's image from this checkout and compare. The ID is the sha256 of the image
config, which names every layer's digest: the same ID is the same bits, the strongest "reproduced"
there is; another ID means other inputs (the lock, the source, the base or archlock's templates).
"""

from __future__ import annotations

from typing import Any

from archlock.build import build
from archlock.core.project import Project
from archlock.repro import run as rr

TAG = "archlock-repro:rebuilt-{sha}-{env}"


def image_of(report: dict[str, Any]) -> dict[str, Any] | None:
    """The report's image (tag, id, platform, digest) when it was taken in one."""
    image = report.get("image")
    if isinstance(image, dict) and str(image.get("id", "")).startswith("sha256:"):
        return image
    return None


def rebuild(
    image: dict[str, Any], report_sha: str, project: Project, env: str, options: rr.Options
) -> dict[str, Any]:
    """Build `env`'s image from this checkout and compare its ID with the report's."""
    tag = TAG.format(sha=report_sha[:12], env=env)
    sets = [f"{env}.tags={tag}"]
    if options.base:
        sets.append(f"*.args.BASE_IMAGE={options.base}")
    print(f"\nrebuilding {env}'s image from this checkout, to compare with {image['id']}")
    report = build.build(
        build.BuildOptions(
            project=project.root,
            targets=(env,),
            sets=tuple(sets),
            env={"UV_IMAGE": options.uv_image},
            ca_bundle=options.ca_bundle,
            network="host",
            quiet=True,
            timeout=options.timeout,
        )
    )
    rebuilt = report.images[0].image_id
    same = rebuilt == image["id"]
    print(f"  the report's image: {image['id']} ({image.get('tag') or 'untagged'})")
    print(f"  rebuilt:            {rebuilt} ({tag})")
    if same:
        print("Image: bit-identical: the same config and layers, rebuilt from this checkout")
    else:
        print(
            "Image: differs: the report's image was built from other inputs (the lock, the "
            "source, the base image or archlock's templates); the drift above names the "
            "packages that differ"
        )
    return {"report_id": image["id"], "rebuilt_id": rebuilt, "tag": tag, "identical": same}
