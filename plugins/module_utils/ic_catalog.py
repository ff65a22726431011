# Copyright: (c) 2026, hyperv.integration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The integration component (IC) catalog: the one place that knows Hyper-V's names and GUIDs.

Internal to this collection: not a public API, it may change without notice.

Every fact here comes from docs/dev/hyperv-facts.md, which names its sources:
- host IC GUIDs (the suffix of ``Get-VMIntegrationService`` ``Id``): hashicorp/packer-plugin-hyperv
  hyperv.go and MicrosoftDocs msvm-*componentsettingdata;
- Windows guest service names: MicrosoftDocs Manage-Hyper-V-integration-services.md (``Get-Service vm*``);
- VMBus class GUIDs: torvalds/linux include/linux/hyperv.h;
- localized names: PlagueHO/LabBuilder #183, dsccommunity/HyperVDsc #73/#76 and Microsoft's translated
  documentation. They are accepted as *input* only; the host is always addressed by GUID, because the
  ``Name`` it reports is localized.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

from ansible_collections.hyperv.integration.plugins.module_utils.argument_error import ArgumentError


@dataclass(frozen=True)
class IntegrationComponent:
    """One integration service, host half and guest halves."""

    key: str
    english_name: str
    host_guid: str  # upper case, no braces
    default_enabled: bool
    windows_service: str
    vmbus_class_guid: str  # lower case, no braces
    linux_provider: str  # "kernel" (hv_utils only) or "daemon" (hv_utils plus a user-space daemon)
    # Localized Name values as hosts report them, by language (input aliases, never matched on the host).
    localized_names: dict[str, tuple[str, ...]] = field(default_factory=dict)


# The host half: key, English name, host IC GUID (the Id suffix), on by default ("all except Guest
# Service Interface are on by default").
_HOST_HALF: tuple[tuple[str, str, str, bool], ...] = (
    ("heartbeat", "Heartbeat", "84EAAE65-2F2E-45F5-9BB5-0E857DC8EB47", True),
    ("shutdown", "Shutdown", "9F8233AC-BE49-4C79-8EE3-E7E1985B2077", True),
    ("time_synchronization", "Time Synchronization", "2497F4DE-E9FA-4204-80E4-4B75C46419C0", True),
    ("key_value_pair_exchange", "Key-Value Pair Exchange", "2A34B1C2-FD73-4043-8A5B-DD2159BC743F", True),
    ("vss", "VSS", "5CED1297-4598-4915-A5FC-AD21BB4D02A4", True),
    ("guest_service_interface", "Guest Service Interface", "6C09BB55-D683-4DA0-8931-C9BF705F6480", False),
)

# The guest halves: key, Windows service, VMBus class GUID, Linux provider ("kernel": hv_utils only;
# "daemon": hv_utils plus a user-space daemon).
_GUEST_HALF: tuple[tuple[str, str, str, str], ...] = (
    ("heartbeat", "vmicheartbeat", "57164f39-9115-4e78-ab55-382f3bd5422d", "kernel"),
    ("shutdown", "vmicshutdown", "0e0b6031-5213-4934-818b-38d90ced39db", "kernel"),
    ("time_synchronization", "vmictimesync", "9527e630-d0ae-497b-adce-e80ab0175caf", "kernel"),
    ("key_value_pair_exchange", "vmickvpexchange", "a9a0f4e7-5a45-4d96-b827-8a841e8c03e6", "daemon"),
    ("vss", "vmicvss", "35fa2e29-ea23-4236-96ae-3a6ebacba440", "daemon"),
    ("guest_service_interface", "vmicguestinterface", "34d14be3-dee4-41c8-9ae7-6b174977c192", "daemon"),
)

# Localized Name values as hosts report them, by IC and language.
_LOCALIZED: dict[str, dict[str, tuple[str, ...]]] = {
    "heartbeat": {"de-DE": ("Takt",), "fr-FR": ("Pulsation",)},
    "shutdown": {"de-DE": ("Herunterfahren",), "fr-FR": ("Arrêt",)},
    "time_synchronization": {
        "de-DE": ("Zeitsynchronisierung",),
        # Two French spellings are in use (docs/dev/hyperv-facts.md section 1: sources conflict).
        "fr-FR": ("Synchronisation date/heure", "Synchronisation de l'heure"),
        "zh-TW": ("時間同步處理",),
    },
    "key_value_pair_exchange": {
        "de-DE": ("Austausch von Schlüsselwertepaaren",),
        "fr-FR": ("Échange de paires clé-valeur",),
        "zh-TW": ("資料交換",),
    },
    "guest_service_interface": {
        "de-DE": ("Gastdienstschnittstelle",),
        "fr-FR": ("Interface de services d'invité", "Interface de service invité"),
        "zh-TW": ("客體服務介面",),
    },
}


def _build_catalog() -> tuple[IntegrationComponent, ...]:
    guest = {row[0]: row[1:] for row in _GUEST_HALF}
    if [row[0] for row in _HOST_HALF] != [row[0] for row in _GUEST_HALF]:  # pragma: no cover - a unit test
        raise RuntimeError("the host and guest halves of the IC catalog list different ICs")
    return tuple(
        IntegrationComponent(
            key=key,
            english_name=english_name,
            host_guid=host_guid,
            default_enabled=default_enabled,
            windows_service=guest[key][0],
            vmbus_class_guid=guest[key][1],
            linux_provider=guest[key][2],
            localized_names=_LOCALIZED.get(key, {}),
        )
        for key, english_name, host_guid, default_enabled in _HOST_HALF
    )


CATALOG: tuple[IntegrationComponent, ...] = _build_catalog()
IC_KEYS: tuple[str, ...] = tuple(ic.key for ic in CATALOG)
_BY_KEY: dict[str, IntegrationComponent] = {ic.key: ic for ic in CATALOG}
_BY_HOST_GUID: dict[str, IntegrationComponent] = {ic.host_guid: ic for ic in CATALOG}


class UnknownIntegrationServiceError(ArgumentError):
    """An IC name that is neither a key, an English name nor a known localized name."""

    def __init__(self, given: object) -> None:
        self.given = given
        super().__init__(
            "unknown integration service %r; valid keys: %s (English and localized names are also accepted)"
            % (given, ", ".join(IC_KEYS))
        )


def _fold(name: str) -> str:
    """Case-, accent-width- and punctuation-insensitive form of a name.

    NFKC first so full-width forms match; casefold for case; then everything that is not a letter or a
    digit goes, so 'Key-Value Pair Exchange', 'key_value_pair_exchange' and 'KEY VALUE PAIR EXCHANGE'
    are one name. Accents are kept: 'Arrêt' must not become another word.
    """
    text = unicodedata.normalize("NFKC", name).casefold()
    return re.sub(r"[\W_]+", "", text)


def _build_alias_index() -> dict[str, str]:
    index: dict[str, str] = {}
    for ic in CATALOG:
        names = [ic.key, ic.english_name]
        for localized in ic.localized_names.values():
            names.extend(localized)
        for name in names:
            folded = _fold(name)
            owner = index.setdefault(folded, ic.key)
            if owner != ic.key:  # pragma: no cover - guarded by a unit test
                raise RuntimeError("IC alias %r is claimed by %s and %s" % (name, owner, ic.key))
    return index


_ALIASES: dict[str, str] = _build_alias_index()


def resolve_key(name: object) -> str:
    """Return the IC key for a key, English name or localized name; raise for anything else."""
    if not isinstance(name, str) or not name.strip():
        raise UnknownIntegrationServiceError(name)
    key = _ALIASES.get(_fold(name))
    if key is None:
        raise UnknownIntegrationServiceError(name)
    return key


def by_key(key: str) -> IntegrationComponent:
    return _BY_KEY[key]


def by_host_guid(guid: str) -> IntegrationComponent | None:
    """The IC whose host GUID this is (any case, braces allowed), or None for an IC we do not know."""
    return _BY_HOST_GUID.get(guid.strip("{}").upper())


# --- Guest side -------------------------------------------------------------------------------------

# Windows guest services that are not one of the six host ICs (docs/dev/hyperv-facts.md section 2).
WINDOWS_GUEST_ONLY_SERVICES: dict[str, str] = {
    "powershell_direct": "vmicvmsession",  # "VM Session Service", stopped until used
    "remote_desktop_virtualization": "vmicrdv",
}


def windows_service_name(key: str) -> str:
    """The (never localized) Windows service name of an IC key or a guest-only key."""
    if key in WINDOWS_GUEST_ONLY_SERVICES:
        return WINDOWS_GUEST_ONLY_SERVICES[key]
    return _BY_KEY[key].windows_service


def resolve_guest_key(name: object, windows: bool) -> str:
    """Like resolve_key, plus the Windows-only guest services on Windows guests."""
    if windows and isinstance(name, str):
        folded = _fold(name)
        for key, service in WINDOWS_GUEST_ONLY_SERVICES.items():
            if folded in (_fold(key), _fold(service)):
                return key
    return resolve_key(name)


@dataclass(frozen=True)
class LinuxDaemon:
    """The user-space half of a Linux IC, as distributions package it (docs/dev/hyperv-facts.md section 3).

    Unit names are candidates, tried in order at run time; the first one systemd knows is the one.
    """

    units: tuple[str, ...]
    device: str  # the character device the daemon talks to (before Linux 6.10 for fcopy)
    packages: dict[str, tuple[str, ...]]  # os family -> packages that provide it
    # The daemon that serves the device through uio_hv_generic instead (fcopy from Linux 6.10 on), its
    # unit candidates, and the first kernel where the in-kernel driver is gone.
    uio_units: tuple[str, ...] = ()
    uio_from_kernel: tuple[int, int] | None = None


_PACKAGES_ALL = {
    "debian": ("hyperv-daemons",),
    "ubuntu": ("linux-cloud-tools-common", "linux-cloud-tools-virtual"),
    "redhat": ("hyperv-daemons",),
    "suse": ("hyper-v",),
    "archlinux": ("hyperv",),
}

LINUX_DAEMONS: dict[str, LinuxDaemon] = {
    "key_value_pair_exchange": LinuxDaemon(
        units=(
            "hv-kvp-daemon.service",  # Debian, Ubuntu
            "hypervkvpd.service",  # Fedora, RHEL, Azure Linux
            "hv_kvp_daemon.service",  # SUSE, Arch
            "hyperv-daemons.hv-kvp-daemon.service",  # older Debian releases
        ),
        device="/dev/vmbus/hv_kvp",
        packages=_PACKAGES_ALL,
    ),
    "vss": LinuxDaemon(
        units=(
            "hv-vss-daemon.service",
            "hypervvssd.service",
            "hv_vss_daemon.service",
            "hyperv-daemons.hv-vss-daemon.service",
        ),
        device="/dev/vmbus/hv_vss",
        packages=_PACKAGES_ALL,
    ),
    "guest_service_interface": LinuxDaemon(
        units=(
            "hv-fcopy-daemon.service",
            "hypervfcopyd.service",
            "hv_fcopy_daemon.service",
            "hyperv-daemons.hv-fcopy-daemon.service",
        ),
        device="/dev/vmbus/hv_fcopy",
        packages=dict(_PACKAGES_ALL, archlinux=()),  # recent Arch packages ship no fcopy daemon
        uio_units=(
            "hv_fcopy_uio_daemon.service",  # SUSE
            "hypervfcopyd.service",  # Fedora, RHEL: the same unit runs the UIO daemon on those kernels
        ),
        uio_from_kernel=(6, 10),
    ),
}


def daemon_packages(family: str) -> list[str]:
    """The packages that provide the Linux daemons on a distribution family, in catalog order."""
    found: list[str] = []
    for daemon in LINUX_DAEMONS.values():
        for package in daemon.packages.get(family, ()):
            if package not in found:
                found.append(package)
    return found


# Linux 6.10 removed the in-kernel fcopy driver (commit ec314f61e4fc): the fcopy device is then served by
# uio_hv_generic, which binds nothing until told the class GUID through new_id (docs/dev/hyperv-facts.md section 3).
UIO_DRIVER = "uio_hv_generic"
KERNEL_DRIVER = "hv_utils"  # the in-kernel driver of every IC's device (before 6.10 for fcopy)


def needs_uio(key: str, kernel: tuple[int, int], driver: str | None) -> bool:
    """Whether an IC's device must be served through uio_hv_generic (and its daemon's UIO variant).

    The tree decides, the version only confirms: a device still bound to the kernel driver is served by
    it, whatever the release string says.
    """
    daemon = LINUX_DAEMONS.get(key)
    if daemon is None or daemon.uio_from_kernel is None:
        return False
    return kernel >= daemon.uio_from_kernel and driver != KERNEL_DRIVER


def daemon_units(key: str, uio: bool) -> tuple[str, ...]:
    """The unit candidates of an IC's daemon, for the device as it is served (empty: no daemon)."""
    daemon = LINUX_DAEMONS.get(key)
    if daemon is None:
        return ()
    return daemon.uio_units if uio and daemon.uio_units else daemon.units
