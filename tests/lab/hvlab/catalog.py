"""Integration components as a Hyper-V host reports them (docs/dev/hyperv-facts.md section 1)."""

from __future__ import annotations

from dataclasses import dataclass

LANGUAGES: tuple[str, ...] = ("en-US", "de-DE", "fr-FR", "zh-TW")


@dataclass(frozen=True)
class IcDefinition:
    key: str
    guid: str  # upper case, no braces: the suffix of the IC Id on the host
    names: dict[str, str]  # host language -> Name the host reports (localized)
    default_enabled: bool


# Host order: the order of Microsoft's Get-VMIntegrationService example output
# (reference/seeds/000_*.txt, "Afficher les services d'intégration"); the lab keeps it for every
# language (assumption: WMI returns the components in the same order whatever the UI language).
# Defaults: all on but Guest Service Interface (Manage-Hyper-V-integration-services.md).
# Names: en-US from the facts table; de-DE/fr-FR from the facts list (some have one source only,
# fr-FR is UNVERIFIED); zh-TW: only 客體服務介面 is attested, the others are the lab's guesses.
CATALOG: tuple[IcDefinition, ...] = (
    IcDefinition(
        "guest_service_interface",
        "6C09BB55-D683-4DA0-8931-C9BF705F6480",
        {
            "en-US": "Guest Service Interface",
            "de-DE": "Gastdienstschnittstelle",
            "fr-FR": "Interface de services d'invité",
            "zh-TW": "客體服務介面",
        },
        False,
    ),
    IcDefinition(
        "heartbeat",
        "84EAAE65-2F2E-45F5-9BB5-0E857DC8EB47",
        {"en-US": "Heartbeat", "de-DE": "Takt", "fr-FR": "Pulsation", "zh-TW": "活動訊號"},
        True,
    ),
    IcDefinition(
        "key_value_pair_exchange",
        "2A34B1C2-FD73-4043-8A5B-DD2159BC743F",
        {
            "en-US": "Key-Value Pair Exchange",
            "de-DE": "Austausch von Schlüsselwertepaaren",
            "fr-FR": "Échange de paires clé-valeur",
            "zh-TW": "資料交換",
        },
        True,
    ),
    IcDefinition(
        "shutdown",
        "9F8233AC-BE49-4C79-8EE3-E7E1985B2077",
        {"en-US": "Shutdown", "de-DE": "Herunterfahren", "fr-FR": "Arrêt", "zh-TW": "關機"},
        True,
    ),
    IcDefinition(
        "time_synchronization",
        "2497F4DE-E9FA-4204-80E4-4B75C46419C0",
        {
            "en-US": "Time Synchronization",
            "de-DE": "Zeitsynchronisierung",
            "fr-FR": "Synchronisation date/heure",
            "zh-TW": "時間同步處理",
        },
        True,
    ),
    IcDefinition(
        "vss",
        "5CED1297-4598-4915-A5FC-AD21BB4D02A4",
        {"en-US": "VSS", "de-DE": "VSS", "fr-FR": "VSS", "zh-TW": "VSS"},
        True,
    ),
)

BY_KEY: dict[str, IcDefinition] = {ic.key: ic for ic in CATALOG}
BY_GUID: dict[str, IcDefinition] = {ic.guid: ic for ic in CATALOG}


# -- Windows guest side (docs/dev/hyperv-facts.md section 2) ---------------------------------------
SERVICE_STATUSES: tuple[str, ...] = ("Running", "Stopped")  # what the LABFILE may set
START_MODES: tuple[str, ...] = ("Automatic", "Manual", "Disabled")  # what Set-Service -StartupType sets


@dataclass(frozen=True)
class WindowsServiceDefinition:
    name: str  # service name: never localized
    ic_key: str | None  # the IC whose guest half this service is; None: no host IC
    display_names: dict[str, str]  # host language -> DisplayName (the guest is assumed to match the host)
    status: str  # default: what a freshly booted guest shows
    start_mode: str


# Order and en-US display names: Microsoft's `Get-Service -Name vm*` example (reference/seeds/000,
# "Running vmicrdv Hyper-V Remote Desktop Virtualizati..." is cut there; the lab completes it with
# "Service"). Defaults: every service Running except vmicvmsession ("stopped until used",
# docs/dev/hyperv-facts.md section 2); start mode Manual for all (lab assumption: Windows
# trigger-starts them when the host offers the device). de-DE/fr-FR/zh-TW display names are lab
# assumptions (fr-FR follows the names in reference/seeds/001's table); nothing may rely on them.
WINDOWS_SERVICES: tuple[WindowsServiceDefinition, ...] = (
    WindowsServiceDefinition(
        "vmicguestinterface",
        "guest_service_interface",
        {
            "en-US": "Hyper-V Guest Service Interface",
            "de-DE": "Hyper-V-Gastdienstschnittstelle",
            "fr-FR": "Interface de services d'invité Hyper-V",
            "zh-TW": "Hyper-V 客體服務介面",
        },
        "Running",
        "Manual",
    ),
    WindowsServiceDefinition(
        "vmicheartbeat",
        "heartbeat",
        {
            "en-US": "Hyper-V Heartbeat Service",
            "de-DE": "Hyper-V-Taktdienst",
            "fr-FR": "Service Pulsation Microsoft Hyper-V",
            "zh-TW": "Hyper-V 活動訊號服務",
        },
        "Running",
        "Manual",
    ),
    WindowsServiceDefinition(
        "vmickvpexchange",
        "key_value_pair_exchange",
        {
            "en-US": "Hyper-V Data Exchange Service",
            "de-DE": "Hyper-V-Datenaustauschdienst",
            "fr-FR": "Service Échange de données Microsoft Hyper-V",
            "zh-TW": "Hyper-V 資料交換服務",
        },
        "Running",
        "Manual",
    ),
    WindowsServiceDefinition(
        "vmicrdv",
        None,
        {
            "en-US": "Hyper-V Remote Desktop Virtualization Service",
            "de-DE": "Hyper-V-Remotedesktopvirtualisierungsdienst",
            "fr-FR": "Service de virtualisation Bureau à distance Hyper-V",
            "zh-TW": "Hyper-V 遠端桌面虛擬化服務",
        },
        "Running",
        "Manual",
    ),
    WindowsServiceDefinition(
        "vmicshutdown",
        "shutdown",
        {
            "en-US": "Hyper-V Guest Shutdown Service",
            "de-DE": "Hyper-V-Dienst zum Herunterfahren des Gasts",
            "fr-FR": "Service Arrêt de l'invité Microsoft Hyper-V",
            "zh-TW": "Hyper-V 客體關機服務",
        },
        "Running",
        "Manual",
    ),
    WindowsServiceDefinition(
        "vmictimesync",
        "time_synchronization",
        {
            "en-US": "Hyper-V Time Synchronization Service",
            "de-DE": "Hyper-V-Dienst für Zeitsynchronisierung",
            "fr-FR": "Service Synchronisation date/heure Microsoft Hyper-V",
            "zh-TW": "Hyper-V 時間同步處理服務",
        },
        "Running",
        "Manual",
    ),
    WindowsServiceDefinition(
        "vmicvmsession",
        None,
        {
            "en-US": "Hyper-V VM Session Service",
            "de-DE": "Hyper-V-VM-Sitzungsdienst",
            "fr-FR": "Service de session d'ordinateur virtuel Hyper-V",
            "zh-TW": "Hyper-V VM 工作階段服務",
        },
        "Stopped",
        "Manual",
    ),
    WindowsServiceDefinition(
        "vmicvss",
        "vss",
        {
            "en-US": "Hyper-V Volume Shadow Copy Requestor",
            "de-DE": "Hyper-V-Volumeschattenkopie-Anforderer",
            "fr-FR": "Requête du service VSS Microsoft Hyper-V",
            "zh-TW": "Hyper-V 磁碟區陰影複製要求者",
        },
        "Running",
        "Manual",
    ),
)

SERVICE_BY_NAME: dict[str, WindowsServiceDefinition] = {s.name: s for s in WINDOWS_SERVICES}
SERVICE_FOR_IC: dict[str, WindowsServiceDefinition] = {s.ic_key: s for s in WINDOWS_SERVICES if s.ic_key}
