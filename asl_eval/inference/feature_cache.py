"""The features cache: penultimate-layer features already computed, found again by content hash.

A second embedding audit of the same images with the same model should not run the model on
them again. Each image's feature row (float32) is stored under the SHA-256 of the file's bytes,
so a file that changes gets a new key and is computed again, and a file that moves or is copied
is found again.

One store per *feature key* (:func:`feature_key`): the model's weights (the model file's key,
:func:`asl_eval.inference.cache.model_key`, when the learner came from a file; otherwise a hash
of its state dict), the feature recipe (the layer read, fastai's ``test_dl`` preprocessing with
its image size, the device) and the package versions (:func:`asl_eval.inference.cache.
package_versions`). Changing any of them starts a new, empty store. Layout under the cache folder
(the predictions cache's, :envvar:`ASL_EVAL_CACHE_DIR`)::

    v1/features/<feature key>.npz

The file is a NumPy ``.npz`` of three arrays, read with ``numpy.load(allow_pickle=False)``, so it
holds data only: ``sha256`` (``S64``: hex digests, sorted, unique), ``features`` (``float32``,
``(n, width)``, finite) and ``checksum`` (``uint8``, 32 bytes: the SHA-256 of the feature key and
the other two arrays' shapes and bytes). It is written whole, through a temporary file and a
rename (:func:`asl_eval.cache_files.write_atomic`), so a run killed at any moment leaves the old
store or the new one. Before use, the file must load without pickle, hold exactly those arrays
with those dtypes and shapes, its digests must be sorted lowercase hex, and its checksum must
match; otherwise it is refused with a logged warning, and every image is computed again (and a
good store written over it). As with the other caches, the checks find damaged or foreign files;
someone who can write to the cache folder can still write consistent wrong features, so the
cache is as trustworthy as its folder.

Two audits running at once may each write the store; the last one wins and the other's new
entries are simply computed again next time.

Layer: inside :mod:`asl_eval.inference`; imports numpy, the standard library,
:mod:`asl_eval.cache_files` and :mod:`asl_eval.inference.cache`; no torch.
"""

from __future__ import annotations

import hashlib
import io
import logging
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from asl_eval.cache_files import default_cache_dir, write_atomic
from asl_eval.inference.cache import canonical_sha256, package_versions

__all__ = ["RECIPE", "FeatureCache", "feature_key"]

logger = logging.getLogger(__name__)

FORMAT = "v1"
RECIPE = (
    "asl_eval.inputs.decode_rgb (white background), fastai test_dl preprocessing, model in eval "
    "mode under torch.inference_mode; the input of the model's last nn.Linear layer, flattened, "
    "as float32"
)
"""What a stored feature row is; part of the feature key."""

_ARRAYS = ["checksum", "features", "sha256"]
_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


def feature_key(model_key: str, recipe: Mapping[str, object]) -> str:
    """SHA-256 naming a store: the model's key, the feature recipe (:data:`RECIPE` and the
    caller's details: layer, preprocessing, image size, device) and the package versions.

    >>> feature_key("ab" * 32, {"width": 4}) == feature_key("ab" * 32, {"width": 4})
    True
    >>> feature_key("ab" * 32, {"width": 4}) == feature_key("cd" * 32, {"width": 4})
    False
    """
    return canonical_sha256(
        {
            "format": FORMAT,
            "model": model_key,
            "recipe": RECIPE,
            "details": dict(recipe),
            "versions": package_versions(),
        }
    )


def _checksum(key: str, sha256: np.ndarray, features: np.ndarray) -> np.ndarray:
    digest = hashlib.sha256(key.encode())
    for array in (sha256, features):
        digest.update(f"{array.dtype.str}|{array.shape}\n".encode())
        digest.update(np.ascontiguousarray(array).tobytes())
    return np.frombuffer(digest.digest(), dtype=np.uint8).copy()


@dataclass(frozen=True)
class _Store:
    sha256: np.ndarray  # S64, sorted, unique
    features: np.ndarray  # float32 (n, width)


class FeatureCache:
    """The features store of one cache folder, for one feature key.

    ``digest in cache`` says whether a content hash has a stored row (so its file need not be
    decoded); :meth:`lookup` returns the rows, :meth:`add` merges new ones and writes the store.

    Parameters
    ----------
    key
        The feature key (:func:`feature_key`).
    width
        The length of a feature row (the last linear layer's ``in_features``).
    root
        The cache folder (default :func:`asl_eval.cache_files.default_cache_dir`).

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     FeatureCache("k", 2, folder).add(["ab" * 32], np.array([[1.0, 2.0]]))
    ...     found = FeatureCache("k", 2, folder).lookup(["ab" * 32, "cd" * 32])
    >>> {digest[:4]: row.tolist() for digest, row in found.items()}
    {'abab': [1.0, 2.0]}
    """

    def __init__(self, key: str, width: int, root: str | Path | None = None) -> None:
        self.root = Path(root) if root is not None else default_cache_dir()
        self.key = key
        self.width = width
        self.path = self.root / FORMAT / "features" / f"{key}.npz"
        self._store: _Store | None = None
        self._index: dict[str, int] | None = None

    def _load(self) -> _Store:
        if self._store is None:
            self._store = self._read()
            self._index = None
        return self._store

    def _positions(self) -> dict[str, int]:
        store = self._load()
        if self._index is None:
            self._index = {d.decode("ascii"): i for i, d in enumerate(store.sha256.tolist())}
        return self._index

    def _read(self) -> _Store:
        """The store on disk, checked; empty (with a warning) when it is refused."""
        if not self.path.is_file():
            return self._empty()
        try:
            data = self.path.read_bytes()
            with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
                names = sorted(arrays.files)
                if names != _ARRAYS:
                    return self._refuse(f"unexpected arrays {names}")
                sha256, features = arrays["sha256"], arrays["features"]
                checksum = arrays["checksum"]
        except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as error:
            return self._refuse(f"not a data-only .npz ({type(error).__name__}: {error})")
        problem = _check(self.key, self.width, sha256, features, checksum)
        if problem:
            return self._refuse(problem)
        return _Store(sha256, features)

    def _empty(self) -> _Store:
        return _Store(np.zeros(0, "S64"), np.zeros((0, self.width), np.float32))

    def _refuse(self, why: str) -> _Store:
        logger.warning(
            "refusing features cache file %s: %s; its images' features are computed again",
            self.path,
            why,
        )
        return self._empty()

    def __len__(self) -> int:
        return len(self._load().sha256)

    def __contains__(self, digest: object) -> bool:
        return isinstance(digest, str) and digest in self._positions()

    def lookup(self, digests: Sequence[str]) -> dict[str, np.ndarray]:
        """Cached feature rows (float32, copies) by hex content hash, for the digests held."""
        positions = self._positions()
        features = self._load().features
        return {d: features[positions[d]].copy() for d in digests if d in positions}

    def add(self, digests: Sequence[str], features: np.ndarray) -> None:
        """Merge new rows into the store (replacing any with the same digest; rows that are not
        finite are left out) and write it atomically; no-op when there is nothing new."""
        rows = np.asarray(features, dtype=np.float32).reshape(len(digests), self.width)
        keep = np.isfinite(rows).all(axis=1)
        if not keep.any():
            return
        store = self._load()
        new = np.array(list(digests), dtype="S64")[keep]
        # new entries first: np.unique keeps the first of equal digests, so the newest wins
        sha256 = np.concatenate([new, store.sha256])
        merged_features = np.concatenate([rows[keep], store.features])
        sha256, first = np.unique(sha256, return_index=True)
        merged = _Store(sha256, np.ascontiguousarray(merged_features[first]))
        buffer = io.BytesIO()
        np.savez(
            buffer,
            sha256=merged.sha256,
            features=merged.features,
            checksum=_checksum(self.key, merged.sha256, merged.features),
        )
        write_atomic(self.path, buffer.getvalue())
        self._store = merged
        self._index = None


def _check(
    key: str, width: int, sha256: np.ndarray, features: np.ndarray, checksum: np.ndarray
) -> str | None:
    """What is wrong with a store's arrays, or None."""
    n = len(sha256)
    if sha256.dtype != np.dtype("S64") or sha256.ndim != 1:
        return f"sha256 is {sha256.dtype} {sha256.shape}, expected S64 (n,)"
    if features.dtype != np.float32 or features.shape != (n, width):
        return f"features is {features.dtype} {features.shape}, expected float32 {(n, width)}"
    if checksum.dtype != np.uint8 or checksum.shape != (32,):
        return "no valid checksum"
    characters = sha256.view(np.uint8)
    if characters.size != 64 * n or not np.isin(characters, _HEX).all():
        return "its content hashes are not 64 lowercase hex digits"
    if n > 1 and not bool(np.all(sha256[1:] > sha256[:-1])):
        return "its content hashes are not sorted and unique"
    if not np.isfinite(features).all():
        return "its features hold values that are not finite"
    if not np.array_equal(checksum, _checksum(key, sha256, features)):
        return "its checksum does not match its contents"
    return None
