"""The image-hash cache: perceptual hashes already computed, found again by content hash.

A second audit of the same 87,000 frames should not decode them again. Each image's packed
``(pHash, dHash)`` is stored under the SHA-256 of the file's bytes, so a file that changes gets
a new key and is hashed again, and a file that moves or is copied is found again.

One store per *hash key*: the hashing recipe (:data:`RECIPE`) and the versions of the packages
that can change a hash (Pillow, which decodes and resizes; imagehash; scipy, whose DCT pHash
uses; numpy). Upgrading any of them starts a new, empty store. Layout under the cache folder
(the predictions cache's, :envvar:`ASL_EVAL_CACHE_DIR`)::

    v1/image-hashes/<hash key>.npz

The file is a NumPy ``.npz`` of four arrays, read with ``numpy.load(allow_pickle=False)``, so it
holds data only: ``sha256`` (``S64``: hex digests, sorted, unique), ``phash`` and ``dhash``
(``uint64``) and ``checksum`` (``uint8``, 32 bytes: the SHA-256 of the hash key and the other
three arrays' bytes). It is written whole, through a temporary file and a rename, so a run
killed at any moment leaves the old store or the new one. Before use, the file must load
without pickle, hold exactly those arrays with those dtypes and shapes, its digests must be
sorted lowercase hex, and its checksum must match; otherwise it is refused with a logged
warning, and every image is hashed again (and a good store written over it). As with the
predictions cache, the checks find damaged or foreign files; someone who can write to the cache
folder can still write consistent wrong hashes, so the cache is as trustworthy as its folder.

Two audits running at once may each write the store; the last one wins and the other's new
entries are simply hashed again next time.

Imports numpy, the standard library and :mod:`asl_eval._version`.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from asl_eval.cache_files import CACHE_ENV, default_cache_dir, installed_versions, write_atomic

__all__ = [
    "CACHE_ENV",
    "RECIPE",
    "HashCache",
    "default_cache_dir",
    "hash_key",
]

logger = logging.getLogger(__name__)

FORMAT = "v1"
RECIPE = (
    "asl_eval.inputs.load_rgb (white background), then imagehash.phash and imagehash.dhash "
    "(hash_size 8) of its greyscale conversion, packed row-major into uint64"
)
"""What a stored hash is the hash of; part of the hash key."""

_VERSIONED = ("pillow", "imagehash", "scipy", "numpy")
_ARRAYS = ["checksum", "dhash", "phash", "sha256"]
_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


def hash_key() -> str:
    """SHA-256 naming the current hashing recipe and package versions (the store's file name)."""
    parts = {"format": FORMAT, "recipe": RECIPE, "versions": installed_versions(_VERSIONED)}
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _checksum(key: str, sha256: np.ndarray, phash: np.ndarray, dhash: np.ndarray) -> np.ndarray:
    digest = hashlib.sha256(key.encode())
    for array in (sha256, phash, dhash):
        digest.update(np.ascontiguousarray(array).tobytes())
    return np.frombuffer(digest.digest(), dtype=np.uint8).copy()


@dataclass(frozen=True)
class _Store:
    sha256: np.ndarray  # S64, sorted, unique
    phash: np.ndarray
    dhash: np.ndarray


def _empty() -> _Store:
    return _Store(np.zeros(0, "S64"), np.zeros(0, np.uint64), np.zeros(0, np.uint64))


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
        self._store: _Store | None = None

    def _load(self) -> _Store:
        if self._store is None:
            self._store = self._read()
        return self._store

    def _read(self) -> _Store:
        """The store on disk, checked; empty (with a warning) when it is refused."""
        if not self.path.is_file():
            return _empty()
        try:
            data = self.path.read_bytes()
            with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
                names = sorted(arrays.files)
                if names != _ARRAYS:
                    return self._refuse(f"unexpected arrays {names}")
                sha256, phash = arrays["sha256"], arrays["phash"]
                dhash, checksum = arrays["dhash"], arrays["checksum"]
        except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as error:
            return self._refuse(f"not a data-only .npz ({type(error).__name__}: {error})")
        problem = _check(self.key, sha256, phash, dhash, checksum)
        if problem:
            return self._refuse(problem)
        return _Store(sha256, phash, dhash)

    def _refuse(self, why: str) -> _Store:
        logger.warning(
            "refusing image-hash cache file %s: %s; its images are hashed again", self.path, why
        )
        return _empty()

    def __len__(self) -> int:
        return len(self._load().sha256)

    def lookup(self, digests: list[str]) -> dict[str, tuple[int, int]]:
        """Cached ``(pHash, dHash)`` by hex content hash, for the digests the store holds."""
        store = self._load()
        if not digests or len(store.sha256) == 0:
            return {}
        wanted = np.array(digests, dtype="S64")
        position = np.searchsorted(store.sha256, wanted)
        position[position >= len(store.sha256)] = 0
        found = np.flatnonzero(store.sha256[position] == wanted)
        rows = position[found]
        return {
            digests[i]: (int(p), int(d))
            for i, p, d in zip(
                found.tolist(), store.phash[rows].tolist(), store.dhash[rows].tolist(), strict=True
            )
        }

    def add(self, digests: list[str], phash: list[int], dhash: list[int]) -> None:
        """Merge new entries into the store (replacing any with the same digest) and write it
        (atomically); no-op when none."""
        if not digests:
            return
        store = self._load()
        # new entries first: np.unique keeps the first of equal digests, so the newest wins
        sha256 = np.concatenate([np.array(digests, dtype="S64"), store.sha256])
        p = np.concatenate([np.array(phash, dtype=np.uint64), store.phash])
        d = np.concatenate([np.array(dhash, dtype=np.uint64), store.dhash])
        sha256, first = np.unique(sha256, return_index=True)
        merged = _Store(sha256, p[first], d[first])
        buffer = io.BytesIO()
        np.savez(
            buffer,
            sha256=merged.sha256,
            phash=merged.phash,
            dhash=merged.dhash,
            checksum=_checksum(self.key, merged.sha256, merged.phash, merged.dhash),
        )
        write_atomic(self.path, buffer.getvalue())
        self._store = merged


def _check(
    key: str, sha256: np.ndarray, phash: np.ndarray, dhash: np.ndarray, checksum: np.ndarray
) -> str | None:
    """What is wrong with a store's arrays, or None."""
    n = len(sha256)
    if sha256.dtype != np.dtype("S64") or sha256.ndim != 1:
        return f"sha256 is {sha256.dtype} {sha256.shape}, expected S64 (n,)"
    for name, array in (("phash", phash), ("dhash", dhash)):
        if array.dtype != np.uint64 or array.shape != (n,):
            return f"{name} is {array.dtype} {array.shape}, expected uint64 ({n},)"
    if checksum.dtype != np.uint8 or checksum.shape != (32,):
        return "no valid checksum"
    characters = sha256.view(np.uint8)
    if characters.size != 64 * n or not np.isin(characters, _HEX).all():
        return "its content hashes are not 64 lowercase hex digits"
    if n > 1 and not bool(np.all(sha256[1:] > sha256[:-1])):
        return "its content hashes are not sorted and unique"
    if not np.array_equal(checksum, _checksum(key, sha256, phash, dhash)):
        return "its checksum does not match its contents"
    return None
