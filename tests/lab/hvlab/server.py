"""The lab process started (detached) by `lab up`: builds the model from the LABFILE, serves the
WinRM endpoints and the control endpoint, writes DIR/inventory.yml and DIR/lab.json (the readiness
signal `lab up` waits for), and runs until `lab down` asks it to stop."""

from __future__ import annotations

import json
import logging
import os
import secrets
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import yaml

from . import control, labfile, wsman
from .counters import Counters, total
from .faults import FaultSet
from .hyperv_host import HyperVHost
from .hyperv_ops import HostOperations
from .protocol import Dispatcher

log = logging.getLogger("hvlab")
INFO_FILE = "lab.json"
CREDENTIALS_FILE = "credentials.json"
INVENTORY_FILE = "inventory.yml"


class Lab:
    def __init__(self, spec: labfile.LabSpec, username: str, password: str) -> None:
        counters = Counters()
        self.host = HyperVHost(spec.host_name, spec.language, counters)
        for vm in spec.vms:
            self.host.add_vm(vm)
        self.host_faults = FaultSet(spec.faults)
        operations = HostOperations(self.host, self.host_faults)
        backend = Dispatcher(operations.table(), operations.before_call)
        # Endpoints by inventory name; Windows guest doubles will be added here with their own
        # backend, faults and counters.
        self.endpoints: dict[str, wsman.Endpoint] = {
            spec.host_name: wsman.Endpoint(
                spec.host_name, "hyperv_host", backend, self.host_faults, counters, username, password
            ),
        }
        self.started = time.time()

    def start(self) -> None:
        for endpoint in self.endpoints.values():
            wsman.start(endpoint)

    def stop(self) -> None:
        for endpoint in self.endpoints.values():
            wsman.stop(endpoint)

    def state(self) -> dict[str, Any]:
        model = self.host.snapshot()
        endpoints = {name: ep.snapshot() for name, ep in self.endpoints.items()}
        host_ep = self.endpoints[self.host.name]
        return {
            "vms": model["vms"],
            "hvsocket_services": model["hvsocket_services"],
            "counters": total([ep["counters"] for ep in endpoints.values()]),
            "host": {
                "name": self.host.name,
                "language": self.host.language,
                "url": host_ep.url,
                "counters": host_ep.counters.snapshot(),
            },
            "endpoints": endpoints,
            "lab": {"pid": os.getpid(), "started": self.started},
        }

    def inventory(self, username: str, password: str) -> dict[str, Any]:
        host_ep = self.endpoints[self.host.name]
        host_vars = {
            "ansible_host": "127.0.0.1",
            "ansible_port": host_ep.port,
            "ansible_connection": "winrm",
            "ansible_winrm_transport": "basic",
            "ansible_winrm_scheme": "http",
            "ansible_user": username,
            "ansible_password": password,
            "ansible_shell_type": "powershell",
            "ansible_winrm_server_cert_validation": "ignore",
        }
        return {"all": {"children": {"hyperv_hosts": {"hosts": {self.host.name: host_vars}}}}}


def _write_private(path: Path, text: str) -> None:
    """Write atomically (readers never see half a file), readable by the owner only."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(tmp, path)


def serve(labfile_path: str, directory: str, launch_id: str) -> int:
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    root = Path(directory)
    try:
        spec = labfile.load(labfile_path)
    except labfile.LabfileError as exc:
        print(f"lab up: {exc}", file=sys.stderr, flush=True)
        return 2
    credentials = json.loads((root / CREDENTIALS_FILE).read_text(encoding="utf-8"))
    lab = Lab(spec, credentials["username"], credentials["password"])
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    lab.start()
    token = secrets.token_hex(16)
    ctl = control.start(token, lab.state, stop.set)

    inventory = yaml.safe_dump(
        lab.inventory(credentials["username"], credentials["password"]), sort_keys=False, allow_unicode=True
    )
    _write_private(root / INVENTORY_FILE, "# Written by tests/lab/lab up; valid while this lab runs.\n" + inventory)
    info = {
        "launch_id": launch_id,
        "pid": os.getpid(),
        "labfile": str(Path(labfile_path).resolve()),
        "control_url": f"http://127.0.0.1:{ctl.server_address[1]}",
        "control_token": token,
        "endpoints": {name: ep.url for name, ep in lab.endpoints.items()},
        "inventory": str(root / INVENTORY_FILE),
    }
    _write_private(root / INFO_FILE, json.dumps(info, indent=2, ensure_ascii=False))
    log.info(
        "lab ready: host %s (%s, %d VMs) at %s",
        spec.host_name,
        spec.language,
        len(spec.vms),
        lab.endpoints[spec.host_name].url,
    )

    while not stop.wait(0.5):
        pass
    log.info("stopping")
    lab.stop()
    ctl.shutdown()
    ctl.server_close()
    try:
        if json.loads((root / INFO_FILE).read_text(encoding="utf-8")).get("launch_id") == launch_id:
            (root / INFO_FILE).unlink()
    except (OSError, ValueError):
        pass
    log.info("stopped")
    return 0
