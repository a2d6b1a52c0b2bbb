"""Label rules: how one file gets a label from its folder, its name or a labels CSV.

This module holds the options a user passes (:class:`LabelOptions`, the CLI's
``--labels-from``, ``--label-regex``, ``--labels-csv``, ``--label-map``, ``--strict``), the
readers for each rule (:func:`folder_label`, :func:`filename_label` with the built-in
:data:`FILENAME_RULES`, :func:`regex_label`, :func:`read_labels_table`) and
:func:`candidate_rules`, which turns the options into the rules to try. It does not align labels
with classes (:mod:`asl_eval.labels.alignment`) nor choose between rules
(:mod:`asl_eval.labels.detection`).

May import: :mod:`asl_eval.errors`, the standard library and pandas (to read a CSV).
Never torch or fastai.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pandas as pd

from asl_eval.errors import LabelError, first_few

__all__ = [
    "FILENAME_RULES",
    "LABEL_SOURCES",
    "RULE_DESCRIPTIONS",
    "UNLABELED_REASONS",
    "LabelOptions",
    "LabelSource",
    "RuleName",
    "candidate_rules",
    "compile_label_regex",
    "filename_label",
    "folder_label",
    "path_key",
    "read_labels_table",
    "regex_label",
    "unused_rows",
]

LabelSource = Literal["auto", "folder", "filename", "csv"]
LABEL_SOURCES: tuple[LabelSource, ...] = ("auto", "folder", "filename", "csv")
RuleName = Literal["folder", "filename", "regex", "csv"]

FILENAME_RULES: dict[str, str] = {
    "kaggle-ood-test": r"^([A-Za-z]+)\d+_test\.(?i:jpe?g)$",
    "kaggle-test": r"^(.+)_test\.(?i:jpe?g)$",
    "kaggle-train": r"^([A-Za-z]+)\d+\.(?i:jpe?g)$",
}
"""Built-in file-name rules for the layouts of the ASL data sets, tried in this order (the first
that matches a name gives its label): ``X0023_test.jpg`` and ``del0002_test.jpg`` (the 870-image
out-of-domain folder), ``U_test.jpg`` and ``space_test.jpg`` (the official 28-image folder),
``A1234.jpg`` (training frames). The extension matches ``.jpg``/``.jpeg`` in any case."""

RULE_DESCRIPTIONS: dict[RuleName, str] = {
    "folder": "parent folder name",
    "filename": "built-in file-name rules",
    "regex": "--label-regex",
    "csv": "labels CSV",
}
"""How each rule is named in messages and in the dry run."""

UNLABELED_REASONS: dict[RuleName, str] = {
    "folder": "file directly in the input folder (no class subfolder)",
    "filename": "file name matches no built-in label rule",
    "regex": "file name does not match --label-regex",
    "csv": "not listed in the labels CSV, or an empty label",
}
"""The ledger reason of a file the chosen rule gives no label."""


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
        case (``{"delete": "del"}``); see :func:`~asl_eval.labels.parse_label_map` for the CLI
        form.
    strict
        Raise :class:`~asl_eval.errors.LabelError` if any file is unlabeled or has a label that
        is not one of the model's classes, instead of recording it in the ledger.
    follow_links
        Follow symbolic links that lead out of the input folder (``--follow-links``); by
        default such a link is recorded as excluded, ``"link outside the folder"`` (see
        :func:`asl_eval.inputs.discover_images`).
    """

    source: LabelSource = "auto"
    regex: str | None = None
    labels_csv: str | Path | pd.DataFrame | None = field(default=None, compare=False)
    label_map: Mapping[str, str] = field(default_factory=dict)
    strict: bool = False
    follow_links: bool = False
    csv_path: str | Path | None = field(default=None, compare=False, repr=False)
    """Former name of ``labels_csv``, still accepted."""

    def __post_init__(self) -> None:
        if self.csv_path is not None:
            if self.labels_csv is not None:
                raise LabelError("Pass labels_csv or csv_path (its former name), not both.")
            object.__setattr__(self, "labels_csv", self.csv_path)


# -- one rule, one file ----------------------------------------------------------------------


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
    >>> regex_label(Path("img_B_003.png"), r"img_(?P<label>[A-Z])_(\\d+)")
    'B'
    >>> regex_label(Path("other.png"), r"img_([A-Z])_") is None
    True
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


# -- the labels CSV --------------------------------------------------------------------------


def path_key(path: str | Path) -> str:
    """The key a path has in a labels table: absolute and normalised.

    >>> path_key("data/./A/../B/1.png") == path_key("data/B/1.png")
    True
    """
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
    frame, where = _read_table_frame(table)
    missing = [c for c in ("path", "label") if c not in frame.columns]
    if missing:
        raise LabelError(
            f"{where} needs columns 'path' and 'label'; it has {list(map(str, frame.columns))}."
        )
    labels: dict[str, str] = {}
    clashes: list[str] = []
    for raw_path, raw_label in zip(frame["path"], frame["label"], strict=True):
        key = path_key(Path(root) / str(raw_path))
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


def _read_table_frame(table: str | Path | pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """The table as a DataFrame of text, and how to name it in a message."""
    if isinstance(table, pd.DataFrame):
        return table, "the labels table"
    where = f"labels CSV {table}"
    try:
        return pd.read_csv(table, dtype=str, keep_default_na=False), where
    except (OSError, ValueError, pd.errors.ParserError) as error:
        raise LabelError(f"Cannot read {where}: {error}.") from None


def unused_rows(paths: Sequence[Path], table: Mapping[str, str] | None) -> list[str]:
    """Rows of the labels table (keys of :func:`read_labels_table`) that name none of ``paths``.

    >>> table = {path_key("d/a.png"): "A", path_key("d/b.png"): "B"}
    >>> [Path(row).name for row in unused_rows([Path("d/a.png")], table)]
    ['b.png']
    """
    if table is None:
        return []
    found = {path_key(p) for p in paths}
    return sorted(k for k in table if k not in found)


# -- which rules to try ----------------------------------------------------------------------


def candidate_rules(options: LabelOptions) -> tuple[RuleName, ...]:
    """The rules the options allow, checking that the options do not contradict each other.

    >>> candidate_rules(LabelOptions()), candidate_rules(LabelOptions(regex="(x)"))
    (('folder', 'filename'), ('regex',))

    Raises
    ------
    LabelError
        If ``source`` is unknown, both a regex and a CSV are given, a regex or CSV is combined
        with another ``source``, ``source="csv"`` comes without a CSV, or the regex is invalid.
    """
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
