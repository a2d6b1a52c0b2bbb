"""The slices' figure: accuracy of each value of one metadata column, per set, with its Wilson
interval, the values significantly below the rest of their column marked.

Like :mod:`asl_eval.plots`, the function takes the computed table
(``slice_analysis(...).info["slices"]``) and an optional Axes and returns the Axes; with
``ax=None`` it makes a new :class:`matplotlib.figure.Figure`, never touching pyplot's global
state. Slice values are drawn as text labels (matplotlib does not interpret them: ``usetex``
and mathtext are off for them).

Imports numpy, pandas and matplotlib.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from asl_eval.errors import ReportError

__all__ = ["plot_slice_accuracy"]

_COLOURS = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00")
_FLAGGED = "#D55E00"
_MAX_LABEL = 24


def _label(value: str) -> str:
    text = value if len(value) <= _MAX_LABEL else value[: _MAX_LABEL - 1] + "…"
    return text.replace("$", r"\$")  # no mathtext from a CSV cell


def plot_slice_accuracy(slices: pd.DataFrame, column: str, *, ax: Axes | None = None) -> Axes:
    """Accuracy (dot) and Wilson interval (bar) of each value of ``column``, one row per value,
    one colour per set; values significantly below the rest are drawn filled in red.

    >>> table = pd.DataFrame({"set": ["s", "s"], "column": ["signer"] * 2, "value": ["1", "2"],
    ...     "accuracy": [0.9, 0.3], "accuracy_low": [0.8, 0.2], "accuracy_high": [0.95, 0.45],
    ...     "significant": [False, True]})
    >>> [t.get_text() for t in plot_slice_accuracy(table, "signer").get_yticklabels()]
    ['1', '2']
    """
    part = slices[slices["column"] == column]
    if part.empty:
        raise ReportError(f"The slices table has no rows for column {column!r}.")
    if ax is None:
        ax = Figure(figsize=(6.0, 0.4 + 0.32 * part["value"].nunique())).subplots()
    values = list(dict.fromkeys(part["value"].astype(str)))
    sets = list(dict.fromkeys(part["set"].astype(str)))
    offsets = np.linspace(-0.2, 0.2, len(sets)) if len(sets) > 1 else np.zeros(1)
    for index, name in enumerate(sets):
        rows = part[part["set"].astype(str) == name]
        y = np.array([values.index(str(v)) for v in rows["value"]]) + offsets[index]
        accuracy = rows["accuracy"].to_numpy(dtype=np.float64)
        low = rows["accuracy_low"].to_numpy(dtype=np.float64)
        high = rows["accuracy_high"].to_numpy(dtype=np.float64)
        colour = _COLOURS[index % len(_COLOURS)]
        ax.errorbar(
            accuracy,
            y,
            xerr=np.vstack([accuracy - low, high - accuracy]),
            fmt="o",
            color=colour,
            mfc="white",
            capsize=2,
            label=name,
        )
        flagged = rows["significant"].to_numpy(dtype=bool)
        if flagged.any():
            ax.plot(accuracy[flagged], y[flagged], "o", color=_FLAGGED, zorder=3)
    ax.set_yticks(range(len(values)), [_label(v) for v in values])
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("accuracy (95% Wilson interval); red: significantly below the rest")
    if len(sets) > 1:
        ax.legend(loc="lower right", fontsize="small", frameon=False)
    return ax
