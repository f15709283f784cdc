"""What environment is this, really? One JSON document of facts, from inside the environment.

Runs as `archlock probe` and as a plain file (`python3 probe.py [--no-torch] [--no-scan]`) with
only the standard library on Python >= 3.8; torch is optional. It imports no other archlock
module: its parts are the sibling files named in SIBLINGS (probe_headers.py: ELF / Mach-O headers,
probe_system.py: the system's answers and the OS / emulation / VM facts, probe_packages.py: the
interpreter, distributions and compiled files, probe_torch.py: torch's facts, probe_profile.py:
`--profile`), which travel with it into images and broken envs and are imported relatively, the
way every in-env script imports its siblings (inenv/__init__.py).

Schema `archlock.probe/1` (keys are only ever added within a schema version):

    schema        "archlock.probe/1"
    os            {system, name: "linux"|"macos"|..., release, version (macOS product version or
                   /etc/os-release VERSION_ID), distro (PRETTY_NAME or null),
                   libc: {name, version} or null}
    machine       {uname: platform.machine() as this process sees it, cpu_count, cpu_model}
    emulation     {emulated: bool, by: "rosetta"|"qemu-user"|"user-mode"|null,
                   host_arch: the hardware / kernel architecture (normalized) or null,
                   process_arch: the architecture this process runs as, evidence: [str]}
    python        {version, implementation, executable, executable_resolved, binary_archs,
                   arch (the slice that runs), prefix, base_prefix, in_venv, site_packages}
    distributions [{name, version, wheel_tags: [...], installer}] sorted by name
    binaries      {scanned, compiled, expected_arch, expected_format,
                   foreign: [{path (relative to site), site, format, archs}], foreign_total}
                   or {skipped: why}
    imports       {checked: N, failed: [{distribution, version, module, error}]} or
                   {skipped: why}: each distribution's top-level modules (top_level.txt, else
                   its RECORD) imported in a child interpreter (`-I`, a time limit; a crash or a
                   hang is pinned on its module); torch is the torch section's
    torch         {importable: false, error: "ImportError: ..."} or
                  {importable: true, version, local (e.g. "cpu", "cu128" or null), git_version,
                   cuda, hip, cudnn, arch_list, cuda_available, device_count,
                   devices: [{index, name, capability, supported}], mps_built, mps_available,
                   num_threads}  or {skipped: why}
    gpu           {nvidia_driver: "550.54.15" or null}
    vm            {virtual: true|false|null (unknown), evidence: str}: is this machine a virtual
                   machine? macOS: `kern.hv_vmm_present` (1 in a VM: GitHub's hosted Macs, whose
                   MPS is reported but unusable); Linux: the `hypervisor` CPU flag in /proc/cpuinfo;
                   null for an emulated process (it sees the emulator's CPU)
    env           {NAME: value} for allow-listed, behaviour-changing variables only
    errors        {section: "one line"} for any section that could not be read

Names of architectures are normalized: "x86_64", "arm64", "arm64e", "i386", "arm", ...

Emulation, decided from system answers that an emulator does not rewrite:
* macOS: `sysctl.proc_translated` read in-process (sysctlbyname via ctypes): 1 = Rosetta 2,
  0 or an absent key = native. `hw.optional.arm64` = 1 says the hardware is Apple Silicon.
* Linux: QEMU user mode answers uname(2), /proc/self/auxv (AT_PLATFORM, AT_HWCAP) and
  /proc/self/exe with the *guest's* values, so those cannot tell. The kernel's own architecture
  comes from /proc/sys/kernel/arch where the kernel has it, else from /proc/cpuinfo (which the
  QEMU builds we target pass through from the host: x86 hosts show vendor_id/flags, arm64 hosts
  show "CPU implementer"/"Features"). The process is emulated when that architecture cannot run
  the interpreter's ELF natively (x86_64 runs x86_64 and i386; arm64 runs arm64 and arm). A
  matching `/proc/sys/fs/binfmt_misc/qemu-<arch>` entry names QEMU; without it the emulator is
  reported as "user-mode". All answers go through `System`, so tests inject recorded ones.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import types

SCHEMA = "archlock.probe/1"

# -------------------------------------------------------------------------------------------
# The parts: from the package, from this file's folder, or from a report bundle
# -------------------------------------------------------------------------------------------

# the in-env modules this one loads (whatever copies probe.py copies them too), each after those
# it uses itself
SIBLINGS = ("probe_headers", "probe_system", "probe_packages", "probe_torch", "probe_profile")


PLAIN_PACKAGE = "archlock_inenv"  # what a plain-file copy's folder becomes (inenv/__init__.py)
if not __package__:  # a plain file: its relative imports resolve in that package (PEP 366)
    __package__ = PLAIN_PACKAGE
    globals()["__spec__"] = None  # a spec's own parent ("") would contradict __package__
    if PLAIN_PACKAGE not in sys.modules:
        sys.modules[PLAIN_PACKAGE] = types.ModuleType(PLAIN_PACKAGE)
        sys.modules[PLAIN_PACKAGE].__path__ = [os.path.dirname(os.path.abspath(__file__))]
try:
    from . import probe_packages as packages
    from . import probe_profile as profile
    from . import probe_system as system
    from . import probe_torch as torchfacts
except ImportError as exc:  # a copy without its parts
    raise SystemExit(
        "probe.py: %s; its parts must sit next to this file: %s"
        % (exc, ", ".join(name + ".py" for name in SIBLINGS))
    ) from None

# the probe's own API (archlock's verify and setup-mac, tests): probe(sysm=RecordedSystem(...))
System = system.System
RecordedSystem = system.RecordedSystem
os_name = system.os_name
emulation_facts = system.emulation_facts
nvidia_driver = system.nvidia_driver
one_line = system.one_line

# ---------------------------------------------------------------------------------------------
# Environment variables: allow-listed names only; nothing else ever leaves the machine
# ---------------------------------------------------------------------------------------------

ENV_NAMES = frozenset(
    [
        "PYTORCH_ENABLE_MPS_FALLBACK",
        "PYTORCH_MPS_HIGH_WATERMARK_RATIO",
        "PYTORCH_MPS_LOW_WATERMARK_RATIO",
        "PYTORCH_CUDA_ALLOC_CONF",
        "PYTORCH_NO_CUDA_MEMORY_CACHING",
        "PYTORCH_NVML_BASED_CUDA_CHECK",
        "CUDA_VISIBLE_DEVICES",
        "CUDA_LAUNCH_BLOCKING",
        "CUDA_DEVICE_ORDER",
        "CUDA_MODULE_LOADING",
        "CUBLAS_WORKSPACE_CONFIG",
        "NVIDIA_VISIBLE_DEVICES",
        "NVIDIA_DRIVER_CAPABILITIES",
        "OMP_NUM_THREADS",
        "MKL_NUM_THREADS",
        "OPENBLAS_NUM_THREADS",
        "VECLIB_MAXIMUM_THREADS",
        "NUMEXPR_NUM_THREADS",
        "KMP_AFFINITY",
        "KMP_BLOCKTIME",
        "KMP_DUPLICATE_LIB_OK",
        "MKL_THREADING_LAYER",
        "ATEN_CPU_CAPABILITY",
        "LD_PRELOAD",
        "LD_LIBRARY_PATH",
        "DYLD_LIBRARY_PATH",
        "DYLD_FALLBACK_LIBRARY_PATH",
        "PYTHONPATH",
        "PYTHONHOME",
        "PYTHONNOUSERSITE",
        "VIRTUAL_ENV",
        "CONDA_PREFIX",
        "CONDA_DEFAULT_ENV",
        "MACOSX_DEPLOYMENT_TARGET",
        "SYSTEM_VERSION_COMPAT",
        "ARCHLOCK_DEVICE",
        "ARCHLOCK_SUITE_FAULT",
    ]
)
ENV_PREFIXES = ("TORCH_", "TORCHINDUCTOR_", "TORCHDYNAMO_", "PYTORCH_", "NCCL_")
ENV_NEVER = ("TOKEN", "SECRET", "PASSWORD", "PASSWD", "CREDENTIAL", "AUTH", "KEY")


def env_allowed(name: str) -> bool:
    if any(word in name.upper() for word in ENV_NEVER):
        return False
    return name in ENV_NAMES or name.startswith(ENV_PREFIXES)


def env_facts(sysm: system.System) -> dict[str, str]:
    environ = sysm.environ()
    return {name: environ[name] for name in sorted(environ) if env_allowed(name)}


# ---------------------------------------------------------------------------------------------
# torch: imported in a child process, so a crash on import (SIGILL, SIGSEGV) is a fact, not ours
# ---------------------------------------------------------------------------------------------


def torch_facts(timeout: float = 900.0) -> dict:
    """torch facts from a child interpreter (this same file, `--torch-only`)."""
    command = [sys.executable, os.path.abspath(__file__), "--torch-only"]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {"importable": False, "error": "import torch took over %d s" % timeout}
    if done.returncode < 0:
        return {
            "importable": False,
            "error": "import torch killed the interpreter with signal %d" % -done.returncode,
        }
    try:
        return json.loads(done.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"importable": False, "error": "torch probe exited %d: %s" % (done.returncode, tail)}


# ---------------------------------------------------------------------------------------------
# The document
# ---------------------------------------------------------------------------------------------


def _section(errors: dict, name: str, func, *args):
    try:
        return func(*args)
    except Exception as exc:  # noqa: BLE001 - a probe reports what it cannot read, never crashes
        errors[name] = one_line(exc)
        return None


def probe(
    sysm: system.System | None = None,
    with_torch: bool = True,
    with_scan: bool = True,
    with_imports: bool = False,
) -> dict:
    """Every fact, as the `archlock.probe/1` document (`with_imports`: import every installed
    distribution's top-level modules, in a child interpreter)."""
    sysm = sysm or System()
    errors: dict[str, str] = {}
    exe_archs = _section(errors, "python", sysm.archs, sysm.executable()) or []
    doc: dict = {"schema": SCHEMA}
    doc["os"] = _section(errors, "os", system.os_facts, sysm)
    doc["machine"] = _section(errors, "machine", system.machine_facts, sysm)
    doc["emulation"] = _section(errors, "emulation", emulation_facts, sysm, exe_archs)
    doc["python"] = _section(errors, "python", packages.python_facts, sysm, exe_archs) or {}
    doc["distributions"] = _section(errors, "distributions", packages.distributions) or []
    if with_scan:
        doc["binaries"] = _section(
            errors,
            "binaries",
            packages.scan_binaries,
            doc["python"].get("site_packages", []),
            doc["python"].get("arch"),
            packages.expected_format(sysm.system()),
        )
    else:
        doc["binaries"] = {"skipped": "--no-scan"}
    if with_imports:
        doc["imports"] = _section(errors, "imports", packages.import_checks)
    else:
        doc["imports"] = {"skipped": "--no-imports"}
    doc["torch"] = (
        _section(errors, "torch", torch_facts) if with_torch else {"skipped": "--no-torch"}
    )
    doc["gpu"] = {"nvidia_driver": _section(errors, "gpu", nvidia_driver, sysm)}
    emulated = bool((doc["emulation"] or {}).get("emulated"))
    unknown = {"virtual": None, "evidence": "error"}
    doc["vm"] = _section(errors, "vm", system.vm_facts, sysm, emulated) or unknown
    doc["env"] = _section(errors, "env", env_facts, sysm) or {}
    doc["errors"] = errors
    return doc


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-torch", action="store_true", help="do not import torch")
    parser.add_argument("--no-scan", action="store_true", help="skip the compiled-file scan")
    parser.add_argument(
        "--no-imports",
        action="store_true",
        help="do not import each distribution's top-level modules (in a child interpreter)",
    )
    parser.add_argument("--output", "-o", help="write the JSON here instead of stdout")
    parser.add_argument(
        "--profile",
        metavar="NAME",
        help="record this machine's profile into envs/machines/NAME.json (for an env's machines:)",
    )


def emit(doc: dict, output: str | None) -> None:
    text = json.dumps(doc, indent=2, sort_keys=False) + "\n"
    if not output:
        sys.stdout.write(text)
        return
    tmp = output + ".tmp"
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(tmp, output)


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "probe", help="print the facts of this Python environment as JSON"
    )
    add_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.profile:
        project = getattr(args, "project", None)
        output = args.output or profile.profile_path(
            args.profile, str(project) if project else None
        )
        doc = profile.machine_profile(args.profile)
        os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
        emit(doc, output)
        sys.stdout.write("wrote %s: %s\n" % (output, profile.profile_summary(doc)))
        return 0
    doc = probe(
        with_torch=not args.no_torch,
        with_scan=not args.no_scan,
        with_imports=not args.no_imports,
    )
    emit(doc, args.output)
    return 0


def main(argv: list[str] | None = None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    if argv == ["--torch-only"]:
        sys.stdout.write("\n" + json.dumps(torchfacts.torch_facts_here()) + "\n")
        return 0
    parser = argparse.ArgumentParser(prog="probe.py", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
