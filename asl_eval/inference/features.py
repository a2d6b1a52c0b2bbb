"""Penultimate-layer features of a fastai learner, and the embedding audit that uses them.

The *features* of an image are the input of the model's last ``nn.Linear`` layer (for fastai's
``vision_learner`` heads: the pooled, batch-normalized body output the classifier reads),
captured by a forward hook that is always released (:func:`penultimate_features`). Images go
through fastai's own ``test_dl`` preprocessing (:func:`asl_eval.inference.engines.
preprocessed_batches`), the model runs in eval mode under ``torch.inference_mode``: exactly the
forward pass that gives the predictions. Files are decoded a chunk at a time on the inference
stage's thread pool, so memory holds one chunk of images and the feature matrix.

Features are cached by content hash (:mod:`asl_eval.inference.feature_cache`, on by default,
``cache=False`` to turn off): a file whose bytes are in the store for this model, recipe and
package versions is not decoded and its row is read back; a file whose bytes changed is
computed again. The model's key is the caller's ``model_key`` (the model file's
:func:`asl_eval.inference.cache.model_key`) or else a hash of the learner's state dict.

:func:`embedding_audit` is what the report pipeline and ``asl-eval audit --model`` call: it
samples training images per class, extracts features for them, for every evaluated image and for
the leakage audit's candidate pairs, and runs the torch-free analysis
(:func:`asl_eval.audit.embeddings.embedding_analysis`).

Layer: part of :mod:`asl_eval.inference`; imports :mod:`asl_eval.audit.embeddings`,
:mod:`asl_eval.inputs`, :mod:`asl_eval.labels`, :mod:`asl_eval.inference.feature_cache`; torch
inside the functions.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from asl_eval.audit.embeddings import (
    DEFAULT_K,
    EmbeddedSet,
    FeatureTable,
    PairFeatures,
    candidate_pairs,
    embedding_analysis,
)
from asl_eval.errors import InputError
from asl_eval.inference.decode import decode_chunks
from asl_eval.inference.engines import (
    _eval_mode,
    default_batch_size,
    describe_preprocessing,
    preprocessed_batches,
)
from asl_eval.inference.feature_cache import FeatureCache, feature_key
from asl_eval.inputs import discover_images
from asl_eval.labels import LabelOptions, label_files
from asl_eval.predictions import LedgerEntry, Predictions
from asl_eval.progress import Progress, notify

if TYPE_CHECKING:
    import torch
    from fastai.learner import Learner
    from PIL import Image

    from asl_eval.analysis import AnalysisResult

__all__ = [
    "DEFAULT_N_PER_CLASS",
    "embedding_audit",
    "feature_cache",
    "feature_files",
    "last_linear",
    "penultimate_features",
    "penultimate_hook",
    "sample_training_images",
]

DEFAULT_N_PER_CLASS = 50
"""Training images sampled per class as the reference of the embedding audit."""


def last_linear(model: torch.nn.Module) -> torch.nn.Linear:
    """The model's last ``nn.Linear`` layer (in module registration order: the classifier)."""
    import torch

    layers = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    if not layers:
        raise InputError(
            f"{type(model).__name__} has no nn.Linear layer, so it has no penultimate features "
            "to read; the embedding audit needs a classifier with a linear head."
        )
    return layers[-1]


@contextlib.contextmanager
def penultimate_hook(model: torch.nn.Module) -> Iterator[list[torch.Tensor]]:
    """Within the block, every forward pass appends the input of the model's last linear
    layer (flattened to ``(batch, features)``, detached) to the list yielded; the hook is
    removed on the way out, also after an error."""
    captured: list[torch.Tensor] = []

    def hook(module: object, inputs: tuple[torch.Tensor, ...], output: object) -> None:
        captured.append(inputs[0].detach().flatten(1))

    handle = last_linear(model).register_forward_hook(hook)
    try:
        yield captured
    finally:
        handle.remove()


def _model_device(model: torch.nn.Module) -> torch.device:
    import torch

    parameter = next(model.parameters(), None)
    return parameter.device if parameter is not None else torch.device("cpu")


def penultimate_features(
    learner: Learner, images: Sequence[Image.Image], *, batch_size: int | None = None
) -> np.ndarray:
    """Features of decoded RGB images, shape ``(len(images), d)``, float32.

    fastai's ``test_dl`` preprocessing, the learner's model in eval mode (its modes restored
    afterwards) on its own device, under ``torch.inference_mode``.
    """
    import torch

    model = learner.model
    width = last_linear(model).in_features
    if not images:
        return np.zeros((0, width), dtype=np.float32)
    device = _model_device(model)
    rows = []
    with _eval_mode(model), torch.inference_mode(), penultimate_hook(model) as captured:
        batch = batch_size or default_batch_size("fastai", device.type)
        for x in preprocessed_batches(learner, images, batch_size=batch):
            model(x.to(device))
            rows.append(captured.pop().float().cpu().numpy())
    return np.concatenate(rows).astype(np.float32, copy=False)


def feature_cache(
    learner: Learner, *, cache_dir: Path | None = None, model_key: str | None = None
) -> FeatureCache:
    """The features store for this learner (:class:`~asl_eval.inference.feature_cache.
    FeatureCache`), keyed by ``model_key`` (the model file's
    :func:`asl_eval.inference.cache.model_key`; default: a hash of the learner's state dict),
    the feature recipe (layer, fastai preprocessing, image size, device) and package versions,
    in ``cache_dir`` (default :func:`asl_eval.cache_files.default_cache_dir`)."""
    from asl_eval.inference.onnx_engine import state_dict_hash
    from asl_eval.trust.probe import input_size

    model = learner.model
    layer = last_linear(model)
    names = [name for name, module in model.named_modules() if module is layer]
    recipe = {
        "layer": names[-1] if names else "",
        "width": layer.in_features,
        "preprocessing": describe_preprocessing(learner),
        "input_size": input_size(learner),
        "device": str(_model_device(model)),
    }
    key = feature_key(model_key or state_dict_hash(model), recipe)
    return FeatureCache(key, layer.in_features, cache_dir)


def feature_files(
    learner: Learner,
    paths: Sequence[str | Path],
    *,
    name: str = "images",
    labels: Sequence[str] | None = None,
    batch_size: int | None = None,
    chunk_size: int = 256,
    progress: Progress = None,
    workers: int | None = None,
    cache: bool = True,
    cache_dir: Path | None = None,
    model_key: str | None = None,
) -> tuple[np.ndarray, tuple[LedgerEntry, ...]]:
    """Features of image files, one row per path (NaN for a file that cannot be decoded), and
    a ledger entry with the reason for each such file.

    Files are decoded ``chunk_size`` at a time on a thread pool, a chunk ahead of the model;
    ``progress`` gets ``"features"`` events named ``name``. With ``cache`` (the
    default), rows already in the features store (:func:`feature_cache`, in ``cache_dir``, for
    ``model_key``) are read back by content hash instead of computed, and new rows are added
    to it.
    """
    store = feature_cache(learner, cache_dir=cache_dir, model_key=model_key) if cache else None
    return _feature_files(
        learner,
        paths,
        name=name,
        labels=labels,
        batch_size=batch_size,
        chunk_size=chunk_size,
        progress=progress,
        workers=workers,
        store=store,
    )


def _feature_files(
    learner: Learner,
    paths: Sequence[str | Path],
    *,
    name: str = "images",
    labels: Sequence[str] | None = None,
    batch_size: int | None = None,
    chunk_size: int = 256,
    progress: Progress = None,
    workers: int | None = None,
    store: FeatureCache | None = None,
) -> tuple[np.ndarray, tuple[LedgerEntry, ...]]:
    """:func:`feature_files` with the store already open (None: no cache)."""
    width = last_linear(learner.model).in_features
    features = np.full((len(paths), width), np.nan, dtype=np.float32)
    entries: list[LedgerEntry] = []
    chunks = [
        [Path(p) for p in paths[start : start + chunk_size]]
        for start in range(0, len(paths), chunk_size)
    ]
    new_digests: list[str] = []
    new_rows: list[np.ndarray] = []
    done = 0
    known = store if store is not None else ()
    if store is not None:
        len(store)  # read (and check) the store once, before the decoding threads ask it
    with contextlib.closing(decode_chunks(chunks, known=known, workers=workers)) as decoding:
        for chunk in decoding:
            cached = (
                store.lookup([item.sha256 for item in chunk if item.sha256 is not None])
                if store is not None
                else {}
            )
            readable = [i for i, item in enumerate(chunk) if item.image is not None]
            for i, item in enumerate(chunk):
                if item.image is None and item.error is None and item.sha256 in cached:
                    features[done + i] = cached[item.sha256]
                elif item.image is None:  # every file not featurized is recorded, with why
                    label = None if labels is None else labels[done + i] or None
                    reason = item.error.reason if item.error is not None else "unreadable"
                    entries.append(LedgerEntry(str(item.path), "excluded", reason, label))
            images = [chunk[i].image for i in readable]
            if images:
                rows = penultimate_features(
                    learner, [im for im in images if im is not None], batch_size=batch_size
                )
                features[[done + i for i in readable]] = rows
                for i, row in zip(readable, rows, strict=True):
                    digest = chunk[i].sha256
                    if digest is not None:
                        new_digests.append(digest)
                        new_rows.append(row)
            done += len(chunk)
            notify(progress, "features", name, done, len(paths))
    if store is not None and new_digests:
        store.add(new_digests, np.stack(new_rows))
    return features, tuple(entries)


def sample_training_images(
    train_dir: str | Path,
    *,
    n_per_class: int = DEFAULT_N_PER_CLASS,
    seed: int = 0,
    exclude: Sequence[str | Path] = (),
    label_options: LabelOptions | None = None,
) -> tuple[list[tuple[Path, str]], tuple[LedgerEntry, ...], int]:
    """Up to ``n_per_class`` training images per class, drawn without replacement with
    ``numpy.random.default_rng(seed)`` from the folder listed and labelled as training lists
    it (default rule: the parent folder's name), leaving out the ``exclude`` files (the
    evaluated images: a validation image is never its own neighbour). Returns the sample in
    listing order, the files set aside while listing (unlabeled, ...), and how many labelled
    images there were to draw from."""
    root = Path(train_dir)
    if not root.is_dir():
        raise InputError(f"Training folder {root} does not exist or is not a folder.")
    options = label_options or LabelOptions(source="folder")
    discovery = discover_images(root, follow_links=options.follow_links)
    labeled = label_files(list(discovery.images), root=discovery.root, options=options)
    left_out = {str(Path(p).resolve()) for p in exclude}
    items = [(p, c) for p, c in labeled.items if str(Path(p).resolve()) not in left_out]
    rng = np.random.default_rng(seed)
    chosen: set[int] = set()
    by_class: dict[str, list[int]] = {}
    for index, (_, label) in enumerate(items):  # one pass, not one per class
        by_class.setdefault(label, []).append(index)
    for label in sorted(by_class):
        rows = by_class[label]
        take = rng.choice(len(rows), size=min(n_per_class, len(rows)), replace=False)
        chosen.update(rows[j] for j in take.tolist())
    sample = [items[i] for i in sorted(chosen)]
    return sample, (*discovery.entries, *labeled.entries), len(items)


def _pair_features(
    learner: Learner,
    leakage: AnalysisResult,
    train_dir: Path,
    known: Mapping[str, np.ndarray],
    batch_size: int | None,
    progress: Progress,
    store: FeatureCache | None,
) -> PairFeatures:
    """Features of both images of each candidate pair (reused where already computed)."""
    table = candidate_pairs(leakage, train_dir)
    needed = [p for p in dict.fromkeys([*table["path"], *table["train_path"]]) if p not in known]
    fresh, _ = _feature_files(
        learner,
        needed,
        name="near-duplicate pairs",
        batch_size=batch_size,
        progress=progress,
        store=store,
    )
    lookup = dict(known)
    lookup.update(zip(needed, fresh, strict=True))
    width = last_linear(learner.model).in_features

    def rows(paths: Sequence[str]) -> np.ndarray:
        return np.array([lookup[p] for p in paths], dtype=np.float64).reshape(-1, width)

    return PairFeatures(table, rows(table["path"].tolist()), rows(table["train_path"].tolist()))


def embedding_audit(
    learner: Learner,
    train_dir: str | Path,
    sets: Sequence[Predictions],
    *,
    n_per_class: int = DEFAULT_N_PER_CLASS,
    k: int = DEFAULT_K,
    seed: int = 0,
    leakage: AnalysisResult | None = None,
    in_domain: str | None = None,
    label_options: LabelOptions | None = None,
    batch_size: int | None = None,
    progress: Progress = None,
    cache: bool = True,
    cache_dir: Path | None = None,
    model_key: str | None = None,
) -> AnalysisResult:
    """The embedding analysis of evaluated sets against a sample of the training folder.

    Parameters
    ----------
    learner
        The fastai learner whose features are read (the model that made ``sets``).
    train_dir
        The training folder; up to ``n_per_class`` images per class are sampled
        (:func:`sample_training_images`), leaving out every evaluated image.
    sets
        The evaluated sets' predictions; the features of every evaluated image are computed
        (a file that no longer decodes is counted as excluded, with its reason).
    k, seed
        Training neighbours per image; the seed of the sample, the folds and the bootstrap.
    leakage
        The leakage audit of the same sets (:func:`asl_eval.audit.audit_leakage`): its
        candidate near-duplicate pairs are confirmed or not by feature similarity.
    in_domain
        The name of the in-domain (validation) set among ``sets``, the second reference of the
        domain AUC; default: none.
    label_options
        How the training folder is labelled (default: its sub-folders' names, as training).
    batch_size, progress
        Images per forward pass; progress events (``"features"``, named after each set).
    cache, cache_dir, model_key
        Whether features are read from and added to the features cache
        (:mod:`asl_eval.inference.feature_cache`), its folder (default
        :func:`asl_eval.cache_files.default_cache_dir`, which ``$ASL_EVAL_CACHE_DIR`` moves),
        and the model's key (the model file's :func:`asl_eval.inference.cache.model_key` when
        the learner came from a file; default: a hash of the learner's state dict).

    Returns
    -------
    AnalysisResult
        Named ``"embeddings"``: :func:`asl_eval.audit.embeddings.embedding_analysis`.
    """
    train_dir = Path(train_dir)
    store = feature_cache(learner, cache_dir=cache_dir, model_key=model_key) if cache else None
    evaluated = [p for s in sets for p in s.paths]
    sample, listing_entries, n_available = sample_training_images(
        train_dir,
        n_per_class=n_per_class,
        seed=seed,
        exclude=evaluated,
        label_options=label_options,
    )
    sample_paths = [str(p) for p, _ in sample]
    sample_labels = [c for _, c in sample]
    train_features, train_entries = _feature_files(
        learner,
        sample_paths,
        name="train",
        labels=sample_labels,
        batch_size=batch_size,
        progress=progress,
        store=store,
    )
    readable = np.isfinite(train_features).all(axis=1)
    reference = FeatureTable(
        name="train",
        paths=tuple(p for p, ok in zip(sample_paths, readable, strict=True) if ok),
        labels=tuple(c for c, ok in zip(sample_labels, readable, strict=True) if ok),
        features=train_features[readable],
        entries=train_entries,
    )
    embedded = []
    known: dict[str, np.ndarray] = dict(zip(reference.paths, reference.features, strict=True))
    for predictions in sets:
        features, entries = _feature_files(
            learner,
            list(predictions.paths),
            name=predictions.name,
            labels=[str(c) for c in predictions.labels_true],
            batch_size=batch_size,
            progress=progress,
            store=store,
        )
        embedded.append(EmbeddedSet(predictions, features, entries))
        known.update(zip(predictions.paths, features, strict=True))
    pairs = (
        _pair_features(learner, leakage, train_dir, known, batch_size, progress, store)
        if leakage is not None
        else None
    )
    return embedding_analysis(
        reference,
        embedded,
        pairs=pairs,
        in_domain=in_domain,
        k=k,
        seed=seed,
        parameters={
            "n_per_class": n_per_class,
            "n_train_available": n_available,
            "n_train_listing_excluded": len(listing_entries),
            "train_dir": str(train_dir),
            "features": "input of the model's last nn.Linear layer",
        },
    )
