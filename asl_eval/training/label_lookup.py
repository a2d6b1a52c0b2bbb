"""The label getter of a fastai DataBlock whose labels do not come from parent folders.

The tutorial's recipe labels a training image with fastai's ``parent_label``. When ``asl-eval
train`` derives labels another way (``--label-regex``, ``--labels-csv``, a built-in file-name
rule, a ``--label-map``), the labels are computed once by :func:`asl_eval.labels.label_files`,
so training and the ledger agree on every file, and the DataBlock looks them up here.

The getter is a fasttransform ``Transform`` defined in this importable module, so an exported
learner names it by reference (``asl_eval.training.label_lookup.LabelLookup``) and the safe
loader can allow exactly that name (``asl_eval/trust/allowlist.json``); a lambda or
closure would be pickled as code. Before export the per-file table is dropped
(:meth:`LabelLookup.forget`): an exported model needs no training labels, and shipping every
training path inside a shared model file would leak them.

Imports fasttransform (a dependency of fastai, without torch) and :mod:`asl_eval.errors`. Its
module and class name are part of every exported model that uses it: moving or renaming it
means models exported before no longer load (see ``docs/trust.md``).
"""

from __future__ import annotations

from collections.abc import Mapping

from fasttransform import Transform

from asl_eval.errors import LabelError

__all__ = ["LabelLookup"]


class LabelLookup(Transform):
    """``path -> label`` from a precomputed table; ``rule`` says where the labels came from."""

    def __init__(self, labels: Mapping[str, str], rule: str) -> None:
        super().__init__()
        self.labels = dict(labels)
        self.rule = rule

    def encodes(self, path: object) -> str:
        """The label of ``path``, or a :class:`LabelError` once the table is forgotten."""
        try:
            return self.labels[str(path)]
        except KeyError:
            raise LabelError(
                f"{path} has no training label here (labels from the {self.rule}); an exported "
                "model keeps the rule, not the training files' labels."
            ) from None

    def forget(self) -> None:
        """Drop the per-file table (done before the learner is exported)."""
        self.labels = {}

    def __repr__(self) -> str:
        return f"LabelLookup(rule={self.rule!r}, {len(self.labels)} files)"
