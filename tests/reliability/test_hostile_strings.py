"""Property-based: hostile VM names and ElementNames, end to end through ansible-playbook and the lab.

What Hyper-V accepts: Microsoft documents no character rule for Hyper-V VM names (only Virtual PC's
old IVMVirtualMachine had one), and the lab takes any non-empty string. So the modules refuse only
what cannot be a name at all (empty or only white space) and send everything else, exactly, as data;
the host answers "no VM named ..." for names it does not have. ElementNames are ours to judge
(plugins/plugin_utils/_hvsocket.py check_element_name): a non-empty string of at most 256 characters
without control characters (Unicode category Cc: C0, DEL, C1).

Every string travels as ``!unsafe`` (reliability_support.Unsafe), the way a user hands ansible a
string it must not template. Hypothesis runs derandomized (fixed examples in CI) with few examples;
each example batches many strings into one lab and one playbook.
"""

from __future__ import annotations

import unicodedata
from pathlib import Path

from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st
from reliability_support import escaped_lab, play, run_plays, unsafe
from support.lab_process import Lab

GSI = "guest_service_interface"
SETTINGS = settings(
    max_examples=5,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    # No shrinking: every example costs a lab and a playbook run, and shrinking one failure takes minutes.
    # The failing example is printed as found; add it as an @example to keep it.
    phases=(Phase.explicit, Phase.reuse, Phase.generate),
)

# Pieces a hostile string is made of: PowerShell and shell syntax, Jinja, quotes, line breaks, NUL,
# non-BMP letters and emoji, right-to-left text and marks, combining marks, BOM, odd case mappings.
PIECES = [
    "'",
    '"',
    "$(whoami)",
    "$env:PATH",
    "`",
    "`n",
    ";",
    "&",
    "|",
    "{",
    "}",
    "{{ lookup('pipe', 'id') }}",
    "{% raw %}",
    "@(",
    "<#",
    "#>",
    "%PATH%",
    "\\",
    "*?[]",
    "\r\n",
    "\n",
    "\t",
    "\x00",
    "\x7f",
    "\x85",
    "\u2028",
    "😀",
    "𝔘𝔫𝔦",
    "עברית",
    "\u202e",
    "\u200f",
    "e\u0301",
    "\u0308",
    "\ufeff",
    "ß",
    "İ",
    "ﬁ",
    " ",
    "\u3000",
    "ウェブ",
]
# Any code point except lone surrogates (no UTF-8, no YAML, no Windows string can carry them).
ANY_CHAR = st.characters(exclude_categories=("Cs",))
HOSTILE = st.lists(
    st.one_of(st.sampled_from(PIECES), st.text(ANY_CHAR, min_size=1, max_size=3)), min_size=1, max_size=5
).map("".join)


def lab_fold(name: str) -> str:
    """How the lab (and Hyper-V, ordinal ignore-case) compares VM names."""
    return "".join(u if len(u := ch.upper()) == 1 else ch for ch in name)


VM_NAME = HOSTILE.filter(lambda s: s.strip() != "")
VM_NAMES = st.lists(VM_NAME, min_size=1, max_size=8, unique_by=(lab_fold, str.casefold))


def labfile(names: list[str]) -> dict:
    # "zz-decoy" is never named by a task: it must stay exactly as it was.
    return {"host": {"name": "hv01"}, "vms": [{"name": n, "guest": "none"} for n in [*names, "zz-decoy"]]}


def enabled(state: dict, vm: str, key: str) -> bool:
    return state["vms"][vm]["integration_services"][key]["enabled"]


def new_lab(tmp: Path, labfile_: dict) -> Lab:
    """A lab of its own for each hypothesis example (they share one tmp_path): ``with new_lab(...) as lab``."""
    directory = tmp / ("lab%d" % len(list(tmp.glob("lab*"))))
    directory.mkdir()
    return escaped_lab(directory, labfile_)


@SETTINGS
@example(
    names=[
        'Prüf\'VM "$(whoami)"',
        "a`n;b{c}",
        "cr\r\nlf\x00nul",
        "{{ 7 * 7 }}",
        "𝔘𝔫𝔦 😀",
        "עברית\u202e",
        "e\u0301\u0308",
    ]
)
@given(names=VM_NAMES)
def test_vm_names_arrive_exactly(tmp_path: Path, names: list[str]) -> None:
    with new_lab(tmp_path, labfile(names)) as lab:
        ghosts = [n + "\u00b7ghost" for n in names[:2]]
        tasks = [
            {
                "name": "set",
                "hyperv.integration.vm_integration_service": unsafe({"name": names, "services": {GSI: "enabled"}}),
            },
            {
                "name": "per_vm",
                "hyperv.integration.vm_integration_service": unsafe(
                    {"vms": [{"name": n, "services": {"vss": "disabled"}} for n in names]}
                ),
            },
            {"name": "info", "hyperv.integration.vm_integration_service_info": unsafe({"name": names})},
            {
                "name": "ghost",
                "hyperv.integration.vm_integration_service": unsafe({"name": ghosts, "services": {"vss": "enabled"}}),
                "ignore_errors": True,
            },
        ]
        run = run_plays(tmp_path, lab, [play("hyperv_hosts", tasks)], name="names")
        assert run.rc == 0, run.stdout
        state = lab.state()
        # The host has exactly these VMs, and the named ones, all of them, changed as asked.
        assert sorted(state["vms"]) == sorted([*names, "zz-decoy"])
        assert all(enabled(state, n, GSI) and not enabled(state, n, "vss") for n in names)
        assert not enabled(state, "zz-decoy", GSI) and enabled(state, "zz-decoy", "vss")
        assert state["counters"]["writes"] == 2 * len(names)
        # What the modules return names each VM exactly as sent, in order.
        assert [vm["name"] for vm in run.result("set")["result"]["vms"]] == names
        assert [vm["name"] for vm in run.result("per_vm")["result"]["vms"]] == names
        assert [vm["name"] for vm in run.result("info")["result"]["vms"]] == names
        # Names the host does not have: refused by the host, named in the message, nothing written.
        ghost = run.result("ghost")
        assert ghost["status"] == "failed"
        assert ghost["result"]["missing_vms"] == ghosts
        assert all(repr(g) in ghost["result"]["msg"] for g in ghosts), ghost["result"]["msg"]
        assert "Nothing was changed" in ghost["result"]["msg"]


BLANK = st.text(st.sampled_from(" \t\r\n\u3000\u2028\x85\x0b\x0c\u00a0"), max_size=4)


@SETTINGS
@given(blanks=st.lists(BLANK, min_size=1, max_size=4))
def test_blank_vm_names_are_refused_before_the_host(tmp_path: Path, blanks: list[str]) -> None:
    with new_lab(tmp_path, labfile(["web01"])) as lab:
        tasks = [
            {
                "name": "blank%d" % i,
                "hyperv.integration.vm_integration_service": unsafe({"name": ["web01", b], "services": {GSI: True}}),
                "ignore_errors": True,
            }
            for i, b in enumerate(blanks)
        ]
        run = run_plays(tmp_path, lab, [play("hyperv_hosts", tasks)], name="blank")
        for i in range(len(blanks)):
            result = run.result("blank%d" % i)
            assert result["status"] == "failed"
            assert result["result"]["msg"] == "name: a VM name must not be empty"
        # Refused before anything reached the host: not even web01, named beside it, was touched.
        assert lab.state()["counters"]["commands"] == 0


def element_name_problem(name: str) -> str | None:
    """Why check_element_name refuses ``name`` (its message's words), None when it is valid."""
    if not name.strip():
        return "must be a non-empty string"
    if len(name) > 256:
        return "at most 256 are allowed"
    if any(unicodedata.category(ch) == "Cc" for ch in name):
        return "must not contain control characters"
    return None


ELEMENT_NAME = st.one_of(HOSTILE, BLANK, st.text(ANY_CHAR, min_size=250, max_size=262))
VSOCK_BASE = 40000


def port_guid(port: int) -> str:
    return "%08X-FACB-11E6-BD58-64006A7986D3" % port


@SETTINGS
@example(names=["Agent \"$(Get-Date)\" `n 'é'", "line\nbreak", "del\x7f", "nel\x85", "", "x" * 257, "😀" * 128])
@given(names=st.lists(ELEMENT_NAME, min_size=1, max_size=8))
def test_element_names_arrive_exactly_or_are_refused_clearly(tmp_path: Path, names: list[str]) -> None:
    with new_lab(tmp_path, labfile([])) as lab:
        builtins = lab.state()["hvsocket_registry"]
        register = [
            {
                "name": "reg%d" % i,
                "hyperv.integration.hvsocket_service": unsafe({"name": n, "vsock_port": VSOCK_BASE + i}),
                "ignore_errors": True,
            }
            for i, n in enumerate(names)
        ]
        valid = [i for i, n in enumerate(names) if element_name_problem(n) is None]
        first = run_plays(tmp_path, lab, [play("hyperv_hosts", register)], name="register")
        state = lab.state()
        for i, name in enumerate(names):
            result = first.result("reg%d" % i)
            problem = element_name_problem(name)
            if problem is None:
                assert result["status"] == "ok", result
                assert result["result"]["changed"] is True
                assert result["result"]["name"] == name
                assert state["hvsocket_services"][port_guid(VSOCK_BASE + i)] == name
            else:
                assert result["status"] == "failed"
                assert problem in result["result"]["msg"], (name, result["result"]["msg"])
                assert port_guid(VSOCK_BASE + i) not in state["hvsocket_services"]
        # One host call and one registry write per valid name; refused names never reached the host.
        assert state["counters"]["commands"] == len(valid)
        assert state["counters"]["writes"] == len(valid)

        again = run_plays(tmp_path, lab, [play("hyperv_hosts", register)], name="again")
        assert all(again.result("reg%d" % i)["result"]["changed"] is False for i in valid)
        assert lab.state()["counters"]["writes"] == len(valid)

        # Unregister by ElementName alone: the module finds each entry by its exact name on the host.
        remove = [
            {
                "name": "rm%d" % i,
                "hyperv.integration.hvsocket_service": unsafe({"name": names[i], "state": "absent"}),
            }
            for i in valid
            if names[i] not in [names[j] for j in valid if j < i]  # a name registered twice: removed by id
        ]
        gone = run_plays(tmp_path, lab, [play("hyperv_hosts", remove)], name="remove")
        assert gone.rc == 0, gone.stdout
        assert lab.state()["hvsocket_registry"] == builtins
