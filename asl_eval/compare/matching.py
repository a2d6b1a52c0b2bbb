"""Pairing the images of one set across two reports.

Images are matched by their path relative to the set's folder and the SHA-256 of their bytes
(schema version 4 reports), so two runs on the same files match wherever the folder was, and
a file that changed between the runs does not. Reports without content hashes (versions 1-3)
are matched by relative path, else by path, with a warning. Sets that do not hold the same
images are an error that names the differing files: a paired test on different images would
compare the images, not the models.

May import: pandas, :mod:`asl_eval.errors`, :mod:`.reading`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

import pandas as pd

from asl_eval.compare.reading import SetRecord
from asl_eval.errors import ReportError, first_few, printable

__all__ = ["MatchedBy", "PairedImages", "pair_images"]

logger = logging.getLogger(__name__)

MatchedBy = Literal["content", "relpath", "path"]


@dataclass(frozen=True)
class PairedImages:
    """The images of one set, each with both models' predictions.

    ``frame`` has one row per image, in the base report's order, with the columns ``path``
    (where the new report found it), ``relpath``, ``y_true``, ``pred_base``, ``pred_new``,
    ``confidence_base`` and ``confidence_new``. ``note`` is the warning given when the images
    could not be matched by content, else ``""``.
    """

    name: str
    role: str
    matched_by: MatchedBy
    frame: pd.DataFrame
    note: str = ""

    @property
    def n_images(self) -> int:
        return len(self.frame)


def _how(base: SetRecord, new: SetRecord) -> MatchedBy:
    if base.hashed and new.hashed:
        return "content"
    if (base.rows["relpath"] != "").all() and (new.rows["relpath"] != "").all():
        return "relpath"
    return "path"


def _keys(rows: pd.DataFrame, how: MatchedBy) -> pd.Series:
    if how == "content":
        return rows["relpath"] + "\t" + rows["sha256"]
    return rows[how]


def _check_unique(keys: pd.Series, side: str, name: str) -> None:
    repeated = keys[keys.duplicated()].str.split("\t").str[0].tolist()
    if repeated:
        raise ReportError(
            f"Set {printable(repr(name))} of {side} lists {len(repeated)} image(s) twice: "
            f"{first_few(repeated)}; re-create that report."
        )


def _difference_message(
    name: str, base_keys: pd.Series, new_keys: pd.Series, how: MatchedBy
) -> str:
    """Which images differ: only in BASE, only in NEW, and (by content) changed between runs."""
    in_base, in_new = set(base_keys), set(new_keys)
    only_base = [k.split("\t")[0] for k in base_keys if k not in in_new]
    only_new = [k.split("\t")[0] for k in new_keys if k not in in_base]
    changed = [p for p in only_base if p in set(only_new)]
    parts = [
        f"{len(items)} {what} ({first_few(items)})"
        for what, items in (
            ("only in BASE", [p for p in only_base if p not in changed]),
            ("only in NEW", [p for p in only_new if p not in changed]),
            ("changed between the runs", changed),
        )
        if items
    ]
    matched = "relative path and SHA-256" if how == "content" else how
    return (
        f"Set {printable(repr(name))} does not hold the same images in BASE and NEW (matched "
        f"by {matched}): {'; '.join(parts)}. Report both models on the same files, or leave "
        "this set out with --set."
    )


def pair_images(base: SetRecord, new: SetRecord) -> PairedImages:
    """Pair the images of one set in two reports, image by image.

    Raises
    ------
    ReportError
        An image is in one report and not the other (named, first few), is listed twice, or
        has a different true label in each.
    """
    how = _how(base, new)
    base_keys, new_keys = _keys(base.rows, how), _keys(new.rows, how)
    _check_unique(base_keys, "BASE", base.name)
    _check_unique(new_keys, "NEW", new.name)
    if set(base_keys) != set(new_keys):
        raise ReportError(_difference_message(base.name, base_keys, new_keys, how))
    left = base.rows.assign(key=base_keys.to_numpy())
    right = new.rows.assign(key=new_keys.to_numpy())
    merged = left.merge(right, on="key", how="left", suffixes=("_base", "_new"), sort=False)
    relabelled = merged.loc[merged["y_true_base"] != merged["y_true_new"], "path_new"].tolist()
    if relabelled:
        raise ReportError(
            f"Set {printable(repr(base.name))}: {len(relabelled)} image(s) have a different true "
            f"label in BASE and NEW ({first_few(relabelled)}); report both with the same label "
            "options."
        )
    frame = pd.DataFrame(
        {
            "path": merged["path_new"],
            "relpath": merged["relpath_new"],
            "y_true": merged["y_true_base"],
            "pred_base": merged["y_pred_base"],
            "pred_new": merged["y_pred_new"],
            "confidence_base": merged["confidence_base"],
            "confidence_new": merged["confidence_new"],
        }
    )
    note = ""
    if how != "content":
        note = (
            f"Set {base.name!r}: images matched by {how}, not by content (a report without "
            "content hashes, schema version 3 or older): a file changed between the runs "
            "would go unnoticed."
        )
        logger.warning("%s", printable(note))
    return PairedImages(base.name, base.role, how, frame, note)
