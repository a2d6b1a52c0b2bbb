"""Comparing two reports set by set: accuracy, paired interval, exact McNemar test, power,
per-class changes, and the gate's verdict.

For each set both reports hold (an in-domain split only when both models were trained on the
same split, :func:`in_domain_problem`), the images are paired (:mod:`.matching`) and:

- the accuracies of both models and the difference, with Newcombe's paired interval;
- McNemar's exact test on the images only one model got right, Holm-adjusted across sets;
- the test's power against a drop of ``max_drop`` (:func:`.statistics.mcnemar_power`);
- per class, :func:`asl_eval.metrics.paired_class_differences` (exact McNemar per class,
  Holm-adjusted across the set's classes).

The verdict of a set: ``"regression"`` when the accuracy drops by more than ``max_drop`` and
the adjusted p-value is below ``alpha``; otherwise ``"not enough evidence"`` when the test's
power is below ``min_power`` (unless the new model is significantly better); otherwise
``"no regression"``.

May import: numpy, pandas, :mod:`asl_eval.errors`, :mod:`asl_eval.metrics` and the compare
modules below it (:mod:`.reading`, :mod:`.matching`, :mod:`.statistics`).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from asl_eval import metrics
from asl_eval.compare.matching import MatchedBy, PairedImages, pair_images
from asl_eval.compare.reading import ReportSide, SetRecord, read_side
from asl_eval.compare.statistics import mcnemar_power, paired_difference_interval
from asl_eval.errors import MetricError, ReportError, printable

__all__ = [
    "EXIT_NOT_ENOUGH_EVIDENCE",
    "EXIT_OK",
    "EXIT_REGRESSION",
    "CompareOptions",
    "ComparisonResult",
    "SetComparison",
    "SkippedSet",
    "Verdict",
    "compare_report_files",
    "compare_sides",
    "in_domain_problem",
]

Verdict = Literal["regression", "not enough evidence", "no regression"]
EXIT_OK = 0
EXIT_REGRESSION = 3
EXIT_NOT_ENOUGH_EVIDENCE = 4


@dataclass(frozen=True)
class CompareOptions:
    """The gate's settings (``--max-drop``, ``--alpha``, ``--min-power``, ``--fail-on-class``,
    ``--set``).

    Attributes
    ----------
    max_drop
        The accuracy drop the gate tolerates, as a fraction (0.01 = one percentage point).
    alpha
        Family-wise error rate of the tests (Holm across sets; across classes within a set).
    min_power
        The power a set needs against a drop of ``max_drop`` for a pass to mean anything.
    fail_on_class
        A significant per-class regression fails the gate too.
    sets
        Compare only these sets (default: every set both reports hold).
    """

    max_drop: float = 0.01
    alpha: float = 0.05
    min_power: float = 0.8
    fail_on_class: bool = False
    sets: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not 0 < self.max_drop < 1:
            raise MetricError(f"max_drop must be between 0 and 1 (exclusive); got {self.max_drop}.")
        if not 0 < self.alpha < 1:
            raise MetricError(f"alpha must be between 0 and 1 (exclusive); got {self.alpha}.")
        if not 0 <= self.min_power <= 1:
            raise MetricError(f"min_power must be between 0 and 1; got {self.min_power}.")


@dataclass(frozen=True)
class SetComparison:
    """One set compared: BASE's and NEW's numbers on the same images, and the verdict.

    ``only_base`` counts images BASE got right and NEW wrong (they flipped right to wrong),
    ``only_new`` the reverse. ``difference`` is ``accuracy_new - accuracy_base`` (negative:
    NEW is worse), with its paired 95% interval ``(ci_low, ci_high)``. ``power`` is the exact
    McNemar test's power against a drop of ``max_drop`` at this set's size, at level
    ``alpha / n_sets`` and discordance ``discordance``. ``per_class`` is
    :func:`asl_eval.metrics.paired_class_differences` (``_a`` = BASE, ``_b`` = NEW) plus
    ``drop`` and ``regression`` columns.
    """

    name: str
    role: str
    matched_by: MatchedBy
    n_images: int
    accuracy_base: float
    accuracy_new: float
    ci_low: float
    ci_high: float
    only_base: int
    only_new: int
    p_value: float
    p_adjusted: float
    power: float
    discordance: float
    verdict: Verdict
    per_class: pd.DataFrame
    images: PairedImages

    @property
    def difference(self) -> float:
        return self.accuracy_new - self.accuracy_base

    @property
    def drop(self) -> float:
        return self.accuracy_base - self.accuracy_new

    @property
    def regressed_classes(self) -> tuple[str, ...]:
        """Classes whose accuracy dropped by more than ``max_drop``, significantly."""
        return tuple(str(c) for c in self.per_class.index[self.per_class["regression"]])


@dataclass(frozen=True)
class SkippedSet:
    """A set left out of the comparison, and why."""

    name: str
    reason: str


@dataclass(frozen=True)
class ComparisonResult:
    """Everything ``asl-eval compare`` prints, as data."""

    base: ReportSide
    new: ReportSide
    options: CompareOptions
    classes: tuple[str, ...]
    sets: tuple[SetComparison, ...]
    skipped: tuple[SkippedSet, ...] = ()
    notes: tuple[str, ...] = field(default=())

    @property
    def regressed_sets(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.sets if s.verdict == "regression")

    @property
    def regressed_classes(self) -> dict[str, tuple[str, ...]]:
        """Set name -> its significantly regressed classes (sets without any left out)."""
        return {s.name: s.regressed_classes for s in self.sets if s.regressed_classes}

    @property
    def verdict(self) -> Verdict:
        """The gate's verdict over all sets (and classes, with ``fail_on_class``)."""
        if self.regressed_sets or (self.options.fail_on_class and self.regressed_classes):
            return "regression"
        if any(s.verdict == "not enough evidence" for s in self.sets):
            return "not enough evidence"
        return "no regression"

    @property
    def exit_code(self) -> int:
        """0 no regression, 3 a regression, 4 not enough evidence."""
        return {
            "regression": EXIT_REGRESSION,
            "not enough evidence": EXIT_NOT_ENOUGH_EVIDENCE,
            "no regression": EXIT_OK,
        }[self.verdict]


def in_domain_problem(base: ReportSide, new: ReportSide, name: str) -> str | None:
    """Why the in-domain set ``name`` cannot be compared, or None when it can.

    Both models must have been trained with the same kind of split (the training records
    say; a record without a kind means a random split) on the same files (the sets' content
    digests are equal).
    """
    kinds = (base.split.kind, new.split.kind)
    for side in (base, new):
        if side.split.kind is None:
            return (
                f"no training record for {side.label}'s model (looked for "
                f"{side.split.record or 'none: the report names no model'}), so its split "
                "cannot be checked"
            )
    if kinds[0] != kinds[1]:
        return f"the models were trained on different kinds of split ({kinds[0]} vs {kinds[1]})"
    digests = (base.sets[name].digest, new.sets[name].digest)
    if None in digests:
        return "a report has no content hashes for it, so the files cannot be checked"
    if digests[0] != digests[1]:
        return "the validation splits hold different files (their content digests differ)"
    return None


def _selected(base: ReportSide, new: ReportSide, chosen: Sequence[str]) -> list[str]:
    for name in chosen:
        for side in (base, new):
            if name not in side.sets:
                raise ReportError(
                    f"--set {printable(repr(name))}: {side.label} has no such set; it has "
                    f"{', '.join(printable(repr(s)) for s in side.sets) or 'none'}."
                )
    return list(chosen) if chosen else [n for n in base.sets if n in new.sets]


def _skipped(base: ReportSide, new: ReportSide, chosen: Sequence[str]) -> list[SkippedSet]:
    if chosen:
        return []
    return [
        SkippedSet(name, f"only in {side.label}")
        for side, other in ((base, new), (new, base))
        for name in side.sets
        if name not in other.sets
    ]


def _classes(base: ReportSide, new: ReportSide, pairs: Sequence[PairedImages]) -> tuple[str, ...]:
    seen = dict.fromkeys((*base.classes, *new.classes))
    for pair in pairs:
        for column in ("y_true", "pred_base", "pred_new"):
            seen.update(dict.fromkeys(pair.frame[column]))
    return tuple(str(c) for c in seen)


def _per_class(
    pair: PairedImages, classes: tuple[str, ...], options: CompareOptions
) -> pd.DataFrame:
    frame = pair.frame
    with warnings.catch_warnings():  # classes without images are NaN rows, shown as such
        warnings.simplefilter("ignore", RuntimeWarning)
        table = metrics.paired_class_differences(
            frame["y_true"].to_numpy(),
            frame["pred_base"].to_numpy(),
            frame["pred_new"].to_numpy(),
            classes=classes,
        )
    table["drop"] = -table["difference"]
    adjusted = table["p_adjusted"].fillna(1.0)
    table["regression"] = (table["drop"].fillna(0) > options.max_drop) & (adjusted < options.alpha)
    return table


def _verdict(drop: float, p_adjusted: float, power: float, options: CompareOptions) -> Verdict:
    if drop > options.max_drop and p_adjusted < options.alpha:
        return "regression"
    if power < options.min_power and not (drop < 0 and p_adjusted < options.alpha):
        return "not enough evidence"
    return "no regression"


def _mcnemar(pair: PairedImages, classes: tuple[str, ...]) -> metrics.McNemarResult:
    return metrics.mcnemar_test(
        pair.frame["y_true"].to_numpy(),
        pair.frame["pred_base"].to_numpy(),
        pair.frame["pred_new"].to_numpy(),
        classes=classes,
    )


def _compare_set(
    pair: PairedImages,
    test: metrics.McNemarResult,
    p_adjusted: float,
    classes: tuple[str, ...],
    options: CompareOptions,
    power_alpha: float,
) -> SetComparison:
    """One set's numbers and verdict; ``test`` is its McNemar test, ``p_adjusted`` that test's
    p-value Holm-adjusted across the sets, ``power_alpha`` the level the power is computed at
    (``alpha / n_sets``, the first step of Holm's procedure: a lower bound on its power)."""
    frame = pair.frame
    neither = int(
        np.sum((frame["pred_base"] != frame["y_true"]) & (frame["pred_new"] != frame["y_true"]))
    )
    n, only_base, only_new = test.n, test.b, test.c
    both = n - only_base - only_new - neither
    discordance = max((only_base + only_new) / n, options.max_drop)
    power = mcnemar_power(n, drop=options.max_drop, discordance=discordance, alpha=power_alpha)
    low, high = paired_difference_interval(both, only_base, only_new, neither)
    return SetComparison(
        name=pair.name,
        role=pair.role,
        matched_by=pair.matched_by,
        n_images=n,
        accuracy_base=test.accuracy_a,
        accuracy_new=test.accuracy_b,
        ci_low=low,
        ci_high=high,
        only_base=only_base,
        only_new=only_new,
        p_value=test.p_value,
        p_adjusted=p_adjusted,
        power=power,
        discordance=discordance,
        verdict=_verdict(test.accuracy_a - test.accuracy_b, p_adjusted, power, options),
        per_class=_per_class(pair, classes, options),
        images=pair,
    )


def _pairs(
    base: ReportSide, new: ReportSide, names: Sequence[str]
) -> tuple[list[PairedImages], list[SkippedSet]]:
    pairs, skipped = [], []
    for name in names:
        sides: tuple[SetRecord, SetRecord] = (base.sets[name], new.sets[name])
        if "in-domain" in (sides[0].role, sides[1].role):
            problem = in_domain_problem(base, new, name)
            if problem is not None:
                skipped.append(SkippedSet(name, f"not comparable: {problem}"))
                continue
        if not len(sides[0].rows) or not len(sides[1].rows):
            skipped.append(SkippedSet(name, "no evaluated images"))
            continue
        pairs.append(pair_images(*sides))
    return pairs, skipped


def compare_sides(
    base: ReportSide, new: ReportSide, options: CompareOptions | None = None
) -> ComparisonResult:
    """Compare two reports already read (:func:`asl_eval.compare.reading.read_side`).

    Raises
    ------
    ReportError
        A set named in ``options.sets`` is missing, a set's images differ between the
        reports, or no set can be compared.
    """
    options = options or CompareOptions()
    names = _selected(base, new, options.sets)
    pairs, skipped = _pairs(base, new, names)
    skipped = _skipped(base, new, options.sets) + skipped
    if not pairs:
        reasons = "; ".join(f"{s.name}: {s.reason}" for s in skipped) or "none in common"
        raise ReportError(
            f"No set to compare between {printable(base.json_path)} and "
            f"{printable(new.json_path)} ({printable(reasons)})."
        )
    classes = _classes(base, new, pairs)
    tests = [_mcnemar(pair, classes) for pair in pairs]
    adjusted = metrics.holm_adjust([t.p_value for t in tests])
    compared = tuple(
        _compare_set(pair, test, float(p), classes, options, options.alpha / len(pairs))
        for pair, test, p in zip(pairs, tests, adjusted, strict=True)
    )
    notes = tuple(p.note for p in pairs if p.note)
    return ComparisonResult(base, new, options, classes, compared, tuple(skipped), notes)


def compare_report_files(
    base: str | Path,
    new: str | Path,
    options: CompareOptions | None = None,
    *,
    base_model: str | Path | None = None,
    new_model: str | Path | None = None,
) -> ComparisonResult:
    """Read two reports' JSON (with the predictions CSV beside each) and compare them.

    ``base_model`` / ``new_model`` say where each model is when the path in its report is not
    (its training record tells the in-domain split).
    """
    return compare_sides(
        read_side("BASE", base, model_path=base_model),
        read_side("NEW", new, model_path=new_model),
        options,
    )
