"""The request schema (plugin_utils/_requests.py): complete params, refused mistakes, mirrored in the protocol doc."""

from __future__ import annotations

import pathlib
import re

import pytest

from ansible_collections.hyperv.integration.plugins.plugin_utils import _requests

DOC = pathlib.Path(__file__).resolve().parents[4] / "docs/dev/powershell-protocol.md"


def test_every_key_is_sent_null_when_not_given() -> None:
    params = _requests.build_params(
        "vm_integration_service_set", vm_names=["a"], changes=[{"guid": "G", "enabled": True}]
    )
    assert params == {"vm_names": ["a"], "changes": [{"guid": "G", "enabled": True, "vm": None}]}
    assert _requests.build_params("vm_integration_service_info") == {"vm_names": None}
    assert _requests.build_params("guest_service_set", services=[]) == {"services": [], "time_provider_enabled": None}


@pytest.mark.parametrize(
    ("operation", "values", "error"),
    [
        ("vm_integration_service_set", {"vm_names": None, "changes": []}, "vm_names must not be null"),
        (
            "vm_integration_service_set",
            {"vm_names": ["a"], "changes": [{"guid": "G", "enabled": "yes"}]},
            "enabled must be a bool",
        ),
        (
            "vm_integration_service_set",
            {"vm_names": ["a"], "changes": [{"guid": "G", "enabled": True, "vmname": "a"}]},
            "unknown",
        ),
        (
            "hvsocket_service_set",
            {"services": [{"service_id": "G", "name": None, "state": "gone"}]},
            "one of present, absent",
        ),
        ("guest_service_set", {"services": [], "time_provider_enabled": True}, "must be a int"),
        ("guest_service_set", {"services": [], "checkmode": True}, "unknown keys"),
        ("no_such_operation", {}, "unknown operation"),
    ],
)
def test_mistakes_are_refused_before_anything_is_sent(operation: str, values: dict, error: str) -> None:
    with pytest.raises(_requests.RequestSchemaError, match=re.escape(error)):
        _requests.build_params(operation, **values)


def test_validate_refuses_a_missing_key() -> None:
    with pytest.raises(_requests.RequestSchemaError, match=r"missing keys \['vm'\]"):
        _requests.validate_params(
            "vm_integration_service_set", {"vm_names": ["a"], "changes": [{"guid": "G", "enabled": True}]}
        )


def _rows(fields: dict[str, _requests.Field], prefix: str) -> list[str]:
    rows = []
    for name, spec in fields.items():
        path = prefix + name
        kind = spec.kind + (" or null" if spec.nullable else "")
        if spec.kind == "list" and spec.items is not None:
            kind = "list of %s" % spec.items.kind + (" or null" if spec.nullable else "")
        read = "Get-RequestValue" if spec.optional else "direct"
        choices = ", ".join("`%s`" % c for c in spec.choices)
        rows.append("| `%s` | %s | %s | %s | %s |" % (path, kind, read, choices, spec.doc))
        if spec.items is not None and spec.items.keys:
            rows.extend(_rows(spec.items.keys, path + "[]."))
        if spec.keys:
            rows.extend(_rows(spec.keys, path + "."))
    return rows


def schema_markdown() -> str:
    lines = []
    for operation, fields in _requests.SCHEMAS.items():
        lines.append("| `%s` | | | | |" % operation)
        lines.extend(_rows(fields, "params."))
    header = "| key | type | library reads it | values | meaning |\n|---|---|---|---|---|\n"
    return header + "\n".join(lines) + "\n"


def test_the_protocol_doc_mirrors_the_schema() -> None:
    text = DOC.read_text(encoding="utf-8")
    match = re.search(r"<!-- request-schema:begin -->\n(.*?)<!-- request-schema:end -->", text, re.S)
    assert match, "docs/dev/powershell-protocol.md lacks the request-schema markers"
    assert match.group(1) == schema_markdown(), "regenerate the table:\n" + schema_markdown()
