"""Auto-detection: read every candidate rule, align each rule's labels, choose one rule.

:func:`detect_rule` reads the rules the options allow
(:func:`~asl_eval.labels.rules.candidate_rules`), aligns each rule's labels with the classes,
and picks the rule whose labels match the most files.
If no file gets a label, if two rules label a file differently, or if the chosen labels cannot be
aligned without a silent merge, the :class:`~asl_eval.errors.LabelError` is returned in the
:class:`Detection`, not raised, so that the dry run can still show the counts.

May import: :mod:`asl_eval.errors`, :mod:`asl_eval.labels.rules`,
:mod:`asl_eval.labels.alignment` and the standard library. Never torch or fastai.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from asl_eval.errors import LabelError, first_few
from asl_eval.labels.alignment import Alignment, align_unchecked, check_label_map
from asl_eval.labels.rules import (
    RULE_DESCRIPTIONS,
    LabelOptions,
    RuleName,
    candidate_rules,
    compile_label_regex,
    filename_label,
    folder_label,
    path_key,
    read_labels_table,
    regex_label,
)

__all__ = ["Detection", "Reading", "detect_rule", "read_rule"]

_CHOOSE_HINT = (
    "Choose with --labels-from folder, --labels-from filename, --label-regex RE "
    "or --labels-csv FILE."
)
_N_CONFLICTS_SHOWN = 3


@dataclass(frozen=True)
class Reading:
    """What one rule reads for every file, and how its labels align with the classes.

    Attributes
    ----------
    rule
        ``"folder"``, ``"filename"``, ``"regex"`` or ``"csv"``.
    labels
        One label per file, in input order (None: the rule gives that file no label).
    matched_by
        For ``"filename"``: the built-in rule that matched each file (None elsewhere).
    alignment
        How the distinct labels map to the classes (not yet judged for merges).
    """

    rule: RuleName
    labels: tuple[str | None, ...]
    matched_by: tuple[str | None, ...]
    alignment: Alignment

    def aligned(self, i: int) -> str | None:
        """The class of file ``i``, or None (no label, or a label that matches no class)."""
        label = self.labels[i]
        return None if label is None else self.alignment.mapping[label]

    @property
    def n_labeled(self) -> int:
        """Files this rule gives a label."""
        return sum(label is not None for label in self.labels)

    @property
    def n_aligned(self) -> int:
        """Files whose label matches a class."""
        return sum(self.aligned(i) is not None for i in range(len(self.labels)))


@dataclass(frozen=True)
class Detection:
    """Every rule read, the rule chosen and the error a run would stop with.

    Attributes
    ----------
    readings
        One :class:`Reading` per rule read (the dry run also reads the folder and built-in rules
        when another rule was asked for).
    chosen
        The reading of the chosen rule; None when no rule labels any file.
    error
        Why the chosen rule cannot be used, or None.
    table
        The labels CSV, read once, when it was a candidate.
    """

    readings: dict[RuleName, Reading]
    chosen: Reading | None
    error: LabelError | None
    table: Mapping[str, str] | None = None


def read_rule(
    rule: RuleName,
    paths: Sequence[Path],
    root: Path,
    options: LabelOptions,
    classes: Sequence[str] | None,
    table: Mapping[str, str] | None,
) -> Reading:
    """Read one rule's label for every path and align the labels (without judging them).

    >>> reading = read_rule(
    ...     "filename", [Path("A_test.jpg"), Path("x.png")], Path("."), LabelOptions(), ["A"], None
    ... )
    >>> reading.labels, reading.matched_by, reading.n_aligned
    (('A', None), ('kaggle-test', None), 1)
    """
    matched_by: list[str | None] = [None] * len(paths)
    labels: list[str | None]
    if rule == "folder":
        labels = [folder_label(p, root) for p in paths]
    elif rule == "filename":
        pairs = [filename_label(p) for p in paths]
        labels = [label for label, _ in pairs]
        matched_by = [name for _, name in pairs]
    elif rule == "regex":
        compiled = compile_label_regex(options.regex or "")
        labels = [regex_label(p, compiled) for p in paths]
    else:  # csv: the table detect_rule read once
        labels = [(table or {}).get(path_key(p)) or None for p in paths]
    alignment = align_unchecked(
        (label for label in labels if label is not None), classes, dict(options.label_map)
    )
    return Reading(rule, tuple(labels), tuple(matched_by), alignment)


def detect_rule(
    paths: Sequence[Path],
    root: Path,
    classes: Sequence[str] | None,
    options: LabelOptions,
    *,
    preview: bool = False,
) -> Detection:
    """Read the candidate rules and choose the one whose labels match the most files.

    Parameters
    ----------
    paths
        The files to label.
    root
        The input folder.
    classes
        The model's classes, or None (labels kept as read, after the map).
    options
        Where labels come from.
    preview
        Also read the folder and built-in file-name rules when they are not candidates, so that
        the dry run can show what they would give.

    Returns
    -------
    Detection
        A problem found after reading (no label at all, rules that disagree, labels that
        cannot be aligned) is in ``error``, not raised.

    Raises
    ------
    LabelError
        If there are no classes, the options contradict each other, the labels CSV cannot be
        read, or a ``--label-map`` entry names no class.
    """
    if classes is not None and len(classes) == 0:
        raise LabelError("The model has no classes to align labels with.")
    rules = candidate_rules(options)
    if classes is not None:
        check_label_map(options.label_map, classes)
    table = None
    if "csv" in rules:
        table = read_labels_table(options.labels_csv, root=root)  # type: ignore[arg-type]
    read_rules = list(rules)
    if preview:  # show what the folder and built-in rules would give, whatever was chosen
        read_rules += [r for r in ("folder", "filename") if r not in rules]
    readings = {rule: read_rule(rule, paths, root, options, classes, table) for rule in read_rules}
    best = readings[max(rules, key=lambda r: (readings[r].n_aligned, readings[r].n_labeled))]
    if paths and best.n_labeled == 0:
        return Detection(readings, None, _no_label_error(paths, rules), table)
    others = [readings[r] for r in rules if r != best.rule and readings[r].n_labeled > 0]
    error = _conflict_error(best, others, paths, case_blind=classes is None)
    return Detection(readings, best, error or _alignment_error(best), table)


def _no_label_error(paths: Sequence[Path], rules: Sequence[RuleName]) -> LabelError:
    """No candidate rule labels any file: say what was tried and what to pass."""
    tried = ", ".join(RULE_DESCRIPTIONS[r] for r in rules)
    untried = [f"--labels-from {r}" for r in ("folder", "filename") if r not in rules]
    fixes = ["--label-regex RE", "--labels-csv FILE", *untried]
    return LabelError(
        f"None of the {len(paths)} files has a label (tried: {tried}): "
        f"{first_few([str(p) for p in paths])}. Expected class subfolders (A/A1234.jpg) or "
        f"names like A_test.jpg, X0023_test.jpg; pass {', '.join(fixes[:-1])} "
        f"or {fixes[-1]}."
    )


def _conflict_error(
    chosen: Reading, others: Sequence[Reading], paths: Sequence[Path], *, case_blind: bool
) -> LabelError | None:
    """The first other rule that labels some file differently from the chosen one, if any."""
    for other in others:
        conflicts = _conflicts(chosen, other, paths, case_blind=case_blind)
        if conflicts:
            shown = "; ".join(conflicts[:_N_CONFLICTS_SHOWN])
            rest = len(conflicts) - _N_CONFLICTS_SHOWN
            more = f" (and {rest} more)" if rest > 0 else ""
            return LabelError(
                f"The {RULE_DESCRIPTIONS[chosen.rule]} and the {RULE_DESCRIPTIONS[other.rule]} "
                f"give different labels for {len(conflicts)} of {len(paths)} files: "
                f"{shown}{more}. " + _CHOOSE_HINT
            )
    return None


def _conflicts(
    first: Reading, second: Reading, paths: Sequence[Path], *, case_blind: bool
) -> list[str]:
    """Files both rules label (and align) differently, as ``path: rule 'x', rule 'y'``."""
    found = []
    for i, path in enumerate(paths):
        a, b = first.aligned(i), second.aligned(i)
        if a is None or b is None:
            continue
        if (a.casefold() != b.casefold()) if case_blind else (a != b):
            found.append(
                f"{path}: {RULE_DESCRIPTIONS[first.rule]} {first.labels[i]!r}, "
                f"{RULE_DESCRIPTIONS[second.rule]} {second.labels[i]!r}"
            )
    return found


def _alignment_error(chosen: Reading) -> LabelError | None:
    """The chosen labels match several classes ignoring case, or merge silently."""
    problems = chosen.alignment.problems()
    if not problems:
        return None
    return LabelError(
        "Labels cannot be aligned with the model's classes: " + "; ".join(problems) + "."
    )
