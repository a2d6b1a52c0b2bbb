"""The embedding analysis (:func:`embedding_analysis`): per evaluated set, the distances and
suspicious labels of its images, accuracy by distance bin, the domain AUC against training
and the in-domain set, and the confirmed near-duplicate pairs, gathered into one
:class:`~asl_eval.analysis.AnalysisResult` named ``"embeddings"``; and its JSON form
(:func:`embeddings_record`).

Layer: part of :mod:`asl_eval.audit.embeddings`; imports numpy, pandas,
:mod:`asl_eval.analysis`, :mod:`asl_eval.errors`, the package's own modules and, inside
:func:`embeddings_record`, :mod:`asl_eval.audit.records`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from asl_eval.analysis import AnalysisResult
from asl_eval.audit.embeddings.distance import (
    DEFAULT_K,
    N_BINS,
    _bin_index,
    _error_distance_test,
    _leave_one_out_distance,
    distance_bins,
)
from asl_eval.audit.embeddings.domain_classifier import domain_auc
from asl_eval.audit.embeddings.pairs import (
    CONFIRM_QUANTILE,
    CONFIRM_SIMILARITY,
    PairFeatures,
    _pairs_table,
    same_class_similarity,
)
from asl_eval.audit.embeddings.suspicious import (
    HIGH_CONFIDENCE,
    IN_DISTRIBUTION_QUANTILE,
    _set_rows,
)
from asl_eval.audit.embeddings.tables import EmbeddedSet, FeatureTable
from asl_eval.errors import InputError, MetricError

__all__ = ["embedding_analysis", "embeddings_record"]


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
    """Embedding drift of evaluated sets from a training sample (see the package's text,
    :mod:`asl_eval.audit.embeddings`).

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
        The suspicious-label and confirmation thresholds (the package's constants); a quantile of
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
