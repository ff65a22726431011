"""The collection's public names as the tests expect them (DESIGN.md): a test oracle, written here once
and on purpose not read from the catalog, so that a drift in plugins/module_utils/ic_catalog.py shows."""

from __future__ import annotations

# The integration service keys, in the catalog's documented order.
IC_KEYS = (
    "heartbeat",
    "shutdown",
    "time_synchronization",
    "key_value_pair_exchange",
    "vss",
    "guest_service_interface",
)
