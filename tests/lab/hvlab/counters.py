"""Per-endpoint counters. Tests assert on them (e.g. "check mode wrote nothing"), so every
increment happens under a lock: concurrent connections must never lose a count."""

from __future__ import annotations

import threading

FIELDS: tuple[str, ...] = (
    "commands",  # every WinRM Command received, recognised or not
    "calls",  # commands recognised as a library call (a subset of commands)
    "rejected",  # commands answered with exit 1 because something was not recognised
    "writes",  # model mutations that actually changed something (never in check mode)
    "requests",  # HTTP POSTs received, including refused ones (401)
    "bytes_received",  # HTTP request bodies
    "bytes_sent",  # HTTP response bodies
    "put_files",  # ansible put_file commands that wrote a file and answered its sha1 (host endpoint)
    "put_file_bytes",  # bytes those wrote
    "file_copies",  # Copy-VMFile copies a guest took (each also one of writes)
)


class Counters:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[str, int] = dict.fromkeys(FIELDS, 0)

    def add(self, field: str, amount: int = 1) -> None:
        if field not in self._values:
            raise KeyError(field)
        with self._lock:
            self._values[field] += amount

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._values)


def total(snapshots: list[dict[str, int]]) -> dict[str, int]:
    """Sum of several endpoints' counters (the lab-wide figure in `lab state`)."""
    result = dict.fromkeys(FIELDS, 0)
    for snap in snapshots:
        for key, value in snap.items():
            result[key] = result.get(key, 0) + value
    return result
