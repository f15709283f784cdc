"""`archlock setup-mac`: detect, find a native interpreter, build the venv, verify, summarise.

Also runnable as `python -m archlock.mac` with only the standard library importable (the nox
session uses that to refuse early off macOS, before installing anything).
"""

from __future__ import annotations

import argparse
import shlex
from dataclasses import dataclass
from pathlib import Path

from archlock.errors import CheckFailed, ExternalCommandError, exit_code_of
from archlock.mac.envinfo import LockFacts, MacEnv, load_mac_env, read_lock
from archlock.mac.host import HostFacts, detect, refuse_unless_apple_silicon
from archlock.mac.plan import Options, Plan, make_plan, survey
from archlock.mac.shellfix import ShellAdvice, advise, fix_rc, rc_file
from archlock.mac.summary import Outcome, render
from archlock.mac.system import HostSystem, MacSystem

VERB = "setup-mac"
HELP = "build a native Apple Silicon venv from the macOS lock (also from a Rosetta shell)"


@dataclass(frozen=True)
class Request:
    options: Options
    dry_run: bool = False
    fix_shell: bool = False


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(VERB, help=HELP, description=HELP[0].upper() + HELP[1:] + ".")
    add_arguments(parser)
    parser.set_defaults(func=run)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--env", help="the macOS env to build (default: the project's only macOS env)"
    )
    parser.add_argument("--venv", type=Path, help="where the venv goes (default: PROJECT/.venv)")
    parser.add_argument(
        "--uv", help="the uv to prefer (any uv without an arm64 slice is passed over)"
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="print the plan (the commands) and run nothing"
    )
    parser.add_argument(
        "--fix-shell",
        action="store_true",
        help="add the PATH fix to your shell startup file (with a backup)",
    )
    parser.add_argument(
        "--no-verify", action="store_true", help="skip `archlock verify` after building"
    )
    parser.add_argument(
        "--check-host",
        action="store_true",
        help="only check that this host is an Apple Silicon Mac",
    )


def run(args: argparse.Namespace, system: MacSystem | None = None) -> int:
    system = system or HostSystem()
    host = detect(system)
    refuse_unless_apple_silicon(host)
    if args.check_host:
        where = "under Rosetta 2" if host.translated else "natively"
        print(
            f"archlock {VERB}: Apple Silicon Mac, macOS {host.macos or 'unknown'}; "
            f"this process runs {where}"
        )
        return 0
    project = Path(args.project).resolve()
    env = load_mac_env(project, args.env)
    options = Options(
        project=project,
        venv=(args.venv or project / ".venv").absolute(),
        uv=args.uv,
        verify=not args.no_verify,
    )
    return setup(system, host, env, read_lock(env), Request(options, args.dry_run, args.fix_shell))


def setup(
    system: MacSystem, host: HostFacts, env: MacEnv, lock: LockFacts, request: Request
) -> int:
    """Everything after the refusal and the project: plain data in, one summary out."""
    facts = survey(system, host, env, lock, request.options)
    plan = make_plan(facts, request.options, system.executable())
    advice = advise(system, host, facts.chosen, env.python)
    outcome = _carry_out(system, plan, advice, request)
    title = f"archlock {VERB}: env {env.name}, macOS {host.macos or 'unknown'} on Apple Silicon"
    print(render(title, plan, advice, outcome, request.options.venv), end="")
    return _exit_code(plan, outcome)


def _carry_out(system: MacSystem, plan: Plan, advice: ShellAdvice, request: Request) -> Outcome:
    target = (
        rc_file(system.environ().get("SHELL"), Path(system.home())) if request.fix_shell else None
    )
    if request.dry_run or plan.blocked:
        return Outcome(request.dry_run, (), None, None, target)
    ran = []
    for step in plan.steps:
        code = _execute(system, step.argv)
        ran.append((step, code))
        if code != 0:
            return Outcome(False, tuple(ran), None, None, target)
    verify_rc = _execute(system, plan.verify.argv) if plan.verify else None
    change = fix_rc(target, advice.path_line) if target is not None and advice.path_line else None
    return Outcome(False, tuple(ran), verify_rc, change, target)


def _execute(system: MacSystem, argv: tuple[str, ...]) -> int:
    print(f"archlock {VERB}: $ {shlex.join(argv)}", flush=True)
    return system.execute(list(argv))


def _exit_code(plan: Plan, outcome: Outcome) -> int:
    if plan.blocked:
        return CheckFailed.exit_code
    if outcome.failed is not None:
        return ExternalCommandError.exit_code
    if outcome.verify_rc not in (None, 0):
        return CheckFailed.exit_code
    return 0


def main(argv: list[str] | None = None) -> int:
    """`python -m archlock.mac`: the same verb without the rest of the CLI (and its imports)."""
    parser = argparse.ArgumentParser(prog=f"archlock {VERB}", description=HELP)
    parser.add_argument(
        "--project",
        type=Path,
        default=Path.cwd(),
        help="the project (default: the current directory)",
    )
    add_arguments(parser)
    args = parser.parse_args(argv)
    return exit_code_of(VERB, lambda: run(args))
