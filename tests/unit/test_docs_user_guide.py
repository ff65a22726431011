"""docs/user-guide.md: its integration service matrix is generated from the catalog, so it cannot drift.

Regenerate after a catalog change: python tests/unit/test_docs_user_guide.py
"""

from __future__ import annotations

import sys
from pathlib import Path

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "user-guide.md"
BEGIN = "<!-- BEGIN generated from plugins/module_utils/ic_catalog.py by tests/unit/test_docs_user_guide.py -->"
END = "<!-- END generated -->"

# What stops working when the service is off (Microsoft's integration services reference, seeds/001
# "Impact de sa désactivation"; docs/dev/hyperv-facts.md section 1 for Copy-VMFile).
IMPACT = {
    "heartbeat": "the host cannot tell that the guest OS is running and healthy; host-side monitoring suffers",
    "shutdown": "high impact: the host cannot shut the guest down cleanly; every shutdown is a hard power-off",
    "time_synchronization": "high impact: the guest clock drifts irregularly",
    "key_value_pair_exchange": "no VM facts (host name, OS, IC version) for the host; pre-2012 Windows "
    "guests get no IC updates",
    "vss": "no application-consistent backup of the running VM (the host falls back to saved state)",
    "guest_service_interface": "Copy-VMFile (host to guest file copy) fails",
}


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def render() -> str:
    """The generated part of the guide, from the catalog."""
    # Imported here so that `python tests/unit/test_docs_user_guide.py` works from a checkout whose
    # collection tree is .cache/collections (scripts/bootstrap.sh).
    from ansible_collections.hyperv.integration.plugins.module_utils import ic_catalog as cat

    lines = [
        "| key | host name (en-US) | host IC GUID (`Id` suffix) | default | Windows guest service "
        "| Linux VMBus class GUID | Linux driver | Linux daemon (unit candidates) | off means |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for ic in cat.CATALOG:
        daemon = cat.LINUX_DAEMONS.get(ic.key)
        if ic.key == "guest_service_interface":
            driver = "hv_utils (`%s`) before Linux %d.%d; %s from %d.%d" % (
                daemon.device,
                *daemon.uio_from_kernel,
                cat.UIO_DRIVER,
                *daemon.uio_from_kernel,
            )
        elif daemon:
            driver = "hv_utils (`%s`)" % daemon.device
        else:
            driver = "hv_utils (in kernel)" + ("; PTP clock `hyperv`" if ic.key == "time_synchronization" else "")
        units = "<br>".join("`%s`" % u for u in daemon.units) if daemon else "none (kernel only)"
        if daemon and daemon.uio_units:
            units += "<br>from Linux %d.%d: " % daemon.uio_from_kernel
            units += "<br>".join("`%s`" % u for u in daemon.uio_units)
        lines.append(
            "| `%s` | %s | `%s` | %s | `%s` | `%s` | %s | %s | %s |"
            % (
                ic.key,
                ic.english_name,
                ic.host_guid,
                "on" if ic.default_enabled else "**off**",
                ic.windows_service,
                ic.vmbus_class_guid,
                _cell(driver),
                units,
                _cell(IMPACT[ic.key]),
            )
        )
    lines += ["", "Windows guest services that are no host integration service:", ""]
    lines += ["- `%s` (key `%s`)" % (svc, key) for key, svc in cat.WINDOWS_GUEST_ONLY_SERVICES.items()]
    families = sorted({f for d in cat.LINUX_DAEMONS.values() for f in d.packages})
    lines += [
        "",
        "Daemon packages per distribution family (as `guest_integration_service_info` reports `daemon_packages`):",
        "",
    ]
    lines += ["| family | packages | daemons they provide |", "|---|---|---|"]
    for family in families:
        provided = [k for k, d in cat.LINUX_DAEMONS.items() if d.packages.get(family)]
        lines.append(
            "| %s | %s | %s |"
            % (
                family,
                ", ".join("`%s`" % p for p in cat.daemon_packages(family)),
                ", ".join("`%s`" % k for k in provided),
            )
        )
    lines += ["", "Accepted localized names (input only; the host is always addressed by GUID):", ""]
    lines += ["| key | " + " | ".join(cat_langs(cat)) + " |", "|---|" + "---|" * len(cat_langs(cat))]
    for ic in cat.CATALOG:
        names = [", ".join(ic.localized_names.get(lang, ())) or "-" for lang in cat_langs(cat)]
        lines.append("| `%s` | %s |" % (ic.key, " | ".join(_cell(n) for n in names)))
    return "\n".join(lines)


def cat_langs(cat) -> list[str]:
    return sorted({lang for ic in cat.CATALOG for lang in ic.localized_names})


def _split(text: str) -> tuple[str, str, str]:
    """(text up to and with BEGIN, the generated part, END and the rest)."""
    assert text.count(BEGIN) == 1 and text.count(END) == 1, "docs/user-guide.md has no generated section"
    head, rest = text.split(BEGIN)
    body, tail = rest.split(END)
    return head + BEGIN, body.strip("\n"), END + tail


def test_matrix_in_the_user_guide_is_the_catalog() -> None:
    assert _split(GUIDE.read_text(encoding="utf-8"))[1] == render(), (
        "docs/user-guide.md is out of date: run python tests/unit/test_docs_user_guide.py"
    )


def test_every_ic_has_an_impact_line() -> None:
    from ansible_collections.hyperv.integration.plugins.module_utils import ic_catalog as cat

    assert set(IMPACT) == set(cat.IC_KEYS)


if __name__ == "__main__":
    sys.path.insert(0, str(GUIDE.parents[1] / ".cache" / "collections"))
    text = GUIDE.read_text(encoding="utf-8")
    head, dummy, tail = _split(text)
    new = "%s\n%s\n%s" % (head, render(), tail)
    GUIDE.write_text(new, encoding="utf-8")
    print("docs/user-guide.md: matrix %s" % ("updated" if new != text else "already current"))
