"""A checked, data-only store of rows found again by file content hash: the one store under the
image-hash cache (:mod:`asl_eval.audit.hash_cache`) and the features cache
(:mod:`asl_eval.inference.feature_cache`), which give it their key, their columns and their
words for a refusal.

A store holds, for each SHA-256 hex digest, one row of each *column* (a dtype and a row shape:
``phash`` ``uint64`` ``()``; ``features`` ``float32`` ``(width,)``). It lives in files next to
each other in the cache folder::

    <name>.npz                 the base: every entry as of the last compaction
    <name>.chunks/manifest.json  the chunks added since, oldest first
    <name>.chunks/<checksum>.npz one chunk per add, named by its checksum

Every ``.npz`` (base or chunk) is read with ``numpy.load(allow_pickle=False)``, so it holds data
only: ``format`` (the bytes of :data:`FORMAT`), ``sha256`` (``S64``: hex digests, sorted,
unique), one array per column (``(n, *shape)``, finite when floating point) and ``checksum``
(``uint8``, 32 bytes: the SHA-256 of :data:`FORMAT`, the store's key and every other array's
name, dtype, shape and bytes). Before use a file must load without pickle, hold exactly those
arrays with those dtypes and shapes, sorted lowercase hex digests, and a matching checksum (for
a chunk, also the one its name promises); otherwise it is refused (the caller's ``on_refuse``
logs why) and its entries are misses: computed again by the caller and added back.

An add writes only its new entries, as a chunk (through a temporary file and a rename,
:func:`asl_eval.cache_files.write_atomic`), then the manifest that lists it. Reads merge the
base and the listed chunks; where they share a digest, the newest wins. The add *compacts*
instead (writes base, listed chunks and new entries as one new base, then removes the manifest
and the chunk files) when there is no base yet, when more than :data:`MAX_CHUNKS` chunks would
be listed, or when the read refused a file, so a damaged file is replaced by the next add. So a
growing store is rewritten whole once every ``MAX_CHUNKS + 1`` adds, not on every add.

A run killed at any moment leaves a readable store: a half-written file is a temporary file no
read opens; a chunk written but not yet listed is not read (its entries are computed again) and
is removed by the next compaction; a compaction killed after its base was written leaves the old
manifest listing chunks whose entries the base already holds, with the same values. Temporary
files older than an hour are removed by a compaction too (a younger one may be another run's
write in progress). Two runs writing the same store at once each write their own chunks; the
last manifest (or compaction) wins and the other run's new entries are computed again next time.

Version mismatch: a file of another store format (the single-file stores asl-eval wrote before
this module had no ``format`` array) is refused like a damaged one, with a reason that says so,
and the next add compacts the store over it; the key and the file names are unchanged, so no
old file is left behind. A manifest of another format is refused the same way.

As with the predictions cache, the checks find damaged or foreign files; someone who can write
to the cache folder can still write consistent wrong rows, so a store is as trustworthy as its
folder.

Layer: just above the bottom (:mod:`asl_eval.cache_files`); imports numpy, the standard library
and :mod:`asl_eval.cache_files`; never torch.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import re
import time
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from asl_eval.cache_files import write_atomic

__all__ = ["FORMAT", "MAX_CHUNKS", "Column", "ContentStore", "Found"]

FORMAT = "asl-eval content store 2"
"""The file format, stored in every file and covered by its checksum (1: the single-file
stores written before chunks)."""

MAX_CHUNKS = 16
"""The most chunks listed at once; the add that would list one more compacts the store."""

STALE_SECONDS = 3600.0
"""A temporary file in a chunk folder older than this is a killed run's, removed on compaction."""

_RESERVED = frozenset({"format", "sha256", "checksum"})
_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
_DIGEST = re.compile(r"[0-9a-f]{64}")
_CHUNK_NAME = re.compile(r"[0-9a-f]{64}\.npz")
_MANIFEST = "manifest.json"


@dataclass(frozen=True)
class Column:
    """One value per digest: its dtype and the shape of one row (``()`` for a scalar)."""

    dtype: DTypeLike
    shape: tuple[int, ...] = ()

    @property
    def numpy_dtype(self) -> np.dtype:
        return np.dtype(self.dtype)


class Found(NamedTuple):
    """What :meth:`ContentStore.lookup` found: the positions (in the digests asked for) of the
    digests held, and each column's rows for them, in the same order."""

    positions: np.ndarray
    values: dict[str, np.ndarray]


@dataclass(frozen=True)
class _Part:
    sha256: np.ndarray  # S64, sorted, unique
    values: dict[str, np.ndarray] = field(default_factory=dict)


class ContentStore:
    """The store at ``path`` (the base file; its chunks sit in ``<stem>.chunks/`` beside it).

    Parameters
    ----------
    path
        The base file, ``<name>.npz``. Nothing is read or written until it is used.
    key
        What the store's contents depend on (the caller's cache key); every file's checksum
        covers it, so a file of another key is refused.
    columns
        The values stored per digest, by name (not ``format``, ``sha256`` or ``checksum``).
    on_refuse
        Called with a refused file's path and the reason (the caller logs it, in its words).

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = Path(folder) / "k.npz"
    ...     store = ContentStore(path, "k", {"n": Column(np.int64)}, on_refuse=print)
    ...     store.add(["ab" * 32, "cd" * 32], {"n": [1, 2]})  # the first add writes the base
    ...     store.add(["cd" * 32], {"n": [3]})  # later ones a chunk each
    ...     found = ContentStore(path, "k", {"n": Column(np.int64)}, on_refuse=print).lookup(
    ...         ["ef" * 32, "cd" * 32, "ab" * 32]
    ...     )
    >>> found.positions.tolist(), found.values["n"].tolist()
    ([1, 2], [3, 1])
    """

    def __init__(
        self,
        path: Path,
        key: str,
        columns: Mapping[str, Column],
        *,
        on_refuse: Callable[[Path, str], object],
    ) -> None:
        reserved = sorted(_RESERVED.intersection(columns))
        if reserved or not columns:
            raise ValueError(
                f"a store needs at least one column, none named format, sha256 or checksum; "
                f"got {sorted(columns)}"
            )
        self.path = Path(path)
        self.key = key
        self.columns = dict(columns)
        self.chunk_folder = self.path.with_suffix(".chunks")
        self.manifest_path = self.chunk_folder / _MANIFEST
        self._on_refuse = on_refuse
        self._arrays = sorted([*_RESERVED, *self.columns])
        self._parts: list[_Part] | None = None  # base first, then chunks, oldest first
        self._chunks: list[str] = []  # the chunk files the manifest lists, as read and written
        self._has_base = False
        self._refused = False
        self._merged: _Part | None = None

    # --- reading --------------------------------------------------------------------------

    def _load(self) -> list[_Part]:
        if self._parts is None:
            self._parts = self._read()
            self._merged = None
        return self._parts

    def _view(self) -> _Part:
        """Every entry, merged (the newest of equal digests wins)."""
        parts = self._load()
        if self._merged is None:
            self._merged = self._merge(parts)
        return self._merged

    def _read(self) -> list[_Part]:
        self._refused = False
        self._has_base = self.path.is_file()
        parts = []
        if self._has_base:
            base = self._read_file(self.path)
            if base is not None:
                parts.append(base)
        self._chunks = []
        for name in self._read_manifest():
            chunk_path = self.chunk_folder / name
            if not chunk_path.is_file():
                self._refuse(chunk_path, "it is listed in the manifest but missing")
                continue
            chunk = self._read_file(chunk_path, checksum=name.removesuffix(".npz"))
            if chunk is not None:
                parts.append(chunk)
                self._chunks.append(name)
        return parts

    def _read_manifest(self) -> list[str]:
        """The chunk files the manifest lists (none when there is no manifest or it is refused)."""
        if not self.manifest_path.is_file():
            return []
        try:
            manifest = json.loads(self.manifest_path.read_bytes())
        except (OSError, ValueError) as error:  # JSONDecodeError, UnicodeDecodeError
            self._refuse(self.manifest_path, f"not a JSON manifest ({type(error).__name__})")
            return []
        if not isinstance(manifest, dict) or sorted(manifest) != ["chunks", "format", "key"]:
            self._refuse(self.manifest_path, "it is not a manifest of chunks")
            return []
        if manifest["format"] != FORMAT:
            self._refuse(
                self.manifest_path, f"its format is {manifest['format']!r}, expected {FORMAT!r}"
            )
            return []
        if manifest["key"] != self.key:
            self._refuse(self.manifest_path, "it belongs to another store (another key)")
            return []
        chunks = manifest["chunks"]
        if (
            not isinstance(chunks, list)
            or not all(isinstance(c, str) and _CHUNK_NAME.fullmatch(c) for c in chunks)
            or len(set(chunks)) != len(chunks)
        ):
            self._refuse(self.manifest_path, "its chunks are not distinct <sha256>.npz names")
            return []
        return chunks

    def _read_file(self, path: Path, *, checksum: str | None = None) -> _Part | None:
        """A base or chunk file, checked; None (refused) when anything is wrong with it."""
        loaded, problem = self._load_arrays(path)
        if loaded is not None:
            problem = self._problem(loaded)
            if problem is None and checksum not in (None, loaded["checksum"].tobytes().hex()):
                problem = "its checksum is not the one its name promises"
        if loaded is None or problem is not None:
            self._refuse(path, problem or "unreadable")
            return None
        return _Part(loaded["sha256"], {name: loaded[name] for name in self.columns})

    def _load_arrays(self, path: Path) -> tuple[dict[str, np.ndarray] | None, str | None]:
        """A file's arrays, loaded without pickle, or why they cannot be."""
        try:
            data = path.read_bytes()
            with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
                names = sorted(arrays.files)
                if "format" not in names:
                    return None, f"it holds no format entry (an older asl-eval's file?): {names}"
                if names != self._arrays:
                    return None, f"unexpected arrays {names}"
                return {name: arrays[name] for name in names}, None
        except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as error:
            return None, f"not a data-only .npz ({type(error).__name__}: {error})"

    def _refuse(self, path: Path, why: str) -> None:
        self._refused = True
        self._on_refuse(path, why)

    def _problem(self, arrays: Mapping[str, np.ndarray]) -> str | None:
        """What is wrong with a file's arrays, or None."""
        sha256, checksum, form = arrays["sha256"], arrays["checksum"], arrays["format"]
        if form.dtype.kind != "S" or form.shape != () or form.item() != FORMAT.encode():
            return f"its format is {form.tolist()!r}, expected {FORMAT!r}"
        if sha256.dtype != np.dtype("S64") or sha256.ndim != 1:
            return f"sha256 is {sha256.dtype} {sha256.shape}, expected S64 (n,)"
        n = len(sha256)
        for name, column in self.columns.items():
            array, shape = arrays[name], (n, *column.shape)
            if array.dtype != column.numpy_dtype or array.shape != shape:
                expected = f"{column.numpy_dtype} {shape}"
                return f"{name} is {array.dtype} {array.shape}, expected {expected}"
        if checksum.dtype != np.uint8 or checksum.shape != (32,):
            return "no valid checksum"
        characters = sha256.view(np.uint8)
        if characters.size != 64 * n or not np.isin(characters, _HEX).all():
            return "its content hashes are not 64 lowercase hex digits"
        if n > 1 and not bool(np.all(sha256[1:] > sha256[:-1])):
            return "its content hashes are not sorted and unique"
        for name in self.columns:
            if arrays[name].dtype.kind in "fc" and not np.isfinite(arrays[name]).all():
                return f"its {name} hold values that are not finite"
        values = {name: arrays[name] for name in self.columns}
        if not np.array_equal(checksum, self._checksum(_Part(sha256, values))):
            return "its checksum does not match its contents"
        return None

    def _checksum(self, part: _Part) -> np.ndarray:
        digest = hashlib.sha256(f"{FORMAT}\n{self.key}\n".encode())
        for name, array in [("sha256", part.sha256), *sorted(part.values.items())]:
            digest.update(f"{name}|{array.dtype.str}|{array.shape}\n".encode())
            digest.update(np.ascontiguousarray(array).tobytes())
        return np.frombuffer(digest.digest(), dtype=np.uint8).copy()

    def _merge(self, parts: Sequence[_Part]) -> _Part:
        """One part of all, sorted; of equal digests, the one in the latest part (or, within
        one part, the first) wins."""
        if len(parts) == 1:
            return parts[0]
        if not parts:
            return _Part(
                np.zeros(0, "S64"),
                {name: np.zeros((0, *c.shape), c.numpy_dtype) for name, c in self.columns.items()},
            )
        newest_first = parts[::-1]  # np.unique keeps the first of equal digests
        sha256, first = np.unique(
            np.concatenate([p.sha256 for p in newest_first]), return_index=True
        )
        values = {
            name: np.ascontiguousarray(
                np.concatenate([p.values[name] for p in newest_first])[first]
            )
            for name in self.columns
        }
        return _Part(sha256, values)

    # --- the public surface -----------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._view().sha256)

    def __contains__(self, digest: object) -> bool:
        return isinstance(digest, str) and len(self.lookup([digest]).positions) > 0

    def lookup(self, digests: Sequence[str]) -> Found:
        """The digests held (their positions in ``digests``) and their rows (copies)."""
        merged = self._view()
        asked = [i for i, d in enumerate(digests) if len(d) == 64 and d.isascii()]
        if not asked or len(merged.sha256) == 0:
            empty = np.zeros(0, dtype=np.intp)
            return Found(empty, {name: values[empty] for name, values in merged.values.items()})
        wanted = np.array([digests[i] for i in asked], dtype="S64")
        position = np.searchsorted(merged.sha256, wanted)
        position[position >= len(merged.sha256)] = 0
        held = merged.sha256[position] == wanted
        rows = position[held]
        found = np.asarray(asked, dtype=np.intp)[held]
        return Found(found, {name: values[rows] for name, values in merged.values.items()})

    def add(self, digests: Sequence[str], values: Mapping[str, ArrayLike]) -> None:
        """Add rows (one per digest, for every column; of equal digests the first is kept) and
        write them: as one new chunk, or by compacting (see the module's notes). The new rows
        replace any held for the same digests. No-op when ``digests`` is empty."""
        if len(digests) == 0:
            return
        new = self._new_part(digests, values)
        parts = self._load()
        if self._refused or not self._has_base or len(self._chunks) >= MAX_CHUNKS:
            self._compact([*parts, new])
        else:
            self._append(new)

    def _new_part(self, digests: Sequence[str], values: Mapping[str, ArrayLike]) -> _Part:
        if sorted(values) != sorted(self.columns):
            raise ValueError(f"expected values for {sorted(self.columns)}, got {sorted(values)}")
        bad = [d for d in digests if not (isinstance(d, str) and _DIGEST.fullmatch(d))]
        if bad:
            raise ValueError(
                f"{len(bad)} of {len(digests)} digests are not 64 lowercase hex digits: "
                f"{', '.join(map(repr, bad[:3]))}"
            )
        sha256, first = np.unique(np.array(list(digests), dtype="S64"), return_index=True)
        rows = {}
        for name, column in self.columns.items():
            array = np.asarray(values[name], dtype=column.numpy_dtype)
            if array.shape != (len(digests), *column.shape):
                raise ValueError(
                    f"{name} has shape {array.shape}, expected {(len(digests), *column.shape)}"
                )
            if array.dtype.kind in "fc" and not np.isfinite(array).all():
                raise ValueError(f"{name} holds values that are not finite")
            rows[name] = np.ascontiguousarray(array[first])
        return _Part(sha256, rows)

    # --- writing ----------------------------------------------------------------------------

    def _encode(self, part: _Part) -> tuple[bytes, str]:
        """The part's ``.npz`` bytes and its checksum (hex)."""
        checksum = self._checksum(part)
        arrays: dict[str, Any] = {  # Any: numpy's stubs would match allow_pickle to an array
            "format": np.array(FORMAT.encode()),
            "sha256": part.sha256,
            "checksum": checksum,
            **part.values,
        }
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)  # numeric and bytes arrays only: nothing to pickle
        return buffer.getvalue(), checksum.tobytes().hex()

    def _append(self, new: _Part) -> None:
        data, checksum = self._encode(new)
        name = f"{checksum}.npz"
        write_atomic(self.chunk_folder / name, data)
        chunks = [*(c for c in self._chunks if c != name), name]  # a repeated add is the newest
        manifest = {"format": FORMAT, "key": self.key, "chunks": chunks}
        write_atomic(self.manifest_path, json.dumps(manifest, indent=1).encode())
        self._chunks = chunks
        self._parts = [*self._load(), new]
        self._merged = None

    def _compact(self, parts: Sequence[_Part]) -> None:
        merged = self._merge(parts)
        data, _ = self._encode(merged)
        write_atomic(self.path, data)  # the base now holds every chunk's entries
        self._remove_chunks()
        self._parts, self._merged, self._chunks = [merged], merged, []
        self._has_base, self._refused = True, False

    def _remove_chunks(self) -> None:
        """Remove the manifest first (from then on no chunk is read), then the chunk files and
        stale temporary files; the folder too when that empties it."""
        if not self.chunk_folder.is_dir():
            return
        self.manifest_path.unlink(missing_ok=True)
        stale = time.time() - STALE_SECONDS
        for path in self.chunk_folder.iterdir():
            temporary = path.name.startswith(".") and path.name.endswith(".tmp")
            if _CHUNK_NAME.fullmatch(path.name) or (temporary and _mtime(path) < stale):
                path.unlink(missing_ok=True)
        with contextlib.suppress(OSError):  # not empty: a write in progress, or not our file
            self.chunk_folder.rmdir()


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return float("inf")  # gone already
