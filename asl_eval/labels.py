"""True labels from folder names, file names (by regular expression) or a CSV, aligned with the
model's classes.

The flow for one set of files (see ``docs/labels.md``):

1. *read*: each candidate rule gives each file a label or nothing. Rules: ``folder`` (the parent
   folder's name), ``filename`` (the built-in :data:`FILENAME_RULES`, or the user's
   ``--label-regex``), ``csv`` (a ``path,label`` table);
2. *align*: each distinct label is matched to one of the model's classes, exactly, then ignoring
   case, then through the user's ``--label-map``; :func:`align_labels` refuses to merge two
   different labels into one class unless the user said so;
3. *choose* (``auto``): the rule whose labels match the most files wins; if two rules both label
   a file and disagree, that is a :class:`~asl_eval.errors.LabelError` showing both readings;
4. *account*: every file ends up labelled, ``unlabeled`` or ``not_in_classes`` in the ledger.

:func:`preview_labels` is the dry run behind ``asl-eval labels``: the same steps, no image
decoded, no model run, and a conflict is reported rather than raised.

Imports with the standard library, numpy and pandas only.
"""

from __future__ import annotations

import os
import re
import warnings
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from asl_eval.errors import LabelError, first_few
from asl_eval.predictions import LedgerEntry

if TYPE_CHECKING:
    import pandas as pd

LabelSource = Literal["auto", "folder", "filename", "csv"]
LABEL_SOURCES: tuple[LabelSource, ...] = ("auto", "folder", "filename", "csv")
RuleName = Literal["folder", "filename", "regex", "csv"]
Method = Literal["exact", "case", "map", "none", "ambiguous"]

FILENAME_RULES: dict[str, str] = {
    "kaggle-ood-test": r"^([A-Za-z]+)\d+_test\.(?i:jpe?g)$",
    "kaggle-test": r"^(.+)_test\.(?i:jpe?g)$",
    "kaggle-train": r"^([A-Za-z]+)\d+\.(?i:jpe?g)$",
}
"""Built-in file-name rules for the layouts of the ASL data sets, tried in this order (the first
that matches a name gives its label): ``X0023_test.jpg`` and ``del0002_test.jpg`` (the 870-image
out-of-domain folder), ``U_test.jpg`` and ``space_test.jpg`` (the official 28-image folder),
``A1234.jpg`` (training frames). The extension matches ``.jpg``/``.jpeg`` in any case."""

_RULE_DESCRIPTIONS: dict[RuleName, str] = {
    "folder": "parent folder name",
    "filename": "built-in file-name rules",
    "regex": "--label-regex",
    "csv": "labels CSV",
}
_UNLABELED_REASONS: dict[RuleName, str] = {
    "folder": "file directly in the input folder (no class subfolder)",
    "filename": "file name matches no built-in label rule",
    "regex": "file name does not match --label-regex",
    "csv": "not listed in the labels CSV, or an empty label",
}
_HOW: dict[str, str] = {
    "exact": "exact match",
    "case": "ignoring case",
    "map": "by --label-map",
    "none": "no match",
    "ambiguous": "ambiguous",
}
NOT_IN_CLASSES_REASON = "label is not one of the model's classes"
_CHOOSE_HINT = (
    "Choose with --labels-from folder, --labels-from filename, --label-regex RE "
    "or --labels-csv FILE."
)


@dataclass(frozen=True)
class LabelOptions:
    """How to derive true labels (the CLI's ``--labels-from``, ``--label-regex``,
    ``--labels-csv``, ``--label-map`` and ``--strict``).

    Attributes
    ----------
    source
        ``"auto"`` (default) tries the folder rule and the file-name rules and picks one;
        ``"folder"``, ``"filename"`` or ``"csv"`` use only that source.
    regex
        A regular expression searched in each file name, with one capture group or a named
        group ``label``; replaces the built-in file-name rules (implies ``source="filename"``).
    labels_csv
        A CSV file, or a DataFrame, with columns ``path`` and ``label``; relative paths are
        relative to the input folder (implies ``source="csv"``).
    label_map
        Extra alignments ``{label: class}`` for labels that match no class exactly or ignoring
        case (``{"delete": "del"}``); see :func:`parse_label_map` for the CLI form.
    strict
        Raise :class:`LabelError` if any file is unlabeled or has a label that is not one of the
        model's classes, instead of recording it in the ledger.
    """

    source: LabelSource = "auto"
    regex: str | None = None
    labels_csv: str | Path | pd.DataFrame | None = field(default=None, compare=False)
    label_map: Mapping[str, str] = field(default_factory=dict)
    strict: bool = False
    csv_path: str | Path | None = field(default=None, compare=False, repr=False)
    """Former name of ``labels_csv``, still accepted."""

    def __post_init__(self) -> None:
        if self.csv_path is not None:
            if self.labels_csv is not None:
                raise LabelError("Pass labels_csv or csv_path (its former name), not both.")
            object.__setattr__(self, "labels_csv", self.csv_path)


@dataclass(frozen=True)
class Alignment:
    """How each distinct label maps to the model's classes.

    Attributes
    ----------
    classes
        The model's classes, or None when there are none yet (training: classes come from the
        labels).
    mapping
        ``label -> class``, or None where the label matches no class.
    method
        ``label -> "exact" | "case" | "map" | "none" | "ambiguous"``: how it was matched
        (``"ambiguous"``: it matches several classes ignoring case).
    """

    classes: tuple[str, ...] | None
    mapping: Mapping[str, str | None]
    method: Mapping[str, Method]

    def merged(self) -> dict[str, tuple[str, ...]]:
        """Classes that two or more different labels map to: ``class -> labels``."""
        sources: dict[str, list[str]] = {}
        for label, target in self.mapping.items():
            if target is not None:
                sources.setdefault(target, []).append(label)
        return {c: tuple(sorted(ls)) for c, ls in sources.items() if len(ls) > 1}

    def problems(self) -> list[str]:
        """Why this alignment cannot be used: labels that match several classes ignoring case,
        and different labels merged into one class without an explicit ``--label-map`` entry."""
        found = []
        for label, how in self.method.items():
            if how == "ambiguous" and self.classes is not None:
                matches = [c for c in self.classes if c.casefold() == label.casefold()]
                found.append(
                    f"label {label!r} matches {len(matches)} classes ignoring case "
                    f"({', '.join(matches)}); pass --label-map {label}={matches[0]} (or another)"
                )
        for target, labels in self.merged().items():
            implicit = [label for label in labels if self.method[label] == "case"]
            if implicit:
                shown = " and ".join(f"{label!r} ({_HOW[self.method[label]]})" for label in labels)
                fixes = " ".join(f"--label-map {label}={target}" for label in implicit)
                found.append(
                    f"labels {shown} would count as the same class {target!r}; if they are "
                    f"the same class say so with {fixes}, otherwise rename the files or folders"
                )
        return found

    def to_records(self, counts: Mapping[str, int] | None = None) -> list[dict[str, object]]:
        """One record per label: label, class, method (and number of files, if counts given)."""
        return [
            {
                "label": label,
                "class": self.mapping[label],
                "method": self.method[label],
                **({"n_files": counts.get(label, 0)} if counts is not None else {}),
            }
            for label in sorted(self.mapping)
        ]


@dataclass(frozen=True)
class LabeledFiles:
    """Files with a true label that is one of the model's classes, plus ledger entries for the
    files left unlabeled or labelled with a class the model does not have.

    Attributes
    ----------
    items
        ``(path, class)`` for every file whose label aligned with a class.
    entries
        ``unlabeled`` and ``not_in_classes`` ledger entries, in input order.
    rule
        The rule used: ``"folder"``, ``"filename"``, ``"regex"`` or ``"csv"``.
    alignment
        How the rule's labels mapped to classes.
    """

    items: tuple[tuple[Path, str], ...]
    entries: tuple[LedgerEntry, ...]
    rule: str
    alignment: Alignment | None = None


# -- reading labels ------------------------------------------------------------------------


def folder_label(path: Path, root: Path) -> str | None:
    """The parent folder's name, or None for a file directly inside ``root``.

    >>> folder_label(Path("data/A/A1.jpg"), Path("data"))
    'A'
    >>> folder_label(Path("data/A_test.jpg"), Path("data")) is None
    True
    """
    parent = Path(path).parent
    if parent == Path(root) or not parent.name:
        return None
    return parent.name


def compile_label_regex(pattern: str | re.Pattern[str]) -> re.Pattern[str]:
    """Compile a label regular expression and check it has a ``label`` group or one group.

    >>> compile_label_regex(r"(?P<label>[a-z]+)_\\d+").groupindex["label"]
    1

    Raises
    ------
    LabelError
        If the pattern does not compile, or has no group, or several unnamed groups.
    """
    try:
        compiled = re.compile(pattern) if isinstance(pattern, str) else pattern
    except re.error as error:
        raise LabelError(
            f"--label-regex {pattern!r} is not a valid regular expression ({error})."
        ) from None
    if "label" not in compiled.groupindex and compiled.groups != 1:
        raise LabelError(
            f"--label-regex {compiled.pattern!r} has {compiled.groups} capture groups; expected "
            "one group, or a named group (?P<label>...), around the label."
        )
    return compiled


def regex_label(path: Path, pattern: str | re.Pattern[str]) -> str | None:
    """The named group ``label``, or the only group, of the first match in the file name
    (None when there is no match or the group is empty).

    >>> regex_label(Path("test/X/X0023_test.jpg"), r"([A-Za-z]+)\\d+_test")
    'X'
    """
    compiled = compile_label_regex(pattern)
    match = compiled.search(Path(path).name)
    if match is None:
        return None
    label = match.group("label") if "label" in compiled.groupindex else match.group(1)
    return label or None


_BUILTIN = {name: re.compile(pattern) for name, pattern in FILENAME_RULES.items()}


def filename_label(path: Path) -> tuple[str | None, str | None]:
    """Label and rule name from the first built-in :data:`FILENAME_RULES` matching the name.

    >>> filename_label(Path("del0002_test.jpg")), filename_label(Path("space_test.jpg"))
    (('del', 'kaggle-ood-test'), ('space', 'kaggle-test'))
    >>> filename_label(Path("A1234.jpg")), filename_label(Path("hand1_a_bot_seg_1.jpeg"))
    (('A', 'kaggle-train'), (None, None))
    """
    for name, compiled in _BUILTIN.items():
        label = regex_label(path, compiled)
        if label is not None:
            return label, name
    return None, None


def _path_key(path: str | Path) -> str:
    return os.path.normpath(os.path.abspath(path))


def read_labels_table(table: str | Path | pd.DataFrame, *, root: str | Path) -> dict[str, str]:
    """Read a ``path,label`` table into ``{absolute normalised path: label}``.

    Relative paths are taken relative to ``root`` (the input folder). Labels are read as text
    (``NA`` stays the label ``"NA"``); an empty label is kept as ``""`` and the file counts as
    unlabeled.

    Raises
    ------
    LabelError
        If the CSV cannot be read, lacks a ``path`` or ``label`` column, or gives one path two
        different labels.
    """
    import pandas as pd

    if isinstance(table, pd.DataFrame):
        frame = table
        where = "the labels table"
    else:
        where = f"labels CSV {table}"
        try:
            frame = pd.read_csv(table, dtype=str, keep_default_na=False)
        except (OSError, ValueError, pd.errors.ParserError) as error:
            raise LabelError(f"Cannot read {where}: {error}.") from None
    missing = [c for c in ("path", "label") if c not in frame.columns]
    if missing:
        raise LabelError(
            f"{where} needs columns 'path' and 'label'; it has {list(map(str, frame.columns))}."
        )
    labels: dict[str, str] = {}
    clashes: list[str] = []
    for raw_path, raw_label in zip(frame["path"], frame["label"], strict=True):
        key = _path_key(Path(root) / str(raw_path))
        label = "" if raw_label is None or raw_label != raw_label else str(raw_label).strip()
        if key in labels and labels[key] != label:
            clashes.append(f"{raw_path} ({labels[key]!r} and {label!r})")
        labels[key] = label
    if clashes:
        raise LabelError(
            f"{where} gives {len(clashes)} path(s) two different labels: {first_few(clashes)}. "
            "Keep one row per file."
        )
    return labels


# -- aligning labels with classes ----------------------------------------------------------


def parse_label_map(entries: Iterable[str]) -> dict[str, str]:
    """Parse ``--label-map`` values: ``LABEL=CLASS``, repeated or comma-separated.

    >>> parse_label_map(["delete=del", "Space=space,blank=nothing"])
    {'delete': 'del', 'Space': 'space', 'blank': 'nothing'}

    Raises
    ------
    LabelError
        If an entry has no ``=``, an empty side, or maps one label to two classes.
    """
    mapping: dict[str, str] = {}
    for entry in entries:
        for item in entry.split(","):
            if not item.strip():
                continue
            label, sep, target = (part.strip() for part in item.partition("="))
            if not sep or not label or not target:
                raise LabelError(
                    f"--label-map expects LABEL=CLASS (for example delete=del); got {item!r}."
                )
            if mapping.get(label, target) != target:
                raise LabelError(
                    f"--label-map maps {label!r} to both {mapping[label]!r} and {target!r}."
                )
            mapping[label] = target
    return mapping


def _check_label_map(label_map: Mapping[str, str], classes: Sequence[str]) -> None:
    """A map entry must name a class, and must not contradict an exact or case-insensitive
    match (it would silently never apply)."""
    class_set = set(classes)
    unknown = {k: v for k, v in label_map.items() if v not in class_set}
    if unknown:
        shown = first_few([f"{k}={v}" for k, v in unknown.items()])
        raise LabelError(
            f"--label-map targets must be model classes; {shown} name(s) no class. "
            f"Classes: {first_few(list(classes), limit=30)}."
        )
    for label, target in label_map.items():
        automatic = _automatic_match(label, classes)
        if automatic is not None and automatic != target:
            raise LabelError(
                f"--label-map {label}={target} would never apply: {label!r} already matches "
                f"class {automatic!r}. Rename the files or folders instead."
            )


def _automatic_match(label: str, classes: Sequence[str]) -> str | None:
    if label in classes:
        return label
    folded = [c for c in classes if c.casefold() == label.casefold()]
    return folded[0] if len(folded) == 1 else None


def _align(
    labels: Iterable[str], classes: Sequence[str] | None, label_map: Mapping[str, str]
) -> Alignment:
    """Align without raising on ambiguity or merges (see :meth:`Alignment.problems`)."""
    mapping: dict[str, str | None] = {}
    method: dict[str, Method] = {}
    for label in dict.fromkeys(labels):
        if classes is None:
            mapping[label] = label_map.get(label, label)
            method[label] = "map" if label in label_map else "exact"
        elif label in classes:
            mapping[label], method[label] = label, "exact"
        elif label in label_map:
            mapping[label], method[label] = label_map[label], "map"
        else:
            folded = [c for c in classes if c.casefold() == label.casefold()]
            if len(folded) == 1:
                mapping[label], method[label] = folded[0], "case"
            else:
                mapping[label] = None
                method[label] = "ambiguous" if folded else "none"
    return Alignment(
        classes=None if classes is None else tuple(classes), mapping=mapping, method=method
    )


def align_labels(
    labels: Iterable[str],
    classes: Sequence[str] | None,
    *,
    label_map: Mapping[str, str] | None = None,
) -> Alignment:
    """Match each distinct label to one of ``classes``: exactly, else through ``label_map``
    (whose entries may only cover labels with no exact or unique case-insensitive match), else
    ignoring case when exactly one class matches; otherwise no class.

    Two different labels end up in one class only when all but the exact one come from
    ``label_map``: a merge found only by ignoring case (folders ``a/`` and ``A/`` with class
    ``A``) is an error naming the ``--label-map`` entry that would allow it. When the classes
    contain both ``a`` and ``A``, each label matches its own class exactly, and a label such as
    ``del`` against classes ``Del`` and ``DEL`` is ambiguous, so an error, until mapped.

    >>> a = align_labels(["a", "del", "delete", "7"], ["A", "del"], label_map={"delete": "del"})
    >>> dict(a.mapping), a.method["a"], a.method["delete"]
    ({'a': 'A', 'del': 'del', 'delete': 'del', '7': None}, 'case', 'map')
    >>> align_labels(["a", "A"], ["A", "B"])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    asl_eval.errors.LabelError: Labels cannot be aligned ... say so with --label-map a=A, ...

    Raises
    ------
    LabelError
        On a map entry whose target is not a class or that contradicts an automatic match, a
        label matching several classes ignoring case, or a merge found only by ignoring case.
    """
    label_map = dict(label_map or {})
    if classes is not None:
        _check_label_map(label_map, classes)
    alignment = _align(labels, classes, label_map)
    problems = alignment.problems()
    if problems:
        raise LabelError(
            "Labels cannot be aligned with the model's classes: " + "; ".join(problems)
        )
    return alignment


def align_label(
    label: str, classes: Sequence[str], label_map: Mapping[str, str] | None = None
) -> str | None:
    """Align one label (see :func:`align_labels`); None if it matches no class.

    >>> align_label("a", ["A", "B", "del"])
    'A'
    >>> align_label("delete", ["A", "B", "del"], {"delete": "del"})
    'del'
    """
    return align_labels([label], classes, label_map=label_map).mapping[label]


# -- choosing a rule and accounting for every file -----------------------------------------


@dataclass(frozen=True)
class _Reading:
    rule: RuleName
    labels: tuple[str | None, ...]
    matched_by: tuple[str | None, ...]  # the built-in rule, for "filename"
    alignment: Alignment

    def aligned(self, i: int) -> str | None:
        label = self.labels[i]
        return None if label is None else self.alignment.mapping[label]

    @property
    def n_labeled(self) -> int:
        return sum(label is not None for label in self.labels)

    @property
    def n_aligned(self) -> int:
        return sum(self.aligned(i) is not None for i in range(len(self.labels)))


def _candidate_rules(options: LabelOptions) -> tuple[RuleName, ...]:
    if options.source not in LABEL_SOURCES:
        raise LabelError(
            f"--labels-from must be one of {', '.join(LABEL_SOURCES)}; got {options.source!r}."
        )
    if options.regex is not None and options.labels_csv is not None:
        raise LabelError("Pass --label-regex or --labels-csv, not both.")
    if options.labels_csv is not None:
        if options.source not in ("auto", "csv"):
            raise LabelError(
                f"--labels-csv cannot be combined with --labels-from {options.source}."
            )
        return ("csv",)
    if options.source == "csv":
        raise LabelError("--labels-from csv needs --labels-csv FILE (columns path,label).")
    if options.regex is not None:
        if options.source not in ("auto", "filename"):
            raise LabelError(
                f"--label-regex cannot be combined with --labels-from {options.source}."
            )
        compile_label_regex(options.regex)
        return ("regex",)
    if options.source == "folder":
        return ("folder",)
    if options.source == "filename":
        return ("filename",)
    return ("folder", "filename")


def _read(
    rule: RuleName,
    paths: Sequence[Path],
    root: Path,
    options: LabelOptions,
    classes: Sequence[str] | None,
    table: Mapping[str, str] | None,
) -> _Reading:
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
    else:  # csv: the table _label read once
        labels = [(table or {}).get(_path_key(p)) or None for p in paths]
    alignment = _align(
        (label for label in labels if label is not None), classes, dict(options.label_map)
    )
    return _Reading(rule, tuple(labels), tuple(matched_by), alignment)


def _conflicts(
    first: _Reading, second: _Reading, paths: Sequence[Path], case_blind: bool
) -> list[str]:
    """Files both rules label (and align) differently, as ``path: rule 'x', rule 'y'``."""
    found = []
    for i, path in enumerate(paths):
        a, b = first.aligned(i), second.aligned(i)
        if a is None or b is None:
            continue
        if (a.casefold() != b.casefold()) if case_blind else (a != b):
            found.append(
                f"{path}: {_RULE_DESCRIPTIONS[first.rule]} {first.labels[i]!r}, "
                f"{_RULE_DESCRIPTIONS[second.rule]} {second.labels[i]!r}"
            )
    return found


@dataclass(frozen=True)
class _Outcome:
    readings: dict[RuleName, _Reading]
    chosen: _Reading | None
    labeled: LabeledFiles | None
    error: LabelError | None
    table: Mapping[str, str] | None = None  # the labels CSV, read once, when it was a candidate


def _label(
    paths: Sequence[Path],
    root: Path,
    classes: Sequence[str] | None,
    options: LabelOptions,
    *,
    preview: bool = False,
) -> _Outcome:
    """Everything :func:`label_files` does; a LabelError found after reading is returned, not
    raised, so that the dry run can still show the counts."""
    if classes is not None and len(classes) == 0:
        raise LabelError("The model has no classes to align labels with.")
    rules = _candidate_rules(options)
    if classes is not None:
        _check_label_map(options.label_map, classes)
    read_rules = list(rules)
    if preview:  # show what the folder and built-in rules would give, whatever was chosen
        read_rules += [r for r in ("folder", "filename") if r not in rules]
    table = None
    if "csv" in rules:
        table = read_labels_table(options.labels_csv, root=root)  # type: ignore[arg-type]
    readings = {rule: _read(rule, paths, root, options, classes, table) for rule in read_rules}

    def fail(message: str, chosen: _Reading | None = None) -> _Outcome:
        return _Outcome(readings, chosen, None, LabelError(message), table)

    best = max(rules, key=lambda r: (readings[r].n_aligned, readings[r].n_labeled))
    reading = readings[best]
    if paths and reading.n_labeled == 0:
        tried = ", ".join(_RULE_DESCRIPTIONS[r] for r in rules)
        untried = [f"--labels-from {r}" for r in ("folder", "filename") if r not in rules]
        fixes = ["--label-regex RE", "--labels-csv FILE", *untried]
        return fail(
            f"None of the {len(paths)} files has a label (tried: {tried}): "
            f"{first_few([str(p) for p in paths])}. Expected class subfolders (A/A1234.jpg) or "
            f"names like A_test.jpg, X0023_test.jpg; pass {', '.join(fixes[:-1])} "
            f"or {fixes[-1]}."
        )
    for other in rules:
        if other == best or readings[other].n_labeled == 0:
            continue
        conflicts = _conflicts(reading, readings[other], paths, case_blind=classes is None)
        if conflicts:
            shown = "; ".join(conflicts[:3])
            more = f" (and {len(conflicts) - 3} more)" if len(conflicts) > 3 else ""
            return fail(
                f"The {_RULE_DESCRIPTIONS[best]} and the {_RULE_DESCRIPTIONS[other]} give "
                f"different labels for {len(conflicts)} of {len(paths)} files: {shown}{more}. "
                + _CHOOSE_HINT,
                reading,
            )
    problems = reading.alignment.problems()
    if problems:
        return fail(
            "Labels cannot be aligned with the model's classes: " + "; ".join(problems) + ".",
            reading,
        )
    items: list[tuple[Path, str]] = []
    entries: list[LedgerEntry] = []
    for i, path in enumerate(paths):
        label, aligned = reading.labels[i], reading.aligned(i)
        if label is None:
            entries.append(LedgerEntry(str(path), "unlabeled", _UNLABELED_REASONS[best]))
        elif aligned is None:
            entries.append(LedgerEntry(str(path), "not_in_classes", NOT_IN_CLASSES_REASON, label))
        else:
            items.append((path, aligned))
    labeled = LabeledFiles(tuple(items), tuple(entries), best, reading.alignment)
    if options.strict and entries:
        unknown = [e for e in entries if e.status == "not_in_classes"]
        unlabeled = [e for e in entries if e.status == "unlabeled"]
        parts = []
        if unknown:
            labels = sorted({e.label or "" for e in unknown})
            parts.append(
                f"{len(unknown)} have labels that are not model classes "
                f"({first_few(labels, limit=10)}): {first_few([e.path for e in unknown])}"
            )
        if unlabeled:
            parts.append(
                f"{len(unlabeled)} have no label: {first_few([e.path for e in unlabeled])}"
            )
        fix = "Add --label-map LABEL=CLASS entries, fix" if unknown else "Fix"
        return _Outcome(
            readings,
            reading,
            labeled,
            LabelError(
                f"--strict: {len(entries)} of {len(paths)} files cannot be used; "
                + "; ".join(parts)
                + f". {fix} the files or the label rule, or drop --strict."
            ),
            table,
        )
    return _Outcome(readings, reading, labeled, None, table)


def label_files(
    paths: Sequence[Path],
    *,
    root: str | Path,
    classes: Sequence[str] | None = None,
    options: LabelOptions | None = None,
) -> LabeledFiles:
    """Derive the true label of every path and align it with the model's classes.

    Parameters
    ----------
    paths
        The files found (:attr:`asl_eval.inputs.Discovery.images`).
    root
        The input folder; the folder rule gives no label to files directly inside it, and
        relative paths in a labels CSV are relative to it.
    classes
        The model's classes; None when there is no model yet (training), in which case labels
        are kept as read (after ``label_map``).
    options
        Where labels come from (default: ``auto``).

    Returns
    -------
    LabeledFiles
        Every path is either in ``items`` or in ``entries`` (``unlabeled`` /
        ``not_in_classes``), never dropped.

    Raises
    ------
    LabelError
        If no file gets a label, two rules disagree on some file (``auto``), the labels cannot
        be aligned without a silent merge, the options contradict each other, or ``strict`` is
        set and a file cannot be evaluated.
    """
    options = options or LabelOptions()
    paths = [Path(p) for p in paths]
    outcome = _label(paths, Path(root), classes, options)
    if outcome.error is not None:
        raise outcome.error
    labeled = outcome.labeled
    if labeled is None:  # pragma: no cover - _label sets error or labeled
        raise LabelError("internal error: no labels and no error")
    if outcome.chosen is not None and outcome.chosen.rule == "csv":
        _warn_unused_rows(paths, Path(root), outcome.table)
    return labeled


def _unused_rows(paths: Sequence[Path], table: Mapping[str, str] | None) -> list[str]:
    """Rows of the labels table that name none of ``paths``."""
    if table is None:
        return []
    found = {_path_key(p) for p in paths}
    return sorted(k for k in table if k not in found)


def _warn_unused_rows(paths: Sequence[Path], root: Path, table: Mapping[str, str] | None) -> None:
    unused = _unused_rows(paths, table)
    if unused:
        warnings.warn(
            f"{len(unused)} rows of the labels CSV name no image found under {root}: "
            f"{first_few(unused)}.",
            stacklevel=3,
        )


# -- the dry run ---------------------------------------------------------------------------


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
        """A plain-text summary for the terminal."""
        lines = [f"{self.folder}: {self.n_found} files found"]
        if self.skipped:
            lines.append(
                "  skipped (not inputs): "
                + ", ".join(f"{n} {kind}" for kind, n in sorted(self.skipped.items()))
            )
        if self.excluded:
            reasons = Counter(self.excluded.values())
            lines.append(
                "  excluded before labelling: "
                + ", ".join(f"{n} {r}" for r, n in sorted(reasons.items()))
            )
        lines.append("")
        lines.append("Rules" + ("" if self.classes is None else " (files labelled / in classes)"))
        for r in self.rules:
            mark = "*" if r.rule == self.chosen else " "
            counts = f"{r.n_labeled:>6}" + (
                "" if r.n_in_classes is None else f" / {r.n_in_classes:<6}"
            )
            lines.append(f" {mark} {r.rule:<26}{counts}  {r.description}")
        if self.chosen is not None:
            lines.append(f"  (* = rule used: {self.chosen})")
        lines.append("")
        heading = "Files per class" if self.classes is not None else "Files per label"
        lines.append(f"{heading} ({self.n_labeled} labelled):")
        width = max((len(c) for c in self.class_counts), default=1)
        for name, n in self.class_counts.items():
            note = "  (no images)" if n == 0 else ""
            lines.append(f"  {name:<{width}}  {n:>6}{note}")
        merged = [a for a in self.alignment if a["method"] in ("case", "map")]
        if merged:
            lines.append("")
            lines.append("Aligned labels:")
            for a in merged:
                how = "ignoring case" if a["method"] == "case" else "by --label-map"
                lines.append(f"  {a['label']!s} -> {a['class']!s} ({how}, {a['n_files']} files)")
        if self.not_in_classes:
            lines.append("")
            total = sum(self.not_in_classes.values())
            lines.append(f"Not in the model's classes ({total} files, excluded from accuracy):")
            for label, n in self.not_in_classes.items():
                lines.append(f"  {label}  {n:>6}")
        if self.unlabeled:
            lines.append("")
            lines.append(f"Unlabeled ({len(self.unlabeled)} files): {first_few(self.unlabeled)}")
        if self.unused_csv_rows:
            lines.append("")
            lines.append(
                f"Labels CSV rows with no file ({len(self.unused_csv_rows)}): "
                f"{first_few(self.unused_csv_rows)}"
            )
        if self.error is not None:
            lines.append("")
            lines.append(f"Error: {self.error}")
        return "\n".join(lines)


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
        As for :func:`label_files`.

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
    from asl_eval.inputs import discover_images

    options = options or LabelOptions()
    discovery = discover_images(folder)
    paths = list(discovery.images)
    outcome = _label(paths, discovery.root, classes, options, preview=True)
    rules: list[RuleCount] = []
    for name, reading in outcome.readings.items():
        in_classes = None if classes is None else reading.n_aligned
        description = _RULE_DESCRIPTIONS[name]
        if name == "regex":
            description = f"--label-regex {options.regex}"
        rules.append(RuleCount(name, description, reading.n_labeled, in_classes))
        if name == "filename":
            for builtin, pattern in FILENAME_RULES.items():
                hits = [i for i, m in enumerate(reading.matched_by) if m == builtin]
                n_aligned = sum(reading.aligned(i) is not None for i in hits)
                rules.append(
                    RuleCount(
                        f"filename:{builtin}",
                        pattern,
                        len(hits),
                        None if classes is None else n_aligned,
                    )
                )
    chosen = outcome.chosen
    class_counts: dict[str, int] = {}
    not_in_classes: dict[str, int] = {}
    unlabeled: list[str] = []
    alignment: list[dict[str, object]] = []
    if chosen is not None:
        if classes is not None:
            class_counts = dict.fromkeys(classes, 0)
        unknown: Counter[str] = Counter()
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
        not_in_classes = dict(sorted(unknown.items()))
        counts = Counter(label for label in chosen.labels if label is not None)
        alignment = chosen.alignment.to_records(counts)
    unused = _unused_rows(paths, outcome.table)
    return LabelPreview(
        folder=str(folder),
        n_found=discovery.n_found,
        classes=None if classes is None else tuple(classes),
        rules=tuple(rules),
        chosen=None if outcome.error is not None else (chosen.rule if chosen else None),
        class_counts=class_counts,
        not_in_classes=not_in_classes,
        unlabeled=tuple(unlabeled),
        alignment=tuple(alignment),
        excluded={e.path: e.reason for e in discovery.entries},
        skipped=dict(discovery.skipped),
        unused_csv_rows=tuple(unused),
        error=None if outcome.error is None else str(outcome.error),
    )
