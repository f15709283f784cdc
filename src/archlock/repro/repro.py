"""`archlock repro REPORT` (`nox -s repro -- REPORT`): diagnose a teammate's report, then
reproduce it.

1. Load the report (`archlock.report/1`, or a bare `archlock.probe/1` document) and check its
   shape (`archlock.repro.reportfile`): a malformed or unknown report is one ConfigError naming
   the file and the key.
2. Pick the env: `--env`, else the one the report names, else the env for the report's platform.
3. Diagnose: every drift from that env's lock, most likely cause first, each with its fix
   (`archlock.repro.drift`). `--diff-only` stops here.
4. Reproduce (`archlock.repro.run`): the report's package versions (or `--as-locked`, the lock's)
   on the report's platform, the recorded command again, and a verdict.

A report taken in an archlock image (`archlock verify --image` writes one) names the image's ID:
before step 4 the env's image is rebuilt from this checkout and the IDs compared
(`archlock.repro.rebuild`): the same ID is the same bits.

`--bisect` (archlock.repro.bisect) instead rebuilds the teammate's env as the locked env plus
every drift, checks that the lock passes, and narrows the drift to the smallest failing subset.

`--json FILE` writes the whole result (`archlock.repro/1`, docs/report-schema.md) atomically;
`--markdown FILE` the same diagnosis as Markdown.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shlex
from pathlib import Path
from typing import Any

from archlock.build.render import DEFAULT_UV_IMAGE
from archlock.core import cabundle, cliargs
from archlock.core import docker as du
from archlock.core.fsutil import atomic_write, output_file, temp_dir
from archlock.core.lockfile import canonical
from archlock.core.lockfile import pins as lock_pins
from archlock.core.platforms import Platform
from archlock.core.project import Project
from archlock.core.spec import EnvSpec
from archlock.errors import ConfigError
from archlock.inenv import locate
from archlock.lock import expect as lock_expect
from archlock.repro import bisect, markdown, rebuild, sandbox, trial
from archlock.repro import run as rr
from archlock.repro.drift import Drift, Target, diagnose, ignored_env, resync
from archlock.repro.driftset import drift_set
from archlock.repro.reportfile import load_report, report_sha
from archlock.verify.targets import host_platform

RESULT_SCHEMA = "archlock.repro/1"
# ---------------------------------------------------------------------------------------------
# which env
# ---------------------------------------------------------------------------------------------


def choose_env(
    project: Project, report: dict[str, Any], name: str | None, path: Path
) -> tuple[EnvSpec, str]:
    """The env to compare with, and how it was chosen: --env, else the env the report names (when
    this checkout has its lock), else the env for the report's platform."""
    if name:
        return project.envs([name])[0], "chosen with --env"
    envs = project.all_envs()
    named = (report.get("lock") or {}).get("env")
    for env in envs:
        if env.name == named and project.env_lock(env.name).exists():
            return env, "the env the report names"
    platform = rr.report_platform(report)
    mine = [env for env in envs if platform is not None and env.platform.name == platform.name]
    if not mine:
        label = platform.name if platform else report.get("platform") or "its platform"
        raise ConfigError(
            f"{path}: platform: no env in {project.envs_dir} targets {label}",
            fix=f"pass --env NAME, or add an env spec with `platform: {label}`",
        )
    build = locate.torch_build(report["probe"])
    mine.sort(
        key=lambda e: (
            not project.env_lock(e.name).exists(),
            e.accelerator != build,
            e.opt_in,
            e.name,
        )
    )
    how = f"matched by the report's platform, {mine[0].platform.name}"
    if named and named != mine[0].name:
        how += f"; the report's env {named} has no lock here"
    return mine[0], how


def make_target(project: Project, env: EnvSpec, report: dict[str, Any]) -> Target:
    lock = project.env_lock(env.name)
    if not lock.exists():
        raise ConfigError(
            f"{lock}: missing: env {env.name} has no lock",
            fix=f"run: archlock lock --env {env.name}",
        )
    raw = lock.read_bytes()
    notes = []
    theirs = (report.get("lock") or {}).get("sha256")
    ours = hashlib.sha256(raw).hexdigest()
    if theirs and theirs != ours:
        notes.append(
            f"the report's lock (sha256 {theirs[:12]}) differs from this checkout's ({ours[:12]}): "
            "the teammate's checkout had another lock; the drift below is against this one"
        )
    return Target(
        env=env,
        lock_rel=lock.relative_to(project.root).as_posix(),
        lock_sha256=ours,
        pins=lock_pins(raw.decode("utf-8")),
        project_name=project.name,
        notes=notes,
        expect=lock_expect.load(project.locks_dir, env),
    )


# ---------------------------------------------------------------------------------------------
# printing
# ---------------------------------------------------------------------------------------------


def torch_text(doc: dict[str, Any]) -> str:
    facts = doc.get("torch") or {}
    if facts.get("importable"):
        return str(facts.get("version"))
    if "skipped" in facts or not facts:
        return "not probed"
    installed = any(d["name"].lower() == "torch" for d in doc.get("distributions") or [])
    return "installed, does not import" if installed else "not installed"


def describe(report: dict[str, Any]) -> str:
    doc = report["probe"]
    made = f"; made {report['created']}" if report.get("created") else ""
    platform = report.get("platform") or "?"
    return f"{platform}, Python {doc['python']['version']}, torch {torch_text(doc)}{made}"


def print_head(path: Path, report: dict[str, Any], target: Target, how: str) -> None:
    print(f"archlock repro: {path}")
    print(f"  from: {describe(report)}")
    print(
        f"  env:  {target.env.name} ({how}); "
        f"lock {target.lock_rel} sha256 {target.lock_sha256[:12]}"
    )
    command = report.get("command")
    if command:
        print(f"  command: {shlex.join(command['argv'])} -> exit {command['exit_code']}")
    for note in target.notes:
        print(f"  note: {note}")


def print_drift(drifts: list[Drift], ignored: list[str]) -> None:
    if not drifts:
        print("\nNo drift: the env matches its lock.")
    else:
        print(f"\nDrift, most likely cause first ({len(drifts)}):")
    for number, drift in enumerate(drifts, 1):
        print(f"  {number}. [{drift.kind}] {drift.title}")
        print(f"     fix: {drift.fix}")
    if ignored:
        print(f"  (set but without effect on this platform: {', '.join(ignored)})")


# ---------------------------------------------------------------------------------------------
# reproduction
# ---------------------------------------------------------------------------------------------


def options_from(args: argparse.Namespace, project: Project) -> rr.Options:
    links = Path(args.find_links).resolve() if args.find_links else None
    if links and not links.is_dir():
        raise ConfigError(
            f"--find-links {args.find_links}: not a folder", fix="pass a folder of wheels"
        )
    return rr.Options(
        as_locked=args.as_locked,
        approximate=args.approximate,
        venv=args.venv,
        base=args.base,
        uv_image=rr.default_uv_image(project, args.uv_image),
        ca_bundle=rr.default_ca_bundle(project, args.ca_bundle),
        extra_index_url=args.extra_index_url,
        find_links=links,
        timeout=args.timeout,
    )


def base_image(project: Project, env: EnvSpec, where: rr.Where, options: rr.Options) -> str:
    if options.base:
        return options.base
    envs = [env] + [e for e in project.all_envs() if e.platform.name == where.platform.name]
    for candidate in envs:
        if candidate.platform.name == where.platform.name and candidate.image_ref:
            return candidate.image_ref
    raise ConfigError(
        f"no env for {where.platform.name} names a base image (image.base)",
        fix="pass --base IMAGE (an image with python3 of the report's minor version)",
    )


def requirements(
    report: dict[str, Any], project: Project, target: Target, where: rr.Where, options: rr.Options
) -> rr.Requirements:
    if options.as_locked:
        env = locked_env_for(project, target.env, where.platform)
        reqs = rr.lock_requirements(project.env_lock(env.name), env.python)
        if env is not target.env:
            reqs.notes.append(
                f"{target.env.name}'s lock is for {target.env.platform.name}: using {env.name}'s"
            )
        return reqs
    reqs = rr.report_requirements(report, project.name, options)
    return rr.preflight(reqs, where.platform, options)


def locked_env_for(project: Project, env: EnvSpec, platform: Platform) -> EnvSpec:
    """The env whose lock installs on `platform`: the target itself, or (an approximation) the
    project's env for that platform that has a lock."""
    if env.platform.name == platform.name:
        return env
    for other in project.all_envs():
        if other.platform.name == platform.name and project.env_lock(other.name).exists():
            return other
    raise ConfigError(
        f"--as-locked: no env for {platform.name} has a lock in {project.locks_dir}",
        fix="lock one (archlock lock --env NAME) or drop --as-locked",
    )


def print_plan(where: rr.Where, reqs: rr.Requirements) -> None:
    which = "the lock's" if reqs.source == "lock" else "the report's"
    place = (
        f"an image for {where.platform.docker_platform}"
        if where.kind == "image"
        else "a throwaway venv"
    )
    print(f"\nReproducing in {place}: {which} {reqs.count} package versions, Python {reqs.python}")
    if where.approximate:
        print(f"  approximation: {where.approximate}")
    for pin, why in reqs.left_out:
        print(f"  left out: {pin}: {why}")
    for note in reqs.notes:
        print(f"  note: {note}")


def reproduce(
    report: dict[str, Any],
    path: Path,
    project: Project,
    target: Target,
    options: rr.Options,
    host: Platform | None,
) -> dict[str, Any]:
    where = rr.where_to_run(report, host, options)
    if isinstance(where, str):
        print(f"\n{where}")
        return {"status": "unsupported", "text": where}
    reqs = requirements(report, project, target, where, options)
    print_plan(where, reqs)
    record: dict[str, Any] = {
        "where": where.kind,
        "platform": where.platform.name,
        "source": reqs.source,
        "python": reqs.python,
        "packages": reqs.count,
        "left_out": [{"pin": p, "why": w} for p, w in reqs.left_out],
        "approximate": where.approximate,
    }
    outcome = run_where(report, path, project, target, where, reqs, options, record)
    if report.get("command") is None:
        text = "the report recorded no command: nothing to rerun"
        print(
            f"\n{text}"
            + (f"; try it: docker run --rm -it {record['image']} bash" if "image" in record else "")
        )
        return dict(record, status="no-command", text=text)
    result = rr.verdict(report["command"], outcome["exit_code"], outcome["output_tail"], reqs)
    print(f"\nran: {shlex.join(outcome['argv'])} -> exit {outcome['exit_code']}")
    print(f"Verdict: {result['status']}: {result['text']}")
    return dict(record, **result, argv=outcome["argv"], output_tail=outcome["output_tail"])


def run_where(
    report: dict[str, Any],
    path: Path,
    project: Project,
    target: Target,
    where: rr.Where,
    reqs: rr.Requirements,
    options: rr.Options,
    record: dict[str, Any],
) -> dict[str, Any]:
    if where.kind == "venv":
        with temp_dir("repro") as tmp:
            venv = sandbox.make_venv(Path(tmp), reqs, options)
            if report.get("command") is None:
                return {}
            announce(report, "on this host, in the throwaway venv")
            return sandbox.run_in_venv(venv, report, project.root, options)
    tag = sandbox.image_tag(report_sha(path), where.platform, reqs.source)
    labels = {"io.archlock.repro.env": target.env.name, "io.archlock.repro.source": reqs.source}
    text = sandbox.dockerfile(
        base_image(project, target.env, where, options), options.uv_image, reqs, options, labels
    )
    seconds = sandbox.build_image(tag, text, reqs, where, options)
    print(f"  built {tag} in {seconds:.0f} s")
    record["image"] = tag
    if report.get("command") is None:
        return {}
    announce(report, f"in {tag}")
    return sandbox.run_in_image(tag, report, where, project.root, options)


def announce(report: dict[str, Any], where: str) -> None:
    """Say what runs before it runs: the command comes from someone else's report."""
    print(
        f"  running the report's command {where}: {shlex.join(report['command']['argv'])}",
        flush=True,
    )


# ---------------------------------------------------------------------------------------------
# bisect
# ---------------------------------------------------------------------------------------------


def bisectable(report: dict[str, Any], path: Path) -> None:
    command = report.get("command")
    if command is None:
        raise ConfigError(
            f"{path}: command: the report recorded no command, so there is nothing to bisect",
            fix="make the report with the failing command: archlock report -- CMD ARGS",
        )
    if command["exit_code"] == 0:
        raise ConfigError(
            f"{path}: command.exit_code: the recorded command succeeded: nothing to bisect",
            fix="make the report with the command that fails",
        )


def base_for_bisect(
    project: Project, target: Target, where: rr.Where, options: rr.Options
) -> tuple[str, rr.Requirements, str]:
    """The cached base (tag, requirements, Dockerfile): the locked env, named by its content so
    every report against the same lock shares it."""
    env = locked_env_for(project, target.env, where.platform)
    reqs = rr.lock_requirements(project.env_lock(env.name), env.python)
    labels = {"io.archlock.repro.env": env.name, "io.archlock.repro.source": "lock"}
    text = sandbox.dockerfile(
        base_image(project, env, where, options), options.uv_image, reqs, options, labels
    )
    digest = hashlib.sha256((text + reqs.text()).encode()).hexdigest()[:12]
    return f"{rr.IMAGE_NAME}/{where.platform.name}:base-{digest}", reqs, text


def build_base(
    tag: str, reqs: rr.Requirements, text: str, where: rr.Where, options: rr.Options
) -> dict[str, Any]:
    if du.image_exists(tag):
        print(f"  base: {tag} (the locked env, cached)")
        return {"image": tag, "built": False, "seconds": 0.0}
    print(f"  base: building {tag} (the locked env, {reqs.count} packages)", flush=True)
    try:
        seconds = sandbox.build_image(tag, text, reqs, where, options)
    except KeyboardInterrupt:
        du.remove_images(tag)
        raise
    return {"image": tag, "built": True, "seconds": round(seconds, 1)}


def bisect_report(
    report: dict[str, Any],
    path: Path,
    project: Project,
    target: Target,
    options: rr.Options,
    limits: bisect.Limits,
    host: Platform | None,
) -> dict[str, Any]:
    bisectable(report, path)
    where = rr.where_to_run(report, host, options)
    if isinstance(where, str):
        print(f"\n{where}")
        return {"status": "unsupported", "text": where}
    reqs = rr.preflight(
        rr.report_requirements(report, project.name, options), where.platform, options
    )
    left = {canonical(pin.partition("==")[0]): why for pin, why in reqs.left_out}
    drifts = drift_set(report, target, left)
    print(
        f"\nBisecting {len(drifts.changes)} drift(s) in containers for "
        f"{where.platform.docker_platform}"
    )
    for change, why in drifts.untestable:
        print(f"  not replayed: {change.title}: {why}")
    tag, base_reqs, text = base_for_bisect(project, target, where, options)
    base = build_base(tag, base_reqs, text, where, options)
    runner = trial.Runner(
        bisect.new_run_id(),
        tag,
        str(where.platform.docker_platform),
        report,
        project.root,
        options.ca_bundle,
    )
    result, log, seconds = bisect.narrow(runner, drifts, limits, [tag] if base["built"] else [])
    found = bisect.verdict(result, log, seconds, report, drifts, resync(target))
    print(f"\nVerdict: {found['status']}: {found['text']}")
    for line in found.get("outside") or []:
        print(f"  outside the packages: {line}")
    if found.get("fix"):
        print(f"  fix: {found['fix']}")
    return dict(found, **bisect.record(result, log, seconds, drifts, base))


# ---------------------------------------------------------------------------------------------
# the verb
# ---------------------------------------------------------------------------------------------


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "repro", help="diagnose a teammate's report and reproduce its failure"
    )
    parser.add_argument("report", type=Path, help="the JSON file `archlock report` wrote")
    parser.add_argument(
        "--env", help="compare with this env (default: the report's, else its platform's)"
    )
    parser.add_argument("--diff-only", action="store_true", help="list the drift and stop")
    parser.add_argument(
        "--as-locked", action="store_true", help="reproduce with the lock's versions instead"
    )
    parser.add_argument(
        "--approximate",
        choices=["linux-arm64"],
        help="reproduce a macOS report on linux/arm64 (CPU)",
    )
    parser.add_argument(
        "--venv",
        action="store_true",
        help="a throwaway venv on this host instead of an image "
        "(the host must be the report's platform)",
    )
    parser.add_argument("--base", help="base image (default: the env's image.base)")
    parser.add_argument(
        "--uv-image",
        help=f"an image holding /uv (default ${rr.UV_IMAGE_ENV}, else [tool.archlock.render] "
        f"uv-image, else {DEFAULT_UV_IMAGE})",
    )
    parser.add_argument(
        "--ca-bundle",
        help=f"CA bundle for TLS-intercepting proxies (default ${cabundle.CA_ENV}, else "
        "[tool.archlock.build] ca-bundle, else the system bundle; 'none' for none)",
    )
    parser.add_argument(
        "--extra-index-url", help="another index with the report's local builds (e.g. +cpu)"
    )
    parser.add_argument("--find-links", help="a folder of wheels with the report's local builds")
    parser.add_argument(
        "--timeout",
        type=cliargs.seconds,
        default=1800.0,
        help="seconds the rerun may take (default 1800)",
    )
    parser.add_argument(
        "--bisect",
        action="store_true",
        help="narrow the drift to the smallest subset that still fails (delta debugging)",
    )
    parser.add_argument(
        "--trial-timeout",
        type=cliargs.seconds,
        default=bisect.DEFAULT_TRIAL_TIMEOUT,
        help=f"seconds one bisect trial may take (default {bisect.DEFAULT_TRIAL_TIMEOUT:g})",
    )
    parser.add_argument(
        "--bisect-timeout",
        type=cliargs.seconds,
        default=bisect.DEFAULT_TOTAL_TIMEOUT,
        help=f"seconds all bisect trials may take (default {bisect.DEFAULT_TOTAL_TIMEOUT:g})",
    )
    parser.add_argument(
        "--json", type=Path, help="also write the result as JSON (archlock.repro/1)"
    )
    parser.add_argument("--markdown", type=Path, help="also write the diagnosis as Markdown")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.json:
        output_file(args.json, "--json")
    if args.markdown:
        output_file(args.markdown, "--markdown")
    if args.bisect and (args.diff_only or args.venv or args.as_locked):
        other = "--diff-only" if args.diff_only else "--venv" if args.venv else "--as-locked"
        raise ConfigError(
            f"--bisect with {other}: bisect reruns the command in containers over the locked env",
            fix=f"drop {other} or --bisect",
        )
    report = load_report(args.report)
    project = Project.load(args.project)
    options = None if args.diff_only else options_from(args, project)
    env, how = choose_env(project, report, args.env, args.report)
    target = make_target(project, env, report)
    drifts = diagnose(report, target)
    print_head(args.report, report, target, how)
    print_drift(drifts, ignored_env(report, target))
    result: dict[str, Any] = {
        "schema": RESULT_SCHEMA,
        "report": str(args.report),
        "env": env.name,
        "matched_by": how,
        "lock": {"path": target.lock_rel, "sha256": target.lock_sha256},
        "notes": target.notes,
        "drift": [drift.as_dict() for drift in drifts],
        "reproduction": None,
    }
    if options is not None and args.bisect:
        limits = bisect.Limits(args.trial_timeout, args.bisect_timeout)
        result["bisect"] = bisect_report(
            report, args.report, project, target, options, limits, host_platform()
        )
    elif options is not None:
        image = rebuild.image_of(report)
        if image is not None:
            sha = report_sha(args.report)
            result["rebuild"] = rebuild.rebuild(image, sha, project, env.name, options)
        result["reproduction"] = reproduce(
            report, args.report, project, target, options, host_platform()
        )
    if args.json:
        atomic_write(args.json, json.dumps(result, indent=2) + "\n")
    if args.markdown:
        atomic_write(args.markdown, markdown.render(result))
    return 0
