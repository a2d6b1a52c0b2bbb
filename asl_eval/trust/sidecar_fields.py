"""The checks for single fields of a safe-format sidecar, and the transforms it may name.

Each check takes a parsed JSON value and where it sits (``item_tfms[0].args.size``), and returns
the value as plain Python or raises :class:`InvalidField`, which says what the field must be and
what it holds. :data:`ITEM_ARGUMENTS` and :data:`BATCH_ARGUMENTS` list the transforms the safe
format stores, with a check for each constructor argument; :mod:`asl_eval.trust.sidecar` puts the
checks together into the whole record.

Imports the standard library only.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

__all__ = [
    "BATCH_ARGUMENTS",
    "ITEM_ARGUMENTS",
    "MAX_CHANNELS",
    "MAX_IMAGE_SIDE",
    "MAX_TRANSFORMS",
    "InvalidField",
    "TensorSpec",
    "TransformSpec",
    "check_choice",
    "check_integer",
    "check_number",
    "check_object",
    "check_optional_size",
    "check_size",
    "check_transform",
    "check_transforms",
    "show_value",
]

MAX_CHANNELS = 16
MAX_IMAGE_SIDE = 4096
MAX_TRANSFORMS = 32

_RESIZE_METHODS = ("crop", "pad", "squish")
_PAD_MODES = ("zeros", "border", "reflection")
_GRID_MODES = ("bilinear", "nearest", "bicubic")
_TENSOR_DTYPES = ("torch.float32", "torch.float64", "torch.float16", "torch.bfloat16")

T = TypeVar("T")


class InvalidField(Exception):
    """One field failed its check; :func:`validate_sidecar` words it as a ModelLoadError."""

    def __init__(self, where: str, expected: str, got: object, *, shown: str = "") -> None:
        super().__init__(f"{where} must be {expected}; got {shown or show_value(got)}")


def show_value(value: object) -> str:
    """A short, printable rendering of an offending value and its JSON type."""
    kind = {dict: "object", list: "array", str: "string", bool: "boolean"}.get(
        type(value), "null" if value is None else "number"
    )
    text = json.dumps(value, ensure_ascii=True, default=str)
    return f"{kind} {text[:60]}{'...' if len(text) > 60 else ''}"


@dataclass(frozen=True)
class TensorSpec:
    """A small tensor (normalisation statistics): flat values, shape and dtype name."""

    values: tuple[float, ...]
    shape: tuple[int, ...]
    dtype: str


@dataclass(frozen=True)
class TransformSpec:
    """One validated transform: its type, constructor arguments, split and order."""

    type: str
    args: Mapping[str, object]
    split_idx: int | None
    order: int


# --- scalar checks ----------------------------------------------------------------------------


def check_object(value: object, where: str, required: tuple[str, ...]) -> dict[str, object]:
    """A JSON object with exactly the ``required`` keys: none missing, none unknown.

    ``where`` is empty for the sidecar itself, whose fields are named without a prefix.
    """
    if not isinstance(value, dict):
        expected = f"an object with keys {', '.join(required)}"
        raise InvalidField(where or "the sidecar", expected, value)
    unknown = [key for key in value if key not in required]
    if unknown:
        expected = f"free of unknown keys (allowed: {', '.join(required)})"
        raise InvalidField(where or "the sidecar", expected, unknown)
    missing = [key for key in required if key not in value]
    if missing:
        field = f"{where}.{missing[0]}" if where else missing[0]
        raise InvalidField(field, "present", None, shown="nothing (it is missing)")
    return value


def check_integer(value: object, where: str, low: int, high: int) -> int:
    """An integer (not a boolean, not 3.0) within ``[low, high]``."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidField(where, f"an integer from {low} to {high}", value)
    return value


def check_number(value: object, where: str, low: float, high: float) -> float:
    """A finite number within ``[low, high]``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidField(where, f"a number from {low} to {high}", value)
    if not (math.isfinite(value) and low <= value <= high):
        raise InvalidField(where, f"a number from {low} to {high}", value)
    return float(value)


def check_choice(value: object, where: str, choices: tuple[str, ...]) -> str:
    """One of a fixed set of strings."""
    if not isinstance(value, str) or value not in choices:
        raise InvalidField(where, f"one of {', '.join(repr(c) for c in choices)}", value)
    return value


def _pair(value: object, where: str, check: Callable[[object, str], T]) -> tuple[T, T]:
    """An array of exactly two values, each passing ``check``."""
    if not isinstance(value, list) or len(value) != 2:
        raise InvalidField(where, "an array of two numbers", value)
    return check(value[0], f"{where}[0]"), check(value[1], f"{where}[1]")


def check_size(value: object, where: str) -> tuple[int, int]:
    """An image size: one integer or ``[height, width]``, each 1 to :data:`MAX_IMAGE_SIDE`."""
    if isinstance(value, int) and not isinstance(value, bool):
        side = check_integer(value, where, 1, MAX_IMAGE_SIDE)
        return side, side
    if not isinstance(value, list) or len(value) != 2:
        raise InvalidField(
            where, f"an integer or [height, width], each 1 to {MAX_IMAGE_SIDE}", value
        )
    height = check_integer(value[0], f"{where}[0]", 1, MAX_IMAGE_SIDE)
    return height, check_integer(value[1], f"{where}[1]", 1, MAX_IMAGE_SIDE)


def _tensor(value: object, where: str) -> TensorSpec:
    """A tensor record ``{"tensor": nested arrays, "dtype": ...}`` of at most 16 finite values."""
    record = check_object(value, where, ("tensor", "dtype"))
    dtype = check_choice(record["dtype"], f"{where}.dtype", _TENSOR_DTYPES)
    shape: list[int] = []
    level: object = record["tensor"]
    while isinstance(level, list):
        shape.append(len(level))
        level = level[0] if level else None
    if not shape or len(shape) > 4 or math.prod(shape) > MAX_CHANNELS:
        raise InvalidField(
            f"{where}.tensor", f"nested arrays of 1 to {MAX_CHANNELS} numbers", value
        )
    values: list[float] = []

    def walk(item: object, depth: int, at: str) -> None:
        if depth == len(shape):
            values.append(check_number(item, at, -1e6, 1e6))
        elif not isinstance(item, list) or len(item) != shape[depth]:
            raise InvalidField(at, f"an array of {shape[depth]} (a rectangular tensor)", item)
        else:
            for index, child in enumerate(item):
                walk(child, depth + 1, f"{at}[{index}]")

    walk(record["tensor"], 0, f"{where}.tensor")
    return TensorSpec(tuple(values), tuple(shape), dtype)


# --- transforms -------------------------------------------------------------------------------

_Check = Callable[[object, str], object]


def _options(choices: tuple[str, ...]) -> _Check:
    return lambda value, where: check_choice(value, where, choices)


def _fraction(value: object, where: str) -> float:
    return check_number(value, where, 0.0, 1.0)


def _ratio(value: object, where: str) -> tuple[float, float]:
    return _pair(value, where, lambda item, at: check_number(item, at, 1e-3, 1e3))


def _resamples(value: object, where: str) -> tuple[int, int]:
    return _pair(value, where, lambda item, at: check_integer(item, at, 0, 5))  # PIL's Resampling


def _divisor(value: object, where: str) -> float:
    return check_number(value, where, 1e-6, 1e6)


def check_optional_size(value: object, where: str) -> tuple[int, int] | None:
    return None if value is None else check_size(value, where)


def _optional_bool(value: object, where: str) -> bool | None:
    if value is not None and not isinstance(value, bool):
        raise InvalidField(where, "true, false or null", value)
    return value


def _axes(value: object, where: str) -> tuple[int, ...]:
    if not isinstance(value, list) or not 1 <= len(value) <= 4:
        raise InvalidField(where, "an array of 1 to 4 axes", value)
    axes = tuple(check_integer(item, f"{where}[{i}]", 0, 3) for i, item in enumerate(value))
    if len(set(axes)) != len(axes):
        raise InvalidField(where, "distinct axes", value)
    return axes


ITEM_ARGUMENTS: dict[str, dict[str, _Check]] = {
    "Resize": {
        "size": check_size,
        "method": _options(_RESIZE_METHODS),
        "pad_mode": _options(_PAD_MODES),
        "resamples": _resamples,
    },
    "RandomResizedCrop": {
        "size": check_size,
        "min_scale": _fraction,
        "ratio": _ratio,
        "resamples": _resamples,
        "val_xtra": _fraction,
        "max_scale": _fraction,
    },
    "CropPad": {"size": check_size, "pad_mode": _options(_PAD_MODES)},
    "ToTensor": {},
}
"""Item transforms the safe format can store, with a check for each argument it keeps."""

BATCH_ARGUMENTS: dict[str, dict[str, _Check]] = {
    "IntToFloatTensor": {"div": _divisor, "div_mask": _divisor},
    "Normalize": {"mean": _tensor, "std": _tensor, "axes": _axes},
    "AffineCoordTfm": {
        "size": check_optional_size,
        "mode": _options(_GRID_MODES),
        "pad_mode": _options(_PAD_MODES),
        "mode_mask": _options(_GRID_MODES),
        "align_corners": _optional_bool,
    },
}
"""Batch transforms the safe format can store, with a check for each argument it keeps."""


def check_transform(
    value: object, where: str, known: Mapping[str, Mapping[str, _Check]]
) -> TransformSpec:
    """One transform record: a known type, known arguments only, each checked."""
    record = check_object(value, where, ("type", "args", "split_idx", "order"))
    name = check_choice(record["type"], f"{where}.type", tuple(known))
    arguments = record["args"]
    if not isinstance(arguments, dict):
        raise InvalidField(f"{where}.args", "an object", arguments)
    checks = known[name]
    unknown = [key for key in arguments if key not in checks]
    if unknown:
        allowed = ", ".join(checks) or "none"
        raise InvalidField(f"{where}.args", f"free of unknown keys (allowed: {allowed})", unknown)
    args = {key: checks[key](item, f"{where}.args.{key}") for key, item in arguments.items()}
    split_idx = record["split_idx"]
    if split_idx is not None:
        split_idx = check_integer(split_idx, f"{where}.split_idx", 0, 1)
    return TransformSpec(
        name, args, split_idx, check_integer(record["order"], f"{where}.order", -1000, 1000)
    )


def check_transforms(
    value: object, where: str, known: Mapping[str, Mapping[str, _Check]]
) -> tuple[TransformSpec, ...]:
    """A list of at most :data:`MAX_TRANSFORMS` transform records."""
    if not isinstance(value, list) or len(value) > MAX_TRANSFORMS:
        raise InvalidField(where, f"an array of at most {MAX_TRANSFORMS} transforms", value)
    return tuple(check_transform(item, f"{where}[{i}]", known) for i, item in enumerate(value))
