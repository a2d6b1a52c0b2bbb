"""Frame groups: images so alike (neighbouring video frames, re-encoded copies) that they must
stay on one side of a split and count once in an interval.

Two images are *linked* when either

- their file names number frames of one sequence and they fall in one *block* of that
  sequence: the file stem ends in a frame number (``A1234.jpg`` is frame 1234 of sequence
  ``A``; the sequence is the folder, the text before the number and the label together, so
  ``A/A12.jpg`` and ``B/B12.jpg`` never link), and the sequence's frames, in order, are cut into
  blocks whose frames all lie within :data:`DEFAULT_FRAME_GAP` (``G``) of the block's first
  frame (a block of ``A1 … A3000`` is ``A1 … A11``, then ``A12 … A22``, ...: contiguous groups,
  not one chain through the whole video); or
- their pHashes differ in at most :data:`DEFAULT_GROUP_DISTANCE` (``D``) bits, compared within
  one label when labels are given.

A frame group is a connected set of links, found with union-find, so hash links can join
blocks: a pose held for a second spans two blocks and still makes one group. The defaults come
from the shared ASL frames (100 random frames per class out of about 3,000): frames up to 5
apart differ by a median of 4 pHash bits (of 64), frames 5-10 apart by 10, frames 10-30 apart
by 18 and unrelated frames by about 30. A large ``D`` chains a whole class into one group on
uniform backgrounds; :func:`frame_groups` warns when one group takes more than half of a class.

Imports numpy and :mod:`asl_eval.audit.neighbours`.
"""

from __future__ import annotations

import re
import warnings
from collections import Counter
from collections.abc import Sequence
from itertools import pairwise
from pathlib import Path, PurePath

import numpy as np

from asl_eval.audit.neighbours import linked_pairs
from asl_eval.errors import MetricError

__all__ = [
    "DEFAULT_FRAME_GAP",
    "DEFAULT_GROUP_DISTANCE",
    "UnionFind",
    "frame_groups",
    "frame_number",
    "frame_pairs",
]

DEFAULT_FRAME_GAP = 10
"""``G``: a frame block spans at most this many frame numbers after its first frame."""

DEFAULT_GROUP_DISTANCE = 4
"""``D``: images at most this many pHash bits apart (of 64) are linked."""

_FRAME = re.compile(r"^(?P<prefix>.*?)(?P<number>\d+)$")
_CHAINED_SHARE = 0.5
_CHAINED_MIN_IMAGES = 10


def frame_number(path: str | Path) -> tuple[str, int] | None:
    """The ``(prefix, number)`` of a file whose stem ends in digits, else None.

    >>> frame_number("train/A/A1234.jpg"), frame_number("A_test.jpg")
    (('A', 1234), None)
    """
    match = _FRAME.match(PurePath(path).stem)
    return None if match is None else (match["prefix"], int(match["number"]))


class UnionFind:
    """Disjoint sets over ``0..n-1`` (union by size, path halving).

    >>> sets = UnionFind(4); sets.union(0, 2); sets.union(3, 2)
    >>> sets.labels().tolist()
    [0, 1, 0, 0]
    """

    def __init__(self, n: int) -> None:
        self._parent = list(range(n))
        self._size = [1] * n

    def find(self, item: int) -> int:
        """The representative of ``item``'s set."""
        parent = self._parent
        while parent[item] != item:
            parent[item] = parent[parent[item]]
            item = parent[item]
        return item

    def union(self, a: int, b: int) -> None:
        """Join the sets of ``a`` and ``b``."""
        root_a, root_b = self.find(a), self.find(b)
        if root_a == root_b:
            return
        if self._size[root_a] < self._size[root_b]:
            root_a, root_b = root_b, root_a
        self._parent[root_b] = root_a
        self._size[root_a] += self._size[root_b]

    def labels(self) -> np.ndarray:
        """Each item's set as 0, 1, 2, ... numbered by first appearance."""
        first: dict[int, int] = {}
        return np.array(
            [first.setdefault(self.find(i), len(first)) for i in range(len(self._parent))],
            dtype=np.int64,
        )


def frame_pairs(
    paths: Sequence[str | Path],
    *,
    labels: Sequence[str] | None = None,
    max_frame_gap: int = DEFAULT_FRAME_GAP,
) -> tuple[np.ndarray, np.ndarray]:
    """Links between frames of one block of one sequence (see the module docstring).

    Each frame is linked to the one before it in its block (enough for union-find). Returns
    two index arrays.

    >>> names = ["A/A1.jpg", "A/A9.jpg", "A/A3.jpg", "A/A4.jpg", "A/x.jpg"]
    >>> [p.tolist() for p in frame_pairs(names, max_frame_gap=3)]
    [[0, 2], [2, 3]]
    """
    if max_frame_gap < 0:
        raise MetricError(f"max_frame_gap must be at least 0; got {max_frame_gap}.")
    sequences: dict[tuple[str, str, str], list[tuple[int, int]]] = {}
    for index, path in enumerate(paths):
        found = frame_number(path)
        if found is None:
            continue
        label = "" if labels is None else str(labels[index])
        key = (str(PurePath(path).parent), found[0], label)
        sequences.setdefault(key, []).append((found[1], index))
    left: list[int] = []
    right: list[int] = []
    for frames in sequences.values():
        frames.sort()
        block_start = frames[0][0]
        for (_, previous), (number, index) in pairwise(frames):
            if number - block_start <= max_frame_gap:
                left.append(previous)
                right.append(index)
            else:
                block_start = number
    return np.array(left, dtype=np.int64), np.array(right, dtype=np.int64)


def frame_groups(
    paths: Sequence[str | Path],
    *,
    labels: Sequence[str] | None = None,
    phash: np.ndarray | None = None,
    max_frame_gap: int | None = DEFAULT_FRAME_GAP,
    max_distance: int | None = DEFAULT_GROUP_DISTANCE,
    extra_pairs: tuple[np.ndarray, np.ndarray] | None = None,
    warn: bool = True,
) -> np.ndarray:
    """The frame group of every image (0, 1, 2, ... by first appearance).

    Parameters
    ----------
    paths
        The images (only their names and folders are read).
    labels
        A class per image: sequences and hash links stay within one class.
    phash
        Packed pHashes (:class:`asl_eval.audit.hashes.HashTable.phash`); None: no hash links.
    max_frame_gap
        ``G``; None: no frame-number links.
    max_distance
        ``D``; None: no hash links.
    extra_pairs
        More links to add (two index arrays), such as validation images and their matched
        training near-duplicates.
    warn
        Warn when links chain most of a class into one group (for a split, where that group
        cannot be divided); the leakage audit turns it off, since for an interval a chained
        group is simply the truth.

    Returns
    -------
    numpy.ndarray
        Group ids, one per path.

    Warns
    -----
    UserWarning
        When one group holds more than half of a class of 10 or more images (``D`` or ``G``
        too large for this data: everything chains).
    """
    n = len(paths)
    if labels is not None and len(labels) != n:
        raise MetricError(f"{n} paths but {len(labels)} labels: one label per path.")
    if phash is not None and len(phash) != n:
        raise MetricError(f"{n} paths but {len(phash)} pHashes: one hash per path.")
    links: list[tuple[np.ndarray, np.ndarray]] = []
    if max_frame_gap is not None:
        links.append(frame_pairs(paths, labels=labels, max_frame_gap=max_frame_gap))
    if phash is not None and max_distance is not None:
        links.append(linked_pairs(phash, max_distance, blocks=labels))
    if extra_pairs is not None:
        links.append(extra_pairs)
    sets = UnionFind(n)
    for left, right in links:
        for a, b in zip(left.tolist(), right.tolist(), strict=True):
            sets.union(a, b)
    groups = sets.labels()
    if warn:
        _warn_if_chained(groups, labels)
    return groups


def _warn_if_chained(groups: np.ndarray, labels: Sequence[str] | None) -> None:
    classes = np.asarray([""] * len(groups) if labels is None else labels, dtype=object)
    for name in sorted(set(classes.tolist()), key=str):
        members = groups[classes == name]
        if len(members) < _CHAINED_MIN_IMAGES:
            continue
        largest = Counter(members.tolist()).most_common(1)[0][1]
        if largest > _CHAINED_SHARE * len(members):
            warnings.warn(
                f"one frame group holds {largest} of the {len(members)} images of class "
                f"{name!r}: the links chain most of the class together. Lower the frame gap G "
                "or the hash distance D.",
                UserWarning,
                stacklevel=3,
            )
