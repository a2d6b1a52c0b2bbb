"""Every sentence a finding says, in one place: the templates and the number formats.

A check computes its numbers, formats them with the helpers here and fills its template with
:func:`say`; no check writes its own words. Sentences are plain text: class and file names are
inserted as they are and escaped where they are shown (the report's autoescape, the terminal's
:func:`asl_eval.errors.printable`).

Imports the standard library and :mod:`asl_eval.errors` only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from asl_eval.errors import MetricError

__all__ = [
    "SENTENCES",
    "SUGGESTIONS",
    "interval",
    "names",
    "percent",
    "points",
    "points_interval",
    "pvalue",
    "say",
    "suggest",
]

SENTENCES: dict[str, str] = {
    "domain-drop": (
        "Accuracy drops from {acc_in} on {in_set} ({c_in} of {n_in}) to {acc_out} on {out_set} "
        "({c_out} of {n_out}): {drop} points lower ({ci}, Fisher p {p}); {worst}."
    ),
    "domain-drop-class": (
        "{cls} drops from {acc_in} on {in_set} ({c_in} of {n_in}) to {acc_out} on {out_set} "
        "({c_out} of {n_out}): {drop} points lower ({ci}), significant after Holm (p {p})."
    ),
    "confusion": (
        "{cls} is predicted as {other} in {x} of {n} {set} images ({rate}, {ci}): {share} of its "
        "{errors} errors, more than an even spread over the other {n_other} classes would give "
        "(Holm p {p}){reference}."
    ),
    "given-up": (
        "The model {how} predicts {cls} on {set}: {p} of {n} predictions, although {s} images "
        "are {cls}; {cls} is right in {c} of {s} ({acc}, {ci})."
    ),
    "collapse": (
        "The model predicts {cls} for {p} of {n} {set} images ({share}, {ci}) although only {s} "
        "of them are {cls}: it has collapsed onto one class."
    ),
    "overconfidence": (
        "On {set} the model is overconfident: mean confidence {confidence} against {acc} "
        "accuracy, {gap} points too sure ({ci}); ECE {ece}; {h} of {errors} errors had a "
        "confidence of {threshold} or more; {separation}."
    ),
    "too-few": (
        "On {set}, {m} of {k} classes have too few images to tell (95% interval wider than "
        "{width} points): {classes}."
    ),
    "too-few-drop": (
        "{m} of {k} classes have too few images on {in_set} and {out_set} for even a drop from "
        "100% to 0% to be significant on its own (Fisher's smallest p at or above {bound}, "
        "alpha over the classes compared): {classes}; read them as unknown, not as no drop."
    ),
    "cam-faithfulness": (
        "The Grad-CAM heatmaps of {set} do not single out what the model uses: {u} of {n} "
        "explained images score {direction} {bound} on {metric} ({share}, {ci}); mean {mean}."
    ),
    "cam-background": (
        "On {set}, the heatmaps of misclassified images lie mostly outside the hand in {a} of "
        "{n_a} ({share_a}) against {b} of {n_b} ({share_b}) for correct ones: {diff} points "
        "more ({ci})."
    ),
    "leakage": (
        "{set} accuracy is inflated by near-duplicates of training frames: {d} of {n} images "
        "({share}) have one; accuracy {acc} overall but {adjusted} without them ({ci_adjusted}), "
        "{inflation} points lower ({ci})."
    ),
    "chance": (
        "On {set} the model is not shown to beat a baseline: accuracy {acc} ({c} of {n}, {ci}) "
        "against {chance} for a uniform guess over {k} classes and {majority} for always "
        "predicting {majority_class} (one-sided binomial p {p} against the higher of the two)."
    ),
    "slice": (
        "On {set}, {column} {value}'s accuracy is {acc} ({ci}; {n} images) against {acc_rest} "
        "for the other {column} values ({n_rest} images): {drop} points lower ({ci_drop}; "
        "Fisher, Holm p {p})."
    ),
    "domain-property": (
        "{set} images differ from {in_set} most in {top}, significant after Holm; on {set}, "
        "accuracy is {acc_weak} ({c_weak} of {n_weak}, {ci_weak}) on images of {level} "
        "{property} ({range}) against {acc_rest} ({c_rest} of {n_rest}, {ci_rest}) on its other "
        "images: {gap} points lower ({ci})."
    ),
    "suspicious-labels": (
        "{m} of {n} {set} images ({share}, {ci}) may be mislabelled: the model calls them "
        "another class with confidence {threshold} or more, and most of their {k} nearest "
        "training images carry that class ({examples})."
    ),
    "embedding-distance": (
        "On {set}, accuracy falls with the distance from the training images: {acc_near} "
        "({c_near} of {n_near}) in the nearest distance bin against {acc_far} "
        "({c_far} of {n_far}) in the farthest, {diff} points ({ci}); a wrong image lies further "
        "than a right one in {auc} of pairs (Mann-Whitney p {p})."
    ),
    "robustness": (
        "On {set}, the per-class drop looks most like the simulated {corruption}: its per-class "
        "accuracy in the robustness sweep ranks the classes as {set} does (Spearman ρ {rho}, "
        "{ci}, Holm p {p}, {n} classes); in the sweep it breaks {classes} most."
    ),
    # SENTENCES: new kinds go above this line (one edit each; the file is shared)
}
"""The sentence of each kind of finding, a :meth:`str.format` template over named numbers."""

SUGGESTIONS: dict[str, str] = {
    "domain-drop": (
        "Collect training photos from other signers, backgrounds and lighting; train with "
        "background replacement and stronger lighting and colour augmentation."
    ),
    "domain-drop-class": "Collect {cls} photos from other signers and settings.",
    "confusion": (
        "Compare {cls} and {other} images side by side (confused pairs); collect {cls} photos "
        "that show the difference, or check their labels."
    ),
    "given-up": "Check the training images and labels of {cls}; collect more varied {cls} photos.",
    "collapse": (
        "Check that this set is preprocessed as in training (size, crop, colour) and look at "
        "what its images have in common."
    ),
    "overconfidence": (
        "Do not act on the confidence as it is: calibrate it (temperature scaling on held-out "
        "in-domain images) and check the ECE on this set again."
    ),
    "too-few": "Collect more images of these classes before drawing conclusions about them.",
    "too-few-drop": "Collect more images of these classes before comparing them across sets.",
    "cam-faithfulness": (
        "Read these heatmaps with care: try another layer (--cam-layer) or method (--cam-method)."
    ),
    "cam-background": (
        "Train with background replacement or hand crops, so the model looks at the hand."
    ),
    "leakage": (
        "Split training and validation by frame group (asl_eval.audit.grouped_split) and quote "
        "the leak-adjusted accuracy."
    ),
    "chance": (
        "Check that the set's labels match the model's classes and that its images are "
        "preprocessed as in training; if they are, the model does not transfer to this set."
    ),
    "slice": (
        "Look at what sets {column} {value}'s images apart (camera, lighting, background, hand "
        "shape); collect training images like them, and validate with asl-eval train --split "
        "grouped --group-by {column} so the validation score shows such a drop."
    ),
    "domain-property": (
        "Add training images of {level} {property}: collect them, or augment with "
        "{augmentation}; then look at the misclassified images of that segment."
    ),
    "suspicious-labels": (
        "Open these files: if the picture shows the predicted class, fix the label or move the "
        "file; if it does not, collect more training images of the true class."
    ),
    "embedding-distance": (
        "Collect training images like the farthest ones (other signers, backgrounds, lighting), "
        "and treat predictions far from the training images with caution."
    ),
    "robustness": (
        "Train with {corruption} augmentation and collect training photos with this change; "
        "re-run the robustness sweep (asl-eval stress) to check that {classes} hold up."
    ),
    # SUGGESTIONS: new kinds go above this line (one edit each; the file is shared)
}
"""What to try next for each kind of finding (a template like :data:`SENTENCES`)."""


def say(kind: str, **numbers: object) -> str:
    """The sentence of ``kind`` filled with ``numbers`` (already formatted).

    >>> say("too-few", set="massey", m=1, k=29, width=50, classes="T (1 image)")[-35:]
    'wider than 50 points): T (1 image).'
    """
    return _fill(SENTENCES, kind, numbers)


def suggest(kind: str, **numbers: object) -> str:
    """What to try next for ``kind`` ("" when nothing is known)."""
    return _fill(SUGGESTIONS, kind, numbers) if kind in SUGGESTIONS else ""


def _fill(templates: dict[str, str], kind: str, numbers: dict[str, object]) -> str:
    try:
        template = templates[kind]
    except KeyError:
        raise MetricError(f"no sentence for findings of kind {kind!r}.") from None
    # Names are inserted whole: a brace in a class name is text, never a format field.
    return template.format_map({key: str(value) for key, value in numbers.items()})


def percent(value: float) -> str:
    """A proportion as a whole percentage ("–" when undefined).

    >>> percent(0.6), percent(0.4232), percent(float("nan"))
    ('60%', '42%', '–')
    """
    return "–" if not math.isfinite(value) else f"{100 * value:.0f}%"


def interval(low: float, high: float) -> str:
    """A proportion's 95% interval.

    >>> interval(0.4232, 0.7541)
    '95% CI 42–75%'
    """
    if not (math.isfinite(low) and math.isfinite(high)):
        return "no interval"
    return f"95% CI {100 * low:.0f}–{100 * high:.0f}%"


def points(value: float) -> str:
    """A difference of proportions in percentage points.

    >>> points(0.8493)
    '85'
    """
    return "–" if not math.isfinite(value) else f"{100 * value:.0f}"


def points_interval(low: float, high: float) -> str:
    """A difference's 95% interval in percentage points.

    >>> points_interval(0.607, 0.9273)
    '95% CI 61–93'
    """
    if not (math.isfinite(low) and math.isfinite(high)):
        return "no interval"
    return f"95% CI {100 * low:.0f}–{100 * high:.0f}"


def pvalue(value: float) -> str:
    """A p-value with the report's precision, after "p": "= 0.012", "< 0.001".

    >>> pvalue(0.01234), pvalue(3e-9)
    ('= 0.012', '< 0.001')
    """
    if not math.isfinite(value):
        return "= –"
    return "< 0.001" if value < 1e-3 else f"= {value:.3f}"


def names(items: Sequence[str], limit: int = 5) -> str:
    """Up to ``limit`` items joined by commas, with how many more there are.

    >>> names(["A", "B", "C"], 2)
    'A, B and 1 more'
    """
    shown = ", ".join(items[:limit])
    rest = len(items) - limit
    return f"{shown} and {rest} more" if rest > 0 else shown
