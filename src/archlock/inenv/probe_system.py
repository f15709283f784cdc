"""The probe's system answers: the one place it asks the machine (platform, sysctl, /proc,
commands), and the OS, machine, VM and emulation facts read from those answers.

Every question goes through `System`; tests inject recorded answers with `RecordedSystem`. See
probe.py for the schema and how emulation is decided. Standard library only, Python >= 3.8.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys

# its siblings, the same way inside the package and in a plain-file copy (see inenv/__init__.py)
from . import probe_headers as headers

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
        return headers.binary_archs(path)

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
    facts: dict = {
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


def nvidia_driver(sysm: System) -> str | None:
    text = sysm.read_text("/proc/driver/nvidia/version") or ""
    for word in text.split():
        parts = word.split(".")
        if len(parts) >= 2 and all(part.isdigit() for part in parts):
            return word
    return None


def one_line(exc: BaseException) -> str:
    text = ("%s: %s" % (type(exc).__name__, exc)).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__
