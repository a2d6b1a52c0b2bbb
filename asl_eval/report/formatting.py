"""Number formatting for the report: one place for the page's filters and the headline.

Undefined values (NaN, None) print as ``'–'``, never as 0. Imports the standard library only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["fmt_interval", "fmt_number", "fmt_percent", "fmt_points", "fmt_pvalue"]


def fmt_percent(value: float | None, digits: int = 1) -> str:
    """``0.6195`` -> ``'62.0%'``; NaN and None -> ``'–'``.

    >>> fmt_percent(0.6195), fmt_percent(float("nan"))
    ('62.0%', '–')
    """
    if value is None or not math.isfinite(value):
        return "–"
    return f"{100 * value:.{digits}f}%"


def fmt_points(value: float | None, digits: int = 1) -> str:
    """A difference of proportions in percentage points: ``0.8493`` -> ``'84.9'``; NaN and
    None -> ``'–'``.

    >>> fmt_points(0.8493), fmt_points(-0.05), fmt_points(float("nan"))
    ('84.9', '-5.0', '–')
    """
    if value is None or not math.isfinite(value):
        return "–"
    return f"{100 * value:.{digits}f}"


def fmt_interval(interval: Sequence[float] | None) -> str:
    """``(0.587, 0.652)`` -> ``'58.7–65.2'``.

    >>> fmt_interval((0.587, 0.652))
    '58.7–65.2'
    """
    if interval is None or any(v is None or not math.isfinite(v) for v in interval):
        return "–"
    low, high = interval
    return f"{100 * low:.1f}–{100 * high:.1f}"


def fmt_number(value: float | None, digits: int = 3) -> str:
    """A float with ``digits`` decimals; NaN and None -> ``'–'``.

    >>> fmt_number(0.12345), fmt_number(None), fmt_number(-0.0001), fmt_number(-0.5)
    ('0.123', '–', '0.000', '-0.500')
    """
    if value is None or not math.isfinite(value):
        return "–"
    text = f"{value:.{digits}f}"
    return text[1:] if text.startswith("-") and not text.strip("-0.") else text


def fmt_pvalue(value: float | None) -> str:
    """p-values: ``'<0.001'`` below a thousandth.

    >>> fmt_pvalue(0.00001), fmt_pvalue(0.0312)
    ('<0.001', '0.031')
    """
    if value is None or not math.isfinite(value):
        return "–"
    return "<0.001" if value < 0.001 else f"{value:.3f}"
