# Copyright: (c) 2026, hyperv.integration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin for hyperv.integration.vm_file_copy (documentation: plugins/modules)."""

from __future__ import annotations

import hashlib
import ntpath
import os
import typing as t

from ansible.errors import AnsibleError
from ansible.module_utils.common.text.converters import to_bytes, to_text

from ansible_collections.hyperv.integration.plugins.module_utils.argument_error import ArgumentError
from ansible_collections.hyperv.integration.plugins.module_utils.ic_catalog import by_key
from ansible_collections.hyperv.integration.plugins.plugin_utils import _file_copy, _guest_path, _host_changes
from ansible_collections.hyperv.integration.plugins.plugin_utils._call_failure import CallFailed
from ansible_collections.hyperv.integration.plugins.plugin_utils._host_action import HostAction
from ansible_collections.hyperv.integration.plugins.plugin_utils._host_args import vm_names, vms_entry_name
from ansible_collections.hyperv.integration.plugins.plugin_utils._requests import build_params

# Kept equal to DOCUMENTATION by tests/unit/plugins/action/test_argument_specs.py.
ARGUMENT_SPEC: dict[str, t.Any] = {
    "name": {"type": "raw", "aliases": ["vm", "vm_name"]},
    "src": {"type": "path", "required": True},
    "remote_src": {"type": "bool", "default": False},
    "dest": {"type": "str"},
    "create_dirs": {"type": "bool"},
    "vms": {
        "type": "list",
        "elements": "dict",
        "options": {
            "name": {"type": "raw", "required": True},
            "dest": {"type": "str", "required": True},
            "create_dirs": {"type": "bool", "default": False},
        },
    },
    "force": {"type": "bool", "default": False},
    "skip_unready": {"type": "bool", "default": False},
}

_CHUNK = 1 << 20


def _target(vm: str | None, dest: t.Any, create_dirs: bool, where: str) -> dict[str, t.Any]:
    """One entry of the library's targets, its destination checked (ArgumentError naming ``where``)."""
    if not isinstance(dest, str):
        raise ArgumentError("%sdest must be a string. Nothing was copied." % where)
    try:
        _guest_path.check_destination(dest)
        key = _guest_path.record_key(dest)
    except ArgumentError as exc:
        raise ArgumentError(where + str(exc)) from exc
    return {"vm": vm, "destination": dest, "create_dirs": bool(create_dirs), "record_key": key}


def requests_from(args: dict[str, t.Any]) -> tuple[list[str], list[dict[str, t.Any]]]:
    """VM names and the library's targets, from name/dest/create_dirs or from vms."""
    if args.get("vms") is not None:
        if any(args.get(option) is not None for option in ("name", "dest", "create_dirs")):
            raise ArgumentError("give either vms, or name, dest and create_dirs, not both")
        names: list[str] = []
        seen: set[str] = set()
        targets = []
        for entry in args["vms"]:
            name = vms_entry_name(entry, seen)
            names.append(name)
            targets.append(_target(name, entry.get("dest"), entry.get("create_dirs"), "vms: VM %r: " % name))
        if not names:
            raise ArgumentError("vms must name at least one VM")
        return names, targets
    if args.get("name") is None or args.get("dest") is None:
        raise ArgumentError("name and dest are required (or give vms, a list of {name, dest, create_dirs})")
    return vm_names(args["name"]), [_target(None, args["dest"], bool(args.get("create_dirs")), "")]


def target_of(targets: list[dict[str, t.Any]], requested: str | None) -> dict[str, t.Any]:
    """The target the library chose for a VM (Select-CopyTarget): its own, else the one for every VM."""
    for target in targets:
        if target["vm"] is not None and requested is not None and target["vm"].casefold() == requested.casefold():
            return target
    return next(target for target in targets if target["vm"] is None)


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
        names, targets = requests_from(args)
        if args["remote_src"]:
            _guest_path.check_host_source(args["src"])
            return self._run(result, args, names, targets, None)
        local = self._local_source(args["src"])
        try:
            return self._run(result, args, names, targets, local)
        finally:
            self._loader.cleanup_tmp_file(local)  # the decrypted copy of a vault file, if one was made

    def _run(
        self,
        result: dict[str, t.Any],
        args: dict[str, t.Any],
        names: list[str],
        targets: list[dict[str, t.Any]],
        local: str | None,
    ) -> dict[str, t.Any]:
        result["src"] = args["src"]

        plan = self.call_host(
            "vm_file_copy_plan",
            build_params(
                "vm_file_copy_plan",
                vm_names=names,
                targets=targets,
                gsi_guid=by_key("guest_service_interface").host_guid,
                source=args["src"] if local is None else None,
            ),
            writes=False,
        )
        if _host_changes.refused(self.host, plan, result, None):
            result["msg"] = result["msg"].replace("Nothing was changed.", "Nothing was copied.")
            return result
        if local is not None:
            checksum, size = local_digest(local)
        elif plan.get("source_error") or not plan.get("source"):
            reason = (plan.get("source_error") or {}).get("message")
            raise ArgumentError(
                "src %r cannot be read on Hyper-V host %s: %s. Nothing was copied." % (args["src"], self.host, reason)
            )
        else:
            checksum, size = plan["source"]["sha256"], int(plan["source"]["size"])
        result.update(checksum=checksum, size=size)

        unready = [(vm["name"], why) for vm in plan.get("vms") or [] if (why := _file_copy.unready_reason(vm))]
        if unready and not args["skip_unready"]:
            result.update(failed=True, changed=False, msg=_file_copy.unready_message(self.host, unready))
            return result
        skipped = dict(unready)
        entries = [
            _file_copy.vm_entry(
                vm,
                target_of(targets, vm.get("requested_name"))["destination"],
                checksum,
                args["force"],
                skipped.get(vm["name"]),
            )
            for vm in plan.get("vms") or []
        ]
        if unready:
            result["warnings"] = [_file_copy.skipped_warning(self.host, unready)]
        wanted = [entry for entry in entries if entry["needs_copy"]]
        if self._task.diff:
            result["diff"] = _file_copy.diff_of(entries)
        if not wanted or self._task.check_mode:
            for entry in wanted:
                entry["changed"] = True  # check mode: what would be copied
            result.update(changed=bool(wanted), vms=_file_copy.finish(entries))
            return result

        failed = self._copy(result, args, entries, targets, local, checksum)
        result.update(changed=any(entry["changed"] for entry in entries), vms=_file_copy.finish(entries))
        if failed:
            copied = [entry["name"] for entry in entries if entry["changed"]]
            result.update(
                failed=True,
                msg="Hyper-V host %s: copying %s failed for %d VM(s): %s. Copied to: %s. Rerun the task to converge."
                % (self.host, args["src"], len(failed), "; ".join(failed), ", ".join(copied) or "none"),
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
        targets: list[dict[str, t.Any]],
        local: str | None,
        checksum: str,
    ) -> list[str]:
        """The upload (unless remote_src) and the one copy call; the VMs' errors. The upload is removed from
        the host in every case: by the copy call, or by a cleanup call when that call did not answer."""
        source = args["src"]
        upload_dir = None
        keep = False
        if local is not None:
            # A directory of its own (ansible's remote_tmp, as ansible.windows.win_copy uses it), the file
            # under its own name: a destination that is a directory in the guest gets that name.
            try:
                # normpath: ansible answers the directory as "<path>\." (its join_path of the path and '').
                upload_dir = ntpath.normpath(self._make_tmp_path())
            except AnsibleError as exc:
                raise CallFailed(
                    "Hyper-V host %s: no temporary directory could be made for the upload (remote_tmp): %s. "
                    "Nothing was copied." % (self.host, to_text(exc))
                ) from exc
            source = self._connection._shell.join_path(upload_dir, os.path.basename(args["src"]))
            # ANSIBLE_KEEP_REMOTE_FILES: kept on the host, as ansible keeps its own.
            keep = not self._should_remove_tmp_path(upload_dir)
            try:
                self._connection.put_file(local, source)
            except Exception as exc:  # any transport failure: the partial upload must go too
                raise CallFailed(
                    "Hyper-V host %s: sending %s to %s failed: %s. Nothing was copied to any VM. %s"
                    % (self.host, args["src"], source, to_text(exc), self._cleanup(upload_dir))
                ) from exc
        # Named as this task named them, so that each VM's own target (vms) names it the same way.
        copy_to = [entry["requested_name"] for entry in entries if entry["needs_copy"]]
        params = build_params(
            "vm_file_copy",
            vm_names=copy_to,
            targets=[target for target in targets if target["vm"] is None or target["vm"] in copy_to],
            source=source,
            upload_dir=None if keep else upload_dir,
            record_value=_file_copy.record_value(checksum),
        )
        try:
            answer = self.call_host("vm_file_copy", params, writes=True)
        except CallFailed as exc:
            if upload_dir is None:
                raise
            raise CallFailed("%s %s" % (exc, self._cleanup(upload_dir))) from exc
        failed = _file_copy.apply_copies(entries, answer)
        if upload_dir is not None and not keep:
            self._removed(upload_dir, answer)
            note = _file_copy.removal_note(self.host, upload_dir, answer)
            if note:
                result.setdefault("warnings", []).append(note)
        return failed

    def _removed(self, upload_dir: str, answer: dict[str, t.Any]) -> None:
        """The library removed ansible's temporary directory: ansible's own cleanup (one more process) is
        then not needed. Left set when it is still there, so that the cleanup tries once more."""
        if answer.get("source_removed"):
            self._connection._shell.tmpdir = None

    def _cleanup(self, upload_dir: str) -> str:
        """Remove the upload directory after a failure (one more library call); a sentence saying how it went."""
        params = build_params(
            "vm_file_copy", vm_names=[], targets=[], source="", upload_dir=upload_dir, record_value=""
        )
        try:
            answer = self.call_host("vm_file_copy", params, writes=True)
        except CallFailed as exc:
            return "The temporary directory %s may still be on the host (%s); remove it by hand." % (upload_dir, exc)
        self._removed(upload_dir, answer)
        return _file_copy.removal_note(self.host, upload_dir, answer) or "The temporary directory %s was removed." % (
            upload_dir
        )
