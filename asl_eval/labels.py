"""True labels from folder names, file names (by regular expression) or a CSV, aligned with the
model's classes.

Imports with the standard library, numpy and pandas only.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from asl_eval.errors import LabelError, first_few
from asl_eval.predictions import LedgerEntry

LabelSource = Literal["auto", "folder", "filename", "csv"]

FILENAME_RULES: dict[str, str] = {
    "kaggle-test": r"(.+)_test\.jpg$",
    "kaggle-ood-test": r"([A-Za-z]+)\d+_test\.jpg$",
    "kaggle-train": r"([A-Za-z]+)\d+\.jpg$",
}
"""Built-in file-name rules for the layouts of the ASL data sets."""


@dataclass(frozen=True)
class LabelOptions:
    """How to derive true labels (the CLI's ``--labels-from``, ``--label-regex``, ...)."""

    source: LabelSource = "auto"
    regex: str | None = None
    csv_path: str | Path | None = None
    label_map: Mapping[str, str] = field(default_factory=dict)
    strict: bool = False


@dataclass(frozen=True)
class LabeledFiles:
    """Files with a true label that is one of the model's classes, plus ledger entries for the
    files left unlabeled or labelled with a class the model does not have."""

    items: tuple[tuple[Path, str], ...]
    entries: tuple[LedgerEntry, ...]
    rule: str


def folder_label(path: Path, root: Path) -> str | None:
    """The parent folder's name, or None for a file directly inside ``root``."""
    parent = path.parent
    return None if parent == root else parent.name


def regex_label(path: Path, pattern: str | re.Pattern[str]) -> str | None:
    """The regular expression's named group ``label``, or its first group, on the file name."""
    compiled = re.compile(pattern) if isinstance(pattern, str) else pattern
    match = compiled.search(path.name)
    if match is None:
        return None
    if "label" in compiled.groupindex:
        return match.group("label")
    return match.group(1) if compiled.groups else match.group(0)


def align_label(label: str, classes: Sequence[str], label_map: Mapping[str, str]) -> str | None:
    """Map a derived label to one of the model's classes: exact, then case-insensitive, then
    through ``label_map``; None if nothing matches.

    >>> align_label("a", ["A", "B", "del"], {})
    'A'
    >>> align_label("delete", ["A", "B", "del"], {"delete": "del"})
    'del'
    """
    if label in classes:
        return label
    folded = [c for c in classes if c.casefold() == label.casefold()]
    if len(folded) == 1:
        return folded[0]
    mapped = label_map.get(label)
    if mapped is not None and mapped in classes:
        return mapped
    return None


def _candidate_rules(options: LabelOptions) -> dict[str, str | None]:
    """Rule name -> regex (None for the folder rule)."""
    if options.regex is not None:
        re.compile(options.regex)
        return {f"regex {options.regex}": options.regex}
    if options.source == "folder":
        return {"folder": None}
    if options.source == "filename":
        return dict(FILENAME_RULES)
    return {"folder": None, **FILENAME_RULES}


def label_files(
    paths: Sequence[Path],
    *,
    root: Path,
    classes: Sequence[str] | None = None,
    options: LabelOptions | None = None,
) -> LabeledFiles:
    """Derive and align the true label of every path."""
    options = options or LabelOptions()
    rules = _candidate_rules(options)
    readings: dict[str, list[str | None]] = {}
    for name, pattern in rules.items():
        if pattern is None:
            readings[name] = [folder_label(p, root) for p in paths]
        else:
            compiled = re.compile(pattern)
            readings[name] = [regex_label(p, compiled) for p in paths]

    def score(name: str) -> int:
        labels = readings[name]
        if classes is None:
            return sum(label is not None for label in labels)
        return sum(
            label is not None and align_label(label, classes, options.label_map) is not None
            for label in labels
        )

    best = max(rules, key=score)  # dict order breaks ties: folder first
    if score(best) == 0 and paths:
        raise LabelError(
            f"No label rule explains any of the {len(paths)} files "
            f"(tried {', '.join(rules)}): {first_few([p.name for p in paths])}. "
            "Pass --label-regex or --labels-from folder."
        )
    items: list[tuple[Path, str]] = []
    entries: list[LedgerEntry] = []
    for path, label in zip(paths, readings[best], strict=True):
        if label is None:
            entries.append(LedgerEntry(str(path), "unlabeled", reason=f"no match for {best}"))
            continue
        aligned = label if classes is None else align_label(label, classes, options.label_map)
        if aligned is None:
            entries.append(LedgerEntry(str(path), "not_in_classes", label=label))
        else:
            items.append((path, aligned))
    if options.strict and entries:
        raise LabelError(
            f"{len(entries)} of {len(paths)} files have no label among the model's classes: "
            f"{first_few([Path(e.path).name for e in entries])}. Drop --strict to exclude them."
        )
    return LabeledFiles(items=tuple(items), entries=tuple(entries), rule=best)
