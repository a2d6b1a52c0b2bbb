"""Checks on where each set's errors go: an accuracy no better than guessing, concentrated
confusions, classes the model has given up, and a collapse onto one class.

All counts come from the set's confusion matrix (:class:`asl_eval.metrics.Evaluation`), the
one the report's confusion section draws.

Imports numpy, scipy (inside the functions) and the findings' own modules.
"""

from __future__ import annotations

import numpy as np

from asl_eval.findings.checks.common import evidence_paths, make_finding
from asl_eval.findings.data import EvaluatedSet, FindingsData
from asl_eval.findings.model import Evidence, Finding
from asl_eval.findings.registry import Check, register_check
from asl_eval.findings.stats import concentration_p_value, conservative_images
from asl_eval.findings.wording import interval, percent, pvalue, say, suggest
from asl_eval.metrics import holm_adjust, wilson_interval

__all__ = ["at_chance", "collapse", "concentrated_confusions", "given_up_classes"]


def _counts(evaluated: EvaluatedSet) -> np.ndarray:
    return evaluated.evaluation.confusion.to_numpy(dtype=np.int64)


def top_confused(evaluated: EvaluatedSet, actual: int) -> int:
    """The class ``actual`` is most often mistaken for; ties go to the pair with the larger
    summed loss (then the class order)."""
    row = _counts(evaluated)[actual].copy()
    row[actual] = -1
    tied = np.flatnonzero(row == row.max())
    if tied.size == 1:
        return int(tied[0])
    predictions = evaluated.predictions
    of_class = predictions.y_true == actual
    losses = [float(predictions.loss[of_class & (predictions.y_pred == j)].sum()) for j in tied]
    return int(tied[int(np.argmax(losses))])


def _reference(data: FindingsData, evaluated: EvaluatedSet, actual: int, other: int) -> str:
    reference = data.in_domain
    if reference is None or reference is evaluated:
        return ""
    counts = _counts(reference)
    return f"; on {reference.name} {counts[actual, other]} of {counts[actual].sum()}"


def _confusion_finding(
    data: FindingsData, evaluated: EvaluatedSet, actual: int, other: int, p_adjusted: float
) -> Finding:
    counts, classes = _counts(evaluated), evaluated.evaluation.classes
    n, x = int(counts[actual].sum()), int(counts[actual, other])
    errors = n - int(counts[actual, actual])
    low, high = wilson_interval(x, n)
    name, other_name = classes[actual], classes[other]
    sentence = say(
        "confusion",
        cls=name,
        other=other_name,
        x=x,
        n=n,
        set=evaluated.name,
        rate=percent(x / n),
        ci=interval(low, high),
        share=percent(x / errors),
        errors=errors,
        n_other=len(classes) - 1,
        p=pvalue(p_adjusted),
        reference=_reference(data, evaluated, actual, other),
    )
    return make_finding(
        f"confusion:{evaluated.name}:{name}>{other_name}",
        "confusion",
        score=conservative_images(n, low),
        n_images=evaluated.n_images,
        effect=(f"share of {name} predicted as {other_name}", x / n, low, high),
        sentence=sentence,
        evidence=Evidence(
            "pairs",
            evaluated.name,
            (name, other_name),
            evidence_paths(
                evaluated.predictions,
                data.options.n_evidence_images,
                true_class=name,
                pred_class=other_name,
            ),
        ),
        suggestion=suggest("confusion", cls=name, other=other_name),
        numbers={"count": x, "support": n, "errors": errors, "p_adjusted": p_adjusted},
    )


def _set_confusions(data: FindingsData, evaluated: EvaluatedSet) -> list[Finding]:
    counts, options = _counts(evaluated), data.options
    n_other = counts.shape[0] - 1
    errors = counts.sum(axis=1) - np.diagonal(counts)
    top = [top_confused(evaluated, i) for i in range(counts.shape[0])]
    p_values = np.array(
        [
            concentration_p_value(int(counts[i, top[i]]), int(errors[i]), n_other)
            if errors[i] > 0
            else np.nan
            for i in range(counts.shape[0])
        ]
    )
    adjusted = holm_adjust(p_values)
    found = []
    for i, j in enumerate(top):
        x = int(counts[i, j])
        if (
            errors[i] > 0
            and adjusted[i] < options.alpha
            and x >= options.min_confusion_count
            and x / errors[i] >= options.min_confusion_share
        ):
            found.append(_confusion_finding(data, evaluated, i, j, float(adjusted[i])))
    return found


def concentrated_confusions(data: FindingsData) -> list[Finding]:
    """Classes whose errors go mostly to one other class, beyond an even spread.

    For each class with errors, the most frequent wrong class gets ``x`` of its ``e`` errors;
    :func:`~asl_eval.findings.stats.concentration_p_value` tests that against an even spread
    over the other classes, Holm-adjusted across the classes of the set. A finding needs the
    adjusted p below alpha, ``x >= min_confusion_count`` and ``x / e >= min_confusion_share``.
    """
    return [f for s in data.sets for f in _set_confusions(data, s)]


def _given_up(data: FindingsData, evaluated: EvaluatedSet) -> list[Finding]:
    from scipy.stats import binom

    counts, options, classes = _counts(evaluated), data.options, evaluated.evaluation.classes
    n = int(counts.sum())
    support, predicted = counts.sum(axis=1), counts.sum(axis=0)
    candidate = (support >= options.min_support) & (
        predicted <= np.floor(options.almost_never_share * support)
    )
    p_values = np.where(
        support > 0, binom.cdf(predicted, n, support / max(n, 1)), np.nan
    )  # P[predicted this rarely | predicted as often as it occurs]
    adjusted = holm_adjust(p_values)
    found = []
    for i in np.flatnonzero(candidate & (np.nan_to_num(adjusted, nan=1.0) < options.alpha)):
        s, c, p = int(support[i]), int(counts[i, i]), int(predicted[i])
        low, high = wilson_interval(c, s)
        sentence = say(
            "given-up",
            how="never" if p == 0 else "almost never",
            cls=classes[i],
            set=evaluated.name,
            p=p,
            n=n,
            s=s,
            c=c,
            acc=percent(c / s),
            ci=interval(low, high),
        )
        found.append(
            make_finding(
                f"given-up:{evaluated.name}:{classes[i]}",
                "given-up",
                score=conservative_images(s, 1.0 - high),
                n_images=n,
                effect=(f"accuracy of {classes[i]}", c / s, low, high),
                sentence=sentence,
                evidence=Evidence(
                    "confusion",
                    evaluated.name,
                    (classes[i],),
                    evidence_paths(
                        evaluated.predictions, options.n_evidence_images, true_class=classes[i]
                    ),
                ),
                suggestion=suggest("given-up", cls=classes[i]),
                numbers={
                    "predicted": p,
                    "support": s,
                    "correct": c,
                    "p_adjusted": float(adjusted[i]),
                },
            )
        )
    return found


def given_up_classes(data: FindingsData) -> list[Finding]:
    """Classes with at least ``min_support`` images that the model predicts for at most
    ``almost_never_share`` of that many images, when a one-sided binomial test rejects that it
    predicts them as often as they occur (Holm across classes). Scored by the class's images
    it misses at the conservative end (``support * (1 - upper bound of its accuracy)``)."""
    return [f for s in data.sets for f in _given_up(data, s)]


def _at_chance(data: FindingsData, evaluated: EvaluatedSet) -> list[Finding]:
    from scipy.stats import binom

    counts, classes = _counts(evaluated), evaluated.evaluation.classes
    n, k = int(counts.sum()), len(classes)
    if n == 0 or k == 0:
        return []
    c, support = int(np.trace(counts)), counts.sum(axis=1)
    majority = int(np.argmax(support))
    chance, majority_rate = 1.0 / k, float(support[majority] / n)
    baseline = max(chance, majority_rate)
    p_value = float(binom.sf(c - 1, n, baseline))  # P[at least c right | accuracy = baseline]
    if p_value < data.options.alpha:
        return []
    low, high = wilson_interval(c, n)
    sentence = say(
        "chance",
        set=evaluated.name,
        acc=percent(c / n),
        c=c,
        n=n,
        ci=interval(low, high),
        chance=percent(chance),
        k=k,
        majority=percent(majority_rate),
        majority_class=classes[majority],
        p=pvalue(p_value),
    )
    return [
        make_finding(
            f"chance:{evaluated.name}",
            "chance",
            score=conservative_images(n, 1.0 - high),
            n_images=n,
            effect=("accuracy", c / n, low, high),
            sentence=sentence,
            evidence=Evidence("overview", evaluated.name, (classes[majority],)),
            suggestion=suggest("chance"),
            numbers={
                "accuracy": c / n,
                "chance_accuracy": chance,
                "majority_accuracy": majority_rate,
                "majority_class": classes[majority],
                "p_value": p_value,
            },
        )
    ]


def at_chance(data: FindingsData) -> list[Finding]:
    """Sets on which the model is not shown to beat the better of two baselines: a uniform
    guess over the model's ``k`` classes (``1 / k``) and always predicting the set's most
    frequent class (its share of the set). Fires when the one-sided exact binomial test of
    "accuracy above that baseline" does not reject at alpha. Scored by the images the model
    gets wrong at the conservative end, ``n * (1 - upper Wilson bound of the accuracy)``."""
    return [f for s in data.sets for f in _at_chance(data, s)]


def _collapse(data: FindingsData, evaluated: EvaluatedSet) -> list[Finding]:
    counts, options, classes = _counts(evaluated), data.options, evaluated.evaluation.classes
    n = int(counts.sum())
    if n == 0:
        return []
    top = int(np.argmax(counts.sum(axis=0)))
    p, s = int(counts[:, top].sum()), int(counts[top].sum())
    low, high = wilson_interval(p, n)
    if low < options.collapse_share or p < 2 * s:
        return []
    name = classes[top]
    sentence = say(
        "collapse",
        cls=name,
        p=p,
        n=n,
        set=evaluated.name,
        share=percent(p / n),
        ci=interval(low, high),
        s=s,
    )
    return [
        make_finding(
            f"collapse:{evaluated.name}:{name}",
            "collapse",
            score=max(0.0, n * low - s),
            n_images=n,
            effect=(f"share predicted as {name}", p / n, low, high),
            sentence=sentence,
            evidence=Evidence(
                "predicted-classes",
                evaluated.name,
                (name,),
                evidence_paths(evaluated.predictions, options.n_evidence_images, pred_class=name),
            ),
            suggestion=suggest("collapse"),
            numbers={"predicted": p, "support": s, "n_images": n},
        )
    ]


def collapse(data: FindingsData) -> list[Finding]:
    """A set whose most predicted class takes at least ``collapse_share`` of it (lower Wilson
    bound) and at least twice as many images as the class has. Scored by the predictions of
    that class beyond its own images at the conservative end (``n * low - support``)."""
    return [f for s in data.sets for f in _collapse(data, s)]


register_check(Check("chance", "accuracy no better than a baseline", at_chance, order=5))
register_check(Check("confusion", "concentrated confusions", concentrated_confusions, order=30))
register_check(Check("given-up", "classes never or almost never predicted", given_up_classes, 40))
register_check(Check("collapse", "collapse onto one class", collapse, order=45))
