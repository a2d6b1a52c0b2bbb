"""Perceptual and content hashes of image files: the raw material of the leakage audit.

Each image gets three fingerprints:

- a **pHash** (``imagehash.phash``: the signs of the 8×8 lowest frequencies of a 32×32
  greyscale DCT, 64 bits), robust to brightness, re-compression and small shifts; the primary
  near-duplicate signal;
- a **dHash** (``imagehash.dhash``: the signs of horizontal gradients of a 9×8 greyscale
  thumbnail, 64 bits), computed differently, so a pair close under both hashes is a near-duplicate
  with more confidence than under one; the confirming hash;
- the **SHA-256** of the file's bytes (:func:`asl_eval.hashing.file_sha256`), for exact
  duplicates.

Both perceptual hashes are packed into one unsigned 64-bit integer per image (bit ``i`` of the
hash, row-major, is bit ``63 - i`` of the integer), so the Hamming distance between two hashes
is the popcount of their XOR (:func:`asl_eval.audit.neighbours.hamming`) and equals imagehash's
``h1 - h2``.

Images are decoded with :func:`asl_eval.inputs.load_rgb`, exactly as evaluation decodes them. A
file that cannot be decoded is never dropped silently: it is recorded in
:attr:`HashTable.entries` with its ledger reason.

Imports numpy, Pillow, imagehash, :mod:`asl_eval.inputs`, :mod:`asl_eval.labels`,
:mod:`asl_eval.hashing`, :mod:`asl_eval.predictions` (ledger entries) and
:mod:`asl_eval.progress`; never torch or fastai.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePath

import imagehash
import numpy as np
import pandas as pd
from PIL import Image

from asl_eval.errors import InputError, MetricError, UnreadableImage
from asl_eval.hashing import file_sha256
from asl_eval.inputs import discover_images, load_rgb
from asl_eval.labels import LabelOptions, label_files
from asl_eval.predictions import LedgerEntry
from asl_eval.progress import Progress, notify

__all__ = [
    "HASH_BITS",
    "HashTable",
    "hash_files",
    "hash_folder",
    "image_hashes",
    "pack_hash",
    "relative_path",
]

HASH_BITS = 64
"""Bits in each perceptual hash (imagehash's default ``hash_size=8``)."""

_PROGRESS_EVERY = 64


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
    return pack_hash(imagehash.phash(image)), pack_hash(imagehash.dhash(image))


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


def hash_files(
    paths: Sequence[str | Path],
    *,
    name: str = "set",
    root: str | Path | None = None,
    labels: Sequence[str] | None = None,
    progress: Progress | None = None,
) -> HashTable:
    """Decode and hash every file; an unreadable one goes into ``entries`` with its reason.

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
        Called with ``"decode"`` events named ``"hashing <name>"``.

    Returns
    -------
    HashTable
    """
    if labels is not None and len(labels) != len(paths):
        raise MetricError(f"{len(paths)} paths but {len(labels)} labels: one label per path.")
    rows: list[tuple[str, str, str, str, int, int]] = []
    entries: list[LedgerEntry] = []
    total = len(paths)
    for done, path in enumerate(paths, start=1):
        label = "" if labels is None else str(labels[done - 1])
        try:
            phash, dhash = image_hashes(load_rgb(path))
        except UnreadableImage as error:
            entries.append(LedgerEntry(str(path), "excluded", error.reason, label=label or None))
        else:
            rows.append(
                (str(path), relative_path(path, root), label, file_sha256(path), phash, dhash)
            )
        if done % _PROGRESS_EVERY == 0 or done == total:
            notify(progress, "decode", f"hashing {name}", done, total)
    columns = list(zip(*rows, strict=True)) if rows else [(), (), (), (), (), ()]
    return HashTable(
        name=name,
        paths=tuple(columns[0]),
        relpaths=tuple(columns[1]),
        labels=tuple(columns[2]),
        sha256=tuple(columns[3]),
        phash=np.array(columns[4], dtype=np.uint64),
        dhash=np.array(columns[5], dtype=np.uint64),
        entries=tuple(entries),
    )


def hash_folder(
    root: str | Path,
    *,
    name: str | None = None,
    labelled: bool = True,
    label_options: LabelOptions | None = None,
    progress: Progress | None = None,
) -> HashTable:
    """Find, label and hash every image under ``root``, in training's order.

    With ``labelled`` (a training folder), images are listed and labelled exactly as
    :func:`asl_eval.training.data.training_items` lists them (default rule: the parent folder's
    name), so the table's order is training's order and a seeded split of it is training's
    split; unlabeled files go into ``entries``. Without it (a test folder) every image is
    hashed with an unknown label.

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
        files, name=name or root.name, root=discovery.root, labels=labels, progress=progress
    )
    if len(table) == 0:
        raise InputError(
            f"{root} holds no usable image to hash ({len(entries) + len(table.entries)} files "
            "set aside). Pass a folder of images."
        )
    return replace(table, entries=(*entries, *table.entries))
