"""Structural contract rules for the PowerShell the collection ships, checked statically with tree-sitter.

No PowerShell runs where the tests run, so these rules read the parse tree of the library (prelude + body +
dispatch, ``library_text(body)``) and of bootstrap.ps1. Every rule is a pure function ``source text ->
list[Violation]``; ``check(source)`` runs them all. The library runs in Windows PowerShell 5.1 under
``Set-StrictMode -Version 3.0`` and ``$ErrorActionPreference = 'Stop'``: every error is terminating.

The rules (ids as reported):

1. ``write-inside-item-try``: every write is inside an item try (defined below).
2. ``nothing-throws-after-first-write``: in every operation function (``pstree.operation_table``) and
   everything it calls, nothing that can throw runs after the first write unless protected: an
   ``ok: false`` answer must mean nothing was written (docs/dev/powershell-protocol.md section 3). In
   practice this means: read request data and cmdlet objects into library hashtables before the first
   write (``$checkMode = [bool]$Request.check_mode``), and call only item-safe functions afterwards.
3. ``no-stray-output``: inside functions, no value producer whose value joins an output by accident.
4. ``array-through-at``: a variable assigned from a pipeline (a command, ``a | b``, or a compound
   statement such as ``foreach``) and then indexed (``$x[0]``) or asked ``.Count`` is assigned through
   ``@(...)``; so is a parenthesized pipeline indexed directly. A library function whose answer is one
   hashtable (never unrolled) and ``New-Object`` are not pipelines here.
5. ``convertto-json-inputobject``: ``ConvertTo-Json`` gets ``-InputObject`` and ``-Depth`` and no
   pipeline input (piping unrolls a one-element array; PowerShell-Docs ConvertTo-Json).
6. ``no-ps7-syntax``: no PowerShell 6/7-only syntax, parameters (``PS7_PARAMETERS``), commands
   (``PS7_COMMANDS``) or automatic variables (``PS7_VARIABLES``). tree-sitter-powershell parses
   ``&&``/``||`` (node ``pipeline_chain_tail``), ``ForEach-Object -Parallel`` and a lone ``clean { }``
   (as a command named clean); it gives ERROR nodes for ``?:``, ``??``, ``??=``, ``${a}?.b``,
   ``${a}?[0]``, a trailing background ``&`` and ``clean`` after other named blocks: those fail the parse
   test too, and this rule reports them by name.
7. ``count-on-collections``: ``.Count`` only on a ``coll`` or ``hash`` shape (below). Under strict
   mode, ``.Count`` of a single object throws in Windows PowerShell 5.1 although PowerShell adds it
   when strict mode is off (PowerShell/PowerShell#2798; 7.x differs for PSCustomObject, #15526).
   Anything the rule cannot prove a collection is a violation, so the library stays simple.
8. ``parameter-not-reassigned``: a function never assigns (``=``, ``+=``, a cast, a ``foreach`` loop
   variable) a variable named like one of its parameters in any case: variable names ignore case
   (PowerShell-Docs about_Variables), so ``$names = ...`` beside ``param ($Names)`` replaces the parameter.
9. ``cim-method-result-checked``: every ``Invoke-CimMethod`` answer is assigned to a variable (alone, not
   piped on) whose ``.ReturnValue`` the same function reads. A WMI method reports failure in its return
   value, not by throwing (MicrosoftDocs/win32 HyperV_v2 method pages, "Return value"; 4096 only starts a
   job), so an unread answer is a failure reported as success.
10. ``member-names-a-key-or-property``: a member read on a library-built ``Dictionary`` names one of its
   properties (Count, Keys, Values, Comparer); on a hashtable whose keys are all known (a literal, ``$h.key =``,
   no ``$h[...] =``), one of those keys. PowerShell's member binder looks a dictionary's key up first, then
   a property, and under strict mode throws ``PropertyNotFoundException`` when neither exists
   (PowerShell/PowerShell src/System.Management.Automation/engine/runtime/Binding/Binders.cs,
   PSGetMemberBinder and PropertyDoesntExist). A function returns a Dictionary whole: the engine does not
   enumerate an IDictionary (LanguagePrimitives.cs, GetEnumerable). Because the key comes first, a
   dictionary whose keys come from data (a Dictionary, or a hashtable set by ``$h[$x] = ...``) is asked its
   Count, Keys or Values through ``.psbase`` (PowerShell-Docs about_Hash_Tables, "Handling property name
   collisions"): a KVP item or VM named ``Count`` would otherwise be read instead.

Definitions the rules share
---------------------------

Scope. A *library function* is a ``function`` statement of the source. The *own nodes* of a function are
the nodes of its body without nested function statements. Script blocks passed to commands
(``ForEach-Object { }``, ``Where-Object { }``) belong to the function that contains them and are taken
to run where they are written (they are not stored and invoked later).

Write. A *write* is a command whose name (without module qualifier, case-insensitive) is in
``WRITE_COMMANDS``, or a .NET method call whose name is in ``WRITE_METHODS`` (RegistryKey.SetValue and
friends). A function *writes* when it contains a write or calls a library function that writes
(transitively). A write stays a write in a check-mode branch (``if (-not $CheckMode) { ... }``): the
rules do not evaluate conditions.

Protected. A node is *protected* when it lies in the body (not a ``catch`` or ``finally``) of a ``try``
inside the same function whose ``catch`` clauses include a catch-all (no exception type) that does not
rethrow (contains no ``throw``). A typed catch (``catch [X]``) alone protects nothing: other exceptions
pass. A write is *inside an item try* when the protecting catch-all also *records the error on its item*:
it assigns a member named ``error`` (``$entry.error = ...``, ``$entry.w32time.error = ...``) from an
expression that reads the caught error (``$_``, ``$PSItem`` or ``$Error``).

Shapes. A small, flow-insensitive inference gives every expression a shape:

* ``hash``: a hashtable built by the library: ``@{}``, ``[ordered]@{}``, ``New-Object Hashtable``, a
  variable or member all of whose assignments are such, a library function whose every output is one
  (hashtables are not unrolled on output), an untyped parameter that every call site passes one. Its
  known keys (from the literal and from ``$h.key = ...`` in the same function) and element shape (from
  ``$h[...] = ...``) are tracked.
* ``coll``: a collection: ``@(...)``, ``1, 2``, ``New-Object``/``[T]::new()``/cast of a collection type
  (List, ArrayList, HashSet, Dictionary, ..., ``T[]``), a parameter typed ``[object[]]``, ``[array]`` or
  ``[string[]]``; the ``.Keys``/``.Values`` of a hashtable. With the element shape when known.
* ``pipe``: what a command pipeline or a compound statement (``$x = foreach ...``, ``$x = if ...``)
  yields: nothing, one object or an array. Library functions whose output is a collection or comes from
  several statements are ``pipe`` too (a returned collection is unrolled).
* ``null``, ``scalar`` (literals, comparisons, ``[bool]``/``[int]``/``[string]`` casts, ``.ToString()``),
  ``object`` (anything else the rule cannot type).

A value that is a hashtable on some paths and ``$null`` on others is a nullable hashtable. The rules do
not model ``$null``-ness further: a nullable hashtable counts as a hashtable (the library guards
``$null`` with ``if``). Assumption (not verified on a real host): reading a member of ``$null`` yields
``$null`` under strict mode; calling a method on ``$null`` throws.

Can throw (rule ``nothing-throws-after-first-write``). These nodes can end the call with an error:

* a command, except ``SAFE_COMMANDS`` (Write-Verbose, Out-Null, ...), ``Where-Object``/``ForEach-Object``
  given only script blocks (their contents are checked themselves), ``TRUSTED_FUNCTIONS`` (the error
  formatter) and *item-safe* library functions; ``& $x`` always;
* a method call, except ``SAFE_STATIC_METHODS`` (``[string]::Equals``, ...); a ``throw`` statement;
* a cast, except to ``SAFE_CASTS`` (``[bool]``, ``[string]``, ``[void]``, ``[ordered]``, ...);
* a member read or member assignment (``$x.a``) on anything but a ``hash`` (``.Count``/``.Length`` of a
  ``coll`` too); a static property ``[T]::P`` is safe;
* an index (``$x[i]``) on anything but a ``hash`` (an array index out of range throws under strict mode);
* arithmetic, ``-f`` and ``..`` (type conversion); ``+=``/``-=`` ... unless ``+=`` on a ``coll``.

Safe: literals, variable reads (unset variables are not checked here), hashtable/array literals of safe
parts, comparison and logical operators (``-eq``, ``-and``, ``-not``, ``-split``, ...), assignments of
safe values to variables and to hashtable members, ``return``, ``continue``, ``break``.

A call of a library function can also fail while binding: a parameter typed other than
``SAFE_PARAMETER_TYPES`` (``[int]$Wanted``) converts its argument, unless the argument is ``$null`` or
proven of that very type (a variable assigned only from ``[int]...`` casts or integer literals).

An *item-safe* function is one whose every can-throw own node is protected (its calls being to item-safe
or trusted functions). Calling it cannot end the call with an error.

After the first write. In a function that writes, the *first write* is the earliest (in source order)
write or call to a writing function. A node runs *after the first write* when it starts after the end of
the first write in source order, or when it lies in a loop body together with a write (the next round
of the loop runs it after this round's write; loops are ``foreach``/``for``/``while``/``do`` and script
blocks passed to commands). Source order over-approximates: a node in the ``else`` of the write's ``if``
counts as after it.

Output (rule ``no-stray-output``). A *value producer* is (a) a .NET method call that returns a value:
its name is in ``RETURNING_METHODS`` and the receiver's shape is not a class on which that method is
void (``List[T].Add`` is void, ``ArrayList.Add`` returns the index, ``HashSet.Add`` a bool); (b) a
command known to produce output (``OUTPUT_COMMANDS``, a name starting with an ``OUTPUT_VERBS`` verb, or
any command given ``-PassThru``); (c) a call to a library function that has output. A producer is
*discarded* when it is assigned (to a variable or ``$null``), cast to ``[void]``, piped on (``| Out-Null``
or any further command), or used as an operand or argument (``return X``, ``Write-Output X``, ``if (X)``,
a hash value, ...). ``@(X)``, ``$(X)`` and ``(X)`` holding only ``X`` pass ``X``'s fate on. Otherwise
it stands as a statement and its value joins whatever collects that statement's output: the function's
output, an array being built, a variable assigned from a ``foreach``. (a) and (b) are stray wherever
their value lands unless that collector is itself discarded; (c) is stray only when it joins the
function's own output, is not in tail position (something runs after it) and the function has other
output: a function that delegates (``Get-A`` as its last statement, in either branch of a final ``if``)
or a loop that collects calls (``@(foreach ... { Get-A })``) is intended. The function's intended output
(its last hashtable literal, ``return X``, ``Write-Output``) is never a producer; a command such as
``New-Item`` as the last statement is, though: write ``return (New-Item ...)`` when that is meant.

Limits (honest list)
--------------------

* Flow-insensitive: a variable's shape is the join of all its assignments in the function; conditions
  are not evaluated; ``$null`` checks are not understood.
* Hashtable key presence is not checked: reading ``$h.key`` of a library hashtable counts as safe even if
  the key was never set (strict mode would throw). Request-key reads are another rule's job.
* Call-site parameter inference sees only ``Name -Param $value`` and positional calls by function name,
  not splatting or ``& ${function:X}``; a function with no call site has untyped parameters ``object``.
* Script blocks stored in variables and invoked elsewhere, ``trap``, ``$ErrorActionPreference`` changes
  and ``-ErrorAction SilentlyContinue`` are not modelled. Upstream commands of a pipeline whose
  ``ForEach-Object`` writes can in reality run after that write; the rule does not see that.
* ``$null``: a parameter typed ``[object[]]`` binds ``$null`` as ``$null``; rule 7 still counts it a
  collection (as the library checks ``$null -eq $Names`` first). Member reads of ``$null`` rely on the
  assumption above.
* Writes are what the tables name: native programs (``sc.exe``, ``reg.exe``), static .NET calls and
  COM are not seen as writes.
* Rule 4 sees ``$x[...]`` and ``$x.Count`` on the variable itself, not ``$x.Length`` or a later
  ``foreach``; rule 7 checks ``.Count`` only, not ``.Length``.
* The command/method tables are lists, not a model of every cmdlet; extend them when the library meets
  new ones. tree-sitter-powershell parses several PowerShell 7 operators as ERROR nodes: rule
  ``no-ps7-syntax`` reports those too, and the parse test (tests/unit/plugins/plugin_utils/
  test_powershell_syntax.py) fails on any ERROR anyway.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

from hvlab import pstree
from tree_sitter import Node

# ----------------------------------------------------------------------------------------------------------
# Tables (lower case, no module qualifier)

# Every command that changes the target machine. Add new ones here: rules 1 and 2 read this constant.
WRITE_COMMANDS = frozenset(
    {
        "enable-vmintegrationservice",
        "disable-vmintegrationservice",
        "set-service",
        "start-service",
        "stop-service",
        "restart-service",
        "suspend-service",
        "resume-service",
        "new-service",
        "new-item",
        "new-itemproperty",
        "set-itemproperty",
        "remove-item",
        "remove-itemproperty",
        "rename-item",
        "rename-itemproperty",
        "move-item",
        "copy-item",
        "set-item",
        "clear-item",
        "clear-itemproperty",
        "set-content",
        "add-content",
        "clear-content",
        "copy-vmfile",
        "set-vm",
        "start-vm",
        "stop-vm",
        "invoke-cimmethod",
        "set-ciminstance",
        "new-ciminstance",
        "remove-ciminstance",
        "invoke-wmimethod",
        "set-wmiinstance",
        "remove-wmiobject",
    }
)
# .NET methods that write (Microsoft.Win32.RegistryKey).
WRITE_METHODS = frozenset({"setvalue", "deletevalue", "createsubkey", "deletesubkey", "deletesubkeytree"})

# Commands that cannot fail with the library's preferences (rule 2).
SAFE_COMMANDS = frozenset({"write-verbose", "write-debug", "write-information", "out-null", "write-output"})
# Script-block plumbing: safe when every argument is a script block (the block's contents are checked).
PLUMBING_COMMANDS = frozenset({"where-object", "foreach-object", "?", "%", "where", "foreach"})
# Library functions trusted not to fail: the error formatter reads what every ErrorRecord has.
TRUSTED_FUNCTIONS = frozenset({"get-errorrecorddata"})
SAFE_STATIC_METHODS = frozenset(
    {("string", "equals"), ("string", "isnullorempty"), ("string", "isnullorwhitespace"), ("guid", "tryparse")}
)
SAFE_CASTS = frozenset(
    {"bool", "boolean", "switch", "string", "void", "object", "array", "object[]", "string[]", "ordered"}
)
SAFE_PARAMETER_TYPES = frozenset({"", "object", "bool", "boolean", "switch", "string", "object[]", "array", "string[]"})

# Rule 3: commands known to produce output; verbs whose commands produce output.
OUTPUT_COMMANDS = frozenset(
    {"new-item", "new-itemproperty", "new-object", "add-member", "select-object", "sort-object", "tee-object"}
)
OUTPUT_VERBS = (
    "get-",
    "test-",
    "new-",
    "convertto-",
    "convertfrom-",
    "select-",
    "measure-",
    "group-",
    "resolve-",
    "join-",
    "split-",
    "compare-",
    "find-",
    "read-",
)
# Commands that never output (a write without -PassThru, the Write-* streams other than output).
SILENT_COMMANDS = frozenset(
    {"write-verbose", "write-debug", "write-host", "write-warning", "write-information", "out-null", "set-strictmode"}
)
# Methods called for their effect that also return a value -> the receiver classes on which they are void.
# Pure methods (.ToString(), .GetValue(), .Contains()) are left out: standing as a statement, their value
# is the point (a ForEach-Object mapping, an if branch's value).
RETURNING_METHODS: dict[str, frozenset[str]] = {
    "add": frozenset({"list", "dictionary", "hashtable", "ordered", "sortedlist", "sorteddictionary", "linkedlist"}),
    "remove": frozenset({"hashtable", "ordered", "arraylist"}),
    "insert": frozenset({"list", "arraylist", "ordered"}),
    "append": frozenset(),
    "appendline": frozenset(),
    "appendformat": frozenset(),
    "tryadd": frozenset(),
    "trygetvalue": frozenset(),
    "pop": frozenset(),
    "dequeue": frozenset(),
}

# Rule 6: PowerShell 6/7-only names.
PS7_COMMANDS = frozenset(
    {
        "get-error",
        "join-string",
        "test-json",
        "get-uptime",
        "remove-alias",
        "remove-service",
        "convertfrom-markdown",
        "show-markdown",
        "get-markdownoption",
        "set-markdownoption",
    }
)
PS7_VARIABLES = frozenset({"iswindows", "islinux", "ismacos", "iscoreclr", "psstyle", "enabledexperimentalfeatures"})
# command -> (its Windows PowerShell 5.1 parameters, parameters only PowerShell 6/7 has)
PS7_PARAMETERS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "convertfrom-json": (frozenset({"inputobject"}), frozenset({"ashashtable", "depth", "noenumerate", "datekind"})),
    "convertto-json": (
        frozenset({"inputobject", "depth", "compress"}),
        frozenset({"enumsasstrings", "asarray", "escapehandling"}),
    ),
    "foreach-object": (
        frozenset({"process", "begin", "end", "remainingscripts", "inputobject", "membername", "argumentlist"}),
        frozenset({"parallel", "throttlelimit", "timeoutseconds", "asjob", "usenewrunspace"}),
    ),
    "get-content": (frozenset({"encoding", "raw", "path", "literalpath"}), frozenset({"asbytestream"})),
    "set-content": (frozenset({"encoding", "value", "path", "literalpath"}), frozenset({"asbytestream"})),
    "split-path": (frozenset({"leaf", "parent", "path", "literalpath"}), frozenset({"leafbase", "extension"})),
}
PS7_PARAMETERS["%"] = PS7_PARAMETERS["foreach"] = PS7_PARAMETERS["foreach-object"]
COMMON_PARAMETERS = frozenset(
    {
        "verbose",
        "debug",
        "erroraction",
        "warningaction",
        "informationaction",
        "errorvariable",
        "warningvariable",
        "informationvariable",
        "outvariable",
        "outbuffer",
        "pipelinevariable",
        "whatif",
        "confirm",
    }
)

LOOPS = frozenset({"foreach_statement", "while_statement", "for_statement", "do_statement", "switch_statement"})
COMPOUND = LOOPS | {"if_statement", "try_statement", "trap_statement"}
CLAUSES = frozenset(
    {
        "statement_block",
        "statement_list",
        "script_block_body",
        "elseif_clauses",
        "elseif_clause",
        "else_clause",
        "catch_clauses",
        "catch_clause",
        "finally_clause",
        "switch_body",
        "switch_clauses",
        "switch_clause",
    }
)
_WRAPPERS = pstree._WRAPPERS | {"pipeline"}

# ----------------------------------------------------------------------------------------------------------
# Violations


@dataclass(frozen=True)
class Violation:
    rule: str
    line: int
    text: str
    message: str
    function: str = ""

    def __str__(self) -> str:
        where = " in %s" % self.function if self.function else ""
        return "%d: [%s]%s %s: %s" % (self.line, self.rule, where, self.text, self.message)


def _short(node: Node, limit: int = 100) -> str:
    first = pstree.text(node).strip().splitlines()[0] if pstree.text(node).strip() else ""
    return first if len(first) <= limit else first[: limit - 3] + "..."


# ----------------------------------------------------------------------------------------------------------
# Shapes

HASH, COLL, PIPE, NULL, SCALAR, OBJECT = "hash", "coll", "pipe", "null", "scalar", "object"


@dataclass(frozen=True)
class Shape:
    kind: str
    cls: str = ""  # .NET class family when known: list, arraylist, hashset, dictionary, hashtable, ordered, array
    keys: tuple[tuple[str, Shape], ...] = ()  # hash: known keys
    element: Shape | None = None  # coll/pipe: element; hash: value of keys set by index
    nullable: bool = False

    def key(self, name: str) -> Shape | None:
        for key, value in self.keys:
            if key == name:
                return value
        return None

    def describe(self) -> str:
        text = {
            HASH: "a hashtable",
            COLL: "a collection",
            PIPE: "a pipeline result (nothing, one object or many)",
            NULL: "$null",
            SCALAR: "a single value",
            OBJECT: "an object the rule cannot type",
        }[self.kind]
        if self.cls and self.kind in (COLL, HASH, OBJECT):
            text += " (%s)" % self.cls
        return text + (" or $null" if self.nullable and self.kind != NULL else "")


UNKNOWN = Shape(OBJECT)
NULL_SHAPE = Shape(NULL)
SCALAR_SHAPE = Shape(SCALAR)


def join(a: Shape | None, b: Shape | None) -> Shape | None:
    if a is None:
        return b
    if b is None or a == b:
        return a
    if a.kind == NULL:
        return replace(b, nullable=True)
    if b.kind == NULL:
        return replace(a, nullable=True)
    nullable = a.nullable or b.nullable
    if a.kind != b.kind:
        return Shape(OBJECT, nullable=nullable)
    cls = a.cls if a.cls == b.cls else ""
    element = join(a.element, b.element)
    keys: dict[str, Shape] = dict(a.keys)
    for name, value in b.keys:
        keys[name] = join(keys.get(name), value) or value
    return Shape(a.kind, cls, tuple(sorted(keys.items())), element, nullable)


def _join_all(shapes: list[Shape]) -> Shape | None:
    result = None
    for shape in shapes:
        result = join(result, shape)
    return result


def _element_or_self(shape: Shape) -> Shape:
    if shape.kind in (COLL, PIPE):
        return shape.element or UNKNOWN
    return shape


_COLLECTION_CLASSES = frozenset(
    {
        "list",
        "arraylist",
        "hashset",
        "sortedset",
        "dictionary",
        "sorteddictionary",
        "sortedlist",
        "queue",
        "stack",
        "linkedlist",
        "concurrentdictionary",
        "concurrentbag",
        "collection",
        "observablecollection",
        "bitarray",
    }
)
_DICTIONARY_CLASSES = frozenset({"dictionary", "sorteddictionary", "sortedlist", "concurrentdictionary"})
_SCALAR_TYPES = {
    "bool": "bool",
    "boolean": "bool",
    "switch": "bool",
    "int": "int",
    "int32": "int",
    "int64": "long",
    "long": "long",
    "string": "string",
    "char": "char",
    "double": "double",
    "byte": "byte",
}


def _split_generic(name: str) -> tuple[str, list[str]]:
    """'a.b.List[object]' -> ('list', ['object']); 'x.Dictionary[string,a.List[object]]' -> two args."""
    name = name.strip().strip("'\"").strip()
    if name.startswith("[") and name.endswith("]"):
        name = name[1:-1]
    if "[" not in name or name.endswith("[]"):
        return name.lower().split(".")[-1], []
    base, rest = name.split("[", 1)
    rest = rest[:-1] if rest.endswith("]") else rest
    args, depth, current = [], 0, ""
    for char in rest:
        if char == "," and depth == 0:
            args.append(current)
            current = ""
            continue
        depth += char == "["
        depth -= char == "]"
        current += char
    args.append(current)
    return base.lower().split(".")[-1].split("`")[0], [a.strip() for a in args if a.strip()]


def type_shape(name: str) -> Shape:
    """The shape of a value of the .NET (or PowerShell accelerator) type ``name``."""
    base, args = _split_generic(name)
    if base.endswith("[]") or base == "array":
        return Shape(COLL, "array", element=type_shape(base[:-2]) if base.endswith("[]") else UNKNOWN)
    if base in ("hashtable",):
        return Shape(HASH, "hashtable")
    if base in ("ordered", "ordereddictionary"):
        return Shape(HASH, "ordered")
    if base in _COLLECTION_CLASSES:
        element = type_shape(args[-1]) if args else UNKNOWN
        if base in _DICTIONARY_CLASSES and len(args) < 2:
            element = UNKNOWN
        return Shape(COLL, base, element=element)
    if base in _SCALAR_TYPES:
        return Shape(SCALAR, _SCALAR_TYPES[base])
    return Shape(OBJECT, base)


# ----------------------------------------------------------------------------------------------------------
# Tree helpers


def _children(node: Node, *types: str) -> list[Node]:
    return [c for c in node.children if c.type in types]


def _own_nodes(scope: Node) -> Iterator[Node]:
    """Nodes of a function (or the whole program) without nested function statements."""
    stack = list(reversed(scope.children))
    while stack:
        node = stack.pop()
        if node.type == "function_statement":
            continue
        yield node
        stack.extend(reversed(node.children))


def _scope_of(node: Node) -> Node:
    for parent in pstree.ancestors(node):
        if parent.type == "function_statement":
            return parent
    root = node
    while root.parent is not None:
        root = root.parent
    return root


def _function_label(scope: Node) -> str:
    return pstree.function_name(scope) if scope.type == "function_statement" else ""


def _statements(stmt_list: Node | None) -> list[Node]:
    if stmt_list is None:
        return []
    return [c for c in stmt_list.named_children if c.type not in ("comment", "empty_statement")]


def _block_list(block: Node) -> Node | None:
    lists = _children(block, "statement_list")
    return lists[0] if lists else None


def _compound_blocks(stmt: Node) -> list[Node]:
    """The statement blocks of an if/try/loop statement (clauses included)."""
    found = []
    for child in stmt.children:
        if child.type == "statement_block":
            found.append(child)
        elif child.type in CLAUSES:
            found.extend(_compound_blocks(child))
    return found


def _body_list(function: Node) -> Node | None:
    for child in function.children:
        if child.type == "script_block":
            for part in child.children:
                if part.type == "script_block_body":
                    return _block_list(part)
            return _block_list(child)
    return None


def _type_name(type_literal: Node) -> str:
    return pstree.text(type_literal).strip()[1:-1].strip().lower()


def _cast_type(cast: Node) -> str:
    literals = _children(cast, "type_literal")
    return _type_name(literals[0]) if literals else ""


def _flow_keyword(node: Node) -> str:
    return node.children[0].type if node.type == "flow_control_statement" and node.children else ""


def _flow_value(node: Node) -> Node | None:
    values = [c for c in node.named_children if c.type not in ("comment",)]
    return values[0] if values else None


def _assignment_parts(node: Node) -> tuple[Node, str, Node]:
    left = node.named_children[0]
    ops = _children(node, "assignement_operator")
    op = pstree.text(ops[0]).strip() if ops else "="
    target = pstree.strip(left.named_children[0]) if left.named_children else left
    return target, op, node.named_children[-1]


def _is_null_target(target: Node) -> bool:
    return pstree.variable_name(target) == "null"


def _method_name(node: Node) -> str:
    return pstree.member_name(node) or ""


def _is_script_block_arg(node: Node | None) -> bool:
    return node is not None and pstree.strip(node).type == "script_block_expression"


def _command_of_script_block(block_expr: Node) -> Node | None:
    for parent in pstree.ancestors(block_expr):
        if parent.type == "command":
            return parent
        if parent.type not in _WRAPPERS and parent.type != "command_elements":
            return None
    return None


def _preceded_by_pipe(command: Node) -> bool:
    previous = command.prev_sibling
    while previous is not None and previous.type in ("comment",):
        previous = previous.prev_sibling
    return previous is not None and previous.type == "|"


def _climb_wrappers(node: Node) -> Node:
    """The outermost node that is ``node`` under single-child expression wrappers."""
    current = node
    while current.parent is not None and current.parent.type in _WRAPPERS and len(current.parent.named_children) == 1:
        current = current.parent
    return current


def _uses_caught_error(node: Node) -> bool:
    for item in pstree.walk(node):
        if item.type == "variable" and pstree.variable_name(item) in ("_", "psitem", "error"):
            return True
    return False


def _parameter_matches(given: str, name: str) -> bool:
    given = given.lstrip("-").rstrip(":").lower()
    return bool(given) and name.startswith(given)


# ----------------------------------------------------------------------------------------------------------
# The analysis of one source text


class Library:
    """Parse tree, functions, call graph and shapes of one PowerShell source (memoised, read-only)."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.root = pstree.parse(source)
        self.functions = pstree.functions(self.root)
        self.operations = pstree.operation_table(self.root)
        self._memo: dict[tuple, object] = {}
        self._busy: set[tuple] = set()
        self._stack: list[tuple] = []  # the keys being computed, outermost first
        self._provisional: set[tuple] = set()  # keys whose computation met a cycle above them
        # scope id -> variable -> [(kind, node, op)]; scope id -> (base, steps) -> [(op, rhs)]
        self.defs: dict[int, dict[str, list[tuple[str, Node, str]]]] = {}
        self.chain_defs: dict[int, dict[tuple[str, tuple[str, ...]], list[tuple[str, Node]]]] = {}
        self.calls_by_name: dict[str, list[Node]] = {}
        self._index()

    # -- indexing -------------------------------------------------------------------------------------------

    def _index(self) -> None:
        for node in pstree.walk(self.root):
            if node.type == "assignment_expression":
                scope = _scope_of(node).id
                target, op, rhs = _assignment_parts(node)
                if target.type == "expression_with_unary_operator":  # [int]$x = ...
                    casts = _children(target, "cast_expression")
                    if casts:
                        target = pstree.strip(casts[0].named_children[-1])
                name = pstree.variable_name(target)
                if name is not None:
                    self.defs.setdefault(scope, {}).setdefault(name, []).append(("assign", rhs, op))
                    continue
                found = pstree.chain(target)
                if found is not None:
                    key = (found.base, tuple(found.steps))
                    self.chain_defs.setdefault(scope, {}).setdefault(key, []).append((op, rhs))
            elif node.type == "foreach_statement":
                variables = _children(node, "variable")
                keywords = [i for i, c in enumerate(node.children) if c.type == "in"]
                after_in = node.children[keywords[0] + 1 :] if keywords else []
                collection = [c for c in after_in if c.is_named and c.type != "statement_block"]
                if variables and collection:
                    name = pstree.variable_name(variables[0]) or ""
                    scope = _scope_of(node).id
                    self.defs.setdefault(scope, {}).setdefault(name, []).append(("foreach", collection[0], "="))
            elif node.type == "command":
                bare = pstree.bare_name(pstree.command(node).name)
                if bare in self.functions and "\\" not in pstree.command(node).name:
                    self.calls_by_name.setdefault(bare, []).append(node)
        for function in self.functions.values():
            for name, typename, node in self.parameters(function):
                self.defs.setdefault(function.id, {}).setdefault(name, []).append(("param", node, typename))

    def parameters(self, function: Node) -> list[tuple[str, str, Node]]:
        """(name, type as written in lower case or '', script_parameter node) of a function's param block."""
        key = ("parameters", function.id)
        return self._guard(key, lambda: self._parameters(function), [])  # type: ignore[return-value]

    def _parameters(self, function: Node) -> list[tuple[str, str, Node]]:
        found = []
        for node in pstree.walk(function):
            if node.type != "script_parameter":
                continue
            owners = [p for p in pstree.ancestors(node) if p.type in ("function_statement", "script_block_expression")]
            if not owners or owners[0].id != function.id:
                continue
            variables = _children(node, "variable")
            typename = ""
            for attribute in pstree.walk(node):
                if (
                    attribute.type == "type_literal"
                    and attribute.parent is not None
                    and attribute.parent.type == "attribute"
                ):
                    typename = _type_name(attribute)
            if variables:
                found.append((pstree.variable_name(variables[0]) or "", typename, node))
        return found

    def _guard(self, key: tuple, compute: Callable[[], object], default: object) -> object:
        """``compute()`` once per key; ``default`` for a key met again while it is being computed (a cycle).
        What was computed above that key on the way, with the default standing in for it, is not kept: asked
        again later (from outside the cycle) it gets its own answer, so that no answer depends on the order
        in which the rules ask."""
        if key in self._memo:
            return self._memo[key]
        if key in self._busy:
            self._provisional.update(self._stack[self._stack.index(key) + 1 :])
            return default
        self._busy.add(key)
        self._stack.append(key)
        try:
            value = compute()
        finally:
            self._busy.discard(key)
            self._stack.pop()
        if key in self._provisional:
            self._provisional.discard(key)
        else:
            self._memo[key] = value
        return value

    # -- shapes ---------------------------------------------------------------------------------------------

    def shape(self, node: Node) -> Shape:
        return self._guard(("shape", node.id), lambda: self._shape(node), UNKNOWN)  # type: ignore[return-value]

    def _shape(self, node: Node) -> Shape:
        node = pstree.strip(node)
        kind = node.type
        if kind == "hash_literal_expression":
            return self._hash_literal(node)
        if kind == "expression_with_unary_operator":
            casts = _children(node, "cast_expression")
            if casts:
                return self.shape(casts[0])
            first = node.children[0].type if node.children else ""
            return Shape(COLL, "array") if first == "," else SCALAR_SHAPE
        if kind == "cast_expression":
            typename = _cast_type(node)
            operand = node.named_children[-1]
            if typename == "void":
                return NULL_SHAPE
            if typename == "ordered":
                inner = self.shape(operand)
                return replace(inner, cls="ordered") if inner.kind == HASH else Shape(HASH, "ordered")
            if typename in ("pscustomobject", "psobject"):
                return UNKNOWN
            return type_shape(typename)
        if kind == "array_expression":
            outputs = self.outputs(_block_list(node) if _block_list(node) else None)
            element = _join_all([_element_or_self(o.shape) for o in outputs])
            return Shape(COLL, "array", element=element)
        if kind == "sub_expression":
            return self._statement_value(node)
        if kind in ("string_literal", "expandable_string_literal", "verbatim_string_characters"):
            return Shape(SCALAR, "string")
        if kind == "integer_literal":
            return Shape(SCALAR, "int")
        if kind in ("real_literal", "comparison_expression", "logical_expression", "bitwise_expression"):
            return SCALAR_SHAPE
        if kind == "array_literal_expression":
            return Shape(COLL, "array", element=_join_all([self.shape(c) for c in node.named_children]))
        if kind == "range_expression":
            return Shape(COLL, "array", element=SCALAR_SHAPE)
        if kind == "additive_expression":
            left = self.shape(node.named_children[0])
            return left if left.kind == COLL else UNKNOWN
        if kind == "variable":
            name = pstree.variable_name(node) or ""
            return self.chain_shape(_scope_of(node), name, ())
        if kind in pstree.CHAIN_TYPES:
            found = pstree.chain(node)
            if found is not None:
                return self.chain_shape(_scope_of(node), found.base, tuple(found.steps))
            obj = node.named_children[0]
            if kind == "invokation_expression" and pstree.strip(obj).type == "type_literal":
                method = _method_name(node)
                if method == "new":
                    return type_shape(_type_name(pstree.strip(obj)))
                return UNKNOWN
            if kind == "member_access" and pstree.strip(obj).type == "type_literal":
                return UNKNOWN
            return self._step(self.shape(obj), self._step_of(node), _scope_of(node), None)
        if kind == "command":
            return self._command_shape(node)
        if kind == "pipeline_chain":
            commands = [c for c in node.named_children if c.type == "command"]
            if commands and pstree.bare_name(pstree.command(commands[-1]).name) == "out-null":
                return NULL_SHAPE
            return Shape(PIPE, element=UNKNOWN)
        if kind in COMPOUND:
            return self._statement_value(node)
        if kind in ("script_block_expression", "type_literal"):
            return UNKNOWN
        return UNKNOWN

    def _statement_value(self, node: Node) -> Shape:
        """The value of a compound statement or ``$(...)``: what its statements output."""
        if node.type == "sub_expression":
            outputs = self.outputs(_block_list(node))
        else:
            outputs = self._outputs_of(node, tail=False, loop=node.type in LOOPS)
        return Shape(PIPE, element=_join_all([_element_or_self(o.shape) for o in outputs]))

    def _hash_literal(self, node: Node) -> Shape:
        keys: dict[str, Shape] = {}
        for entry in pstree.walk(node):
            if (
                entry.type != "hash_entry"
                or next((p for p in pstree.ancestors(entry) if p.type == "hash_literal_expression"), None) != node
            ):
                continue
            key = pstree.text(entry.named_children[0]).strip().strip("'\"").lower()
            keys[key] = self.shape(entry.named_children[-1])
        return Shape(HASH, "hashtable", tuple(sorted(keys.items())))

    @staticmethod
    def _step_of(node: Node) -> str:
        if node.type == "member_access":
            return pstree.member_name(node) or "?"
        if node.type == "invokation_expression":
            return (pstree.member_name(node) or "?") + "()"
        index = node.named_children[1:]
        key = pstree.strip(index[0]) if index else None
        if key is not None and key.type == "string_literal":
            return "['%s']" % pstree.text(key).strip("'\"").lower()
        return "[]"

    def chain_shape(self, scope: Node, base: str, steps: tuple[str, ...]) -> Shape:
        key = ("chain", scope.id, base, steps)
        return self._guard(key, lambda: self._chain_shape(scope, base, steps), UNKNOWN)  # type: ignore[return-value]

    def _chain_shape(self, scope: Node, base: str, steps: tuple[str, ...]) -> Shape:
        steps = tuple(s.lower() for s in steps)
        if not steps:
            shape = self._variable_shape(scope, base)
            if shape is None:
                return UNKNOWN
        else:
            parent = self.chain_shape(scope, base, steps[:-1])
            shape = self._step(parent, steps[-1], scope, (base, steps))
        # Enrich with what this function assigns below the chain: $h.key = X, $h[...] = X.
        below = self.chain_defs.get(scope.id, {})
        if shape.kind in (HASH, COLL):
            keys = dict(shape.keys)
            element = shape.element
            for (chain_base, chain_steps), assigned in below.items():
                if chain_base != base or len(chain_steps) != len(steps) + 1 or chain_steps[: len(steps)] != steps:
                    continue
                last = chain_steps[-1]
                values = [self.shape(rhs) for op, rhs in assigned if op == "="]
                value = _join_all(values)
                if value is None:
                    continue
                if last == "[]" or last.startswith("['"):
                    element = join(element, value)
                elif not last.endswith("()") and shape.kind == HASH:
                    keys[last] = join(keys.get(last), value) or value
            shape = replace(shape, keys=tuple(sorted(keys.items())), element=element)
        return shape

    def _variable_shape(self, scope: Node, name: str) -> Shape | None:
        if name in ("true", "false"):
            return SCALAR_SHAPE
        if name == "null":
            return NULL_SHAPE
        if name in ("_", "psitem", "input", "args", "error", "this"):
            return UNKNOWN
        definitions = self.defs.get(scope.id, {}).get(name)
        if not definitions and scope.type == "function_statement":
            root = _scope_of(self.root)
            return self.chain_shape(root, name, ()) if self.defs.get(root.id, {}).get(name) else UNKNOWN
        if not definitions:
            return UNKNOWN
        shapes = []
        for kind, node, extra in definitions:
            if kind == "assign":
                if extra != "=":
                    continue  # '+=' keeps the shape ($a += x on an array is an array): neutral
                shapes.append(self.shape(node))
            elif kind == "foreach":
                collection = self.shape(node)
                shapes.append(_element_or_self(collection) if collection.kind != HASH else collection)
            elif kind == "param":
                shapes.append(self.parameter_shape(scope, name, extra))
        return _join_all(shapes) or UNKNOWN

    def parameter_shape(self, function: Node, name: str, typename: str) -> Shape:
        if typename:
            shape = type_shape(typename)
            return replace(shape, nullable=True) if shape.kind == COLL else shape
        key = ("param", function.id, name)
        return self._guard(key, lambda: self._parameter_shape(function, name), UNKNOWN)  # type: ignore[return-value]

    def _parameter_shape(self, function: Node, name: str) -> Shape:
        calls = self.calls_by_name.get(pstree.function_name(function), [])
        if not calls:
            return UNKNOWN
        shapes: list[Shape] = []
        for call in calls:
            argument = self.call_arguments(function, call).get(name)
            shapes.append(self.shape(argument) if argument is not None else NULL_SHAPE)
        return _join_all(shapes) or UNKNOWN

    def call_arguments(self, function: Node, call: Node) -> dict[str, Node]:
        """Parameter name -> argument node of one call of a library function (named, then positional)."""
        names = [n for n, _t, _node in self.parameters(function)]
        command = pstree.command(call)
        bound: dict[str, Node] = {}
        positional = []
        for given, arg in command.elements:
            if given is None:
                if arg is not None:
                    positional.append(arg)
                continue
            matches = [n for n in names if _parameter_matches(given, n)]
            if len(matches) == 1 and arg is not None:
                bound[matches[0]] = arg
        free = [n for n in names if n not in bound]
        for name, arg in zip(free, positional, strict=False):
            bound[name] = arg
        return bound

    def binding_problem(self, function: Node, call: Node) -> str | None:
        """A typed parameter of the callee that this call's argument may fail to convert to."""
        arguments = self.call_arguments(function, call)
        for name, typename, _node in self.parameters(function):
            if typename in SAFE_PARAMETER_TYPES or name not in arguments:
                continue
            wanted = type_shape(typename)
            given = self.shape(arguments[name])
            if given.kind == NULL or (wanted.kind == SCALAR and given.kind == SCALAR and given.cls == wanted.cls):
                continue
            return "binding %s to [%s]$%s converts it and can fail" % (
                _short(arguments[name], 40),
                typename,
                name,
            )
        return None

    def _step(self, parent: Shape, step: str, scope: Node, chain_key: tuple[str, tuple[str, ...]] | None) -> Shape:
        shape: Shape | None
        if step == "psbase":  # the same object, its own members without the dictionary adapter's keys
            return parent
        if step.endswith("()"):
            method = step[:-2]
            shape = SCALAR_SHAPE if method.startswith(("tostring", "toupper", "tolower", "trim")) else UNKNOWN
        elif step == "[]" or step.startswith("['"):
            if parent.kind == HASH:
                literal = parent.key(step[2:-2]) if step.startswith("['") else None
                shape = literal or (replace(parent.element, nullable=True) if parent.element else None)
            elif parent.kind in (COLL, PIPE):
                shape = parent.element
            else:
                shape = None
        elif parent.kind == HASH:
            shape = parent.key(step)
            if shape is None:
                shape = {"keys": Shape(COLL, "array", element=SCALAR_SHAPE), "values": Shape(COLL, "array")}.get(step)
                shape = shape or (SCALAR_SHAPE if step == "count" else None)
        elif parent.kind == COLL and step in ("count", "length"):
            shape = SCALAR_SHAPE
        else:
            shape = None
        if chain_key is not None:
            assigned = self.chain_defs.get(scope.id, {}).get(chain_key, [])
            values = [self.shape(rhs) for op, rhs in assigned if op == "="]
            shape = _join_all(([shape] if shape is not None else []) + values)
        return shape or UNKNOWN

    def _command_shape(self, node: Node) -> Shape:
        command = pstree.command(node)
        bare = pstree.bare_name(command.name)
        if bare in self.functions and "\\" not in command.name:
            return self.result_shape(bare)
        if bare == "new-object":
            typename = command.argument("-typename")
            if typename is None:
                positional = [arg for given, arg in command.elements if given is None]
                typename = positional[0] if positional else None
            if typename is not None and pstree.strip(typename).type in ("string_literal", "generic_token"):
                return type_shape(pstree.text(pstree.strip(typename)))
            return UNKNOWN
        if bare == "out-null":
            return NULL_SHAPE
        return Shape(PIPE, element=UNKNOWN)

    def result_shape(self, function_name: str) -> Shape:
        """What a caller gets from ``$x = F ...``."""
        key = ("result", function_name)
        return self._guard(key, lambda: self._result_shape(function_name), UNKNOWN)  # type: ignore[return-value]

    def _result_shape(self, function_name: str) -> Shape:
        outputs = self.function_outputs(function_name)
        if not outputs:
            return NULL_SHAPE
        if all(o.single for o in outputs):
            # A returned collection is unrolled, a Dictionary is not: the engine does not enumerate an
            # IDictionary (PowerShell/PowerShell LanguagePrimitives.cs, GetEnumerable).
            shapes = [
                Shape(PIPE, element=o.shape.element)
                if o.shape.kind == PIPE or (o.shape.kind == COLL and o.shape.cls not in _DICTIONARY_CLASSES)
                else o.shape
                for o in outputs
            ]
            joined = _join_all(shapes) or UNKNOWN
            return joined
        return Shape(PIPE, element=_join_all([_element_or_self(o.shape) for o in outputs]))

    # -- outputs --------------------------------------------------------------------------------------------

    def function_outputs(self, function_name: str) -> list[Output]:
        function = self.functions[function_name]
        key = ("outputs", function_name)
        return self._guard(key, lambda: self.outputs(_body_list(function), tail=True), [])  # type: ignore[return-value]

    def outputs(self, stmt_list: Node | None, tail: bool = False, loop: bool = False) -> list[Output]:
        found: list[Output] = []
        statements = _statements(stmt_list)
        for index, statement in enumerate(statements):
            found.extend(self._outputs_of(statement, tail and index == len(statements) - 1, loop))
        return found

    def _outputs_of(self, statement: Node, tail: bool, loop: bool) -> list[Output]:
        kind = statement.type
        if kind == "function_statement":
            return []
        if kind == "flow_control_statement":
            value = _flow_value(statement)
            if _flow_keyword(statement) == "return" and value is not None:
                return [Output(statement, value, self.shape(value), tail=True, loop=False)]
            return []
        if kind in COMPOUND:
            inner_loop = loop or kind in LOOPS
            found = []
            for block in _compound_blocks(statement):
                found.extend(self.outputs(_block_list(block), tail and not inner_loop, inner_loop))
            return found
        value = pstree.strip(statement)
        if not self.produces_output(value):
            return []
        return [Output(statement, value, self.shape(value), tail=tail, loop=loop)]

    def produces_output(self, value: Node) -> bool:
        """False for statements that output nothing (assignments, [void], | Out-Null, silent commands)."""
        if value.type == "assignment_expression":
            return False
        if value.type == "expression_with_unary_operator":
            casts = _children(value, "cast_expression")
            if casts and _cast_type(casts[0]) == "void":
                return False
        if value.type == "pipeline_chain":
            commands = [c for c in value.named_children if c.type == "command"]
            if commands and _preceded_by_pipe(commands[-1]):
                return self.produces_output(commands[-1])
        if value.type == "command":
            command = pstree.command(value)
            bare = pstree.bare_name(command.name)
            if bare in self.functions and "\\" not in command.name:
                return bool(self.function_outputs(bare))
            if any(p.startswith("-pass") for p in command.parameters):
                return True
            return bare not in SILENT_COMMANDS and bare not in WRITE_COMMANDS - OUTPUT_COMMANDS
        if value.type == "invokation_expression":
            return self.returning_method(value) is not None
        return True

    def receiver_class(self, call: Node) -> str:
        obj = pstree.strip(call.named_children[0])
        if obj.type == "type_literal":
            return "static"
        return self.shape(obj).cls

    def returning_method(self, call: Node) -> str | None:
        """The method name when this call returns a value (RETURNING_METHODS and the receiver), else None."""
        method = _method_name(call).lower()
        if method not in RETURNING_METHODS:
            return None
        if self.receiver_class(call) in RETURNING_METHODS[method]:
            return None
        return method

    # -- calls, writes, protection --------------------------------------------------------------------------

    def called_functions(self, function: Node) -> set[str]:
        found = set()
        for node in _own_nodes(function):
            if node.type == "command":
                command = pstree.command(node)
                bare = pstree.bare_name(command.name)
                if bare in self.functions and "\\" not in command.name:
                    found.add(bare)
        return found

    def reachable(self) -> list[str]:
        """Operation functions and everything they call, in a stable order."""
        seen: list[str] = []
        pending = [name for name in self.operations.values() if name in self.functions]
        while pending:
            name = pending.pop(0)
            if name in seen:
                continue
            seen.append(name)
            pending.extend(sorted(self.called_functions(self.functions[name])))
        return seen

    def is_write(self, node: Node) -> bool:
        if node.type == "command":
            return pstree.bare_name(pstree.command(node).name) in WRITE_COMMANDS
        if node.type == "invokation_expression":
            return _method_name(node).lower() in WRITE_METHODS
        return False

    def writes(self, function_name: str) -> bool:
        return bool(self._guard(("writes", function_name), lambda: self._writes(function_name), False))

    def _writes(self, function_name: str) -> bool:
        function = self.functions[function_name]
        for node in _own_nodes(function):
            if self.is_write(node):
                return True
        return any(self.writes(callee) for callee in self.called_functions(function))

    def writing_nodes(self, function: Node) -> list[Node]:
        found = []
        for node in _own_nodes(function):
            if self.is_write(node):
                found.append(node)
            elif node.type == "command":
                command = pstree.command(node)
                bare = pstree.bare_name(command.name)
                if bare in self.functions and "\\" not in command.name and self.writes(bare):
                    found.append(node)
        return found

    @staticmethod
    def protecting_try(node: Node, scope: Node, recording: bool = False) -> tuple[Node | None, str]:
        """The try whose body holds ``node`` and whose catch-all protects it; else (None, why)."""
        why = "it is not inside a try"
        previous = node
        for parent in pstree.ancestors(node):
            if parent.id == scope.id or parent.type == "function_statement":
                break
            if parent.type == "try_statement":
                blocks = _children(parent, "statement_block")
                if blocks and previous.id == blocks[0].id:
                    verdict = _catch_verdict(parent, recording)
                    if verdict is None:
                        return parent, ""
                    why = verdict
                elif why == "it is not inside a try":
                    why = "it is in a catch or finally block, which its try does not protect"
            previous = parent
        return None, why

    # -- rule 2 helpers -------------------------------------------------------------------------------------

    def throw_reason(self, node: Node) -> str | None:
        """Why ``node`` can end the call with an error, or None when it cannot (see the module docstring)."""
        kind = node.type
        if kind == "command":
            command = pstree.command(node)
            if _children(node, "command_name_expr") or _children(node, "command_invokation_operator"):
                return "invokes a command given by value, which can fail"
            bare = pstree.bare_name(command.name)
            if bare in TRUSTED_FUNCTIONS:
                return None
            if bare in self.functions and "\\" not in command.name:
                binding = self.binding_problem(self.functions[bare], node)
                if binding is not None:
                    return "calls %s: %s" % (command.name, binding)
                unsafe = self.unsafe_point(bare)
                if unsafe is None:
                    return None
                where, reason = unsafe
                return "calls %s, which is not item-safe (line %d: %s: %s)" % (
                    command.name,
                    pstree.line(where),
                    _short(where, 60),
                    reason,
                )
            if bare in SAFE_COMMANDS:
                return None
            # A redirection can fail (a file it cannot write): only plain plumbing is safe.
            plumbing = bare in PLUMBING_COMMANDS and bool(command.elements) and not command.redirections
            if plumbing and all(_is_script_block_arg(arg) for _given, arg in command.elements):
                return None
            return "the command %s can fail" % command.name
        if kind == "invokation_expression":
            obj = pstree.strip(node.named_children[0])
            method = _method_name(node).lower()
            if obj.type == "type_literal" and (_type_name(obj).split(".")[-1], method) in SAFE_STATIC_METHODS:
                return None
            return "the method call .%s() can throw" % (_method_name(node) or "?")
        if kind == "cast_expression":
            typename = _cast_type(node)
            if typename in SAFE_CASTS:
                return None
            return "the conversion [%s] can fail" % typename
        if kind in ("member_access", "element_access"):
            obj = node.named_children[0]
            if pstree.strip(obj).type == "type_literal":
                return None
            shape = self.shape(obj)
            if shape.kind == HASH:
                return None
            member = (pstree.member_name(node) or "") if kind == "member_access" else ""
            if shape.kind == COLL and member in ("count", "length"):
                return None
            if kind == "member_access":
                return "reads .%s of %s, not a library-built hashtable (strict mode, property getters)" % (
                    pstree.member_name(node) or "?",
                    shape.describe(),
                )
            return "indexes %s, not a hashtable (an index out of range throws under strict mode)" % shape.describe()
        if kind == "flow_control_statement" and _flow_keyword(node) == "throw":
            return "throws"
        if kind in ("additive_expression", "multiplicative_expression", "format_expression", "range_expression"):
            if len(node.named_children) > 1:
                return "the operator can fail (type conversion)"
            return None
        if kind == "assignment_expression":
            target, op, _rhs = _assignment_parts(node)
            if op == "=":
                return None
            if op == "+=" and self.shape(target).kind == COLL:
                return None
            return "the compound assignment %s can fail" % op
        return None

    def unsafe_point(self, function_name: str) -> tuple[Node, str] | None:
        """The first can-throw node of a function that is not protected; None when it is item-safe."""
        key = ("unsafe", function_name)
        sentinel = (self.functions[function_name], "it calls itself (recursion is not analysed)")
        return self._guard(key, lambda: self._unsafe_point(function_name), sentinel)  # type: ignore[return-value]

    def _unsafe_point(self, function_name: str) -> tuple[Node, str] | None:
        function = self.functions[function_name]
        for node in _own_nodes(function):
            reason = self.throw_reason(node)
            if reason is not None and self.protecting_try(node, function)[0] is None:
                return node, reason
        return None


@dataclass
class Output:
    """One statement of a function (or block) that outputs: ``tail`` when nothing runs after it on its path
    (the last statement, or a ``return``), ``loop`` when it runs once per round of a loop."""

    statement: Node
    value: Node
    shape: Shape
    tail: bool = True
    loop: bool = False

    @property
    def single(self) -> bool:
        return self.tail and not self.loop


def _catch_verdict(try_node: Node, recording: bool) -> str | None:
    """None when the try has a catch-all that does not rethrow (and records the error, if asked)."""
    catches = [c for clauses in _children(try_node, "catch_clauses") for c in _children(clauses, "catch_clause")]
    if not catches:
        return "its try has no catch (only finally)"
    general = [c for c in catches if not _children(c, "catch_type_list")]
    if not general:
        return "its try only catches some exception types (catch [X])"
    why = ""
    for clause in general:
        if any(_flow_keyword(n) == "throw" for n in pstree.walk(clause)):
            why = "its catch rethrows"
            continue
        if not recording or _records_error(clause):
            return None
        why = "its catch does not record the error on its item (<item>.error = ... $_ ...)"
    return why


def _records_error(catch: Node) -> bool:
    for node in pstree.walk(catch):
        if node.type != "assignment_expression":
            continue
        target, op, rhs = _assignment_parts(node)
        found = pstree.chain(target)
        if op == "=" and found is not None and found.steps and found.steps[-1] == "error" and _uses_caught_error(rhs):
            return True
    return False


@functools.lru_cache(maxsize=16)
def analyse(source: str) -> Library:
    return Library(source)


# ----------------------------------------------------------------------------------------------------------
# Rule 1: write-inside-item-try


def write_inside_item_try(source: str) -> list[Violation]:
    """Every write is in the body of a try whose catch-all records the error on its item."""
    lib = analyse(source)
    found = []
    for node in pstree.walk(lib.root):
        if not lib.is_write(node):
            continue
        scope = _scope_of(node)
        protector, why = lib.protecting_try(node, scope, recording=True)
        if protector is None:
            found.append(
                Violation(
                    "write-inside-item-try",
                    pstree.line(node),
                    _short(node),
                    "a write on the target machine is not protected (%s): a failure must be recorded on its "
                    "item (try { write } catch { $item.error = Get-ErrorRecordData -ErrorRecord $_ ... })" % why,
                    _function_label(scope),
                )
            )
    return found


# ----------------------------------------------------------------------------------------------------------
# Rule 2: nothing-throws-after-first-write


def _loop_regions(node: Node, scope: Node) -> list[Node]:
    """The repeated parts of the loops around ``node`` inside ``scope``."""
    regions = []
    for parent in pstree.ancestors(node):
        if parent.id == scope.id:
            break
        if parent.type == "foreach_statement":
            regions.extend(_children(parent, "statement_block"))
        elif parent.type in LOOPS or (
            parent.type == "script_block_expression" and _command_of_script_block(parent) is not None
        ):
            regions.append(parent)
    return regions


def _inside(node: Node, region: Node) -> bool:
    return region.start_byte <= node.start_byte and node.end_byte <= region.end_byte


def nothing_throws_after_first_write(source: str) -> list[Violation]:
    """In operations and what they call: after the first write, everything that can throw is caught."""
    lib = analyse(source)
    found = []
    for name in lib.reachable():
        function = lib.functions[name]
        writes = lib.writing_nodes(function)
        if not writes:
            continue
        first = min(writes, key=lambda n: n.start_byte)
        regions = [(w, region) for w in writes for region in _loop_regions(w, function)]
        for node in _own_nodes(function):
            reason = lib.throw_reason(node)
            if reason is None or lib.protecting_try(node, function)[0] is not None:
                continue
            after = node.start_byte >= first.end_byte
            cause = first
            if not after:
                for write, region in regions:
                    if _inside(node, region):
                        after, cause = True, write
                        break
            if not after:
                continue
            how = "after" if node.start_byte >= cause.end_byte else "in the same loop as"
            found.append(
                Violation(
                    "nothing-throws-after-first-write",
                    pstree.line(node),
                    _short(node),
                    "%s; it runs %s a write (line %d: %s) outside any try/catch, so a failure would end the "
                    "call as a whole-call error (ok: false) although something was written"
                    % (reason, how, pstree.line(cause), _short(cause, 60)),
                    name,
                )
            )
    return sorted(found, key=lambda v: v.line)


# ----------------------------------------------------------------------------------------------------------
# Rule 3: no-stray-output


def _fate_node(node: Node) -> Node:
    """Climb from a producer to the node whose position decides its fate (wrappers, @(X), last of a pipe)."""
    current = _climb_wrappers(node)
    while True:
        parent = current.parent
        if parent is None:
            return current
        if parent.type == "pipeline_chain" and len(parent.named_children) > 1:
            commands = [c for c in parent.named_children if c.type == "command"]
            if commands and commands[-1].id == current.id and _preceded_by_pipe(current):
                current = _climb_wrappers(parent)
                continue
            return current
        if parent.type == "statement_list" and len(_statements(parent)) == 1:
            holder = parent.parent
            if holder is not None and holder.type in ("array_expression", "sub_expression"):
                current = _climb_wrappers(holder)
                continue
        return current


def _discarded(node: Node) -> bool:
    """[void]X, $null = X, X | Out-Null."""
    current = _climb_wrappers(node)
    parent = current.parent
    if parent is None:
        return False
    if parent.type == "cast_expression" and _cast_type(parent) == "void":
        return True
    if parent.type == "assignment_expression" and parent.named_children[-1].id == current.id:
        return _is_null_target(_assignment_parts(parent)[0])
    if parent.type == "pipeline_chain":
        commands = [c for c in parent.named_children if c.type == "command"]
        return bool(commands) and pstree.bare_name(pstree.command(commands[-1]).name) == "out-null"
    return False


def _sink(statement: Node) -> tuple[str, Node | None]:
    """Where the output of a statement goes: function, scriptblock, filter, capture, variable, discarded, top."""
    current = statement
    while True:
        parent = current.parent
        if parent is None or parent.type == "program":
            return "top", None
        kind = parent.type
        if kind in CLAUSES or kind in COMPOUND:
            current = parent
            continue
        if kind == "script_block":
            holder = parent.parent
            if holder is not None and holder.type == "function_statement":
                return "function", holder
            if holder is not None and holder.type == "script_block_expression":
                command = _command_of_script_block(holder)
                if command is not None and pstree.bare_name(pstree.command(command).name) in ("where-object", "?"):
                    return "filter", command
                return "scriptblock", holder
            return "top", None
        if kind in ("array_expression", "sub_expression", "hash_entry"):
            return ("discarded" if _discarded(parent) else "capture"), parent
        if kind == "assignment_expression":
            return ("discarded" if _is_null_target(_assignment_parts(parent)[0]) else "variable"), parent
        current = parent


def _is_statement(node: Node) -> bool:
    return node.parent is not None and node.parent.type == "statement_list"


def no_stray_output(source: str) -> list[Violation]:
    """Inside functions: no value producer whose value joins an output by accident."""
    lib = analyse(source)
    found = []
    for name, function in lib.functions.items():
        for node in _own_nodes(function):
            what = ""
            library_call = False
            if node.type == "invokation_expression":
                method = lib.returning_method(node)
                if method is None:
                    continue
                cls = lib.receiver_class(node) or "a receiver the rule cannot type"
                what = ".%s() returns a value on %s" % (_method_name(node), cls)
            elif node.type == "command":
                command = pstree.command(node)
                bare = pstree.bare_name(command.name)
                if bare in lib.functions and "\\" not in command.name:
                    if not lib.function_outputs(bare):
                        continue
                    library_call = True
                    what = "%s has output" % command.name
                elif any(p.startswith("-pass") for p in command.parameters):
                    what = "%s -PassThru outputs the object" % command.name
                elif bare in OUTPUT_COMMANDS or bare.startswith(OUTPUT_VERBS):
                    what = "%s produces output" % command.name
                else:
                    continue
            else:
                continue
            position = _fate_node(node)
            if not _is_statement(position):
                continue  # assigned, cast, piped on, used as an operand or argument
            sink, holder = _sink(position)
            if sink in ("discarded", "filter", "top"):
                continue
            assert holder is not None  # only "top" has none
            if library_call:
                if sink != "function":
                    continue
                outputs = lib.function_outputs(name)
                mine = [o for o in outputs if o.statement.id == position.id]
                others = [o for o in outputs if o.statement.id != position.id]
                if not mine or mine[0].tail or mine[0].loop or not others:
                    continue  # the function's (last) output, or one round of a loop that collects calls
                where = "it joins the output of %s beside line %d" % (name, pstree.line(others[0].statement))
            elif sink == "function":
                where = "it joins the output of %s" % name
            elif sink == "scriptblock":
                where = "it joins the output of the script block at line %d" % pstree.line(holder)
            elif sink == "variable":
                where = "it joins the value assigned at line %d" % pstree.line(holder)
            else:
                where = "it joins the value built at line %d" % pstree.line(holder)
            found.append(
                Violation(
                    "no-stray-output",
                    pstree.line(node),
                    _short(node),
                    "%s and stands as a statement: %s; discard it ($null = ..., [void](...), | Out-Null)"
                    % (what, where),
                    name,
                )
            )
    return found


# ----------------------------------------------------------------------------------------------------------
# Rule 4: array-through-at


def _pipeline_assignment(lib: Library, rhs: Node) -> bool:
    value = pstree.strip(rhs)
    if value.type in COMPOUND:
        return True
    if value.type == "pipeline_chain":
        return True
    if value.type == "command":
        shape = lib.shape(value)
        command = pstree.command(value)
        if pstree.bare_name(command.name) == "new-object":
            return False
        return not (shape.kind == HASH and not shape.nullable)
    return False


def array_through_at(source: str) -> list[Violation]:
    """A variable assigned from a pipeline is indexed or counted only when assigned through @(...)."""
    lib = analyse(source)
    found = []
    for node in pstree.walk(lib.root):
        if node.type == "element_access":
            obj = node.named_children[0]
            use = "indexed"
        elif node.type == "member_access" and (pstree.member_name(node) or "") == "count":
            obj = node.named_children[0]
            use = "asked .Count"
        else:
            continue
        target = pstree.strip(obj)
        scope = _scope_of(node)
        name = pstree.variable_name(target)
        if name is not None:
            sources = [
                rhs
                for kind, rhs, op in lib.defs.get(scope.id, {}).get(name, [])
                if kind == "assign" and op == "=" and _pipeline_assignment(lib, rhs)
            ]
            if not sources:
                continue
            found.append(
                Violation(
                    "array-through-at",
                    pstree.line(node),
                    _short(node),
                    "$%s is %s but assigned from a pipeline at line %d (%s), which yields nothing, one object or "
                    "an array: assign it through @(...)" % (name, use, pstree.line(sources[0]), _short(sources[0], 60)),
                    _function_label(scope),
                )
            )
        elif target.type in ("command", "pipeline_chain") and _pipeline_assignment(lib, target):
            found.append(
                Violation(
                    "array-through-at",
                    pstree.line(node),
                    _short(node),
                    "the output of a pipeline is %s directly: wrap it in @(...)" % use,
                    _function_label(scope),
                )
            )
    return found


# ----------------------------------------------------------------------------------------------------------
# Rule 5: convertto-json-inputobject


def convertto_json_inputobject(source: str) -> list[Violation]:
    """ConvertTo-Json always gets -InputObject and -Depth, never pipeline input."""
    lib = analyse(source)
    found = []
    for node in pstree.walk(lib.root):
        if node.type != "command" or pstree.bare_name(pstree.command(node).name) != "convertto-json":
            continue
        command = pstree.command(node)
        problems = []
        if _preceded_by_pipe(node):
            problems.append("it is fed by the pipeline (a one-element array is unrolled into its element)")
        if not any(len(p) > 2 and _parameter_matches(p, "inputobject") for p in command.parameters):
            problems.append("-InputObject is missing")
        if not any(len(p) > 2 and _parameter_matches(p, "depth") for p in command.parameters):
            problems.append("-Depth is missing (the default of 2 truncates nested results)")
        if problems:
            found.append(
                Violation(
                    "convertto-json-inputobject",
                    pstree.line(node),
                    _short(node),
                    "; ".join(problems),
                    _function_label(_scope_of(node)),
                )
            )
    return found


# ----------------------------------------------------------------------------------------------------------
# Rule 6: no-ps7-syntax


_PS7_OPERATOR = re.compile(r"\?")


def no_ps7_syntax(source: str) -> list[Violation]:
    """No PowerShell 6/7-only syntax, parameters, commands or variables."""
    lib = analyse(source)
    found = []

    def add(node: Node, message: str) -> None:
        found.append(
            Violation("no-ps7-syntax", pstree.line(node), _short(node), message, _function_label(_scope_of(node)))
        )

    for node in pstree.walk(lib.root):
        kind = node.type
        if kind == "pipeline_chain_tail":
            add(node, "the pipeline chain operators && and || are PowerShell 7 only")
        elif kind == "ERROR" and not any(p.type == "ERROR" for p in pstree.ancestors(node)):
            raw = pstree.text(node)
            if _PS7_OPERATOR.search(raw):
                add(
                    node,
                    "does not parse: a PowerShell 7 operator (?:, ??, ??=, ?. or ?[]); Windows PowerShell 5.1 "
                    "cannot parse it either (the parse test fails on it too)",
                )
            elif re.search(r"\bclean\b", raw, re.IGNORECASE):
                add(node, "does not parse: a clean block (PowerShell 7.3)")
            elif raw.rstrip().endswith("&"):
                add(node, "does not parse: the background operator & (PowerShell 6)")
        elif kind == "named_block":
            if pstree.text(node).lower().startswith("clean"):
                add(node, "a clean block is PowerShell 7.3 only")
        elif kind == "command":
            command = pstree.command(node)
            bare = pstree.bare_name(command.name)
            if bare in PS7_COMMANDS:
                add(node, "%s exists only in PowerShell 6/7" % command.name)
            if bare == "clean" and command.elements and all(_is_script_block_arg(a) for _g, a in command.elements):
                add(node, "a clean block is PowerShell 7.3 only (5.1 runs a command named clean)")
            if bare in PS7_PARAMETERS:
                known, newer = PS7_PARAMETERS[bare]
                for parameter in command.parameters:
                    given = parameter.lstrip("-").rstrip(":")
                    if not given or any(n.startswith(given) for n in known | COMMON_PARAMETERS):
                        continue
                    if any(n.startswith(given) for n in newer):
                        add(node, "%s %s is a PowerShell 6/7 parameter" % (command.name, parameter))
        elif kind == "variable" and (pstree.variable_name(node) or "") in PS7_VARIABLES:
            add(
                node, "%s is a PowerShell 6/7 automatic variable (unset in 5.1: strict mode throws)" % pstree.text(node)
            )
    return found


# ----------------------------------------------------------------------------------------------------------
# Rule 7: count-on-collections


def count_on_collections(source: str) -> list[Violation]:
    """.Count only on values proven to be collections or hashtables."""
    lib = analyse(source)
    found = []
    for node in pstree.walk(lib.root):
        if node.type != "member_access" or (pstree.member_name(node) or "") != "count":
            continue
        obj = node.named_children[0]
        shape = lib.shape(obj)
        if shape.kind in (COLL, HASH):
            continue
        found.append(
            Violation(
                "count-on-collections",
                pstree.line(node),
                _short(node),
                "cannot prove %s is a collection (it is %s): under Set-StrictMode, .Count of a single object "
                "throws in Windows PowerShell 5.1 (PowerShell/PowerShell#2798); use @(...).Count"
                % (_short(obj, 60), shape.describe()),
                _function_label(_scope_of(node)),
            )
        )
    return found


def _assigned_variable(node: Node) -> str | None:
    """The variable an assignment (``$x = ``, ``[int]$x = ``, ``$x += ``) or a foreach loop sets, or None."""
    if node.type == "assignment_expression":
        target = _assignment_parts(node)[0]
        if target.type == "expression_with_unary_operator":  # [int]$x = ...
            casts = _children(target, "cast_expression")
            if casts:
                target = pstree.strip(casts[0].named_children[-1])
        return pstree.variable_name(target)
    if node.type == "foreach_statement":
        variables = _children(node, "variable")
        return pstree.variable_name(variables[0]) if variables else None
    return None


def parameter_not_reassigned(source: str) -> list[Violation]:
    """Rule 8: a function never assigns a variable named like one of its parameters, in any case.

    Variable names ignore case (PowerShell-Docs about_Variables: "Variable names aren't case-sensitive"),
    so ``$names = ...`` in a function with ``param ($Names)`` replaces the parameter's value for every
    later read: a loop over ``$Names`` that started before still runs, a later read does not.
    """
    lib = analyse(source)
    found = []
    for function in lib.functions.values():
        params = set(pstree.function_parameters(function))
        for node in pstree.walk(function):
            name = _assigned_variable(node)
            if name is None or name not in params or _scope_of(node).id != function.id:
                continue
            found.append(
                Violation(
                    "parameter-not-reassigned",
                    pstree.line(node),
                    _short(node),
                    "sets $%s, which is a parameter of %s (variable names ignore case in PowerShell: "
                    "about_Variables); name the local variable otherwise" % (name, pstree.function_name(function)),
                    _function_label(function),
                )
            )
    return found


def _cim_result_variable(command: Node) -> str | None:
    """The variable ``$x = Invoke-CimMethod ...`` assigns the answer to: the command alone in its
    pipeline, that pipeline the right side of a plain assignment to a variable (not ``$null``)."""
    chain = command.parent
    if chain is None or chain.type != "pipeline_chain" or len(_children(chain, "command")) != 1:
        return None
    pipeline = chain.parent
    assignment = pipeline.parent if pipeline is not None and pipeline.type == "pipeline" else None
    if assignment is None or assignment.type != "assignment_expression" or assignment.named_children[-1] != pipeline:
        return None
    target, op, _value = _assignment_parts(assignment)
    name = pstree.variable_name(target)
    return None if op != "=" or name in (None, "null") else name


def cim_method_result_checked(source: str) -> list[Violation]:
    """Rule 9: every Invoke-CimMethod answer is kept in a variable whose ReturnValue its function reads."""
    lib = analyse(source)
    found = []
    for command in pstree.commands(lib.root):
        if pstree.bare_name(command.name) != "invoke-cimmethod":
            continue
        scope = _scope_of(command.node)
        variable = _cim_result_variable(command.node)
        if variable is None:
            problem = "the answer of Invoke-CimMethod is not assigned to a variable on its own"
        elif any(
            node.type == "member_access"
            and (pstree.member_name(node) or "") == "returnvalue"
            and pstree.variable_name(pstree.strip(node.named_children[0])) == variable
            and _scope_of(node).id == scope.id
            for node in pstree.walk(scope)
        ):
            continue
        else:
            problem = "$%s.ReturnValue is never read in this function" % variable
        found.append(
            Violation(
                "cim-method-result-checked",
                pstree.line(command.node),
                _short(command.node),
                problem + ": a WMI method reports failure in its return value, not by throwing "
                "(4096 only starts a job); check it",
                _function_label(scope),
            )
        )
    return found


# ----------------------------------------------------------------------------------------------------------

# Members of a Dictionary[K,V] as a property (anything else is a key lookup through PowerShell's
# dictionary adapter); of a hashtable, the intrinsic ones next to its keys.
DICTIONARY_MEMBERS = frozenset({"count", "keys", "values", "comparer"})
HASHTABLE_MEMBERS = frozenset({"count", "keys", "values"})


def member_names_a_key_or_property(source: str) -> list[Violation]:
    """A member read on a library-built Dictionary names one of its properties; on a hashtable whose keys
    are all known (literal keys, ``$h.key = ...``, no ``$h[...] = ...``), one of those keys."""
    lib = analyse(source)
    found = []
    for node in pstree.walk(lib.root):
        if node.type != "member_access" or pstree.strip(node.named_children[0]).type == "type_literal":
            continue
        name = (pstree.member_name(node) or "").lower()
        obj = pstree.strip(node.named_children[0])
        shape = lib.shape(obj)
        through_psbase = obj.type == "member_access" and (pstree.member_name(obj) or "").lower() == "psbase"
        data_keyed = (shape.kind == COLL and shape.cls in _DICTIONARY_CLASSES) or (
            shape.kind == HASH and shape.element is not None
        )
        if data_keyed and name in DICTIONARY_MEMBERS and not through_psbase and name != "psbase":
            why = (
                "%s holds keys that come from data (%s): a key named '%s' would be read instead of the property; "
                "write .psbase.%s (about_Hash_Tables, 'Handling property name collisions')"
                % (_short(obj, 60), shape.describe(), name, name.capitalize())
            )
        elif shape.kind == COLL and shape.cls in _DICTIONARY_CLASSES and name not in DICTIONARY_MEMBERS | {"psbase"}:
            why = (
                "%s is a Dictionary (%s): PowerShell reads .%s as its key '%s', and without that key (it has no "
                "such property) strict mode throws PropertyNotFoundException; index it (['%s']) if a key is meant"
                % (_short(node.named_children[0], 60), shape.cls, name, name, name)
            )
        elif (
            shape.kind == HASH
            and shape.keys
            and shape.element is None
            and name not in HASHTABLE_MEMBERS
            and shape.key(name) is None
        ):
            why = "%s is a hashtable the library builds with the keys %s: %s is none of them (strict mode throws)" % (
                _short(node.named_children[0], 60),
                ", ".join(k for k, _v in shape.keys),
                name,
            )
        else:
            continue
        found.append(
            Violation(
                "member-names-a-key-or-property", pstree.line(node), _short(node), why, _function_label(_scope_of(node))
            )
        )
    return found


RULES: dict[str, Callable[[str], list[Violation]]] = {
    "write-inside-item-try": write_inside_item_try,
    "nothing-throws-after-first-write": nothing_throws_after_first_write,
    "no-stray-output": no_stray_output,
    "array-through-at": array_through_at,
    "convertto-json-inputobject": convertto_json_inputobject,
    "no-ps7-syntax": no_ps7_syntax,
    "count-on-collections": count_on_collections,
    "parameter-not-reassigned": parameter_not_reassigned,
    "cim-method-result-checked": cim_method_result_checked,
    "member-names-a-key-or-property": member_names_a_key_or_property,
}


def check(source: str) -> list[Violation]:
    """Every rule's violations, by line."""
    found = [v for rule in RULES.values() for v in rule(source)]
    return sorted(found, key=lambda v: (v.line, v.rule))
