"""Near-duplicate thresholds, calibrated per class on the training images.

A single global Hamming threshold fails on data like the ASL photos: one signer in front of one
plain wall makes every frame of a class look alike to a perceptual hash, so a threshold that
catches re-encoded copies also flags most unrelated frames (the known failure of Deepchecks'
similar-image check). The rule here asks each class what "unrelated" looks like:

1. for each class, take the Hamming distances between all pairs of *different* training images
   of that class (at most :attr:`ThresholdRule.max_images` images per class, drawn with a fixed
   seed, so the cost stays bounded);
2. the class's pHash threshold is the largest distance ``t`` at which at most
   :attr:`ThresholdRule.quantile` (default 1%) of those pairs lie at ``t`` or closer, kept
   between a floor and a cap (:attr:`~ThresholdRule.min_phash` 4 and
   :attr:`~ThresholdRule.max_phash` 10 bits of 64); the dHash threshold likewise (floor 8, cap
   12: dHash reacts more to shifts and crops);
3. a class with fewer than :attr:`ThresholdRule.min_pairs` pairs gets the floors.

The floor is what any class accepts as a near-duplicate: re-encoded, re-sized, slightly
brightened, cropped or shifted copies land within 4 pHash and 8 dHash bits on the ASL photos,
and when a class holds many genuinely near-identical frames (more than the quantile of its
pairs, as in a short video), the quantile alone would fall below them. The cap keeps a class of
very varied images from accepting loose matches. A query image is judged by the thresholds of
the class of its nearest training image, so unlabelled test sets work too. ``phash`` / ``dhash``
in the rule override the calibrated value for every class (the CLI's ``--threshold``); the
dHash confirmation can be switched off with ``dhash=64``.

On the shared ASL frames (100 random frames of each of 29 classes) the calibrated pHash
thresholds are 4 to 10 and 35% of a random 20% validation split (seed 42) is flagged, where
a global pHash threshold of 10 flags 52%.

Imports numpy and pandas.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from asl_eval.audit.hashes import HASH_BITS, HashTable
from asl_eval.audit.neighbours import hamming
from asl_eval.errors import MetricError

__all__ = ["Calibration", "ThresholdRule", "calibrate_thresholds", "calibrated_threshold"]


@dataclass(frozen=True)
class ThresholdRule:
    """How the near-duplicate thresholds are chosen (see the module docstring).

    Attributes
    ----------
    quantile
        Largest share of same-class training pairs a threshold may flag.
    min_phash, min_dhash
        Floors of the calibrated thresholds (bits of 64).
    max_phash, max_dhash
        Caps of the calibrated thresholds.
    min_pairs
        Fewest same-class pairs a class needs for calibration; fewer: the floors.
    max_images
        Most images per class used for calibration (a seeded sample beyond it).
    seed
        Seed of that sample.
    phash, dhash
        Global overrides: this threshold for every class instead of the calibrated one.
    """

    quantile: float = 0.01
    min_phash: int = 4
    max_phash: int = 10
    min_dhash: int = 8
    max_dhash: int = 12
    min_pairs: int = 45
    max_images: int = 2000
    seed: int = 0
    phash: int | None = None
    dhash: int | None = None

    def __post_init__(self) -> None:
        if not 0.0 <= self.quantile < 1.0:
            raise MetricError(f"quantile must be in [0, 1); got {self.quantile}.")
        for name in ("min_phash", "max_phash", "min_dhash", "max_dhash", "phash", "dhash"):
            value = getattr(self, name)
            if value is not None and not -1 <= value <= HASH_BITS:
                raise MetricError(f"{name} must be between -1 and {HASH_BITS}; got {value}.")
        if self.min_phash > self.max_phash or self.min_dhash > self.max_dhash:
            raise MetricError("each floor (min_phash, min_dhash) must be at most its cap.")
        if self.min_pairs < 1 or self.max_images < 2:
            raise MetricError("min_pairs must be at least 1 and max_images at least 2.")

    def describe(self) -> str:
        """One sentence for the report.

        >>> ThresholdRule().describe()
        'per class: the largest distance at which at most 1% of same-class training pairs lie (pHash 4 to 10, dHash 8 to 12 bits of 64)'
        """  # noqa: E501
        if self.phash is not None and self.dhash is not None:
            return f"global: pHash ≤ {self.phash}, dHash ≤ {self.dhash}"
        text = (
            f"per class: the largest distance at which at most {self.quantile:.0%} of "
            f"same-class training pairs lie (pHash {self.min_phash} to {self.max_phash}, "
            f"dHash {self.min_dhash} to {self.max_dhash} bits of 64)"
        )
        if self.phash is not None:
            text += f"; pHash overridden to ≤ {self.phash} for every class"
        if self.dhash is not None:
            text += f"; dHash overridden to ≤ {self.dhash} for every class"
        return text


def calibrated_threshold(counts: np.ndarray, quantile: float, floor: int, cap: int) -> int:
    """The largest distance ``t`` with at most ``quantile`` of the pairs at ``t`` or closer,
    kept within ``[floor, cap]``.

    ``counts[d]`` is the number of pairs at distance ``d``; without pairs the floor.

    >>> counts = np.zeros(65, dtype=np.int64); counts[[2, 6, 20]] = [1, 9, 90]
    >>> calibrated_threshold(counts, 0.01, 0, 10), calibrated_threshold(counts, 0.10, 0, 64)
    (5, 19)
    >>> calibrated_threshold(counts, 0.0, 4, 10)
    4
    """
    total = int(counts.sum())
    allowed = np.flatnonzero(np.cumsum(counts) <= quantile * total)
    if total == 0 or len(allowed) == 0:
        return floor
    return int(np.clip(allowed.max(), floor, cap))


@dataclass(frozen=True)
class Calibration:
    """The per-class thresholds and the distances they came from.

    Attributes
    ----------
    rule
        The rule applied.
    table
        One row per class (index ``class``): ``n_images``, ``n_pairs``, ``median_phash``,
        ``phash_threshold``, ``dhash_threshold``, ``source`` (``"calibrated"``,
        ``"too few pairs"``, ``"override"``).
    phash_counts, dhash_counts
        Same-class training pairs at each distance 0..64, all classes together (the plot's
        reference distribution).
    """

    rule: ThresholdRule
    table: pd.DataFrame
    phash_counts: np.ndarray
    dhash_counts: np.ndarray

    def thresholds_for(self, classes: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """The ``(pHash, dHash)`` thresholds of each class named (a class the training set
        lacks gets the floors, or the overrides)."""
        default_p = self.rule.min_phash if self.rule.phash is None else self.rule.phash
        default_d = self.rule.min_dhash if self.rule.dhash is None else self.rule.dhash
        by_p = self.table["phash_threshold"].to_dict()
        by_d = self.table["dhash_threshold"].to_dict()
        phash = np.array([by_p.get(c, default_p) for c in classes], dtype=np.int64)
        dhash = np.array([by_d.get(c, default_d) for c in classes], dtype=np.int64)
        return phash, dhash


def _pair_counts(hashes: np.ndarray) -> np.ndarray:
    """Distances of every pair ``i < j`` of ``hashes``, counted by distance (65 bins)."""
    counts = np.zeros(HASH_BITS + 1, dtype=np.int64)
    for start in range(len(hashes) - 1):
        distances = hamming(hashes[start], hashes[start + 1 :])
        counts += np.bincount(distances, minlength=HASH_BITS + 1)
    return counts


def _class_row(
    name: str, phash: np.ndarray, dhash: np.ndarray, rule: ThresholdRule
) -> tuple[dict[str, object], np.ndarray, np.ndarray]:
    n_pairs = len(phash) * (len(phash) - 1) // 2
    p_counts, d_counts = _pair_counts(phash), _pair_counts(dhash)
    enough = n_pairs >= rule.min_pairs
    p_threshold = calibrated_threshold(p_counts, rule.quantile, rule.min_phash, rule.max_phash)
    d_threshold = calibrated_threshold(d_counts, rule.quantile, rule.min_dhash, rule.max_dhash)
    if not enough:
        p_threshold, d_threshold = rule.min_phash, rule.min_dhash
    source = "calibrated" if enough else "too few pairs"
    if rule.phash is not None or rule.dhash is not None:
        source = "override"
    median = float(np.searchsorted(np.cumsum(p_counts), n_pairs / 2)) if n_pairs else np.nan
    row = {
        "class": name,
        "n_images": len(phash),
        "n_pairs": n_pairs,
        "median_phash": median,
        "phash_threshold": p_threshold if rule.phash is None else rule.phash,
        "dhash_threshold": d_threshold if rule.dhash is None else rule.dhash,
        "source": source,
    }
    return row, p_counts, d_counts


def calibrate_thresholds(train: HashTable, rule: ThresholdRule | None = None) -> Calibration:
    """Per-class near-duplicate thresholds from the training images' same-class distances.

    Parameters
    ----------
    train
        The training images with their labels (images with an unknown label are skipped).
    rule
        The rule (default :class:`ThresholdRule`).

    Returns
    -------
    Calibration
    """
    rule = rule or ThresholdRule()
    labels = np.asarray(train.labels, dtype=object).astype(str)
    rng = np.random.default_rng(rule.seed)
    rows = []
    p_total = np.zeros(HASH_BITS + 1, dtype=np.int64)
    d_total = np.zeros(HASH_BITS + 1, dtype=np.int64)
    for name in sorted(set(labels) - {""}):
        members = np.flatnonzero(labels == name)
        if len(members) > rule.max_images:
            members = np.sort(rng.choice(members, size=rule.max_images, replace=False))
        row, p_counts, d_counts = _class_row(name, train.phash[members], train.dhash[members], rule)
        row["n_images"] = int(np.sum(labels == name))
        rows.append(row)
        p_total += p_counts
        d_total += d_counts
    columns = ["class", "n_images", "n_pairs", "median_phash", "phash_threshold"]
    columns += ["dhash_threshold", "source"]
    table = pd.DataFrame(rows, columns=columns).set_index("class")
    return Calibration(rule=rule, table=table, phash_counts=p_total, dhash_counts=d_total)
