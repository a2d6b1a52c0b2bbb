"""The metadata CSV and its rows matched to images: what the slices (:mod:`asl_eval.audit.slices`)
and training's grouped split (:mod:`asl_eval.training.data`) read.

The metadata is a CSV with one row per image: a path column (``path`` by default) and any other
columns, each a way to slice the images (:func:`read_metadata`). Every cell is read as text, so
``NA`` is the value ``"NA"`` and a spreadsheet formula such as ``=1+1`` is the text ``"=1+1"``
(nothing is evaluated).

Matching a metadata row to an evaluated image (:func:`match_metadata`) tries, for each image,
in this order:

1. **relpath**: the row's path, as a ``/``-separated relative path without a leading ``./``,
   equals the image's path relative to its set's folder (:attr:`Predictions.relpaths`);
2. **path**: the row's path, resolved (a relative one against the CSV's folder, or the
   current folder for a table built in Python), equals the image's resolved absolute path;
3. **name**: the row's file name equals the image's file name, and that name is unique both
   among the metadata rows and among the set's images (an ambiguous name matches nothing).

An image that no rule matches, or whose row has an empty cell in a column, has the value
:data:`NO_METADATA` in that column (:func:`slice_column`); it is never dropped.

Imports numpy, pandas, :mod:`asl_eval.errors` and :mod:`asl_eval.hashing`; never torch or
fastai.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
import pandas as pd

from asl_eval.errors import InputError, MetricError, first_few
from asl_eval.hashing import file_sha256

__all__ = [
    "MATCH_RULES",
    "NO_METADATA",
    "MetadataMatch",
    "check_metadata",
    "match_metadata",
    "read_metadata",
    "slice_column",
]

NO_METADATA = "(no metadata)"
"""The slice value of an image without a metadata row, or with an empty cell in the column."""

MATCH_RULES = ("relpath", "path", "name")
"""How a metadata row is matched to an image, in the order the rules are tried."""

_BASE_DIR = "asl_eval_base_dir"
_SOURCE = "asl_eval_source"
_SHA256 = "asl_eval_sha256"


def read_metadata(path: str | Path, *, path_column: str = "path") -> pd.DataFrame:
    """The metadata CSV as a table of text, one row per image.

    Parameters
    ----------
    path
        A CSV file (UTF-8, a byte-order mark is allowed) with a header row.
    path_column
        The column naming each row's image (a path relative to the image set's folder, a path
        relative to the CSV's folder, an absolute path, or a unique file name; see the module
        docstring for how they are matched).

    Returns
    -------
    pandas.DataFrame
        Every cell as text (``""`` when empty; ``NA`` stays ``"NA"``; formulas are not
        evaluated). ``attrs`` records the CSV's folder (relative paths are resolved against
        it), its name and its SHA-256.

    Raises
    ------
    InputError
        When the file cannot be read or parsed, has no ``path_column`` column, a row has an
        empty path, or two rows name the same path.
    """
    where = f"metadata CSV {path}"
    try:
        frame = pd.read_csv(
            path, dtype=str, keep_default_na=False, na_filter=False, encoding="utf-8-sig"
        )
    except FileNotFoundError:
        raise InputError(f"Cannot read {where}: there is no such file.") from None
    except (OSError, ValueError, pd.errors.ParserError) as error:
        # ValueError covers pandas' EmptyDataError and undecodable bytes (UnicodeDecodeError)
        detail = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise InputError(f"Cannot read {where}: {detail}. Save it as a UTF-8 CSV.") from None
    frame = check_metadata(frame, path_column=path_column, where=where)
    frame.attrs[_BASE_DIR] = str(Path(path).resolve().parent)
    frame.attrs[_SOURCE] = str(Path(path).resolve())
    frame.attrs[_SHA256] = file_sha256(path)
    return frame


def check_metadata(
    frame: pd.DataFrame, *, path_column: str = "path", where: str = "the metadata table"
) -> pd.DataFrame:
    """``frame`` as text with a checked path column (what :func:`read_metadata` returns for a
    table built in Python); see :func:`read_metadata` for the errors."""
    columns = [str(c) for c in frame.columns]
    if path_column not in columns:
        raise InputError(
            f"{where} has no {path_column!r} column naming each image; its columns are "
            f"{first_few(columns, limit=8)}. Add a {path_column!r} column or pass the path "
            "column's name (--metadata-path-column)."
        )
    repeated = sorted({c for c in columns if columns.count(c) > 1})
    if repeated:
        raise InputError(f"{where} has two columns named {repeated[0]!r}; rename one.")
    text = frame.copy()
    text.columns = pd.Index(columns)
    text = text.astype(object).where(text.notna(), "").astype(str)
    text[path_column] = text[path_column].str.strip()
    empty = [i + 2 for i, value in enumerate(text[path_column]) if not value]
    if empty:
        raise InputError(
            f"{len(empty)} rows of {where} have an empty {path_column!r} (lines "
            f"{first_few(empty)}): every row must name its image."
        )
    keys = [_row_key(value) for value in text[path_column]]
    counts = Counter(keys)
    duplicates = sorted(key for key, count in counts.items() if count > 1)
    if duplicates:
        raise InputError(
            f"{len(duplicates)} paths appear more than once in {where}: "
            f"{first_few(duplicates)}. Keep one row per image."
        )
    return text.reset_index(drop=True)


def _row_key(value: str) -> str:
    """A metadata path as a ``/``-separated path without ``./`` (what relpaths look like).

    >>> _row_key("./A\\\\a.jpg"), _row_key("A//b.jpg")
    ('A/a.jpg', 'A/b.jpg')
    """
    parts = [p for p in value.replace("\\", "/").split("/") if p not in ("", ".")]
    prefix = "/" if value.startswith(("/", "\\")) else ""
    return prefix + "/".join(parts)


def _resolved(path: str, base: str | None) -> str:
    candidate = Path(path)
    if not candidate.is_absolute() and base is not None:
        candidate = Path(base) / candidate
    return os.path.normcase(os.path.normpath(os.path.abspath(candidate)))


@dataclass(frozen=True)
class MetadataMatch:
    """Which metadata row each image of one set matched, and by which rule.

    ``rows[i]`` is the index of image ``i``'s row (-1: none); ``rules[i]`` one of
    :data:`MATCH_RULES`, or ``"none"``.
    """

    rows: np.ndarray
    rules: tuple[str, ...]

    @property
    def n_unmatched(self) -> int:
        return int((self.rows < 0).sum())

    def counts(self) -> dict[str, int]:
        """Images matched by each rule, and unmatched (``"none"``)."""
        found = Counter(self.rules)
        return {rule: found.get(rule, 0) for rule in (*MATCH_RULES, "none")}


def match_metadata(
    paths: Sequence[str | Path],
    metadata: pd.DataFrame,
    *,
    relpaths: Sequence[str] = (),
    path_column: str = "path",
) -> MetadataMatch:
    """Match each image to a metadata row: by relpath, else resolved path, else unique file
    name (the module docstring has the rules).

    >>> table = pd.DataFrame({"path": ["A/a1.jpg", "b2.jpg"], "signer": ["1", "2"]})
    >>> found = match_metadata(["/x/A/a1.jpg", "/y/B/b2.jpg", "/y/c.jpg"], table,
    ...                        relpaths=["A/a1.jpg", "B/b2.jpg", "c.jpg"])
    >>> found.rows.tolist(), found.rules
    ([0, 1, -1], ('relpath', 'name', 'none'))
    """
    if path_column not in metadata.columns:
        raise InputError(f"the metadata table has no {path_column!r} column.")
    if relpaths and len(relpaths) != len(paths):
        raise MetricError(f"{len(paths)} paths but {len(relpaths)} relpaths: one per path.")
    values = [str(v) for v in metadata[path_column]]
    base = metadata.attrs.get(_BASE_DIR)
    by_relpath = {_row_key(v): i for i, v in enumerate(values)}
    by_path = {
        _resolved(v, base if isinstance(base, str) else None): i for i, v in enumerate(values)
    }
    names = Counter(PurePosixPath(_row_key(v)).name for v in values)
    by_name = {
        PurePosixPath(_row_key(v)).name: i
        for i, v in enumerate(values)
        if names[PurePosixPath(_row_key(v)).name] == 1
    }
    image_names = Counter(Path(p).name for p in paths)
    rows = np.full(len(paths), -1, dtype=np.int64)
    rules: list[str] = []
    for index, path in enumerate(paths):
        relpath = relpaths[index] if relpaths else None
        name = Path(path).name
        if relpath is not None and relpath in by_relpath:
            rows[index], rule = by_relpath[relpath], "relpath"
        elif (resolved := _resolved(str(path), None)) in by_path:
            rows[index], rule = by_path[resolved], "path"
        elif image_names[name] == 1 and name in by_name:
            rows[index], rule = by_name[name], "name"
        else:
            rule = "none"
        rules.append(rule)
    return MetadataMatch(rows, tuple(rules))


def slice_column(metadata: pd.DataFrame, match: MetadataMatch, column: str) -> np.ndarray:
    """Each image's value in ``column`` (:data:`NO_METADATA` without a row or with an empty
    cell), as an object array."""
    values = metadata[column].to_numpy(dtype=object)
    out = np.full(len(match.rows), NO_METADATA, dtype=object)
    known = match.rows >= 0
    picked = values[match.rows[known]]
    out[known] = [str(v).strip() or NO_METADATA for v in picked]
    return out
