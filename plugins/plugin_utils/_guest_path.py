# Copyright: (c) 2026, hyperv.integration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where Copy-VMFile may write in a guest: the destination rules vm_file_copy checks before anything is
sent, and the host KVP item that records the last copy to a destination.

Internal to this collection: not a public API, it may change without notice.

The host does not know the guest's operating system, so the destination's own form says which rules
apply: ``/...`` is a Linux path, ``X:\\...`` a Windows one. The rules and their sources are in
docs/dev/hyperv-facts.md section 11.
"""

from __future__ import annotations

import re

from ansible_collections.hyperv.integration.plugins.module_utils.argument_error import ArgumentError
from ansible_collections.hyperv.integration.plugins.module_utils.kvp_pool import KvpPoolError, check_host_limits

# The host KVP item that holds "sha256:<hex>" of what was last copied to a destination (key: prefix + dest).
RECORD_PREFIX = "hyperv.integration.vm_file_copy:"
RECORD_VALUE = "sha256:%s"

# Linux: the kernel hands each of the directory and the file name to hv_fcopy_daemon in W_MAX_PATH - 1 =
# 259 bytes of UTF-8 and silently cuts what does not fit; hv_fcopy_uio_daemon (kernels 6.10 and later)
# turns every character outside ASCII into 'X'.
LINUX_NAME_BYTES = 259
# Windows: MAX_PATH (260) less the terminating NUL; the guest service's use of long paths is not documented.
WINDOWS_PATH_UNITS = 259
WINDOWS_ILLEGAL = frozenset('<>:"|?*')
WINDOWS_DEVICES = frozenset(
    ["CON", "PRN", "AUX", "NUL"] + ["COM%d" % i for i in range(1, 10)] + ["LPT%d" % i for i in range(1, 10)]
)
_WINDOWS_DRIVE = re.compile(r"^[A-Za-z]:\\")
_WINDOWS_FORM = re.compile(r"^[A-Za-z]:[\\/]")  # a Windows path, perhaps with the wrong separator
# Msvm_CopyFileToGuestSettingData: the host expands environment variables in SourcePath, the guest in
# DestinationPath. No escape is documented, so a %NAME% is refused rather than expanded.
_ENVIRONMENT_VARIABLE = re.compile(r"%[^%]+%")


def _fail(dest: str, why: str) -> ArgumentError:
    return ArgumentError("dest %r: %s. Nothing was copied." % (dest, why))


def _control(text: str) -> bool:
    return any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in text)


def guest_kind(dest: str) -> str:
    """``linux`` or ``windows``: which guest the destination is written for (ArgumentError for neither)."""
    if dest.startswith("/"):
        return "linux"
    if _WINDOWS_FORM.match(dest):
        return "windows"
    raise _fail(dest, "must be the absolute path of a file in the guest: /dir/file on Linux, C:\\dir\\file on Windows")


def _check_linux(dest: str) -> None:
    if not dest.isascii():
        raise _fail(
            dest,
            "holds characters outside ASCII: hv_fcopy_uio_daemon (Linux 6.10 and later) writes each of them as 'X', "
            "and older kernels cut names that do not fit %d bytes" % LINUX_NAME_BYTES,
        )
    if "\\" in dest:
        raise _fail(dest, "holds a backslash, which the host may take for a separator; use / only")
    directory, _slash, name = dest.rpartition("/")
    if name in ("", ".", ".."):
        raise _fail(dest, "must end with the file's name, not with / or a . or .. component")
    for what, text in (("directory", directory or "/"), ("file name", name)):
        if len(text) > LINUX_NAME_BYTES:
            raise _fail(
                dest,
                "its %s is %d characters; the kernel passes at most %d to the guest's daemon and cuts the rest"
                % (what, len(text), LINUX_NAME_BYTES),
            )


def _check_windows(dest: str) -> None:
    if "/" in dest:
        raise _fail(dest, "holds a /; write a Windows destination with \\ only")
    if len(dest) > WINDOWS_PATH_UNITS:
        raise _fail(dest, "is %d characters; a Windows path holds at most %d" % (len(dest), WINDOWS_PATH_UNITS))
    parts = dest[3:].split("\\")
    if parts[-1] == "":
        raise _fail(dest, "must end with the file's name, not with \\")
    for part in parts:
        if part in ("", ".", ".."):
            raise _fail(dest, "has an empty, . or .. component")
        bad = sorted(set(part) & WINDOWS_ILLEGAL)
        if bad:
            raise _fail(dest, "the name %r holds %s, which Windows file names cannot hold" % (part, " ".join(bad)))
        if part != part.rstrip(". "):
            raise _fail(dest, "the name %r ends with a dot or a space, which Windows drops" % part)
        if part.split(".", 1)[0].upper() in WINDOWS_DEVICES:
            raise _fail(dest, "the name %r is a Windows device name" % part)


def check_destination(dest: str) -> str:
    """The guest kind of a destination vm_file_copy can write exactly as given; ArgumentError otherwise."""
    if not dest:
        raise ArgumentError("dest must not be empty. Nothing was copied.")
    if _control(dest):
        raise _fail(dest, "holds a control character")
    if _ENVIRONMENT_VARIABLE.search(dest):
        raise _fail(dest, "holds %NAME%, which the guest would expand as an environment variable")
    kind = guest_kind(dest)
    (_check_linux if kind == "linux" else _check_windows)(dest)
    return kind


def check_host_source(src: str) -> None:
    """remote_src: an absolute path on the host, taken literally; ArgumentError otherwise."""
    if not _WINDOWS_DRIVE.match(src) or _control(src):
        raise ArgumentError(
            "src %r: with remote_src, src must be an absolute path on the Hyper-V host (C:\\dir\\file)" % src
        )
    if _ENVIRONMENT_VARIABLE.search(src):
        raise ArgumentError("src %r: holds %%NAME%%, which the host would expand as an environment variable" % src)


def record_key(dest: str) -> str:
    """The host KVP item for this destination; ArgumentError when it cannot be one (too long)."""
    key = RECORD_PREFIX + dest
    try:
        check_host_limits(key, RECORD_VALUE % ("0" * 64))
    except KvpPoolError as exc:
        raise _fail(dest, "is too long to record what was copied as a host KVP item (%s)" % exc) from exc
    return key
