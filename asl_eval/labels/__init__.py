"""True labels from folder names, file names (by regular expression) or a CSV, aligned with the
model's classes.

The flow for one set of files (see ``docs/labels.md``), one module per step:

1. *read* (:mod:`~asl_eval.labels.rules`): each candidate rule gives each file a label or
   nothing. Rules: ``folder`` (the parent folder's name), ``filename`` (the built-in
   :data:`FILENAME_RULES`, or the user's ``--label-regex``), ``csv`` (a ``path,label`` table);
2. *align* (:mod:`~asl_eval.labels.alignment`): each distinct label is matched to one of the
   model's classes, exactly, then ignoring case, then through the user's ``--label-map``;
   :func:`align_labels` refuses to merge two different labels into one class unless the user
   said so;
3. *choose* (:mod:`~asl_eval.labels.detection`, ``auto``): the rule whose labels match the most
   files wins; if two rules both label a file and disagree, that is a
   :class:`~asl_eval.errors.LabelError` showing both readings;
4. *account* (:mod:`~asl_eval.labels.assignment`, :func:`label_files`): every file ends up
   labelled, ``unlabeled`` or ``not_in_classes`` in the ledger.

:func:`preview_labels` (:mod:`~asl_eval.labels.preview`) is the dry run behind ``asl-eval
labels``: the same steps, no image decoded, no model run, and a conflict is reported rather than
raised; :func:`render_label_preview` renders it for the terminal.

May import: :mod:`asl_eval.errors`, :mod:`asl_eval.predictions`, :mod:`asl_eval.inputs`, the
standard library, numpy and pandas. Never torch or fastai (an import-linter contract).
"""

from __future__ import annotations

from asl_eval.labels.alignment import (
    Alignment,
    Method,
    align_label,
    align_labels,
    parse_label_map,
)
from asl_eval.labels.assignment import NOT_IN_CLASSES_REASON, LabeledFiles, label_files
from asl_eval.labels.preview import LabelPreview, RuleCount, preview_labels, render_label_preview
from asl_eval.labels.rules import (
    FILENAME_RULES,
    LABEL_SOURCES,
    LabelOptions,
    LabelSource,
    RuleName,
    compile_label_regex,
    filename_label,
    folder_label,
    read_labels_table,
    regex_label,
)

__all__ = [
    "FILENAME_RULES",
    "LABEL_SOURCES",
    "NOT_IN_CLASSES_REASON",
    "Alignment",
    "LabelOptions",
    "LabelPreview",
    "LabelSource",
    "LabeledFiles",
    "Method",
    "RuleCount",
    "RuleName",
    "align_label",
    "align_labels",
    "compile_label_regex",
    "filename_label",
    "folder_label",
    "label_files",
    "parse_label_map",
    "preview_labels",
    "read_labels_table",
    "regex_label",
    "render_label_preview",
]
