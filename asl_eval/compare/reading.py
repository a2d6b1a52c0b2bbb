"""Reading the two sides of a comparison: a report's JSON, the per-image predictions CSV
written beside it, and the training record beside the model it names.

The JSON is read with :func:`asl_eval.report.read_report_json` (validated, older schema
versions upgraded); the CSV with every cell as text (a class called ``NA`` stays ``NA``),
and the leading quote that :func:`asl_eval.report.write.neutralize_formula` put before text a
spreadsheet would run is taken off again.

May import: pandas, :mod:`asl_eval.errors`, :mod:`asl_eval.report` (JSON reading) and
:mod:`asl_eval.training.record` (inside :func:`split_of`). Never torch or fastai.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from asl_eval.errors import ReportError, first_few, printable
from asl_eval.report.write import FORMULA_START

__all__ = [
    "ReportSide",
    "SetRecord",
    "SplitInfo",
    "predictions_csv_path",
    "read_predictions_csv",
    "read_side",
    "restore_formula",
    "split_of",
]

_TEXT_COLUMNS = ("set", "path", "relpath", "y_true", "y_pred")
_REQUIRED = ("set", "path", "y_true", "y_pred")


@dataclass(frozen=True)
class SetRecord:
    """One evaluation set of one report: its role, content digest and per-image rows.

    ``rows`` has the columns ``path``, ``relpath`` and ``sha256`` (``""`` where unknown),
    ``y_true``, ``y_pred`` (class names) and ``confidence`` (float, NaN where unknown).
    """

    name: str
    role: str
    digest: str | None
    root: str | None
    rows: pd.DataFrame

    @property
    def hashed(self) -> bool:
        """Every image has its SHA-256 and its path relative to the set's folder."""
        return bool(len(self.rows)) and bool(
            (self.rows["sha256"] != "").all() and (self.rows["relpath"] != "").all()
        )


@dataclass(frozen=True)
class SplitInfo:
    """The validation split a model was trained with, from its training record.

    ``kind`` is ``"random"`` or ``"grouped"`` (a record without a kind is ``"random"``, the
    only kind older versions made); None when no record was found (``record`` says where it
    was looked for).
    """

    kind: str | None
    record: str


@dataclass(frozen=True)
class ReportSide:
    """One side of a comparison (BASE or NEW): a report and what it was made with."""

    label: str
    json_path: Path
    model_path: str
    model_sha256: str
    classes: tuple[str, ...]
    sets: Mapping[str, SetRecord]
    split: SplitInfo


def restore_formula(value: str) -> str:
    """Undo :func:`asl_eval.report.write.neutralize_formula`: drop the quote it put before text
    beginning with ``= + - @``, tab, carriage return or a quote.

    Earlier versions of asl-eval quoted formula starts only: from their CSV files, a name that
    itself begins with a quote followed by a formula start or a second quote (``'=x``,
    ``''x``) reads back without its first quote; every other name reads back exactly.

    >>> restore_formula("'=cmd"), restore_formula("''A"), restore_formula("B")
    ('=cmd', "'A", 'B')
    """
    if value.startswith("'") and value[1:].startswith((*FORMULA_START, "'")):
        return value[1:]
    return value


def predictions_csv_path(json_path: str | Path) -> Path:
    """The per-image predictions written beside a report's JSON: ``<name>.predictions.csv``.

    >>> predictions_csv_path("reports/model.json").as_posix()
    'reports/model.predictions.csv'
    """
    json_path = Path(json_path)
    return json_path.with_name(json_path.stem + ".predictions.csv")


def read_predictions_csv(path: str | Path) -> pd.DataFrame:
    """A report's predictions CSV, every text cell as written by the model's run.

    Returns
    -------
    DataFrame
        Columns ``set``, ``path``, ``relpath``, ``sha256``, ``y_true``, ``y_pred`` (text;
        ``relpath`` and ``sha256`` are ``""`` for reports older than schema version 4) and
        ``confidence`` (float).
    """
    path = Path(path)
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False)
    except (OSError, UnicodeDecodeError, pd.errors.ParserError) as error:
        raise ReportError(
            f"Could not read the predictions CSV {printable(path)}: {printable(error)}. compare "
            "needs the <name>.predictions.csv that report writes beside <name>.json."
        ) from error
    missing = [c for c in _REQUIRED if c not in frame.columns]
    if missing:
        raise ReportError(
            f"{printable(path)} is not a report's predictions CSV: it has no column "
            f"{first_few(missing)}."
        )
    for column in ("relpath", "sha256"):
        if column not in frame.columns:
            frame[column] = ""
    for column in _TEXT_COLUMNS:
        frame[column] = frame[column].map(restore_formula)
    confidence = frame["confidence"] if "confidence" in frame.columns else ""
    frame["confidence"] = pd.to_numeric(confidence, errors="coerce")
    frame["sha256"] = frame["sha256"].str.lower()
    return frame[["set", "path", "relpath", "sha256", "y_true", "y_pred", "confidence"]]


def _content(entry: Mapping[str, object]) -> tuple[str | None, str | None]:
    content = entry.get("content")
    if not isinstance(content, Mapping):
        return None, None
    digest, root = content.get("digest"), content.get("root")
    return (
        digest if isinstance(digest, str) and digest else None,
        root if isinstance(root, str) and root else None,
    )


def _sets(document: Mapping[str, object], frame: pd.DataFrame, csv: Path) -> dict[str, SetRecord]:
    entries = document.get("sets")
    sets: dict[str, SetRecord] = {}
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, Mapping):
            continue
        name = str(entry.get("name"))
        rows = frame[frame["set"] == name].drop(columns="set").reset_index(drop=True)
        expected = entry.get("n_images")
        if isinstance(expected, int) and expected != len(rows):
            raise ReportError(
                f"{printable(csv)} holds {len(rows)} images of set {printable(repr(name))}, but "
                f"its report counts {expected}; the CSV and the JSON are from different runs."
            )
        digest, root = _content(entry)
        sets[name] = SetRecord(name, str(entry.get("role", "test")), digest, root, rows)
    return sets


def split_of(model_path: str | Path, *, near: Path | None = None) -> SplitInfo:
    """The split kind in the training record beside ``model_path`` (or, when that model path
    is gone or was redacted to a file name, beside the same file name in ``near``): the
    record's ``config.split``, ``"random"`` when it names none (the only kind older versions
    made)."""
    from asl_eval.training.record import read_training_record, training_record_path

    models = [Path(model_path)]
    if near is not None:
        models.append(near / Path(model_path).name)
    for model in models:
        record = read_training_record(model)
        if record is not None:
            config = record.get("config")
            kind = config.get("split") if isinstance(config, Mapping) else None
            return SplitInfo(str(kind or "random"), str(training_record_path(model)))
    return SplitInfo(None, str(training_record_path(models[0])))


def read_side(
    label: str, json_path: str | Path, *, model_path: str | Path | None = None
) -> ReportSide:
    """Read one side of a comparison: the report's JSON, its predictions CSV and the split in
    the training record beside its model (``model_path`` overrides the path the JSON names).

    Raises
    ------
    ReportError
        The JSON is not a readable report, or its predictions CSV is missing or disagrees with it.
    """
    from asl_eval.report import read_report_json

    json_path = Path(json_path)
    document = read_report_json(json_path)
    csv = predictions_csv_path(json_path)
    if not csv.is_file():
        raise ReportError(
            f"No predictions CSV beside {printable(json_path)} (expected {printable(csv)}); "
            "compare pairs the two models image by image, so it needs the CSV report writes."
        )
    frame = read_predictions_csv(csv)
    model = document.get("model")
    model = model if isinstance(model, Mapping) else {}
    named_model = str(model_path if model_path is not None else model.get("path", ""))
    classes = model.get("classes")
    return ReportSide(
        label=label,
        json_path=json_path,
        model_path=named_model,
        model_sha256=str(model.get("sha256", "")),
        classes=tuple(str(c) for c in classes) if isinstance(classes, list) else (),
        sets=_sets(document, frame, csv),
        split=split_of(named_model, near=json_path.parent) if named_model else SplitInfo(None, ""),
    )
