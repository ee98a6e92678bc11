"""The one exception type that reaches the user as a message, never a traceback."""

from __future__ import annotations


class OptbenchError(Exception):
    """A problem the user can fix. ``str(err)`` is a one-paragraph message naming the fix."""

    exit_code = 2
