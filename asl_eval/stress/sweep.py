"""The robustness sweep: sampled images, changed and predicted, then tabled.

:func:`stress_sweep` picks ``n_per_class`` images of each class, decodes them in fixed chunks
(:func:`asl_eval.inference.decode.decode_chunks`, a thread pool a chunk ahead), and for each
chunk predicts the unchanged images and every change × severity through the model's engine
(:mod:`asl_eval.inference.engines`: fastai's own preprocessing comes after the change), so at
most about two chunks of decoded images and one chunk of changed images are alive at once.
The numbers are :mod:`asl_eval.stress.summary`'s; the result, assembled by
:mod:`asl_eval.stress.result`, is an :class:`~asl_eval.analysis.AnalysisResult` named
``"robustness"``.

**Sampling** (:func:`sample_per_class`): the files of each class, sorted by path; a class with
more than ``n_per_class`` gives a random ``n_per_class`` of them, drawn without replacement by a
generator seeded with ``(seed, CRC-32 of the class name)``, so one class's sample does not
depend on the others'; the sample lists classes in the model's order and each class's files by
path. A file's **index** is its place in that list: with the base seed and the change's name it
makes the image's seed (:func:`asl_eval.stress.corruptions.image_seed`).

Every file given is accounted for in ``info["files"]``: evaluated, not sampled, or excluded with
the reason (unreadable, or the upstream reason passed in ``excluded``).

Layer: part of :mod:`asl_eval.stress`, above :mod:`asl_eval.inference`; torch and fastai only
through the engine, albumentations through :mod:`asl_eval.stress.corruptions`.
"""

from __future__ import annotations

import logging
import time
import zlib
from collections.abc import Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from asl_eval.analysis import AnalysisResult
from asl_eval.errors import InputError, first_few
from asl_eval.inference.decode import decode_chunks
from asl_eval.inference.engines import Engine, make_engine
from asl_eval.predictions import LedgerEntry, Predictions
from asl_eval.progress import Progress, notify
from asl_eval.stress.catalogue import (
    CLEAN,
    DEFAULT_CORRUPTIONS,
    DEFAULT_SEVERITIES,
    check_corruptions,
    check_severities,
)
from asl_eval.stress.corruptions import corrupt, image_seed
from asl_eval.stress.result import (
    ANALYSIS_NAME,
    FILE_COLUMNS,
    add_forecasts,
    build_result,
    ood_class_accuracy,
)
from asl_eval.stress.summary import ITEM_COLUMNS

if TYPE_CHECKING:
    from fastai.learner import Learner

__all__ = ["Sample", "robustness_for_report", "sample_per_class", "stress_sweep"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Sample:
    """The files a sweep predicts, and what happened to the others.

    Attributes
    ----------
    items
        ``(path, class)`` pairs: classes in the model's order, each class's files by path.
    not_sampled
        ``(path, class)`` pairs of the files left out because their class had more than
        ``n_per_class``.
    """

    items: tuple[tuple[Path, str], ...]
    not_sampled: tuple[tuple[Path, str], ...]


def sample_per_class(
    paths: Sequence[str | Path],
    labels: Sequence[str],
    classes: Sequence[str],
    *,
    n_per_class: int,
    seed: int = 0,
) -> Sample:
    """Up to ``n_per_class`` files of each class, seeded (see the module docstring).

    >>> sample = sample_per_class(["b1", "a1", "a2", "a3"], ["B", "A", "A", "A"], ["A", "B"],
    ...                           n_per_class=2, seed=0)
    >>> [(str(p), c) for p, c in sample.items], len(sample.not_sampled)
    ([('a1', 'A'), ('a2', 'A'), ('b1', 'B')], 1)
    """
    if n_per_class < 1:
        raise InputError(f"n_per_class must be at least 1, got {n_per_class}")
    if seed < 0:
        raise InputError(f"the seed must be 0 or more, got {seed}")
    if len(paths) != len(labels):
        raise InputError(f"{len(paths)} paths but {len(labels)} labels")
    known = set(classes)
    unknown = sorted({label for label in labels if label not in known})
    if unknown:
        raise InputError(
            f"{len(unknown)} label(s) are not among the model's classes: {first_few(unknown)}"
        )
    by_class: dict[str, list[Path]] = {c: [] for c in classes}
    for path, label in zip(paths, labels, strict=True):
        by_class[label].append(Path(path))
    chosen: list[tuple[Path, str]] = []
    left: list[tuple[Path, str]] = []
    for name in classes:
        files = sorted(by_class[name], key=str)
        if len(files) > n_per_class:
            rng = np.random.default_rng([seed, zlib.crc32(name.encode("utf-8"))])
            keep = set(rng.choice(len(files), size=n_per_class, replace=False).tolist())
        else:
            keep = set(range(len(files)))
        for i, path in enumerate(files):
            (chosen if i in keep else left).append((path, name))
    return Sample(tuple(chosen), tuple(left))


def _engine(model: Learner | Engine, batch_size: int | None) -> Engine:
    """An engine as given (a :class:`~asl_eval.inference.LazyModel` is one), or fastai's on a
    learner."""
    if hasattr(model, "describe") and hasattr(model, "classes") and not hasattr(model, "dls"):
        return model
    return make_engine(model, "fastai", batch_size=batch_size)


@dataclass
class _Outcomes:
    """Predicted class and probabilities per condition × sampled image (-1: not evaluated)."""

    predicted: np.ndarray
    p_true: np.ndarray
    p_predicted: np.ndarray

    @classmethod
    def empty(cls, n_conditions: int, n_images: int) -> _Outcomes:
        shape = (n_conditions, n_images)
        return cls(np.full(shape, -1, np.int64), np.full(shape, np.nan), np.full(shape, np.nan))


def stress_sweep(
    model: Learner | Engine,
    paths: Sequence[str | Path],
    labels: Sequence[str],
    *,
    corruptions: Sequence[str] = DEFAULT_CORRUPTIONS,
    severities: Sequence[int] = DEFAULT_SEVERITIES,
    n_per_class: int = 30,
    seed: int = 0,
    batch_size: int | None = None,
    chunk_size: int = 128,
    progress: Progress = None,
    workers: int | None = None,
    excluded: Sequence[LedgerEntry] = (),
    set_name: str = "",
) -> AnalysisResult:
    """Accuracy of ``model`` under each change × severity, per class, on a seeded sample.

    Parameters
    ----------
    model
        A fastai learner, an engine (:func:`asl_eval.inference.make_engine`) or a
        :class:`~asl_eval.inference.LazyModel`.
    paths, labels
        The image files and their true classes (each one of the model's classes).
    corruptions
        Names from :data:`asl_eval.stress.catalogue.CATALOGUE` (default: the documented subset
        :data:`~asl_eval.stress.catalogue.DEFAULT_CORRUPTIONS`).
    severities
        From 0 (the identity) to 5 (default :data:`~asl_eval.stress.catalogue.DEFAULT_SEVERITIES`).
    n_per_class
        Images sampled per class (all of a class that has fewer).
    seed
        The base seed of the sample and of every random change.
    batch_size
        The engine's batch size when ``model`` is a learner.
    chunk_size
        Images decoded together; each chunk is predicted once per condition.
    progress
        Called with step ``"predict"`` and name ``"robustness"``; ``done`` counts forward passes
        (images × conditions).
    workers
        Decoding threads (default: the usable CPUs, at most 8).
    excluded
        Files already excluded upstream (unlabeled, not in the model's classes), listed in
        ``info["files"]`` with their reason.
    set_name
        The name of the set the images come from, for the report (``"valid"``).

    Returns
    -------
    AnalysisResult
        Named ``"robustness"``: ``items`` one row per image × condition
        (:data:`~asl_eval.stress.summary.ITEM_COLUMNS`), ``summary`` the headline numbers,
        ``info`` the tables (``conditions``, ``per_class``, ``corruptions``,
        ``fragile_classes``, ``error_destinations``, ``forecast``, ``files``, ``foreground``)
        and the parameters.
    """
    chosen = check_corruptions(corruptions)
    levels = check_severities(severities)
    if chunk_size < 1:
        raise InputError(f"chunk_size must be at least 1, got {chunk_size}")
    engine = _engine(model, batch_size)
    classes = tuple(engine.classes)
    sample = sample_per_class(paths, labels, classes, n_per_class=n_per_class, seed=seed)
    if not sample.items:
        raise InputError("No image to sweep: give at least one labelled image.")
    conditions = [(CLEAN, 0), *((name, level) for name in chosen for level in levels)]
    outcomes = _Outcomes.empty(len(conditions), len(sample.items))
    index = {c: i for i, c in enumerate(classes)}
    unreadable: dict[int, str] = {}
    foreground: dict[int, float] = {}
    started = time.perf_counter()
    total = len(sample.items) * len(conditions)
    done = 0
    chunks = [
        list(range(start, min(start + chunk_size, len(sample.items))))
        for start in range(0, len(sample.items), chunk_size)
    ]
    decoding = decode_chunks(
        [[sample.items[i][0] for i in chunk] for chunk in chunks], workers=workers
    )
    with closing(decoding):
        for chunk, decoded in zip(chunks, decoding, strict=True):
            arrays: list[tuple[int, np.ndarray]] = []
            for i, item in zip(chunk, decoded, strict=True):
                if item.error is not None or item.image is None:
                    unreadable[i] = item.error.reason if item.error is not None else "unreadable"
                else:
                    arrays.append((i, np.asarray(item.image)))
            del decoded
            masks: dict[int, np.ndarray] = {}
            for k, (name, level) in enumerate(conditions):
                if arrays:
                    _predict_condition(
                        engine, arrays, name, level, seed, sample, index, outcomes, k, masks
                    )
                done += len(chunk)
                notify(progress, "predict", ANALYSIS_NAME, done, total)
            foreground.update({i: float(mask.mean()) for i, mask in masks.items()})
            logger.info("robustness: %d of %d forward passes done", done, total)
    seconds = time.perf_counter() - started
    if len(unreadable) == len(sample.items):
        raise InputError(
            f"None of the {len(sample.items)} sampled images could be read: "
            f"{first_few([str(sample.items[i][0]) for i in sorted(unreadable)])}"
        )
    items = _items_table(sample, conditions, outcomes, classes, unreadable)
    files = _files_table(sample, unreadable, excluded)
    foreground_table = pd.DataFrame(
        {
            "path": [str(sample.items[i][0]) for i in sorted(foreground)],
            "foreground_share": [foreground[i] for i in sorted(foreground)],
        }
    )
    parameters = {
        "corruptions": list(chosen),
        "severities": list(levels),
        "n_per_class": n_per_class,
        "seed": seed,
        "chunk_size": chunk_size,
        "seconds": seconds,
        "n_forward_passes": (len(sample.items) - len(unreadable)) * len(conditions),
    }
    return build_result(
        items,
        classes=classes,
        parameters=parameters,
        files=files,
        foreground=foreground_table,
        set_name=set_name,
    )


def _predict_condition(
    engine: Engine,
    arrays: Sequence[tuple[int, np.ndarray]],
    name: str,
    level: int,
    seed: int,
    sample: Sample,
    index: Mapping[str, int],
    outcomes: _Outcomes,
    k: int,
    masks: dict[int, np.ndarray],
) -> None:
    """Change one chunk's images by ``(name, level)``, predict them and store the outcomes."""
    from PIL import Image

    from asl_eval.audit.foreground import foreground_mask

    images = []
    for i, array in arrays:
        mask = None
        if name == "background" and level > 0:
            mask = masks.get(i)
            if mask is None:
                mask = masks[i] = foreground_mask(array)
        changed = (
            array
            if name == CLEAN
            else corrupt(array, name, level, seed=image_seed(seed, i, name), mask=mask)
        )
        images.append(Image.fromarray(changed))
    probabilities = np.asarray(engine.predict(images), dtype=np.float64)
    del images
    rows = np.array([i for i, _ in arrays])
    truth = np.array([index[sample.items[i][1]] for i in rows])
    predicted = probabilities.argmax(axis=1)
    outcomes.predicted[k, rows] = predicted
    outcomes.p_true[k, rows] = probabilities[np.arange(len(rows)), truth]
    outcomes.p_predicted[k, rows] = probabilities[np.arange(len(rows)), predicted]


def _items_table(
    sample: Sample,
    conditions: Sequence[tuple[str, int]],
    outcomes: _Outcomes,
    classes: Sequence[str],
    unreadable: Mapping[int, str],
) -> pd.DataFrame:
    kept = np.array([i for i in range(len(sample.items)) if i not in unreadable], dtype=np.int64)
    n = len(kept)
    names = np.array(classes, dtype=object)
    truth = np.array([sample.items[i][1] for i in kept], dtype=object)
    frames = []
    for k, (name, level) in enumerate(conditions):
        predicted = names[outcomes.predicted[k, kept]]
        frames.append(
            pd.DataFrame(
                {
                    "index": kept,
                    "path": [str(sample.items[i][0]) for i in kept],
                    "class": truth,
                    "corruption": [name] * n,
                    "severity": np.full(n, level, dtype=np.int64),
                    "predicted": predicted,
                    "correct": predicted == truth,
                    "p_true": outcomes.p_true[k, kept],
                    "p_predicted": outcomes.p_predicted[k, kept],
                }
            )
        )
    table = pd.concat(frames, ignore_index=True)
    table["correct"] = table["correct"].astype(bool)
    return table[list(ITEM_COLUMNS)]


def _files_table(
    sample: Sample, unreadable: Mapping[int, str], excluded: Sequence[LedgerEntry]
) -> pd.DataFrame:
    rows = [
        (str(path), label, "excluded" if i in unreadable else "evaluated", unreadable.get(i, ""))
        for i, (path, label) in enumerate(sample.items)
    ]
    rows += [
        (str(path), label, "not sampled", "more than n_per_class images of its class")
        for path, label in sample.not_sampled
    ]
    rows += [(e.path, e.label or "", e.status, e.reason) for e in excluded]
    return pd.DataFrame(rows, columns=list(FILE_COLUMNS))


def robustness_for_report(
    model: Learner | Engine,
    in_domain: Predictions,
    tests: Sequence[Predictions],
    *,
    corruptions: Sequence[str] = DEFAULT_CORRUPTIONS,
    severities: Sequence[int] = DEFAULT_SEVERITIES,
    n_per_class: int = 30,
    seed: int = 0,
    batch_size: int | None = None,
    chunk_size: int = 128,
    progress: Progress = None,
) -> AnalysisResult:
    """The report's robustness section (``report --stress``): the sweep on the in-domain
    (validation) images, and the forecast check against each test set's per-class accuracy.

    The in-domain files must still be on disk (their paths are in ``in_domain``); a file that is
    gone is excluded with its reason.
    """
    labels = [str(in_domain.classes[int(y)]) for y in np.asarray(in_domain.y_true)]
    result = stress_sweep(
        model,
        list(in_domain.paths),
        labels,
        corruptions=corruptions,
        severities=severities,
        n_per_class=n_per_class,
        seed=seed,
        batch_size=batch_size,
        chunk_size=chunk_size,
        progress=progress,
        set_name=in_domain.name,
    )
    return add_forecasts(result, {t.name: ood_class_accuracy(t) for t in tests})
