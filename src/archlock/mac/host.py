"""Facts about this machine: is it a Mac, is it Apple Silicon, is this process under Rosetta."""

from __future__ import annotations

from dataclasses import dataclass

from archlock.errors import ConfigError
from archlock.inenv.probe_headers import macho_archs
from archlock.mac.system import MacSystem

NATIVE_PREFIX = ("arch", "-arm64")


@dataclass(frozen=True)
class HostFacts:
    os_name: str  # platform.system()
    machine: str  # what this process sees (x86_64 under Rosetta)
    apple_silicon: bool  # hw.optional.arm64 == 1: true even when this process is translated
    translated: bool  # sysctl.proc_translated == 1: this process runs under Rosetta 2
    macos: str | None  # kern.osproductversion: the real version, also under Rosetta
    self_archs: tuple[str, ...]  # slices of the interpreter running archlock

    @property
    def native_prefix(self) -> tuple[str, ...]:
        """What native steps start with: `arch -arm64` when this process is translated."""
        return NATIVE_PREFIX if self.translated else ()

    @property
    def self_can_run_native(self) -> bool:
        return "arm64" in self.self_archs or "arm64e" in self.self_archs


def detect(system: MacSystem) -> HostFacts:
    os_name = system.os_name()
    mac = os_name == "Darwin"
    head = system.head(system.realpath(system.executable())) or b""
    return HostFacts(
        os_name=os_name,
        machine=system.machine(),
        apple_silicon=mac and system.sysctl_int("hw.optional.arm64") == 1,
        translated=mac and system.sysctl_int("sysctl.proc_translated") == 1,
        macos=system.sysctl_str("kern.osproductversion") if mac else None,
        self_archs=tuple(macho_archs(head)),
    )


def refuse_unless_apple_silicon(facts: HostFacts) -> None:
    """Off an Apple Silicon Mac: one line, non-zero exit, and the session to use instead."""
    if facts.os_name != "Darwin":
        name = {"Linux": "Linux", "Windows": "Windows"}.get(
            facts.os_name, facts.os_name or "this OS"
        )
        raise ConfigError(
            f"setup-mac is for macOS on Apple Silicon and this host runs {name} ({facts.machine})",
            fix="use `nox -s verify` to sync and check this host's env",
        )
    if not facts.apple_silicon:
        raise ConfigError(
            "setup-mac is for Apple Silicon Macs and this Mac has an Intel CPU "
            "(hw.optional.arm64 is not 1); PyPI's last Intel-Mac torch is 2.2.2",
            fix="use a Linux env (`nox -s verify` on a Linux host) or an Apple Silicon Mac",
        )
