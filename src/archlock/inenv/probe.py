"""What environment is this, really? One JSON document of facts, from inside the environment.

Runs as `archlock probe` and as a plain file (`python3 probe.py [--no-torch] [--no-scan]`) with
only the standard library on Python >= 3.8; torch is optional. This file must not import other
archlock modules: it is copied into images and broken envs as it is.

Binary headers (used by setup-mac and report too): `binary_archs(path)` and `macho_archs(data)`
name the architectures of an ELF or Mach-O file, thin or fat (every slice).

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
import platform
import struct
import subprocess
import sys

SCHEMA = "archlock.probe/1"

# ---------------------------------------------------------------------------------------------
# Binary headers: ELF (System V gABI) and Mach-O (<mach-o/loader.h>, <mach-o/fat.h>)
# ---------------------------------------------------------------------------------------------

ELF_MAGIC = b"\x7fELF"
ELF_MACHINES = {
    3: "i386",
    8: "mips",
    20: "ppc",
    21: "ppc64",
    22: "s390x",
    40: "arm",
    62: "x86_64",
    183: "arm64",
    243: "riscv64",
}

MH_MAGIC = 0xFEEDFACE  # 32-bit thin, in the file's own byte order
MH_MAGIC_64 = 0xFEEDFACF  # 64-bit thin
FAT_MAGIC = 0xCAFEBABE  # fat header, always big-endian; fat_arch entries are 20 bytes
FAT_MAGIC_64 = 0xCAFEBABF  # fat header with 64-bit offsets; fat_arch_64 entries are 32 bytes
FAT_MAX_ARCHS = 20  # 0xCAFEBABE is also a Java class file; its "count" is a class version >= 45

CPU_ARCH_ABI64 = 0x01000000
CPU_ARCH_ABI64_32 = 0x02000000
CPU_SUBTYPE_MASK = 0xFF000000  # capability bits in the subtype (e.g. arm64e pointer auth ABI)
CPU_TYPE_X86 = 7
CPU_TYPE_ARM = 12
CPU_TYPE_POWERPC = 18
MACHO_ARM_SUBTYPES = {6: "armv6", 9: "armv7", 11: "armv7s", 12: "armv7k"}
MACHO_CPU_NAMES = {
    CPU_TYPE_X86: "i386",
    CPU_TYPE_X86 | CPU_ARCH_ABI64: "x86_64",
    CPU_TYPE_ARM: "arm",
    CPU_TYPE_ARM | CPU_ARCH_ABI64: "arm64",
    CPU_TYPE_ARM | CPU_ARCH_ABI64_32: "arm64_32",
    CPU_TYPE_POWERPC: "ppc",
    CPU_TYPE_POWERPC | CPU_ARCH_ABI64: "ppc64",
}
HEADER_BYTES = 4096  # enough for any fat table we accept (20 * 32 + 8)


def macho_cpu_name(cputype: int, cpusubtype: int) -> str:
    """The conventional name (as `lipo -archs` prints it) for a Mach-O cputype/subtype pair."""
    subtype = cpusubtype & ~CPU_SUBTYPE_MASK & 0xFFFFFFFF
    if cputype == CPU_TYPE_ARM | CPU_ARCH_ABI64 and subtype == 2:
        return "arm64e"
    if cputype == CPU_TYPE_X86 | CPU_ARCH_ABI64 and subtype == 8:
        return "x86_64h"
    if cputype == CPU_TYPE_ARM and subtype in MACHO_ARM_SUBTYPES:
        return MACHO_ARM_SUBTYPES[subtype]
    return MACHO_CPU_NAMES.get(cputype, "cputype-%d" % cputype)


def _macho_thin(data: bytes) -> list[str] | None:
    for order in (">", "<"):
        if len(data) >= 12:
            magic, cputype, subtype = struct.unpack(order + "III", data[:12])
            if magic in (MH_MAGIC, MH_MAGIC_64):
                return [macho_cpu_name(cputype, subtype)]
    return None


def _macho_fat(data: bytes) -> list[str] | None:
    if len(data) < 8:
        return None
    magic, count = struct.unpack(">II", data[:8])
    if magic not in (FAT_MAGIC, FAT_MAGIC_64) or not 0 < count <= FAT_MAX_ARCHS:
        return None
    entry = 20 if magic == FAT_MAGIC else 32
    if len(data) < 8 + count * entry:
        return None
    names = []
    for index in range(count):
        start = 8 + index * entry
        cputype, subtype = struct.unpack(">II", data[start : start + 8])
        names.append(macho_cpu_name(cputype, subtype))
    return names


def macho_archs(data: bytes) -> list[str]:
    """Architectures named by Mach-O header bytes: one for a thin file, every slice for a fat
    (universal) one, [] when the bytes are not a Mach-O header."""
    fat = _macho_fat(data)
    if fat is not None:
        return fat
    return _macho_thin(data) or []


def elf_arch(data: bytes) -> str | None:
    """The architecture an ELF header names (e_machine), or None when it is not ELF."""
    if len(data) < 20 or data[:4] != ELF_MAGIC:
        return None
    order = "<" if data[5] == 1 else ">"
    (machine,) = struct.unpack(order + "H", data[18:20])
    name = ELF_MACHINES.get(machine, "e_machine-%d" % machine)
    if name == "ppc64" and order == "<":
        return "ppc64le"
    return name


def header_archs(data: bytes) -> list[str]:
    """Architectures named by the first bytes of a file (ELF or Mach-O), [] for anything else."""
    elf = elf_arch(data)
    if elf is not None:
        return [elf]
    return macho_archs(data)


def header_format(data: bytes) -> str | None:
    """ "elf", "mach-o" or None for the first bytes of a file."""
    if elf_arch(data) is not None:
        return "elf"
    return "mach-o" if macho_archs(data) else None


def _read_head(path: str) -> bytes:
    try:
        with open(path, "rb") as handle:
            return handle.read(HEADER_BYTES)
    except OSError:
        return b""


def binary_archs(path: str) -> list[str]:
    """Architectures of the ELF or Mach-O file at `path` (every slice of a universal binary);
    [] when it is neither, or cannot be read."""
    return header_archs(_read_head(path))


# ---------------------------------------------------------------------------------------------
# System answers: the one place the probe asks the machine; tests inject recorded answers
# ---------------------------------------------------------------------------------------------

ARCH_ALIASES = {
    "amd64": "x86_64",
    "x64": "x86_64",
    "aarch64": "arm64",
    "arm64e": "arm64e",
    "i486": "i386",
    "i586": "i386",
    "i686": "i386",
    "x86": "i386",
    "armv7l": "arm",
    "armv7": "arm",
    "armv8l": "arm",
}
NATIVE_COMPAT = {"x86_64": ("x86_64", "i386"), "arm64": ("arm64", "arm64e", "arm")}


def normalize_arch(name: str | None) -> str | None:
    if not name:
        return None
    return ARCH_ALIASES.get(name.lower(), name.lower())


class System:
    """Live answers from this machine. Every probe question about the OS goes through here."""

    def system(self) -> str:
        return platform.system()

    def machine(self) -> str:
        return platform.machine()

    def executable(self) -> str:
        return os.path.realpath(sys.executable)

    def archs(self, path: str) -> list[str]:
        return binary_archs(path)

    def read_text(self, path: str) -> str | None:
        try:
            with open(path, encoding="utf-8", errors="replace") as handle:
                return handle.read(1 << 20)
        except OSError:
            return None

    def sysctl(self, name: str) -> int | str | None:
        """A sysctl by name, read in-process (macOS/BSD sysctlbyname); None when absent."""
        return _sysctlbyname(name)

    def environ(self) -> dict[str, str]:
        return dict(os.environ)

    def libc(self) -> dict | None:
        return libc_facts()

    def cpu_count(self) -> int | None:
        return os.cpu_count()

    def command(self, argv: list[str], timeout: float) -> tuple[str | None, str | None]:
        """(stdout, None) when `argv` ran and succeeded, else (None, one line saying why)."""
        try:
            done = subprocess.run(
                argv, capture_output=True, text=True, timeout=timeout, check=False
            )
        except FileNotFoundError:
            return None, "%s is not installed" % argv[0]
        except subprocess.TimeoutExpired:
            return None, "%s gave no answer within %d s" % (argv[0], timeout)
        except OSError as exc:
            return None, "%s: %s" % (argv[0], one_line(exc))
        if done.returncode != 0:
            tail = (done.stderr.strip() or done.stdout.strip()).splitlines() or ["no output"]
            return None, "%s exited %d: %s" % (argv[0], done.returncode, tail[-1][:200])
        return done.stdout, None


class RecordedSystem(System):
    """Answers recorded as data: {"system", "machine", "executable", "archs": {path: [...]},
    "files": {path: text}, "sysctl": {name: value}, "environ": {...}}; anything else is absent."""

    def __init__(self, answers: dict) -> None:
        self.answers = answers

    def system(self) -> str:
        return self.answers["system"]

    def machine(self) -> str:
        return self.answers["machine"]

    def executable(self) -> str:
        return self.answers.get("executable", "/usr/bin/python3")

    def archs(self, path: str) -> list[str]:
        return list(self.answers.get("archs", {}).get(path, []))

    def read_text(self, path: str) -> str | None:
        return self.answers.get("files", {}).get(path)

    def sysctl(self, name: str) -> int | str | None:
        return self.answers.get("sysctl", {}).get(name)

    def environ(self) -> dict[str, str]:
        return dict(self.answers.get("environ", {}))

    def libc(self) -> dict | None:
        return self.answers.get("libc")

    def cpu_count(self) -> int | None:
        return self.answers.get("cpu_count")

    def command(self, argv: list[str], timeout: float) -> tuple[str | None, str | None]:
        """Recorded under "commands" by the argv joined with spaces: {"stdout": text} or
        {"error": line}; an unrecorded command is not installed."""
        answer = self.answers.get("commands", {}).get(" ".join(argv))
        if answer is None:
            return None, "%s is not installed" % argv[0]
        return answer.get("stdout"), answer.get("error")


STRING_SYSCTLS = frozenset({"kern.osproductversion", "kern.osrelease", "machdep.cpu.brand_string"})



def _sysctlbyname(name: str) -> int | str | None:
    try:
        import ctypes
        import ctypes.util

        func = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True).sysctlbyname
    except (OSError, AttributeError):
        return None  # not a BSD/macOS libc
    size = ctypes.c_size_t(0)
    if func(name.encode(), None, ctypes.byref(size), None, ctypes.c_size_t(0)) != 0:
        return None  # ENOENT: the key does not exist here (e.g. proc_translated on Intel Macs)
    buf = ctypes.create_string_buffer(max(size.value, 8))
    if func(name.encode(), buf, ctypes.byref(size), None, ctypes.c_size_t(0)) != 0:
        return None
    raw = buf.raw[: size.value]
    if name in STRING_SYSCTLS:
        return raw.rstrip(b"\0").decode("utf-8", "replace")
    return int.from_bytes(raw, sys.byteorder, signed=True)


# ---------------------------------------------------------------------------------------------
# Sections
# ---------------------------------------------------------------------------------------------


def os_name(system: str) -> str:
    return {"Linux": "linux", "Darwin": "macos", "Windows": "windows"}.get(system, system.lower())


def parse_os_release(text: str | None) -> dict[str, str]:
    fields = {}
    for line in (text or "").splitlines():
        key, sep, value = line.partition("=")
        if sep:
            fields[key.strip()] = value.strip().strip('"')
    return fields


def libc_facts() -> dict | None:
    try:
        answer = os.confstr("CS_GNU_LIBC_VERSION") or ""
    except (AttributeError, ValueError, OSError):
        answer = ""
    if answer:
        name, _, version = answer.partition(" ")
        return {"name": name, "version": version}
    name, version = platform.libc_ver()
    return {"name": name, "version": version} if name else None


def os_facts(sysm: System) -> dict:
    system = sysm.system()
    facts = {
        "system": system,
        "name": os_name(system),
        "release": platform.release(),
        "distro": None,
    }
    if system == "Darwin":
        product = sysm.sysctl("kern.osproductversion")
        facts["version"] = product if isinstance(product, str) else platform.mac_ver()[0]
        facts["libc"] = None
    else:
        release = parse_os_release(sysm.read_text("/etc/os-release"))
        facts["version"] = release.get("VERSION_ID")
        facts["distro"] = release.get("PRETTY_NAME")
        facts["libc"] = libc_facts() if system == "Linux" else None
    return facts


def cpu_model(sysm: System) -> str | None:
    brand = sysm.sysctl("machdep.cpu.brand_string")
    if isinstance(brand, str):
        return brand
    for line in (sysm.read_text("/proc/cpuinfo") or "").splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() in ("model name", "Model", "cpu model", "Hardware"):
            return value.strip()
    return None


def machine_facts(sysm: System) -> dict:
    return {"uname": sysm.machine(), "cpu_count": os.cpu_count(), "cpu_model": cpu_model(sysm)}


def vm_facts(sysm: System, emulated: bool = False) -> dict:
    """Is this a virtual machine? Read like the other sysctls (macOS; Rosetta answers them as the
    kernel does) or from /proc/cpuinfo, which QEMU user mode fills with its own emulated CPU."""
    if sysm.system() == "Darwin":
        present = sysm.sysctl("kern.hv_vmm_present")
        virtual = None if present is None else present == 1
        return {"virtual": virtual, "evidence": "kern.hv_vmm_present=%s" % _absent(present)}
    if emulated:
        return {"virtual": None, "evidence": "emulated process: the host's CPU is not visible"}
    text = sysm.read_text("/proc/cpuinfo")
    if sysm.system() != "Linux" or not text:
        return {"virtual": None, "evidence": "no VM check for this system"}
    flags = set()
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() in ("flags", "Features"):
            flags.update(value.split())
    virtual = "hypervisor" in flags
    evidence = "cpu flag hypervisor %s" % ("set" if virtual else "absent")
    return {"virtual": virtual, "evidence": evidence}


def _absent(value) -> str:
    return "absent" if value is None else str(value)


def cpuinfo_arch(text: str | None) -> str | None:
    """The CPU family /proc/cpuinfo describes (its fields differ by architecture)."""
    keys = set()
    for line in (text or "").splitlines():
        key, sep, _ = line.partition(":")
        if sep:
            keys.add(key.strip())
    if "vendor_id" in keys and "flags" in keys:
        return "x86_64"
    if "CPU implementer" in keys or ("Features" in keys and "CPU architecture" in keys):
        return "arm64"
    return None


def process_arch(sysm: System, exe_archs: list[str]) -> str | None:
    """The architecture this interpreter runs as: its ELF/Mach-O arch, or the running slice of
    a universal binary (which uname(2) reports, Rosetta included)."""
    if len(exe_archs) == 1:
        return normalize_arch(exe_archs[0])
    return normalize_arch(sysm.machine())


def macos_emulation(sysm: System, proc_arch: str | None) -> dict:
    translated = sysm.sysctl("sysctl.proc_translated")
    apple_silicon = sysm.sysctl("hw.optional.arm64") == 1
    evidence = ["sysctl.proc_translated=%s" % ("absent" if translated is None else translated)]
    evidence.append("hw.optional.arm64=%s" % sysm.sysctl("hw.optional.arm64"))
    emulated = translated == 1
    host = "arm64" if apple_silicon or emulated else proc_arch
    return {
        "emulated": emulated,
        "by": "rosetta" if emulated else None,
        "host_arch": host,
        "process_arch": proc_arch,
        "evidence": evidence,
    }


def linux_host_arch(sysm: System, evidence: list[str]) -> str | None:
    kernel = sysm.read_text("/proc/sys/kernel/arch")
    if kernel and kernel.strip():
        evidence.append("/proc/sys/kernel/arch=%s" % kernel.strip())
        return normalize_arch(kernel.strip())
    from_cpuinfo = cpuinfo_arch(sysm.read_text("/proc/cpuinfo"))
    evidence.append("/proc/cpuinfo describes %s" % (from_cpuinfo or "an unknown CPU family"))
    return from_cpuinfo


def binfmt_emulator(sysm: System, proc_arch: str | None) -> str | None:
    qemu_name = {"arm64": "aarch64", "x86_64": "x86_64", "i386": "i386", "arm": "arm"}
    name = qemu_name.get(proc_arch or "", proc_arch or "")
    entry = sysm.read_text("/proc/sys/fs/binfmt_misc/qemu-%s" % name)
    if entry and entry.startswith("enabled"):
        return "qemu-%s" % name
    return None


def linux_emulation(sysm: System, proc_arch: str | None) -> dict:
    evidence = ["uname -m=%s" % sysm.machine()]
    host = linux_host_arch(sysm, evidence)
    emulated = bool(host and proc_arch and proc_arch not in NATIVE_COMPAT.get(host, (host,)))
    by = None
    if emulated:
        entry = binfmt_emulator(sysm, proc_arch)
        evidence.append("binfmt_misc entry %s" % (entry or "not visible"))
        by = "qemu-user" if entry or host in NATIVE_COMPAT else "user-mode"
    return {
        "emulated": emulated,
        "by": by,
        "host_arch": host,
        "process_arch": proc_arch,
        "evidence": evidence,
    }


def emulation_facts(sysm: System, exe_archs: list[str]) -> dict:
    proc = process_arch(sysm, exe_archs)
    if sysm.system() == "Darwin":
        return macos_emulation(sysm, proc)
    if sysm.system() == "Linux":
        return linux_emulation(sysm, proc)
    return {
        "emulated": False,
        "by": None,
        "host_arch": None,
        "process_arch": proc,
        "evidence": ["no emulation check for %s" % sysm.system()],
    }


def site_packages() -> list[str]:
    import site
    import sysconfig

    found = []
    candidates = [sysconfig.get_paths().get("purelib"), sysconfig.get_paths().get("platlib")]
    try:
        candidates += site.getsitepackages()
    except AttributeError:  # old virtualenv's site module
        pass
    for path in candidates:
        if path and os.path.isdir(path) and os.path.realpath(path) not in found:
            found.append(os.path.realpath(path))
    return found


def python_facts(sysm: System, exe_archs: list[str]) -> dict:
    return {
        "version": platform.python_version(),
        "implementation": sys.implementation.name,
        "executable": sys.executable,
        "executable_resolved": sysm.executable(),
        "binary_archs": exe_archs,
        "arch": process_arch(sysm, exe_archs),
        "prefix": sys.prefix,
        "base_prefix": getattr(sys, "base_prefix", sys.prefix),
        "in_venv": sys.prefix != getattr(sys, "base_prefix", sys.prefix),
        "site_packages": site_packages(),
    }


def wheel_tags(text: str | None) -> list[str]:
    tags = []
    for line in (text or "").splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() == "Tag":
            tags.append(value.strip())
    return tags


def distributions() -> list[dict]:
    from importlib import metadata

    seen = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if not name or name.lower() in seen:
            continue  # the first on sys.path wins, as for imports
        seen[name.lower()] = {
            "name": name,
            "version": dist.version,
            "wheel_tags": wheel_tags(dist.read_text("WHEEL")),
            "installer": (dist.read_text("INSTALLER") or "").strip() or None,
        }
    return [seen[key] for key in sorted(seen)]


# Suffixes never compiled: skipped without opening, so a scan of torch stays quick under QEMU.
TEXT_SUFFIXES = frozenset(
    ".py .pyc .pyi .pyx .pxd .h .hpp .cuh .c .cc .cpp .txt .md .rst .json .toml .yaml .yml .cfg "
    ".ini .html .js .css .csv .typed .in .pem .cmake .proto .png .svg .jinja .j2 .zip".split()
)
FOREIGN_LIMIT = 200


def expected_format(system: str) -> str | None:
    return {"Linux": "elf", "Darwin": "mach-o"}.get(system)


def compiled_files(root: str):
    """(path, format, archs) for every ELF / Mach-O file under `root`, by magic, not by name."""
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files):
            if os.path.splitext(name)[1].lower() in TEXT_SUFFIXES:
                continue
            path = os.path.join(folder, name)
            if os.path.islink(path):
                continue
            head = _read_head(path)
            fmt = header_format(head)
            if fmt:
                yield path, fmt, header_archs(head)


def scan_binaries(sites: list[str], arch: str | None, fmt: str | None) -> dict:
    compiled, foreign = 0, []
    for site in sites:
        for path, found_fmt, archs in compiled_files(site):
            compiled += 1
            if found_fmt == fmt and arch in [normalize_arch(a) for a in archs]:
                continue
            foreign.append(
                {
                    "path": os.path.relpath(path, site),
                    "site": site,
                    "format": found_fmt,
                    "archs": archs,
                }
            )
    return {
        "compiled": compiled,
        "expected_arch": arch,
        "expected_format": fmt,
        "foreign": foreign[:FOREIGN_LIMIT],
        "foreign_total": len(foreign),
    }


# ---------------------------------------------------------------------------------------------
# torch: imported in a child process, so a crash on import (SIGILL, SIGSEGV) is a fact, not ours
# ---------------------------------------------------------------------------------------------


def cuda_arch_supported(capability: str, arch_list: list[str]) -> bool:
    """Can a build with these `-gencode` targets run on a GPU of this capability ("8.6")?
    sm_XY cubins run on the same major with an equal or higher minor; compute_XY PTX JIT-compiles
    for any capability >= XY; arch-specific targets (sm_90a) run only on that exact capability."""
    major, minor = (int(part) for part in capability.split("."))
    for target in arch_list:
        kind, _, digits = target.partition("_")
        specific = digits[-1:].isalpha()
        digits = digits.rstrip("abcdefghijklmnopqrstuvwxyz")
        if not digits.isdigit() or len(digits) < 2:
            continue
        t_major, t_minor = int(digits[:-1]), int(digits[-1])
        if specific:
            if (t_major, t_minor) == (major, minor):
                return True
        elif kind == "sm" and t_major == major and t_minor <= minor:
            return True
        elif kind == "compute" and (t_major, t_minor) <= (major, minor):
            return True
    return False


def _cuda_devices(torch, arch_list: list[str]) -> list[dict]:
    devices = []
    for index in range(torch.cuda.device_count()):
        major, minor = torch.cuda.get_device_capability(index)
        capability = "%d.%d" % (major, minor)
        devices.append(
            {
                "index": index,
                "name": torch.cuda.get_device_name(index),
                "capability": capability,
                "supported": cuda_arch_supported(capability, arch_list),
            }
        )
    return devices


def torch_facts_here() -> dict:
    """Import torch in this process and describe it (the child side of `torch_facts`)."""
    try:
        import torch
    except Exception as exc:  # noqa: BLE001 - any import failure is a fact to report
        return {"importable": False, "error": one_line(exc)}
    facts = {
        "importable": True,
        "version": torch.__version__,
        "local": torch.__version__.partition("+")[2] or None,
        "git_version": getattr(torch.version, "git_version", None),
        "cuda": torch.version.cuda,
        "hip": getattr(torch.version, "hip", None),
    }
    facts["cudnn"] = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    facts["arch_list"] = torch.cuda.get_arch_list() if facts["cuda"] else []
    facts["cuda_available"] = bool(torch.cuda.is_available())
    facts["device_count"] = torch.cuda.device_count() if facts["cuda_available"] else 0
    facts["devices"] = _cuda_devices(torch, facts["arch_list"]) if facts["cuda_available"] else []
    mps = getattr(torch.backends, "mps", None)
    facts["mps_built"] = bool(mps and mps.is_built())
    facts["mps_available"] = bool(mps and mps.is_available())
    facts["num_threads"] = torch.get_num_threads()
    return facts


def one_line(exc: BaseException) -> str:
    text = ("%s: %s" % (type(exc).__name__, exc)).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__


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


def nvidia_driver(sysm: System) -> str | None:
    text = sysm.read_text("/proc/driver/nvidia/version") or ""
    for word in text.split():
        parts = word.split(".")
        if len(parts) >= 2 and all(part.isdigit() for part in parts):
            return word
    return None


# ---------------------------------------------------------------------------------------------
# Environment variables: allow-listed names only; nothing else ever leaves the machine
# ---------------------------------------------------------------------------------------------

ENV_NAMES = frozenset(
    """PYTORCH_ENABLE_MPS_FALLBACK PYTORCH_MPS_HIGH_WATERMARK_RATIO PYTORCH_MPS_LOW_WATERMARK_RATIO
    PYTORCH_CUDA_ALLOC_CONF PYTORCH_NO_CUDA_MEMORY_CACHING PYTORCH_NVML_BASED_CUDA_CHECK
    CUDA_VISIBLE_DEVICES CUDA_LAUNCH_BLOCKING CUDA_DEVICE_ORDER CUDA_MODULE_LOADING
    CUBLAS_WORKSPACE_CONFIG NVIDIA_VISIBLE_DEVICES NVIDIA_DRIVER_CAPABILITIES
    OMP_NUM_THREADS MKL_NUM_THREADS OPENBLAS_NUM_THREADS VECLIB_MAXIMUM_THREADS NUMEXPR_NUM_THREADS
    KMP_AFFINITY KMP_BLOCKTIME KMP_DUPLICATE_LIB_OK MKL_THREADING_LAYER ATEN_CPU_CAPABILITY
    LD_PRELOAD LD_LIBRARY_PATH DYLD_LIBRARY_PATH DYLD_FALLBACK_LIBRARY_PATH
    PYTHONPATH PYTHONHOME PYTHONNOUSERSITE VIRTUAL_ENV CONDA_PREFIX CONDA_DEFAULT_ENV
    MACOSX_DEPLOYMENT_TARGET SYSTEM_VERSION_COMPAT ARCHLOCK_DEVICE ARCHLOCK_SUITE_FAULT""".split()
)
ENV_PREFIXES = ("TORCH_", "TORCHINDUCTOR_", "TORCHDYNAMO_", "PYTORCH_", "NCCL_")
ENV_NEVER = ("TOKEN", "SECRET", "PASSWORD", "PASSWD", "CREDENTIAL", "AUTH", "KEY")


def env_allowed(name: str) -> bool:
    if any(word in name.upper() for word in ENV_NEVER):
        return False
    return name in ENV_NAMES or name.startswith(ENV_PREFIXES)


def env_facts(sysm: System) -> dict[str, str]:
    environ = sysm.environ()
    return {name: environ[name] for name in sorted(environ) if env_allowed(name)}


# ---------------------------------------------------------------------------------------------
# Machine profile (`--profile NAME`): what this machine imposes on the builds it must run, for
# `envs/machines/NAME.json` (schema archlock.machine/1, read by archlock.lock.machines)
# ---------------------------------------------------------------------------------------------

PROFILE_SCHEMA = "archlock.machine/1"
NVIDIA_SMI_TIMEOUT = 20.0
NVIDIA_QUERY = ["nvidia-smi", "--query-gpu=name,compute_cap,driver_version", "--format=csv,noheader"]
NVIDIA_QUERY_OLD = ["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"]
# CPU features torch's kernels dispatch on, by the /proc/cpuinfo line that lists them
CPU_FEATURES = {
    "flags": frozenset(  # x86
        """sse4_2 avx avx2 fma f16c avx512f avx512bw avx512vl avx512_vnni avx512_bf16 avx512_fp16
        amx_tile amx_bf16 amx_int8""".split()
    ),
    "Features": frozenset("asimd asimddp asimdhp fphp sve sve2 bf16 i8mm sme".split()),  # arm64
}
MAC_FEATURES = {
    "hw.optional.AdvSIMD": "asimd",
    "hw.optional.arm.FEAT_DotProd": "asimddp",
    "hw.optional.arm.FEAT_FP16": "fphp",
    "hw.optional.arm.FEAT_BF16": "bf16",
    "hw.optional.arm.FEAT_I8MM": "i8mm",
    "hw.optional.arm.FEAT_SME": "sme",
}
PROFILE_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-")


def cpu_features(sysm: System) -> list[str]:
    if sysm.system() == "Darwin":
        return sorted(name for key, name in MAC_FEATURES.items() if sysm.sysctl(key) == 1)
    found = set()
    for line in (sysm.read_text("/proc/cpuinfo") or "").splitlines():
        key, sep, value = line.partition(":")
        wanted = CPU_FEATURES.get(key.strip()) if sep else None
        if wanted:
            found.update(word for word in value.split() if word in wanted)
    return sorted(found)


def parse_nvidia_smi(text: str, with_capability: bool) -> tuple[str | None, list[dict]]:
    """(driver, gpus) from `nvidia-smi --query-gpu=... --format=csv,noheader` lines."""
    driver, gpus = None, []
    for line in text.strip().splitlines():
        cells = [cell.strip() for cell in line.split(",")]
        if with_capability and len(cells) >= 3:
            name, capability, driver = cells[0], cells[1], cells[2]
        elif not with_capability and len(cells) >= 2:
            name, capability, driver = cells[0], None, cells[1]
        else:
            continue
        valid = capability and capability.replace(".", "", 1).isdigit()
        gpus.append({"name": name, "capability": capability if valid else None})
    return driver, gpus


def nvidia_profile(sysm: System) -> dict:
    """Driver and every GPU's compute capability from nvidia-smi (with a time limit); older
    drivers cannot report compute_cap, and without nvidia-smi the kernel module still names
    the driver."""
    text, error = sysm.command(NVIDIA_QUERY, NVIDIA_SMI_TIMEOUT)
    with_capability = text is not None
    if text is None and error and "exited" in error:
        text, _ = sysm.command(NVIDIA_QUERY_OLD, NVIDIA_SMI_TIMEOUT)
    if text is not None:
        driver, gpus = parse_nvidia_smi(text, with_capability)
        if driver:
            return {"driver": driver, "gpus": gpus, "source": "nvidia-smi", "error": None}
    driver = nvidia_driver(sysm)
    source = "/proc/driver/nvidia/version" if driver else None
    return {"driver": driver, "gpus": [], "source": source, "error": error}


def machine_profile(name: str, sysm: System | None = None) -> dict:
    """What this machine imposes: OS, glibc, CPU, NVIDIA driver and GPUs, macOS, Rosetta/VM."""
    import datetime

    sysm = sysm or System()
    osf = os_facts(sysm)
    emulation = emulation_facts(sysm, sysm.archs(sysm.executable()))
    libc = sysm.libc() if sysm.system() == "Linux" else None
    mac = sysm.system() == "Darwin"
    return {
        "schema": PROFILE_SCHEMA,
        "name": name,
        "created": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "os": {"name": osf["name"], "version": osf.get("version"), "distro": osf.get("distro")},
        "arch": emulation.get("host_arch") or emulation.get("process_arch"),
        "glibc": libc["version"] if libc and libc.get("name") == "glibc" else None,
        "macos": osf.get("version") if mac else None,
        "rosetta": emulation.get("by") == "rosetta",
        "vm": vm_facts(sysm)["virtual"],
        "cpu": {
            "model": cpu_model(sysm),
            "count": sysm.cpu_count(),
            "features": cpu_features(sysm),
        },
        "nvidia": nvidia_profile(sysm) if not mac else {
            "driver": None, "gpus": [], "source": None, "error": None
        },
    }


def profile_path(name: str, project: str | None) -> str:
    if not name or name[0] == "-" or not set(name) <= PROFILE_NAME_CHARS or len(name) > 63:
        raise SystemExit(
            "probe: --profile %r: use lowercase letters, digits and dashes (e.g. gpu-a100)" % name
        )
    return os.path.join(project or os.getcwd(), "envs", "machines", name + ".json")


def profile_summary(doc: dict) -> str:
    parts = ["%s %s" % (doc["os"]["name"], doc["os"].get("version") or "?"), doc["arch"] or "?"]
    parts += ["glibc " + doc["glibc"]] if doc.get("glibc") else []
    nvidia = doc["nvidia"]
    if nvidia.get("driver"):
        caps = sorted({g["capability"] or "?" for g in nvidia["gpus"]})
        parts.append("NVIDIA driver %s" % nvidia["driver"])
        parts.append("%d GPU(s) (compute capability %s)" % (len(nvidia["gpus"]), ", ".join(caps)))
    parts += ["VM"] if doc.get("vm") else []
    parts += ["Rosetta"] if doc.get("rosetta") else []
    return ", ".join(parts)


# ---------------------------------------------------------------------------------------------
# The document
# ---------------------------------------------------------------------------------------------


def _section(errors: dict, name: str, func, *args):
    try:
        return func(*args)
    except Exception as exc:  # noqa: BLE001 - a probe reports what it cannot read, never crashes
        errors[name] = one_line(exc)
        return None


def probe(sysm: System | None = None, with_torch: bool = True, with_scan: bool = True) -> dict:
    """Every fact, as the `archlock.probe/1` document."""
    sysm = sysm or System()
    errors: dict[str, str] = {}
    exe_archs = _section(errors, "python", sysm.archs, sysm.executable()) or []
    doc = {"schema": SCHEMA}
    doc["os"] = _section(errors, "os", os_facts, sysm)
    doc["machine"] = _section(errors, "machine", machine_facts, sysm)
    doc["emulation"] = _section(errors, "emulation", emulation_facts, sysm, exe_archs)
    doc["python"] = _section(errors, "python", python_facts, sysm, exe_archs) or {}
    doc["distributions"] = _section(errors, "distributions", distributions) or []
    if with_scan:
        doc["binaries"] = _section(
            errors,
            "binaries",
            scan_binaries,
            doc["python"].get("site_packages", []),
            doc["python"].get("arch"),
            expected_format(sysm.system()),
        )
    else:
        doc["binaries"] = {"skipped": "--no-scan"}
    doc["torch"] = (
        _section(errors, "torch", torch_facts) if with_torch else {"skipped": "--no-torch"}
    )
    doc["gpu"] = {"nvidia_driver": _section(errors, "gpu", nvidia_driver, sysm)}
    emulated = bool((doc["emulation"] or {}).get("emulated"))
    unknown = {"virtual": None, "evidence": "error"}
    doc["vm"] = _section(errors, "vm", vm_facts, sysm, emulated) or unknown
    doc["env"] = _section(errors, "env", env_facts, sysm) or {}
    doc["errors"] = errors
    return doc


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-torch", action="store_true", help="do not import torch")
    parser.add_argument("--no-scan", action="store_true", help="skip the compiled-file scan")
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
        output = args.output or profile_path(args.profile, str(project) if project else None)
        doc = machine_profile(args.profile)
        os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
        emit(doc, output)
        sys.stdout.write("wrote %s: %s\n" % (output, profile_summary(doc)))
        return 0
    emit(probe(with_torch=not args.no_torch, with_scan=not args.no_scan), args.output)
    return 0


def main(argv: list[str] | None = None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    if argv == ["--torch-only"]:
        sys.stdout.write("\n" + json.dumps(torch_facts_here()) + "\n")
        return 0
    parser = argparse.ArgumentParser(prog="probe.py", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
