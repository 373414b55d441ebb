"""Digests of the library's own source: versions that no one has to bump by hand.

A stored signature is only comparable with one made by the same hashing code,
and a cached stage result is only valid for the code that made it.  Rather
than version strings bumped by hand (and forgotten), both are keyed on a hash
of the source files themselves: any change to them changes the key.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path

_ROOT = Path(__file__).resolve().parent


@lru_cache(maxsize=32)
def source_digest(*relative_paths: str) -> str:
    """SHA-256 (16 hex digits) of the named files of the package (paths relative to ``provenance/``), in order."""
    digest = hashlib.sha256()
    for rel in relative_paths:
        digest.update(rel.encode() + b"\x00" + (_ROOT / rel).read_bytes() + b"\x00")
    return digest.hexdigest()[:16]


@lru_cache(maxsize=1)
def library_digest() -> str:
    """Digest of every Python file and packaged asset of the library: what a cached result depends on."""
    files = sorted(p.relative_to(_ROOT).as_posix() for p in _ROOT.rglob("*") if p.is_file() and p.suffix in (".py", ".css", ".js"))
    return source_digest(*files)
