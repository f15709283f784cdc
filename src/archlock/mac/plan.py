"""What is wrong on this Mac and which commands fix it.

`survey` asks the machine (through `MacSystem`) and returns plain facts; `make_plan` turns
those facts into problems and steps without asking anything, so every decision is testable.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from archlock.mac import interpreters
from archlock.mac.envinfo import LockFacts, MacEnv, older, required_macos
from archlock.mac.host import HostFacts
from archlock.mac.interpreters import Candidate, Judgement, UvChoice
from archlock.mac.system import MacSystem


@dataclass(frozen=True)
class Survey:
    host: HostFacts
    env: MacEnv
    lock: LockFacts
    uv: UvChoice
    chosen: Judgement | None
    judged: tuple[Judgement, ...]
    venv_exists: bool  # something is already at the venv path
    venv: Judgement | None  # the existing venv's interpreter; None when it has none
    clt: bool | None  # Xcode command line tools present; None when the lock needs no build


@dataclass(frozen=True)
class Options:
    project: Path
    venv: Path
    uv: str | None = None  # the uv to prefer (nox passes its own)
    verify: bool = True


@dataclass(frozen=True)
class Step:
    argv: tuple[str, ...]
    why: str


@dataclass(frozen=True)
class Problem:
    text: str
    fix: str | None = None
    blocking: bool = False


@dataclass(frozen=True)
class Plan:
    interpreter: str  # a path, or the `uv python install` request when none fits
    interpreter_why: str
    problems: tuple[Problem, ...]
    notes: tuple[str, ...]
    steps: tuple[Step, ...]
    verify: Step | None

    @property
    def blocked(self) -> bool:
        return any(problem.blocking for problem in self.problems)


# -- survey: every question asked of the machine -----------------------------------------------


def survey(
    system: MacSystem, host: HostFacts, env: MacEnv, lock: LockFacts, options: Options
) -> Survey:
    uv = interpreters.choose_uv(system, options.uv)
    chosen, judged = interpreters.choose(system, env.python, uv.path)
    return Survey(
        host=host,
        env=env,
        lock=lock,
        uv=uv,
        chosen=chosen,
        judged=tuple(judged),
        venv_exists=system.exists(str(options.venv)),
        venv=_existing_venv(system, options.venv, env.python),
        clt=_clt(system) if lock.needs_source_build else None,
    )


def _existing_venv(system: MacSystem, venv: Path, python: str) -> Judgement | None:
    path = str(venv / "bin" / "python")
    if not system.is_executable(path):
        return None
    return interpreters.judge(system, Candidate(path, "existing venv"), python)


def _clt(system: MacSystem) -> bool:
    return system.capture(["xcode-select", "-p"]).returncode == 0


# -- plan: decisions on plain facts ------------------------------------------------------------


def make_plan(facts: Survey, options: Options, archlock_python: str) -> Plan:
    problems = [*_host_problems(facts), *_interpreter_problems(facts), *_tool_problems(facts)]
    interpreter, why = _interpreter(facts)
    prefix = facts.host.native_prefix
    steps = _build_steps(facts, options, interpreter, prefix) if facts.uv.path else []
    return Plan(
        interpreter=interpreter,
        interpreter_why=why,
        problems=tuple(problems),
        notes=tuple(_notes(facts)),
        steps=tuple(steps),
        verify=_verify_step(facts, options, archlock_python) if options.verify else None,
    )


def _interpreter(facts: Survey) -> tuple[str, str]:
    if facts.chosen is not None:
        return (
            facts.chosen.candidate.path,
            f"{facts.chosen.reason}, from {facts.chosen.candidate.source}",
        )
    request = interpreters.uv_install_request(facts.env.python)
    return request, f"no native Python {facts.env.python} was found: uv installs one for aarch64"


def _build_steps(
    facts: Survey, options: Options, interpreter: str, prefix: tuple[str, ...]
) -> list[Step]:
    uv = (*prefix, str(facts.uv.path))
    steps = []
    if facts.chosen is None:
        steps.append(
            Step(
                (*uv, "python", "install", interpreter),
                f"install a native CPython {facts.env.python}",
            )
        )
    # Always a fresh venv (uv's cache makes it quick): a venv built from a translated process
    # can hold x86_64 wheels even when its Python is native. uv will not --clear a non-venv.
    clear = ("--clear",) if facts.venv_exists else ()
    why = "replace the venv with a fresh native one" if clear else "create the venv"
    steps.append(Step((*uv, "venv", "--python", interpreter, *clear, str(options.venv)), why))
    venv_python = str(options.venv / "bin" / "python")
    sync = (*uv, "pip", "sync", "--python", venv_python, "--require-hashes", str(facts.env.lock))
    steps.append(Step(sync, f"install exactly the {facts.env.name} lock, every file hash-checked"))
    return steps


def _verify_step(facts: Survey, options: Options, archlock_python: str) -> Step:
    prefix = facts.host.native_prefix if facts.host.self_can_run_native else ()
    argv = (*prefix, archlock_python, "-m", "archlock", "verify", "--project", str(options.project))
    argv += ("--env", facts.env.name, "--venv", str(options.venv), "--no-sync")
    return Step(argv, "probe + suite inside the venv (native binaries, MPS, the training run)")


def _host_problems(facts: Survey) -> list[Problem]:
    problems = []
    if facts.host.translated:
        problems.append(
            Problem(
                f"archlock itself runs under Rosetta 2 ({facts.host.machine}): "
                f"{_why_translated(facts.host)}"
            )
        )
    needed, why = required_macos(facts.env, facts.lock.pins)
    have = facts.host.macos
    if needed and have and older(have, needed):
        fix = (
            f"update macOS to {needed} or later, "
            "or lock an older torch (torch<2.12 runs on macOS 13) and run `nox -s lock`"
        )
        problems.append(Problem(f"macOS {have} is older than {needed}: {why}", fix, blocking=True))
    if facts.clt is False:
        names = ", ".join(facts.lock.needs_source_build or ())
        text = f"the lock builds {names} from source and the Xcode command line tools are missing"
        problems.append(Problem(text, "xcode-select --install", blocking=True))
    return problems


def _why_translated(host: HostFacts) -> str:
    if host.self_can_run_native:
        return "it was started from a shell or terminal that runs under Rosetta"
    return "its Python is an x86_64-only build"


def _interpreter_problems(facts: Survey) -> list[Problem]:
    problems = [
        Problem(f"{j.candidate.path} ({j.candidate.source}) is {j.reason}")
        for j in facts.judged
        if j.x86_only and j.candidate.path.endswith(f"python{facts.env.python}")
    ]
    if facts.venv is not None and not facts.venv.fits:
        problems.append(Problem(f"the existing venv's Python is {facts.venv.reason}"))
    if facts.chosen is None:
        problems.append(Problem(f"no native Python {facts.env.python} on this Mac"))
    return problems


def _tool_problems(facts: Survey) -> list[Problem]:
    if facts.uv.path:
        return []
    found = "; ".join(
        f"{path} is {'+'.join(archs) or 'not Mach-O'}" for path, archs in facts.uv.rejected
    )
    text = f"no uv that runs natively ({found or 'none found'})"
    fix = (
        "install a native uv (`arch -arm64 /opt/homebrew/bin/brew install uv`) "
        "and pass it with --uv PATH"
    )
    return [Problem(text, fix, blocking=True)]


def _notes(facts: Survey) -> list[str]:
    notes = []
    if facts.uv.path and facts.uv.rejected:
        passed = ", ".join(path for path, _ in facts.uv.rejected)
        notes.append(
            f"passed over x86_64-only uv ({passed}): it would pick Intel wheels; "
            f"using {facts.uv.path}"
        )
    if facts.host.translated:
        notes.append("native steps run with `arch -arm64` because this process is translated")
        if not facts.host.self_can_run_native:
            notes.append(
                f"verify runs from {facts.host.machine}-only Python; "
                "its interpreter checks may flag Rosetta"
            )
    if facts.lock.needs_source_build is None:
        notes.append(f"source builds not checked: no pylock.{facts.env.name}.toml next to the lock")
    return notes
