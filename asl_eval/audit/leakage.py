"""The leakage audit: how many validation (and test) images have a near-duplicate among the
training images, and what the accuracy is without them.

:func:`audit_leakage` hashes the training folder and each query set
(:mod:`~asl_eval.audit.hashes`), calibrates per-class thresholds on the training images
(:mod:`~asl_eval.audit.thresholds`), finds every query image's nearest training image
(:mod:`~asl_eval.audit.matching`), groups near-identical frames (:mod:`~asl_eval.audit.groups`)
and, where predictions are given, splits the accuracy into images with a near-duplicate and
images without one. The accuracy without near-duplicates is the *leak-adjusted accuracy*. Its
interval counts each frame group once (:mod:`~asl_eval.audit.intervals`: a design-effect-
adjusted Wilson interval). Everything comes back as one
:class:`~asl_eval.analysis.AnalysisResult` named ``"leakage"``.

Query images that are also in the training folder (the validation part of a random split, given
by its files) are removed from the training reference first.

Only the hash-based parts of issue 14 are here: no model embeddings, no slices, no domain
differences.

Imports numpy, pandas and the audit's own modules; never torch or fastai.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TypedDict

import numpy as np
import pandas as pd

from asl_eval.analysis import AnalysisResult
from asl_eval.audit.groups import DEFAULT_FRAME_GAP, DEFAULT_GROUP_DISTANCE, frame_groups
from asl_eval.audit.hashes import HashTable, hash_files, hash_folder
from asl_eval.audit.intervals import clustered_accuracy
from asl_eval.audit.matching import match_near_duplicates, thumbnail_png
from asl_eval.audit.thresholds import Calibration, ThresholdRule, calibrate_thresholds
from asl_eval.errors import InputError
from asl_eval.predictions import Predictions
from asl_eval.progress import Progress

__all__ = ["INTERVAL_METHOD", "QuerySource", "audit_leakage", "set_summary"]

QuerySource = Predictions | HashTable | str | Path | Sequence[str | Path]
"""A validation or test set: predictions (accuracy too), hashes, a folder, or a list of files."""


class _HashOptions(TypedDict):
    """How query and training images are hashed (:func:`~asl_eval.audit.hashes.hash_files`)."""

    workers: int | None
    cache: bool
    cache_dir: str | Path | None


INTERVAL_METHOD = (
    "Wilson interval on the effective sample size: design effect from the cluster-robust (CR1) "
    "variance over frame groups"
)


def _query_table(
    source: QuerySource, default_name: str, progress: Progress | None, options: _HashOptions
) -> tuple[HashTable, dict[str, bool] | None]:
    """The hashes of a query set, and each path's correctness where predictions are given."""
    if isinstance(source, Predictions):
        table = hash_files(
            list(source.paths),
            name=source.name,
            labels=[str(label) for label in source.labels_true],
            progress=progress,
            **options,
        )
        if source.relpaths:
            relpath = dict(zip(source.paths, source.relpaths, strict=True))
            table = replace(table, relpaths=tuple(relpath[p] for p in table.paths))
        correct = source.labels_true == source.labels_pred
        return table, dict(zip(source.paths, correct.tolist(), strict=True))
    if isinstance(source, HashTable):
        return source, None
    if isinstance(source, str | Path):
        return hash_folder(source, labelled=False, progress=progress, **options), None
    return hash_files(list(source), name=default_name, progress=progress, **options), None


def _resolver() -> Callable[[str], str]:
    """``str(Path(path).resolve())``, with each folder resolved once: 87,000 frames in 29
    folders cost 29 folder resolutions and one ``lstat`` per file (a file that is itself a
    link is resolved in full)."""
    folders: dict[str, str] = {}

    def resolve(path: str) -> str:
        if os.path.islink(path) or ".." in Path(path).parts:
            return str(Path(path).resolve())
        folder, name = os.path.split(os.path.abspath(path))
        if folder not in folders:
            folders[folder] = str(Path(folder).resolve())
        return os.path.join(folders[folder], name)

    return resolve


def _without(train: HashTable, queries: Sequence[HashTable]) -> HashTable:
    """The training table without any image that is also a query image (same resolved path)."""
    resolve = _resolver()
    taken = {resolve(p) for query in queries for p in query.paths}
    keep = [i for i, p in enumerate(train.paths) if resolve(p) not in taken]
    return train.take(keep)


def _accuracy_columns(
    prefix: str, correct: pd.Series, groups: pd.Series, confidence: float
) -> dict[str, object]:
    known = correct.notna()
    result = clustered_accuracy(
        correct[known].astype(bool).to_numpy(), groups[known].to_numpy(), confidence=confidence
    )
    return {
        f"{prefix}accuracy": result.accuracy,
        f"{prefix}accuracy_low": result.low,
        f"{prefix}accuracy_high": result.high,
        f"{prefix}n_evaluated": result.n,
        f"{prefix}n_evaluated_groups": result.n_groups,
        f"{prefix}design_effect": result.design_effect,
    }


def set_summary(items: pd.DataFrame, *, confidence: float = 0.95) -> dict[str, object]:
    """The headline numbers of one set's rows of the leakage table: counts, the near-duplicate
    share, and accuracy overall, on near-duplicates and without them (leak-adjusted), each with
    its group-aware interval (NaN without predictions)."""
    near = items["near_duplicate"].astype(bool)
    n = len(items)
    row: dict[str, object] = {
        "n_images": n,
        "near_duplicates": int(near.sum()),
        "near_duplicate_share": float(near.mean()) if n else float("nan"),
        "exact_duplicates": int(items["exact_duplicate"].astype(bool).sum()),
        "n_groups": int(items["group"].nunique()),
    }
    correct, groups = items["correct"], items["group"]
    row.update(_accuracy_columns("", correct, groups, confidence))
    row.update(_accuracy_columns("near_duplicate_", correct[near], groups[near], confidence))
    row.update(_accuracy_columns("leak_adjusted_", correct[~near], groups[~near], confidence))
    return row


def _group_ids(
    query: HashTable,
    train: HashTable,
    matches: pd.DataFrame,
    train_index: np.ndarray,
    grouping: tuple[int | None, int | None],
) -> np.ndarray:
    """Frame groups of the query images, formed over training and query images together (a
    query image and its matched training near-duplicate are always linked)."""
    n_train = len(train)
    labels = [
        label or nearest
        for label, nearest in zip(query.labels, matches["nearest_label"], strict=True)
    ]
    near = np.flatnonzero(matches["near_duplicate"].to_numpy(dtype=bool))
    groups = frame_groups(
        [*train.paths, *query.paths],
        labels=[*train.labels, *labels],
        phash=np.concatenate([train.phash, query.phash]),
        max_frame_gap=grouping[0],
        max_distance=grouping[1],
        extra_pairs=(train_index[near], n_train + near),
        warn=False,
    )
    return groups[n_train:]


def _audit_set(
    query: HashTable,
    correct_by_path: Mapping[str, bool] | None,
    train: HashTable,
    calibration: Calibration,
    grouping: tuple[int | None, int | None],
) -> tuple[pd.DataFrame, np.ndarray]:
    matches, train_index = match_near_duplicates(query, train, calibration)
    matches["group"] = _group_ids(query, train, matches, train_index, grouping)
    matches["correct"] = pd.Series(
        [None if correct_by_path is None else correct_by_path.get(p) for p in query.paths],
        index=matches.index,
        dtype=object,
    )
    return matches, train_index


def _class_table(items: pd.DataFrame, confidence: float) -> pd.DataFrame:
    """Per set and class (the true class, else the nearest training image's class)."""
    classes = items["label"].where(items["label"] != "", items["nearest_label"])
    rows = []
    for (name, label), part in items.groupby([items["set"], classes], sort=False):
        summary = set_summary(part, confidence=confidence)
        rows.append({"set": name, "class": label, **summary})
    return pd.DataFrame(rows)


def _pairs(
    items: pd.DataFrame, train_paths: Sequence[str], n_pairs: int, thumbnails: bool
) -> pd.DataFrame:
    """The ``n_pairs`` closest pairs of each set, with thumbnails (PNG bytes) when asked."""
    order = items.sort_values(
        ["set", "exact_duplicate", "phash_distance", "dhash_distance"],
        ascending=[True, False, True, True],
        kind="stable",
    )
    closest = order[order["train_index"] >= 0].groupby("set", sort=False).head(n_pairs).copy()
    columns = ["set", "path", "relpath", "label", "nearest_train", "nearest_label"]
    columns += ["phash_distance", "dhash_distance", "exact_duplicate", "near_duplicate"]
    pairs = closest[columns].reset_index(drop=True)
    indices = closest["train_index"].tolist()
    pairs["image_png"] = [thumbnail_png(p) if thumbnails else None for p in closest["path"]]
    pairs["train_png"] = [thumbnail_png(train_paths[i]) if thumbnails else None for i in indices]
    return pairs


def _excluded(tables: Sequence[HashTable]) -> pd.DataFrame:
    rows = [
        {"set": t.name, "path": e.path, "status": e.status, "reason": e.reason}
        for t in tables
        for e in t.entries
    ]
    return pd.DataFrame(rows, columns=["set", "path", "status", "reason"])


def audit_leakage(
    train: str | Path | HashTable,
    valid: QuerySource,
    *,
    against: Sequence[QuerySource] = (),
    thresholds: ThresholdRule | None = None,
    max_frame_gap: int | None = DEFAULT_FRAME_GAP,
    max_distance: int | None = DEFAULT_GROUP_DISTANCE,
    confidence: float = 0.95,
    n_pairs: int = 8,
    thumbnails: bool = True,
    progress: Progress | None = None,
    workers: int | None = None,
    cache: bool = True,
    cache_dir: str | Path | None = None,
) -> AnalysisResult:
    """Near-duplicate leakage of a validation set (and test sets) from a training set.

    Parameters
    ----------
    train
        The training folder (labelled by its sub-folders, as training labels it), or its
        hashes (:func:`~asl_eval.audit.hashes.hash_folder`). Images that are also query
        images are left out of the reference.
    valid
        The validation set: its :class:`~asl_eval.predictions.Predictions` (then accuracy with
        and without near-duplicates is computed), hashes, a folder or a list of files.
    against
        Test sets, each in any of the forms ``valid`` takes.
    thresholds
        How near-duplicate thresholds are set (default: per class, see
        :class:`~asl_eval.audit.thresholds.ThresholdRule`).
    max_frame_gap, max_distance
        ``G`` and ``D`` of the frame groups the intervals count once
        (:func:`~asl_eval.audit.groups.frame_groups`).
    confidence
        Coverage of the intervals.
    n_pairs
        Closest pairs per set kept for the gallery.
    thumbnails
        Encode thumbnails of those pairs (PNG bytes in ``info["pairs"]``).
    progress
        Called as images are hashed.
    workers, cache, cache_dir
        Hashing processes and the image-hash cache (:func:`~asl_eval.audit.hashes.hash_files`).

    Returns
    -------
    AnalysisResult
        Named ``"leakage"``. ``items``: one row per query image (the columns of
        :data:`~asl_eval.audit.matching.MATCH_COLUMNS` plus ``group``, ``correct``,
        ``train_index``). ``summary``: the validation set's :func:`set_summary` with the
        training size and the parameters. ``info``: ``sets`` (a summary per set), ``classes``
        (per set and class), ``thresholds`` (per class), ``calibration_counts`` (same-class
        training pairs per distance), ``pairs`` (the gallery), ``excluded`` (files not hashed,
        with reasons), ``parameters``.
    """
    rule = thresholds or ThresholdRule()
    options = _HashOptions(workers=workers, cache=cache, cache_dir=cache_dir)
    queries = [_query_table(valid, "valid", progress, options)]
    queries += [_query_table(s, f"test{i + 1}", progress, options) for i, s in enumerate(against)]
    _check_names([table for table, _ in queries])
    full_train = (
        train
        if isinstance(train, HashTable)
        else hash_folder(train, name="train", progress=progress, **options)
    )
    reference = _without(full_train, [table for table, _ in queries])
    if len(reference) == 0:
        raise InputError(
            f"No training image is left once the {sum(len(t) for t, _ in queries)} query "
            "images are set aside: pass the training folder, not the validation images."
        )
    calibration = calibrate_thresholds(reference, rule)
    parts = []
    for table, correct in queries:
        matches, index = _audit_set(
            table, correct, reference, calibration, (max_frame_gap, max_distance)
        )
        parts.append(matches.assign(train_index=index))
    items = pd.concat(parts, ignore_index=True)
    sets = pd.DataFrame(
        [
            {"set": t.name, **set_summary(p, confidence=confidence)}
            for (t, _), p in zip(queries, parts, strict=True)
        ]
    )
    parameters: dict[str, object] = {
        "threshold_rule": rule.describe(),
        "max_frame_gap": max_frame_gap,
        "max_distance": max_distance,
        "confidence": confidence,
        "interval_method": INTERVAL_METHOD,
    }
    headline: dict[str, object] = {"valid_set": queries[0][0].name, "n_train": len(reference)}
    headline.update({str(k): v for k, v in sets.iloc[0].drop("set").items()})
    summary = pd.DataFrame([{**headline, **parameters}])
    info: dict[str, object] = {
        "sets": sets,
        "classes": _class_table(items, confidence),
        "thresholds": calibration.table.reset_index(),
        "calibration_counts": pd.DataFrame(
            {
                "distance": np.arange(len(calibration.phash_counts)),
                "phash_pairs": calibration.phash_counts,
                "dhash_pairs": calibration.dhash_counts,
            }
        ),
        "pairs": _pairs(items, reference.paths, n_pairs, thumbnails),
        "excluded": _excluded([full_train, *(t for t, _ in queries)]),
        "parameters": parameters,
    }
    return AnalysisResult(name="leakage", items=items, summary=summary, info=info)


def _check_names(tables: Sequence[HashTable]) -> None:
    names = [t.name for t in tables]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise InputError(
            f"Two query sets share the name {repeated[0]!r}: give each set its own name "
            "(a Predictions name or a folder name)."
        )
