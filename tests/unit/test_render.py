"""archlock render: templates -> Dockerfiles, bake file, workflow; validation and drift."""

from __future__ import annotations

import dataclasses
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml
from rendered_model import Dockerfile, Instruction, Run, logical_lines, parse, parse_bake

from archlock.build import layers, render
from archlock.core import docker as du
from archlock.core.fsutil import GENERATED_MARK
from archlock.core.project import Project
from archlock.errors import ConfigError

SHA = "ab" * 32
ENTRY = "numpy==2.4.6 --hash=sha256:" + "c" * 64
STUBS = {
    "/tmp/archlock/uv",
    "/tmp/archlock/cache",
    "/tmp/archlock/ca-bundle",
    "/tmp/archlock/work",
    "/tmp/archlock/bytecode",
}


def make_target(**changes: object) -> render.ImageTarget:
    values: dict[str, object] = dict(
        env="linux-arm64-cpu",
        platforms=("linux/arm64",),
        python="3.11",
        accelerator="cpu",
        base_image="debian:bookworm-slim",
        lock_path="envs/locks/linux-arm64-cpu.txt",
        lock_sha256=SHA,
        install_project=True,
        runner="ubuntu-24.04-arm",
        layers=(layers.Layer("rest", (), 10, (ENTRY,)),),
    )
    values.update(changes)
    return render.ImageTarget(**values)  # type: ignore[arg-type]


def cuda_target() -> render.ImageTarget:
    return make_target(
        env="linux-amd64-cuda",
        platforms=("linux/amd64",),
        accelerator="cuda",
        lock_path="envs/locks/linux-amd64-cuda.txt",
        runner="ubuntu-24.04",
        base_image="debian:bookworm-slim@sha256:" + "0" * 64,
    )


@pytest.fixture
def settings() -> render.RenderSettings:
    return render.RenderSettings(image_name="demo")


@pytest.fixture
def files(tmp_path: Path, settings: render.RenderSettings) -> dict[str, str]:
    out = render.render_files(tmp_path, settings, [cuda_target(), make_target()])
    return {p.relative_to(tmp_path).as_posix(): text for p, text in out.items()}


def dockerfile(files: dict[str, str], env: str = "linux-arm64-cpu") -> Dockerfile:
    return parse(files[f"docker/{env}.Dockerfile"])


def rendered(tmp_path: Path, settings: render.RenderSettings, target: render.ImageTarget) -> str:
    return render.render_files(tmp_path, settings, [target])[
        tmp_path / f"docker/{target.env}.Dockerfile"
    ]


def install_step(run: Run) -> list[str]:
    """The words of the `uv pip install` step of a RUN."""
    (step,) = [step for step in run.steps if step.split(" ", 1)[0].endswith("uv")]
    return shlex.split(step)


def venv_runs(parsed: Dockerfile) -> list[Run]:
    """The runtime stage's RUNs that install a layer of the venv (uv mounted)."""
    return [run for run in parsed.stage("runtime").runs() if run.mounts]


def mount(run: Run, **wanted: str) -> dict[str, str]:
    """The one mount of `run` with these keys and values."""
    (found,) = [m for m in run.mounts if all(m.get(k) == v for k, v in wanted.items())]
    return found


# -- outputs ------------------------------------------------------------------------------------
def test_renders_one_dockerfile_per_env_plus_bake_and_workflow(files: dict[str, str]) -> None:
    assert sorted(files) == [
        ".github/workflows/archlock-images.yml",
        "docker/docker-bake.hcl",
        "docker/linux-amd64-cuda.Dockerfile",
        "docker/linux-amd64-cuda.Dockerfile.dockerignore",
        "docker/linux-arm64-cpu.Dockerfile",
        "docker/linux-arm64-cpu.Dockerfile.dockerignore",
    ]
    for name, text in files.items():
        assert GENERATED_MARK in text.splitlines()[0], name
        assert "Regenerate with: nox -s render" in text.splitlines()[1], name


def test_rendering_is_deterministic(tmp_path: Path, settings: render.RenderSettings) -> None:
    first = render.render_files(tmp_path, settings, [make_target()])
    second = render.render_files(tmp_path, settings, [make_target()])
    assert first == second


def test_dockerfile_installs_the_lock_before_the_source(files: dict[str, str]) -> None:
    text = files["docker/linux-arm64-cpu.Dockerfile"]
    assert not text.startswith("# syntax")  # a syntax line makes BuildKit fetch a frontend image
    parsed = parse(text)
    assert list(parsed.stages) == [
        *("uv", "uv-build", "etc", "source", "bytecode-1", "runtime", "project", "image")
    ]
    runtime, image = parsed.stage("runtime"), parsed.stage("image")
    # what every RUN mounts over is there before the first RUN: no mount point dates a folder
    assert runtime.instructions[:2] == [
        Instruction("ARG", "SOURCE_DATE_EPOCH=315532800"),
        Instruction("COPY", "--from=etc /stubs/ /"),
    ]
    venv = runtime.runs()[0]
    # /app and HOME are the run user's without a second copy of the source (no chown -R layer)
    assert venv.steps[:2] == (
        "touch /tmp/.archlock-mark",
        "python3.11 -m venv --without-pip /opt/venv",
    )
    assert "install -d -o 10001 -g 10001 /app" in venv.steps
    assert list(venv.steps[-3:]) == [
        "find / -xdev -newer /tmp/.archlock-mark -exec touch --no-dereference "
        '--date="@$SOURCE_DATE_EPOCH" {} +',
        "rm /tmp/.archlock-mark",
        'touch --date="@$SOURCE_DATE_EPOCH" /tmp',
    ]
    # each layer of the venv is a RUN of its own, in the image's stage: no stage copies it
    (install,) = venv_runs(parsed)
    assert install.mounts == (
        {"type": "bind", "from": "uv-build", "source": "/uv", "target": "/tmp/archlock/uv"},
        {"type": "cache", "id": "/root/.cache/uv", "target": "/tmp/archlock/cache"},
        {"type": "secret", "id": "ca-bundle", "target": "/tmp/archlock/ca-bundle"},
        {"type": "tmpfs", "target": "/tmp/archlock/work"},
        {
            "type": "bind",
            "from": "bytecode-1",
            "source": "/bytecode",
            "target": "/tmp/archlock/bytecode",
        },
    )
    assert {m["target"] for m in install.mounts} == STUBS
    assert f'"{ENTRY}"' in install.steps[0]  # the layer's lock entries, in its own RUN
    words = install_step(install)
    assert words[:8] == [
        "/tmp/archlock/uv",
        "pip",
        "install",
        "--python",
        "/opt/venv/bin/python",
        "--require-hashes",
        "--no-deps",
        "--no-build",
    ]
    assert words[-2:] == ["-r", "/tmp/archlock/work/requirements.txt"]
    # the .pyc come from the bytecode stage, after the files uv added are listed: they are dated
    added = next(i for i, step in enumerate(install.steps) if "comm -13" in step)
    assert install.steps[added + 1] == "cp --recursive /tmp/archlock/bytecode/. /opt/venv/"
    assert install.steps[-1].startswith("{ cat /tmp/archlock/work/added; find /opt/venv -newer")
    assert install.steps[-1].endswith("touch --no-dereference --date=@315532800")
    assert runtime.find("RUN") < runtime.find("SHELL") < runtime.find("ENV", "VIRTUAL_ENV=")
    assert not any("chown" in step for run in runtime.runs() for step in run.steps)
    assert not any(run.mounts for run in image.runs())  # no mount traces
    assert runtime.find("ENV", "VIRTUAL_ENV=") < runtime.find("COPY", "--from=source")
    assert [i.args for i in runtime.all("COPY")] == [
        "--from=etc /stubs/ /",
        "--from=source --chown=10001:10001 /src/ /",
    ]
    # the project is installed in its own stage; the image takes the files it added
    assert [i.args for i in image.all("COPY")] == ["--from=project /opt/project/ /"]
    assert image.all("USER") == [Instruction("USER", "10001:10001")]
    env = {**runtime.env(), **image.env()}
    assert env["VIRTUAL_ENV"] == "/opt/venv" and env["PATH"] == "/opt/venv/bin:$PATH"
    assert {key: env[key] for key in ("HOME", "XDG_CACHE_HOME", "TORCH_HOME", "HF_HOME")} == {
        "HOME": "/home/app",
        "XDG_CACHE_HOME": "/home/app/.cache",
        "TORCH_HOME": "/home/app/.cache/torch",
        "HF_HOME": "/home/app/.cache/huggingface",
    }
    assert env["WANDB_DIR"] == "/home/app"
    # the cache variables are set before the run user takes over
    assert image.find("ENV", "HOME=") < image.find("USER")


def test_the_stubs_stage_makes_every_mount_target_of_the_venv_layers(files: dict[str, str]) -> None:
    (stubs,) = dockerfile(files).stage("etc").runs()
    made = " ".join(stubs.steps)
    for target in STUBS:
        assert target.replace("/tmp/", "/stubs/tmp/") in made
    assert "chmod 1777 /stubs/tmp" in stubs.steps  # copied onto /tmp, it keeps /tmp's mode


def test_the_source_stage_dates_the_checkout_and_sets_its_modes(files: dict[str, str]) -> None:
    source = dockerfile(files).stage("source")
    assert (source.base, source.platform) == ("${BASE_IMAGE}", "$BUILDPLATFORM")
    assert source.all("COPY") == [Instruction("COPY", ". /src/app")]
    (dating,) = source.runs()
    assert list(dating.steps) == [
        "chmod -R u+rwX,go+rX,go-w /src",
        'find /src -exec touch --no-dereference --date="@$SOURCE_DATE_EPOCH" {} +',
    ]


def test_the_project_stage_keeps_only_what_the_install_added(files: dict[str, str]) -> None:
    project = dockerfile(files).stage("project")
    assert (project.base, project.platform) == ("runtime", None)
    (install,) = project.runs()
    assert install.steps[2] == "find /opt/venv -not -type d | sort > /tmp/archlock-before"
    assert install.steps[3] == "uv pip install --python /opt/venv/bin/python --no-deps /app"
    steps = list(install.steps)
    drop = next(i for i, step in enumerate(steps) if "-name uv_cache.json" in step)
    added = next(i for i, step in enumerate(steps) if "comm -13 /tmp/archlock-before -" in step)
    assert 3 < drop < added  # uv's record of the install time goes before the files are listed
    assert install.steps[-1] == (
        'find /opt/project -exec touch --no-dereference --date="@$SOURCE_DATE_EPOCH" {} +'
    )


def test_each_layer_of_the_plan_is_one_run_in_order(
    tmp_path: Path, settings: render.RenderSettings
) -> None:
    plan = (
        layers.Layer("torch", ("torch",), 900, ("torch==2.10.0 --hash=sha256:aa",)),
        layers.Layer(
            "nvidia", ("nvidia-nccl-cu12",), 800, ("nvidia-nccl-cu12==2 --hash=sha256:bb",)
        ),
        layers.Layer("pkg-triton", ("triton",), 100),  # nothing locked: no RUN
        layers.Layer("rest", (), 10, (ENTRY,)),
    )
    text = rendered(tmp_path, settings, make_target(layers=plan))
    installs = venv_runs(parse(text))
    assert [run.steps[0].split('"')[1] for run in installs] == [
        "torch==2.10.0 --hash=sha256:aa",
        "nvidia-nccl-cu12==2 --hash=sha256:bb",
        ENTRY,
    ]
    assert "# torch: 1 package\n" in text and "pkg-triton" not in text


def test_uv_runs_on_the_build_platform_and_installs_the_targets_wheels(
    files: dict[str, str],
) -> None:
    parsed = dockerfile(files)
    uv_build, runtime = parsed.stage("uv-build"), parsed.stage("runtime")
    assert (uv_build.base, uv_build.platform) == ("${UV_IMAGE}", "$BUILDPLATFORM")
    assert (runtime.base, runtime.platform) == ("${BASE_IMAGE}", None)
    (install,) = venv_runs(parsed)
    assert mount(install, target="/tmp/archlock/uv")["from"] == "uv-build"
    words = install_step(install)
    assert words[words.index("--python-platform") + 1] == "aarch64-manylinux_2_28"
    assert words[words.index("--python-version") + 1] == "3.11" and "--no-build" in words


def test_an_env_without_wheels_runs_the_targets_uv_and_says_why(
    tmp_path: Path, settings: render.RenderSettings
) -> None:
    target = make_target(
        deps_on_build_platform=False, emulated_because="no linux/arm64 wheel for oldlib"
    )
    parsed = parse(rendered(tmp_path, settings, target))
    assert "uv-build" not in parsed.stages
    assert all(stage.platform is None for stage in parsed.stages.values())
    (install,) = venv_runs(parsed)
    assert mount(install, target="/tmp/archlock/uv")["from"] == "uv"
    assert "--python-platform" not in install_step(install)
    assert "no linux/arm64 wheel for oldlib." in parsed.comments
    assert not any(name.startswith("bytecode-") for name in parsed.stages)
    (compiled,) = [step for step in install.steps if "compileall" in step]
    assert "--invalidation-mode checked-hash -i /tmp/archlock/work/sources" in compiled


def test_each_layer_has_its_bytecode_compiled_on_the_build_platform(
    tmp_path: Path, settings: render.RenderSettings
) -> None:
    plan = (
        layers.Layer("torch", ("torch",), 900, ("torch==2.10.0 --hash=sha256:aa",)),
        layers.Layer("rest", (), 10, (ENTRY,)),
    )
    parsed = parse(rendered(tmp_path, settings, make_target(layers=plan)))
    installs = venv_runs(parsed)
    for index, install in enumerate(installs, start=1):
        stage = parsed.stage(f"bytecode-{index}")
        assert (stage.base, stage.platform) == ("${BASE_IMAGE}", "$BUILDPLATFORM")
        (run,) = stage.runs()
        # one stage per layer, mounted only by its layer: a bump recompiles its own group
        assert mount(install, target="/tmp/archlock/bytecode")["from"] == stage.name
        assert run.steps[0] == "mkdir /bytecode"
        # the same entries, installed with the same uv for the same platform
        assert install.steps[0].split('"')[1] in " ".join(run.steps)
        (scratch_install,) = [step for step in run.steps if step.startswith("/tmp/archlock/uv")]
        words = shlex.split(scratch_install)
        assert words[words.index("--python-platform") + 1] == "aarch64-manylinux_2_28"
        assert words[-2:] == ["-r", "$scratch/requirements.txt"]
        (compiled,) = [step for step in run.steps if "compileall" in step]
        # hash-checked, as if the files stood at /opt/venv; only the .pyc are kept
        assert "--invalidation-mode checked-hash" in compiled
        assert '-s "$scratch/venv" -p /opt/venv "$scratch/venv"' in compiled
        assert run.steps[-1].startswith("""find "$scratch/venv" -path '*/__pycache__/*.pyc'""")
        assert "UV_LINK_MODE=hardlink" in " ".join(run.steps)  # the scratch venv costs no copy


PYLOCK_WHEELS = {
    "torch": "torch-2.10.0-cp311-cp311-manylinux_2_28_aarch64.whl",
    "filelock": "filelock-4.2.11-py3-none-any.whl",
    "markupsafe": "markupsafe-3.0.4-cp311-cp311-manylinux2014_aarch64.manylinux_2_17_aarch64.whl",
}


def pylock(tmp_path: Path, wheels: dict[str, str | None]) -> Path:
    parts = ['lock-version = "1.0"\n']
    for name, wheel in wheels.items():
        parts.append(f'[[packages]]\nname = "{name}"\nversion = "1"\n')
        if wheel:
            parts.append(
                f'wheels = [{{ url = "https://files.example/{wheel}", '
                f'hashes = {{ sha256 = "{"0" * 64}" }} }}]\n'
            )
    path = tmp_path / "pylock.env.toml"
    path.write_text("".join(parts))
    return path


def test_wheels_for_the_target_let_the_deps_stage_run_on_the_build_platform(tmp_path: Path) -> None:
    from archlock.core.platforms import PLATFORMS

    arm, amd = PLATFORMS["linux-arm64"], PLATFORMS["linux-amd64"]
    assert render.targets_without_wheels(pylock(tmp_path, PYLOCK_WHEELS), arm) == ""
    lacking = render.targets_without_wheels(
        pylock(tmp_path, {**PYLOCK_WHEELS, "oldlib": None}), arm
    )
    assert lacking == "no linux/arm64 wheel for oldlib"
    assert (
        render.targets_without_wheels(pylock(tmp_path, PYLOCK_WHEELS), amd)
        == "no linux/amd64 wheel for markupsafe, torch"
    )
    assert "is missing" in render.targets_without_wheels(tmp_path / "absent.toml", arm)


def test_a_pure_python_sdist_no_longer_forces_emulation(tmp_path: Path) -> None:
    """The lock records what a source-only package is (core/sdist.py): a pure-Python sdist
    builds the same wheel on any CPU, so the build platform's uv installs the venv; one that
    compiles, or one the lock could not classify, still takes the target's uv, emulated."""
    from archlock.core.platforms import PLATFORMS

    arm = PLATFORMS["linux-arm64"]
    path = pylock(tmp_path, {**PYLOCK_WHEELS, "antlr4-python3-runtime": None, "oldlib": None})
    text = path.read_text()
    for name, kind in (("antlr4-python3-runtime", "pure-python"), ("oldlib", "compiled")):
        head = f'name = "{name}"\nversion = "1"\n'
        text = text.replace(head, head + f'tool.archlock = {{ sdist-kind = "{kind}" }}\n')
    path.write_text(text)
    assert render.targets_without_wheels(path, arm) == "no linux/arm64 wheel for oldlib"
    path.write_text(text.replace('"compiled"', '"pure-python"'))
    assert render.targets_without_wheels(path, arm) == ""
    assert render.pure_sdists(path) == ("antlr4-python3-runtime", "oldlib")
    path.write_text(text.replace('tool.archlock = { sdist-kind = "compiled" }\n', ""))
    assert render.targets_without_wheels(path, arm) == "no linux/arm64 wheel for oldlib"


def test_image_targets_carry_the_pure_sdists_their_deps_stage_builds(
    tmp_path: Path, fixtures: Path
) -> None:
    import shutil

    from archlock.core.project import Project

    shutil.copytree(fixtures / "projects" / "requirements-app", tmp_path / "app")
    project = Project.load(tmp_path / "app")
    project.locks_dir.mkdir(parents=True)
    for env in ("linux-amd64-cuda", "linux-arm64-cpu"):
        project.env_lock(env).write_text("antlr4-python3-runtime==4.9.3\n")
        path = pylock(tmp_path, {"six": "six-1.16.0-py2.py3-none-any.whl"})
        pure = 'tool.archlock = { sdist-kind = "pure-python" }\n'
        text = f'[[packages]]\nname = "antlr4-python3-runtime"\nversion = "1"\n{pure}'
        project.env_pylock(env).write_text(path.read_text() + text)
    targets, notes = render.image_targets(project, render.load_settings(project))
    assert [t.env for t in targets] == ["linux-amd64-cuda", "linux-arm64-cpu"]
    assert not any("emulated" in note for note in notes), notes
    for target in targets:
        assert target.deps_on_build_platform and target.emulated_because == ""
        assert target.sdists_built_here == ("antlr4-python3-runtime",)
        # uv may build the sdist on the build platform: --no-build would refuse it
        (install,) = venv_runs(parse(render.dockerfile_text(target, "uv", "app")))
        assert "--no-deps" in install_step(install)
        assert "--no-build" not in install_step(install)
        wheels_only = dataclasses.replace(target, sdists_built_here=())
        (install,) = venv_runs(parse(render.dockerfile_text(wheels_only, "uv", "app")))
        assert "--no-build" in install_step(install)


@pytest.mark.parametrize(
    ("content", "said"),
    [
        (b"packages = 5\n", "packages: must be an array of tables"),
        (b'[[packages]]\nname = "x"\nwheels = 5\n', "wheels: must be an array of tables"),
        (b'[[packages]]\nname = "x"\nwheels = [1]\n', "wheels: must be an array of tables"),
        (b'lock-version = "1.0"\n# \xff\xfe\n', "pylock file is not UTF-8 text"),
        (b"packages = [\n", "not valid TOML"),
    ],
)
def test_a_malformed_pylock_is_one_line_naming_the_file(
    tmp_path: Path, content: bytes, said: str
) -> None:
    from archlock.core.platforms import PLATFORMS

    path = tmp_path / "pylock.env.toml"
    path.write_bytes(content)
    with pytest.raises(ConfigError) as caught:
        render.targets_without_wheels(path, PLATFORMS["linux-arm64"])
    line = caught.value.line()
    assert line.startswith(f"{path}: ") and said in line and "archlock lock" in line
    assert "\n" not in line


def test_dockerfile_labels_and_settings(files: dict[str, str]) -> None:
    parsed = dockerfile(files)
    image = parsed.stage("image")  # the last stage: the image that is tagged
    labels = image.labels()
    assert labels["io.archlock.lock-sha256"] == SHA
    assert labels["io.archlock.env"] == "linux-arm64-cpu"
    assert labels["org.opencontainers.image.source"] == "$SOURCE_URL"
    assert labels["org.opencontainers.image.revision"] == "$REVISION"
    assert parsed.global_args == {
        "BASE_IMAGE": "debian:bookworm-slim",
        "UV_IMAGE": render.DEFAULT_UV_IMAGE,
    }
    for run in venv_runs(parsed):
        assert {
            "type": "secret",
            "id": "ca-bundle",
            "target": "/tmp/archlock/ca-bundle",
        } in run.mounts
    for run in parsed.stage("project").runs():
        assert {"type": "secret", "id": "ca-bundle"} in run.mounts
    # the revision labels come last: a new commit changes no layer above them
    assert image.keywords()[-5:] == ["USER", "ARG", "ARG", "LABEL", "CMD"]
    assert [i.pairs() for i in image.all("ARG")[-2:]] == [{"SOURCE_URL": ""}, {"REVISION": ""}]


def test_cuda_env_explains_why_no_cuda_base_and_pins_digest(files: dict[str, str]) -> None:
    cuda = dockerfile(files, "linux-amd64-cuda")
    assert any(line.startswith("No CUDA base image") for line in cuda.comments)
    assert cuda.global_args["BASE_IMAGE"] == "debian:bookworm-slim@sha256:" + "0" * 64
    cpu = dockerfile(files)
    assert not any("No CUDA base image" in line for line in cpu.comments)


def test_requirements_only_project_copies_source_without_installing(
    tmp_path: Path, settings: render.RenderSettings
) -> None:
    parsed = parse(rendered(tmp_path, settings, make_target(install_project=False)))
    assert list(parsed.stages)[-1] == "runtime"  # no project stage: the runtime is the image
    runtime = parsed.stage("runtime")
    assert Instruction("COPY", "--from=source --chown=10001:10001 /src/ /") in runtime.instructions
    steps = [step for run in runtime.runs() for step in run.steps]
    assert not any(step.startswith("uv pip install") for step in steps)
    assert runtime.all("USER") == [Instruction("USER", "10001:10001")]


def test_torch_index_reaches_uv_as_extra_index(
    tmp_path: Path, settings: render.RenderSettings
) -> None:
    target = make_target(extra_index_url="https://download.example/whl/cpu")
    (install,) = venv_runs(parse(rendered(tmp_path, settings, target)))
    # exported before uv runs
    (export,) = [i for i, step in enumerate(install.steps) if step.startswith("export ")]
    assert export < next(i for i, step in enumerate(install.steps) if "pip install" in step)
    exported = shlex.split(install.steps[export])
    assert exported[-1] == "UV_EXTRA_INDEX_URL=https://download.example/whl/cpu"


def test_bake_file_names_every_target_with_its_dockerfile_and_release(
    files: dict[str, str],
) -> None:
    bake = parse_bake(files["docker/docker-bake.hcl"])
    envs = ["linux-amd64-cuda", "linux-arm64-cpu"]
    assert bake[("group", "default")] == {"targets": envs}
    assert bake[("group", "release")] == {"targets": [f"{env}-release" for env in envs]}
    targets = {name for kind, name in bake if kind == "target"}
    assert targets == {"_archlock", *envs, *(f"{env}-release" for env in envs)}
    arm = bake[("target", "linux-arm64-cpu")]
    assert arm["inherits"] == ["_archlock"]
    assert arm["dockerfile"] == "docker/linux-arm64-cpu.Dockerfile"
    assert arm["platforms"] == ["linux/arm64"]
    assert arm["tags"] == ["${REGISTRY}${IMAGE}:${TAG}-linux-arm64-cpu"]
    assert arm["args"] == {"BASE_IMAGE": "debian:bookworm-slim"}
    release = bake[("target", "linux-arm64-cpu-release")]
    assert release["inherits"] == ["linux-arm64-cpu"]
    assert release["attest"] == ["type=sbom", "type=provenance,mode=max"]


def test_workflow_has_native_runners_merge_qemu_mac_and_scan(files: dict[str, str]) -> None:
    flow = yaml.safe_load(files[".github/workflows/archlock-images.yml"])
    jobs = flow["jobs"]
    assert jobs["build-linux-amd64-cuda"]["runs-on"] == "ubuntu-24.04"
    arm_runner = jobs["build-linux-arm64-cpu"]["runs-on"]
    assert arm_runner.startswith("${{") and arm_runner.endswith("|| 'ubuntu-24.04-arm' }}")
    assert "qemu" in flow[True]["workflow_dispatch"]["inputs"]  # `on:` loads as True
    for env in ("linux-amd64-cuda", "linux-arm64-cpu"):
        build = jobs[f"build-{env}"]["steps"]
        assert any(uses(step).startswith("docker/setup-qemu-action@") for step in build)
        push = named(build, "Build and push by digest")
        assert "push-by-digest=true" in push["with"]["set"]
        verify = named(jobs[f"verify-{env}"]["steps"], "Verify the image by digest")
        assert verify["run"].startswith("nox -s verify -- --pull --env")
    merge = next(s for s in jobs["publish"]["steps"] if "imagetools" in s.get("run", ""))
    assert "docker buildx imagetools create" in merge["run"]
    assert [s["run"] for s in jobs["scan"]["steps"] if "run" in s][-1] == "nox -s scan"
    assert [s["run"] for s in jobs["render-check"]["steps"] if "run" in s][-1] == (
        "nox -s render-check"
    )


def uses(step: dict[str, Any]) -> str:
    return str(step.get("uses", ""))


def named(steps: list[dict[str, Any]], name: str) -> dict[str, Any]:
    (step,) = [step for step in steps if step.get("name") == name]
    return step


def test_builder_nodes_render_a_buildx_append_script(tmp_path: Path) -> None:
    settings = render.RenderSettings(
        image_name="demo",
        builder_nodes={"linux/amd64": "ssh://ci@x86-box", "linux/arm64": "tcp://graviton:1234"},
    )
    out = render.render_files(tmp_path, settings, [make_target()])
    script = out[tmp_path / "docker/buildx-nodes.sh"]
    assert script.startswith("#!/usr/bin/env bash\n")
    commands = [shlex.split(line, comments=True) for line in logical_lines(script)[0]]
    create = ["docker", "buildx", "create", "--name", "archlock"]
    creates = [words for words in commands if words[:5] == create]
    assert creates == [
        [
            *create,
            "--node",
            "archlock-linux-amd64",
            "--platform",
            "linux/amd64",
            "ssh://ci@x86-box",
        ],
        [*create, "--append", "--node", "archlock-linux-arm64"]
        + ["--platform", "linux/arm64", "tcp://graviton:1234"],
    ]
    assert commands.index(creates[-1]) < commands.index(["docker", "buildx", "use", "archlock"])


def test_multiarch_takes_one_non_opt_in_env_per_platform() -> None:
    cpu = make_target(
        env="linux-amd64-cpu", platforms=("linux/amd64",), opt_in=True, runner="ubuntu-24.04"
    )
    chosen = render.multiarch([cpu, cuda_target(), make_target()])
    assert [t.env for t in chosen] == ["linux-amd64-cuda", "linux-arm64-cpu"]


# -- hostile values -----------------------------------------------------------------------------
HOSTILE = [
    'x"\nRUN curl evil | sh',
    "x\nRUN rm -rf /",
    "$(touch /pwned)",
    "`id`",
    "a b",
    "x'; echo pwned; '",
    "${{ secrets.TOKEN }}",
    "x\r\nFROM evil",
    "x\u2028RUN evil",
    "x\\",
]


@pytest.mark.parametrize("value", HOSTILE)
@pytest.mark.parametrize(
    "field_name",
    ["env", "python", "base_image", "lock_path", "lock_sha256", "runner", "accelerator"],
)
def test_hostile_target_values_are_refused(field_name: str, value: str) -> None:
    with pytest.raises(ConfigError) as info:
        make_target(**{field_name: value})
    assert "\n" not in info.value.line()  # one line, the value shown as a repr


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_platform_and_index_are_refused(value: str) -> None:
    with pytest.raises(ConfigError):
        make_target(platforms=(value,))
    with pytest.raises(ConfigError):
        make_target(extra_index_url="https://x.example/" + value)


@pytest.mark.parametrize("value", HOSTILE)
@pytest.mark.parametrize("key", ["image_name", "uv_image", "registry", "workflow_dir"])
def test_hostile_settings_are_refused(key: str, value: str) -> None:
    values = {"image_name": "demo", key: value}
    with pytest.raises(ConfigError):
        render.RenderSettings(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_runner_and_builder_node_settings_are_refused(value: str) -> None:
    with pytest.raises(ConfigError):
        render.RenderSettings(image_name="demo", runners={"linux/arm64": value})
    with pytest.raises(ConfigError):
        render.RenderSettings(image_name="demo", builder_nodes={"linux/arm64": value})
    with pytest.raises(ConfigError):
        render.RenderSettings(image_name="demo", builder_nodes={value: "ssh://host"})


@pytest.mark.parametrize("field_name", ["env", "base_image", "python", "layers"])
def test_filters_refuse_what_validation_would_have_caught(
    tmp_path: Path, settings: render.RenderSettings, field_name: str
) -> None:
    """Defence in depth: even a target that skipped validation cannot inject an instruction."""
    target = make_target()
    hostile = 'ok"\nRUN echo injected'
    if field_name == "layers":
        hostile = (layers.Layer("rest", (), 1, (hostile,)),)  # type: ignore[assignment]
    object.__setattr__(target, field_name, hostile)
    with pytest.raises(ConfigError):
        render.render_files(tmp_path, settings, [target])


def test_dockerfile_str_escapes_shell_and_dockerfile_metacharacters() -> None:
    assert du.dockerfile_str('a"b') == '"a\\"b"'
    assert du.dockerfile_str("$(id)") == '"\\$(id)"'
    assert du.dockerfile_str("`id`") == '"\\`id\\`"'
    assert du.dockerfile_str("a\\b") == '"a\\\\b"'
    for bad in ("a\nb", "a\rb", "a\x00b", "a\u2029b"):
        with pytest.raises(ConfigError):
            du.dockerfile_str(bad)


def test_dockerfile_word_refuses_anything_but_a_plain_word() -> None:
    assert du.dockerfile_word("ghcr.io/a/b:1@sha256:" + "0" * 64)
    for bad in ("a b", 'a"', "$X", "a\nb", "a;b", ""):
        with pytest.raises(ConfigError):
            du.dockerfile_word(bad)


def test_hcl_filters_escape_interpolation() -> None:
    assert du.hcl_str('${X} %{if} "q" \\') == '"$${X} %%{if} \\"q\\" \\\\"'
    assert du.hcl_template("${REGISTRY}img:${TAG}-a${b") == '"${REGISTRY}img:${TAG}-a$${b"'
    assert du.hcl_str('${X}"$(id)') == '"$${X}\\"$(id)"'
    with pytest.raises(ConfigError):
        du.hcl_str("a\nb")


def test_yaml_str_is_json_and_refuses_actions_expressions() -> None:
    assert du.yaml_str('a"b: c') == '"a\\"b: c"'
    with pytest.raises(ConfigError):
        du.yaml_str("${{ github.token }}")
    with pytest.raises(ConfigError):
        du.yaml_str("a\nb")


# -- settings and drift -------------------------------------------------------------------------
def named_project(root: Path, table: dict[str, Any]) -> Project:
    return Project(root, {"project": {"name": "My Project"}}, table)


def test_settings_default_image_name_from_project(tmp_path: Path) -> None:
    settings = render.load_settings(named_project(tmp_path, {}))
    assert settings.image_name == "my-project"
    assert settings.runners["linux/arm64"] == "ubuntu-24.04-arm"


def test_unknown_setting_suggests_the_right_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="did you mean 'uv-image'"):
        render.load_settings(named_project(tmp_path, {"render": {"uv_image": "x"}}))


def test_check_names_stale_and_leftover_files(
    tmp_path: Path, settings: render.RenderSettings
) -> None:
    files = render.render_files(tmp_path, settings, [make_target(), cuda_target()])
    render.write(tmp_path, files)
    assert render.stale_files(tmp_path, files) == []
    (tmp_path / "docker/linux-arm64-cpu.Dockerfile").write_text("edited\n")
    fewer = render.render_files(tmp_path, settings, [make_target()])
    stale = render.stale_files(tmp_path, fewer)
    assert "docker/linux-arm64-cpu.Dockerfile" in stale
    assert "docker/linux-amd64-cuda.Dockerfile (no longer rendered)" in stale
    (tmp_path / "docker/notes.txt").write_text("mine, not generated\n")
    render.write(tmp_path, fewer)
    assert not (tmp_path / "docker/linux-amd64-cuda.Dockerfile").exists()
    assert (tmp_path / "docker/notes.txt").exists()  # only generated files are removed
    assert render.stale_files(tmp_path, fewer) == []


def test_committed_rendering_of_this_repo_is_current(repo: Path) -> None:
    files, _ = render.render_project(repo)
    assert render.stale_files(repo, files) == []


def test_another_project_renders_with_archlocks_templates(
    tmp_path: Path, fixtures: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import shutil

    from archlock import cli

    project = tmp_path / "app"
    shutil.copytree(fixtures / "projects" / "requirements-app", project)
    locks = project / "envs" / "locks"
    locks.mkdir(parents=True)
    for env in ("linux-amd64-cuda", "linux-arm64-cpu"):
        (locks / f"{env}.txt").write_text(f"torch==2.10.0 --hash=sha256:{'0' * 64}\n# {env}\n")
    assert cli.main(["render", "--project", str(project)]) == 0
    dockerfile = (project / "docker" / "linux-arm64-cpu.Dockerfile").read_text()
    runtime = dockerfile[dockerfile.index(" AS runtime") :]
    assert "COPY --from=source --chown=10001:10001 /src/ /" in runtime
    assert " AS project" not in dockerfile and " --no-deps /app" not in runtime  # no package
    assert (project / ".github" / "workflows" / "archlock-images.yml").is_file()
    assert cli.main(["render", "--project", str(project), "--check"]) == 0
    (locks / "linux-arm64-cpu.txt").write_text("torch==2.10.0 --hash=sha256:" + "1" * 64 + "\n")
    capsys.readouterr()
    assert cli.main(["render", "--project", str(project), "--check"]) == 5
    err = capsys.readouterr().err.strip()
    assert err.startswith(
        "archlock render: error: stale rendered files: docker/linux-arm64-cpu.Dockerfile"
    )
    assert "\n" not in err


def test_a_torn_set_is_refused_in_one_line_and_render_finishes_its_own(
    tmp_path: Path, fixtures: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import shutil

    from archlock import cli
    from archlock.core import commit

    project = tmp_path / "app"
    shutil.copytree(fixtures / "projects" / "requirements-app", project)
    locks = project / "envs" / "locks"
    locks.mkdir(parents=True)
    for env in ("linux-amd64-cuda", "linux-arm64-cpu"):
        (locks / f"{env}.txt").write_text(f"torch==2.10.0 --hash=sha256:{'0' * 64}\n")
    assert cli.main(["render", "--project", str(project)]) == 0
    journal = commit.journal_path(project, "lock")
    journal.write_text('{"set": "lock", "phase": "commit", "files": []}\n')
    for argv in (["render"], ["render", "--check"], ["build", "--no-render-check"]):
        capsys.readouterr()
        assert cli.main([*argv, "--project", str(project)]) == 5
        assert capsys.readouterr().err.splitlines() == [
            f"archlock {argv[0]}: error: an interrupted lock left old and new files "
            "(.archlock/commit/lock.json) (fix: run `archlock lock`)"
        ]
    journal.unlink()
    bake = project / "docker" / "docker-bake.hcl"
    old = bake.read_text()
    with commit.writing(project, "render") as writer:  # a render cut after its journal
        entries = writer._stage({bake: b"new"}, {})
        writer._write_journal("commit", entries)
    assert cli.main(["render", "--project", str(project), "--check"]) == 5
    assert "an interrupted render left old and new files" in capsys.readouterr().err
    assert cli.main(["render", "--project", str(project)]) == 0  # rolls it forward, re-renders
    assert bake.read_text() == old
    assert "finished an interrupted render" in capsys.readouterr().err
    assert cli.main(["render", "--project", str(project), "--check"]) == 0


@pytest.mark.parametrize("value", ["", "/abs", "../outside", "x\n", "a b"])
def test_a_bad_workflow_dir_is_a_usage_error_naming_the_option(
    value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from archlock import cli

    with pytest.raises(SystemExit) as caught:
        cli.main(["render", "--check", "--workflow-dir", value])
    assert caught.value.code == 2  # argparse's usage error, the same code as ConfigError's
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("archlock render: error: argument --workflow-dir: ")
    assert "pyproject.toml" not in err and "relative path" in err
