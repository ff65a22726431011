"""Which request keys a library reads, derived from the library text itself, and the strict-mode
check a real host applies to them.

The shipped library sets ``Set-StrictMode -Version 3.0``; the request is the PSCustomObject that
``ConvertFrom-Json`` makes in Windows PowerShell 5.1. Reading a property that object does not have
then throws PropertyNotFoundException ("The property 'vm' cannot be found on this object. Verify
that the property exists.", error id PropertyNotFoundStrict; PowerShell-Docs Set-StrictMode,
PowerShell/PowerShell#16829; docs/dev/powershell-facts.md). A key read through the library's one
optional-key helper (``Get-RequestValue -Object X -Name 'key'``) or through
``X.PSObject.Properties['key']`` is guarded and may be absent.

How a read is found: the request object is the ``$Request`` parameter of every operation function
(and the script's ``$request`` in the dispatch). A variable bound from a request path carries that
path: ``foreach ($change in @($Request.params.changes))`` makes ``$change`` = params.changes[];
``$wishes = @($Request.params.services)`` makes ``$wishes`` = params.services; an argument
``-Wish $wish`` to a library function binds that function's ``$Wish``. Every member chain rooted at
such a variable is a read of the path it spells, up to the first method call.

It fails closed: a request value used in a form this derivation does not follow (piped into a
command, whose ``$_`` it cannot see; splatted; passed to a library function positionally or by a name
that is not the parameter's; indexed with a string; ``.ForEach()``/``.Where()``; a ``switch`` over it;
a variable bound to two request paths) is an ``untracked_use``. The lab refuses a library with any,
rather than accept requests a real host would refuse, and tests/unit checks the shipped library has
none.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from . import pstree

HELPER = "get-requestvalue"
ELEMENT = "[]"
# Members every .NET array has, so reading them never throws (PowerShell's intrinsic Count/Length).
ARRAY_MEMBERS = ("count", "length")
STRICT_MESSAGE = "The property '%s' cannot be found on this object. Verify that the property exists."
STRICT_TYPE = "System.Management.Automation.PropertyNotFoundException"
# PropertyNotFoundException sets no category of its own: RuntimeException's default, NotSpecified.
STRICT_CATEGORY = "NotSpecified"


@dataclass(frozen=True)
class Read:
    path: tuple[str, ...]  # from the request root: ('params', 'changes', '[]', 'vm')
    guarded: bool
    line: int
    function: str  # lower case; '' for the script level

    def dotted(self) -> str:
        return ".".join(self.path).replace(".[]", "[]")


class _Walker:
    def __init__(self, root: Any) -> None:
        self.root = root
        self.functions = pstree.functions(root)
        self.reads: list[Read] = []
        self.untracked: list[tuple[int, str]] = []
        self._seen: set[tuple[str, tuple[tuple[str, tuple[str, ...]], ...]]] = set()
        self._visiting: list[str] = []  # the functions being visited, outermost first
        self._recursive: set[str] = set()
        self._own: dict[tuple[int, bool], tuple[list[Any], set[int]]] = {}

    def run(self, operation: str | None) -> list[Read]:
        """The reads of one operation (its function and what it calls) and of the script level; of
        every operation when ``operation`` is None."""
        operations = pstree.operation_table(self.root)
        chosen = operations.values() if operation is None else [operations.get(operation, "")]
        for name in sorted(set(chosen)):
            if name in self.functions:
                self.visit_function(name, {"request": ()})
        self.visit_scope(self.root, {}, "", top_level=True)
        self.check_recursion()
        return self.reads

    def visit_function(self, name: str, bindings: dict[str, tuple[str, ...]]) -> None:
        key = (name, tuple(sorted(bindings.items())))
        if key in self._seen or name not in self.functions:
            return
        if name in self._visiting:
            # A function that passes a request value to itself: each level would bind a longer path, without
            # end. Its reads are known from the outer level; those at deeper levels are not followed, so a
            # recursive function that reads any member of a request value fails closed (check_recursion).
            self._recursive.add(name)
            return
        self._seen.add(key)
        self._visiting.append(name)
        try:
            self.visit_scope(self.functions[name], dict(bindings), name, top_level=False)
        finally:
            self._visiting.pop()

    def check_recursion(self) -> None:
        for read in self.reads:
            if read.function in self._recursive:
                self.untracked.append(
                    (
                        read.line,
                        "%s reads %s and calls itself with a request value: deeper reads are not followed"
                        % (read.function, read.dotted()),
                    )
                )

    def _own_nodes(self, scope: Any, top_level: bool) -> tuple[list[Any], set[int]]:
        """The nodes whose nearest enclosing function is ``scope`` (none, for the script level), in source
        order, and their ids: a nested function statement itself, not what it holds. Computed once per
        scope (the walker visits a function once per set of bindings)."""
        key = (scope.id, top_level)
        if key not in self._own:
            nodes: list[Any] = []
            stack = [scope] if top_level else list(reversed(scope.children))
            while stack:
                node = stack.pop()
                nodes.append(node)
                if node.type != "function_statement":
                    stack.extend(reversed(node.children))
            self._own[key] = (nodes, {n.id for n in nodes})
        return self._own[key]

    def path_of(self, node: Any, bindings: dict[str, tuple[str, ...]]) -> tuple[str, ...] | None:
        """The request path an expression denotes (a bound variable, or a chain of members on one)."""
        node = pstree.unwrap_array(node)
        name = pstree.variable_name(node)
        if name is not None:
            return bindings.get(name)
        found = pstree.chain(node)
        if found is None or found.base not in bindings:
            return None
        path = list(bindings[found.base])
        for step in found.steps:
            if step.endswith("()") or step == "psobject":
                return None
            path.append(ELEMENT if step.startswith("[") else step)
        return tuple(path)

    def visit_scope(self, scope: Any, bindings: dict[str, tuple[str, ...]], name: str, top_level: bool) -> None:
        nodes, own = self._own_nodes(scope, top_level)
        # Bindings first, in source order, so that reads anywhere in the scope see them.
        for node in nodes:
            if node.type == "foreach_statement":
                variables = [c for c in node.named_children if c.type == "variable"]
                iterable = [c for c in node.named_children if c.type == "pipeline"]
                if variables and iterable:
                    path = self.path_of(iterable[0], bindings)
                    if path is not None:
                        self.bind(bindings, pstree.variable_name(variables[0]) or "", (*path, ELEMENT), node)
            elif node.type == "assignment_expression":
                left = (
                    pstree.strip(node.named_children[0].named_children[0])
                    if node.named_children[0].named_children
                    else None
                )
                right = node.named_children[-1]
                target = pstree.variable_name(left) if left is not None else None
                if target is None:
                    continue
                value = pstree.strip(right)
                if value.type == "command" and pstree.bare_name(pstree.command(value).name) == "convertfrom-json":
                    bindings[target] = ()  # the dispatch's $request
                    continue
                if value.type == "command" and pstree.bare_name(pstree.command(value).name) == HELPER:
                    helper = pstree.command(value)
                    obj, key = helper.argument("-object"), helper.argument("-name")
                    base = self.path_of(obj, bindings) if obj is not None else None
                    if base is not None and key is not None:
                        bindings[target] = (*base, pstree.text(key).strip("'\""))
                    continue
                path = self.path_of(right, bindings)
                if path is not None:
                    self.bind(bindings, target, path, node)
        for node in nodes:
            if node.type == "command":
                self.visit_command(pstree.command(node), bindings, name)
            self.check_untracked(node, bindings)
        for found in pstree.outermost_chains(scope):
            if found.node.id not in own or found.base not in bindings:
                continue
            self.record_chain(found, bindings, name)

    def bind(self, bindings: dict[str, tuple[str, ...]], target: str, path: tuple[str, ...], node: Any) -> None:
        if target in bindings and bindings[target] != path:
            self.untrack(
                node,
                "$%s is bound to two request paths (%s and %s)" % (target, _dotted(bindings[target]), _dotted(path)),
            )
        bindings[target] = path

    def untrack(self, node: Any, why: str) -> None:
        self.untracked.append((pstree.line(node), why))

    def check_untracked(self, node: Any, bindings: dict[str, tuple[str, ...]]) -> None:
        """Forms a request value can take that the derivation does not follow."""
        if node.type == "pipeline_chain":
            parts = list(node.named_children)
            if len(parts) > 1 and self.path_of(parts[0], bindings) is not None:
                self.untrack(node, "a request value is piped into a command: %s" % pstree.text(node)[:60])
        elif node.type == "variable" and pstree.text(node).startswith("@"):
            if (pstree.variable_name(node) or "") in bindings:
                self.untrack(node, "a request value is splatted: %s" % pstree.text(node))
        elif node.type == "switch_statement":
            conditions = [c for c in node.named_children if c.type == "switch_condition"]
            if any(self.path_of(c.named_children[-1], bindings) is not None for c in conditions if c.named_children):
                self.untrack(node, "a switch over a request value")

    def record_chain(self, found: pstree.Chain, bindings: dict[str, tuple[str, ...]], function: str) -> None:
        path = list(bindings[found.base])
        steps = found.steps
        for index, step in enumerate(steps):
            if step in ("foreach()", "where()"):
                self.untrack(found.node, "%s on a request value: %s" % (step, pstree.text(found.node)[:60]))
                break
            if step.endswith("()"):
                break
            if step.startswith("['") and not (index >= 2 and steps[index - 2 : index] == ["psobject", "properties"]):
                self.untrack(found.node, "a request value indexed with a string: %s" % pstree.text(found.node)[:60])
                break
            if step == "psobject":
                # X.PSObject.Properties['key']: the guarded way to ask for a key.
                rest = steps[index + 1 :]
                if len(rest) >= 2 and rest[0] == "properties" and rest[1].startswith("['"):
                    self.add((*path, rest[1][2:-2]), True, found.node, function)
                break
            path.append(ELEMENT if step.startswith("[") else step)
        self.add(tuple(path), False, found.node, function)

    def visit_command(self, cmd: pstree.Command, bindings: dict[str, tuple[str, ...]], function: str) -> None:
        callee = pstree.bare_name(cmd.name)
        if callee == HELPER:
            obj, key = cmd.argument("-object"), cmd.argument("-name")
            base = self.path_of(obj, bindings) if obj is not None else None
            if base is not None and key is not None:
                self.add((*base, pstree.text(key).strip("'\"")), True, cmd.node, function)
            return
        if callee not in self.functions:
            return
        passed = {}
        known = set(pstree.function_parameters(self.functions[callee]))
        for parameter, argument in cmd.elements:
            if argument is None:
                continue
            path = self.path_of(argument, bindings)
            if path is None:
                continue
            if parameter is None or parameter.lstrip("-") not in known:
                how = "positionally" if parameter is None else "as %s, not a parameter's full name" % parameter
                self.untrack(cmd.node, "a request value is passed to %s %s" % (cmd.name, how))
                continue
            passed[parameter.lstrip("-")] = path
        if passed:
            self.visit_function(callee, passed)

    def add(self, path: tuple[str, ...], guarded: bool, node: Any, function: str) -> None:
        if path:
            self.reads.append(Read(path, guarded, pstree.line(node), function))


_T = TypeVar("_T")


def _single_flight(compute: Callable[..., _T]) -> Callable[..., _T]:
    """Memoise by arguments, computing each once even when many threads ask at the same moment.

    The lab's server answers 20 forks at once: each would otherwise analyse the same library text at
    the same time (about a second each, under one GIL), and the clients' Send would time out; a real
    host starts the process and answers Send at once.
    """
    results: dict[tuple[Any, ...], _T] = {}
    locks: dict[tuple[Any, ...], threading.Lock] = {}
    guard = threading.Lock()

    @functools.wraps(compute)
    def wrapper(*args: Any) -> _T:
        with guard:
            if args in results:
                return results[args]
            lock = locks.setdefault(args, threading.Lock())
        with lock:
            if args not in results:
                value = compute(*args)
                with guard:
                    if len(results) >= 64:  # a few library texts at a time: forget the oldest
                        results.pop(next(iter(results)))
                    results[args] = value
            return results[args]

    return wrapper


@_single_flight
def request_reads(library: str, operation: str | None = None) -> tuple[Read, ...]:
    """Every read of the request the library makes for ``operation`` (all operations when None),
    guarded or not, deduplicated, in path order."""
    reads = _Walker(pstree.parse(library)).run(operation)
    unique = {(r.path, r.guarded, r.function): r for r in reads}
    return tuple(sorted(unique.values(), key=lambda r: (r.path, r.guarded, r.function)))


def _dotted(path: tuple[str, ...]) -> str:
    return ".".join(path).replace(".[]", "[]") or "the request"


@_single_flight
def untracked_uses(library: str) -> tuple[tuple[int, str], ...]:
    """(line, what) for each use of a request value this module cannot follow (see the docstring)."""
    walker = _Walker(pstree.parse(library))
    walker.run(None)
    return tuple(sorted(set(walker.untracked)))


@_single_flight
def operations_of(library: str) -> dict[str, str]:
    """The library's own $operations table: operation -> function (pstree.operation_table)."""
    return pstree.operation_table(pstree.parse(library))


def unguarded_paths(library: str, operation: str | None = None) -> set[tuple[str, ...]]:
    return {r.path for r in request_reads(library, operation) if not r.guarded}


def missing_key(request: Any, path: tuple[str, ...]) -> str | None:
    """The first key along ``path`` that ``request`` lacks where the library would read it, or None.

    A list is walked element by element at '[]' (foreach) and, at a member, as PowerShell's member
    enumeration does (every element must have it). A member read on null or on a scalar is refused
    here too: no request the controller sends needs it, and refusing it is never more lenient.
    """
    values = [request]
    for step in path:
        following: list[Any] = []
        for value in values:
            if step == ELEMENT:
                following.extend(value if isinstance(value, list) else [value])
            elif isinstance(value, dict):
                # PSCustomObject property names are case-insensitive.
                matches = [k for k in value if k.lower() == step]
                if not matches:
                    return step
                following.append(value[matches[0]])
            elif isinstance(value, list):
                if step in ARRAY_MEMBERS:
                    following.append(len(value))
                    continue
                for element in value:
                    if not isinstance(element, dict) or not any(k.lower() == step for k in element):
                        return step
                    following.append(next(element[k] for k in element if k.lower() == step))
            else:
                return step
        values = following
    return None


def strict_mode_violation(library: str, request: dict[str, Any]) -> tuple[str, str] | None:
    """(missing key, the dotted path read) for the first unguarded read the request cannot satisfy."""
    operation = request.get("operation") if isinstance(request.get("operation"), str) else None
    for path in sorted(unguarded_paths(library, operation)):
        missing = missing_key(request, path)
        if missing is not None:
            return missing, ".".join(path).replace(".[]", "[]")
    return None
