"""A small view of PowerShell source through tree-sitter-powershell, for the lab and the static checks.

The lab reads the library that arrived with a call (which request keys it reads, which operations it
defines); tests/unit checks the shipped PowerShell with the same helpers. PowerShell names
(variables, commands, parameters, members) are case-insensitive, so every name this module hands
out for comparison is lower case; ``text()`` keeps the source as written.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import tree_sitter_powershell
from tree_sitter import Language, Node, Parser

_PARSER = Parser(Language(tree_sitter_powershell.language()))

# Expression layers the grammar wraps around every operand: one child each when nothing happens there.
_WRAPPERS = frozenset(
    {
        "pipeline",
        "pipeline_chain",
        "logical_expression",
        "bitwise_expression",
        "comparison_expression",
        "additive_expression",
        "multiplicative_expression",
        "format_expression",
        "range_expression",
        "array_literal_expression",
        "unary_expression",
        "parenthesized_expression",
    }
)
CHAIN_TYPES = frozenset({"member_access", "element_access", "invokation_expression"})


@functools.lru_cache(maxsize=32)
def parse(source: str) -> Node:
    return _PARSER.parse(source.encode("utf-8")).root_node


def text(node: Node) -> str:
    return node.text.decode("utf-8") if node.text is not None else ""


def line(node: Node) -> int:
    return node.start_point[0] + 1


def walk(node: Node) -> Iterator[Node]:
    """Every node below ``node`` (and itself), in source order (pre-order, with a stack: a recursive
    generator costs a frame per level for every node it yields)."""
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        children = current.children
        if children:
            stack.extend(reversed(children))


def ancestors(node: Node) -> Iterator[Node]:
    parent = node.parent
    while parent is not None:
        yield parent
        parent = parent.parent


def strip(node: Node) -> Node:
    """The meaningful node under single-child expression wrappers (and parentheses)."""
    while True:
        named = list(node.named_children)
        if node.type in _WRAPPERS and len(named) == 1:
            node = named[0]
        else:
            return node


def unwrap_array(node: Node) -> Node:
    """``@(X)`` with one statement X -> X (stripped); anything else stripped as it is."""
    node = strip(node)
    if node.type == "array_expression":
        inner = [c for c in node.named_children if c.type == "statement_list"]
        if inner and len(inner[0].named_children) == 1:
            return strip(inner[0].named_children[0])
    if node.type == "expression_with_unary_operator":
        casts = [c for c in node.named_children if c.type == "cast_expression"]
        if casts:
            return unwrap_cast(casts[0])
    if node.type == "cast_expression":
        return unwrap_cast(node)
    return node


def unwrap_cast(node: Node) -> Node:
    operands = [c for c in node.named_children if c.type != "type_literal"]
    return unwrap_array(operands[-1]) if operands else node


def variable_name(node: Node) -> str | None:
    """``$Name`` -> 'name'; ``${function:X}`` -> 'function:x'; not a variable -> None."""
    node = strip(node)
    if node.type != "variable":
        return None
    raw = text(node)
    if raw.startswith("${") and raw.endswith("}"):
        return raw[2:-1].lower()
    return raw.lstrip("$@").lower()


def member_name(node: Node) -> str | None:
    names = [c for c in node.children if c.type == "member_name"]
    return text(names[0]).lower() if names else None


@dataclass
class Chain:
    """``$base.a.b['k'].M()``: the variable, then members ('a'), indexes ('[]' or the string key as
    "['k']") and a method call ('m()'), in order."""

    base: str
    steps: list[str]
    node: Node


def chain(node: Node) -> Chain | None:
    """The member/element/method chain rooted at a variable, or None."""
    node = strip(node)
    steps: list[str] = []
    current = node
    while current.type in CHAIN_TYPES:
        first = current.named_children[0]
        if current.type == "member_access":
            steps.append(member_name(current) or "?")
        elif current.type == "invokation_expression":
            steps.append((member_name(current) or "?") + "()")
        else:  # element_access: $x[0] or $x['key']
            index = list(current.named_children[1:])
            key = strip(index[0]) if index else None
            if key is not None and key.type == "string_literal":
                steps.append("['%s']" % text(key).strip("'\""))
            else:
                steps.append("[]")
        current = strip(first)
    base = variable_name(current)
    if base is None:
        return None
    steps.reverse()
    return Chain(base, steps, node)


def outermost_chains(root: Node) -> Iterator[Chain]:
    """Every maximal chain under ``root`` (a chain that is not the object of a longer one)."""
    for node in walk(root):
        if node.type not in CHAIN_TYPES:
            continue
        parent = node.parent
        if parent is not None and parent.type in CHAIN_TYPES and parent.named_children[0].id == node.id:
            continue
        found = chain(node)
        if found is not None:
            yield found


@dataclass
class Element:
    """One element of a command: a parameter (``token``: its name as written, without the '-' and a
    ':') with its argument ``arg`` (None when it takes none), or a positional argument (``token`` None,
    ``arg`` the same node as ``node``). ``node`` is the parameter's node or the argument's."""

    token: str | None
    node: Node
    arg: Node | None


def _no_switch(token: str) -> bool:
    return False


def command_elements(node: Node, is_switch: Callable[[str], bool] = _no_switch) -> list[Element]:
    """The elements of a command, in source order. A parameter takes the element after it as its
    argument unless that is another parameter or ``is_switch(token)`` says the parameter is a switch
    (which parameters are switches is for the caller to know; by default none is); ``-Name:value``
    takes it always. Redirections (``2>&1``, ``> $null``) are no elements: PowerShell binds the
    parameters around them (``redirections`` gives them). The verbatim rest after ``--%`` is one
    positional element."""
    found: list[Element] = []
    for part in node.children:
        if part.type != "command_elements":
            continue
        items = [c for c in part.children if c.type != "redirection"]
        index = 0
        while index < len(items):
            item = items[index]
            if item.type == "command_argument_sep":
                index += 1
                continue
            if item.type != "command_parameter":
                found.append(Element(None, item, item))
                index += 1
                continue
            token = text(item)[1:]
            colon = token.endswith(":")
            token = token.rstrip(":")
            follow = index + 1
            if follow < len(items) and items[follow].type == "command_argument_sep" and ":" in text(items[follow]):
                colon = True  # -Name:value parses as the parameter, a ':' separator, the value
            while follow < len(items) and items[follow].type == "command_argument_sep":
                follow += 1
            nxt = items[follow] if follow < len(items) else None
            if nxt is not None and (colon or (nxt.type != "command_parameter" and not is_switch(token))):
                found.append(Element(token, item, nxt))
                index = follow + 1
            else:
                found.append(Element(token, item, None))
                index += 1
    return found


def redirections(node: Node) -> list[Node]:
    """A command's redirections (``2>&1``, ``> $null``), in source order."""
    return [
        c for part in node.children if part.type == "command_elements" for c in part.children if c.type == "redirection"
    ]


@dataclass
class Command:
    """One command: its name as written, its elements as ('-param', argument node or None) for
    parameters (lower case, the argument as ``command_elements`` binds it, no parameter being a switch)
    and (None, node) for positional arguments, and its redirections."""

    name: str
    node: Node
    elements: list[tuple[str | None, Node | None]] = field(default_factory=list)
    redirections: list[Node] = field(default_factory=list)

    @property
    def parameters(self) -> list[str]:
        return [name for name, _arg in self.elements if name is not None]

    def argument(self, parameter: str) -> Node | None:
        for name, arg in self.elements:
            if name == parameter.lower():
                return arg
        return None


def command(node: Node) -> Command:
    name_nodes = [c for c in node.children if c.type == "command_name" or c.type == "command_name_expr"]
    elements = [("-" + e.token.lower() if e.token is not None else None, e.arg) for e in command_elements(node)]
    return Command(text(name_nodes[0]) if name_nodes else "", node, elements, redirections(node))


def commands(root: Node) -> list[Command]:
    return [command(node) for node in walk(root) if node.type == "command"]


def bare_name(name: str) -> str:
    """'Hyper-V\\Get-VM' -> 'get-vm'."""
    return name.split("\\")[-1].lower()


def functions(root: Node) -> dict[str, Node]:
    """Function name (lower case) -> its function_statement node."""
    found = {}
    for node in walk(root):
        if node.type == "function_statement":
            names = [c for c in node.children if c.type == "function_name"]
            if names:
                found[text(names[0]).lower()] = node
    return found


def function_parameters(function: Node) -> list[str]:
    """The parameter names (lower case, no '$') of a function's param block."""
    params = []
    for node in walk(function):
        if node.type == "script_parameter" and _owner(node) == function.id:
            for child in node.named_children:
                if child.type == "variable":
                    params.append(variable_name(child) or "")
    return params


def _owner(node: Node) -> int | None:
    for parent in ancestors(node):
        if parent.type in ("function_statement", "script_block_expression"):
            return parent.id
    return None


def enclosing_function(node: Node) -> Node | None:
    for parent in ancestors(node):
        if parent.type == "function_statement":
            return parent
    return None


def function_name(function: Node) -> str:
    names = [c for c in function.children if c.type == "function_name"]
    return text(names[0]).lower() if names else ""


def operation_table(root: Node) -> dict[str, str]:
    """The library's ``$operations`` table: operation name -> function name (lower case).

    Both forms the libraries use: ``$operations = @{ name = ${function:F} }`` and
    ``$operations['name'] = ${function:F}``.
    """
    table: dict[str, str] = {}
    for node in walk(root):
        if node.type != "assignment_expression":
            continue
        left, right = node.named_children[0], node.named_children[-1]
        target = strip(left.named_children[0]) if left.named_children else left
        value = strip(right)
        if (
            target.type == "variable"
            and variable_name(target) == "operations"
            and value.type == "hash_literal_expression"
        ):
            for entry in walk(value):
                if entry.type == "hash_entry":
                    key = text(entry.named_children[0]).strip("'\"")
                    ref = variable_name(entry.named_children[-1])
                    if ref and ref.startswith("function:"):
                        table[key] = ref.split(":", 1)[1]
        elif target.type == "element_access" and variable_name(target.named_children[0]) == "operations":
            key_node = strip(target.named_children[1])
            ref = variable_name(value)
            if key_node.type == "string_literal" and ref and ref.startswith("function:"):
                table[text(key_node).strip("'\"")] = ref.split(":", 1)[1]
    return table
