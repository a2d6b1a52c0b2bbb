"""Embedding drift: how far the evaluated images lie from the training images in the model's own
feature space, whether that distance predicts failure, and which errors look like label errors.

The features are the model's penultimate-layer features (the input of its last linear layer),
computed by :mod:`asl_eval.inference.features`; this module only reads arrays, so it runs (and
is tested) without torch. Everything comes back as one :class:`~asl_eval.analysis.AnalysisResult`
named ``"embeddings"`` (:func:`embedding_analysis`):

- **Domain classifier AUC** (:func:`domain_auc`): a standardized logistic regression tells one
  set's features from another's; its out-of-fold scores (``StratifiedKFold`` +
  ``cross_val_predict``) give the ROC AUC. 0.5: the model sees the two sets alike; 1.0: they
  are perfectly separable. The 95% interval is a stratified percentile bootstrap of the
  out-of-fold scores: it covers the resampling of images, not the refitting of the folds, so it
  is somewhat too narrow for tiny sets. Each set is compared with the training sample and, when
  there is one, with the in-domain (validation) set.
- **Distance to training** (:func:`knn_distance`): each evaluated image's mean cosine distance
  to its ``k`` nearest training images (scikit-learn's exact ``NearestNeighbors``), accuracy by
  distance bin (quantile bins of each set, Wilson intervals), and a Mann–Whitney U test of
  whether misclassified images lie further away than correct ones (one-sided; the AUC
  ``U / (n_wrong n_right)`` is its effect size).
- **Near-duplicate confirmation**: the leakage audit's candidate pairs (a query image flagged
  ``near_duplicate`` and its nearest training image) are *confirmed* when their features'
  cosine similarity reaches the :data:`CONFIRM_QUANTILE` quantile of the similarities between
  different sampled training images of the training image's class, and at least
  :data:`CONFIRM_SIMILARITY` (calibrated per class like the hash thresholds).
- **Suspicious labels**: a misclassified image predicted with confidence at least
  :data:`HIGH_CONFIDENCE`, more than half of whose ``k`` nearest training images carry the
  predicted class, and which lies no further from training than the
  :data:`IN_DISTRIBUTION_QUANTILE` quantile of the training images' own (leave-one-out)
  distances: the model and the training data agree, only the file's label does not (a possible
  label or file error, not a domain shift).

Imports numpy, pandas, scipy and scikit-learn, and :mod:`asl_eval.metrics` for the Wilson
interval; never torch or fastai.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from asl_eval.analysis import AnalysisResult
from asl_eval.errors import InputError, MetricError
from asl_eval.metrics import wilson_interval
from asl_eval.predictions import LedgerEntry, Predictions

__all__ = [
    "CONFIRM_QUANTILE",
    "CONFIRM_SIMILARITY",
    "DEFAULT_K",
    "HIGH_CONFIDENCE",
    "IN_DISTRIBUTION_QUANTILE",
    "DomainAUC",
    "EmbeddedSet",
    "FeatureTable",
    "PairFeatures",
    "candidate_pairs",
    "cosine_similarity_rows",
    "distance_bins",
    "domain_auc",
    "embedding_analysis",
    "embeddings_record",
    "knn_distance",
    "same_class_similarity",
]

DEFAULT_K = 5
"""Training neighbours per image (distance and label agreement)."""

HIGH_CONFIDENCE = 0.9
"""Confidence from which a misclassified image can be a suspicious label."""

CONFIRM_SIMILARITY = 0.95
"""The lowest cosine similarity of the features at which a candidate near-duplicate pair is
confirmed (the floor of the calibrated threshold, :data:`CONFIRM_QUANTILE`)."""

CONFIRM_QUANTILE = 0.99
"""A candidate pair is confirmed when its similarity reaches this quantile of the similarities
between different training images of its class (at least :data:`CONFIRM_SIMILARITY`):
calibrated per class like the hash thresholds, because a model that gathers a class into a
tight cluster makes every same-class pair look alike."""

IN_DISTRIBUTION_QUANTILE = 0.95
"""A suspicious label must lie no further from training than this quantile of the training
images' own leave-one-out distances."""

N_BINS = 4
"""Quantile bins of distance per set (fewer when a set is small)."""

REGULARIZATION = 0.01
"""Inverse L2 strength of the domain classifier: strong, because features have hundreds of
dimensions and sets often only tens of images, and a classifier that memorises its folds
scatters the AUC of two halves of one set (0.4 to 0.6 at ``C=1`` on the tests' model)."""

N_BOOTSTRAP = 500
"""Bootstrap resamples of the domain AUC's interval."""


@dataclass(frozen=True)
class FeatureTable:
    """Features of labelled images that are not evaluated (the training sample).

    Attributes
    ----------
    name
        The table's name (``"train"``).
    paths
        One path per row of ``features``.
    labels
        Each image's class.
    features
        Shape ``(n, d)``, finite.
    entries
        Files set aside (unreadable), with their reasons.
    """

    name: str
    paths: tuple[str, ...]
    labels: tuple[str, ...]
    features: np.ndarray
    entries: tuple[LedgerEntry, ...] = field(default=())

    def __post_init__(self) -> None:
        features = np.asarray(self.features, dtype=np.float64)
        n = len(self.paths)
        if features.ndim != 2 or len(features) != n or len(self.labels) != n:
            raise MetricError(
                f"feature table {self.name!r}: {len(self.paths)} paths, {len(self.labels)} "
                f"labels and features of shape {features.shape}; one row per path needed."
            )
        if not np.isfinite(features).all():
            raise MetricError(f"feature table {self.name!r} holds non-finite features.")
        object.__setattr__(self, "features", features)

    def __len__(self) -> int:
        return len(self.paths)


@dataclass(frozen=True)
class EmbeddedSet:
    """An evaluated set's predictions and the features of its images.

    ``features`` has one row per evaluated image (``predictions.paths``); the row of an image
    whose features could not be computed is NaN, and ``entries`` says why.
    """

    predictions: Predictions
    features: np.ndarray
    entries: tuple[LedgerEntry, ...] = field(default=())

    def __post_init__(self) -> None:
        features = np.asarray(self.features, dtype=np.float64)
        if features.ndim != 2 or len(features) != self.predictions.n_images:
            raise MetricError(
                f"set {self.predictions.name!r}: {self.predictions.n_images} images but "
                f"features of shape {features.shape}; one row per evaluated image needed."
            )
        missing = int((~np.isfinite(features).all(axis=1)).sum())
        if missing != len(self.entries):
            raise MetricError(
                f"set {self.predictions.name!r}: {missing} images lack features but "
                f"{len(self.entries)} are recorded as excluded; give a reason for each."
            )
        object.__setattr__(self, "features", features)

    @property
    def name(self) -> str:
        return self.predictions.name

    @property
    def usable(self) -> np.ndarray:
        """Which rows have features."""
        return np.asarray(np.isfinite(self.features).all(axis=1))


@dataclass(frozen=True)
class PairFeatures:
    """The leakage audit's candidate pairs (:func:`candidate_pairs`) with both images'
    features (rows NaN where a file could not be read)."""

    table: pd.DataFrame
    query: np.ndarray
    train: np.ndarray


@dataclass(frozen=True)
class DomainAUC:
    """How separable two sets of features are (:func:`domain_auc`).

    ``scores`` are the out-of-fold probabilities of "second set" for the rows of
    ``np.vstack([a, b])``, ``y`` those rows' set (0 first, 1 second); ``auc`` is
    ``roc_auc_score(y, scores)``; ``low`` and ``high`` its bootstrap interval.
    """

    auc: float
    low: float
    high: float
    n_splits: int
    scores: np.ndarray
    y: np.ndarray


def domain_auc(
    a: np.ndarray,
    b: np.ndarray,
    *,
    n_splits: int = 5,
    seed: int = 0,
    n_bootstrap: int = N_BOOTSTRAP,
    confidence: float = 0.95,
) -> DomainAUC:
    """Cross-validated ROC AUC of a classifier that tells features ``a`` from features ``b``.

    A standardized logistic regression (L2 with ``C=`` :data:`REGULARIZATION`, balanced class
    weights) is fitted in
    ``StratifiedKFold(n_splits, shuffle=True, random_state=seed)`` folds (fewer folds when the
    smaller set has fewer images); each image is scored by the model that did not see it. The
    interval is the percentile interval of ``n_bootstrap`` stratified bootstrap resamples of
    those out-of-fold scores. NaN when either set has fewer than two images.

    >>> rng = np.random.default_rng(0)
    >>> far = domain_auc(rng.normal(size=(40, 3)), rng.normal(3, 1, size=(40, 3)))
    >>> far.auc > 0.95
    True
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    y = np.concatenate([np.zeros(len(a), dtype=np.int64), np.ones(len(b), dtype=np.int64)])
    splits = min(n_splits, len(a), len(b))
    if splits < 2:
        nan = math.nan
        return DomainAUC(nan, nan, nan, 0, np.full(len(y), nan), y)
    x = np.vstack([a, b])
    model = make_pipeline(
        StandardScaler(),
        LogisticRegression(C=REGULARIZATION, class_weight="balanced", max_iter=5000),
    )
    folds = StratifiedKFold(n_splits=splits, shuffle=True, random_state=seed)
    scores = cross_val_predict(model, x, y, cv=folds, method="predict_proba")[:, 1]
    auc = float(roc_auc_score(y, scores))
    low, high = _bootstrap_interval(y, scores, n_bootstrap, confidence, seed)
    return DomainAUC(auc, low, high, splits, np.asarray(scores, dtype=np.float64), y)


def _rank_auc(y: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """ROC AUC of each row of ``scores`` (resamples, shape ``(m, n)``) against the labels of
    the same shape, by the Mann–Whitney rank formula (ties as half)."""
    from scipy.stats import rankdata

    ranks = rankdata(scores, axis=1)
    n_pos = y.sum(axis=1)
    n_neg = y.shape[1] - n_pos
    rank_sum = (ranks * y).sum(axis=1)
    return np.asarray((rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _bootstrap_interval(
    y: np.ndarray, scores: np.ndarray, n_bootstrap: int, confidence: float, seed: int
) -> tuple[float, float]:
    """Percentile interval of the AUC over stratified resamples (each set resampled within
    itself), in chunks so memory stays bounded; vectorized (scikit-learn's roc_auc_score
    scores one resample per call)."""
    if n_bootstrap < 1:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    negatives, positives = np.flatnonzero(y == 0), np.flatnonzero(y == 1)
    labels = np.concatenate([np.zeros(len(negatives)), np.ones(len(positives))])
    per_chunk = max(1, 2_000_000 // max(1, len(y)))
    values = []
    for start in range(0, n_bootstrap, per_chunk):
        m = min(per_chunk, n_bootstrap - start)
        rows = np.hstack(
            [
                rng.choice(negatives, size=(m, len(negatives))),
                rng.choice(positives, size=(m, len(positives))),
            ]
        )
        values.append(_rank_auc(np.broadcast_to(labels, rows.shape), scores[rows]))
    aucs = np.concatenate(values)
    tail = (1 - confidence) / 2
    return float(np.quantile(aucs, tail)), float(np.quantile(aucs, 1 - tail))


def knn_distance(
    query: np.ndarray, reference: np.ndarray, *, k: int = DEFAULT_K
) -> tuple[np.ndarray, np.ndarray]:
    """Mean cosine distance of each query row to its ``k`` nearest reference rows, and their
    indices (nearest first; ``k`` is capped at the reference's size).

    Exact search (scikit-learn's brute-force ``NearestNeighbors``, which works through the
    query in chunks of bounded memory). A cosine distance is ``1 - cos``; an all-zero row is at
    distance 1 from everything.

    >>> reference = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    >>> distance, index = knn_distance(np.array([[2.0, 0.0]]), reference, k=1)
    >>> distance.round(6).tolist(), index.tolist()
    ([0.0], [[0]])
    """
    from sklearn.neighbors import NearestNeighbors

    reference = np.asarray(reference, dtype=np.float64)
    query = np.asarray(query, dtype=np.float64)
    if len(reference) == 0:
        raise InputError("No training features to measure distances to.")
    n_neighbours = min(k, len(reference))
    if len(query) == 0:
        return np.zeros(0), np.zeros((0, n_neighbours), dtype=np.int64)
    search = NearestNeighbors(n_neighbors=n_neighbours, metric="cosine", algorithm="brute")
    distances, index = search.fit(reference).kneighbors(query)
    return np.asarray(distances.mean(axis=1)), np.asarray(index, dtype=np.int64)


def _leave_one_out_distance(reference: np.ndarray, k: int) -> np.ndarray:
    """Each reference row's mean cosine distance to its ``k`` nearest other rows."""
    from sklearn.neighbors import NearestNeighbors

    n_neighbours = min(k, len(reference) - 1)
    if n_neighbours < 1:
        return np.zeros(0)
    search = NearestNeighbors(n_neighbors=n_neighbours, metric="cosine", algorithm="brute")
    distances, _ = search.fit(reference).kneighbors()  # X=None: each row's own match left out
    return np.asarray(distances.mean(axis=1))


def cosine_similarity_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine similarity of each row of ``a`` with the same row of ``b`` (NaN where either row
    is missing or all zero).

    >>> a = np.array([[1.0, 0.0], [1.0, 1.0]])
    >>> cosine_similarity_rows(a, np.array([[2.0, 0.0], [0.0, 1.0]])).round(4).tolist()
    [1.0, 0.7071]
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        similarity = np.einsum("ij,ij->i", a, b) / norms
    return np.where(norms > 0, similarity, np.nan)


def distance_bins(
    distance: np.ndarray, correct: np.ndarray, *, n_bins: int = N_BINS, confidence: float = 0.95
) -> pd.DataFrame:
    """Accuracy by quantile bin of distance: ``bin`` (0 nearest), ``distance_low``,
    ``distance_high``, ``n_images``, ``n_correct``, ``accuracy`` and its Wilson interval
    (``accuracy_low``, ``accuracy_high``).

    Edges are the ``0, 1/n_bins, ..., 1`` quantiles of ``distance``; tied edges merge bins;
    each bin holds the distances in ``(low, high]`` (the first also its low end). At most
    ``len(distance) // 5`` bins, so no bin is a handful of images.

    >>> correct = np.array([1, 1, 1, 1, 1, 0, 0, 0, 0, 1], bool)
    >>> distance_bins(np.arange(10.0), correct, n_bins=2)[["n_images", "n_correct"]].values.tolist()
    [[5, 5], [5, 1]]
    """
    distance = np.asarray(distance, dtype=np.float64)
    correct = np.asarray(correct, dtype=bool)
    columns = ["bin", "distance_low", "distance_high", "n_images", "n_correct", "accuracy"]
    columns += ["accuracy_low", "accuracy_high"]
    bins = min(n_bins, max(1, len(distance) // 5))
    if len(distance) == 0:
        return pd.DataFrame(columns=columns)
    edges = np.unique(np.quantile(distance, np.linspace(0, 1, bins + 1)))
    which = np.clip(np.searchsorted(edges, distance, side="left") - 1, 0, max(0, len(edges) - 2))
    rows = []
    for b in range(max(1, len(edges) - 1)):
        inside = which == b
        n, c = int(inside.sum()), int(correct[inside].sum())
        low, high = wilson_interval(c, n, confidence=confidence)
        rows.append(
            {
                "bin": b,
                "distance_low": float(edges[b]),
                "distance_high": float(edges[min(b + 1, len(edges) - 1)]),
                "n_images": n,
                "n_correct": c,
                "accuracy": c / n if n else math.nan,
                "accuracy_low": low,
                "accuracy_high": high,
            }
        )
    return pd.DataFrame(rows, columns=columns)


def _bin_index(distance: np.ndarray, table: pd.DataFrame) -> np.ndarray:
    edges = np.append(table["distance_low"].to_numpy(), table["distance_high"].to_numpy()[-1:])
    return np.clip(np.searchsorted(edges, distance, side="left") - 1, 0, max(0, len(table) - 1))


def _error_distance_test(distance: np.ndarray, correct: np.ndarray) -> tuple[float, float]:
    """``(auc, p)``: how often a misclassified image lies further from training than a correct
    one (ties half), and the one-sided Mann–Whitney p-value; NaN without both kinds."""
    from scipy.stats import mannwhitneyu

    wrong, right = distance[~correct], distance[correct]
    if len(wrong) == 0 or len(right) == 0:
        return math.nan, math.nan
    test = mannwhitneyu(wrong, right, alternative="greater")
    return float(test.statistic) / (len(wrong) * len(right)), float(test.pvalue)


def candidate_pairs(leakage: AnalysisResult, train_dir: str | Path) -> pd.DataFrame:
    """The leakage audit's flagged images and their nearest training images: ``set``,
    ``path``, ``nearest_train`` (relative to the training folder), ``train_path`` (under
    ``train_dir``), ``nearest_label``, ``phash_distance``, ``dhash_distance``,
    ``exact_duplicate``."""
    if leakage.name != "leakage":
        raise MetricError(f"expected the 'leakage' analysis; got {leakage.name!r}.")
    items = leakage.items
    flagged = items[items["near_duplicate"].astype(bool) & (items["nearest_train"] != "")]
    table = flagged[
        [
            "set",
            "path",
            "nearest_train",
            "nearest_label",
            "phash_distance",
            "dhash_distance",
            "exact_duplicate",
        ]
    ].reset_index(drop=True)
    table.insert(3, "train_path", [str(Path(train_dir) / r) for r in table["nearest_train"]])
    return table


def _set_rows(
    embedded: EmbeddedSet,
    reference: FeatureTable,
    k: int,
    high_confidence: float,
    distance_bound: float,
) -> pd.DataFrame:
    """One row per evaluated image that has features."""
    predictions, usable = embedded.predictions, embedded.usable
    distance, index = knn_distance(embedded.features[usable], reference.features, k=k)
    labels = np.asarray(reference.labels, dtype=object)[index]
    y_true = predictions.labels_true[usable]
    y_pred = predictions.labels_pred[usable]
    agree_pred = (labels == y_pred[:, None]).mean(axis=1)
    agree_true = (labels == y_true[:, None]).mean(axis=1)
    confidence = predictions.confidence[usable]
    correct = y_true == y_pred
    suspicious = (
        ~correct
        & (confidence >= high_confidence)
        & (agree_pred > 0.5)
        & (distance <= distance_bound)
    )
    paths = np.asarray(predictions.paths, dtype=object)[usable]
    relpaths = np.asarray(predictions.relpaths or predictions.paths, dtype=object)[usable]
    return pd.DataFrame(
        {
            "set": predictions.name,
            "path": paths.astype(str),
            "relpath": relpaths.astype(str),
            "y_true": y_true.astype(str),
            "y_pred": y_pred.astype(str),
            "confidence": confidence,
            "correct": correct,
            "knn_distance": distance,
            "nearest_train": [reference.paths[i] for i in index[:, 0]],
            "neighbour_labels": [" ".join(map(str, row)) for row in labels],
            "neighbours_agree_pred": agree_pred,
            "neighbours_agree_true": agree_true,
            "suspicious": suspicious,
        }
    )


def _auc_row(
    reference: str, name: str, a: np.ndarray, b: np.ndarray, seed: int, confidence: float
) -> dict[str, object]:
    result = domain_auc(a, b, seed=seed, confidence=confidence)
    return {
        "reference": reference,
        "set": name,
        "n_reference": len(a),
        "n_set": len(b),
        "auc": result.auc,
        "auc_low": result.low,
        "auc_high": result.high,
        "n_splits": result.n_splits,
    }


MAX_SIMILARITY_ROWS = 1000
"""Images per class whose pairwise similarities calibrate the near-duplicate threshold at most
(a seeded sample beyond that)."""


def same_class_similarity(reference: FeatureTable, quantile: float) -> dict[str, float]:
    """Per class, the ``quantile`` of the cosine similarities between different training
    images of that class (``""``: over the pairs of every class together); classes with fewer
    than two images are left out.

    >>> rows = np.array([[1.0, 0], [1, 1], [0, 1]])
    >>> table = FeatureTable("t", ("a", "b", "c"), ("A", "A", "B"), rows)
    >>> {k: round(v, 4) for k, v in same_class_similarity(table, 0.5).items()}
    {'A': 0.7071, '': 0.7071}
    """
    labels = np.asarray(reference.labels, dtype=object)
    unit = reference.features / np.maximum(
        np.linalg.norm(reference.features, axis=1, keepdims=True), 1e-12
    )
    result: dict[str, float] = {}
    pooled = []
    for label in sorted(set(reference.labels)):
        rows = unit[labels == label]
        if len(rows) < 2:
            continue
        if len(rows) > MAX_SIMILARITY_ROWS:
            # bounded memory with --embedding-samples in the thousands: the quantile of the
            # pairs among a seeded sample of the class's images (about 500,000 pairs)
            keep = np.random.default_rng(0).choice(len(rows), MAX_SIMILARITY_ROWS, replace=False)
            rows = rows[np.sort(keep)]
        values = (rows @ rows.T)[np.triu_indices(len(rows), 1)]
        result[str(label)] = float(np.quantile(values, quantile))
        pooled.append(values)
    if pooled:
        result[""] = float(np.quantile(np.concatenate(pooled), quantile))
    return result


def _pairs_table(
    pairs: PairFeatures | None, floor: float, calibration: Mapping[str, float]
) -> pd.DataFrame:
    columns = ["set", "path", "nearest_train", "train_path", "nearest_label", "phash_distance"]
    columns += ["dhash_distance", "exact_duplicate", "similarity", "confirm_threshold"]
    columns += ["confirmed"]
    if pairs is None or len(pairs.table) == 0:
        return pd.DataFrame(columns=columns)
    table = pairs.table.reset_index(drop=True).copy()
    similarity = cosine_similarity_rows(pairs.query, pairs.train)
    if "nearest_label" not in table:
        table["nearest_label"] = ""
    labels = table["nearest_label"]
    pooled = calibration.get("", floor)
    table["similarity"] = similarity
    table["confirm_threshold"] = [
        max(floor, calibration.get(str(label), pooled)) for label in labels
    ]
    table["confirmed"] = np.nan_to_num(similarity, nan=-np.inf) >= table["confirm_threshold"]
    return table[columns]


def _excluded(reference: FeatureTable, sets: Sequence[EmbeddedSet]) -> pd.DataFrame:
    rows = [
        {"set": table_name, "path": e.path, "status": e.status, "reason": e.reason}
        for table_name, entries in [
            (reference.name, reference.entries),
            *((s.name, s.entries) for s in sets),
        ]
        for e in entries
    ]
    return pd.DataFrame(rows, columns=["set", "path", "status", "reason"])


def embedding_analysis(
    reference: FeatureTable,
    sets: Sequence[EmbeddedSet],
    *,
    pairs: PairFeatures | None = None,
    in_domain: str | None = None,
    k: int = DEFAULT_K,
    high_confidence: float = HIGH_CONFIDENCE,
    confirm_similarity: float = CONFIRM_SIMILARITY,
    in_distribution_quantile: float | None = IN_DISTRIBUTION_QUANTILE,
    n_bins: int = N_BINS,
    confidence: float = 0.95,
    seed: int = 0,
    parameters: Mapping[str, object] | None = None,
) -> AnalysisResult:
    """Embedding drift of evaluated sets from a training sample (see the module's text).

    Parameters
    ----------
    reference
        The training images' features (a sample, :func:`asl_eval.inference.features.
        embedding_audit` takes up to ``n_per_class`` per class), none of them evaluated.
    sets
        The evaluated sets with their features.
    pairs
        The leakage audit's candidate near-duplicate pairs with features, to confirm.
    in_domain
        The name of the in-domain (validation) set, the second reference of the domain AUC;
        default: none. Must be one of ``sets``.
    k
        Training neighbours per image.
    high_confidence, confirm_similarity, in_distribution_quantile
        The suspicious-label and confirmation thresholds (module constants); a quantile of
        None drops the distance condition of suspicious labels.
    n_bins
        Quantile bins of distance per set.
    confidence
        Coverage of every interval.
    seed
        Seed of the folds and the bootstrap.
    parameters
        More parameters to record (the sampling's).

    Returns
    -------
    AnalysisResult
        Named ``"embeddings"``. ``items``: one row per evaluated image with features (``set``,
        ``path``, ``relpath``, ``y_true``, ``y_pred``, ``confidence``, ``correct``,
        ``knn_distance``, ``distance_bin``, ``nearest_train``, ``neighbour_labels``,
        ``neighbours_agree_pred``, ``neighbours_agree_true``, ``suspicious``). ``summary``:
        counts, the largest AUC against training, the thresholds. ``info``: ``sets`` (per set),
        ``auc``, ``distance_bins``, ``pairs`` (candidates with similarity and verdict),
        ``suspicious`` (the flagged rows), ``excluded``, ``parameters``.
    """
    if not sets:
        raise InputError("The embedding analysis needs at least one evaluated set.")
    names = [s.name for s in sets]
    if len(set(names)) != len(names):
        raise InputError(f"Set names must be unique; got {names}.")
    if in_domain is not None and in_domain not in names:
        raise InputError(f"in_domain {in_domain!r} is not one of the sets: {', '.join(names)}.")
    if len(reference) < 2:
        raise InputError(
            f"The embedding analysis needs at least 2 training images with features; got "
            f"{len(reference)}."
        )
    loo = _leave_one_out_distance(reference.features, k)
    bound = (
        float(np.quantile(loo, in_distribution_quantile))
        if in_distribution_quantile is not None and len(loo)
        else math.inf
    )
    parts, bins, auc_rows, set_rows = [], [], [], []
    features = {s.name: s.features[s.usable] for s in sets}
    for embedded in sets:
        rows = _set_rows(embedded, reference, k, high_confidence, bound)
        table = distance_bins(
            rows["knn_distance"].to_numpy(),
            rows["correct"].to_numpy(dtype=bool),
            n_bins=n_bins,
            confidence=confidence,
        )
        rows["distance_bin"] = _bin_index(rows["knn_distance"].to_numpy(), table)
        parts.append(rows)
        bins.append(table.assign(set=embedded.name))
        train_row = _auc_row(
            "train", embedded.name, reference.features, features[embedded.name], seed, confidence
        )
        auc_rows.append(train_row)
        if in_domain is not None and embedded.name != in_domain:
            auc_rows.append(
                _auc_row(
                    in_domain,
                    embedded.name,
                    features[in_domain],
                    features[embedded.name],
                    seed,
                    confidence,
                )
            )
        error_auc, p = _error_distance_test(
            rows["knn_distance"].to_numpy(), rows["correct"].to_numpy(dtype=bool)
        )
        set_rows.append(
            {
                "set": embedded.name,
                "n_images": int(embedded.predictions.n_images),
                "n_with_features": len(rows),
                "n_excluded": len(embedded.entries),
                "accuracy": float(rows["correct"].mean()) if len(rows) else math.nan,
                "median_distance": float(rows["knn_distance"].median()) if len(rows) else math.nan,
                "auc_vs_train": train_row["auc"],
                "error_distance_auc": error_auc,
                "error_distance_p": p,
                "n_suspicious": int(rows["suspicious"].sum()),
            }
        )
    items = pd.concat(parts, ignore_index=True)
    auc = pd.DataFrame(auc_rows)
    pair_table = _pairs_table(
        pairs, confirm_similarity, same_class_similarity(reference, CONFIRM_QUANTILE)
    )
    suspicious = items[items["suspicious"]].sort_values(
        "confidence", ascending=False, kind="stable"
    )
    recorded: dict[str, object] = {
        "k": k,
        "high_confidence": high_confidence,
        "confirm_similarity": confirm_similarity,
        "confirm_quantile": CONFIRM_QUANTILE,
        "in_distribution_quantile": in_distribution_quantile,
        "distance_bound": bound,
        "n_bins": n_bins,
        "confidence": confidence,
        "seed": seed,
        "in_domain": in_domain,
        "distance": "mean cosine distance to the k nearest training images",
        "auc_method": "standardized logistic regression, stratified k-fold out-of-fold scores; "
        "stratified percentile bootstrap interval",
        **dict(parameters or {}),
    }
    train_auc = auc[auc["reference"] == "train"]["auc"]
    summary = pd.DataFrame(
        [
            {
                "n_train": len(reference),
                "n_sets": len(sets),
                "n_images": len(items),
                "n_excluded": sum(len(s.entries) for s in sets) + len(reference.entries),
                "n_suspicious": int(items["suspicious"].sum()),
                "n_candidate_pairs": len(pair_table),
                "n_confirmed_pairs": int(pair_table["confirmed"].astype(bool).sum()),
                "max_auc_vs_train": float(train_auc.max()) if train_auc.notna().any() else math.nan,
                **{key: value for key, value in recorded.items() if not isinstance(value, dict)},
            }
        ]
    )
    info: dict[str, object] = {
        "sets": pd.DataFrame(set_rows),
        "auc": auc,
        "distance_bins": pd.concat(bins, ignore_index=True)[["set", *bins[0].columns[:-1]]],
        "pairs": pair_table,
        "suspicious": suspicious.reset_index(drop=True),
        "excluded": _excluded(reference, sets),
        "parameters": recorded,
    }
    return AnalysisResult(name="embeddings", items=items, summary=summary, info=info)


def embeddings_record(result: AnalysisResult) -> dict[str, object]:
    """Every number of the embedding analysis as JSON data, shared by ``asl-eval audit
    --model --json`` and the report's JSON block (``sections.embeddings``).

    Keys: ``summary``, ``sets``, ``auc``, ``distance_bins``, ``pairs`` (candidate
    near-duplicate pairs with their similarity and verdict), ``suspicious`` (the flagged
    images), ``excluded``. The per-image table is left out (the report's CSV has the images).
    """
    from asl_eval.audit.records import plain

    if result.name != "embeddings":
        raise MetricError(f"expected the 'embeddings' analysis; got {result.name!r}.")

    def table(key: str) -> object:
        value = result.info.get(key)
        if not isinstance(value, pd.DataFrame):
            raise MetricError(f"The embedding analysis lacks its {key!r} table (info[{key!r}]).")
        return plain(value)

    return {
        "summary": plain(result.summary_record()),
        **{
            key: table(key)
            for key in ("sets", "auc", "distance_bins", "pairs", "suspicious", "excluded")
        },
    }
