"""`archlock lock`: one universal uv.lock, then a hashed lock per env, all pinned alike.

1. `uv lock` makes the universal lock (for a requirements.txt project, through a generated
   stand-in pyproject); `uv export` turns it into pins with markers.
2. Each env is compiled for its platform with those pins as constraints
   (`uv pip compile --python-platform ... --format pylock.toml`), torch from the env's index
   where the spec names one. The PEP 751 `pylock.<env>.toml` is uv's output; the marker-free
   hashed requirements lock `<env>.txt` is derived from it: pins and hashes only, no URLs, so a
   lock made from a mirror installs from the real index too.
3. Each lock's header stamps hashes of its inputs (spec, project requirements, pins, format).
   An env whose stamp still matches is not re-resolved; `--check` reads only the stamps.
4. torch's version must be identical in every env; only the build (+cpu, CUDA, MPS) differs.
All files are written as one set through core/commit.py: a run killed at any instant leaves the
old set, the new set, or a journal that every reader refuses and the next `lock` rolls forward.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import tomllib
import urllib.parse
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from packaging.markers import InvalidMarker, Marker

from archlock.core import commit, lockfile, sdist
from archlock.core.fsutil import current_text, temp_dir
from archlock.core.lockfile import body_of, digest, read_stamp
from archlock.core.platforms import torch_macos_floor
from archlock.core.project import Index, Project, index_env_var
from archlock.core.rules.build import Expectations
from archlock.core.rules.machine import Machine
from archlock.core.rules.versions import below, version_tuple
from archlock.core.spec import EnvSpec
from archlock.core.uvtool import run_uv, without_hints
from archlock.errors import ConfigError, DriftError, ExternalCommandError, ResolveError
from archlock.lock import expect, fit, machines

LOCK_FORMAT = lockfile.FORMAT
# The stand-in's name is written into uv.lock; a constant, not the folder's name, so clones in
# differently named folders share one byte-identical uv.lock (and `lock --check` passes in each).
STANDIN_NAME = "requirements-txt"


# -- the universal lock ---------------------------------------------------------------------
@contextmanager
def universal_project(project: Project, envs: list[EnvSpec]) -> Iterator[Path]:
    """The folder where `uv lock` runs: the project itself, or a stand-in for requirements.txt."""
    if project.kind == "pyproject":
        check_environments(project, envs)
        yield project.root
        return
    with temp_dir("universal") as work:
        (work / "pyproject.toml").write_text(standin_pyproject(project, envs), encoding="utf-8")
        if project.uv_lock.exists():
            shutil.copyfile(project.uv_lock, work / "uv.lock")
        yield work


def standin_pyproject(project: Project, envs: list[EnvSpec]) -> str:
    markers = sorted({env.platform.marker for env in envs})
    major, minor = min((version_tuple(env.python)[:2] for env in envs), default=(3, 8))
    return "\n".join(
        [
            "[project]",
            f"name = {json.dumps(STANDIN_NAME)}",
            'version = "0"',
            f'requires-python = ">={major}.{minor}"',
            f"dependencies = {json.dumps(project.direct_requirements())}",
            "[tool.uv]",
            "package = false",
            f"environments = {json.dumps(markers)}",
            f"required-environments = {json.dumps(markers)}",
            "",
        ]
    )


def check_environments(project: Project, envs: list[EnvSpec]) -> None:
    """A pyproject's `[tool.uv] environments`, when set, must cover every env's platform."""
    declared = project.pyproject.get("tool", {}).get("uv", {}).get("environments")  # type: ignore[union-attr]
    if not declared:
        return
    where = f"{project.root / 'pyproject.toml'}: [tool.uv] environments"
    normal = {_normal_marker(m, where) for m in declared}
    for env in envs:
        if _normal_marker(env.platform.marker, where) not in normal:
            raise ConfigError(
                f"{project.root / 'pyproject.toml'}: [tool.uv] environments: "
                f"does not cover env {env.name}",
                fix=f'add "{env.platform.marker}" to environments and required-environments',
            )


def _normal_marker(marker: str, where: str) -> str:
    """A PEP 508 marker in packaging's normal form (quotes, spacing), so equal markers match."""
    try:
        return str(Marker(marker))
    except InvalidMarker as exc:
        message = f"{where}: {marker!r} is not a marker ({exc})"
        raise ConfigError(message, fix="write a PEP 508 marker") from None


def macos_target(envs: list[EnvSpec]) -> dict[str, str]:
    floors = sorted((env.macos for env in envs if env.macos), key=version_tuple)
    return {"MACOSX_DEPLOYMENT_TARGET": floors[0]} if floors else {}


def lock_universal(
    project: Project, envs: list[EnvSpec], work: Path, writer: commit.Writer | None
) -> str | None:
    """Update (or without a writer, verify) uv.lock. Returns a staleness reason or None."""
    if writer is None:
        if not project.uv_lock.exists():
            return "uv.lock is missing"
        try:
            run_uv(["lock", "--check"], cwd=work, env=macos_target(envs), what="uv lock --check")
        except ExternalCommandError as exc:  # uv says the lock no longer matches the project
            return f"uv.lock is stale ({exc.message}: {' '.join(exc.detail)[:300]})"
        return None
    # uv holds the set's lock too: a killed run's uv cannot write behind the next run
    what = f"uv lock ({project.root})"
    try:
        run_uv(["lock"], cwd=work, env=macos_target(envs), what=what, keep_fds=(writer.lock_fd,))
    except ResolveError as exc:
        raise for_the_user(exc, project, None) from None
    return None


@contextmanager
def staged_uv_lock(
    project: Project, work: Path, writer: commit.Writer | None
) -> Iterator[dict[Path, bytes]]:
    """Run the body with the new uv.lock in `work`; afterwards uv.lock holds its old bytes again
    and the new ones wait in the yielded dict, to be written with the env locks as one set.
    In the project itself (`uv lock` rewrites it in place) the old bytes are kept by `writer`,
    so even a killed run leaves them to be put back by the next `archlock lock`."""
    staged: dict[Path, bytes] = {}
    if writer is None or work != project.root:
        yield staged
        if writer is not None and (work / "uv.lock").is_file():
            staged[project.uv_lock] = (work / "uv.lock").read_bytes()
        return
    with writer.in_place(project.uv_lock):
        yield staged
        if project.uv_lock.is_file():
            staged[project.uv_lock] = project.uv_lock.read_bytes()


def export_pins(project: Project, work: Path) -> str:
    args = [
        "export",
        "--frozen",
        "--no-hashes",
        "--no-header",
        "--no-annotate",
        "--no-emit-project",
        "--no-default-groups",
    ]
    for group in project.groups:
        args += ["--group", group]
    for extra in project.extras:
        args += ["--extra", extra]
    return run_uv(args, cwd=work, what="uv export").stdout


# -- per-env stamps -------------------------------------------------------------------------
def env_inputs(project: Project, env: EnvSpec, pins: str) -> dict[str, str]:
    requirements = {
        "lines": project.direct_requirements(),
        "groups": project.groups,
        "extras": project.extras,
    }
    return {
        "format": LOCK_FORMAT,
        "spec": digest(json.dumps(env.identity(), sort_keys=True)),
        "requirements": digest(json.dumps(requirements, sort_keys=True)),
        "pins": digest(pins),
    }


INPUT_NAMES = {
    "format": "archlock's lock format changed",
    "spec": "the env spec changed",
    "requirements": "the project's requirements changed",
    "pins": "uv.lock's pins changed",
}


def staleness(project: Project, env: EnvSpec, inputs: dict[str, str]) -> str | None:
    """Why env's committed locks no longer match their inputs, or None when they do."""
    for path in (project.env_lock(env.name), project.env_pylock(env.name)):
        if not path.exists():
            return f"{path.name} is missing"
        text = current_text(path)
        if text is None:
            return f"{path.name} is not a readable UTF-8 file"
        try:
            stamped, body = read_stamp(text)
        except lockfile.StampError as exc:
            return f"{path.name} {exc}"
        if not stamped:
            return f"{path.name} has no archlock stamp"
        changed = [INPUT_NAMES[k] for k in INPUT_NAMES if stamped.get(k) != inputs[k]]
        if changed:
            return ", ".join(changed)
        if body != digest(body_of(text)):
            return f"{path.name} was edited by hand"
    return None


# -- compiling one env ----------------------------------------------------------------------
@dataclass(frozen=True)
class EnvLock:
    env: EnvSpec
    requirements: str
    pylock: str
    torch: str | None
    expect: Expectations


def compile_env(
    project: Project,
    env: EnvSpec,
    pins: str,
    inputs: dict[str, str],
    serves: list[Machine],
) -> EnvLock:
    index = project.index(env.torch_index, env) if env.torch_index else None
    torch_pin = pinned_version(pins, "torch")
    preflight_macos(env, torch_pin)
    with temp_dir(env.name) as work:
        (work / "pyproject.toml").write_text(
            env_pyproject(project, env, index, torch_pin), encoding="utf-8"
        )
        (work / "pins.txt").write_text(strip_local(pins), encoding="utf-8")
        args = [
            "pip",
            "compile",
            "pyproject.toml",
            "-c",
            "pins.txt",
            "--no-header",
            "--quiet",
            "--python-platform",
            env.platform.uv_python_platform,
            "--python-version",
            env.python,
            "--format",
            "pylock.toml",
            "-o",
            "pylock.toml",
        ]
        env_vars = {"MACOSX_DEPLOYMENT_TARGET": env.macos} if env.macos else {}
        try:
            run_uv(args, cwd=work, env=env_vars, what=f"{env.path}: locking env {env.name}")
        except ResolveError as exc:
            raise explain_resolve_failure(exc, env, index, torch_pin, project) from None
        raw_pylock = (work / "pylock.toml").read_text(encoding="utf-8")
    raw_pylock, unknown = sdist.annotate(raw_pylock)  # what each source-only package is
    for note in unknown:
        print(f"note: {env.name}: {note}")
    pylock = relocate_mirror(raw_pylock, index)
    requirements = requirements_from_pylock(pylock)
    expected = expect.derive(env, pylock)
    fit.refuse(env, expected, serves)  # before anything is written
    return EnvLock(
        env=env,
        requirements=stamped(requirements, env, inputs),
        pylock=stamped(pylock, env, inputs),
        torch=lockfile.pinned(requirements, "torch"),
        expect=expected,
    )


def env_pyproject(
    project: Project, env: EnvSpec, index: Index | None, torch_pin: str | None
) -> str:
    requirements = project.direct_requirements()
    if index and env.torch_variant and torch_pin:
        # an extra requirement, not an override: uv drops the index source of overridden packages
        requirements.append(f"torch=={torch_pin}+{env.torch_variant}")
    lines = [
        "[project]",
        f'name = "archlock-env-{env.name}"',
        'version = "0"',
        f"dependencies = {json.dumps(requirements)}",
    ]
    if index:
        location = index.url if not index.is_flat_folder else index.url.removeprefix("file://")
        lines += [
            "[tool.uv.sources]",
            f'torch = {{ index = "{env.torch_index}" }}',
            "[[tool.uv.index]]",
            f'name = "{env.torch_index}"',
            f"url = {json.dumps(location)}",
            "explicit = true",
        ]
        if index.is_flat_folder:
            lines.append('format = "flat"')
    return "\n".join(lines) + "\n"


def strip_local(pins: str) -> str:
    """Pins as constraints: `torch==2.10.0+cpu` would forbid other builds of the same version."""
    return re.sub(r"^([A-Za-z0-9_.-]+==[^+;\s]+)\+[A-Za-z0-9.]+", r"\1", pins, flags=re.MULTILINE)


def pinned_version(pins: str, name: str) -> str | None:
    versions = {m.group(1) for m in re.finditer(rf"^{name}==([^\s;+]+)", pins, re.MULTILINE)}
    return versions.pop() if len(versions) == 1 else None


def preflight_macos(env: EnvSpec, torch_pin: str | None) -> None:
    if not (env.macos and torch_pin):
        return
    floor = torch_macos_floor(torch_pin)
    if floor and below(env.macos, floor):
        raise ConfigError(
            f"{env.path}: macos: torch {torch_pin} has no wheel for macOS {env.macos}; "
            "the Mac would silently fall back to an older torch than Linux",
            fix=f'set macos: "{floor}" (torch >= 2.12 ships macOS {floor}+ wheels only) '
            "or pin an older torch",
        )


# hints uv gives about settings archlock writes from envs/*.yaml: the user cannot act on them
ENVIRONMENT_HINTS = re.compile(r"tool\.uv\.environments|required-environments")
PYTHON_HINTS = re.compile(r"requires-python")


def for_the_user(exc: ResolveError, project: Project, env: EnvSpec | None) -> ResolveError:
    """uv's failure with its reasons kept line by line, less its hints about what archlock
    wrote (the platforms of envs/; for a requirements.txt project or an env, requires-python),
    and the file to edit named."""
    own = project.kind == "pyproject" and env is None  # the user wrote requires-python there
    source = project.root / (
        "pyproject.toml" if project.kind == "pyproject" else "requirements.txt"
    )
    detail = without_hints(exc.detail, ENVIRONMENT_HINTS)
    if exc.message.endswith("an index is unreachable"):  # nothing in a file to edit
        fix = (
            "make the index reachable (network; behind a TLS-intercepting proxy, its CA bundle "
            "in SSL_CERT_FILE) or point uv at a mirror (UV_DEFAULT_INDEX)"
        )
    elif not own and detail != without_hints(detail, PYTHON_HINTS):
        detail = without_hints(detail, PYTHON_HINTS)
        python = f"`python:` in {env.path}" if env else "`python:` in envs/*.yaml"
        fix = f"edit {source}, or raise {python} to a Python the requirement supports"
    else:
        fix = f"edit {source}" + (f" or {env.path}" if env else "")
    return ResolveError(exc.message, fix=f"{fix}; uv's reasons follow", detail=detail)


def explain_resolve_failure(
    exc: ResolveError,
    env: EnvSpec,
    index: Index | None,
    torch_pin: str | None,
    project: Project | None = None,
) -> Exception:
    text = re.sub(r"\s+", " ", " ".join((exc.message, *exc.detail)))
    if env.macos and re.search(r"macosx_\d+_\d+_arm64", text) and "torch" in text:
        return ConfigError(
            f"{env.path}: macos: torch {torch_pin} has no wheel for macOS {env.macos} "
            f"({text[:200]})",
            fix="raise `macos:` to the floor uv names in the hint (torch >= 2.12 needs 14.0)",
        )
    if index and "unreachable" in text:
        keep_pypi = (
            f", or keep PyPI's torch whatever its build: delete `torch:` and add "
            f"`accept-cuda-stack: true` in {env.path.name}"
            if env.accelerator == "cpu"
            else ""
        )
        return ResolveError(
            f"{env.path}: torch.index {index.name!r} at {index.url} "
            f"(from {index.origin}) is unreachable",
            fix=f"set {index_env_var(index.name)} to a reachable mirror URL "
            f"or a local folder of wheels{keep_pypi}",
        )
    return for_the_user(exc, project, env) if project else exc


def relocate_mirror(pylock: str, index: Index | None) -> str:
    """A pylock made from a mirror points at the real index: same file names, same hashes."""
    if not index or not index.is_mirror or not index.canonical:
        return pylock
    mirror = (
        index.url if not index.is_flat_folder else "file://" + index.url.removeprefix("file://")
    )
    canonical = index.canonical.rstrip("/")

    def swap(match: re.Match[str]) -> str:
        name = match.group(1).rsplit("/", 1)[-1]
        return f'url = "{canonical}/{urllib.parse.quote(urllib.parse.unquote(name))}"'

    return re.sub(rf'url = "({re.escape(mirror)}/[^"]+)"', swap, pylock)


def requirements_from_pylock(pylock: str) -> str:
    """Marker-free `name==version` lines with every hash the pylock lists for this platform."""
    lines = []
    for package in tomllib.loads(pylock).get("packages", []):
        files = list(package.get("wheels", [])) + ([package["sdist"]] if "sdist" in package else [])
        hashes = sorted({f["hashes"]["sha256"] for f in files if "sha256" in f.get("hashes", {})})
        entry = f"{package['name']}=={package['version']}"
        lines.append(" \\\n".join([entry, *(f"    --hash=sha256:{h}" for h in hashes)]))
    return "\n".join(sorted(lines)) + "\n"


def stamped(body: str, env: EnvSpec, inputs: dict[str, str]) -> str:
    torch_from = f"index {env.torch_index}" if env.torch_index else "PyPI"
    describe = f"{env.name} ({env.platform.name}, Python {env.python}, {env.accelerator})"
    return lockfile.stamped(body, f"{describe}; torch from {torch_from}", inputs)


# -- the whole run --------------------------------------------------------------------------
@dataclass(frozen=True)
class EnvOutcome:
    env: EnvSpec
    state: str  # "unchanged" | "locked" | "updated" (expectations file only) | "stale"
    reason: str | None
    torch: str | None


def lock_project(
    project: Project, names: list[str] | None, *, check: bool, force: bool
) -> list[EnvOutcome]:
    envs = project.envs(names)
    serves = {env.name: machines.load_all(project.envs_dir, env) for env in envs}  # fail early
    if check:
        commit.refuse_torn_locks(project.root, project.locks_dir)
        return check_project(project, envs, serves, force)
    with commit.writing(project.root, "lock") as writer:
        return write_project(project, envs, serves, force, writer)


Serves = dict[str, list[Machine]]
Todo = list[tuple[EnvSpec, dict[str, str], str | None]]


def resolve_universal(
    project: Project, envs: list[EnvSpec], writer: commit.Writer | None
) -> tuple[str | None, str, dict[Path, bytes]]:
    """(why uv.lock is stale under --check, the pins, the new uv.lock waiting to be written)."""
    with universal_project(project, envs) as work, staged_uv_lock(project, work, writer) as new:
        problem = lock_universal(project, envs, work, writer)
        pins = export_pins(project, work) if (work / "uv.lock").exists() else ""
    return problem, pins, new


def partition(
    project: Project, envs: list[EnvSpec], pins: str, force: bool
) -> tuple[list[EnvSpec], Todo]:
    """(envs whose locks are current, envs to lock with their inputs and why)."""
    fresh: list[EnvSpec] = []
    todo: Todo = []
    for env in envs:
        inputs = env_inputs(project, env, pins)
        reason = staleness(project, env, inputs)
        if reason is None and not force:
            fresh.append(env)
        else:
            todo.append((env, inputs, reason))
    return fresh, todo


def check_project(
    project: Project, envs: list[EnvSpec], serves: Serves, force: bool
) -> list[EnvOutcome]:
    universal_problem, pins, _ = resolve_universal(project, envs, None)
    fresh, todo = partition(project, envs, pins, force)
    settled = {e.name: settle_expectations(project, e, serves[e.name], True) for e in fresh}
    outcomes = [settled[e.name].outcome(torch_in_lock(project, e)) for e in fresh]
    outcomes += [EnvOutcome(e, "stale", r, None) for e, _, r in todo]
    report_drift(project, universal_problem, outcomes)
    check_torch_agrees(outcomes)
    return outcomes


def write_project(
    project: Project, envs: list[EnvSpec], serves: Serves, force: bool, writer: commit.Writer
) -> list[EnvOutcome]:
    _, pins, uv_lock = resolve_universal(project, envs, writer)
    fresh, todo = partition(project, envs, pins, force)
    settled = {e.name: settle_expectations(project, e, serves[e.name], False) for e in fresh}
    with ThreadPoolExecutor(max_workers=max(1, len(todo))) as pool:
        locks = list(
            pool.map(lambda it: compile_env(project, it[0], pins, it[1], serves[it[0].name]), todo)
        )
    outcomes = [settled[e.name].outcome(torch_in_lock(project, e)) for e in fresh]
    outcomes += [
        EnvOutcome(lock.env, "locked", reason, lock.torch)
        for lock, (_, _, reason) in zip(locks, todo, strict=True)
    ]
    check_torch_agrees(outcomes)
    files: dict[Path, str | bytes | None] = dict(uv_lock)  # uv.lock lands with the env locks
    files.update({s.path: s.text for s in settled.values() if s.reason})
    for lock in locks:
        files[project.env_lock(lock.env.name)] = lock.requirements
        files[project.env_pylock(lock.env.name)] = lock.pylock
        files[expect.path_for(project.locks_dir, lock.env.name)] = expect.to_json(lock.expect)
    writer.commit(files)
    expected = {n: s.expect for n, s in settled.items()}
    expected.update({lk.env.name: lk.expect for lk in locks})
    for env in envs:
        for note in fit.notes(env, expected[env.name], serves[env.name]):
            print(f"note: {note}")
    return outcomes


@dataclass(frozen=True)
class Settled:
    """An env whose lock is current: its expectations, derived again from the committed pylock
    (no resolve), and whether the file next to the lock says the same."""

    env: EnvSpec
    expect: Expectations
    path: Path
    text: str
    state: str  # "unchanged", "updated" (the file is rewritten) or "stale" (under --check)
    reason: str | None  # why the expectations file must be (re)written

    def outcome(self, torch: str | None) -> EnvOutcome:
        return EnvOutcome(self.env, self.state, self.reason, torch)


def settle_expectations(
    project: Project, env: EnvSpec, serves: list[Machine], check: bool
) -> Settled:
    derived = expect.derive(env, project.env_pylock(env.name).read_text(encoding="utf-8"))
    fit.refuse(env, derived, serves)  # a machine added to the spec is checked without a resolve
    path, text = expect.path_for(project.locks_dir, env.name), expect.to_json(derived)
    current = current_text(path)
    if current == text:
        return Settled(env, derived, path, text, "unchanged", None)
    reason = f"{path.name} is {'missing' if current is None else 'stale'}"
    return Settled(env, derived, path, text, "stale" if check else "updated", reason)


def torch_in_lock(project: Project, env: EnvSpec) -> str | None:
    path = project.env_lock(env.name)
    return lockfile.pinned(current_text(path) or "", "torch")


def report_drift(
    project: Project, universal_problem: str | None, outcomes: list[EnvOutcome]
) -> None:
    problems = [universal_problem] if universal_problem else []
    problems += [
        f"{project.env_lock(o.env.name)}: stale: {o.reason}" for o in outcomes if o.state == "stale"
    ]
    if problems:
        raise DriftError(
            "; ".join(problems), fix=f"run `{lockfile.REGENERATE}` and commit the result"
        )


def check_torch_agrees(outcomes: list[EnvOutcome]) -> None:
    versions = {o.env.name: o.torch for o in outcomes if o.torch}
    releases = {v.split("+")[0] for v in versions.values()}
    if len(releases) > 1:
        listing = ", ".join(f"{name}={version}" for name, version in sorted(versions.items()))
        raise ResolveError(
            f"torch differs between envs ({listing}); every env must run the same torch release",
            fix="pin one torch version for every platform "
            "(a Mac below the torch's macOS floor is the usual cause)",
        )


# -- CLI ------------------------------------------------------------------------------------
def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("lock", help="lock every env (uv.lock + hashed per-env locks)")
    parser.add_argument(
        "--check", action="store_true", help="fail if any lock is stale; change nothing"
    )
    parser.add_argument(
        "--env", action="append", dest="envs", metavar="NAME", help="only this env (repeatable)"
    )
    parser.add_argument(
        "--force", action="store_true", help="re-resolve envs whose inputs are unchanged"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    project = Project.load(args.project)
    outcomes = lock_project(project, args.envs, check=args.check, force=args.force)
    for outcome in outcomes:
        note = f" ({outcome.reason})" if outcome.reason and outcome.state != "unchanged" else ""
        locked = expect.load(project.locks_dir, outcome.env) if outcome.torch else None
        build = f" ({locked.build_name()})" if locked and outcome.state != "stale" else ""
        shown = f"torch {outcome.torch or '-'}{build}"
        print(f"{outcome.env.name:<24} {outcome.state:<10} {shown}{note}")
    torch = {o.torch.split("+")[0] for o in outcomes if o.torch}
    if torch:
        print(f"torch {torch.pop()} in every env; only the build differs")
    return 0
