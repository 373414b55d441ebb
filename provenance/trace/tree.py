"""Tree depths: how far every member is from its cluster's origin.

Parents come from the derivation model (``trace.derivation``); :func:`depths`
turns a parent array into depths by pointer doubling, ``log2(max depth)``
vectorised passes with no per-node loop.
"""

from __future__ import annotations

import numpy as np


def depths(parent_of: np.ndarray) -> np.ndarray:
    """Depth of every node (0 for roots, marked by ``parent_of == -1``).

    Pointer doubling: ``log2(max depth)`` vectorised passes, no per-node loop.
    """
    n = len(parent_of)
    depth = (parent_of >= 0).astype(np.int64)
    jump = parent_of.copy()
    while True:
        active = jump >= 0
        if not active.any():
            return depth.astype(np.int32)
        target = jump[active]
        depth[active] += depth[target]
        nxt = np.full(n, -1, dtype=np.int64)
        nxt[active] = jump[target]
        jump = nxt
