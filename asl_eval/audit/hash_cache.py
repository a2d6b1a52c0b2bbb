"""The image-hash cache: perceptual hashes already computed, found again by content hash.

A second audit of the same 87,000 frames should not decode them again. Each image's packed
``(pHash, dHash)`` is stored under the SHA-256 of the file's bytes, so a file that changes gets
a new key and is hashed again, and a file that moves or is copied is found again.

One store per *hash key*: the hashing recipe (:data:`RECIPE`) and the versions of the packages
that can change a hash (Pillow, which decodes and resizes; imagehash; scipy, whose DCT pHash
uses; numpy). Upgrading any of them starts a new, empty store. Layout under the cache folder
(the predictions cache's, :envvar:`ASL_EVAL_CACHE_DIR`)::

    v1/image-hashes/<hash key>.npz            every entry as of the last compaction
    v1/image-hashes/<hash key>.chunks/        the entries added since, one file per add

It is a :class:`~asl_eval.content_store.ContentStore` (see there for the files, their checks,
the appends and compactions, and how a file of an older format is handled) with two columns,
``phash`` and ``dhash`` (``uint64``). Its files hold data only and are read with
``numpy.load(allow_pickle=False)``. A damaged, foreign or pickled file is refused with a logged
warning, its images are hashed again, and the next add writes a good store over it. As with the
predictions cache, the checks find damaged or foreign files; someone who can write to the cache
folder can still write consistent wrong hashes, so the cache is as trustworthy as its folder.

Two audits running at once may each write the store; the last one wins and the other's new
entries are simply hashed again next time.

Imports numpy, the standard library, :mod:`asl_eval.cache_files` and
:mod:`asl_eval.content_store`.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import numpy as np

from asl_eval.cache_files import CACHE_ENV, default_cache_dir, installed_versions
from asl_eval.content_store import Column, ContentStore

__all__ = [
    "CACHE_ENV",
    "RECIPE",
    "HashCache",
    "default_cache_dir",
    "hash_key",
]

logger = logging.getLogger(__name__)

FORMAT = "v1"
"""The cache folder's layout (the files' own format is :data:`asl_eval.content_store.FORMAT`)."""
RECIPE = (
    "asl_eval.inputs.load_rgb (white background), then imagehash.phash and imagehash.dhash "
    "(hash_size 8) of its greyscale conversion, packed row-major into uint64"
)
"""What a stored hash is the hash of; part of the hash key."""

_VERSIONED = ("pillow", "imagehash", "scipy", "numpy")
_COLUMNS = {"phash": Column(np.uint64), "dhash": Column(np.uint64)}


def hash_key() -> str:
    """SHA-256 naming the current hashing recipe and package versions (the store's file name)."""
    parts = {"format": FORMAT, "recipe": RECIPE, "versions": installed_versions(_VERSIONED)}
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _refuse(path: Path, why: str) -> None:
    logger.warning("refusing image-hash cache file %s: %s; its images are hashed again", path, why)


class HashCache:
    """The image-hash store of one cache folder, for the current hash key.

    Parameters
    ----------
    root
        The cache folder (default :func:`default_cache_dir`).

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     HashCache(folder).add(["ab" * 32], [5], [7])
    ...     print(HashCache(folder).lookup(["ab" * 32, "cd" * 32]))
    {'abababababababababababababababababababababababababababababababab': (5, 7)}
    """

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root) if root is not None else default_cache_dir()
        self.key = hash_key()
        self.path = self.root / FORMAT / "image-hashes" / f"{self.key}.npz"
        self._store = ContentStore(self.path, self.key, _COLUMNS, on_refuse=_refuse)

    def __len__(self) -> int:
        return len(self._store)

    def lookup(self, digests: list[str]) -> dict[str, tuple[int, int]]:
        """Cached ``(pHash, dHash)`` by hex content hash, for the digests the store holds."""
        found = self._store.lookup(digests)
        phash, dhash = found.values["phash"].tolist(), found.values["dhash"].tolist()
        return {
            digests[i]: (int(p), int(d))
            for i, p, d in zip(found.positions.tolist(), phash, dhash, strict=True)
        }

    def add(self, digests: list[str], phash: list[int], dhash: list[int]) -> None:
        """Add new entries to the store (replacing any with the same digest) and write them
        (atomically); no-op when none."""
        self._store.add(digests, {"phash": phash, "dhash": dhash})
