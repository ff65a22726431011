"""A script that drives cloud-init's own Hyper-V KVP reporting handler, for the KVP cross-checks.

Run as ``python3 -c EMIT_SCRIPT EVENTS_JSON [POOL_PATH]`` wherever the ``cloudinit`` package is importable (a
test's child process with Debian's unpacked package on its path, or the lab's Linux guest, whose image
installs cloud-init). EVENTS_JSON is a list of ``[kind, name, description]``: kind ``finish`` publishes a
FinishReportingEvent, any other kind a ReportingEvent of that type. Without POOL_PATH the handler writes
its default pool (pool 1, /var/lib/hyperv/.kvp_pool_1). The script waits until the handler has written
everything and prints JSON: cloud-init's version, the pool path, its key prefix, and the records as the handler itself
reads them back (its ``_iterate_kvps``), in file order.
"""

from __future__ import annotations

EMIT_SCRIPT = r"""
import json, sys
from cloudinit import version
from cloudinit.reporting import events
from cloudinit.reporting.handlers import HyperVKvpReportingHandler

wanted = json.loads(sys.argv[1])
handler = HyperVKvpReportingHandler(kvp_file_path=sys.argv[2]) if len(sys.argv) > 2 else HyperVKvpReportingHandler()
for kind, name, description in wanted:
    if kind == "finish":
        handler.publish_event(events.FinishReportingEvent(name, description))
    else:
        handler.publish_event(events.ReportingEvent(kind, name, description))
handler.flush()
print(json.dumps({
    "version": version.version_string(),
    "path": handler._kvp_file_path,
    "prefix": handler.event_key_prefix,
    "records": [[item["key"], item["value"]] for item in handler._iterate_kvps(0)],
}))
"""
