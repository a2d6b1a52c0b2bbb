"""The model stage: a folder of images and a fastai learner in, a :class:`Predictions` out.

This is fastai's ``dls.test_dl(items)`` and ``learner.get_preds(dl=...)`` flow, run in chunks
so memory stays bounded, on images that :mod:`asl_eval.inputs` has already decoded and
converted to RGB (a file that cannot be read is excluded with a reason, never a crash).

Layer: above :mod:`asl_eval.trust`, below :mod:`asl_eval.training` and :mod:`asl_eval.cam`.
Imports :mod:`asl_eval.errors`, :mod:`asl_eval.inputs`, :mod:`asl_eval.labels` and
:mod:`asl_eval.predictions`; fastai only through the learner it is given.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from asl_eval.errors import InputError, UnreadableImage, first_few
from asl_eval.inputs import discover_images, load_rgb
from asl_eval.labels import LabelOptions, label_files
from asl_eval.predictions import Ledger, LedgerEntry, Predictions

if TYPE_CHECKING:
    from fastai.learner import Learner
    from PIL import Image

__all__ = ["model_classes", "predict_files", "predict_folder", "predict_images"]

logger = logging.getLogger(__name__)


def model_classes(learner: Learner) -> tuple[str, ...]:
    """The learner's classes in its own order (fastai's ``dls.vocab``)."""
    return tuple(str(c) for c in learner.dls.vocab)


def predict_images(
    learner: Learner, images: Sequence[Image.Image], *, batch_size: int = 64
) -> np.ndarray:
    """Class probabilities for already-decoded RGB images, shape ``(n, n_classes)``."""
    if not images:
        return np.zeros((0, len(model_classes(learner))))
    dl = learner.dls.test_dl(list(images), bs=batch_size, num_workers=0)
    with learner.no_bar():
        probabilities, _ = learner.get_preds(dl=dl)
    return np.asarray(probabilities.numpy(), dtype=np.float64)


def predict_files(
    learner: Learner,
    items: Sequence[tuple[Path, str]],
    *,
    name: str,
    source: str,
    found: Sequence[Path] | None = None,
    entries: Sequence[LedgerEntry] = (),
    batch_size: int = 64,
    chunk_size: int = 512,
) -> Predictions:
    """Predict labelled files and build the ledger.

    Parameters
    ----------
    items
        ``(path, class)`` pairs whose class is one of the model's classes.
    found
        Every file found, in the order the ledger should list them (default: the items').
    entries
        Ledger entries already decided upstream (unlabeled, not in the model's classes).
    """
    classes = model_classes(learner)
    index = {c: i for i, c in enumerate(classes)}
    unknown = sorted({label for _, label in items if label not in index})
    if unknown:
        raise InputError(f"labels {unknown[:5]} are not among the model's classes")
    outcome: dict[str, LedgerEntry] = {e.path: e for e in entries}
    paths: list[str] = []
    y_true: list[int] = []
    chunks: list[np.ndarray] = []
    for start in range(0, len(items), chunk_size):
        images: list[Image.Image] = []
        for path, label in items[start : start + chunk_size]:
            image = _decoded(path, label, outcome)
            if image is not None:
                images.append(image)
                paths.append(str(path))
                y_true.append(index[label])
        chunks.append(predict_images(learner, images, batch_size=batch_size))
        logger.info("%s: predicted %d of %d files", name, len(paths), len(items))
    order = [str(p) for p in found] if found is not None else [str(p) for p, _ in items]
    ledger = _ledger(order, outcome, evaluated=len(paths), source=source)
    return Predictions(
        classes=classes,
        paths=tuple(paths),
        y_true=np.array(y_true, dtype=np.int64),
        y_proba=np.concatenate(chunks),
        name=name,
        ledger=ledger,
        source=source,
    )


def _decoded(path: Path, label: str, outcome: dict[str, LedgerEntry]) -> Image.Image | None:
    """The decoded image, or None; either way its outcome is recorded in ``outcome``."""
    try:
        image = load_rgb(path)
    except UnreadableImage as error:
        outcome[str(path)] = LedgerEntry(str(path), "excluded", error.reason, label)
        return None
    outcome[str(path)] = LedgerEntry(str(path), "evaluated", label=label)
    return image


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
    learner: Learner,
    folder: str | Path,
    *,
    name: str | None = None,
    label_options: LabelOptions | None = None,
    batch_size: int = 64,
    chunk_size: int = 512,
) -> Predictions:
    """Predict every image under ``folder`` and account for every file found.

    True labels come from :func:`asl_eval.labels.label_files` (folder name or file-name rule,
    aligned with the model's classes). Files that cannot be decoded, have no label, or have a
    label the model does not know are recorded in the ledger, not predicted, and so is a
    symbolic link out of ``folder`` unless ``label_options.follow_links``.
    """
    folder = Path(folder)
    follow_links = label_options.follow_links if label_options is not None else False
    discovery = discover_images(folder, follow_links=follow_links)
    labeled = label_files(
        list(discovery.images),
        root=discovery.root,
        classes=model_classes(learner),
        options=label_options,
    )
    return predict_files(
        learner,
        list(labeled.items),
        name=name or folder.name,
        source=str(folder),
        found=list(discovery.images),
        entries=[*discovery.entries, *labeled.entries],
        batch_size=batch_size,
        chunk_size=chunk_size,
    )
