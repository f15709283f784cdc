"""The one diagnosis: an environment's facts (the probe's document) against its env spec and lock.

`diagnose(facts, ctx)` answers each question once (is this the env's OS, its interpreter
architecture, its Python; is torch the locked version and build; are the packages the lock's;
are the compiled files native; is macOS above the floor; does the NVIDIA driver fit the CUDA
build; does torch have kernels for the GPU; is a behaviour-changing variable set; is the
interpreter emulated) and returns every difference as a `Finding`, most likely cause first (the
order of `KINDS`). `verify` renders findings as pass/fail checks; `repro` as ranked drifts with
fixes. The fixes that depend on where the facts came from (re-sync a venv, rebuild an image, run
repro with another env) come in through `Context`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, TypedDict

from archlock.core import platforms
from archlock.core.envvars import ENV_EFFECTS, env_effect
from archlock.core.lockfile import canonical, public_version, same_version
from archlock.core.rules.build import (
    Expectations,
    build_misfit,
    build_problem,
    cuda_of_pins,
    locked_build_text,
)
from archlock.core.rules.machine import (
    UNREADABLE_DRIVER_FIX,
    capability_gap,
    driver_rule,
    driver_upgrade_fix,
    floor_misfit,
    from_probe,
    gpu_fix,
    system_misfits,
)
from archlock.core.rules.versions import below, minor
from archlock.core.spec import EnvSpec
from archlock.inenv.locate import build_of, build_text

Section = dict[str, Any]  # one section of a probe document: a JSON object


class ProbeDoc(TypedDict, total=False):
    """An archlock.probe/1 document (archlock.inenv.probe) as the diagnosis reads it: any
    section may be missing (an older probe, or one whose section failed) or null."""

    schema: str
    os: Section | None
    machine: Section | None
    emulation: Section | None
    python: Section | None
    distributions: list[Section] | None
    binaries: Section | None
    imports: Section | None
    torch: Section | None
    gpu: Section | None
    vm: Section | None
    env: Section | None
    errors: Section | None


Facts = ProbeDoc

# (kind, why it ranks here) -- the order IS the ranking
KINDS: tuple[tuple[str, str], ...] = (
    ("platform", "another OS than the env's: nothing in the lock applies"),
    ("interpreter-arch", "a wrong-architecture interpreter (Rosetta, QEMU) gets other wheels"),
    ("python-version", "another Python minor resolves other wheels and may lack some"),
    ("torch", "the torch version or build (CPU / CUDA / MPS) decides devices and numerics"),
    ("torch-import", "torch is installed as locked but does not import"),
    ("packages-missing", "a locked package is not installed"),
    ("packages-different", "a package is installed at another version than the lock's"),
    (
        "packages-import",
        "an installed package's module does not import (a source build that "
        "left out its compiled part, a missing dependency)",
    ),
    ("packages-extra", "a package the lock lacks can change code paths (flash-attn, triton)"),
    ("compiled-arch", "a compiled file of another architecture fails to load when imported"),
    ("macos-floor", "macOS below the lock's floor: no wheels for it, or MPS ops missing"),
    ("cuda-driver", "a driver older than torch's CUDA build disables CUDA or PTX JIT"),
    ("glibc-floor", "glibc below the floor of a locked wheel: it does not install or load"),
    ("cuda-arch", "torch has no kernels for the GPU's compute capability"),
    ("env-var", "an environment variable that changes torch's behaviour is set"),
    ("emulation", "the interpreter is emulated: slow, otherwise the same platform"),
)
RANK = {kind: index for index, (kind, _) in enumerate(KINDS)}
# installers a venv may hold without a lock pin
TOOLING = frozenset({"pip", "setuptools", "wheel", "uv", "distribute"})


@dataclass(frozen=True)
class Finding:
    """One difference between what the env should be and what the facts show."""

    kind: str  # a KINDS name: what was asked
    subject: str  # what was compared: "interpreter", "torch", "numpy", "CUDA_VISIBLE_DEVICES"
    expected: str | None
    found: str | None
    severity: str  # "error": the env is not the locked one; "warning": behaviour may differ
    why: str  # one line
    fix: str
    details: tuple[str, ...] = ()
    data: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def rank(self) -> int:
        return RANK[self.kind]


@dataclass(frozen=True)
class Context:
    """The env and lock the facts are compared with, and the fixes that depend on the verb."""

    env: EnvSpec
    pins: dict[str, str]  # canonical name -> version
    lock_name: str  # how messages name the lock: envs/locks/<env>.txt
    resync: str  # the fix that rebuilds the env from its lock
    emulation_expected: bool = False  # e.g. an image of another architecture, run under QEMU
    host_gpu: bool = False  # an NVIDIA driver is visible where the facts were taken
    project_name: str | None = None  # the project itself may sit in its env without a pin
    elsewhere: str | None = None  # the fix when the facts come from another OS
    reinstall: str | None = None  # the fix that replaces files inside installed packages
    expect: Expectations | None = None  # what the lock's torch build is (archlock.lock.expect)
    where: str = "host"  # "host" | "image": a glibc floor's fix is the image's base in an image


def short(items: list[str], count: int = 3) -> str:
    more = f" and {len(items) - count} more" if len(items) > count else ""
    return ", ".join(items[:count]) + more


def installed(facts: Facts) -> dict[str, str]:
    return {canonical(d["name"]): d["version"] for d in facts.get("distributions") or []}


# ---------------------------------------------------------------------------------------------
# the interpreter: OS, architecture, Python, emulation
# ---------------------------------------------------------------------------------------------


def check_platform(facts: Facts, ctx: Context) -> list[Finding]:
    os_name, want = (facts.get("os") or {}).get("name"), ctx.env.platform
    if os_name == want.os:
        return []
    fix = ctx.elsewhere or f"verify {ctx.env.name} on a {want.name} machine or in its image"
    why = f"the env targets {want.os} ({want.name}), this is {os_name}"
    return [Finding("platform", "os", want.os, os_name, "error", why, fix)]


def check_interpreter(facts: Facts, ctx: Context) -> list[Finding]:
    python, emulation = facts.get("python") or {}, facts.get("emulation") or {}
    want, arch = ctx.env.platform, python.get("arch")
    if not arch or arch == want.binary_arch:
        return []
    archs = ", ".join(python.get("binary_archs") or ["?"])
    how = " under Rosetta 2" if emulation.get("by") == "rosetta" else ""
    needs = f"{want.name} needs {want.binary_arch}"
    why = f"the interpreter runs as {arch}{how} (binary: {archs}); {needs}"
    fix = f"recreate the env with a native {want.binary_arch} Python" + (
        f" ({want.native_setup})" if want.native_setup else f", then {ctx.resync}"
    )
    details = (f"interpreter: {python.get('executable')}",) if python.get("executable") else ()
    return [
        Finding(
            "interpreter-arch",
            "interpreter",
            want.binary_arch,
            arch,
            "error",
            why,
            fix,
            details,
            {"by": emulation.get("by")},
        )
    ]


def check_python(facts: Facts, ctx: Context) -> list[Finding]:
    version, want = (facts.get("python") or {}).get("version"), ctx.env.python
    if minor(version) in (None, want):
        return []
    why = f"Python {version}; env {ctx.env.name} is locked for Python {want}"
    fix = f"recreate the venv with Python {want} (uv venv --python {want}), then {ctx.resync}"
    return [Finding("python-version", "python", want, version, "error", why, fix)]


def check_emulation(facts: Facts, ctx: Context) -> list[Finding]:
    """Emulated where it should run natively; Rosetta 2 is check_interpreter's (a wrong arch)."""
    emulation = facts.get("emulation") or {}
    arch = (facts.get("python") or {}).get("arch")
    if not emulation.get("emulated") or ctx.emulation_expected:
        return []
    if emulation.get("by") == "rosetta" and arch != ctx.env.platform.binary_arch:
        return []
    by, host = emulation.get("by"), emulation.get("host_arch")
    why = f"this interpreter is emulated by {by} on a {host} host"
    fix = (
        f"verify {ctx.env.name} on {ctx.env.platform.name} hardware, or in its image with --image "
        "(emulation is 10-50x slower; results should otherwise match)"
    )
    return [Finding("emulation", "interpreter", "native", f"{by} on {host}", "error", why, fix)]


# ---------------------------------------------------------------------------------------------
# torch and the packages
# ---------------------------------------------------------------------------------------------


def torch_facts(facts: Facts) -> Section:
    return facts.get("torch") or {}


def torch_installed(facts: Facts) -> str | None:
    """The torch version that runs: the imported one, else the installed distribution's."""
    probed = torch_facts(facts)
    return probed.get("version") if probed.get("importable") else installed(facts).get("torch")


def check_torch(facts: Facts, ctx: Context) -> list[Finding]:
    locked, have, env = ctx.pins.get("torch"), torch_installed(facts), ctx.env
    if not locked:
        return []
    want = f"{locked} ({locked_build_text(env, ctx.expect)})"
    if have is None:
        why = f"torch is not installed; {ctx.lock_name} pins torch {want}"
        return [Finding("torch", "torch", want, None, "error", why, ctx.resync)]
    build, cuda = build_of(torch_facts(facts), have)
    label = have.partition("+")[2]
    problem = build_problem(env, ctx.expect, build, cuda, label)  # the lock's, else the spec's
    other_version = not same_version(public_version(have), public_version(locked))
    shown = f"{have} ({build_text(build, cuda)})" if build else have
    if not (problem or other_version):
        return lock_misfit(ctx, have, shown, want)
    why = f"torch {shown} is installed; {ctx.lock_name} pins torch {want}"
    data = {
        "have": have,
        "locked": locked,
        "shown": shown,
        "version": other_version,
        "build": problem,
    }
    return [
        Finding("torch", "torch", want, shown, "error", why, ctx.resync, torch_details(facts), data)
    ]


def lock_misfit(ctx: Context, have: str, shown: str, want: str) -> list[Finding]:
    """torch is installed as locked, but the lock's build is wrong for the env (e.g. a cpu env
    locked with PyPI's CUDA build): the fix is the spec or the index, never a re-sync."""
    misfit = build_misfit(ctx.env, ctx.expect) if ctx.expect else None
    if misfit is None:
        return []
    why = f"torch {shown} is installed as locked; {misfit.why}"
    data = {
        "have": have,
        "locked": ctx.pins.get("torch"),
        "shown": shown,
        "version": False,
        "build": misfit.why,
    }
    return [Finding("torch", "torch", want, shown, "error", why, misfit.fix, (), data)]


def torch_details(facts: Facts) -> tuple[str, ...]:
    probed = torch_facts(facts)
    keys = ("cuda", "cudnn", "mps_built", "cuda_available", "git_version")
    return tuple(f"{key}: {probed[key]}" for key in keys if probed.get(key) not in (None, "", []))


def check_torch_import(facts: Facts, ctx: Context) -> list[Finding]:
    probed = torch_facts(facts)
    if probed.get("importable") or "skipped" in probed or not probed:
        return []
    if "torch" not in installed(facts):  # not installed at all: check_torch says so
        return []
    error = probed.get("error", "unknown error")
    fix = (
        f"reinstall torch as locked ({ctx.resync}); if it still fails, the error names the "
        "missing library or the broken file"
    )
    return [
        Finding(
            "torch-import",
            "torch",
            "importable",
            error,
            "error",
            f"torch does not import: {error}",
            fix,
        )
    ]


def check_packages(facts: Facts, ctx: Context) -> list[Finding]:
    have = installed(facts)
    pins = {name: version for name, version in ctx.pins.items() if name != "torch"}
    missing = sorted(name for name in pins if name not in have)
    different = sorted(n for n, v in pins.items() if n in have and not same_version(have[n], v))
    own = canonical(ctx.project_name) if ctx.project_name else None
    ignore = TOOLING | {"torch"} | ({own} if own else set())
    extra = sorted(n for n in have if n not in ctx.pins and n not in ignore)
    out = []
    if missing:
        items = [f"{n}=={pins[n]}" for n in missing]
        what = "locked package(s) not installed"
        out.append(packages_finding("packages-missing", items, what, ctx.resync, missing))
    if different:
        items = [f"{n} {have[n]} (lock: {pins[n]})" for n in different]
        what = "package(s) at another version than the lock"
        out.append(packages_finding("packages-different", items, what, ctx.resync, items))
    if extra:
        items = [f"{n} {have[n]}" for n in extra]
        fix = (
            f"remove them (a sync from the lock removes what it lacks: {ctx.resync}), or add them "
            "to the project's dependencies and re-lock"
        )
        what = "package(s) the lock does not have"
        out.append(packages_finding("packages-extra", items, what, fix, extra, "warning"))
    return out


MISSING_MODULE = re.compile(r"^ModuleNotFoundError: No module named '([^']+)'")


def check_imports(facts: Facts, ctx: Context) -> list[Finding]:
    """A distribution whose top-level module does not import: named, with its error."""
    failed = (facts.get("imports") or {}).get("failed") or []
    if not failed:
        return []
    items = [
        f"{f['distribution']} {f['version']}: import {f['module']}: {f['error']}" for f in failed
    ]
    names = sorted({canonical(f["distribution"]) for f in failed})
    why = f"{len(failed)} installed module(s) do not import: {short(items, 2)}"
    return [
        Finding(
            "packages-import",
            "packages",
            None,
            None,
            "error",
            why,
            import_fix(failed[0], ctx),
            tuple(items),
            {"names": names, "failed": failed[:20]},
        )
    ]


def import_fix(first: dict[str, Any], ctx: Context) -> str:
    """The fix for the first failure, by its cause: a module it needs that is not installed (its
    own compiled part, or an undeclared dependency), or an error of its own."""
    dist, module = first["distribution"], first["module"]
    missing = MISSING_MODULE.match(str(first["error"]))
    # its own part: `pkg._C`, `pkg_backend` (named after the module); else another distribution's
    own = missing and missing.group(1).split(".")[0].startswith(module.split(".")[0])
    if missing and not own:
        return (
            f"{dist} imports {missing.group(1)}, which is not installed: add the distribution "
            f"that provides it to the project's dependencies and re-lock"
        )
    if missing:
        return (
            f"{dist} is installed without its module {missing.group(1)} (a source build that "
            f"skipped its compiled part): build it with what it compiles against (torch, the CUDA "
            f"toolchain) present, or install a prebuilt wheel; then {ctx.resync}"
        )
    return (
        f"run `python -c 'import {module}'` in this env for the whole error, then fix or "
        f"replace {dist} in the lock ({ctx.resync})"
    )


def packages_finding(
    kind: str, items: list[str], what: str, fix: str, names: list[str], severity: str = "error"
) -> Finding:
    why = f"{len(items)} {what}: {short(items)}"
    return Finding(kind, "packages", None, None, severity, why, fix, tuple(items), {"names": names})


def check_binaries(facts: Facts, ctx: Context) -> list[Finding]:
    scan = facts.get("binaries") or {}
    total = scan.get("foreign_total") or 0
    if not total:
        return []
    foreign = [item for item in scan.get("foreign") or [] if isinstance(item, dict)]
    want = scan.get("expected_arch") or ctx.env.platform.binary_arch
    files = [f"{i.get('path')} ({foreign_arch(i)})" for i in foreign]
    packages = sorted({str(item.get("path")).split("/", 1)[0] for item in foreign})
    why = f"{total} compiled file(s) in site-packages are not {want}: {short(files)}"
    fix = (
        f"reinstall {', '.join(packages[:5]) or 'them'} from the lock with a native interpreter "
        f"({ctx.reinstall or ctx.resync}); never copy a venv between machines"
    )
    return [
        Finding(
            "compiled-arch",
            "site-packages",
            want,
            None,
            "error",
            why,
            fix,
            tuple(files),
            {"foreign": foreign[:20]},
        )
    ]


def foreign_arch(item: dict[str, Any]) -> str:
    """A foreign file's architectures as the probe wrote them ("arm64/x86_64"), else its format;
    a value the probe never writes (a number, a string for the list) is shown as it is."""
    archs = item.get("archs")
    if isinstance(archs, list):
        return "/".join(str(arch) for arch in archs) or str(item.get("format"))
    return str(archs) if archs not in (None, "") else str(item.get("format"))


# ---------------------------------------------------------------------------------------------
# the system: macOS, glibc, the NVIDIA driver, the GPU, the environment variables
# (the rules are archlock.core.rules.machine's, the same lock asks of recorded machines)
# ---------------------------------------------------------------------------------------------


def macos_floor(env: EnvSpec, pins: dict[str, str]) -> tuple[str, bool] | None:
    """(floor, whether torch's wheels set it) of a macOS env; None off macOS."""
    if env.platform.os != "macos":
        return None
    return platforms.macos_floor(env.macos, pins.get("torch"))


def check_macos(facts: Facts, ctx: Context) -> list[Finding]:
    """macOS against the higher of the env's floor, torch's and the locked wheels' tags."""
    osf, floor = facts.get("os") or {}, macos_floor(ctx.env, ctx.pins)
    if osf.get("name") != "macos" or floor is None:
        return []
    have, (want, by_torch) = str(osf.get("version") or "0"), floor
    wheel = ctx.expect.macos if ctx.expect else None
    if wheel and below(want, wheel.version):  # a locked wheel sets a higher floor
        misfit = floor_misfit("macos", have, wheel, "this machine", ctx.env, ctx.where)
        if below(have, wheel.version) is False:
            return []
        return [
            Finding("macos-floor", "macOS", wheel.version, have, "error", misfit.why, misfit.fix)
        ]
    if below(have, want) is False:
        return []
    whose = f"torch {ctx.pins.get('torch')}'s wheels'" if by_torch else "the env's"
    why = f"macOS {have} is below {whose} floor {want}"
    lower = "pin an older torch" if by_torch else f"lower `macos:` in {ctx.env.path.name}"
    fix = f"upgrade macOS to {want} or later, or {lower} and re-lock"
    return [Finding("macos-floor", "macOS", want, have, "error", why, fix)]


def check_glibc(facts: Facts, ctx: Context) -> list[Finding]:
    """glibc against the floor the locked wheels' manylinux tags set."""
    if ctx.expect is None or ctx.expect.glibc is None:
        return []
    machine = from_probe(facts)
    out = []
    for misfit in system_misfits(ctx.env, ctx.expect, machine, ctx.where):
        if misfit.kind == "glibc":
            want, have = ctx.expect.glibc.version, machine.glibc
            out.append(Finding("glibc-floor", "glibc", want, have, "error", misfit.why, misfit.fix))
    return out


def cuda_of(facts: Facts, ctx: Context) -> str | None:
    probed = torch_facts(facts)
    if probed.get("importable"):
        cuda = probed.get("cuda")
        return str(cuda) if cuda else None
    return ctx.expect.cuda if ctx.expect and ctx.expect.cuda else cuda_of_pins(ctx.pins)


def check_cuda_driver(facts: Facts, ctx: Context) -> list[Finding]:
    if (facts.get("os") or {}).get("name") != "linux":
        return []
    cuda = cuda_of(facts, ctx)
    if not cuda or not (ctx.env.accelerator_facts.cuda or torch_facts(facts).get("cuda")):
        return []
    driver = from_probe(facts).driver
    verdict = driver_rule(driver, cuda)
    floor, shipped, want = verdict.floor, verdict.shipped, verdict.want
    if verdict.state == "missing":
        why = f"no NVIDIA driver is loaded; torch's CUDA {cuda} build runs on the CPU here"
        fix = (
            f"on a GPU machine install the NVIDIA driver >= {want}; on a CPU-only machine use "
            "a CPU env (e.g. linux-amd64-cpu)"
        )
        return [Finding("cuda-driver", "nvidia driver", want, None, "warning", why, fix)]
    if verdict.state == "unreadable":
        why = (
            f"the NVIDIA driver's version {driver!r} is not a version; CUDA {cuda} needs >= {want}"
        )
        return [
            Finding(
                "cuda-driver", "nvidia driver", want, driver, "warning", why, UNREADABLE_DRIVER_FIX
            )
        ]
    if verdict.state == "too-old" and driver:
        why = (
            f"NVIDIA driver {driver} is too old for CUDA {cuda} (needs >= {floor}): "
            "torch.cuda.is_available() is False"
        )
        fix = driver_upgrade_fix("this machine", floor, cuda, driver)
        return [Finding("cuda-driver", "nvidia driver", floor, driver, "error", why, fix)]
    if verdict.state == "minor-compat":
        why = (
            f"NVIDIA driver {driver} is older than CUDA {cuda}'s own ({shipped}): it runs through "
            "minor version compatibility, without PTX JIT (GPUs newer than the build fail)"
        )
        fix = f"upgrade the driver to >= {shipped}"
        return [Finding("cuda-driver", "nvidia driver", shipped, driver, "warning", why, fix)]
    return []


def check_cuda_arch(facts: Facts, ctx: Context) -> list[Finding]:
    """The first GPU the build has no kernels for: torch's own answer, or the lock's range."""
    cuda_env = ctx.env.accelerator_facts.cuda  # the lock's range binds a cuda env, as at lock time
    capabilities = ctx.expect.capabilities if ctx.expect and cuda_env else None
    for gpu in from_probe(facts).gpus:
        gap = capability_gap(gpu, capabilities)
        if gap is None:
            continue
        gpu_text = f"{gpu.name} (sm {gpu.capability})"
        if gap == "for it":
            listed = torch_facts(facts).get("arch_list")
            arches = " ".join(str(a) for a in listed) if isinstance(listed, list) else ""
            why, want = f"torch has no kernels for {gpu_text}; built for {arches}", arches
        else:
            build = ctx.expect.build_name() if ctx.expect else "torch build"
            why, want = f"torch's {build} carries no kernels {gap}: {gpu_text}", gap
        fix = gpu_fix(gpu, gap)
        return [Finding("cuda-arch", gpu.name, want, gpu.capability, "error", why, fix)]
    return []


def check_env_vars(facts: Facts, ctx: Context) -> list[Finding]:
    env, os_name = facts.get("env") or {}, (facts.get("os") or {}).get("name")
    order = list(ENV_EFFECTS)
    out = []
    for name in sorted(env, key=lambda n: (order.index(n) if n in order else len(order), n)):
        what = env_effect(name, os_name, ctx.env.accelerator)
        if what:
            why = f"{name}={env[name]} is set: {what}"
            fix = f"unset {name} and rerun; keep it only if the project documents it"
            out.append(Finding("env-var", name, None, env[name], "warning", why, fix))
    return out


CHECKS = (
    check_platform,
    check_interpreter,
    check_python,
    check_torch,
    check_torch_import,
    check_packages,
    check_imports,
    check_binaries,
    check_macos,
    check_glibc,
    check_cuda_driver,
    check_cuda_arch,
    check_env_vars,
    check_emulation,
)


def diagnose(facts: Facts, ctx: Context) -> list[Finding]:
    """Every finding, most likely cause first (the order of KINDS; stable within a kind)."""
    found = [finding for check in CHECKS for finding in check(facts, ctx)]
    return sorted(found, key=lambda finding: finding.rank)
