"""What a report leaves out to be shared: paths (``--redact-paths``) and images (``--no-images``).

A report meant to be shared should not carry the user's name or folder layout, nor photos of
people's hands and faces. :class:`Sharing` says what to leave out; :func:`build_context` applies
it before anything is computed from the data, so every later stage (tables, JSON, CSV, HTML)
only ever sees what may be shared:

- with ``redact_paths``, every image path becomes relative to its set's root folder (the
  folder given on the command line; for a saved validation split, the folder that holds all of
  its files), a set's source becomes that folder's own name, the model path its file name, and
  the paths in the recorded command their last component;
- without ``images``, no thumbnail is made and the images an optional analysis carries (every
  ``bytes`` value of its tables and info, such as Grad-CAM's heatmaps) are dropped; figures
  drawn from numbers (confusion matrices, charts) stay.

Imports pandas, :class:`Predictions` and the analysis shape only.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields, is_dataclass, replace
from pathlib import Path, PurePath

import pandas as pd

from asl_eval.analysis import AnalysisResult
from asl_eval.predictions import Ledger, LedgerEntry, Predictions

__all__ = [
    "Sharing",
    "display_paths",
    "redact_analysis",
    "redact_command",
    "redact_predictions",
    "redact_text",
    "set_root",
    "strip_images",
]


@dataclass(frozen=True)
class Sharing:
    """What a report leaves out (the ``--redact-paths`` and ``--no-images`` options).

    Attributes
    ----------
    redact_paths
        Paths relative to each set's root folder; the model by its file name only.
    images
        Thumbnails and heatmaps in the page (False: left out).
    """

    redact_paths: bool = False
    images: bool = True

    @property
    def statement(self) -> str:
        """One sentence for the page saying what was left out.

        >>> Sharing().statement
        'Paths are as given on this computer; thumbnails and heatmaps are included.'
        """
        paths = (
            "Paths are relative to each set's folder (--redact-paths)"
            if self.redact_paths
            else "Paths are as given on this computer"
        )
        images = (
            "thumbnails and heatmaps are included"
            if self.images
            else "thumbnails and heatmaps are left out (--no-images)"
        )
        return f"{paths}; {images}."

    def to_json(self) -> dict[str, bool]:
        """The report JSON's ``sharing`` block."""
        return {"redact_paths": self.redact_paths, "images": self.images}


def _normal(path: str) -> str:
    return os.path.normpath(path)


def _strictly_under(path: str, root: str) -> bool:
    pure, base = PurePath(path), PurePath(root)
    return pure != base and pure.is_relative_to(base)


def set_root(predictions: Predictions) -> str | None:
    """The folder a set's paths are shown relative to: its source when every file found lies
    under it, else the deepest folder holding them all (None without files)."""
    paths = [_normal(e.path) for e in predictions.ledger.entries]
    if not paths:
        return None
    source = _normal(predictions.source) if predictions.source else ""
    if source and all(_strictly_under(p, source) for p in paths):
        return source
    try:
        common = os.path.commonpath([os.path.dirname(p) or "." for p in paths])
    except ValueError:  # absolute and relative paths mixed, or different drives
        return None
    # Files spread across the disk: paths relative to the filesystem root or to the home
    # folder (or above it) would still name the user's folders, so show file names instead.
    home = _normal(os.path.expanduser("~"))
    if (
        PurePath(common).parent == PurePath(common)
        or common == home
        or _strictly_under(home, common)
    ):
        return None
    return common


def _relative(path: str, root: str | None) -> str:
    normal = _normal(path)
    if root is not None and _strictly_under(normal, root):
        return PurePath(normal).relative_to(root).as_posix()
    return PurePath(normal).name


def display_paths(predictions: Predictions) -> dict[str, str]:
    """Every file of one set (evaluated or not) to its path relative to the set's root
    (:func:`set_root`); a file outside it, to its file name."""
    root = set_root(predictions)
    return {e.path: _relative(e.path, root) for e in predictions.ledger.entries}


# An absolute POSIX or Windows path, or one under the home folder, up to the next space or quote.
_ABSOLUTE = re.compile(r"(?:(?<![\w.])~|(?<![\w.])[A-Za-z]:[\\/]|(?<![\w.~])/)[^\s'\"]*")


def redact_text(text: str, roots: Sequence[str] = ()) -> str:
    """``text`` with each root folder replaced by its own name and any other absolute path by
    its last component.

    >>> redact_text("validation split of /home/ana/asl/train", ["/home/ana/asl/train"])
    'validation split of train'
    >>> redact_text("copied from /home/ana/x.jpg")
    'copied from x.jpg'
    """
    for root in sorted(roots, key=len, reverse=True):
        if root and root not in {".", os.sep}:
            text = text.replace(root, PurePath(root).name or root)
    return _ABSOLUTE.sub(lambda m: _last(m.group()), text)


def redact_predictions(predictions: Predictions) -> Predictions:
    """``predictions`` with every path (evaluated and in the ledger) relative to the set's
    root (:func:`display_paths`) and the source as :func:`redact_text` makes it."""
    shown = display_paths(predictions)

    def show(path: str) -> str:
        return shown.get(path) or PurePath(path).name

    root = set_root(predictions)
    ledger = Ledger.of(
        LedgerEntry(show(e.path), e.status, e.reason, e.label) for e in predictions.ledger.entries
    )
    return replace(
        predictions,
        paths=tuple(show(p) for p in predictions.paths),
        ledger=ledger,
        source=redact_text(predictions.source, [root] if root else []),
    )


def _map_frame(frame: pd.DataFrame, shown: Mapping[str, Mapping[str, str]]) -> pd.DataFrame:
    if "path" not in frame.columns:
        return frame
    anywhere = {path: text for by_path in shown.values() for path, text in by_path.items()}
    sets = frame["set"] if "set" in frame.columns else [None] * len(frame)
    frame = frame.copy()
    # only text is a path: a "path" column of counts (the slices section's matching table
    # counts the images matched by path) keeps its numbers
    frame["path"] = [
        (shown.get(str(name), anywhere).get(path) or PurePath(path).name)
        if isinstance(path, str)
        else path
        for path, name in zip(frame["path"], sets, strict=True)
    ]
    return frame


def _redact_value(value: object, roots: Sequence[str]) -> object:
    """``value`` with :func:`redact_text` applied to every string in it (lists, tuples, dicts,
    tables and dataclasses such as a finding and its evidence included); bytes and numbers as
    they are."""
    if isinstance(value, str):
        return redact_text(value, roots)
    if isinstance(value, pd.DataFrame):
        frame = value.copy()
        for column in frame.columns:
            # text is "object" in pandas 2 and the "str" dtype in pandas 3
            if frame[column].dtype == object or pd.api.types.is_string_dtype(frame[column]):
                frame[column] = pd.Series(
                    [_redact_value(v, roots) for v in frame[column]],
                    index=frame.index,
                    dtype=object,
                )
        return frame
    if isinstance(value, Mapping):
        return {k: _redact_value(v, roots) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_redact_value(v, roots) for v in value)
    if is_dataclass(value) and not isinstance(value, type):
        changed = {
            f.name: _redact_value(getattr(value, f.name), roots) for f in fields(value) if f.init
        }
        return replace(value, **changed)
    return value


def redact_analysis(
    result: AnalysisResult, shown: Mapping[str, Mapping[str, str]], roots: Sequence[str] = ()
) -> AnalysisResult:
    """``result`` with the ``path`` column of its items and of every table in its info
    replaced as ``shown`` (set name -> :func:`display_paths`) says: by the row's ``set`` where
    the table has that column, else by any set; a path no set has, by its file name. Any other
    text in it (other path columns, sentences, nested records) goes through
    :func:`redact_text`: each of ``roots`` by its own name, any other absolute path by its
    last component."""
    info = {
        key: _map_frame(value, shown) if isinstance(value, pd.DataFrame) else value
        for key, value in result.info.items()
    }
    redacted = replace(result, items=_map_frame(result.items, shown), info=info)
    return replace(
        redacted,
        items=_redact_value(redacted.items, roots),  # type: ignore[arg-type]
        summary=_redact_value(redacted.summary, roots),  # type: ignore[arg-type]
        info=_redact_value(dict(redacted.info), roots),  # type: ignore[arg-type]
    )


def _without_bytes(frame: pd.DataFrame) -> pd.DataFrame:
    columns = [c for c in frame.columns if frame[c].map(lambda v: isinstance(v, bytes)).any()]
    if not columns:
        return frame
    frame = frame.copy()
    for column in columns:
        frame[column] = pd.Series([None] * len(frame), index=frame.index, dtype=object)
    return frame


def strip_images(result: AnalysisResult) -> AnalysisResult:
    """``result`` without its images: every ``bytes`` value in its items, its info tables and
    its info becomes None (numbers and arrays stay)."""
    info: dict[str, object] = {}
    for key, value in result.info.items():
        if isinstance(value, pd.DataFrame):
            info[key] = _without_bytes(value)
        else:
            info[key] = None if isinstance(value, bytes) else value
    return replace(result, items=_without_bytes(result.items), info=info)


def redact_command(command: str, paths: Iterable[str | Path | None] = ()) -> str:
    """The recorded command with each of ``paths`` (as typed: the model, the folders, the
    output) and any other absolute path replaced by its last component.

    >>> redact_command("asl-eval report /home/ana/m.pkl ../data/test --set k=/d/k28 "
    ...                "--label-regex '(\\\\w+)/x'", ["../data/test"])
    "asl-eval report m.pkl test --set k=k28 --label-regex '(\\\\w+)/x'"
    """
    known = {_normal(str(p)) for p in paths if p is not None and str(p) not in {"", "."}}
    try:
        tokens = shlex.split(command)
    except ValueError:
        return redact_text(command, sorted(known))
    redacted = []
    for token in tokens:
        prefix, sep, value = token.partition("=") if "=" in token else ("", "", token)
        if (value and _normal(value) in known) or _ABSOLUTE.fullmatch(value):
            value = _last(value)
        elif _normal(token) in known or _ABSOLUTE.fullmatch(token):
            prefix, sep, value = "", "", _last(token)
        redacted.append(prefix + sep + value)
    return shlex.join(redacted)


def _last(path: str) -> str:
    """The last component of a path (``/`` for the root itself).

    >>> _last("/home/ana/data/"), _last("/")
    ('data', '/')
    """
    return PurePath(path.replace("\\", "/").rstrip("/")).name or "/"
