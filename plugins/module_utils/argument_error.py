# Copyright: (c) 2026, hyperv.integration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one error for bad input, raised by every option parser of this collection.

Internal to this collection: not a public API, it may change without notice.
"""

from __future__ import annotations


class ArgumentError(ValueError):
    """Bad input: the message names the option, the value and what was wrong. Nothing was changed."""
