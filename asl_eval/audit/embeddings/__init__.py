"""Embedding drift: how far the evaluated images lie from the training images in the model's own
feature space, whether that distance predicts failure, and which errors look like label errors.

The features are the model's penultimate-layer features (the input of its last linear layer),
computed by :mod:`asl_eval.inference.features`; this package only reads arrays, so it runs (and
is tested) without torch. Everything comes back as one :class:`~asl_eval.analysis.AnalysisResult`
named ``"embeddings"`` (:func:`embedding_analysis`).

Modules, bottom to top:

- :mod:`~asl_eval.audit.embeddings.tables`: the inputs, the training sample's features
  (:class:`FeatureTable`) and each evaluated set's (:class:`EmbeddedSet`).
- :mod:`~asl_eval.audit.embeddings.domain_classifier`: **domain classifier AUC**
  (:func:`domain_auc`): a standardized logistic regression tells one set's features from
  another's; its out-of-fold scores (``StratifiedKFold`` + ``cross_val_predict``) give the ROC
  AUC. 0.5: the model sees the two sets alike; 1.0: they are perfectly separable. The 95%
  interval is a stratified percentile bootstrap of the out-of-fold scores: it covers the
  resampling of images, not the refitting of the folds, so it is somewhat too narrow for tiny
  sets. Each set is compared with the training sample and, when there is one, with the
  in-domain (validation) set.
- :mod:`~asl_eval.audit.embeddings.distance`: **distance to training** (:func:`knn_distance`):
  each evaluated image's mean cosine distance to its ``k`` nearest training images
  (scikit-learn's exact ``NearestNeighbors``), accuracy by distance bin (quantile bins of each
  set, Wilson intervals; :func:`distance_bins`), and a Mann–Whitney U test of whether
  misclassified images lie further away than correct ones (one-sided; the AUC
  ``U / (n_wrong n_right)`` is its effect size).
- :mod:`~asl_eval.audit.embeddings.pairs`: **near-duplicate confirmation**: the leakage audit's
  candidate pairs (a query image flagged ``near_duplicate`` and its nearest training image) are
  *confirmed* when their features' cosine similarity reaches the :data:`CONFIRM_QUANTILE`
  quantile of the similarities between different sampled training images of the training
  image's class, and at least :data:`CONFIRM_SIMILARITY` (calibrated per class like the hash
  thresholds).
- :mod:`~asl_eval.audit.embeddings.suspicious`: **suspicious labels**: a misclassified image
  predicted with confidence at least :data:`HIGH_CONFIDENCE`, more than half of whose ``k``
  nearest training images carry the predicted class, and which lies no further from training
  than the :data:`IN_DISTRIBUTION_QUANTILE` quantile of the training images' own
  (leave-one-out) distances: the model and the training data agree, only the file's label does
  not (a possible label or file error, not a domain shift).
- :mod:`~asl_eval.audit.embeddings.analysis`: :func:`embedding_analysis`, which puts them
  together, and its JSON form (:func:`embeddings_record`).

Layer: part of :mod:`asl_eval.audit`; imports numpy, pandas, scipy and scikit-learn, and
:mod:`asl_eval.metrics` for the Wilson interval; never torch or fastai.
"""

from __future__ import annotations

from asl_eval.audit.embeddings.analysis import embedding_analysis, embeddings_record
from asl_eval.audit.embeddings.distance import DEFAULT_K, distance_bins, knn_distance
from asl_eval.audit.embeddings.distance import N_BINS as N_BINS
from asl_eval.audit.embeddings.domain_classifier import N_BOOTSTRAP as N_BOOTSTRAP
from asl_eval.audit.embeddings.domain_classifier import REGULARIZATION as REGULARIZATION
from asl_eval.audit.embeddings.domain_classifier import DomainAUC, domain_auc
from asl_eval.audit.embeddings.domain_classifier import _rank_auc as _rank_auc
from asl_eval.audit.embeddings.pairs import (
    CONFIRM_QUANTILE,
    CONFIRM_SIMILARITY,
    PairFeatures,
    candidate_pairs,
    cosine_similarity_rows,
    same_class_similarity,
)
from asl_eval.audit.embeddings.pairs import MAX_SIMILARITY_ROWS as MAX_SIMILARITY_ROWS
from asl_eval.audit.embeddings.suspicious import HIGH_CONFIDENCE, IN_DISTRIBUTION_QUANTILE
from asl_eval.audit.embeddings.tables import EmbeddedSet, FeatureTable

# `X as X` above: the old single module's other names (N_BINS, N_BOOTSTRAP, REGULARIZATION,
# MAX_SIMILARITY_ROWS and the tests' _rank_auc) stay importable from here, outside __all__.

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
