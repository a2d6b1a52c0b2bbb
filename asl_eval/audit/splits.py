"""Validation splits: training's seeded random split re-created without torch, and a grouped
split that keeps every frame group on one side.

:func:`random_split` gives exactly the indices of fastai's ``RandomSplitter(valid_pct, seed)``
(which training uses) without importing torch. fastai seeds torch's CPU generator
(``torch.manual_seed``) and takes ``torch.randperm(n)``; for ``n`` below 2³²/20 torch's CPU
``randperm`` is a Fisher-Yates shuffle driven by its Mersenne Twister, which, seeded with one
32-bit value, is the standard MT19937 that numpy's legacy ``RandomState(seed)`` also runs. The
first ``int(valid_pct * n)`` shuffled indices are the validation set. ``tests/test_audit_split.py``
checks the equality against fastai itself.

:func:`grouped_split` puts whole groups into validation, class by class, until each class has
about ``valid_pct`` of its images there. The groups are frame groups
(:func:`asl_eval.audit.groups.frame_groups`), explicit labels such as a signer column of the
metadata, or both joined (:func:`join_groups`: two images share a group when either grouping
puts them together).

Imports numpy and :mod:`asl_eval.audit.groups` (union-find).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Sequence

import numpy as np

from asl_eval.audit.groups import UnionFind
from asl_eval.errors import MetricError

__all__ = ["grouped_split", "join_groups", "random_split"]

_SMALL_N = (2**32 - 1) // 20  # torch's randperm switches algorithm at this size


def _check_fraction(valid_pct: float) -> None:
    if not 0.0 < valid_pct < 1.0:
        raise MetricError(f"valid_pct must be strictly between 0 and 1; got {valid_pct}.")


def _mt19937_outputs(seed: int, count: int) -> np.ndarray:
    """The first ``count`` 32-bit outputs of MT19937 seeded as torch seeds it (the low 32 bits
    of ``seed`` through the reference ``init_genrand``, which numpy's legacy seeding also
    uses)."""
    legacy = np.random.RandomState(seed & 0xFFFFFFFF).get_state(legacy=False)
    generator = np.random.MT19937()
    generator.state = {"bit_generator": "MT19937", "state": legacy["state"]}
    return generator.random_raw(count).astype(np.int64)


def random_split(n: int, *, valid_pct: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(train_index, valid_index)`` exactly as fastai's ``RandomSplitter(valid_pct, seed)``
    splits ``n`` items (both in fastai's shuffled order).

    >>> train, valid = random_split(10, valid_pct=0.2, seed=42)
    >>> valid.tolist(), len(train)
    ([2, 6], 8)
    """
    _check_fraction(valid_pct)
    if n < 0 or n >= _SMALL_N:
        raise MetricError(f"random_split supports 0 <= n < {_SMALL_N}; got {n}.")
    raw = _mt19937_outputs(seed, max(n - 1, 0))
    order = list(range(n))
    for i in range(n - 1):
        j = i + int(raw[i]) % (n - i)
        order[i], order[j] = order[j], order[i]
    permutation = np.array(order, dtype=np.int64)
    cut = int(valid_pct * n)
    return permutation[cut:], permutation[:cut]


def _group_classes(labels: np.ndarray, groups: np.ndarray) -> dict[int, str]:
    """Each group's majority label (ties: the first in sorted order)."""
    counts: dict[int, Counter[str]] = {}
    for label, group in zip(labels.tolist(), groups.tolist(), strict=True):
        counts.setdefault(group, Counter())[label] += 1
    return {
        group: sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))[0][0]
        for group, counter in counts.items()
    }


def _group_codes(groups: Sequence[Hashable] | np.ndarray) -> np.ndarray:
    """Group labels of any kind (frame group ids, signer names) as integers 0, 1, ... in the
    labels' sorted order, so integer groups keep their order (and their split)."""
    labels = list(groups.tolist() if isinstance(groups, np.ndarray) else groups)
    if all(isinstance(g, int | np.integer) and not isinstance(g, bool) for g in labels):
        return np.unique(np.asarray(labels, dtype=np.int64), return_inverse=True)[1]
    keys = [(type(g).__name__, str(g)) for g in labels]
    order = {key: code for code, key in enumerate(sorted(set(keys)))}
    return np.array([order[key] for key in keys], dtype=np.int64)


def join_groups(*groupings: Sequence[Hashable] | np.ndarray) -> np.ndarray:
    """One grouping from several: two items share a group when any grouping puts them in one
    group (the union of the groupings, by union-find); groups numbered by first appearance.

    >>> join_groups([0, 0, 1, 2, 3], ["s1", "s2", "s2", "s3", "s1"]).tolist()
    [0, 0, 0, 1, 0]
    """
    if not groupings:
        raise MetricError("join_groups needs at least one grouping.")
    sizes = {len(g) for g in groupings}
    if len(sizes) != 1:
        raise MetricError(f"groupings of different lengths {sorted(sizes)}: one group per item.")
    sets = UnionFind(sizes.pop())
    for grouping in groupings:
        first: dict[int, int] = {}
        for index, code in enumerate(_group_codes(grouping).tolist()):
            sets.union(first.setdefault(code, index), index)
    return sets.labels()


def grouped_split(
    files: Sequence[object],
    labels: Sequence[str],
    groups: Sequence[Hashable] | np.ndarray,
    *,
    valid_pct: float,
    seed: int,
) -> tuple[np.ndarray, np.ndarray]:
    """``(train_index, valid_index)`` with every group wholly on one side.

    Stratified as far as the groups allow: each group belongs to its majority class; for each
    class, its groups are visited in a seeded random order and one is put into validation when
    that brings the class's validation count closer to ``valid_pct`` of its images. A class of
    one group therefore lands wholly on one side.

    Parameters
    ----------
    files
        The items (only their number is used).
    labels
        The class of each item.
    groups
        The group of each item: frame group ids (:func:`asl_eval.audit.groups.frame_groups`)
        or any labels (a signer's name), or several groupings joined (:func:`join_groups`).
    valid_pct
        The share of each class to put into validation.
    seed
        Seed of the order the groups are visited in.

    Returns
    -------
    (train_index, valid_index)
        Sorted index arrays.

    Examples
    --------
    >>> train, valid = grouped_split(range(6), list("AAAABB"), [0, 0, 1, 2, 3, 4],
    ...                              valid_pct=0.5, seed=0)
    >>> sorted(train.tolist() + valid.tolist()) == list(range(6))
    True
    """
    _check_fraction(valid_pct)
    label_array = np.asarray(labels, dtype=object).astype(str)
    if not len(files) == len(label_array) == len(groups):
        raise MetricError(
            f"{len(files)} files, {len(label_array)} labels and {len(groups)} groups: "
            "one label and one group per file."
        )
    group_array = _group_codes(groups)
    rng = np.random.default_rng(seed)
    sizes = Counter(group_array.tolist())
    owner = _group_classes(label_array, group_array)
    chosen: set[int] = set()
    for name in sorted(set(owner.values())):
        own = sorted(group for group, label in owner.items() if label == name)
        target = valid_pct * sum(sizes[g] for g in own)
        taken = 0
        for group in rng.permutation(own).tolist():
            if abs(taken + sizes[group] - target) < abs(taken - target):
                chosen.add(group)
                taken += sizes[group]
    in_valid = np.isin(group_array, sorted(chosen))
    return np.flatnonzero(~in_valid), np.flatnonzero(in_valid)
