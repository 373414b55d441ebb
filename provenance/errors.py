"""The one exception type a user ever sees.

A :class:`ProvenanceError` is a problem with the user's input or options (a
missing path, an unknown format, a contradictory option).  The CLI prints its
message as one line and exits non-zero; anything else is a bug and keeps its
traceback.
"""

from __future__ import annotations


class ProvenanceError(Exception):
    """A user-facing, one-line error: say what is wrong and what to pass instead."""
