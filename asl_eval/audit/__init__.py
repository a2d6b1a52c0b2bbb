"""The data audit: near-duplicate leakage between training and evaluation images, and frame
groups for honest splits, image properties, metadata slices and embedding drift.

Modules, bottom to top:

- :mod:`~asl_eval.audit.hashes`: pHash, dHash and SHA-256 of every image (:class:`HashTable`),
  hashed in worker processes and kept in the image-hash cache (:mod:`~asl_eval.audit.hash_cache`);
- :mod:`~asl_eval.audit.neighbours`: exact nearest-neighbour search over packed 64-bit hashes;
- :mod:`~asl_eval.audit.thresholds`: per-class near-duplicate thresholds;
- :mod:`~asl_eval.audit.groups`: frame groups by union-find;
- :mod:`~asl_eval.audit.splits`: training's random split without torch, and the grouped split;
- :mod:`~asl_eval.audit.intervals`: accuracy intervals that count each group once;
- :mod:`~asl_eval.audit.matching`: one query set against the training set;
- :mod:`~asl_eval.audit.leakage`: :func:`audit_leakage`, the analysis (an
  :class:`~asl_eval.analysis.AnalysisResult` named ``"leakage"``);
- :mod:`~asl_eval.audit.records`: its JSON form; :mod:`~asl_eval.audit.plots`: its figure;
- :mod:`~asl_eval.audit.foreground`: the foreground (hand) estimate shared with the robustness
  sweep and Grad-CAM;
- :mod:`~asl_eval.audit.properties`, :mod:`~asl_eval.audit.domains`,
  :mod:`~asl_eval.audit.property_bins` and :mod:`~asl_eval.audit.domain_plots`: image
  properties, what differs between domains, and accuracy by property bin;
- :mod:`~asl_eval.audit.metadata`: the metadata CSV read and its rows matched to images;
- :mod:`~asl_eval.audit.slices` and :mod:`~asl_eval.audit.slice_plots`: accuracy by the values
  of a metadata CSV's columns (signer, camera, ...);
- :mod:`~asl_eval.audit.embeddings`: what the model's features say (domain AUC, distance from
  training, confirmed near-duplicates, suspicious labels), from features computed by
  :mod:`asl_eval.inference.features`;
- :mod:`~asl_eval.audit.command`: the ``asl-eval audit`` command's torch-free work (the typer
  command itself is :mod:`asl_eval.audit_cli`, which may load a model).

Layer: above :mod:`asl_eval.metrics` and :mod:`asl_eval.labels` (it uses the Wilson interval and
training's labelling), below the report. Imports numpy, pandas, Pillow, imagehash and, in
:mod:`~asl_eval.audit.plots` and the other ``*_plots`` modules, matplotlib, and in
:mod:`~asl_eval.audit.embeddings` scikit-learn (none is imported here). Never torch or fastai
(an import-linter contract): the features come from :mod:`asl_eval.inference.features`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from asl_eval._lazy import lazy_names

if TYPE_CHECKING:
    from asl_eval.audit.domains import analyse_properties, domain_analysis, domains_record
    from asl_eval.audit.embeddings import domain_auc, embedding_analysis, knn_distance
    from asl_eval.audit.foreground import background_share, foreground_mask
    from asl_eval.audit.groups import (
        DEFAULT_FRAME_GAP,
        DEFAULT_GROUP_DISTANCE,
        UnionFind,
        frame_groups,
        frame_number,
    )
    from asl_eval.audit.hash_cache import HashCache
    from asl_eval.audit.hashes import HashTable, hash_files, hash_folder, image_hashes
    from asl_eval.audit.intervals import ClusteredAccuracy, clustered_accuracy
    from asl_eval.audit.leakage import audit_leakage, set_summary
    from asl_eval.audit.matching import match_near_duplicates
    from asl_eval.audit.neighbours import Nearest, exact_matches, hamming, nearest_neighbours
    from asl_eval.audit.properties import image_properties, property_table
    from asl_eval.audit.records import leakage_record
    from asl_eval.audit.slices import read_metadata, slice_analysis
    from asl_eval.audit.splits import grouped_split, join_groups, random_split
    from asl_eval.audit.thresholds import Calibration, ThresholdRule, calibrate_thresholds

# The names load on first use (PEP 562), so `asl-eval --help`, which registers the audit
# command, does not import numpy, pandas and imagehash.
_API = {
    "domain_auc": "asl_eval.audit.embeddings",
    "embedding_analysis": "asl_eval.audit.embeddings",
    "knn_distance": "asl_eval.audit.embeddings",
    "analyse_properties": "asl_eval.audit.domains",
    "background_share": "asl_eval.audit.foreground",
    "domain_analysis": "asl_eval.audit.domains",
    "domains_record": "asl_eval.audit.domains",
    "foreground_mask": "asl_eval.audit.foreground",
    "image_properties": "asl_eval.audit.properties",
    "property_table": "asl_eval.audit.properties",
    "Calibration": "asl_eval.audit.thresholds",
    "ClusteredAccuracy": "asl_eval.audit.intervals",
    "DEFAULT_FRAME_GAP": "asl_eval.audit.groups",
    "DEFAULT_GROUP_DISTANCE": "asl_eval.audit.groups",
    "HashCache": "asl_eval.audit.hash_cache",
    "HashTable": "asl_eval.audit.hashes",
    "Nearest": "asl_eval.audit.neighbours",
    "ThresholdRule": "asl_eval.audit.thresholds",
    "UnionFind": "asl_eval.audit.groups",
    "audit_leakage": "asl_eval.audit.leakage",
    "calibrate_thresholds": "asl_eval.audit.thresholds",
    "clustered_accuracy": "asl_eval.audit.intervals",
    "exact_matches": "asl_eval.audit.neighbours",
    "frame_groups": "asl_eval.audit.groups",
    "frame_number": "asl_eval.audit.groups",
    "grouped_split": "asl_eval.audit.splits",
    "hamming": "asl_eval.audit.neighbours",
    "hash_files": "asl_eval.audit.hashes",
    "hash_folder": "asl_eval.audit.hashes",
    "image_hashes": "asl_eval.audit.hashes",
    "leakage_record": "asl_eval.audit.records",
    "match_near_duplicates": "asl_eval.audit.matching",
    "nearest_neighbours": "asl_eval.audit.neighbours",
    "random_split": "asl_eval.audit.splits",
    "read_metadata": "asl_eval.audit.slices",
    "slice_analysis": "asl_eval.audit.slices",
    "join_groups": "asl_eval.audit.splits",
    "set_summary": "asl_eval.audit.leakage",
}

__all__ = [
    "DEFAULT_FRAME_GAP",
    "DEFAULT_GROUP_DISTANCE",
    "Calibration",
    "ClusteredAccuracy",
    "HashCache",
    "HashTable",
    "Nearest",
    "ThresholdRule",
    "UnionFind",
    "analyse_properties",
    "audit_leakage",
    "background_share",
    "calibrate_thresholds",
    "clustered_accuracy",
    "domain_analysis",
    "domain_auc",
    "domains_record",
    "embedding_analysis",
    "exact_matches",
    "foreground_mask",
    "frame_groups",
    "frame_number",
    "grouped_split",
    "hamming",
    "hash_files",
    "hash_folder",
    "image_hashes",
    "image_properties",
    "join_groups",
    "knn_distance",
    "leakage_record",
    "match_near_duplicates",
    "nearest_neighbours",
    "property_table",
    "random_split",
    "read_metadata",
    "set_summary",
    "slice_analysis",
]


__getattr__, __dir__ = lazy_names(__name__, _API, globals())
