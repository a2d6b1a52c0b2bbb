"""The model stage's loop: labelled files in, a :class:`Predictions` out, in fixed chunks.

The ordered items are cut into fixed chunks (chunk ``k`` is ``items[k*chunk_size :
(k+1)*chunk_size]``). A thread pool reads each file once, hashes its bytes and decodes them
(:mod:`asl_eval.inference.decode`) a chunk ahead of the engine, so decoding overlaps the model
and at most about two chunks of decoded images are alive. Each image's probabilities come from
the predictions cache when its content hash is there (:mod:`asl_eval.inference.cache`), or from
the engine; each chunk the engine predicted is stored as soon as it is done, so an interrupted
run resumes from its finished chunks, and because chunks are fixed, a resumed run predicts the
same batches as an uninterrupted one and gets the same numbers. A file that cannot be read is
excluded with a reason, never a crash.

Layer: above :mod:`asl_eval.trust`, below :mod:`asl_eval.training` and :mod:`asl_eval.cam`.
Imports :mod:`asl_eval.errors`, :mod:`asl_eval.inputs`, :mod:`asl_eval.labels`,
:mod:`asl_eval.predictions` and :mod:`asl_eval.progress`; fastai only through the engines.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from asl_eval.errors import InputError, first_few
from asl_eval.inference.decode import DecodedFile, decode_chunks, decode_file
from asl_eval.inference.engines import Engine, make_engine
from asl_eval.inputs import discover_images, path_under
from asl_eval.labels import LabelOptions, label_files
from asl_eval.predictions import Ledger, LedgerEntry, Predictions
from asl_eval.progress import Progress, notify

if TYPE_CHECKING:
    from fastai.learner import Learner
    from PIL import Image

    from asl_eval.inference.cache import ChunkStore, PredictionCache

__all__ = [
    "STOP_AFTER_CHUNK_ENV",
    "model_classes",
    "predict_files",
    "predict_folder",
    "predict_images",
]

logger = logging.getLogger(__name__)

STOP_AFTER_CHUNK_ENV = "ASL_EVAL_TEST_STOP_AFTER_CHUNK"
"""Test-only: ``"k"`` raises KeyboardInterrupt once chunk ``k`` of a set is finished (and
stored); ``"k:hang"`` sleeps there instead, until the process is killed. Read only by
:func:`_test_stop`."""


def model_classes(model: Learner | Engine) -> tuple[str, ...]:
    """The model's classes in its own order (fastai's ``dls.vocab``, or an engine's)."""
    if hasattr(model, "dls"):
        return tuple(str(c) for c in model.dls.vocab)
    return tuple(model.classes)


def _as_engine(model: Learner | Engine, batch_size: int | None) -> Engine:
    """An engine as given, or fastai's on a learner."""
    if hasattr(model, "describe") and hasattr(model, "classes") and not hasattr(model, "dls"):
        return model
    return make_engine(model, "fastai", batch_size=batch_size)


def predict_images(
    learner: Learner, images: Sequence[Image.Image], *, batch_size: int | None = None
) -> np.ndarray:
    """Class probabilities for already-decoded RGB images, shape ``(n, n_classes)``."""
    return make_engine(learner, "fastai", batch_size=batch_size).predict(images)


@dataclass
class _Collected:
    """What the loop has gathered so far, in item order."""

    paths: list[str] = field(default_factory=list)
    hashes: list[str] = field(default_factory=list)
    y_true: list[int] = field(default_factory=list)
    rows: list[np.ndarray] = field(default_factory=list)
    outcome: dict[str, LedgerEntry] = field(default_factory=dict)


def predict_files(
    model: Learner | Engine,
    items: Sequence[tuple[Path, str]],
    *,
    name: str,
    source: str,
    root: str | Path | None = None,
    found: Sequence[Path] | None = None,
    entries: Sequence[LedgerEntry] = (),
    batch_size: int | None = None,
    chunk_size: int = 512,
    cache: PredictionCache | None = None,
    progress: Progress = None,
    workers: int | None = None,
) -> Predictions:
    """Predict labelled files and build the ledger.

    Parameters
    ----------
    model
        A fastai learner (predicted with the ``fastai`` engine) or an engine
        (:func:`asl_eval.inference.engines.make_engine`, or
        :class:`asl_eval.inference.model_file.LazyModel`).
    items
        ``(path, class)`` pairs whose class is one of the model's classes.
    root
        The set's root folder: :attr:`Predictions.relpaths` are relative to it (default: the
        items' common folder).
    found
        Every file found, in the order the ledger should list them (default: the items').
    entries
        Ledger entries already decided upstream (unlabeled, not in the model's classes).
    batch_size
        The engine's batch size when ``model`` is a learner (default: the engine's,
        :func:`asl_eval.inference.engines.default_batch_size`).
    chunk_size
        Images per chunk: decoded together, predicted together, cached together.
    cache
        The predictions cache for the model's file, or None to predict everything. It must be
        the cache of the file ``model`` was loaded from.
    progress
        Called as files are decoded (step ``"decode"``) and predicted (``"predict"``).
    workers
        Decoding threads (default: the usable CPUs, at most 8).
    """
    engine = _as_engine(model, batch_size)
    classes = tuple(engine.classes)
    index = {c: i for i, c in enumerate(classes)}
    unknown = sorted({label for _, label in items if label not in index})
    if unknown:
        raise InputError(f"labels {unknown[:5]} are not among the model's classes")
    if chunk_size < 1:
        raise InputError(f"chunk_size must be at least 1, got {chunk_size}")
    store = cache.store(engine.describe(), len(classes)) if cache is not None else None
    collected = _Collected(outcome={e.path: e for e in entries})
    chunks = [items[start : start + chunk_size] for start in range(0, len(items), chunk_size)]
    decoding = decode_chunks(
        [[path for path, _ in chunk] for chunk in chunks],
        known=store if store is not None else (),
        workers=workers,
    )
    n_done = 0
    with closing(decoding):
        for k, decoded in enumerate(decoding):
            n_decoded = n_done + len(decoded)
            notify(progress, "decode", name, n_decoded, len(items))
            labels = [label for _, label in chunks[k]]
            _predict_chunk(engine, decoded, labels, index, store, cache, collected)
            del decoded  # at most this chunk and the next are decoded at once
            n_done = n_decoded
            notify(progress, "predict", name, n_done, len(items))
            logger.info("%s: %d of %d files done", name, n_done, len(items))
            _test_stop(k)
    order = [str(p) for p in found] if found is not None else [str(p) for p, _ in items]
    ledger = _ledger(order, collected.outcome, evaluated=len(collected.paths), source=source)
    base = Path(root) if root is not None else _common_folder(collected.paths)
    return Predictions(
        classes=classes,
        paths=tuple(collected.paths),
        y_true=np.array(collected.y_true, dtype=np.int64),
        y_proba=np.array(collected.rows, dtype=np.float64).reshape(-1, len(classes)),
        name=name,
        ledger=ledger,
        source=source,
        sha256=tuple(collected.hashes),
        relpaths=tuple(_relpath(p, base) for p in collected.paths),
    )


def _predict_chunk(
    engine: Engine,
    decoded: list[DecodedFile],
    labels: list[str],
    index: dict[str, int],
    store: ChunkStore | None,
    cache: PredictionCache | None,
    collected: _Collected,
) -> None:
    """Probabilities for one chunk's readable files, from the cache or the engine; every file's
    outcome goes into ``collected``."""
    hits = store.lookup(d.sha256 for d in decoded if d.image is None and d.sha256) if store else {}
    usable: list[tuple[DecodedFile, str]] = []
    for item, label in zip(decoded, labels, strict=True):
        if item.error is None and item.image is None and item.sha256 not in hits:
            item = decode_file(item.path)  # its cached chunk was refused: decode it after all
        path = str(item.path)
        if item.error is not None:
            collected.outcome[path] = LedgerEntry(path, "excluded", item.error.reason, label)
        else:
            collected.outcome[path] = LedgerEntry(path, "evaluated", label=label)
            usable.append((item, label))
    fresh = [item for item, _ in usable if item.image is not None]
    predicted = (
        engine.predict([item.image for item in fresh if item.image is not None])
        if fresh
        else np.zeros((0, 0))
    )
    if fresh and store is not None and cache is not None:
        if cache.run_key(engine.describe()) != store.run_key:
            raise InputError(
                "The engine's description changed after the cache was opened (a stale cached "
                "description); run again with --no-cache, or clear the cache folder."
            )
        store.put([str(item.sha256) for item in fresh], predicted)
    fresh_rows = iter(predicted)
    for item, label in usable:
        collected.paths.append(str(item.path))
        collected.hashes.append(str(item.sha256))
        collected.y_true.append(index[label])
        collected.rows.append(
            next(fresh_rows) if item.image is not None else hits[str(item.sha256)]
        )


def _test_stop(chunk: int) -> None:
    """The test-only interruption hook (see :data:`STOP_AFTER_CHUNK_ENV`)."""
    value = os.environ.get(STOP_AFTER_CHUNK_ENV)
    if not value:
        return
    target, _, mode = value.partition(":")
    if int(target) != chunk:
        return
    if mode == "hang":
        logger.warning("test hook: chunk %d done; waiting to be killed", chunk)
        while True:
            time.sleep(1)
    raise KeyboardInterrupt(f"test hook: stopped after chunk {chunk}")


def _common_folder(paths: Sequence[str]) -> Path:
    """The deepest folder holding every path (the items' parent for a single file)."""
    if not paths:
        return Path(".")
    return Path(os.path.commonpath([str(Path(p).parent) for p in paths]))


def _relpath(path: str, root: Path) -> str:
    """``path`` relative to ``root``, with ``/`` separators (``..`` steps when outside it)."""
    inside = path_under(path, root)
    if inside is not None:
        return inside
    return Path(os.path.relpath(Path(path).resolve(), root.resolve())).as_posix()


def _ledger(
    order: list[str], outcome: dict[str, LedgerEntry], *, evaluated: int, source: str
) -> Ledger:
    """Every file found, in ``order`` (then any others with an outcome), with its outcome."""
    listed = set(order)
    order = order + [p for p in outcome if p not in listed]
    missing = [p for p in order if p not in outcome]
    if missing:
        raise InputError(f"{len(missing)} found files have no outcome: {first_few(missing)}")
    ledger = Ledger.of(outcome[p] for p in dict.fromkeys(order))
    if not evaluated:
        summary = ledger.summary()
        raise InputError(
            f"No image in {source} could be evaluated: {summary['found']} found, "
            f"{summary['n_excluded']} unreadable, {summary['unlabeled']} unlabeled, "
            f"{summary['n_not_in_classes']} with labels the model does not have."
        )
    return ledger


def predict_folder(
    model: Learner | Engine,
    folder: str | Path,
    *,
    name: str | None = None,
    label_options: LabelOptions | None = None,
    batch_size: int | None = None,
    chunk_size: int = 512,
    cache: PredictionCache | None = None,
    progress: Progress = None,
    workers: int | None = None,
) -> Predictions:
    """Predict every image under ``folder`` and account for every file found.

    True labels come from :func:`asl_eval.labels.label_files` (folder name or file-name rule,
    aligned with the model's classes). Files that cannot be decoded, have no label, or have a
    label the model does not know are recorded in the ledger, not predicted, and so is a
    symbolic link out of ``folder`` unless ``label_options.follow_links``. Relative paths are
    relative to ``folder``. The other options are :func:`predict_files`'.
    """
    folder = Path(folder)
    follow_links = label_options.follow_links if label_options is not None else False
    discovery = discover_images(folder, follow_links=follow_links)
    labeled = label_files(
        list(discovery.images),
        root=discovery.root,
        classes=model_classes(model),
        options=label_options,
    )
    return predict_files(
        model,
        list(labeled.items),
        name=name or folder.name,
        source=str(folder),
        root=discovery.root,
        found=list(discovery.images),
        entries=[*discovery.entries, *labeled.entries],
        batch_size=batch_size,
        chunk_size=chunk_size,
        cache=cache,
        progress=progress,
        workers=workers,
    )
