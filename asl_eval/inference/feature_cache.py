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

    v1/features/<feature key>.npz          every row as of the last compaction
    v1/features/<feature key>.chunks/      the rows added since, one file per add

It is a :class:`~asl_eval.content_store.ContentStore` (see there for the files, their checks,
the appends and compactions, and how a file of an older format is handled) with one column,
``features`` (``float32``, ``(n, width)``, finite). An add writes only its new rows (a chunk),
not the whole store (180 MB at 87,000 images); the chunks are folded into the base file every
:data:`~asl_eval.content_store.MAX_CHUNKS` + 1 adds. Its files hold data only and are read with
``numpy.load(allow_pickle=False)``. A damaged, foreign or pickled file is refused with a logged
warning, its images' features are computed again, and the next add writes a good store over
it. As with the other caches, the checks find damaged or foreign files; someone who can write to
the cache folder can still write consistent wrong features, so the cache is as trustworthy as
its folder.

Two audits running at once may each write the store; the last one wins and the other's new
entries are simply computed again next time.

Layer: inside :mod:`asl_eval.inference`; imports numpy, the standard library,
:mod:`asl_eval.cache_files`, :mod:`asl_eval.content_store` and :mod:`asl_eval.inference.cache`;
no torch.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from asl_eval.cache_files import default_cache_dir
from asl_eval.content_store import Column, ContentStore
from asl_eval.inference.cache import canonical_sha256, package_versions

__all__ = ["RECIPE", "FeatureCache", "feature_key"]

logger = logging.getLogger(__name__)

FORMAT = "v1"
"""The cache folder's layout (the files' own format is :data:`asl_eval.content_store.FORMAT`)."""
RECIPE = (
    "asl_eval.inputs.decode_rgb (white background), fastai test_dl preprocessing, model in eval "
    "mode under torch.inference_mode; the input of the model's last nn.Linear layer, flattened, "
    "as float32"
)
"""What a stored feature row is; part of the feature key."""


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


def _refuse(path: Path, why: str) -> None:
    logger.warning(
        "refusing features cache file %s: %s; its images' features are computed again", path, why
    )


class FeatureCache:
    """The features store of one cache folder, for one feature key.

    ``digest in cache`` says whether a content hash has a stored row (so its file need not be
    decoded); :meth:`lookup` returns the rows, :meth:`add` writes new ones.

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
        columns = {"features": Column(np.float32, (width,))}
        self._store = ContentStore(self.path, key, columns, on_refuse=_refuse)

    def __len__(self) -> int:
        return len(self._store)

    def __contains__(self, digest: object) -> bool:
        return digest in self._store

    def lookup(self, digests: Sequence[str]) -> dict[str, np.ndarray]:
        """Cached feature rows (float32, copies) by hex content hash, for the digests held."""
        found = self._store.lookup(digests)
        rows = found.values["features"]
        return {digests[i]: rows[k] for k, i in enumerate(found.positions.tolist())}

    def add(self, digests: Sequence[str], features: np.ndarray) -> None:
        """Add new rows to the store (replacing any with the same digest; rows that are not
        finite are left out) and write them atomically; no-op when there is nothing new."""
        rows = np.asarray(features, dtype=np.float32).reshape(len(digests), self.width)
        keep = np.flatnonzero(np.isfinite(rows).all(axis=1))
        self._store.add([digests[i] for i in keep.tolist()], {"features": rows[keep]})
