"""Rendering a built :class:`ReportContext` to one self-contained HTML page: nothing is
computed here, the templates only loop and print through the formatting filters.

Jinja2 runs with autoescape on and ``StrictUndefined``, set outright: every file name, label and
path is text in the page, never markup. Nothing is marked safe; ``data:`` URIs pass through
filters that let only base64 images made by this package through.

Imports Jinja2, the report's dataclasses and its formatting.
"""

from __future__ import annotations

import math
import re

from jinja2 import Environment, PackageLoader, StrictUndefined

from asl_eval.report.data import ReportContext
from asl_eval.report.figures import data_uri
from asl_eval.report.formatting import (
    fmt_interval,
    fmt_number,
    fmt_percent,
    fmt_points,
    fmt_pvalue,
)

__all__ = ["data_uri_attr", "make_environment", "png_uri", "render_html", "sort_key"]

_DATA_URI = re.compile(r"^data:image/(png|jpeg);base64,[A-Za-z0-9+/=]*$")


def sort_key(value: float | None) -> str:
    """A ``data-sort`` attribute value; NaN sorts first.

    >>> sort_key(0.5), sort_key(float("nan"))
    ('0.500000', '-1')
    """
    if value is None or not math.isfinite(value):
        return "-1"
    return f"{value:.6f}"


def data_uri_attr(uri: str | None) -> str:
    """Pass a data URI made by this package; anything else becomes an empty string.

    >>> data_uri_attr("data:image/png;base64,AAAA"), data_uri_attr("javascript:alert(1)")
    ('data:image/png;base64,AAAA', '')
    """
    return uri if uri is not None and _DATA_URI.match(uri) else ""


def png_uri(payload: bytes) -> str:
    """PNG bytes made by this package (Grad-CAM images) as a data URI; anything else ``''``."""
    if not isinstance(payload, bytes | bytearray) or not payload.startswith(b"\x89PNG"):
        return ""
    return data_uri(bytes(payload), "image/png")


def make_environment() -> Environment:
    """The one Jinja2 environment: autoescape always on, undefined names are errors."""
    environment = Environment(
        loader=PackageLoader("asl_eval.report", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters.update(
        percent=fmt_percent,
        interval=fmt_interval,
        points=fmt_points,
        points_interval=fmt_interval,
        number=fmt_number,
        pvalue=fmt_pvalue,
        sortkey=sort_key,
        data_uri=data_uri_attr,
        png_uri=png_uri,
    )
    return environment


def render_html(context: ReportContext) -> str:
    """The whole report as one HTML string."""
    return make_environment().get_template("report.html.j2").render(context=context)
