"""Reading a report's JSON back (for ``compare`` and notebooks): checked against the packaged
JSON Schema, with the previous schema version upgraded in memory.

The version policy: any change to the shape of the JSON (a key added, renamed or removed, a
type changed) increases ``schema_version``. A reader accepts the current version and at least
the one before it; an older version is upgraded in memory to the current shape, one version at
a time (the file is left as it is); any other version is refused with a :class:`ReportError`
that names the versions this asl-eval reads.

Imports the standard library, jsonschema (when a file is read) and the report's JSON constants.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any, cast

from asl_eval.errors import ReportError
from asl_eval.report.serialize import SCHEMA, SCHEMA_VERSION, JsonValue

__all__ = ["READABLE_VERSIONS", "read_report_json", "report_schema"]


def report_schema() -> dict[str, object]:
    """The JSON Schema of the current version (``asl_eval/report/schema/report.schema.json``,
    a fresh copy)."""
    schema: dict[str, object] = json.loads(_schema_text())
    return schema


@cache
def _schema_text() -> str:
    return files("asl_eval.report").joinpath("schema/report.schema.json").read_text("utf-8")


def _pair(value: object) -> tuple[object, object]:
    if isinstance(value, list) and len(value) == 2:
        return value[0], value[1]
    return None, None


def _balanced_accuracy(per_class: object) -> float | None:
    """Mean recall over the classes with images (scikit-learn's balanced accuracy)."""
    if not isinstance(per_class, list):
        return None
    recalls = [
        row["accuracy"]
        for row in per_class
        if isinstance(row, dict) and row.get("support") and row.get("accuracy") is not None
    ]
    return float(f"{sum(recalls) / len(recalls):.10g}") if recalls else None


def _upgrade_from_1(document: dict[str, Any]) -> dict[str, Any]:
    """A version-1 report in the version-2 shape (a new dict; ``document`` is not changed).

    Per set: ``accuracy_ci`` and ``macro_f1_ci`` (``[low, high]``) become ``*_ci_low`` and
    ``*_ci_high``; ``top5_accuracy`` becomes ``top_k_accuracy`` with ``top_k`` 5;
    ``balanced_accuracy``, absent from version 1, is computed from the per-class table (mean
    accuracy over the classes with images); ``n_resamples`` and ``seed`` are 300 and 0, which
    version 1 always used. The ``sections`` blocks are kept as written.
    """
    upgraded = dict(document, schema_version=2)
    sets = []
    for old in document.get("sets", []):
        if not isinstance(old, dict):
            sets.append(old)
            continue
        new = dict(old)
        for name in ("accuracy_ci", "macro_f1_ci"):
            new[f"{name}_low"], new[f"{name}_high"] = _pair(new.pop(name, None))
        new["top_k"] = 5
        new["top_k_accuracy"] = new.pop("top5_accuracy", None)
        new["balanced_accuracy"] = _balanced_accuracy(new.get("per_class"))
        new["n_resamples"], new["seed"] = 300, 0  # what version 1 always used
        sets.append(new)
    upgraded["sets"] = sets
    return upgraded


def _upgrade_from_2(document: dict[str, Any]) -> dict[str, Any]:
    """A version-2 report in the version-3 shape (a new dict): ``sharing`` is added as
    ``{"redact_paths": false, "images": true}``, what every version-2 report was."""
    return dict(document, schema_version=3, sharing={"redact_paths": False, "images": True})


def _upgrade_from_3(document: dict[str, Any]) -> dict[str, Any]:
    """A version-3 report in the version-4 shape (a new dict): each set's ``content`` is
    ``{"n_hashed": 0, "digest": null}``, since version 3 recorded no content hashes, and
    ``model.engine`` is ``{"engine": "fastai"}``, the only engine version 3 had."""
    sets = [
        dict(s, content={"n_hashed": 0, "digest": None}) if isinstance(s, dict) else s
        for s in document.get("sets", [])
    ]
    model = document.get("model")
    if isinstance(model, dict):
        model = dict(model, engine={"engine": "fastai"})
    return dict(document, schema_version=4, sets=sets, model=model)


_UPGRADES: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {
    1: _upgrade_from_1,
    2: _upgrade_from_2,
    3: _upgrade_from_3,
}
READABLE_VERSIONS = (*sorted(_UPGRADES), SCHEMA_VERSION)
"""The schema versions :func:`read_report_json` accepts: the current one and every older one
it can upgrade (1 to 3)."""


def _load(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ReportError(f"Could not read report JSON {path}: {error}") from error
    if not isinstance(document, dict) or document.get("schema") != SCHEMA:
        raise ReportError(
            f'{path} is not an asl-eval report JSON (expected "schema": {SCHEMA!r}); pass '
            "the .json file written next to a report's .html."
        )
    return document


def _validate(document: dict[str, Any], path: Path) -> None:
    from jsonschema import Draft202012Validator

    validator = Draft202012Validator(report_schema())
    errors = sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
    if errors:
        where = "/".join(str(part) for part in errors[0].absolute_path) or "(top level)"
        raise ReportError(
            f"{path} does not match the asl-eval report schema version {SCHEMA_VERSION}: "
            f"{len(errors)} problem(s), first at {where}: {errors[0].message}"
        )


def read_report_json(path: str | Path) -> dict[str, JsonValue]:
    """Read a report's JSON, in the current schema version's shape.

    A file of an older version is upgraded in memory, one version at a time. From version 3:
    each set's ``content`` is ``{"n_hashed": 0, "digest": null}`` (no hashes were recorded)
    and ``model.engine`` is ``{"engine": "fastai"}``.
    From version 2:
    ``sharing`` is added as ``{"redact_paths": false, "images": true}`` (what every version-2
    report was). From version 1: per set, ``accuracy_ci`` and ``macro_f1_ci`` (``[low,
    high]``) become ``*_ci_low`` and ``*_ci_high``, ``top5_accuracy`` becomes
    ``top_k_accuracy`` with ``top_k`` 5, ``balanced_accuracy`` is computed from the per-class
    table, and ``n_resamples`` and ``seed`` are 300 and 0 (what version 1 always used); its
    ``sections`` blocks are kept as written. The result is validated against
    :func:`report_schema`.

    Raises
    ------
    ReportError
        The file is unreadable, not a report, of a version this asl-eval does not read, or
        does not match the schema.
    """
    path = Path(path)
    document = _load(path)
    version = document.get("schema_version")
    if version not in READABLE_VERSIONS or isinstance(version, bool):
        readable = ", ".join(str(v) for v in READABLE_VERSIONS[:-1])
        readable += f" and {READABLE_VERSIONS[-1]}"
        raise ReportError(
            f"{path} has report schema_version {version!r}; this asl-eval reads versions "
            f"{readable}. Re-create the report with this asl-eval, or read it with the "
            "asl-eval that wrote it."
        )
    while version != SCHEMA_VERSION:
        document = _UPGRADES[version](document)
        version = document["schema_version"]
    _validate(document, path)
    return cast("dict[str, JsonValue]", document)
