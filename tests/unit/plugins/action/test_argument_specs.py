"""Each action plugin's ARGUMENT_SPEC must say what its module's DOCUMENTATION says.

validate-modules cannot compare a doc-only module file with the action plugin that implements it
(docs/dev/hyperv-facts.md section 6), so this test does.
"""

from __future__ import annotations

import importlib
import pathlib

import pytest
import yaml

from ansible_collections.hyperv.integration.plugins.doc_fragments.attributes import ModuleDocFragment

REPO = pathlib.Path(__file__).resolve().parents[4]
ACTIONS = sorted(p.stem for p in (REPO / "plugins" / "action").glob("*.py") if not p.stem.startswith("_"))
_COMPARED = ("type", "required", "default", "choices", "elements", "aliases", "no_log")
_DEFAULTS = {
    "type": "str",
    "required": False,
    "default": None,
    "choices": None,
    "elements": None,
    "aliases": [],
    "no_log": False,
}


def _normal(option: dict) -> dict:
    out = {field: option.get(field, _DEFAULTS[field]) for field in _COMPARED}
    out["aliases"] = sorted(out["aliases"] or [])
    if "options" in option or "suboptions" in option:
        sub = option.get("options") or option.get("suboptions")
        out["options"] = {name: _normal(spec) for name, spec in sub.items()}
    return out


def _documented(name: str) -> dict:
    """The module's options as ansible-doc shows them: its own, over those of the collection's fragments."""
    module = importlib.import_module("ansible_collections.hyperv.integration.plugins.modules.%s" % name)
    doc = yaml.safe_load(module.DOCUMENTATION)
    options: dict = {}
    for fragment in doc.get("extends_documentation_fragment") or []:
        collection, _dot, rest = fragment.rpartition(".attributes.")
        assert collection == "hyperv.integration", fragment  # the only fragments these modules use
        text = getattr(ModuleDocFragment, rest.upper())
        options.update(yaml.safe_load(text).get("options") or {})
    options.update(doc.get("options") or {})
    return options


def test_every_action_has_a_module_doc() -> None:
    assert ACTIONS
    for name in ACTIONS:
        assert (REPO / "plugins" / "modules" / ("%s.py" % name)).exists(), name


@pytest.mark.parametrize("name", ACTIONS)
def test_argument_spec_matches_documentation(name: str) -> None:
    action = importlib.import_module("ansible_collections.hyperv.integration.plugins.action.%s" % name)
    spec = {key: _normal(value) for key, value in action.ARGUMENT_SPEC.items()}
    documented = {key: _normal(value) for key, value in _documented(name).items()}
    assert spec == documented


@pytest.mark.parametrize("name", ACTIONS)
def test_documentation_has_examples_and_return(name: str) -> None:
    module = importlib.import_module("ansible_collections.hyperv.integration.plugins.modules.%s" % name)
    assert yaml.safe_load(module.EXAMPLES)
    assert yaml.safe_load(module.RETURN)
