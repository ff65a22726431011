# Copyright: (c) 2026, hyperv.integration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin for hyperv.integration.vm_file_copy (documentation: plugins/modules)."""

from __future__ import annotations

import hashlib
import os
import typing as t
import uuid

from ansible.errors import AnsibleError
from ansible.module_utils.common.text.converters import to_bytes, to_text

from ansible_collections.hyperv.integration.plugins.module_utils.argument_error import ArgumentError
from ansible_collections.hyperv.integration.plugins.module_utils.ic_catalog import by_key
from ansible_collections.hyperv.integration.plugins.plugin_utils import _file_copy, _guest_path
from ansible_collections.hyperv.integration.plugins.plugin_utils._call_failure import CallFailed
from ansible_collections.hyperv.integration.plugins.plugin_utils._host_action import HostAction
from ansible_collections.hyperv.integration.plugins.plugin_utils._host_args import vm_names
from ansible_collections.hyperv.integration.plugins.plugin_utils._host_report import vm_resolution_problem
from ansible_collections.hyperv.integration.plugins.plugin_utils._requests import build_params

# Kept equal to DOCUMENTATION by tests/unit/plugins/action/test_argument_specs.py.
ARGUMENT_SPEC: dict[str, t.Any] = {
    "name": {"type": "raw", "required": True, "aliases": ["vm", "vm_name"]},
    "src": {"type": "path", "required": True},
    "remote_src": {"type": "bool", "default": False},
    "dest": {"type": "str", "required": True},
    "create_dirs": {"type": "bool", "default": False},
    "force": {"type": "bool", "default": False},
    "skip_unready": {"type": "bool", "default": False},
}

_CHUNK = 1 << 20


def local_digest(path: str) -> tuple[str, int]:
    """SHA-256 (lower-case hex) and size of a file on the controller, read in pieces (a file may be large)."""
    digest = hashlib.sha256()
    size = 0
    with open(to_bytes(path, errors="surrogate_or_strict"), "rb") as handle:
        for block in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size


class ActionModule(HostAction):
    ARGUMENT_SPEC = ARGUMENT_SPEC

    def run_host(self, result: dict[str, t.Any], args: dict[str, t.Any]) -> dict[str, t.Any]:
        names = vm_names(args["name"])
        dest = args["dest"]
        _guest_path.check_destination(dest)
        key = _guest_path.record_key(dest)
        remote_src = args["remote_src"]
        local = None
        if remote_src:
            _guest_path.check_host_source(args["src"])
        else:
            local = self._local_source(args["src"])
        result.update(dest=dest, src=args["src"])

        plan = self.call_host(
            "vm_file_copy_plan",
            build_params(
                "vm_file_copy_plan",
                vm_names=names,
                gsi_guid=by_key("guest_service_interface").host_guid,
                record_key=key,
                source=args["src"] if remote_src else None,
            ),
            writes=False,
        )
        problem = vm_resolution_problem(self.host, plan)
        if problem:
            result.update(failed=True, changed=False, msg=problem + ". Nothing was copied.")
            if plan.get("missing"):
                result["missing_vms"] = plan["missing"]
            return result
        if remote_src:
            if plan.get("source_error") or not plan.get("source"):
                reason = (plan.get("source_error") or {}).get("message")
                raise ArgumentError(
                    "src %r cannot be read on Hyper-V host %s: %s. Nothing was copied."
                    % (args["src"], self.host, reason)
                )
            checksum, size = plan["source"]["sha256"], int(plan["source"]["size"])
        else:
            assert local is not None
            checksum, size = local_digest(local)
        result.update(checksum=checksum, size=size)

        unready = [(vm["name"], why) for vm in plan.get("vms") or [] if (why := _file_copy.unready_reason(vm))]
        if unready and not args["skip_unready"]:
            result.update(failed=True, changed=False, msg=_file_copy.unready_message(self.host, unready))
            return result
        skipped = dict(unready)
        entries = [
            _file_copy.vm_entry(vm, checksum, args["force"], skipped.get(vm["name"])) for vm in plan.get("vms") or []
        ]
        if unready:
            result["warnings"] = [_file_copy.skipped_warning(self.host, unready)]
        wanted = [entry for entry in entries if entry["needs_copy"]]
        if self._task.diff:
            result["diff"] = _file_copy.diff_of(entries, dest)
        if not wanted or self._task.check_mode:
            for entry in wanted:
                entry["changed"] = True  # check mode: what would be copied
            result.update(changed=bool(wanted), vms=_file_copy.finish(entries))
            return result

        failed = self._copy(result, args, entries, local, key, checksum, str(plan.get("temp_dir") or ""))
        result.update(changed=any(entry["changed"] for entry in entries), vms=_file_copy.finish(entries))
        if failed:
            copied = [entry["name"] for entry in entries if entry["changed"]]
            result.update(
                failed=True,
                msg="Hyper-V host %s: copying %s to %s failed for %d VM(s): %s. Copied to: %s. Rerun the task to "
                "converge."
                % (self.host, args["src"], dest, len(failed), "; ".join(failed), ", ".join(copied) or "none"),
            )
        return result

    def _local_source(self, src: str) -> str:
        """The controller's file, found as ansible.builtin.copy finds it (role files/, vault decrypted)."""
        try:
            found = self._find_needle("files", src)
        except AnsibleError as exc:
            raise ArgumentError("src %r: %s. Nothing was copied." % (src, to_text(exc))) from exc
        if os.path.isdir(to_bytes(found, errors="surrogate_or_strict")):
            raise ArgumentError("src %r is a directory; vm_file_copy copies one file. Nothing was copied." % src)
        return self._loader.get_real_file(found, decrypt=True)

    def _copy(
        self,
        result: dict[str, t.Any],
        args: dict[str, t.Any],
        entries: list[dict[str, t.Any]],
        local: str | None,
        key: str,
        checksum: str,
        temp_dir: str,
    ) -> list[str]:
        """The upload (unless remote_src) and the one copy call; the VMs' errors. The upload is removed from
        the host in every case: by the copy call, or by a cleanup call when that call did not answer."""
        source = args["src"]
        upload = None
        if local is not None:
            upload = _guest_path.upload_path(temp_dir, uuid.uuid4().hex)
            try:
                self._connection.put_file(local, upload)
            except Exception as exc:  # any transport failure: the partial upload must go too
                raise CallFailed(
                    "Hyper-V host %s: sending %s to %s failed: %s. Nothing was copied to any VM. %s"
                    % (self.host, source, upload, to_text(exc), self._cleanup(upload))
                ) from exc
            source = upload
        params = build_params(
            "vm_file_copy",
            vm_names=[entry["name"] for entry in entries if entry["needs_copy"]],
            source=source,
            remove_source=upload is not None,
            destination=args["dest"],
            create_dirs=args["create_dirs"],
            record_key=key,
            record_value=_file_copy.record_value(checksum),
        )
        try:
            answer = self.call_host("vm_file_copy", params, writes=True)
        except CallFailed as exc:
            if upload is None:
                raise
            raise CallFailed("%s %s" % (exc, self._cleanup(upload))) from exc
        failed = _file_copy.apply_copies(entries, answer)
        if upload is not None:
            note = _file_copy.removal_note(self.host, upload, answer)
            if note:
                result.setdefault("warnings", []).append(note)
        return failed

    def _cleanup(self, upload: str) -> str:
        """Remove the upload after a failure (one more library call); a sentence saying how it went."""
        params = build_params(
            "vm_file_copy",
            vm_names=[],
            source=upload,
            remove_source=True,
            destination="",
            create_dirs=False,
            record_key="",
            record_value="",
        )
        try:
            answer = self.call_host("vm_file_copy", params, writes=True)
        except CallFailed as exc:
            return "The temporary file %s may still be on the host (%s); remove it by hand." % (upload, exc)
        return _file_copy.removal_note(self.host, upload, answer) or "The temporary file %s was removed." % upload
