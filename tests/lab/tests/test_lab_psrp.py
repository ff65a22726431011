"""PowerShell Remoting (MS-PSRP) against the lab: pypsrp's own client (RunspacePool + PowerShell, as
ansible's psrp connection drives it) and one real ansible-playbook run over `ansible_connection: psrp`."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import labclient
import pytest
import requests
import yaml
from pypsrp.complex_objects import PSInvocationState, RunspacePoolState
from pypsrp.exceptions import WSManFaultError
from pypsrp.host import PSHost, PSHostUserInterface
from pypsrp.powershell import PowerShell, RunspacePool
from pypsrp.wsman import WSMan
from support.labspec import lab_spec, vm_spec

REPO = Path(__file__).resolve().parents[3]
POWERSHELL_DIR = REPO / "plugins" / "plugin_utils" / "powershell"
BIN = Path(sys.executable).parent
GSI = "6C09BB55-D683-4DA0-8931-C9BF705F6480"


def real_bootstrap() -> str:
    """The collection's bootstrap as ansible's psrp connection runs it: the shell plugin's
    normalisation (lines stripped, blanks dropped), decoded again from the -EncodedCommand."""
    text = (POWERSHELL_DIR / "bootstrap.ps1").read_text(encoding="utf-8")
    return "\n".join(line.strip() for line in text.splitlines() if line.strip())


def host_library() -> str:
    """The host library as plugins/plugin_utils/_powershell.py library_text() builds it (read, not imported)."""
    return "\n".join(
        (POWERSHELL_DIR / part).read_text(encoding="utf-8")
        for part in ("_prelude.ps1", "hyperv_host.ps1", "_dispatch.ps1")
    )


class Client:
    """pypsrp's client of one lab endpoint: Basic auth over http needs encryption='never'."""

    def __init__(self, lab: Any, max_envelope_size: int = 153600, operation_timeout: int = 20) -> None:
        self.connection = WSMan(
            "127.0.0.1",
            port=lab.lab.endpoints[lab.name].port,
            username=lab.username,
            password=lab.password,
            ssl=False,
            auth="basic",
            encryption="never",
            cert_validation=False,
            max_envelope_size=max_envelope_size,
            operation_timeout=operation_timeout,
            read_timeout=operation_timeout + 10,
            no_proxy=True,
        )
        self.host = PSHost(None, None, False, "Ansible PSRP Host", None, PSHostUserInterface(), None)
        self.pool = RunspacePool(self.connection, host=self.host)
        self.pool.open()

    def run(self, script: str, lines: list[str] | None) -> PowerShell:
        self.host.rc = 0
        ps = PowerShell(self.pool)
        ps.add_script(script, use_local_scope=True)
        ps.invoke(lines)
        return ps

    def call(self, req: dict[str, Any], library: str | None = None) -> tuple[PowerShell, dict[str, Any]]:
        ps = self.run(real_bootstrap(), labclient.stdin_for(req, library).decode().splitlines())
        assert ps.state == PSInvocationState.COMPLETED, [str(e) for e in ps.streams.error]
        stdout = ("\r\n".join(str(o) for o in ps.output)).encode()
        return ps, labclient.Output(self.host.rc or 0, stdout, b"").response(req["nonce"])

    def close(self) -> None:
        self.pool.close()


@pytest.fixture
def client_of() -> Iterator[Any]:
    clients: list[Client] = []

    def factory(lab: Any, **kwargs: Any) -> Client:
        client = Client(lab, **kwargs)
        clients.append(client)
        return client

    yield factory
    for client in clients:
        if client.pool.state == RunspacePoolState.OPENED:
            client.close()


def test_pool_opens_and_the_real_bootstrap_call_answers(basic_lab: Any, client_of: Any) -> None:
    client = client_of(basic_lab)
    assert client.pool.state == RunspacePoolState.OPENED
    assert client.pool.protocol_version == "2.3"
    assert client.pool.application_private_data.data["PSVersionTable"]["PSVersion"].startswith("5.1")
    req = labclient.request("vm_integration_service_info", {"vm_names": ["web01"]})
    ps, response = client.call(req, host_library())
    assert response["ok"], response
    assert [vm["name"] for vm in response["result"]["vms"]] == ["web01"]
    assert str(ps.output[0]) == f"HYPERV_INTEGRATION_BEGIN_{req['nonce']}"
    assert client.host.rc == 0 and not ps.had_errors

    changes = [{"guid": GSI, "enabled": True}]
    req = labclient.request("vm_integration_service_set", {"vm_names": ["web01"], "changes": changes})
    _ps, response = client.call(req, host_library())
    assert response["ok"], response
    counters = basic_lab.counters()
    assert (counters["commands"], counters["calls"], counters["writes"], counters["rejected"]) == (2, 2, 1, 0)
    recent = basic_lab.state()["endpoints"]["hv01"]["recent_commands"]
    assert recent[-1]["command_line"] == "psrp pipeline: # hyperv.integration bootstrap protocol=1"
    assert recent[-1]["operation"] == "vm_integration_service_set" and recent[-1]["transport"] == "psrp"
    client.close()
    assert basic_lab.state()["endpoints"]["hv01"]["open_shells"] == 0


def test_other_scripts_and_shapes_fail_loudly(basic_lab: Any, client_of: Any) -> None:
    client = client_of(basic_lab)
    ps = client.run("Get-Process", None)
    assert ps.state == PSInvocationState.FAILED and ps.had_errors
    message = str(ps.streams.error[0])
    assert "not the hyperv.integration bootstrap" in message and "'Get-Process'" in message

    req = labclient.request("vm_integration_service_info", {"vm_names": None})
    ps = PowerShell(client.pool)
    ps.add_script(real_bootstrap(), use_local_scope=True).add_statement().add_script("exit 0")
    ps.invoke(labclient.stdin_for(req).decode().splitlines())
    assert ps.state == PSInvocationState.FAILED
    assert "the pipeline has 2 commands" in str(ps.streams.error[0])

    ps = client.run(real_bootstrap(), ["only one line"])
    assert ps.state == PSInvocationState.FAILED
    assert "exactly two non-empty base64 lines" in str(ps.streams.error[0])
    counters = basic_lab.counters()
    assert (counters["commands"], counters["calls"], counters["rejected"]) == (3, 0, 3)


def test_other_configuration_is_refused(basic_lab: Any) -> None:
    wsman = WSMan(
        "127.0.0.1",
        port=basic_lab.lab.endpoints["hv01"].port,
        username=basic_lab.username,
        password=basic_lab.password,
        ssl=False,
        auth="basic",
        encryption="never",
        no_proxy=True,
    )
    pool = RunspacePool(wsman, configuration_name="Microsoft.PowerShell32")
    with pytest.raises(WSManFaultError, match=r"Microsoft\.PowerShell32 session configuration"):
        pool.open()


def test_language_mode_fault_answers_one_line_and_exit_1(make_lab: Any, client_of: Any) -> None:
    lab = make_lab(lab_spec(vm_spec("web01"), faults=[{"type": "language_mode", "mode": "ConstrainedLanguage"}]))
    client = client_of(lab)
    req = labclient.request("vm_integration_service_info", {"vm_names": None})
    ps = client.run(real_bootstrap(), labclient.stdin_for(req).decode().splitlines())
    # `exit 1` in a remote pipeline: SetShouldExit(1) to the client's host, the pipeline Completed.
    assert ps.state == PSInvocationState.COMPLETED and not ps.had_errors
    assert [str(o) for o in ps.output] == ["HYPERV_INTEGRATION_UNSUPPORTED language_mode=ConstrainedLanguage"]
    assert client.host.rc == 1
    assert lab.counters()["calls"] == 1


@pytest.mark.parametrize(
    ("mode", "says"),
    [
        ("NoLanguage", "The syntax is not supported by this runspace"),
        ("RestrictedLanguage", "Assignment statements are not allowed in restricted language mode"),
    ],
)
def test_a_jea_language_mode_refuses_the_bootstrap_itself(make_lab: Any, client_of: Any, mode: str, says: str) -> None:
    # A JEA session configuration: the bootstrap cannot be parsed, so it answers nothing (protocol doc section 6).
    spec = lab_spec(vm_spec("web01"), faults=[{"type": "language_mode", "mode": mode}])
    spec["host"]["connection"] = "psrp"
    lab = make_lab(spec)
    client = client_of(lab)
    req = labclient.request("vm_integration_service_info", {"vm_names": None})
    ps = client.run(real_bootstrap(), labclient.stdin_for(req).decode().splitlines())
    assert ps.state == PSInvocationState.FAILED and ps.had_errors
    assert list(ps.output) == [] and not client.host.rc  # no SetShouldExit: nothing ran
    assert says in str(ps.streams.error[0])
    assert lab.counters()["writes"] == 0


@pytest.mark.parametrize("at", ["receive", "send"])
def test_a_dropped_connection_runs_the_pipeline_only_when_it_drops_at_receive(
    make_lab: Any, client_of: Any, at: str
) -> None:
    lab = make_lab(lab_spec(vm_spec("web01"), faults=[{"type": "drop_connection", "at": at, "times": 1}]))
    client = client_of(lab)
    req = labclient.request(
        "vm_integration_service_set", {"vm_names": ["web01"], "changes": [{"guid": GSI, "enabled": True}]}
    )
    with pytest.raises(requests.exceptions.ConnectionError):
        client.run(real_bootstrap(), labclient.stdin_for(req).decode().splitlines())
    counters = lab.counters()
    if at == "receive":  # it ran and wrote; only the answer was lost
        assert (counters["commands"], counters["calls"], counters["writes"]) == (1, 1, 1)
    else:  # it never ran
        assert (counters["commands"], counters["calls"], counters["writes"], counters["rejected"]) == (1, 0, 0, 0)
        state = lab.state()["endpoints"]["hv01"]["recent_commands"][-1]["state"]
        assert state == "aborted (drop_connection at send)"


def test_delay_is_waited_out_over_operation_timeouts(make_lab: Any, client_of: Any) -> None:
    lab = make_lab(lab_spec(vm_spec("web01"), faults=[{"type": "delay", "seconds": 2.5, "times": 1}]))
    client = client_of(lab, operation_timeout=1)
    req = labclient.request("vm_integration_service_info", {"vm_names": None})
    started = time.monotonic()
    _ps, response = client.call(req)
    assert response["ok"] and time.monotonic() - started >= 2.4
    assert lab.counters()["calls"] == 1


def test_multi_fragment_input_and_output(make_lab: Any, client_of: Any) -> None:
    lab = make_lab(lab_spec(*[vm_spec(f"vm{i:03d}-" + "x" * 60) for i in range(120)]))
    client = client_of(lab, max_envelope_size=16384)  # pypsrp keeps a non-default size
    names = [f"vm{i:03d}-" + "x" * 60 for i in range(120)] + ["absent-" + "y" * 200] * 40
    req = labclient.request("vm_integration_service_info", {"vm_names": names})
    requests_before = lab.counters()["requests"]
    ps, response = client.call(req)
    assert response["ok"], response
    assert len(response["result"]["vms"]) == 120 and len(response["result"]["missing"]) >= 1
    answer = sum(len(str(o)) for o in ps.output)
    assert answer > 3 * 16384  # the answer spans several Receives
    # Command + several Sends (request larger than one envelope) + several Receives.
    assert lab.counters()["requests"] - requests_before > 6
    assert lab.counters()["calls"] == 1


def test_ansible_psrp_put_file_script_on_the_host(basic_lab: Any, client_of: Any) -> None:
    from ansible.executor.powershell.module_manifest import _bootstrap_powershell_script

    client = client_of(basic_lab)
    path = "C:\\Users\\lab-admin\\AppData\\Local\\Temp\\psrp.bin"
    script, in_data = _bootstrap_powershell_script("psrp_put_file.ps1", {"Path": path}, has_input=True)
    data = bytes(range(256)) * 40
    lines = in_data.decode().splitlines() + [
        base64.b64encode(data[i : i + 3000]).decode() for i in range(0, len(data), 3000)
    ]
    ps = client.run(script, lines)
    assert ps.state == PSInvocationState.COMPLETED, [str(e) for e in ps.streams.error]
    assert json.loads(str(ps.output[0])) == {"sha1": hashlib.sha1(data).hexdigest()}
    assert basic_lab.state()["host"]["files"][path] == len(data)
    counters = basic_lab.counters()
    assert (counters["put_files"], counters["put_file_bytes"], counters["calls"]) == (1, len(data), 1)

    guest = basic_lab.guest("web01")
    guest_client = client_of(guest)
    ps = guest_client.run(script, lines)
    assert ps.state == PSInvocationState.FAILED
    assert "only the Hyper-V host endpoint has a file system" in str(ps.streams.error[0])


@pytest.mark.skipif(
    not (BIN / "ansible-playbook").exists(), reason="ansible-playbook not installed next to this python"
)
def test_ansible_playbook_over_psrp(basic_lab: Any, tmp_path: Path) -> None:
    host_vars = {
        "ansible_host": "127.0.0.1",
        "ansible_port": basic_lab.lab.endpoints["hv01"].port,
        "ansible_connection": "psrp",
        "ansible_user": basic_lab.username,
        "ansible_password": basic_lab.password,
        "ansible_psrp_protocol": "http",
        "ansible_psrp_auth": "basic",
        "ansible_psrp_message_encryption": "never",
        "ansible_psrp_cert_validation": "ignore",
        "ansible_psrp_ignore_proxy": True,
    }
    (tmp_path / "inventory.yml").write_text(yaml.safe_dump({"all": {"hosts": {"hv01": host_vars}}}), encoding="utf-8")
    (tmp_path / "site.yml").write_text(
        """
- hosts: hv01
  gather_facts: false
  tasks:
    - hyperv.integration.vm_integration_service_info: {}
      register: info
    - hyperv.integration.vm_integration_service_info: {name: [web01]}
      register: one
    - ansible.builtin.copy:
        dest: "{{ playbook_dir }}/out.json"
        content: "{{ {'info': info, 'one': one} | to_json }}"
      delegate_to: localhost
""",
        encoding="utf-8",
    )
    env = dict(
        os.environ,
        ANSIBLE_COLLECTIONS_PATH=str(REPO / ".cache" / "collections"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_RETRY_FILES_ENABLED="0",
        ANSIBLE_LOCAL_TEMP=str(tmp_path / "tmp"),
        ANSIBLE_PYTHON_INTERPRETER=sys.executable,
    )
    result = subprocess.run(
        [str(BIN / "ansible-playbook"), "-i", "inventory.yml", "site.yml"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = json.loads((tmp_path / "out.json").read_text(encoding="utf-8"))
    assert [vm["name"] for vm in out["info"]["vms"]] == ["web01", "db01", "bare"]
    assert [vm["name"] for vm in out["one"]["vms"]] == ["web01"]
    counters = basic_lab.counters()
    assert (counters["commands"], counters["calls"], counters["rejected"]) == (2, 2, 0)


def test_fragments_of_two_objects_interleaved_are_refused() -> None:
    import struct

    from hvlab import psrp_messages

    def fragment(object_id: int, fragment_id: int, start: bool, end: bool, blob: bytes) -> bytes:
        # [MS-PSRP] 2.2.4: ObjectId, FragmentId (8 bytes each, big-endian), flags (Start 0x1, End 0x2), length.
        flags = (0x1 if start else 0) | (0x2 if end else 0)
        return struct.pack(">QQBI", object_id, fragment_id, flags, len(blob)) + blob

    defrag = psrp_messages.Defragmenter()
    assert defrag.feed(fragment(1, 0, True, False, b"half")) == []
    with pytest.raises(psrp_messages.PsrpError, match="while object 1 is still partial"):
        defrag.feed(fragment(2, 0, True, True, b"other"))
