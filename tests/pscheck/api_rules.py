"""API contract rules for the shipped PowerShell: cmdlets and parameter sets, members of typed values,
enum/Guid/Version values put into answers raw. Data: tests/pscheck/data/cmdlets.yml and types.yml
(docs/dev/powershell-api-sources.md says where each fact comes from).

Every rule is a pure function of the PowerShell text (and the loaded data) that returns violations.

Rules
- ``cmdlet-exists-and-parameter-set``: a command that is not a function of the same text must be in
  cmdlets.yml (and, when module-qualified, from that module); each named parameter must be a full name
  or an alias (no abbreviations, no unknown names), not a PowerShell 6/7-only one, and together with
  the positional arguments they must fit at least one parameter set (its required parameters bound by
  name, position or, for a command that receives pipeline input, by a parameter taking pipeline
  input). Common parameters are allowed where the cmdlet has them. Calls of the text's own functions
  must use full parameter names of their param block.
- ``property-exists-on-type``: a member read on a value whose type is inferred must exist on that type
  (or its base, or PowerShell's intrinsic members; member-access enumeration on collections). Members
  marked ``since`` exist only in PowerShell 6/7. ``.Count``/``.Length`` on a single object is reported:
  under Set-StrictMode 2.0+ Windows PowerShell 5.1 throws there.
- ``enum-guid-version-as-text``: a hashtable entry value, a ``return`` value, or a value assigned to a
  member/key, whose inferred type is an enum, a nullable enum, a Guid or a Version, must be made text
  first (``.ToString()``, ``[string]``, ``ConvertTo-EnumName``): ConvertTo-Json writes enums as numbers
  and Guids/Versions as objects. A nullable enum must go through ConvertTo-EnumName: ``.ToString()``
  throws on ``$null`` and ``[string]$null`` is ``''``.

- ``literal-path``: a cmdlet that has a ``-LiteralPath`` parameter (cmdlets.yml) is given its path through
  it, never through ``-Path``, a positional argument or the pipeline, which are wildcard patterns: a path
  from a user or from data (``[x] seed.txt``) would match other items or none.

Type inference (flow-insensitive, per function; a small fixed point over these facts)
- ``$x = <expr>`` binds $x in the enclosing function (or script); all assignments of a variable must
  agree on one type (``$null`` is ignored), else the variable is untyped. ``foreach ($x in <expr>)``
  binds the element type.
- A pipeline's type is its last command's output: a cmdlet's documented output, or by the rule in its
  ``infer`` entry (Where-Object/Select-Object/Sort-Object pass their input through, New-Object gives
  -TypeName, Get-CimInstance the CIM class of -ClassName, Get-Item/Get-ChildItem the provider's type of
  the path, which must be a literal or a variable assigned once from a literal). ``@(...)`` is an
  array of the element type.
- ``$_`` is the upstream item type inside Where-Object/ForEach-Object script blocks, and an ErrorRecord
  in ``catch``; ``-ErrorVariable name`` makes $name an array of ErrorRecords. A library function's
  untyped parameter takes the type all its call sites agree on; a typed parameter (``[string]$Name``)
  its constraint.
- Casts, string literals, ``-split``/``-join``/``-replace``, ``[Type]::Member`` of described types,
  method return types given in types.yml.
- types.yml ``declarations`` give the types inference cannot see (values kept in the libraries' own
  hashtables).

Limits (what the rules do NOT check, said so rather than passed silently)
- A value whose type is not inferred is not checked. ``property-exists-on-type`` also reports every
  variable that is assigned from a cmdlet with a known output type but whose type inference could not
  decide (for example a Get-ChildItem path it cannot resolve): add a declaration or simplify the code.
- Open types (hashtables, ordered dictionaries, Dictionary, PSCustomObject from ConvertFrom-Json): their
  members are data, any name may be a key; not checked. Request keys are library_reads' concern.
- Types not in types.yml ([System.Convert]::..., subclasses of Exception): not checked.
- Library function return values are untyped; so is anything ForEach-Object outputs.
- Dynamic invocation (``& $operations[...]``, ``& ([ScriptBlock]::Create(...))``) is not checked;
  splatting (``@params``) is reported as uncheckable.
- Flow-insensitive: a variable assigned two different types is untyped everywhere in its function.
  A variable holding one object or an array (``$x = Get-Service``) is typed as one object: ``.Count`` on
  it is reported, member reads are checked against the item type.
- Provider dynamic parameters are accepted in any set; which provider a path reaches is not checked.
- Text tree-sitter cannot parse (an ERROR node; a statement starting with ``ForEach-Object`` is one) is
  reported by ``cmdlet-exists-and-parameter-set``: no rule can check it.
- The nullable-enum ``.ToString()`` check accepts a call inside an ``if`` that tests the same expression,
  or after such an ``if`` that leaves early (return/throw/break/continue); it does not evaluate the test.
- The member lists of types.yml are partial (the members the libraries read or are likely to read): a
  real but unlisted member is reported; add it with its source.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import yaml
from hvlab import pstree
from tree_sitter import Node

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
CMDLET_RULE = "cmdlet-exists-and-parameter-set"
MEMBER_RULE = "property-exists-on-type"
ENUM_RULE = "enum-guid-version-as-text"
PATH_RULE = "literal-path"

# Outputs that name no type: "whatever came in" (Where-Object, ForEach-Object, Write-Output...).
_UNTYPED_OUTPUTS = frozenset({"system.object", "system.management.automation.psobject", "psobject", "none"})
_WHERE_FOREACH = frozenset({"where-object", "foreach-object", "where", "foreach", "?", "%"})
_TEXT_KINDS = frozenset({"enum", "nullable-enum", "guid", "version"})
_REGISTRY_PATH = re.compile(r"^(HKLM|HKCU|HKCR|HKU|HKCC):|^(Microsoft\.PowerShell\.Core\\)?Registry::", re.I)
_FILESYSTEM_PATH = re.compile(r"^([A-Za-z]:[\\/]|\\\\)")


@dataclass(frozen=True)
class Violation:
    rule: str
    line: int
    text: str
    problem: str

    def __str__(self) -> str:
        return "%d: %s: %s [%s]" % (self.line, self.text, self.problem, self.rule)


# --- data -------------------------------------------------------------------------------------------


@functools.cache
def load_cmdlets(path: str = os.path.join(DATA, "cmdlets.yml")) -> dict[str, Any]:
    with open(path, encoding="utf-8") as handle:
        return yaml.safe_load(handle)


@functools.cache
def load_types(path: str = os.path.join(DATA, "types.yml")) -> dict[str, Any]:
    with open(path, encoding="utf-8") as handle:
        return yaml.safe_load(handle)


@dataclass(frozen=True)
class Param:
    name: str
    switch: bool = False
    since: str | None = None
    pipeline: bool = False
    anywhere: bool = False  # documented in no SYNTAX block (provider dynamic parameter): any set


@dataclass(frozen=True)
class SetEntry:
    required: bool
    position: int | None


@dataclass
class Cmdlet:
    name: str
    module: str
    common: bool
    outputs: list[str]
    infer: dict[str, Any] | None
    params: dict[str, Param]  # lower-case name and every alias -> the parameter
    sets: dict[str, dict[str, SetEntry]]  # set -> lower-case parameter name -> entry


class CmdletCatalog:
    def __init__(self, data: dict[str, Any]) -> None:
        self.common: dict[str, Param] = {}
        for name, info in data["common_parameters"]["parameters"].items():
            param = Param(name, bool(info.get("switch")), _version(info.get("since")))
            for alias in [name, *info.get("aliases", [])]:
                self.common[alias.lower()] = param
        self.cmdlets = {name.lower(): self._cmdlet(name, info) for name, info in data["cmdlets"].items()}

    @staticmethod
    def _cmdlet(name: str, info: dict[str, Any]) -> Cmdlet:
        switches = {
            p.lower()
            for entries in info["parameter_sets"].values()
            for p, e in entries["parameters"].items()
            if e and e.get("switch")
        }
        params: dict[str, Param] = {}
        for pname, attrs in info["parameters"].items():
            param = Param(
                pname,
                switch=pname.lower() in switches or str(attrs.get("type", "")).endswith("SwitchParameter"),
                since=_version(attrs.get("since")),
                pipeline=bool(attrs.get("pipeline")),
                anywhere=attrs.get("in_syntax") is False,
            )
            for alias in [pname, *attrs.get("aliases", [])]:
                params[alias.lower()] = param
        sets = {
            set_name: {
                p.lower(): SetEntry(bool((e or {}).get("required")), (e or {}).get("position"))
                for p, e in entries["parameters"].items()
            }
            for set_name, entries in info["parameter_sets"].items()
        }
        return Cmdlet(
            name, info["module"], bool(info["common_parameters"]), info["outputs"], info.get("infer"), params, sets
        )

    def get(self, name: str) -> Cmdlet | None:
        return self.cmdlets.get(pstree.bare_name(name))

    def lookup(self, cmdlet: Cmdlet, token: str) -> tuple[Param | None, str | None]:
        """The parameter a -token names, or why it names none."""
        low = token.lower()
        if low in cmdlet.params:
            return cmdlet.params[low], None
        if cmdlet.common and low in self.common:
            return self.common[low], None
        names = sorted(
            {p.name for p in cmdlet.params.values()}
            | (set() if not cmdlet.common else {p.name for p in self.common.values()})
        )
        matches = [n for n in names if n.lower().startswith(low)]
        if matches:
            return None, "-%s abbreviates %s: write the full name" % (token, ", ".join("-" + m for m in matches))
        return None, "%s has no parameter -%s" % (cmdlet.name, token)


def _version(value: Any) -> str | None:
    return None if value is None else str(value)


@dataclass(frozen=True)
class TypeRef:
    """A type as inference sees it: ``item`` is what indexing gives; ``collection`` means foreach and
    member-access enumeration reach the items."""

    name: str
    kind: str = "object"
    item: TypeRef | None = None
    collection: bool = False


class _Mark:
    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


BOTTOM = _Mark("BOTTOM")  # not known yet (fixed point)
TOP = _Mark("TOP")  # not decidable: not checked
NULL = _Mark("NULL")  # the $null literal: ignored when types are joined
Value = TypeRef | _Mark


def join(a: Value, b: Value) -> Value:
    if a is BOTTOM or a is NULL:
        return b if b is not BOTTOM else a
    if b is BOTTOM or b is NULL:
        return a
    if a is TOP or b is TOP:
        return TOP
    return a if a == b else TOP


@dataclass(frozen=True)
class Lookup:
    status: str  # ok | missing | unchecked | not-method | since | strict
    value: Value
    since: str | None = None


_SCALAR_KINDS = {
    "system.string": "string",
    "system.boolean": "bool",
    "system.int32": "int",
    "system.int64": "int",
    "system.guid": "guid",
    "system.version": "version",
}
_KIND_TYPES = {
    "string": "System.String",
    "bool": "System.Boolean",
    "int": "System.Int32",
    "guid": "System.Guid",
    "version": "System.Version",
}


class TypeCatalog:
    def __init__(self, data: dict[str, Any]) -> None:
        self.types = {name.lower(): dict(info, name=name) for name, info in data["types"].items()}
        self.intrinsic = {k.lower(): v for k, v in data["intrinsic"]["members"].items()}
        self.intrinsic_static = {k.lower(): v for k, v in data["intrinsic"].get("static", {}).items()}
        self.strict_missing = {n.lower() for n in data["intrinsic"].get("strict_mode_missing", [])}
        self.accelerators = {k.lower(): v for k, v in data["accelerators"]["names"].items()}
        self.declarations = data.get("declarations", [])

    def resolve(self, raw: str) -> str:
        """A type name as PowerShell resolves it: accelerators, then 'System.' in front when unknown."""
        name = raw.strip().strip("[]").strip()
        low = name.lower()
        if low in self.accelerators:
            return self.accelerators[low]
        if low not in self.types and "system." + low in self.types:
            return self.types["system." + low]["name"]
        return self.types[low]["name"] if low in self.types else name

    def ref(self, raw: str, kind: str | None = None) -> TypeRef:
        """TypeRef for a type name: arrays, List[T], Dictionary[K,V] and enums understood."""
        name = raw.strip()
        if name.endswith("[]"):
            return TypeRef("System.Array", "object", self.ref(name[:-2]), True)
        generic = re.fullmatch(r"([\w.`]+?)(?:`\d+)?\[(.+)\]", name)
        if generic:
            base, args = generic.group(1), _split_type_args(generic.group(2))
            full = self.resolve(base)
            if full.lower() in ("system.collections.generic.list", "system.collections.generic.list`1"):
                return TypeRef("System.Collections.Generic.List`1", "object", self._item(args[0]), True)
            if full.lower() in ("system.collections.generic.dictionary", "system.collections.generic.dictionary`2"):
                return TypeRef("System.Collections.Generic.Dictionary`2", "open", self._item(args[-1]))
            return TypeRef(full)
        full = self.resolve(name)
        info = self.types.get(full.lower())
        if kind is None:
            kind = _SCALAR_KINDS.get(full.lower(), "object")
            if info is not None and info.get("kind") == "enum":
                kind = "enum"
            elif info is not None and info.get("open"):
                kind = "open"
        if full.lower() == "system.array":
            return TypeRef("System.Array", kind, None, True)
        return TypeRef(full, kind)

    def _item(self, raw: str) -> TypeRef | None:
        ref = self.ref(raw)
        return None if ref.name.lower() == "system.object" else ref

    def known(self, ref: TypeRef) -> bool:
        return ref.kind in ("enum", "nullable-enum") or ref.name.lower() in self.types

    def member_value(self, member: dict[str, Any]) -> Value:
        kind = member.get("kind", "object")
        if kind in ("enum", "nullable-enum"):
            return TypeRef(member.get("type", "System.Enum"), kind)
        if kind in _KIND_TYPES:
            return self.ref(_KIND_TYPES[kind])
        if kind == "collection":
            return TypeRef("System.Array", "object", self._item(member["of"]) if "of" in member else None, True)
        if kind == "method":
            return self.ref(member["returns"]) if "returns" in member else TOP
        return self.ref(member["type"]) if "type" in member else TOP

    def _chain(self, ref: TypeRef) -> Iterator[dict[str, Any]]:
        name = "system.enum" if ref.kind in ("enum", "nullable-enum") else ref.name.lower()
        seen = set()
        while name in self.types and name not in seen:
            seen.add(name)
            info = self.types[name]
            yield info
            name = str(info.get("base", "")).lower()

    def member(self, ref: TypeRef, name: str, method: bool) -> Lookup:
        low = name.lower()
        infos = list(self._chain(ref))
        if not infos:
            return Lookup("unchecked", TOP)
        found = next((i["members"][k] for i in infos for k in i.get("members", {}) if k.lower() == low), None)
        if found is None:
            found = self.intrinsic.get(low)
        if found is None:
            if any(i.get("open") for i in infos):
                return Lookup("unchecked", TOP)
            if ref.collection and ref.item is not None:  # member-access enumeration
                inner = self.member(ref.item, name, method)
                if inner.status != "missing" or method:
                    return inner
            if ref.collection and ref.item is None:
                return Lookup("unchecked", TOP)
            return Lookup("strict" if low in self.strict_missing else "missing", TOP)
        if method and found.get("kind") != "method":
            return Lookup("not-method", TOP)
        value = self.member_value(found) if method or found.get("kind") != "method" else TOP
        if found.get("since"):
            return Lookup("since", value, str(found["since"]))
        return Lookup("ok", value)

    def static_member(self, type_name: str, name: str, method: bool) -> Lookup:
        info = self.types.get(type_name.lower())
        if info is None:
            return Lookup("unchecked", TOP)
        low = name.lower()
        statics = {k.lower(): v for k, v in info.get("static", {}).items()}
        found = statics.get(low) or self.intrinsic_static.get(low)
        if found is None:
            return Lookup("missing", TOP)
        if method and found.get("kind") != "method":
            return Lookup("not-method", TOP)
        return Lookup("ok", self.member_value(found) if method or found.get("kind") != "method" else TOP)


def _split_type_args(text: str) -> list[str]:
    args, depth, current = [], 0, ""
    for char in text:
        if char == "," and depth == 0:
            args.append(current.strip())
            current = ""
            continue
        depth += {"[": 1, "]": -1}.get(char, 0)
        current += char
    return [*args, current.strip()]


@functools.cache
def _catalogs() -> tuple[CmdletCatalog, TypeCatalog]:
    return CmdletCatalog(load_cmdlets()), TypeCatalog(load_types())


# --- command elements -------------------------------------------------------------------------------


Element = pstree.Element


def command_elements(command: Node, is_switch: Callable[[str], bool]) -> list[Element]:
    """pstree.command_elements without the verbatim rest after ``--%`` (nothing to check there)."""
    return [
        e for e in pstree.command_elements(command, is_switch) if e.token is not None or e.node.type != "stop_parsing"
    ]


def command_name(command: Node) -> str | None:
    """The name of a command invoked by name; None for ``& <expression>``."""
    names = [c for c in command.children if c.type == "command_name"]
    return pstree.text(names[0]) if names else None


def _has_input(command: Node) -> bool:
    parent = command.parent
    if parent is None or parent.type != "pipeline_chain":
        return False
    elements = _parts(parent)
    return bool(elements) and elements[0].id != command.id


def _line_text(source_lines: list[str], line: int) -> str:
    return source_lines[line - 1].strip() if 0 < line <= len(source_lines) else ""


# --- rule a: cmdlets and parameter sets ---------------------------------------------------------------


def check_cmdlets(source: str, catalog: CmdletCatalog | None = None) -> list[Violation]:
    catalog = catalog or _catalogs()[0]
    root = pstree.parse(source)
    lines = source.splitlines()
    functions = pstree.functions(root)
    found: list[Violation] = []

    def report(node: Node, problem: str) -> None:
        line = pstree.line(node)
        found.append(Violation(CMDLET_RULE, line, _line_text(lines, line), problem))

    for node in pstree.walk(root):
        if node.type == "ERROR" or node.is_missing:
            # What tree-sitter cannot read goes unchecked by every rule (a statement that starts with
            # ForEach-Object is one: the grammar takes it for the foreach keyword).
            report(node, "tree-sitter cannot parse %r: no rule checks this part" % pstree.text(node)[:60])
            continue
        if node.type != "command":
            continue
        name = command_name(node)
        if name is None:
            continue  # & <expression>: dynamic, not checked
        bare = pstree.bare_name(name)
        if bare in functions:
            _check_function_call(node, name, functions[bare], report)
            continue
        cmdlet = catalog.get(name)
        if cmdlet is None:
            report(node, "%s is not in cmdlets.yml (an alias, a typo, or a cmdlet to add with its source)" % name)
            continue
        if "\\" in name and name.split("\\")[0].lower() != cmdlet.module.lower():
            report(node, "%s: %s is in module %s" % (name, cmdlet.name, cmdlet.module))
        _check_cmdlet_call(node, cmdlet, catalog, report)
    return found


def _check_cmdlet_call(node: Node, cmdlet: Cmdlet, catalog: CmdletCatalog, report: Callable[[Node, str], None]) -> None:
    def is_switch(token: str) -> bool:
        param, _why = catalog.lookup(cmdlet, token)
        return param is not None and param.switch

    elements = command_elements(node, is_switch)
    named: dict[str, Param] = {}
    positional = 0
    usable = True
    for element in elements:
        if element.token is None:
            if pstree.text(element.node).startswith("@"):
                report(element.node, "splatted parameters cannot be checked statically: name them")
                usable = False
            positional += 1
            continue
        param, why = catalog.lookup(cmdlet, element.token)
        if param is None:
            report(element.node, why or "")
            usable = False
        elif param.since:
            report(
                element.node,
                "-%s of %s exists only in PowerShell %s+, not in Windows PowerShell 5.1"
                % (param.name, cmdlet.name, param.since),
            )
            usable = False
        else:
            named[param.name.lower()] = param
    if usable and not any(
        _fits(cmdlet, entries, named, positional, _has_input(node)) for entries in cmdlet.sets.values()
    ):
        used = " ".join("-" + p.name for p in named.values()) or "(no named parameters)"
        report(
            node,
            "no parameter set of %s takes %s%s"
            % (cmdlet.name, used, " with %d positional argument(s)" % positional if positional else ""),
        )


def _fits(
    cmdlet: Cmdlet, entries: dict[str, SetEntry], named: dict[str, Param], positional: int, has_input: bool
) -> bool:
    own = {low: p for low, p in named.items() if low in {q.name.lower() for q in cmdlet.params.values()}}
    for low, param in own.items():
        if low not in entries and not param.anywhere:
            return False
    free = sorted((e.position, low) for low, e in entries.items() if e.position is not None and low not in own)
    if positional > len(free):
        return False
    bound = set(own) | {low for _pos, low in free[:positional]}
    for low, entry in entries.items():
        if entry.required and low not in bound:
            by_pipeline = cmdlet.params.get(low)
            if not (has_input and by_pipeline is not None and by_pipeline.pipeline):
                return False
    return True


def _check_function_call(node: Node, name: str, function: Node, report: Callable[[Node, str], None]) -> None:
    params = pstree.function_parameters(function)
    advanced = _is_advanced(function)
    switches = {p for p, constraint in _parameter_constraints(function).items() if constraint == "switch"}
    elements = command_elements(node, lambda token: token.lower() in switches)
    positional = 0
    for element in elements:
        if element.token is None:
            positional += 1
            continue
        low = element.token.lower()
        if low in params or (advanced and low in _catalogs()[0].common):
            continue
        matches = [p for p in params if p.startswith(low)]
        if matches:
            written = _parameter_spelling(function).get(matches[0], matches[0])
            report(element.node, "-%s abbreviates -%s of %s: write the full name" % (element.token, written, name))
        else:
            report(element.node, "%s (defined here) has no parameter -%s" % (name, element.token))
    if positional > len(params) and not advanced:
        report(
            node,
            "%s takes %d parameter(s); %d positional argument(s) would go to $args" % (name, len(params), positional),
        )


def _parameter_spelling(function: Node) -> dict[str, str]:
    """Lower-case parameter name -> as written in the param block."""
    found = {}
    for node in pstree.walk(function):
        if node.type == "script_parameter" and pstree.enclosing_function(node) == function:
            for child in node.named_children:
                if child.type == "variable":
                    found[pstree.variable_name(child) or ""] = pstree.text(child).lstrip("$")
    return found


def _is_advanced(function: Node) -> bool:
    for node in pstree.walk(function):
        if node.type == "attribute" and pstree.enclosing_function(node) is not None:
            name = pstree.text(node).strip("[]").split("(")[0].strip().lower()
            owner = pstree.enclosing_function(node)
            if name in ("cmdletbinding", "parameter") and owner is not None and owner.id == function.id:
                return True
    return False


def _parameter_constraints(function: Node) -> dict[str, str]:
    """Parameter name -> its type constraint as written ('string', 'object[]'), for typed parameters."""
    found = {}
    for node in pstree.walk(function):
        if node.type != "script_parameter":
            continue
        owner = pstree.enclosing_function(node)
        if owner is None or owner.id != function.id:
            continue
        variables = [c for c in node.named_children if c.type == "variable"]
        types = [
            c
            for c in pstree.walk(node)
            if c.type == "type_literal" and c.parent is not None and c.parent.type == "attribute"
        ]
        if variables and types:
            found[pstree.variable_name(variables[0]) or ""] = pstree.text(types[-1]).strip("[]").strip().lower()
    return found


# --- type inference ---------------------------------------------------------------------------------


@dataclass
class _Site:
    """One place that gives a variable a type: an assignment, a foreach, a typed parameter or a call."""

    kind: str  # assign | other (+= ...) | foreach | constraint (typed) | fixed (-ErrorVariable) | call
    node: Node | None
    ref: TypeRef | None = None


class Typer:
    """Infers the types of variables and expressions of one PowerShell text (see the module docstring)."""

    def __init__(self, source: str, cmdlets: CmdletCatalog, types: TypeCatalog) -> None:
        self.source = source
        self.root = pstree.parse(source)
        self.cmdlets = cmdlets
        self.types = types
        self.functions = pstree.functions(self.root)
        self.sites: dict[tuple[int, str], list[_Site]] = {}
        self.bindings: dict[tuple[int, str], Value] = {}
        self.used_declarations: set[int] = set()
        self._scope_cache: dict[int, int] = {}
        self._memo: dict[int, Value] = {}
        self._declarations = {
            (str(d["function"]).lower(), _normalize(str(d["expression"]))): (index, d)
            for index, d in enumerate(types.declarations)
        }
        self._collect()
        self._solve()

    # scopes
    def scope_of(self, node: Node) -> int:
        if node.id not in self._scope_cache:
            function = pstree.enclosing_function(node)
            self._scope_cache[node.id] = function.id if function is not None else self.root.id
        return self._scope_cache[node.id]

    def _add(self, scope: int, name: str, site: _Site) -> None:
        self.sites.setdefault((scope, name), []).append(site)

    def _collect(self) -> None:
        for node in pstree.walk(self.root):
            if node.type == "assignment_expression":
                self._collect_assignment(node)
            elif node.type == "foreach_statement":
                variables = [c for c in node.named_children if c.type == "variable"]
                pipelines = [c for c in node.named_children if c.type == "pipeline"]
                if variables and pipelines:
                    self._add(
                        self.scope_of(node), pstree.variable_name(variables[0]) or "", _Site("foreach", pipelines[0])
                    )
            elif node.type == "command":
                self._collect_call(node)
                self._collect_error_variable(node)
        for function in self.functions.values():
            constraints = _parameter_constraints(function)
            for param in pstree.function_parameters(function):
                if param in constraints:
                    self._add(function.id, param, _Site("constraint", None, self._constraint_ref(constraints[param])))
                else:
                    self.sites.setdefault((function.id, param), [])

    def _constraint_ref(self, constraint: str) -> TypeRef:
        if constraint in ("switch", "bool"):
            return self.types.ref("System.Boolean")
        return self.types.ref(constraint)

    def _collect_assignment(self, node: Node) -> None:
        left, right = _parts(node)[0], _parts(node)[-1]
        operator = [c for c in node.children if c.type == "assignement_operator"]
        target = pstree.strip(left.named_children[0]) if left.named_children else left
        constraint = None
        if target.type in ("expression_with_unary_operator", "cast_expression"):
            casts = [n for n in pstree.walk(target) if n.type == "cast_expression"]
            literal = [c for c in casts[0].named_children if c.type == "type_literal"] if casts else []
            constraint = pstree.text(literal[0]).strip("[]").strip().lower() if literal else None
            target = pstree.unwrap_array(target)  # [int]$x = ... binds $x to [int]
        if target.type != "variable":
            return
        name = pstree.variable_name(target) or ""
        if name in ("null", "_") or ":" in name:
            return
        if constraint:
            self._add(self.scope_of(node), name, _Site("constraint", None, self._constraint_ref(constraint)))
            return
        kind = "assign" if operator and pstree.text(operator[0]) == "=" else "other"
        self._add(self.scope_of(node), name, _Site(kind, right))

    def _collect_call(self, node: Node) -> None:
        name = command_name(node)
        if name is None or pstree.bare_name(name) not in self.functions:
            return
        function = self.functions[pstree.bare_name(name)]
        params = pstree.function_parameters(function)
        switches = {p for p, c in _parameter_constraints(function).items() if c == "switch"}
        unbound = list(params)
        for element in command_elements(node, lambda token: token.lower() in switches):
            if element.token is None:
                if unbound:
                    self._add(function.id, unbound.pop(0), _Site("call", element.arg))
                continue
            low = element.token.lower()
            matches = [p for p in params if p == low] or [p for p in params if p.startswith(low)]
            if len(matches) == 1 and element.arg is not None:
                self._add(function.id, matches[0], _Site("call", element.arg))
                if matches[0] in unbound:
                    unbound.remove(matches[0])

    def _collect_error_variable(self, node: Node) -> None:
        """-ErrorVariable name (a common parameter) fills $name with the command's ErrorRecords."""
        name = command_name(node)
        cmdlet = self.cmdlets.get(name) if name is not None else None
        if cmdlet is None or not cmdlet.common or pstree.bare_name(name or "") in self.functions:
            return
        variable = self._literal(
            self._named(command_elements(node, lambda t: self._is_switch(cmdlet, t)), cmdlet, "ErrorVariable")
        )
        if variable:
            records = TypeRef(
                "System.Array", "object", self.types.ref("System.Management.Automation.ErrorRecord"), True
            )
            self._add(self.scope_of(node), variable.lstrip("+").lower(), _Site("fixed", None, records))

    def _solve(self) -> None:
        for _round in range(40):
            self._memo = {}
            fresh = {key: self._site_values(sites) for key, sites in self.sites.items()}
            if fresh == self.bindings:
                break
            self.bindings = fresh
        self._memo = {}
        self.bindings = {key: (TOP if value is BOTTOM else value) for key, value in self.bindings.items()}

    def _site_values(self, sites: list[_Site]) -> Value:
        if not sites:
            return TOP
        value: Value = BOTTOM
        for site in sites:
            if site.kind == "constraint":
                return site.ref or TOP
            if site.kind == "fixed":
                value = join(value, site.ref or TOP)
            elif site.kind == "other" or site.node is None:
                value = join(value, TOP)
            elif site.kind == "foreach":
                value = join(value, self.enumerate(self.value(site.node)))
            else:
                value = join(value, self.value(site.node))
        return value

    # expressions
    def value(self, node: Node) -> Value:
        node = pstree.strip(node)
        if node.id not in self._memo:
            self._memo[node.id] = BOTTOM  # cycles (x = x.y) resolve through the fixed point
            self._memo[node.id] = self._value(node)
        return self._memo[node.id]

    def _value(self, node: Node) -> Value:
        declared = self._declared(node)
        if declared is not None:
            return declared
        kind = node.type
        if kind == "variable":
            return self._variable(node)
        if kind in ("member_access", "invokation_expression"):
            return self._member(node)
        if kind == "element_access":
            target = self.value(node.named_children[0])
            if isinstance(target, TypeRef):
                return target.item if target.item is not None else TOP
            return target if target is BOTTOM else TOP
        if kind == "array_expression":
            items = self._statements_items(node)
            if items is BOTTOM:  # stay BOTTOM until known: a TOP here would stick (monotone fixed point)
                return BOTTOM
            return TypeRef("System.Array", "object", self._as_item(items), True)
        if kind == "sub_expression":
            return self._statements_items(node)
        if kind == "expression_with_unary_operator":
            casts = [c for c in node.named_children if c.type == "cast_expression"]
            return self._cast(casts[0]) if casts else TOP
        if kind == "cast_expression":
            return self._cast(node)
        if kind in ("string_literal", "expandable_string_literal"):
            return self.types.ref("System.String")
        if kind == "integer_literal":
            return self.types.ref("System.Int32")
        if kind == "hash_literal_expression":
            return self.types.ref("System.Collections.Hashtable")
        if kind == "comparison_expression":
            return self._operator(node)
        if kind in ("pipeline", "pipeline_chain"):
            return self.pipeline_items(_parts(node))
        if kind == "command":
            return self.command_output(node, None)
        return TOP

    def _declared(self, node: Node) -> Value | None:
        if node.type not in ("variable", "member_access", "element_access"):
            return None
        function = pstree.enclosing_function(node)
        if function is None:
            return None
        hit = self._declarations.get((pstree.function_name(function), _normalize(pstree.text(node))))
        if hit is None:
            return None
        index, declaration = hit
        self.used_declarations.add(index)
        ref = self.types.ref(declaration["type"])
        return TypeRef("System.Array", "object", ref, True) if declaration.get("collection") else ref

    def _variable(self, node: Node) -> Value:
        name = pstree.variable_name(node) or ""
        if name in ("_", "psitem"):
            return self._dollar_under(node)
        if name in ("true", "false"):
            return self.types.ref("System.Boolean")
        if name == "null":
            return NULL
        if name.startswith("script:"):
            name = name.split(":", 1)[1]
            return self._lookup(self.root.id, name)
        if ":" in name:
            return TOP
        scope = self.scope_of(node)
        if (scope, name) in self.sites:
            return self._lookup(scope, name)
        return self._lookup(self.root.id, name)

    def _lookup(self, scope: int, name: str) -> Value:
        if (scope, name) not in self.sites:
            return TOP
        return self.bindings.get((scope, name), BOTTOM)

    def _dollar_under(self, node: Node) -> Value:
        for parent in pstree.ancestors(node):
            if parent.type == "catch_clause":
                return self.types.ref("System.Management.Automation.ErrorRecord")
            if parent.type == "function_statement":
                return TOP
            if parent.type == "script_block_expression":
                command = next((a for a in pstree.ancestors(parent) if a.type == "command"), None)
                name = command_name(command) if command is not None else None
                if name is None or pstree.bare_name(name) not in _WHERE_FOREACH or command is None:
                    return TOP
                chain = command.parent
                if chain is None or chain.type != "pipeline_chain":
                    return TOP
                elements = _parts(chain)
                index = next(i for i, e in enumerate(elements) if e.id == command.id)
                return self.pipeline_items(elements[:index]) if index else TOP
        return TOP

    def _member(self, node: Node) -> Value:
        target = node.named_children[0]
        name = pstree.member_name(node)
        method = node.type == "invokation_expression"
        if name is None or not _plain_member(node):
            return TOP
        if target.type == "type_literal":
            return self.types.static_member(self.types.resolve(pstree.text(target)), name, method).value
        owner = self.value(target)
        if owner is BOTTOM:
            return BOTTOM
        if not isinstance(owner, TypeRef):
            return TOP
        return self.types.member(owner, name, method).value

    def _cast(self, node: Node) -> Value:
        literal = [c for c in node.named_children if c.type == "type_literal"]
        name = pstree.text(literal[0]).strip("[]").strip().lower() if literal else ""
        if name == "ordered":
            return self.types.ref("System.Collections.Specialized.OrderedDictionary")
        if name in ("pscustomobject", "psobject", "ref"):
            return self.types.ref("System.Management.Automation.PSCustomObject") if name != "ref" else TOP
        return self.types.ref(name) if name else TOP

    def _operator(self, node: Node) -> Value:
        operators = [pstree.text(c).lower() for c in node.children if c.type == "comparison_operator"]
        if operators and operators[-1] in ("-split", "-csplit", "-isplit"):
            return self.types.ref("System.String[]")
        if operators and operators[-1] in ("-join", "-replace", "-creplace", "-ireplace"):
            return self.types.ref("System.String")
        return TOP

    def _statements_items(self, node: Node) -> Value:
        lists = [c for c in node.named_children if c.type == "statement_list"]
        statements = _parts(lists[0]) if lists else []
        if len(statements) != 1:
            return TOP
        statement = pstree.strip(statements[0])
        if statement.type in ("pipeline", "pipeline_chain", "command"):
            return self.value(statement)
        return self.enumerate(self.value(statement))

    @staticmethod
    def _as_item(value: Value) -> TypeRef | None:
        return value if isinstance(value, TypeRef) else None

    @staticmethod
    def enumerate(value: Value) -> Value:
        """What foreach (or a pipeline) sees of a value: the items of a collection, a scalar itself."""
        if isinstance(value, TypeRef) and value.collection:
            return value.item if value.item is not None else TOP
        return value

    # pipelines and commands
    def pipeline_items(self, elements: list[Node]) -> Value:
        value: Value = NULL
        for index, element in enumerate(elements):
            if element.type == "command":
                value = self.command_output(element, value if index else None)
            else:
                value = self.enumerate(self.value(element))
        return value

    def command_output(self, command: Node, upstream: Value | None) -> Value:
        name = command_name(command)
        cmdlet = self.cmdlets.get(name) if name is not None else None
        if cmdlet is None or (name is not None and pstree.bare_name(name) in self.functions):
            return TOP
        elements = command_elements(command, lambda token: self._is_switch(cmdlet, token))
        infer = cmdlet.infer or {}
        source = infer.get("from")
        if source == "pipeline":
            if any(self._named(elements, cmdlet, p) is not None for p in infer.get("unless", [])):
                return TOP
            given = self._named(elements, cmdlet, "InputObject")
            if given is not None:
                return self.enumerate(self.value(given))
            return upstream if upstream is not None else TOP
        if source == "parameter":
            given = self._named(elements, cmdlet, infer["parameter"])
            return self.enumerate(self.value(given)) if given is not None else (upstream or TOP)
        if source == "type-name":
            text = self._literal(self._named_or_first(elements, cmdlet, infer["parameter"]))
            return self.types.ref(text) if text else TOP
        if source == "cim-class":
            text = self._literal(self._named_or_first(elements, cmdlet, infer["parameter"]))
            namespace = (
                self._literal(self._named(elements, cmdlet, infer.get("namespace", "Namespace"))) or "root/cimv2"
            )
            if not text:
                return TOP
            return self.types.ref(
                "Microsoft.Management.Infrastructure.CimInstance#%s/%s" % (namespace.replace("\\", "/").lower(), text)
            )
        if source == "provider":
            paths = [self._named(elements, cmdlet, p) for p in infer.get("parameters", [])]
            path = next((p for p in paths if p is not None), None) or self._named_or_first(elements, cmdlet, "Path")
            provider = self._provider(path)
            output = infer.get("outputs", {}).get(provider) if provider else None
            return self.types.ref(output) if output else TOP
        if source == "type":
            return self.types.ref(infer["type"])
        return self._documented_output(cmdlet, elements)

    def _documented_output(self, cmdlet: Cmdlet, elements: list[Element]) -> Value:
        outputs = [o for o in cmdlet.outputs if o.lower() != "none"]
        if len(outputs) != len(cmdlet.outputs):  # "None" unless -PassThru
            passthru = any(e.token and e.token.lower() == "passthru" for e in elements)
            if not passthru:
                return NULL
        if len(outputs) != 1 or outputs[0].lower() in _UNTYPED_OUTPUTS:
            return TOP
        name = outputs[0]
        if name.lower() == "pscustomobject":
            name = "System.Management.Automation.PSCustomObject"
        return self.types.ref(name)

    def claims_type(self, command: Node) -> str | None:
        """The cmdlet's name when its output has a type inference should find (for the gap report)."""
        name = command_name(command)
        cmdlet = self.cmdlets.get(name) if name is not None else None
        if cmdlet is None or pstree.bare_name(name or "") in self.functions:
            return None
        source = (cmdlet.infer or {}).get("from")
        if source in ("type-name", "cim-class", "provider", "type"):
            return cmdlet.name
        if source is None:
            outputs = [o for o in cmdlet.outputs if o.lower() != "none"]
            if len(outputs) == 1 and outputs[0].lower() not in _UNTYPED_OUTPUTS:
                return cmdlet.name
        return None

    def _is_switch(self, cmdlet: Cmdlet, token: str) -> bool:
        param, _why = self.cmdlets.lookup(cmdlet, token)
        return param is not None and param.switch

    def _named(self, elements: list[Element], cmdlet: Cmdlet, parameter: str) -> Node | None:
        for element in elements:
            if element.token is None:
                continue
            param, _why = self.cmdlets.lookup(cmdlet, element.token)
            if param is not None and param.name.lower() == parameter.lower():
                return element.arg
        return None

    def _named_or_first(self, elements: list[Element], cmdlet: Cmdlet, parameter: str) -> Node | None:
        named = self._named(elements, cmdlet, parameter)
        if named is not None:
            return named
        return next((e.arg for e in elements if e.token is None), None)

    def _literal(self, node: Node | None, depth: int = 0) -> str | None:
        """The text of a literal argument: 'x', "x" (no $), a bare word, or a variable assigned once from one."""
        if node is None or depth > 4:
            return None
        node = pstree.strip(node)
        raw = pstree.text(node)
        if node.type == "generic_token" or (node.type == "string_literal" and "$" not in raw):
            return raw.strip("'\"")
        if node.type == "variable":
            name = pstree.variable_name(node) or ""
            for scope in (self.scope_of(node), self.root.id):
                sites = self.sites.get((scope, name))
                if sites:
                    if len(sites) == 1 and sites[0].kind == "assign" and sites[0].node is not None:
                        return self._literal(sites[0].node, depth + 1)
                    return None
        if node.type == "command" and command_name(node) and pstree.bare_name(command_name(node) or "") == "join-path":
            cmdlet = self.cmdlets.get("Join-Path")
            if cmdlet is not None:
                elements = command_elements(node, lambda token: self._is_switch(cmdlet, token))
                return self._literal(self._named_or_first(elements, cmdlet, "Path"), depth + 1)
        return None

    def _provider(self, node: Node | None) -> str | None:
        text = self._literal(node)
        if text is None:
            return None
        if _REGISTRY_PATH.match(text):
            return "Registry"
        if _FILESYSTEM_PATH.match(text):
            return "FileSystem"
        return None

    # results
    def final(self, key: tuple[int, str]) -> Value:
        return self.bindings.get(key, TOP)

    def gaps(self) -> list[tuple[int, str, str]]:
        """Variables assigned from a typed cmdlet whose type inference did not decide."""
        found = []
        for (scope, name), sites in self.sites.items():
            value = self.final((scope, name))
            if isinstance(value, TypeRef) and self.types.known(value):
                continue
            for site in sites:
                if site.kind not in ("assign", "foreach") or site.node is None:
                    continue
                for command in _top_commands(site.node):
                    claimed = self.claims_type(command)
                    if claimed:
                        found.append((pstree.line(site.node), name, claimed))
        return sorted(set(found))


def _top_commands(node: Node) -> Iterator[Node]:
    """Commands whose output is the value of ``node`` (through @(), $(), parentheses), not nested ones."""
    node = pstree.strip(node)
    if node.type == "command":
        yield node
    elif node.type in ("pipeline", "pipeline_chain"):
        for child in _parts(node):
            yield from _top_commands(child)
    elif node.type in ("array_expression", "sub_expression"):
        lists = [c for c in node.named_children if c.type == "statement_list"]
        for statement in _parts(lists[0]) if lists else []:
            yield from _top_commands(statement)


def _plain_member(node: Node) -> bool:
    """A member named by a plain name ($x.Name), not computed ($x.$name, $x.('a'))."""
    names = [c for c in node.children if c.type == "member_name"]
    return bool(names) and all(c.type == "simple_name" for c in names[0].named_children)


def _parts(node: Node) -> list[Node]:
    """Named children without comments (a trailing comment is a named child of a hash entry)."""
    return [c for c in node.named_children if c.type != "comment"]


def _member_text(node: Node) -> str:
    """The member name as written (pstree.member_name folds case)."""
    names = [c for c in node.children if c.type == "member_name"]
    return pstree.text(names[0]) if names else ""


def _normalize(expression: str) -> str:
    return re.sub(r"\s+", "", expression).lower()


@functools.lru_cache(maxsize=16)
def infer(source: str) -> Typer:
    cmdlets, types = _catalogs()
    return Typer(source, cmdlets, types)


def typed_variables(source: str) -> dict[str, str]:
    """'function:variable' -> inferred type name, for every variable inference typed (a debugging view)."""
    typer = infer(source)
    names = {function.id: name for name, function in typer.functions.items()}
    found = {}
    for (scope, name), value in typer.bindings.items():
        if isinstance(value, TypeRef) and typer.types.known(value):
            shown = value.name if value.item is None else "%s of %s" % (value.name, value.item.name)
            found["%s:%s" % (names.get(scope, "<script>"), name)] = shown
    return found


def inference_gaps(source: str) -> list[tuple[int, str, str]]:
    return infer(source).gaps()


def unused_declarations(sources: list[str]) -> list[dict[str, Any]]:
    """types.yml declarations that no expression of these texts matched (stale entries)."""
    used: set[int] = set()
    for source in sources:
        used |= infer(source).used_declarations
    return [d for index, d in enumerate(_catalogs()[1].declarations) if index not in used]


# --- rule b: members exist on their types -----------------------------------------------------------


def check_members(source: str) -> list[Violation]:
    typer = infer(source)
    lines = source.splitlines()
    found: list[Violation] = []
    for node in pstree.walk(typer.root):
        if node.type not in ("member_access", "invokation_expression") or not _plain_member(node):
            continue
        name = _member_text(node)
        method = node.type == "invokation_expression"
        target = node.named_children[0]
        if target.type == "type_literal":
            type_name = typer.types.resolve(pstree.text(target))
            lookup = typer.types.static_member(type_name, name, method)
            owner = "[%s]" % type_name
        else:
            value = typer.value(target)
            if not isinstance(value, TypeRef):
                continue
            lookup = typer.types.member(value, name, method)
            owner = _describe(value)
        problem = _member_problem(lookup, owner, name, method)
        if problem:
            line = pstree.line(node)
            found.append(Violation(MEMBER_RULE, line, _line_text(lines, line), problem))
    for line, variable, cmdlet in typer.gaps():
        found.append(
            Violation(
                MEMBER_RULE,
                line,
                _line_text(lines, line),
                "cannot infer the type of $%s (from %s): its members go unchecked; simplify the "
                "assignment or add a declaration to types.yml" % (variable, cmdlet),
            )
        )
    return found


def _member_problem(lookup: Lookup, owner: str, name: str, method: bool) -> str | None:
    shown = name + ("()" if method else "")
    if lookup.status == "missing":
        return "%s has no member %s" % (owner, shown)
    if lookup.status == "not-method":
        return "%s.%s is not a method" % (owner, name)
    if lookup.status == "since":
        return "%s.%s exists only in PowerShell %s+, not in Windows PowerShell 5.1" % (owner, name, lookup.since)
    if lookup.status == "strict":
        return (
            "%s may be a single object: .%s throws under Set-StrictMode in Windows PowerShell 5.1; "
            "wrap it in @()" % (owner, name)
        )
    return None


def _describe(ref: TypeRef) -> str:
    if ref.collection and ref.item is not None:
        return "%s of %s" % (ref.name, ref.item.name)
    return ref.name


# --- rule c: enums, Guids and Versions become text before they reach an answer ------------------------


def check_enum_text(source: str) -> list[Violation]:
    typer = infer(source)
    lines = source.splitlines()
    found: list[Violation] = []

    def report(node: Node, problem: str) -> None:
        line = pstree.line(node)
        found.append(Violation(ENUM_RULE, line, _line_text(lines, line), problem))

    for expression, where in _answer_values(typer.root):
        _check_answer_value(typer, expression, where, report)
    for node in pstree.walk(typer.root):  # .ToString() on a nullable enum throws when it is $null
        if node.type == "invokation_expression" and (pstree.member_name(node) or "") == "tostring":
            target = node.named_children[0]
            value = typer.value(target)
            if isinstance(value, TypeRef) and value.kind == "nullable-enum" and not _null_guarded(node, target):
                report(
                    node,
                    "%s is a nullable enum: .ToString() throws when it is $null (e.g. Heartbeat of a "
                    "VM that is Off); use ConvertTo-EnumName" % pstree.text(target),
                )
    return found


def _null_guarded(node: Node, target: Node) -> bool:
    """An ``if`` of the same function tests ``target`` and either holds ``node`` or leaves early
    (return/throw/continue/break) before it: the usual ``if ($null -eq $x) { return $null }`` guard."""
    wanted = _normalize(pstree.text(target))
    scope = pstree.enclosing_function(node)
    top = scope
    if top is None:
        top = node
        while top.parent is not None:
            top = top.parent
    for statement in pstree.walk(top):
        if statement.type != "if_statement" or pstree.enclosing_function(statement) != scope:
            continue
        conditions = [c for c in statement.named_children if c.type == "pipeline"]
        if not conditions or wanted not in _normalize(pstree.text(conditions[0])):
            continue
        if statement.start_byte <= node.start_byte < statement.end_byte:
            return True
        leaves = any(n.type == "flow_control_statement" for n in pstree.walk(statement))
        if leaves and statement.end_byte <= node.start_byte:
            return True
    return False


def _answer_values(root: Node) -> Iterator[tuple[Node, str]]:
    """Expressions whose value lands in an answer: hashtable entry values (both if/else branches), return
    values, values assigned to a member or key."""
    for node in pstree.walk(root):
        if node.type == "hash_entry":
            yield from _branches(_parts(node)[-1], "hashtable entry")
        elif (
            node.type == "flow_control_statement"
            and node.children
            and pstree.text(node.children[0]).lower() == "return"
        ):
            for child in node.named_children:
                yield from _branches(child, "return value")
        elif node.type == "assignment_expression":
            left = _parts(node)[0]
            target = pstree.strip(left.named_children[0]) if left.named_children else left
            if target.type in ("member_access", "element_access"):
                yield from _branches(_parts(node)[-1], "value assigned to %s" % pstree.text(target))


def _branches(node: Node, where: str) -> Iterator[tuple[Node, str]]:
    node = pstree.strip(node)
    if node.type == "if_statement":
        for block in pstree.walk(node):
            owner = next((a for a in pstree.ancestors(block) if a.type == "if_statement"), None)
            if block.type == "statement_block" and owner is not None and owner.id == node.id:
                lists = [c for c in block.named_children if c.type == "statement_list"]
                for statement in _parts(lists[0]) if lists else []:
                    yield from _branches(statement, where)
        return
    if node.type == "array_expression":  # @(x): x itself, when it is one statement
        lists = [c for c in node.named_children if c.type == "statement_list"]
        if lists and len(_parts(lists[0])) == 1:
            yield from _branches(_parts(lists[0])[0], where)
            return
    if node.type == "expression_with_unary_operator":
        casts = [c for c in node.named_children if c.type == "cast_expression"]
        if casts:
            node = casts[0]
    yield node, where


def _check_answer_value(typer: Typer, node: Node, where: str, report: Callable[[Node, str], None]) -> None:
    if node.type == "cast_expression":
        operands = [c for c in _parts(node) if c.type != "type_literal"]
        literal = [c for c in node.named_children if c.type == "type_literal"]
        if literal and operands and pstree.text(literal[0]).strip("[]").strip().lower() == "string":
            inner = typer.value(operands[-1])
            if isinstance(inner, TypeRef) and inner.kind == "nullable-enum":
                report(
                    node, "%s: [string] of a nullable enum gives '' for $null, not null; use ConvertTo-EnumName" % where
                )
        return
    value = typer.value(node)
    if isinstance(value, TypeRef) and value.kind in _TEXT_KINDS:
        fix = "ConvertTo-EnumName" if value.kind == "nullable-enum" else ".ToString(), [string] or ConvertTo-EnumName"
        report(
            node,
            "%s %s is a raw %s (%s): ConvertTo-Json writes enums as numbers and Guids/Versions as "
            "objects; use %s" % (where, pstree.text(node), value.kind, value.name, fix),
        )


# --- all rules --------------------------------------------------------------------------------------


def check_literal_paths(source: str, catalog: CmdletCatalog | None = None) -> list[Violation]:
    """A cmdlet that has -LiteralPath gets its path that way. -Path, a path given by position (which binds
    -Path) and a path piped in (by value to -Path) are wildcard patterns: a file named ``[x] seed.txt``
    would match nothing, or other files, and Remove-Item would remove what matched (PowerShell-Docs
    about_Wildcards; the -Path and -LiteralPath entries of the 5.1 Test-Path, Get-Item, Remove-Item ...
    pages: "Wildcard characters are permitted" / "used exactly as it's typed")."""
    catalog = catalog or _catalogs()[0]
    root = pstree.parse(source)
    lines = source.splitlines()
    functions = pstree.functions(root)
    found: list[Violation] = []
    for node in pstree.walk(root):
        if node.type != "command":
            continue
        name = command_name(node)
        if name is None or pstree.bare_name(name) in functions:
            continue
        cmdlet = catalog.get(name)
        if cmdlet is None or "literalpath" not in cmdlet.params:
            continue

        def is_switch(token: str, cmdlet: Cmdlet = cmdlet) -> bool:
            param, _why = catalog.lookup(cmdlet, token)
            return param is not None and param.switch

        elements = command_elements(node, is_switch)
        named = {
            param.name.lower()
            for element in elements
            if element.token is not None and (param := catalog.lookup(cmdlet, element.token)[0]) is not None
        }
        if "literalpath" in named:
            continue
        how = (
            "-Path"
            if "path" in named
            else "a positional argument (-Path)"
            if any(element.token is None for element in elements)
            else "the pipeline (-Path)"
            if _has_input(node)
            else None
        )
        if how is None:
            continue
        line = pstree.line(node)
        found.append(
            Violation(
                PATH_RULE,
                line,
                _line_text(lines, line),
                "%s gets its path through %s, a wildcard pattern: give it -LiteralPath" % (cmdlet.name, how),
            )
        )
    return found


def check_all(source: str) -> list[Violation]:
    return sorted(
        check_cmdlets(source) + check_members(source) + check_enum_text(source) + check_literal_paths(source),
        key=lambda v: (v.line, v.rule, v.problem),
    )
