"""The dry run behind ``asl-eval labels``: what a run would do with the labels, before it runs.

:func:`preview_labels` finds the files, reads every rule, chooses one exactly as
:func:`~asl_eval.labels.assignment.label_files` would, and returns the counts as a
:class:`LabelPreview`; it decodes no image and runs no model, and a conflict, alignment problem
or ``strict`` failure is reported in the preview rather than raised.
:func:`render_label_preview` turns a preview into text for the terminal.

May import: :mod:`asl_eval.errors`, :mod:`asl_eval.inputs` (to find the files), the other
:mod:`asl_eval.labels` modules and the standard library. Never torch or fastai.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from asl_eval.errors import first_few, printable
from asl_eval.labels.assignment import label_outcome
from asl_eval.labels.detection import Reading
from asl_eval.labels.rules import FILENAME_RULES, RULE_DESCRIPTIONS, LabelOptions, RuleName
from asl_eval.labels.rules import unused_rows as _unused_rows

__all__ = ["LabelPreview", "RuleCount", "preview_labels", "render_label_preview"]


@dataclass(frozen=True)
class RuleCount:
    """How many files one rule labels (``n_in_classes``: None when there are no classes)."""

    rule: str
    description: str
    n_labeled: int
    n_in_classes: int | None


@dataclass(frozen=True)
class LabelPreview:
    """Result of :func:`preview_labels`: what a run would do with the labels, before it runs.

    Attributes
    ----------
    folder
        The input folder.
    n_found
        Files that would go into the ledger.
    classes
        The model's classes, or None.
    rules
        Every rule tried, with the built-in file-name rules also listed one by one
        (``filename:kaggle-test``, ...).
    chosen
        The rule a run would use, or None if it would stop with ``error``.
    class_counts
        Files per class, in class order, classes with no file included (with 0); without
        classes, files per label.
    not_in_classes
        ``label -> number of files`` for labels that match no class.
    unlabeled
        Paths that get no label from the chosen rule.
    alignment
        ``label, class, method, n_files`` records for every label the chosen rule read.
    excluded
        Files set aside before labelling (``path -> reason``).
    skipped
        What discovery passed over (hidden, other extensions, ...), by kind.
    unused_csv_rows
        Paths listed in the labels CSV but not found.
    error
        The LabelError message a run would stop with, or None.
    """

    folder: str
    n_found: int
    classes: tuple[str, ...] | None
    rules: tuple[RuleCount, ...]
    chosen: str | None
    class_counts: dict[str, int]
    not_in_classes: dict[str, int]
    unlabeled: tuple[str, ...]
    alignment: tuple[dict[str, object], ...]
    excluded: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)
    unused_csv_rows: tuple[str, ...] = ()
    error: str | None = None

    @property
    def ok(self) -> bool:
        """Whether a run would go ahead with these labels."""
        return self.error is None

    @property
    def n_labeled(self) -> int:
        """Files whose label is one of the classes (all labelled files without classes)."""
        return sum(self.class_counts.values())

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form (``json.dumps`` works on it)."""
        return {
            "folder": self.folder,
            "ok": self.ok,
            "error": self.error,
            "n_found": self.n_found,
            "n_labeled": self.n_labeled,
            "classes": None if self.classes is None else list(self.classes),
            "chosen_rule": self.chosen,
            "rules": [
                {
                    "rule": r.rule,
                    "description": r.description,
                    "n_labeled": r.n_labeled,
                    "n_in_classes": r.n_in_classes,
                }
                for r in self.rules
            ],
            "class_counts": dict(self.class_counts),
            "classes_without_files": [c for c, n in self.class_counts.items() if n == 0],
            "not_in_classes": dict(self.not_in_classes),
            "n_unlabeled": len(self.unlabeled),
            "unlabeled": list(self.unlabeled),
            "alignment": [dict(a) for a in self.alignment],
            "excluded": dict(self.excluded),
            "skipped": dict(self.skipped),
            "unused_csv_rows": list(self.unused_csv_rows),
        }

    def render_text(self) -> str:
        """A plain-text summary for the terminal (:func:`render_label_preview`)."""
        return render_label_preview(self)


# -- building the preview ----------------------------------------------------------------------


def preview_labels(
    folder: str | Path,
    *,
    classes: Sequence[str] | None = None,
    options: LabelOptions | None = None,
) -> LabelPreview:
    """Dry run of labelling: which rules label how many files, the files per class, what is
    unmatched. Opens no image and runs no model.

    Parameters
    ----------
    folder
        The input folder (or one image file).
    classes
        The model's classes (for example :func:`asl_eval.inference.model_classes`), or None.
    options
        As for :func:`~asl_eval.labels.label_files`.

    Returns
    -------
    LabelPreview
        A conflict, alignment problem or ``strict`` failure is reported in ``error`` (and
        ``ok`` is False) rather than raised.

    Raises
    ------
    InputError
        If the folder does not exist or holds no image file.
    LabelError
        If the options themselves are invalid (bad regex, unreadable CSV, ``--label-map``
        target that is not a class).
    """
    # imported here so that importing asl_eval.labels does not load Pillow (asl_eval.inputs
    # is a lower layer, so the import-linter contracts allow it either way)
    from asl_eval.inputs import discover_images

    options = options or LabelOptions()
    discovery = discover_images(folder, follow_links=options.follow_links)
    paths = list(discovery.images)
    outcome = label_outcome(paths, discovery.root, classes, options, preview=True)
    detection = outcome.detection
    counts, chosen_rule = _ChosenCounts(), None
    if detection.chosen is not None:
        counts = _count_chosen(paths, detection.chosen, classes)
        chosen_rule = detection.chosen.rule
    return LabelPreview(
        folder=str(folder),
        n_found=discovery.n_found,
        classes=None if classes is None else tuple(classes),
        rules=tuple(_rule_counts(detection.readings, classes, options)),
        chosen=None if outcome.error is not None else chosen_rule,
        class_counts=counts.class_counts,
        not_in_classes=counts.not_in_classes,
        unlabeled=tuple(counts.unlabeled),
        alignment=tuple(counts.alignment),
        excluded={e.path: e.reason for e in discovery.entries},
        skipped=dict(discovery.skipped),
        unused_csv_rows=tuple(_unused_rows(paths, detection.table)),
        error=None if outcome.error is None else str(outcome.error),
    )


def _rule_counts(
    readings: Mapping[RuleName, Reading],
    classes: Sequence[str] | None,
    options: LabelOptions,
) -> list[RuleCount]:
    """One count per rule read, each built-in file-name rule also counted on its own."""
    rules: list[RuleCount] = []
    for name, reading in readings.items():
        in_classes = None if classes is None else reading.n_aligned
        description = RULE_DESCRIPTIONS[name]
        if name == "regex":
            description = f"--label-regex {options.regex}"
        rules.append(RuleCount(name, description, reading.n_labeled, in_classes))
        if name == "filename":
            rules.extend(_builtin_rule_counts(reading, classes))
    return rules


def _builtin_rule_counts(reading: Reading, classes: Sequence[str] | None) -> list[RuleCount]:
    """``filename:<name>`` counts: the files each built-in rule matched first."""
    counts = []
    for builtin, pattern in FILENAME_RULES.items():
        hits = [i for i, m in enumerate(reading.matched_by) if m == builtin]
        n_aligned = sum(reading.aligned(i) is not None for i in hits)
        counts.append(
            RuleCount(
                f"filename:{builtin}", pattern, len(hits), None if classes is None else n_aligned
            )
        )
    return counts


@dataclass
class _ChosenCounts:
    """What the chosen rule does with the files (empty when no rule was chosen)."""

    class_counts: dict[str, int] = field(default_factory=dict)
    not_in_classes: dict[str, int] = field(default_factory=dict)
    unlabeled: list[str] = field(default_factory=list)
    alignment: list[dict[str, object]] = field(default_factory=list)


def _count_chosen(
    paths: Sequence[Path], chosen: Reading, classes: Sequence[str] | None
) -> _ChosenCounts:
    """Files per class (every class listed, in class order), labels not in the classes,
    unlabeled paths and the alignment records of the chosen rule."""
    class_counts: dict[str, int] = {} if classes is None else dict.fromkeys(classes, 0)
    unknown: Counter[str] = Counter()
    unlabeled: list[str] = []
    for i, path in enumerate(paths):
        label, aligned = chosen.labels[i], chosen.aligned(i)
        if label is None:
            unlabeled.append(str(path))
        elif aligned is None:
            unknown[label] += 1
        else:
            class_counts[aligned] = class_counts.get(aligned, 0) + 1
    if classes is None:
        class_counts = dict(sorted(class_counts.items()))
    files_per_label = Counter(label for label in chosen.labels if label is not None)
    return _ChosenCounts(
        class_counts=class_counts,
        not_in_classes=dict(sorted(unknown.items())),
        unlabeled=unlabeled,
        alignment=chosen.alignment.to_records(files_per_label),
    )


# -- rendering for the terminal ----------------------------------------------------------------


def render_label_preview(preview: LabelPreview) -> str:
    """A plain-text summary of a :class:`LabelPreview` for the terminal.

    >>> preview = LabelPreview(
    ...     folder="test", n_found=3, classes=("A", "B"), chosen="folder",
    ...     rules=(RuleCount("folder", "parent folder name", 2, 2),),
    ...     class_counts={"A": 2, "B": 0}, not_in_classes={}, unlabeled=("test/x.jpg",),
    ...     alignment=(),
    ... )
    >>> print(render_label_preview(preview))
    test: 3 files found
    <BLANKLINE>
    Rules (files labelled / in classes)
     * folder                         2 / 2       parent folder name
      (* = rule used: folder)
    <BLANKLINE>
    Files per class (2 labelled):
      A       2
      B       0  (no images)
    <BLANKLINE>
    Unlabeled (1 files): test/x.jpg
    """
    sections = [
        _render_found(preview),
        _render_rules(preview),
        _render_class_counts(preview),
        _render_aligned(preview),
        _render_not_in_classes(preview),
        _render_leftovers(preview),
    ]
    # File names and labels come from the user's disk: each line is made printable, so none of
    # them can carry a terminal escape sequence to the screen.
    return "\n".join(printable(line) for section in sections for line in section)


def _render_found(preview: LabelPreview) -> list[str]:
    lines = [f"{preview.folder}: {preview.n_found} files found"]
    if preview.skipped:
        lines.append(
            "  skipped (not inputs): "
            + ", ".join(f"{n} {kind}" for kind, n in sorted(preview.skipped.items()))
        )
    if preview.excluded:
        reasons = Counter(preview.excluded.values())
        lines.append(
            "  excluded before labelling: "
            + ", ".join(f"{n} {r}" for r, n in sorted(reasons.items()))
        )
    return lines


def _render_rules(preview: LabelPreview) -> list[str]:
    heading = "Rules" + ("" if preview.classes is None else " (files labelled / in classes)")
    lines = ["", heading]
    for r in preview.rules:
        mark = "*" if r.rule == preview.chosen else " "
        counts = f"{r.n_labeled:>6}" + ("" if r.n_in_classes is None else f" / {r.n_in_classes:<6}")
        lines.append(f" {mark} {r.rule:<26}{counts}  {r.description}")
    if preview.chosen is not None:
        lines.append(f"  (* = rule used: {preview.chosen})")
    return lines


def _render_class_counts(preview: LabelPreview) -> list[str]:
    heading = "Files per class" if preview.classes is not None else "Files per label"
    lines = ["", f"{heading} ({preview.n_labeled} labelled):"]
    width = max((len(c) for c in preview.class_counts), default=1)
    for name, n in preview.class_counts.items():
        note = "  (no images)" if n == 0 else ""
        lines.append(f"  {name:<{width}}  {n:>6}{note}")
    return lines


def _render_aligned(preview: LabelPreview) -> list[str]:
    merged = [a for a in preview.alignment if a["method"] in ("case", "map")]
    if not merged:
        return []
    lines = ["", "Aligned labels:"]
    for a in merged:
        how = "ignoring case" if a["method"] == "case" else "by --label-map"
        lines.append(f"  {a['label']!s} -> {a['class']!s} ({how}, {a['n_files']} files)")
    return lines


def _render_not_in_classes(preview: LabelPreview) -> list[str]:
    if not preview.not_in_classes:
        return []
    total = sum(preview.not_in_classes.values())
    lines = ["", f"Not in the model's classes ({total} files, excluded from accuracy):"]
    lines += [f"  {label}  {n:>6}" for label, n in preview.not_in_classes.items()]
    return lines


def _render_leftovers(preview: LabelPreview) -> list[str]:
    """Unlabeled files, unused CSV rows and the error, each only when there is one."""
    lines = []
    if preview.unlabeled:
        lines += ["", f"Unlabeled ({len(preview.unlabeled)} files): {first_few(preview.unlabeled)}"]
    if preview.unused_csv_rows:
        n_unused = len(preview.unused_csv_rows)
        rows = first_few(preview.unused_csv_rows)
        lines += ["", f"Labels CSV rows with no file ({n_unused}): {rows}"]
    if preview.error is not None:
        lines += ["", f"Error: {preview.error}"]
    return lines
