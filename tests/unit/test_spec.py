"""Env spec validation: every bad spec is one clean line naming file, line, key and fix."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from archlock import cli
from archlock.core.project import default_envs_dir
from archlock.core.spec import json_schema, load_spec
from archlock.errors import ConfigError

GOOD = """\
platform: linux-arm64
python: "3.11"
accelerator: cpu
image:
  base: archlock/debian-bookworm:arm64
"""

MAC = 'platform: macos-arm64\npython: "3.11"\naccelerator: mps\n'
CUDA = 'platform: linux-amd64\npython: "3.11"\naccelerator: cuda\n'

# (spec text, what the one-line error must contain)
BAD_SPECS: list[tuple[str, str]] = [
    ("", "must be a mapping"),
    ("- a\n- b\n", "must be a mapping"),
    ("just text\n", "must be a mapping"),
    ("platform: [unclosed\n", "not valid YAML"),
    ("platform: linux-arm64\n  python: bad indent\n", "not valid YAML"),
    ('python: "3.11"\naccelerator: cpu\n', "platform: required key is missing"),
    ("platform: linux-arm64\naccelerator: cpu\n", "python: required key is missing"),
    ('platform: linux-arm64\npython: "3.11"\n', "accelerator: required key is missing"),
    (GOOD + "platfrom: x\n", "did you mean 'platform'"),
    (GOOD + "acelerator: cpu\n", "did you mean 'accelerator'"),
    (GOOD + "pyhton: x\n", "did you mean 'python'"),
    (GOOD + "expects:\n  device: cpu\n", "did you mean 'expect'"),
    (GOOD + "images: {}\n", "did you mean 'image'"),
    (GOOD + "torhc: {}\n", "did you mean 'torch'"),
    (GOOD + "color: blue\n", "unknown key"),
    (GOOD + "optin: true\n", "did you mean 'opt-in'"),
    (GOOD + "torch:\n  idnex: pypi\n", "did you mean 'index'"),
    (GOOD + "torch:\n  variants: cpu\n", "did you mean 'variant'"),
    (GOOD + "expect:\n  devcie: cpu\n", "did you mean 'device'"),
    (GOOD + "verify:\n  project_tests: true\n", "did you mean 'project-tests'"),
    (
        'platform: linux-arm64\npython: "3.11"\naccelerator: cpu\nimage:\n  bsae: x\n',
        "did you mean 'base'",
    ),
    ('platform: linux-arm46\npython: "3.11"\naccelerator: cpu\n', "did you mean 'linux-arm64'"),
    ('platform: macos-x86\npython: "3.11"\naccelerator: cpu\n', "is not one of"),
    ('platform: windows\npython: "3.11"\naccelerator: cpu\n', "is not one of"),
    ('platform: 64\npython: "3.11"\naccelerator: cpu\n', "must be a str"),
    ("platform: linux-arm64\npython: 3.11\naccelerator: cpu\n", 'quote it: "3.11"'),
    ("platform: linux-arm64\npython: 3.10\naccelerator: cpu\n", "got float (3.10)"),
    ("platform: linux-arm64\npython: 3.10\naccelerator: cpu\n", 'quote it: "3.10"'),
    (MAC + "macos: 15.10\n", 'quote it: "15.10"'),
    ("platform: linux-arm64\npython: 3\naccelerator: cpu\n", "must be a str"),
    ('platform: linux-arm64\npython: "2.7"\naccelerator: cpu\n', "'2.7' is not valid"),
    ('platform: linux-arm64\npython: "3"\naccelerator: cpu\n', "'3' is not valid"),
    ('platform: linux-arm64\npython: "3.11.4"\naccelerator: cpu\n', "is not valid"),
    ('platform: linux-arm64\npython: "python3.11"\naccelerator: cpu\n', "is not valid"),
    ('platform: linux-arm64\npython: "3.11"\naccelerator: gpu\n', "is not one of"),
    ('platform: linux-arm64\npython: "3.11"\naccelerator: cdua\n', "did you mean 'cuda'"),
    ('platform: linux-arm64\npython: "3.11"\naccelerator: true\n', "must be a str"),
    (
        'platform: linux-arm64\npython: "3.11"\naccelerator: mps\n',
        "mps is impossible on linux-arm64",
    ),
    (
        'platform: linux-amd64\npython: "3.11"\naccelerator: mps\n',
        "mps is impossible on linux-amd64",
    ),
    (
        'platform: macos-arm64\npython: "3.11"\naccelerator: cuda\n',
        "cuda is impossible on macos-arm64",
    ),
    (MAC + "image:\n  base: debian\n", "cannot run in a container"),
    (GOOD + 'macos: "14.0"\n', "is not macOS"),
    (MAC + "macos: 14.0\n", 'quote it: "14.0"'),
    (MAC + 'macos: "fourteen"\n', "is not valid"),
    (MAC + 'macos: "14"\n', "is not valid"),
    (GOOD + "expect:\n  device: mps\n", "mps cannot run a cpu build"),
    (CUDA + "expect:\n  device: mps\n", "mps cannot run a cuda build"),
    (GOOD + "expect:\n  device: tpu\n", "is not one of"),
    (CUDA + "accept-cuda-stack: true\n", "only a cpu env can accept a CUDA build"),
    (MAC + "accept-cuda-stack: true\n", "only a cpu env can accept a CUDA build"),
    (GOOD + "accept-cuda-stack: yes please\n", "must be a bool"),
    (GOOD + "machines: gpu-a100\n", "must be a list of names"),
    (GOOD + "machines: [Bad_Name]\n", "'Bad_Name' is not a valid name"),
    (GOOD + "machines: [1, 2]\n", "must be a list of names"),
    (GOOD + "expect: cpu\n", "must be a mapping"),
    (GOOD + "torch: pypi\n", "must be a mapping"),
    (GOOD + "verify: yes\n", "must be a mapping"),
    (GOOD + "torch:\n  variant: cpu\n", "PyPI publishes no +cpu torch builds"),
    (GOOD + "torch:\n  index: PyTorch CPU\n", "is not valid"),
    (GOOD + "torch:\n  index: https://example.invalid/simple\n", "is not valid"),
    (GOOD + "torch:\n  index: x\n  variant: cu 128\n", "is not valid"),
    (GOOD + "opt-in: maybe\n", "must be a bool"),
    (GOOD + "opt-in: 1\n", "must be a bool"),
    (GOOD + 'verify:\n  project-tests: "yes"\n', "must be a bool"),
    (GOOD + "description: 42\n", "must be a str"),
    (
        GOOD.replace("archlock/debian-bookworm:arm64", '"debian\\nRUN curl evil | sh"'),
        "is not valid",
    ),
    (GOOD.replace("archlock/debian-bookworm:arm64", '"$(curl evil)"'), "is not valid"),
    (GOOD.replace("archlock/debian-bookworm:arm64", '"debian:12 AS x"'), "is not valid"),
    (GOOD.replace("archlock/debian-bookworm:arm64", "'debian\"quote'"), "is not valid"),
    (GOOD.replace("archlock/debian-bookworm:arm64", "Debian:12"), "is not valid"),
    (GOOD + "  digest: sha256:abc\n", "is not valid"),
    (GOOD + "  digest: md5:" + "0" * 64 + "\n", "is not valid"),
    (
        'platform: linux-arm64\npython: "3.11"\naccelerator: cpu\nimage:\n  digest: sha256:'
        + "a" * 64
        + "\n",
        "a digest needs a base image",
    ),
    (
        'platform: linux-arm64\npython: "3.11"\naccelerator: cpu\nimage: debian\n',
        "must be a mapping",
    ),
    (
        'platform: linux-arm64\nplatform: linux-amd64\npython: "3.11"\naccelerator: cpu\n',
        "key appears twice",
    ),
    (GOOD + "1: x\n", "is not a string"),
    (GOOD + 'python: "3.12"\n', "key appears twice"),
]


@pytest.mark.parametrize(
    ("text", "expected"), BAD_SPECS, ids=[f"bad{i:02d}" for i in range(len(BAD_SPECS))]
)
def test_bad_spec_is_one_clean_line(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "target.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_spec(path)
    line = caught.value.line()
    assert expected in line
    assert "\n" not in line
    assert str(path) in line  # names the file


def test_there_are_at_least_fifty_distinct_bad_specs() -> None:
    assert len({text for text, _ in BAD_SPECS}) >= 50


def test_error_names_the_line_of_the_key(tmp_path: Path) -> None:
    path = tmp_path / "x.yaml"
    path.write_text(GOOD + "expect:\n  device: mps\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_spec(path)
    assert f"{path}:7: expect.device:" in caught.value.line()


def test_bad_file_name_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "Linux AMD.yaml"
    path.write_text(GOOD, encoding="utf-8")
    with pytest.raises(ConfigError, match="env name"):
        load_spec(path)


def test_cli_reports_a_bad_spec_without_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "requirements.txt").write_text("six\n", encoding="utf-8")
    (tmp_path / "envs").mkdir()
    (tmp_path / "envs" / "bad.yaml").write_text(GOOD + "acelerator: cpu\n", encoding="utf-8")
    code = cli.main(["--project", str(tmp_path), "lock", "--check"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "bad.yaml:6: acelerator: unknown key (fix: did you mean 'accelerator'?)" in err


def test_good_spec_fields_and_defaults(tmp_path: Path) -> None:
    path = tmp_path / "linux-arm64-cpu.yaml"
    path.write_text(GOOD, encoding="utf-8")
    spec = load_spec(path)
    assert spec.platform.docker_platform == "linux/arm64"
    assert spec.expect_device == "cpu"
    assert spec.torch_index is None and spec.torch_variant is None
    assert spec.macos is None and not spec.opt_in
    assert spec.image_ref == "archlock/debian-bookworm:arm64"


def test_digest_pins_the_base(tmp_path: Path) -> None:
    path = tmp_path / "e.yaml"
    path.write_text(GOOD + "  digest: sha256:" + "b" * 64 + "\n", encoding="utf-8")
    assert load_spec(path).image_ref == "archlock/debian-bookworm:arm64@sha256:" + "b" * 64


def test_mac_spec_takes_the_platform_floor_by_default(tmp_path: Path) -> None:
    path = tmp_path / "mac.yaml"
    path.write_text(MAC, encoding="utf-8")
    assert load_spec(path).macos == "14.0"


def test_shipped_default_envs_are_valid_and_match_the_repo(repo: Path) -> None:
    shipped = sorted(default_envs_dir().glob("*.yaml"))
    assert [p.name for p in shipped] == sorted(p.name for p in (repo / "envs").glob("*.yaml"))
    for path in shipped:
        assert path.read_text() == (repo / "envs" / path.name).read_text(), (
            f"envs/{path.name} drifted from the default"
        )
        load_spec(path)
    names = {p.stem for p in shipped}
    assert {"macos-arm64", "linux-amd64-cuda", "linux-arm64-cpu", "linux-amd64-cpu"} <= names


def test_committed_json_schema_matches_the_validator() -> None:
    committed = json.loads((default_envs_dir().parent / "env.schema.json").read_text())
    committed.pop("$comment")
    assert committed == json_schema()
    assert committed["additionalProperties"] is False
    assert set(committed["required"]) == {"platform", "python", "accelerator"}


def test_deprecated_expect_cuda_loads_with_a_note(tmp_path: Path) -> None:
    path = tmp_path / "old-cuda.yaml"
    path.write_text(CUDA + 'expect:\n  device: cuda\n  cuda: "12.8"\n', encoding="utf-8")
    spec = load_spec(path)
    assert spec.expect_cuda is None  # ignored: the CUDA version comes from the lock now
    (note,) = spec.notes
    assert note.startswith(f"{path}:6: expect.cuda is deprecated and ignored")
    assert "expect.json" in note and note.endswith("remove it")


@pytest.mark.parametrize(
    ("head", "value", "said"),
    [
        (GOOD, '"12.8"', "'12.8' means nothing in a cpu env (it has no CUDA)"),
        (MAC, '"12.8"', "'12.8' means nothing in a mps env (it has no CUDA)"),
        (CUDA, '"twelve"', "'twelve' is not a CUDA version"),
        (CUDA, '"12.8\\n"', "is not a CUDA version"),
        (CUDA, '"12"', "'12' is not a CUDA version"),
        (CUDA, "12.8", "12.8 is not a CUDA version"),  # unquoted: a number
        (CUDA, "[]", "[] is not a CUDA version"),
    ],
)
def test_a_meaningless_expect_cuda_is_refused_with_the_fix(
    tmp_path: Path, head: str, value: str, said: str
) -> None:
    """Deprecated and ignored, but a value that is no CUDA version, or one for an env without
    CUDA, was a mistake: one line naming the file, the key and the fix."""
    path = tmp_path / "env.yaml"
    path.write_text(head + f"expect:\n  cuda: {value}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_spec(path)
    line = caught.value.line()
    line_no = head.count("\n") + 2
    assert line.startswith(f"{path}:{line_no}: expect.cuda: ") and said in line
    assert line.endswith(
        "(fix: remove expect.cuda: the CUDA version comes from the lock "
        "(envs/locks/<env>.expect.json))"
    )


def test_machines_and_accept_cuda_stack_load(tmp_path: Path) -> None:
    path = tmp_path / "graviton.yaml"
    path.write_text(
        GOOD + "accept-cuda-stack: true\nmachines: [graviton-al2, c7g]\n", encoding="utf-8"
    )
    spec = load_spec(path)
    assert spec.machines == ("graviton-al2", "c7g") and spec.accept_cuda_stack
    assert spec.notes == ()
