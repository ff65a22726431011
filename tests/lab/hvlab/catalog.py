"""Integration components as a Hyper-V host reports them (hyperv-facts.md section 1)."""

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
