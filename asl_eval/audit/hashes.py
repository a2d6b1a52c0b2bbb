"""Perceptual and content hashes of image files: the raw material of the leakage audit.

Each image gets three fingerprints:

- a **pHash** (``imagehash.phash``: the signs of the 8×8 lowest frequencies of a 32×32
  greyscale DCT, 64 bits), robust to brightness, re-compression and small shifts; the primary
  near-duplicate signal;
- a **dHash** (``imagehash.dhash``: the signs of horizontal gradients of a 9×8 greyscale
  thumbnail, 64 bits), computed differently, so a pair close under both hashes is a near-duplicate
  with more confidence than under one; the confirming hash;
- the **SHA-256** of the file's bytes (as :func:`asl_eval.hashing.file_sha256`), for exact
  duplicates.

Both perceptual hashes are packed into one unsigned 64-bit integer per image (bit ``i`` of the
hash, row-major, is bit ``63 - i`` of the integer), so the Hamming distance between two hashes
is the popcount of their XOR (:func:`asl_eval.audit.neighbours.hamming`) and equals imagehash's
``h1 - h2``.

Images are decoded with :func:`asl_eval.inputs.decode_rgb` (the rules of
:func:`~asl_eval.inputs.load_rgb`), exactly as evaluation decodes them, each file's bytes read
once for both its SHA-256 and its pixels. A file that cannot be decoded is never dropped
silently: it is recorded in :attr:`HashTable.entries` with its ledger reason.

At scale (issue 14: 87,000 frames), :func:`hash_files`

- first reads every file's SHA-256 (two threads) and takes the hashes of files already in the
  image-hash cache (:mod:`~asl_eval.audit.hash_cache`), so unchanged images are never decoded
  twice;
- hashes the rest in worker *processes* (joblib's, chunks of 256 files), since decoding
  and resizing hold the GIL for much of their time: on 2 cores, 2 threads hashed no faster than
  one, 2 processes twice as fast. Small jobs (fewer than :data:`POOL_MIN_FILES` files) stay in
  this process;
- decodes every image fully. Pillow's JPEG draft mode (decoding at 1/2 to 1/8 scale) would skip
  little here (entropy decoding dominates; 10% on 200×200 frames) and would change hashes
  against a full decode, so it is not used: the hashes equal imagehash's on the decoded image.

Imports numpy, Pillow, imagehash, joblib, :mod:`asl_eval.inputs`, :mod:`asl_eval.labels`,
:mod:`asl_eval.predictions` (ledger entries), :mod:`asl_eval.progress` and the audit's
:mod:`~asl_eval.audit.hash_cache`; never torch or fastai.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePath

import imagehash
import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from PIL import Image

from asl_eval.audit.hash_cache import HashCache
from asl_eval.errors import InputError, MetricError, UnreadableImage
from asl_eval.inputs import decode_rgb, discover_images, read_image_bytes
from asl_eval.labels import LabelOptions, label_files
from asl_eval.predictions import LedgerEntry
from asl_eval.progress import Progress, notify

__all__ = [
    "HASH_BITS",
    "POOL_MIN_FILES",
    "HashTable",
    "hash_files",
    "hash_folder",
    "image_hashes",
    "pack_hash",
    "relative_path",
]

HASH_BITS = 64
"""Bits in each perceptual hash (imagehash's default ``hash_size=8``)."""

POOL_MIN_FILES = 512
"""Fewest files to hash for which :func:`hash_files` starts worker processes by default."""

logger = logging.getLogger(__name__)

_CHUNK = 256  # files per task of a worker process
_READ_THREADS = 2


def pack_hash(hash_value: imagehash.ImageHash) -> int:
    """An imagehash hash as one unsigned 64-bit integer (bit ``i`` row-major is bit ``63 - i``).

    >>> import numpy as np, imagehash
    >>> bits = np.zeros((8, 8), dtype=bool)
    >>> bits[0, 0] = bits[7, 7] = True
    >>> hex(pack_hash(imagehash.ImageHash(bits)))
    '0x8000000000000001'
    """
    bits = np.asarray(hash_value.hash, dtype=bool).ravel()
    if bits.size != HASH_BITS:
        raise MetricError(f"expected a {HASH_BITS}-bit hash; got {bits.size} bits.")
    return int(np.packbits(bits).view(">u8")[0])


def image_hashes(image: Image.Image) -> tuple[int, int]:
    """The packed ``(pHash, dHash)`` of one decoded image.

    A flat image: only pHash's constant (DC) term lies above the median; no gradients.

    >>> from PIL import Image
    >>> phash, dhash = image_hashes(Image.new("RGB", (32, 32), (128, 128, 128)))
    >>> hex(phash), dhash
    ('0x8000000000000000', 0)
    """
    # Both hashes start with image.convert("L"); converting once and handing them the
    # greyscale image (whose convert("L") is a copy) gives the same bits in less time.
    grey = image.convert("L")
    return pack_hash(imagehash.phash(grey)), pack_hash(imagehash.dhash(grey))


def relative_path(path: str | Path, root: str | Path | None) -> str:
    """``path`` as a POSIX path relative to ``root``; its file name when it is not under it.

    >>> relative_path("/data/train/A/A1.jpg", "/data/train")
    'A/A1.jpg'
    >>> relative_path("/elsewhere/B1.jpg", "/data/train")
    'B1.jpg'
    """
    pure = PurePath(path)
    if root is not None:
        try:
            return pure.relative_to(PurePath(root)).as_posix()
        except ValueError:
            pass
    return pure.name


def _relative_paths(paths: Sequence[str], root: str | Path | None) -> tuple[str, ...]:
    """:func:`relative_path` of each path, each folder worked out once (87,000 frames live in
    29 folders)."""
    folders: dict[str, str] = {}
    relpaths = []
    for path in paths:
        folder, name = os.path.split(path)
        if folder not in folders:  # "sub/folder/" under the root, "" elsewhere
            folders[folder] = relative_path(os.path.join(folder, "x"), root)[:-1]
        relpaths.append(folders[folder] + name)
    return tuple(relpaths)


@dataclass(frozen=True)
class HashTable:
    """The hashes of one set of images, one entry per usable image, plus the files set aside.

    Attributes
    ----------
    name
        The set's name (``"train"``, ``"valid"``, a test folder's name).
    paths
        The hashed images, as given.
    relpaths
        Each path relative to the set's root folder (POSIX), or its file name.
    labels
        Each image's class, ``""`` where unknown.
    sha256
        Each file's content SHA-256 (64 lowercase hex digits).
    phash, dhash
        Packed 64-bit perceptual hashes, ``uint64`` arrays.
    entries
        Files found but not hashed, each with its reason (unreadable, unlabeled, ...).
    """

    name: str
    paths: tuple[str, ...]
    relpaths: tuple[str, ...]
    labels: tuple[str, ...]
    sha256: tuple[str, ...]
    phash: np.ndarray
    dhash: np.ndarray
    entries: tuple[LedgerEntry, ...] = field(default=())

    def __post_init__(self) -> None:
        n = len(self.paths)
        sizes = {
            "relpaths": len(self.relpaths),
            "labels": len(self.labels),
            "sha256": len(self.sha256),
            "phash": len(self.phash),
            "dhash": len(self.dhash),
        }
        wrong = {key: size for key, size in sizes.items() if size != n}
        if wrong:
            raise MetricError(
                f"hash table {self.name!r} has {n} paths but {wrong}: one value per image needed."
            )
        object.__setattr__(self, "phash", np.asarray(self.phash, dtype=np.uint64))
        object.__setattr__(self, "dhash", np.asarray(self.dhash, dtype=np.uint64))

    def __len__(self) -> int:
        return len(self.paths)

    def take(self, index: Sequence[int] | np.ndarray, *, name: str | None = None) -> HashTable:
        """The images at ``index`` (in that order) as a new table; ``entries`` are kept only
        when the name is kept (a split of one folder records its exclusions once)."""
        index = np.asarray(index, dtype=np.int64)
        keep = name is None or name == self.name
        return HashTable(
            name=self.name if name is None else name,
            paths=tuple(self.paths[i] for i in index),
            relpaths=tuple(self.relpaths[i] for i in index),
            labels=tuple(self.labels[i] for i in index),
            sha256=tuple(self.sha256[i] for i in index),
            phash=self.phash[index],
            dhash=self.dhash[index],
            entries=self.entries if keep else (),
        )

    def to_frame(self) -> pd.DataFrame:
        """One row per image: path, relpath, label, sha256, phash and dhash as 16 hex digits."""
        return pd.DataFrame(
            {
                "path": list(self.paths),
                "relpath": list(self.relpaths),
                "label": list(self.labels),
                "sha256": list(self.sha256),
                "phash": [f"{int(v):016x}" for v in self.phash],
                "dhash": [f"{int(v):016x}" for v in self.dhash],
            }
        )


def _worker_count(workers: int | None, n_files: int) -> int:
    """Processes for hashing ``n_files``: as asked, else one below :data:`POOL_MIN_FILES`
    files (starting processes costs more than it saves) and the usable CPUs (at most 8)
    above."""
    if workers is not None:
        if workers < 1:
            raise MetricError(f"workers must be at least 1; got {workers}.")
        return workers
    if n_files < POOL_MIN_FILES:
        return 1
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = os.cpu_count() or 1
    return max(1, min(8, usable))


_Outcome = tuple[str, int, int, str, str]
"""One file's hashing outcome: ``(sha256, phash, dhash, reason, detail)``; ``reason`` is
empty when it was hashed, else the ledger reason (and ``sha256`` empty when unread)."""


def _hash_paths(paths: Sequence[str], max_pixels: int | None) -> list[_Outcome]:
    """Read, content-hash, decode and hash each file (in a worker process, or in this one)."""
    outcomes: list[_Outcome] = []
    for path in paths:
        digest = ""
        try:
            data = read_image_bytes(path)
            digest = hashlib.sha256(data).hexdigest()
            phash, dhash = image_hashes(decode_rgb(data, path=path, max_pixels=max_pixels))
        except UnreadableImage as error:
            outcomes.append((digest, 0, 0, error.reason, error.detail))
        else:
            outcomes.append((digest, phash, dhash, "", ""))
    return outcomes


def _hash_pool(
    paths: Sequence[str],
    workers: int,
    max_pixels: int | None,
    on_chunk: Callable[[int], None],
) -> list[_Outcome]:
    """:func:`_hash_paths` over chunks of ``paths`` in ``workers`` processes, in order.

    The processes are joblib's (loky): started by fork and exec, so they neither inherit the
    threads of this process (torch's, a progress display's) nor re-run a user's script that
    lacks an ``if __name__ == "__main__"`` guard, and reused by the next call.
    """
    size = max(1, min(_CHUNK, -(-len(paths) // workers)))  # at least one chunk per worker
    chunks = [paths[start : start + size] for start in range(0, len(paths), size)]
    if workers == 1 or len(chunks) <= 1:
        results: Iterable[list[_Outcome]] = (_hash_paths(c, max_pixels) for c in chunks)
    else:
        parallel = Parallel(n_jobs=min(workers, len(chunks)), backend="loky", return_as="generator")
        results = parallel(delayed(_hash_paths)(chunk, max_pixels) for chunk in chunks)
    outcomes: list[_Outcome] = []
    for chunk in results:
        outcomes += chunk
        on_chunk(len(outcomes))
    return outcomes


def _digests(paths: Sequence[str]) -> list[str | UnreadableImage]:
    digests: list[str | UnreadableImage] = []
    for path in paths:
        try:
            digests.append(hashlib.sha256(read_image_bytes(path)).hexdigest())
        except UnreadableImage as error:
            digests.append(error)
    return digests


def _read_digests(paths: Sequence[str]) -> list[str | UnreadableImage]:
    """Each file's content SHA-256, or why it cannot be read (threads, a chunk of files each:
    file reads and hashlib release the GIL)."""
    chunks = [paths[start : start + _CHUNK] for start in range(0, len(paths), _CHUNK)]
    with ThreadPoolExecutor(max_workers=_READ_THREADS) as pool:
        return [digest for chunk in pool.map(_digests, chunks) for digest in chunk]


def hash_files(
    paths: Sequence[str | Path],
    *,
    name: str = "set",
    root: str | Path | None = None,
    labels: Sequence[str] | None = None,
    progress: Progress | None = None,
    workers: int | None = None,
    cache: bool = True,
    cache_dir: str | Path | None = None,
) -> HashTable:
    """Decode and hash every file; an unreadable one goes into ``entries`` with its reason.

    Hashing runs in worker processes (the hashes are the same as in one process) and skips
    every file whose content hash is in the image-hash cache
    (:class:`~asl_eval.audit.hash_cache.HashCache`); what it hashes is added to the cache.

    Parameters
    ----------
    paths
        The image files, in the order the table keeps.
    name
        The set's name.
    root
        The folder relative paths are taken from (default: file names only).
    labels
        One class per path (default: unknown, ``""``).
    progress
        Called with ``"hash"`` events named ``name``.
    workers
        Worker processes (default: one below :data:`POOL_MIN_FILES` files to hash, else the
        usable CPUs, at most 8); 1 hashes in this process.
    cache
        Read and update the image-hash cache; False hashes every file and writes nothing.
    cache_dir
        The cache folder (default: ``$ASL_EVAL_CACHE_DIR``, else ``~/.cache/asl-eval``).

    Returns
    -------
    HashTable
    """
    if labels is not None and len(labels) != len(paths):
        raise MetricError(f"{len(paths)} paths but {len(labels)} labels: one label per path.")
    names = [str(path) for path in paths]
    total = len(names)
    outcomes: list[_Outcome | None] = [None] * total
    store = HashCache(cache_dir) if cache else None
    todo = list(range(total))
    if store is not None:
        digests = _read_digests(names)
        found = store.lookup([d for d in digests if isinstance(d, str)])
        todo = []
        for i, digest in enumerate(digests):
            if isinstance(digest, UnreadableImage):
                outcomes[i] = ("", 0, 0, digest.reason, digest.detail)
            elif digest in found:
                outcomes[i] = (digest, *found[digest], "", "")
            else:
                todo.append(i)
    n_known = total - len(todo)
    if total:
        notify(progress, "hash", name, n_known, total)
    limit = Image.MAX_IMAGE_PIXELS  # the caller's limit, for worker processes too
    computed = _hash_pool(
        [names[i] for i in todo],
        _worker_count(workers, len(todo)),
        limit,
        lambda done: notify(progress, "hash", name, n_known + done, total),
    )
    for i, outcome in zip(todo, computed, strict=True):
        outcomes[i] = outcome
    if store is not None:
        _store_new(store, computed)
    return _table(names, outcomes, name=name, root=root, labels=labels)


def _store_new(store: HashCache, computed: Sequence[_Outcome]) -> None:
    hashed = [outcome for outcome in computed if not outcome[3]]
    try:
        store.add([o[0] for o in hashed], [o[1] for o in hashed], [o[2] for o in hashed])
    except OSError as error:
        logger.warning("could not write the image-hash cache %s: %s", store.path, error)


def _table(
    names: Sequence[str],
    outcomes: Sequence[_Outcome | None],
    *,
    name: str,
    root: str | Path | None,
    labels: Sequence[str] | None,
) -> HashTable:
    keep: list[int] = []
    entries: list[LedgerEntry] = []
    for i, outcome in enumerate(outcomes):
        if outcome is None:  # every file has an outcome by now
            raise MetricError(f"{names[i]} was neither hashed nor excluded.")
        label = "" if labels is None else str(labels[i])
        if outcome[3]:
            entries.append(LedgerEntry(names[i], "excluded", outcome[3], label=label or None))
        else:
            keep.append(i)
    kept = [outcomes[i] for i in keep]
    return HashTable(
        name=name,
        paths=tuple(names[i] for i in keep),
        relpaths=_relative_paths([names[i] for i in keep], root),
        labels=tuple("" if labels is None else str(labels[i]) for i in keep),
        sha256=tuple(o[0] for o in kept if o is not None),
        phash=np.array([o[1] for o in kept if o is not None], dtype=np.uint64),
        dhash=np.array([o[2] for o in kept if o is not None], dtype=np.uint64),
        entries=tuple(entries),
    )


def hash_folder(
    root: str | Path,
    *,
    name: str | None = None,
    labelled: bool = True,
    label_options: LabelOptions | None = None,
    progress: Progress | None = None,
    workers: int | None = None,
    cache: bool = True,
    cache_dir: str | Path | None = None,
) -> HashTable:
    """Find, label and hash every image under ``root``, in training's order.

    With ``labelled`` (a training folder), images are listed and labelled exactly as
    :func:`asl_eval.training.data.training_items` lists them (default rule: the parent folder's
    name), so the table's order is training's order and a seeded split of it is training's
    split; unlabeled files go into ``entries``. Without it (a test folder) every image is
    hashed with an unknown label. ``progress``, ``workers``, ``cache`` and ``cache_dir`` are
    :func:`hash_files`'.

    Raises
    ------
    InputError
        If ``root`` holds no usable image.
    """
    root = Path(root)
    options = label_options or LabelOptions(source="folder")
    discovery = discover_images(root, follow_links=options.follow_links)
    entries = list(discovery.entries)
    if labelled:
        labeled = label_files(list(discovery.images), root=root, options=options)
        entries.extend(labeled.entries)
        files: list[Path] = [path for path, _ in labeled.items]
        labels: list[str] | None = [label for _, label in labeled.items]
    else:
        files, labels = list(discovery.images), None
    table = hash_files(
        files,
        name=name or root.name,
        root=discovery.root,
        labels=labels,
        progress=progress,
        workers=workers,
        cache=cache,
        cache_dir=cache_dir,
    )
    if len(table) == 0:
        raise InputError(
            f"{root} holds no usable image to hash ({len(entries) + len(table.entries)} files "
            "set aside). Pass a folder of images."
        )
    return replace(table, entries=(*entries, *table.entries))
