"""Content hashes of files: the lowest layer, imported by every stage that names a file by its
bytes (the model in a report's header, a training record's labels CSV, the safe format's
weights).

Imports only the standard library.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

__all__ = ["file_sha256"]


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes, streamed (``hashlib.file_digest``), so large files are fine.

    >>> import tempfile, os
    >>> with tempfile.NamedTemporaryFile(delete=False) as handle:
    ...     _ = handle.write(b"abc")
    >>> file_sha256(handle.name)
    'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad'
    >>> os.unlink(handle.name)
    """
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()
