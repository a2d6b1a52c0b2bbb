"""The safe format's JSON sidecar: read within bounds, validated field by field, hashed.

A sidecar (``model.json``) comes from whoever sent the model, so :func:`read_sidecar` treats it
as hostile input and checks everything before anything is built or allocated: the file's size
(:data:`MAX_SIDECAR_BYTES`), the nesting depth of its raw text (:data:`MAX_JSON_DEPTH`, counted
before :func:`json.loads` can recurse), duplicate keys, ``NaN``/``Infinity``, every key (unknown
keys are refused at every level, missing ones too), every type and every number against the
bounds below, the ``content_sha256`` that covers all of the sidecar's fields (so a reordered
class list or a changed architecture no longer matches what was exported), and finally the
SHA-256 of the weights. Every failure is a :class:`~asl_eval.errors.ModelLoadError` naming the
field, what was expected and what came.

The result is a :class:`Sidecar` of plain, validated values; :mod:`asl_eval.trust.safe_format`
turns it into a fastai learner.

Imports the standard library, :mod:`asl_eval.errors` and :mod:`asl_eval.hashing` only: no torch,
no fastai, so nothing the sidecar names can run while it is checked.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from asl_eval.errors import ModelLoadError
from asl_eval.hashing import file_sha256
from asl_eval.trust.sidecar_fields import (
    BATCH_ARGUMENTS,
    ITEM_ARGUMENTS,
    MAX_CHANNELS,
    MAX_IMAGE_SIDE,
    MAX_TRANSFORMS,
    InvalidField,
    TensorSpec,
    TransformSpec,
    check_choice,
    check_integer,
    check_object,
    check_optional_size,
    check_transform,
    check_transforms,
    show_value,
)

__all__ = [
    "BATCH_ARGUMENTS",
    "ITEM_ARGUMENTS",
    "LOSS_FUNCTIONS",
    "MAX_BATCH_ELEMENTS",
    "MAX_BATCH_SIZE",
    "MAX_CHANNELS",
    "MAX_CLASSES",
    "MAX_CLASS_NAME_LENGTH",
    "MAX_IMAGE_SIDE",
    "MAX_JSON_DEPTH",
    "MAX_SIDECAR_BYTES",
    "MAX_TRANSFORMS",
    "SIDECAR_FORMAT",
    "SIDECAR_VERSION",
    "Sidecar",
    "TensorSpec",
    "TransformSpec",
    "content_sha256",
    "read_sidecar",
    "sidecar_path",
    "validate_sidecar",
]

SIDECAR_FORMAT = "asl-eval safe learner"
SIDECAR_VERSION = 2
"""Version 2 added ``content_sha256``; version 1 (never released) is refused with a hint."""

MAX_SIDECAR_BYTES = 4 * 1024 * 1024
MAX_JSON_DEPTH = 12
MAX_CLASSES = 10_000
MAX_CLASS_NAME_LENGTH = 256
MAX_BATCH_SIZE = 4096
MAX_BATCH_ELEMENTS = 2**28
"""``batch_size * n_in * height * width`` at most: one float32 batch within 1 GiB."""

LOSS_FUNCTIONS: tuple[str, ...] = (
    "CrossEntropyLossFlat",
    "LabelSmoothingCrossEntropyFlat",
    "FocalLossFlat",
)
"""fastai losses (single-label, softmax activation) the safe format can rebuild."""

_ARCHITECTURE_NAME = re.compile(r"[A-Za-z0-9_.\-]{1,128}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_JSON_TOKEN = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]')
_TOP_LEVEL_KEYS = (
    "format",
    "format_version",
    "architecture",
    "n_in",
    "n_out",
    "classes",
    "input_size",
    "image_type",
    "normalization",
    "item_tfms",
    "batch_tfms",
    "batch_size",
    "loss_func",
    "weights",
    "content_sha256",
)


@dataclass(frozen=True)
class Sidecar:
    """A validated sidecar: everything needed to rebuild the learner, bounds checked."""

    architecture: str
    source: str
    n_in: int
    n_out: int
    classes: tuple[str, ...]
    input_size: tuple[int, int] | None
    image_type: str
    item_tfms: tuple[TransformSpec, ...]
    batch_tfms: tuple[TransformSpec, ...]
    batch_size: int
    loss: str
    loss_axis: int
    weights_sha256: str


def sidecar_path(weights_path: str | Path) -> Path:
    """The JSON sidecar that goes with a weights file: ``model.safetensors`` -> ``model.json``.

    >>> sidecar_path("out/model.safetensors").as_posix()
    'out/model.json'
    """
    return Path(weights_path).with_suffix(".json")


def content_sha256(record: Mapping[str, object]) -> str:
    """SHA-256 of a sidecar's canonical JSON, every field but ``content_sha256`` itself.

    Canonical: keys sorted, no whitespace, ASCII escapes, no NaN. The weights' SHA-256 is one of
    the fields, so this one hash covers the meaning of the sidecar and the weights together.

    >>> content_sha256({"b": [1, 2], "a": "x"}) == content_sha256({"a": "x", "b": [1, 2]})
    True
    """
    fields = {key: value for key, value in record.items() if key != "content_sha256"}
    text = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode("ascii")).hexdigest()


# --- reading the raw text -------------------------------------------------------------------


def _read_text(weights_path: Path) -> str:
    """The sidecar's text, refusing a missing, oversized or non-UTF-8 file before parsing."""
    side = sidecar_path(weights_path)
    if not side.is_file():
        raise ModelLoadError(
            f"{weights_path} has no sidecar: expected {side} next to it, as written by asl-eval "
            "export-safe. The weights alone do not say how to rebuild the model."
        )
    with side.open("rb") as handle:
        data = handle.read(MAX_SIDECAR_BYTES + 1)
    if len(data) > MAX_SIDECAR_BYTES:
        raise ModelLoadError(
            f"{side} is larger than {MAX_SIDECAR_BYTES} bytes, far more than a sidecar written "
            "by asl-eval export-safe; refused without parsing it."
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ModelLoadError(f"{side} is not UTF-8 text ({error}); re-export the model.") from None


def _check_depth(text: str, side: Path) -> None:
    """Refuse JSON nested deeper than :data:`MAX_JSON_DEPTH`, counted on the raw text."""
    depth = 0
    for token in _JSON_TOKEN.finditer(text):
        bracket = token.group()
        if bracket in ("[", "{"):
            depth += 1
            if depth > MAX_JSON_DEPTH:
                raise ModelLoadError(
                    f"{side} nests arrays or objects deeper than {MAX_JSON_DEPTH} levels; a "
                    "sidecar written by asl-eval export-safe never does. Refused without parsing."
                )
        elif bracket in ("]", "}"):
            depth -= 1


def _unique_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    """``object_pairs_hook`` refusing duplicate keys (JSON would silently keep the last)."""
    record: dict[str, object] = {}
    for key, value in pairs:
        if key in record:
            raise ValueError(f"the key {key!r} appears twice in one object")
        record[key] = value
    return record


def _no_constant(name: str) -> object:
    """``parse_constant``: NaN and Infinity are not JSON and have no place in a sidecar."""
    raise ValueError(f"{name} is not a valid number")


def _parse(weights_path: Path) -> object:
    """The sidecar parsed as JSON within the size and depth bounds."""
    side = sidecar_path(weights_path)
    text = _read_text(weights_path)
    _check_depth(text, side)
    try:
        return json.loads(text, object_pairs_hook=_unique_keys, parse_constant=_no_constant)
    except (ValueError, RecursionError) as error:
        raise ModelLoadError(
            f"{side} is not valid JSON ({error}); re-export the model with asl-eval export-safe."
        ) from None


def _check_normalize(batch: tuple[TransformSpec, ...], normalization: object, n_in: int) -> None:
    """Statistics with one value (or one per channel), positive std, matching ``normalization``."""
    records = [t for t in batch if t.type == "Normalize"]
    if not records:
        if normalization is not None:
            raise InvalidField("normalization", "null (batch_tfms has no Normalize)", normalization)
        return
    args = records[0].args
    for key in ("mean", "std"):
        stats = args.get(key)
        if not isinstance(stats, TensorSpec) or len(stats.values) not in (1, n_in):
            raise InvalidField(f"Normalize.{key}", f"1 or n_in ({n_in}) values", None)
    std = args["std"]
    if isinstance(std, TensorSpec) and min(std.values) <= 0:
        raise InvalidField("Normalize.std", "positive values", list(std.values))
    if not isinstance(normalization, dict) or check_transform(
        {"type": "Normalize", "args": normalization, "split_idx": None, "order": 0},
        "normalization",
        BATCH_ARGUMENTS,
    ).args != dict(args):
        raise InvalidField(
            "normalization", "the arguments of the Normalize in batch_tfms", normalization
        )


# --- the whole record -------------------------------------------------------------------------


def _classes(value: object, n_out: object) -> tuple[str, ...]:
    """Non-empty, unique, printable class names, as many as ``n_out`` says."""
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_CLASSES:
        raise InvalidField("classes", f"an array of 1 to {MAX_CLASSES} class names", value)
    for index, name in enumerate(value):
        where = f"classes[{index}]"
        if not isinstance(name, str) or not 1 <= len(name) <= MAX_CLASS_NAME_LENGTH:
            raise InvalidField(where, f"a string of 1 to {MAX_CLASS_NAME_LENGTH} characters", name)
        if any(unicodedata.category(c) in ("Cc", "Cs") for c in name):
            raise InvalidField(where, "free of control characters and lone surrogates", name)
    seen: set[str] = set()
    for name in value:
        if name in seen:
            raise InvalidField("classes", "unique names", name, shown=f"{show_value(name)} twice")
        seen.add(name)
    check_integer(n_out, "n_out", len(value), len(value))
    return tuple(value)


def _first_size(item_tfms: tuple[TransformSpec, ...]) -> tuple[int, int] | None:
    """The size of the first resizing item transform, as :func:`probe.input_size` reads it."""
    for spec in item_tfms:
        size = spec.args.get("size")
        if spec.type in ("Resize", "RandomResizedCrop", "CropPad") and isinstance(size, tuple):
            return size[0], size[1]
    return None


def _check_batch_budget(sidecar: Sidecar) -> None:
    """One batch of the largest image the transforms produce must stay within budget."""
    sizes = [sidecar.input_size] + [t.args.get("size") for t in sidecar.batch_tfms]
    area = max((s[0] * s[1] for s in sizes if isinstance(s, tuple)), default=1)
    if sidecar.batch_size * sidecar.n_in * area > MAX_BATCH_ELEMENTS:
        raise InvalidField(
            "batch_size",
            f"small enough that batch_size x n_in x height x width <= {MAX_BATCH_ELEMENTS}",
            sidecar.batch_size,
        )


def _validate(record: object) -> Sidecar:
    """Every field of a parsed sidecar, checked; raises :class:`InvalidField`."""
    top = check_object(record, "", _TOP_LEVEL_KEYS)
    architecture = check_object(top["architecture"], "architecture", ("name", "source"))
    name = architecture["name"]
    if not isinstance(name, str) or not _ARCHITECTURE_NAME.fullmatch(name):
        raise InvalidField("architecture.name", "a model name (letters, digits, _ . -)", name)
    source = check_choice(architecture["source"], "architecture.source", ("torchvision", "timm"))
    n_in = check_integer(top["n_in"], "n_in", 1, MAX_CHANNELS)
    classes = _classes(top["classes"], top["n_out"])
    input_size = check_optional_size(top["input_size"], "input_size")
    item_tfms = check_transforms(top["item_tfms"], "item_tfms", ITEM_ARGUMENTS)
    if input_size != _first_size(item_tfms):
        raise InvalidField(
            "input_size",
            f"the size of the resizing item transform ({_first_size(item_tfms)})",
            top["input_size"],
        )
    batch_tfms = check_transforms(top["batch_tfms"], "batch_tfms", BATCH_ARGUMENTS)
    _check_normalize(batch_tfms, top["normalization"], n_in)
    loss = check_object(top["loss_func"], "loss_func", ("type", "axis"))
    weights = check_object(top["weights"], "weights", ("file", "sha256"))
    if not isinstance(weights["file"], str) or not 1 <= len(weights["file"]) <= 255:
        raise InvalidField("weights.file", "a file name", weights["file"])
    for key, value in (
        ("weights.sha256", weights["sha256"]),
        ("content_sha256", top["content_sha256"]),
    ):
        if not isinstance(value, str) or not _SHA256.fullmatch(value):
            raise InvalidField(key, "64 lowercase hexadecimal digits", value)
    sidecar = Sidecar(
        architecture=name,
        source=source,
        n_in=n_in,
        n_out=len(classes),
        classes=classes,
        input_size=input_size,
        image_type=check_choice(top["image_type"], "image_type", ("PILImage", "PILImageBW")),
        item_tfms=item_tfms,
        batch_tfms=batch_tfms,
        batch_size=check_integer(top["batch_size"], "batch_size", 1, MAX_BATCH_SIZE),
        loss=check_choice(loss["type"], "loss_func.type", LOSS_FUNCTIONS),
        loss_axis=check_integer(loss["axis"], "loss_func.axis", -4, 3),
        weights_sha256=str(weights["sha256"]),
    )
    _check_batch_budget(sidecar)
    return sidecar


def _check_version(record: object, source: str) -> dict[str, object]:
    """The format marker and version, before any other field is looked at."""
    if not isinstance(record, dict) or record.get("format") != SIDECAR_FORMAT:
        raise ModelLoadError(f"{source} is not an asl-eval safe-format sidecar.")
    version = record.get("format_version")
    if version == 1:
        raise ModelLoadError(
            f"{source} has format version 1, written by a development build of asl-eval before "
            "sidecars recorded a content hash; this asl-eval reads version "
            f"{SIDECAR_VERSION}. Re-export the model with asl-eval export-safe."
        )
    if version != SIDECAR_VERSION:
        raise ModelLoadError(
            f"{source} has format version {show_value(version)}; this asl-eval reads version "
            f"{SIDECAR_VERSION}. Upgrade asl-eval or re-export with asl-eval export-safe."
        )
    return record


def validate_sidecar(
    record: object,
    *,
    source: str = "the sidecar",
    fix: str = "Re-export the model with asl-eval export-safe.",
) -> Sidecar:
    """Check a parsed sidecar's format, version, keys, types, bounds and content hash.

    Raises
    ------
    ModelLoadError
        Naming the first field that fails, what it must be and what it holds.
    """
    checked = _check_version(record, source)
    try:
        sidecar = _validate(checked)
    except InvalidField as error:
        raise ModelLoadError(
            f"{source} is not a valid safe-format sidecar: {error}. {fix}"
        ) from None
    if checked["content_sha256"] != content_sha256(checked):
        raise ModelLoadError(
            f"{source} does not match what was exported: its content SHA-256 (over the classes "
            "and their order, the architecture, the transforms and normalisation, the sizes and "
            "the weights' hash) differs from the one it records, so it was edited after export. "
            "Re-export the model with asl-eval export-safe."
        )
    return sidecar


def read_sidecar(weights_path: Path) -> Sidecar:
    """Read, bound-check, validate and hash-check the sidecar of ``weights_path``.

    Raises
    ------
    ModelLoadError
        If the sidecar is missing, too large, too deep, not JSON, invalid in any field, edited
        after export, or recorded for other weights.
    """
    side = sidecar_path(weights_path)
    sidecar = validate_sidecar(_parse(weights_path), source=str(side))
    if sidecar.weights_sha256 != file_sha256(weights_path):
        raise ModelLoadError(
            f"{side} does not belong to {weights_path}: the weights' SHA-256 differs from the "
            "one the sidecar records. Keep the two files of one export together."
        )
    return sidecar
