"""The predictions cache: probabilities already computed, found again by content hash.

A cache entry belongs to one *run key*: the SHA-256 of the model file (and of its sidecar, for
the safe format), the engine's :meth:`~asl_eval.inference.engines.Engine.describe`, and the
versions of asl-eval, torch, fastai, Pillow and ONNX Runtime. Under it, each chunk the loop
predicted is stored as it finishes, as two files:

- ``<id>.npz``: the arrays ``sha256`` (the images' content hashes, text) and ``proba``
  (float64, one row per image), read with ``numpy.load(allow_pickle=False)``: data only;
- ``<id>.json``: its manifest, naming the ``.npz``, its SHA-256 and the images' hashes; written
  after the ``.npz``, by an atomic rename, so a run killed at any moment leaves either a whole
  entry or none.

Before a chunk file is used, its bytes' SHA-256 must equal its manifest's, it must load
without pickle, and its arrays must have the expected names, shapes, dtype and probability
rows; otherwise it is refused with a logged warning and its images are predicted again. These
checks make sure a file is the one written and holds only numbers; they cannot stop someone who
can write to the cache folder from writing consistent wrong numbers, so the cache is as
trustworthy as the folder it lives in.

The cache also keeps a *model record* per model key (classes, input size, architecture, and
each engine request's description), so a report whose images are all cached needs no model
load. Layout under the cache folder::

    v1/models/<model key>.json
    v1/runs/<run key>/key.json          the key's parts, for people
    v1/runs/<run key>/<id>.json, <id>.npz

Layer: inside :mod:`asl_eval.inference`; imports numpy, the standard library,
:mod:`asl_eval.hashing`, :mod:`asl_eval.cache_files` (the cache folder, atomic writes) and
:mod:`asl_eval._version`; no torch.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from asl_eval._version import __version__
from asl_eval.cache_files import CACHE_ENV, default_cache_dir, installed_versions, write_atomic
from asl_eval.hashing import file_sha256
from asl_eval.trust.safe_format import is_safe_format

__all__ = [
    "CACHE_ENV",
    "ChunkStore",
    "ModelRecord",
    "PredictionCache",
    "default_cache_dir",
    "model_key",
    "package_versions",
    "write_atomic",
]

logger = logging.getLogger(__name__)

FORMAT = "v1"
_HEX64 = re.compile(r"[0-9a-f]{64}")
_PROBABILITY_TOLERANCE = 1e-4
_VERSIONED = ("torch", "fastai", "pillow", "numpy", "onnxruntime")


def model_key(model_file: str | Path) -> str:
    """SHA-256 that names a model file's content: its bytes, and for the safe format
    (``model.safetensors`` beside ``model.json``) the weights' and the sidecar's together."""
    path = Path(model_file)
    if not is_safe_format(path):
        return file_sha256(path)
    weights, sidecar = path.with_suffix(".safetensors"), path.with_suffix(".json")
    both = f"safetensors {file_sha256(weights)}\nsidecar {file_sha256(sidecar)}\n"
    return hashlib.sha256(both.encode()).hexdigest()


def package_versions() -> dict[str, str]:
    """asl-eval's version and those of the packages that can change the numbers (read from
    their metadata; nothing is imported)."""
    return {"asl-eval": __version__, **installed_versions(_VERSIONED)}


def canonical_sha256(value: object) -> str:
    """SHA-256 of ``value`` as canonical JSON (sorted keys, no spaces, ASCII).

    >>> canonical_sha256({"b": 1, "a": [2]}) == canonical_sha256({"a": [2], "b": 1})
    True
    """
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=str)
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def _read_json(path: Path) -> object:
    """A JSON file's content, or None (with a warning) when it cannot be read or parsed."""
    try:
        return json.loads(path.read_bytes())
    except (OSError, ValueError) as error:
        logger.warning("ignoring cache file %s: %s", path, error)
        return None


@dataclass(frozen=True)
class ModelRecord:
    """What the cache remembers about a model file, so a fully cached report needs no load.

    Attributes
    ----------
    classes
        The model's classes in its own order.
    input_size
        ``(height, width)`` the model resizes to, or None.
    arch
        The model's architecture as the report names it.
    engines
        An engine request's key (:meth:`PredictionCache.request_key`) to that engine's
        :meth:`~asl_eval.inference.engines.Engine.describe`.
    """

    classes: tuple[str, ...]
    input_size: tuple[int, int] | None
    arch: str
    engines: Mapping[str, Mapping[str, Any]]

    def to_json(self) -> dict[str, object]:
        size = list(self.input_size) if self.input_size is not None else None
        return {
            "classes": list(self.classes),
            "input_size": size,
            "arch": self.arch,
            "engines": {k: dict(v) for k, v in self.engines.items()},
        }

    @classmethod
    def from_json(cls, value: object) -> ModelRecord | None:
        """The record, or None when ``value`` is not a well-formed one."""
        if not isinstance(value, dict):
            return None
        classes, size = value.get("classes"), value.get("input_size")
        arch, engines = value.get("arch"), value.get("engines")
        if not (isinstance(classes, list) and classes and all(isinstance(c, str) for c in classes)):
            return None
        if size is not None and not (
            isinstance(size, list) and len(size) == 2 and all(type(s) is int for s in size)
        ):
            return None
        if not isinstance(arch, str) or not isinstance(engines, dict):
            return None
        if not all(isinstance(k, str) and isinstance(v, dict) for k, v in engines.items()):
            return None
        return cls(tuple(classes), (size[0], size[1]) if size else None, arch, engines)


class PredictionCache:
    """The cache folder, for one model file.

    Parameters
    ----------
    root
        The cache folder (see :func:`default_cache_dir`).
    model_file
        The model file whose predictions are cached; hashed once, here.
    """

    def __init__(self, root: str | Path, model_file: str | Path) -> None:
        self.root = Path(root)
        self.model_file = Path(model_file)
        self.model_key = model_key(model_file)
        self.versions = package_versions()

    @property
    def file_sha256(self) -> str | None:
        """The model file's own SHA-256 when that is the key (a fastai ``.pkl``), so that the
        report need not read the file again; None for the safe format's pair."""
        return None if is_safe_format(self.model_file) else self.model_key

    @property
    def _record_path(self) -> Path:
        return self.root / FORMAT / "models" / f"{self.model_key}.json"

    def read_model_record(self) -> ModelRecord | None:
        """The model record, or None when there is none or it is malformed (then a warning)."""
        path = self._record_path
        if not path.is_file():
            return None
        record = ModelRecord.from_json(_read_json(path))
        if record is None:
            logger.warning("ignoring malformed model record %s", path)
        return record

    def write_model_record(self, record: ModelRecord) -> None:
        """Store the model record (atomically)."""
        write_atomic(self._record_path, json.dumps(record.to_json(), indent=1).encode())

    def request_key(self, name: str, options: Mapping[str, object]) -> str:
        """Key of an engine request (name, options, package versions), under which the model
        record keeps that engine's description."""
        return canonical_sha256({"engine": name, "options": dict(options), **self.versions})

    def run_key(self, description: Mapping[str, object]) -> str:
        """The run key: the model, the engine's description and the package versions."""
        return canonical_sha256(self._key_parts(description))

    def _key_parts(self, description: Mapping[str, object]) -> dict[str, object]:
        return {
            "format": FORMAT,
            "model": self.model_key,
            "engine": dict(description),
            "versions": self.versions,
        }

    def store(self, description: Mapping[str, object], n_classes: int) -> ChunkStore:
        """The chunk store for an engine with this ``description``."""
        run_key = self.run_key(description)
        folder = self.root / FORMAT / "runs" / run_key
        key_file = folder / "key.json"
        if not key_file.is_file():
            parts = json.dumps(self._key_parts(description), indent=1, sort_keys=True, default=str)
            write_atomic(key_file, parts.encode())
        return ChunkStore(folder, n_classes, run_key=run_key)


@dataclass(frozen=True)
class _Entry:
    """One stored chunk, as its manifest says."""

    file: Path
    file_sha256: str
    hashes: tuple[str, ...]


class ChunkStore:
    """Stored chunks of one run key: look up probabilities by content hash, add chunks.

    The index of content hashes is read from the manifests when the store is opened; chunks
    added later are stored but not looked up by the same store, so a run with the cache makes
    exactly the predictions a run without it makes.
    """

    def __init__(self, folder: Path, n_classes: int, *, run_key: str = "") -> None:
        self.folder = folder
        self.n_classes = n_classes
        self.run_key = run_key
        self._entries: dict[str, _Entry] = {}
        self._index: dict[str, tuple[str, int]] = {}
        if folder.is_dir():
            for manifest in sorted(folder.glob("*.json")):
                if manifest.name != "key.json":
                    self._add(manifest)

    def _add(self, manifest: Path) -> None:
        entry = _parse_manifest(manifest, _read_json(manifest))
        if entry is None:
            return
        chunk_id = manifest.stem
        self._entries[chunk_id] = entry
        for row, digest in enumerate(entry.hashes):
            self._index.setdefault(digest, (chunk_id, row))

    def __contains__(self, digest: object) -> bool:
        return digest in self._index

    def __len__(self) -> int:
        return len(self._index)

    def lookup(self, hashes: Iterable[str]) -> dict[str, np.ndarray]:
        """Cached probability rows by content hash. A hash whose chunk file is refused (changed,
        malformed, not data-only) is left out, and so are hashes not in the store."""
        wanted: dict[str, list[str]] = {}
        for digest in dict.fromkeys(hashes):
            if digest in self._index:
                wanted.setdefault(self._index[digest][0], []).append(digest)
        found: dict[str, np.ndarray] = {}
        for chunk_id, digests in wanted.items():
            proba = self._load(chunk_id)
            if proba is None:
                self._forget(chunk_id)
                continue
            for digest in digests:
                found[digest] = proba[self._index[digest][1]]
        return found

    def _forget(self, chunk_id: str) -> None:
        entry = self._entries.pop(chunk_id)
        for digest in entry.hashes:
            if self._index.get(digest, ("", 0))[0] == chunk_id:
                del self._index[digest]

    def _load(self, chunk_id: str) -> np.ndarray | None:
        """The chunk's probabilities, checked; None (with a warning) when refused."""
        entry = self._entries[chunk_id]
        try:
            data = entry.file.read_bytes()
        except OSError as error:
            return _refuse(entry.file, f"cannot be read ({error})")
        if hashlib.sha256(data).hexdigest() != entry.file_sha256:
            return _refuse(entry.file, "its bytes changed since it was written")
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
                names = sorted(arrays.files)
                if names != ["proba", "sha256"]:
                    return _refuse(entry.file, f"unexpected arrays {names}")
                proba, hashes = arrays["proba"], arrays["sha256"]
        except (ValueError, OSError, EOFError) as error:
            return _refuse(entry.file, f"not a data-only .npz ({error})")
        problem = _check_arrays(proba, hashes, entry.hashes, self.n_classes)
        return _refuse(entry.file, problem) if problem else proba

    def put(self, hashes: Sequence[str], proba: np.ndarray) -> str:
        """Store one predicted chunk (the ``.npz``, then its manifest); returns its id."""
        chunk_id = canonical_sha256(list(hashes))
        buffer = io.BytesIO()
        np.savez(buffer, sha256=np.array(hashes, dtype="U64"), proba=proba.astype(np.float64))
        data = buffer.getvalue()
        write_atomic(self.folder / f"{chunk_id}.npz", data)
        manifest = {
            "format": FORMAT,
            "file": f"{chunk_id}.npz",
            "file_sha256": hashlib.sha256(data).hexdigest(),
            "n_classes": self.n_classes,
            "sha256": list(hashes),
        }
        write_atomic(self.folder / f"{chunk_id}.json", json.dumps(manifest).encode())
        return chunk_id


def _refuse(path: Path, why: str) -> Any:
    """Log why a cache file is refused; returns None (for ``return _refuse(...)``)."""
    logger.warning("refusing cache file %s: %s; its images are predicted again", path, why)
    return None


def _parse_manifest(path: Path, value: object) -> _Entry | None:
    """The manifest's entry, or None (with a warning) when it is malformed."""
    if not isinstance(value, dict):
        return _refuse(path, "not a manifest")
    file, digest, hashes = value.get("file"), value.get("file_sha256"), value.get("sha256")
    if value.get("format") != FORMAT or file != f"{path.stem}.npz":
        return _refuse(path, "unknown format or file name")
    if not (isinstance(digest, str) and _HEX64.fullmatch(digest)):
        return _refuse(path, "no valid file_sha256")
    if not (isinstance(hashes, list) and hashes):
        return _refuse(path, "no image hashes")
    if not all(isinstance(h, str) and _HEX64.fullmatch(h) for h in hashes):
        return _refuse(path, "malformed image hashes")
    return _Entry(path.with_name(file), digest, tuple(hashes))


def _check_arrays(
    proba: np.ndarray, hashes: np.ndarray, expected: Sequence[str], n_classes: int
) -> str | None:
    """What is wrong with a chunk's arrays, or None."""
    if proba.dtype != np.float64 or proba.shape != (len(expected), n_classes):
        return (
            f"proba is {proba.dtype} {proba.shape}, expected float64 {(len(expected), n_classes)}"
        )
    if hashes.dtype.kind != "U" or hashes.tolist() != list(expected):
        return "its image hashes differ from its manifest's"
    if not np.all(np.isfinite(proba)) or proba.min(initial=0.0) < 0 or proba.max(initial=0.0) > 1:
        return "proba holds values outside [0, 1]"
    if not np.allclose(proba.sum(axis=1), 1.0, atol=_PROBABILITY_TOLERANCE):
        return "proba rows do not sum to 1"
    return None
