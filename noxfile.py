"""archlock's sessions. Each is thin: it installs archlock and calls `archlock <verb>`.

Every session forwards its arguments, so `nox -s lock -- --project ../other --check` works.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nox

HERE = Path(__file__).resolve().parent
nox.needs_version = ">=2025.2"
nox.options.default_venv_backend = "uv"
nox.options.error_on_missing_interpreters = True  # a skipped session must never look like a pass
nox.options.error_on_external_run = True
# The main job (`nox`): lint (code and workflows) and types, the sdist and wheel, locks current,
# audit, rendered files current, scan, this host verified.
nox.options.sessions = [
    "lint",
    "typecheck",
    "dist",
    "lock-check",
    "audit",
    "render-check",
    "scan",
    "verify",
    "matrix",
]


def _install(session: nox.Session, *groups: str, project: bool = True, locked: bool = True) -> None:
    """Install archlock's own dependencies (and `groups`) exactly as uv.lock pins them."""
    args = ["sync", "--locked" if locked else "--quiet", "--no-default-groups"]
    args += [f"--group={group}" for group in groups]
    args += [] if project else ["--no-install-project"]
    env = {"UV_PROJECT_ENVIRONMENT": str(session.virtualenv.location)}
    session.run_install(nox.virtualenv.UV, *args, env=env, external=True)


def _archlock(session: nox.Session, *args: str, locked: bool = True) -> None:
    _install(session, locked=locked)
    session.run("archlock", *args, *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """Lint and format check (ruff; rules in pyproject.toml), then every workflow in
    .github/workflows: actionlint (shellcheck on its scripts) and zizmor's security audit."""
    _install(session, "lint", project=False)
    session.run("ruff", "check", *session.posargs)
    session.run("ruff", "format", "--check", *session.posargs)
    workflows = sorted(str(p) for p in (HERE / ".github" / "workflows").glob("*.yml"))
    session.run("actionlint", "-no-color", "-shellcheck=shellcheck", *workflows)
    session.run("zizmor", "--offline", "--no-progress", *workflows)


@nox.session(venv_backend="none")
def dist(session: nox.Session) -> None:
    """Build the sdist and the wheel (uv build) into dist/ and check that both carry the
    templates and the in-env scripts an installed archlock needs."""
    out = str(HERE / "dist")
    session.run(nox.virtualenv.UV, "build", "--clear", "--out-dir", out, str(HERE), external=True)
    session.run(sys.executable, str(HERE / "scripts" / "check-dist.py"), out, external=True)


@nox.session
def typecheck(session: nox.Session) -> None:
    """Type-check src/ and the noxfile (mypy --strict, configured in pyproject.toml)."""
    _install(session, "dev", "lint")
    session.run("mypy", *session.posargs)


@nox.session
def init(session: nox.Session) -> None:
    """Set up archlock in another project: `nox -s init -- --project PATH [--run CMD]`."""
    _archlock(session, "init")


@nox.session
def lock(session: nox.Session) -> None:
    """Lock every env: uv.lock plus hashed per-env locks in envs/locks/."""
    # its job is to update uv.lock: it installs without --locked
    _archlock(session, "lock", locked=False)


@nox.session(name="lock-check")
def lock_check(session: nox.Session) -> None:
    """Fail if uv.lock or any env lock is stale (what CI runs)."""
    _archlock(session, "lock", "--check")


@nox.session
def audit(session: nox.Session) -> None:
    """Report packages that would build from source or break on a target."""
    _archlock(session, "audit")


@nox.session
def tests(session: nox.Session) -> None:
    """Run the test suite (add `-- --integration` for docker, PyPI and browser tests)."""
    _install(session, "dev")
    session.run("pytest", *session.posargs)


@nox.session(name="setup-mac", venv_backend="none")
def setup_mac(session: nox.Session) -> None:
    """Build a native Apple Silicon .venv from the macOS lock (also from a Rosetta shell)."""
    uv = nox.virtualenv.UV
    # Off macOS: a one-line refusal before anything is installed (standard library only).
    src = str(Path(__file__).resolve().parent / "src")
    session.run(sys.executable, "-m", "archlock.mac", "--check-host", env={"PYTHONPATH": src})
    # archlock runs from a throwaway uv env; under Rosetta it runs native steps with `arch -arm64`.
    tool = ("run", "--quiet", "--no-project", "--python", ">=3.11", "--with-editable", ".")
    session.run(uv, *tool, "python", "-m", "archlock", "setup-mac", "--uv", uv, *session.posargs)


@nox.session
def bench(session: nox.Session) -> None:
    """Print archlock's time as ratios against the raw tools doing the same work."""
    _archlock(session, "bench")


@nox.session
def schema(session: nox.Session) -> None:
    """Regenerate the env spec JSON Schema (`-- --check` to check for drift)."""
    _archlock(session, "schema")


@nox.session
def scan(session: nox.Session) -> None:
    """Report code that will not run on MPS, CPU-only or arm64 machines (text, json, sarif)."""
    _archlock(session, "scan")


@nox.session
def verify(session: nox.Session) -> None:
    """Sync this host's env from its lock, run probe + suite there: results/<env>.host.json."""
    _archlock(session, "verify")


@nox.session
def matrix(session: nox.Session) -> None:
    """Combine results/*.json into the feature x env matrix (results/matrix.md and .html)."""
    _archlock(session, "matrix")


@nox.session
def ci(session: nox.Session) -> None:
    """CI's graph here: render check, build and verify every Linux image, matrix gate."""
    _archlock(session, "ci")


@nox.session
def render(session: nox.Session) -> None:
    """Render docker/ (Dockerfiles, bake file) and the CI workflow; `-- --check` fails on drift."""
    _archlock(session, "render")


@nox.session(name="render-check")
def render_check(session: nox.Session) -> None:
    """Fail if docker/ or the workflow no longer match templates/ and the locks."""
    _archlock(session, "render", "--check")


@nox.session
def build(session: nox.Session) -> None:
    """Build the rendered images (buildx, else an announced BuildKit fallback); `-- --push`."""
    _archlock(session, "build")


@nox.session
def clean(session: nox.Session) -> None:
    """Remove archlock's images, dangling layers, build cache beyond the cap, unreferenced
    registry blobs; `-- --dry-run` lists them with their sizes."""
    _archlock(session, "clean")


@nox.session
def repro(session: nox.Session) -> None:
    """Diagnose a teammate's report, then rebuild and rerun it: `nox -s repro -- REPORT`."""
    if not session.posargs:
        session.error(
            "Usage: nox -s repro -- REPORT [--diff-only] [--bisect] [--as-locked] "
            "[--approximate linux-arm64]"
        )
    _archlock(session, "repro")
