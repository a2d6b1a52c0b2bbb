"""The side-by-side HTML page of a comparison (``--html PATH``): one self-contained file.

Built in two steps, as the report is: :func:`build_page` makes plain dataclasses (the
confusion-matrix difference, the classes that got better and worse, the images that flipped,
with thumbnails as small JPEG ``data:`` URIs), then :func:`render_html` fills the template.
Jinja2 runs with autoescape and ``StrictUndefined`` set outright; the page has no script and
its Content-Security-Policy allows none, nor any request: images are ``data:`` URIs that
:func:`asl_eval.report.render.data_uri_attr` lets through only when this package made them.

A thumbnail is read only from a file whose SHA-256 is still the one the report recorded
(when it recorded one), so a report naming some other file on this computer cannot pull it
into the page.

May import: numpy, pandas, Jinja2, :mod:`asl_eval.hashing`, :mod:`asl_eval.report` (its
thumbnail maker, filters and page style) and :mod:`.comparison`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from jinja2 import ChoiceLoader, Environment, PackageLoader

from asl_eval.compare.comparison import ComparisonResult, SetComparison
from asl_eval.errors import ReportError, printable
from asl_eval.hashing import file_sha256
from asl_eval.metrics.counts import confusion_counts
from asl_eval.report.figures import thumbnail_data_uri
from asl_eval.report.render import make_environment
from asl_eval.report.write import atomic_write_text

__all__ = [
    "ClassChange",
    "ComparePage",
    "ConfusionDelta",
    "Flip",
    "SetPage",
    "build_page",
    "render_html",
    "write_html",
]

MAX_FLIPS_SHOWN = 48
"""How many flipped images of each direction each set shows (the page stays small)."""


@dataclass(frozen=True)
class Flip:
    """One image one model got right and the other wrong."""

    path: str
    actual: str
    predicted_base: str
    predicted_new: str
    confidence_base: float
    confidence_new: float
    uri: str | None


@dataclass(frozen=True)
class ClassChange:
    """One class's accuracy in both models (``marker``: ``worse``, ``better`` or ``""``)."""

    name: str
    support: int
    accuracy_base: float
    accuracy_new: float
    difference: float
    right_to_wrong: int
    wrong_to_right: int
    p_adjusted: float
    regression: bool
    marker: str


@dataclass(frozen=True)
class ConfusionDelta:
    """NEW's confusion counts minus BASE's, over the classes whose counts changed.

    ``cells[i][j]`` is the change in images of class ``classes[i]`` predicted as
    ``classes[j]``; ``marks[i][j]`` is ``worse`` (more errors or fewer right), ``better`` or
    ``""``.
    """

    classes: tuple[str, ...]
    cells: tuple[tuple[int, ...], ...]
    marks: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class SetPage:
    """One set's part of the page."""

    result: SetComparison
    classes: tuple[ClassChange, ...]
    confusion: ConfusionDelta
    right_to_wrong: tuple[Flip, ...]
    wrong_to_right: tuple[Flip, ...]
    n_right_to_wrong: int
    n_wrong_to_right: int


@dataclass(frozen=True)
class ComparePage:
    """Everything the page shows."""

    result: ComparisonResult
    sets: tuple[SetPage, ...]
    images: bool


def _class_changes(s: SetComparison, alpha: float) -> tuple[ClassChange, ...]:
    rows = []
    for name, row in s.per_class.sort_values("difference", na_position="last").iterrows():
        significant = bool(row["p_adjusted"] < alpha)
        marker = ("worse" if row["difference"] < 0 else "better") if significant else ""
        rows.append(
            ClassChange(
                name=str(name),
                support=int(row["support"]),
                accuracy_base=float(row["accuracy_a"]),
                accuracy_new=float(row["accuracy_b"]),
                difference=float(row["difference"]),
                right_to_wrong=int(row["only_a"]),
                wrong_to_right=int(row["only_b"]),
                p_adjusted=float(row["p_adjusted"]),
                regression=bool(row["regression"]),
                marker=marker,
            )
        )
    return tuple(rows)


def _confusion_delta(s: SetComparison, classes: tuple[str, ...]) -> ConfusionDelta:
    index = {c: i for i, c in enumerate(classes)}
    frame = s.images.frame
    true, k = frame["y_true"].map(index).to_numpy(dtype=np.int64), len(classes)
    new = frame["pred_new"].map(index).to_numpy(dtype=np.int64)
    base = frame["pred_base"].map(index).to_numpy(dtype=np.int64)
    delta = confusion_counts(true, new, k) - confusion_counts(true, base, k)
    changed = np.flatnonzero(delta.any(axis=0) | delta.any(axis=1))
    sub = delta[np.ix_(changed, changed)]
    marks = [
        [
            ("better" if v > 0 else "worse" if v < 0 else "")
            if i == j
            else ("worse" if v > 0 else "better" if v < 0 else "")
            for j, v in enumerate(row)
        ]
        for i, row in enumerate(sub.tolist())
    ]
    return ConfusionDelta(
        classes=tuple(classes[i] for i in changed),
        cells=tuple(tuple(int(v) for v in row) for row in sub.tolist()),
        marks=tuple(tuple(row) for row in marks),
    )


def _thumbnail(row: pd.Series, root: str | None, sha256: str) -> str | None:
    """A thumbnail of the flipped image, if its file is still there with the same bytes."""
    candidates = [Path(str(row["path"]))]
    if root and row["relpath"]:
        candidates.append(Path(root) / str(row["relpath"]))
    for path in candidates:
        try:
            if not path.is_file() or (sha256 and file_sha256(path) != sha256):
                continue
        except OSError:
            continue
        return thumbnail_data_uri(path)
    return None


def _flips(
    s: SetComparison, result: ComparisonResult, direction: str, images: bool
) -> tuple[Flip, ...]:
    frame = s.images.frame
    right_base = frame["pred_base"] == frame["y_true"]
    right_new = frame["pred_new"] == frame["y_true"]
    chosen = (
        frame[right_base & ~right_new] if direction == "worse" else frame[~right_base & right_new]
    )
    record = result.new.sets[s.name]
    hashes = dict(zip(record.rows["path"], record.rows["sha256"], strict=True))
    return tuple(
        Flip(
            path=str(row["relpath"] or row["path"]),
            actual=str(row["y_true"]),
            predicted_base=str(row["pred_base"]),
            predicted_new=str(row["pred_new"]),
            confidence_base=float(row["confidence_base"]),
            confidence_new=float(row["confidence_new"]),
            uri=_thumbnail(row, record.root, hashes.get(row["path"], "")) if images else None,
        )
        for _, row in chosen.sort_values("path").head(MAX_FLIPS_SHOWN).iterrows()
    )


def build_page(result: ComparisonResult, *, images: bool = True) -> ComparePage:
    """The page's data; ``images=False`` leaves every thumbnail out."""
    sets = []
    for s in result.sets:
        sets.append(
            SetPage(
                result=s,
                classes=_class_changes(s, result.options.alpha),
                confusion=_confusion_delta(s, result.classes),
                right_to_wrong=_flips(s, result, "worse", images),
                wrong_to_right=_flips(s, result, "better", images),
                n_right_to_wrong=s.only_base,
                n_wrong_to_right=s.only_new,
            )
        )
    return ComparePage(result, tuple(sets), images)


def _environment() -> Environment:
    """The report's environment (autoescape, StrictUndefined, its filters) with the compare
    templates first, so the page shares the report's style sheet."""
    environment = make_environment()
    environment.loader = ChoiceLoader(
        [
            PackageLoader("asl_eval.compare", "templates"),
            PackageLoader("asl_eval.report", "templates"),
        ]
    )
    environment.filters["points"] = lambda v: "–" if not np.isfinite(v) else f"{100 * v:+.1f}"
    return environment


def render_html(page: ComparePage) -> str:
    """The comparison as one self-contained HTML page."""
    return _environment().get_template("compare.html.j2").render(page=page)


def write_html(result: ComparisonResult, path: str | Path, *, images: bool = True) -> Path:
    """Render and write the page to ``path`` (a temporary file renamed into place)."""
    path = Path(path)
    if path.is_dir():
        raise ReportError(
            f"--html {printable(path)} is a folder; pass a file name ending in .html."
        )
    return atomic_write_text(path, render_html(build_page(result, images=images)))
