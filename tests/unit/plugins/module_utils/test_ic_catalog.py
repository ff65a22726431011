from __future__ import annotations

import uuid

import pytest
from support.public_names import IC_KEYS

from ansible_collections.hyperv.integration.plugins.module_utils import ic_catalog as cat


def test_six_keys_in_documented_order() -> None:
    assert cat.IC_KEYS == IC_KEYS  # the oracle (tests/support/public_names.py)


@pytest.mark.parametrize("ic", cat.CATALOG, ids=lambda ic: ic.key)
def test_guids_are_well_formed_and_distinct_per_side(ic: cat.IntegrationComponent) -> None:
    assert str(uuid.UUID(ic.host_guid)).upper() == ic.host_guid
    assert str(uuid.UUID(ic.vmbus_class_guid)) == ic.vmbus_class_guid
    # The host IC GUID and the guest's VMBus class GUID are different things (docs/dev/hyperv-facts.md section 3).
    assert ic.host_guid.lower() != ic.vmbus_class_guid


def test_only_guest_service_interface_is_off_by_default() -> None:
    assert [ic.key for ic in cat.CATALOG if not ic.default_enabled] == ["guest_service_interface"]


@pytest.mark.parametrize(
    ("given", "key"),
    [
        ("guest_service_interface", "guest_service_interface"),
        ("Guest Service Interface", "guest_service_interface"),
        ("guest-service-interface", "guest_service_interface"),
        ("GUEST SERVICE INTERFACE", "guest_service_interface"),
        ("Gastdienstschnittstelle", "guest_service_interface"),
        ("客體服務介面", "guest_service_interface"),
        ("Interface de services d\u2019invit\u00e9", "guest_service_interface"),  # typographic apostrophe
        ("Takt", "heartbeat"),
        ("pulsation", "heartbeat"),
        ("Key-Value Pair Exchange", "key_value_pair_exchange"),
        ("Austausch von Schlüsselwertepaaren", "key_value_pair_exchange"),
        ("Échange de paires clé-valeur", "key_value_pair_exchange"),
        ("time synchronization", "time_synchronization"),
        ("Synchronisation date/heure", "time_synchronization"),
        ("Herunterfahren", "shutdown"),
        ("Arrêt", "shutdown"),
        ("vss", "vss"),
        ("Ｖｓｓ", "vss"),  # full-width letters, as typed with an East Asian input method
    ],
)
def test_resolve_key_accepts_keys_english_and_localized_names(given: str, key: str) -> None:
    assert cat.resolve_key(given) == key


@pytest.mark.parametrize("given", ["", "  ", "backup", "Guest Service", None, 3, "arret"])
def test_unknown_names_fail_and_list_valid_keys(given: object) -> None:
    with pytest.raises(cat.UnknownIntegrationServiceError) as info:
        cat.resolve_key(given)
    for key in cat.IC_KEYS:
        assert key in str(info.value)


def test_host_guid_lookup_any_case_and_braces() -> None:
    guid = "6C09BB55-D683-4DA0-8931-C9BF705F6480"
    assert cat.by_host_guid(guid.lower()).key == "guest_service_interface"
    assert cat.by_host_guid("{" + guid.lower() + "}").key == "guest_service_interface"
    assert cat.by_host_guid("00000000-0000-0000-0000-000000000001") is None


@pytest.mark.parametrize(
    ("family", "packages"),
    [
        ("debian", ["hyperv-daemons"]),
        ("ubuntu", ["linux-cloud-tools-common", "linux-cloud-tools-virtual"]),
        ("archlinux", ["hyperv"]),
        ("gentoo", []),
    ],
)
def test_daemon_packages_per_family_once_each(family: str, packages: list[str]) -> None:
    assert cat.daemon_packages(family) == packages


@pytest.mark.parametrize(
    ("key", "kernel", "driver", "expected"),
    [
        ("guest_service_interface", (6, 10), None, True),  # the in-kernel fcopy driver is gone
        ("guest_service_interface", (6, 12), "uio_hv_generic", True),
        ("guest_service_interface", (6, 12), "hv_utils", False),  # still bound to the kernel driver
        ("guest_service_interface", (6, 9), None, False),
        ("key_value_pair_exchange", (6, 12), None, False),  # served by hv_utils on every kernel
        ("heartbeat", (6, 12), None, False),
    ],
)
def test_needs_uio(key: str, kernel: tuple[int, int], driver: str | None, expected: bool) -> None:
    assert cat.needs_uio(key, kernel, driver) is expected


def test_daemon_units_for_the_device_as_served() -> None:
    assert cat.daemon_units("guest_service_interface", uio=True) == (
        "hv_fcopy_uio_daemon.service",
        "hypervfcopyd.service",
    )
    assert "hv_fcopy_uio_daemon.service" not in cat.daemon_units("guest_service_interface", uio=False)
    assert cat.daemon_units("vss", uio=True) == cat.LINUX_DAEMONS["vss"].units  # no UIO variant
    assert cat.daemon_units("heartbeat", uio=False) == ()
