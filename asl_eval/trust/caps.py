"""Resource caps: what a model file may make the unpickler allocate, checked before it does.

:class:`Caps` bounds the pickle machine itself (opcodes, memo entries, nesting of ``MARK``,
stack length). :func:`check_storage_id` bounds every tensor storage torch's persistent load
would read or allocate by the size of its record in the zip archive (or of the whole file, in
torch's legacy format); :func:`check_tensor_extent` checks that a tensor rebuilt over a
storage stays inside it (offset plus the extent of its size and stride). Numpy arrays are not
on the allowlist at all, so no array is ever allocated from a size in the file.

Imports the standard library and :mod:`asl_eval.errors` only; torch objects are read through
their attributes (``dtype.itemsize``, ``storage.size()``), never imported here.
"""

from __future__ import annotations

import io
import math
import warnings
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from asl_eval.errors import UnsafeModelError

__all__ = [
    "Caps",
    "ResourceLimitError",
    "check_storage_id",
    "check_tensor_extent",
    "storage_budget",
]


class ResourceLimitError(UnsafeModelError):
    """The file asks for more memory, time or nesting than a model file needs."""


@dataclass(frozen=True)
class Caps:
    """Limits of the pickle machine.

    The defaults are far above what real exports need (``scripts/generate_allowlist.py``
    records their largest value in ``allowlist.json``: a resnet50 export runs about 45,000
    opcodes) and far below what would take more than a few seconds or a few hundred MB.
    """

    max_opcodes: int = 1_000_000
    max_memo: int = 500_000
    max_marks: int = 200
    max_stack: int = 1_000_000
    max_reduce_items: int = 64


@dataclass(frozen=True)
class StorageBudget:
    """How many bytes each storage record of a file holds (``None``: one bound for all)."""

    records: Mapping[str, int] | None
    file_size: int

    def limit(self, key: str) -> int:
        """The most bytes the storage ``key`` may have."""
        if self.records is None:
            return self.file_size
        return self.records.get(key, -1)


def storage_budget(path: Path) -> StorageBudget:
    """The byte size of every ``data/<key>`` record of a torch zip archive, or of the file."""
    size = path.stat().st_size
    with path.open("rb") as handle:
        if handle.read(2) != b"PK":
            return StorageBudget(None, size)
    try:
        with zipfile.ZipFile(path) as archive:
            records = {}
            for info in archive.infolist():
                parts = info.filename.split("/")
                if len(parts) >= 3 and parts[-2] == "data":
                    # torch.save stores records uncompressed; a compressed one could declare
                    # an uncompressed size far beyond what the file holds, so it gets none.
                    stored = info.compress_type == zipfile.ZIP_STORED
                    records[parts[-1]] = info.file_size if stored else -1
    except (zipfile.BadZipFile, OSError, EOFError, io.UnsupportedOperation):
        return StorageBudget({}, size)
    return StorageBudget(records, size)


def _itemsize(storage_type: object) -> int | None:
    dtype = getattr(storage_type, "dtype", None)
    if dtype is None and getattr(storage_type, "__name__", "") == "UntypedStorage":
        return 1
    itemsize = getattr(dtype, "itemsize", None)
    return itemsize if isinstance(itemsize, int) and itemsize > 0 else None


def check_storage_id(saved_id: object, budget: StorageBudget) -> None:
    """Refuse a persistent id whose storage would be larger than the bytes behind it.

    torch's zip format: ``("storage", type, key, location, numel)``; its legacy format adds a
    view description. The storage ``key`` must be a record of the archive whose size holds
    ``numel`` elements.
    """
    if not isinstance(saved_id, tuple) or len(saved_id) not in (5, 6):
        raise UnsafeModelError(f"The model file has a malformed tensor reference {saved_id!r}.")
    kind, storage_type, storage_key, location, numel = saved_id[:5]
    if kind not in ("storage", b"storage") or not isinstance(storage_key, str | bytes):
        raise UnsafeModelError("The model file references something other than a tensor storage.")
    if not isinstance(location, str | bytes) or type(numel) is not int or numel < 0:
        raise UnsafeModelError("The model file has a malformed tensor storage reference.")
    itemsize = _itemsize(storage_type)
    if itemsize is None:
        raise UnsafeModelError(f"The model file names an unknown storage type {storage_type!r}.")
    name = storage_key.decode("ascii", "replace") if isinstance(storage_key, bytes) else storage_key
    limit = budget.limit(name)
    if limit < 0:
        raise ResourceLimitError(f"The model file references a storage {name!r} it does not hold.")
    if numel * itemsize > limit:
        raise ResourceLimitError(
            f"The model file declares a tensor storage of {numel} elements ({numel * itemsize} "
            f"bytes), but its data holds only {limit} bytes; refused before allocating it."
        )


def _ints(value: object) -> tuple[int, ...] | None:
    if isinstance(value, tuple) and all(type(item) is int for item in value):
        return value
    return None


def _element_count(storage: object) -> int | None:
    """The number of elements of a torch storage (TypedStorage.size without its warning)."""
    size = getattr(storage, "_size", None) or getattr(storage, "size", None)
    if not callable(size):
        return None
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="TypedStorage is deprecated")
        count = size()
    return count if type(count) is int else None


MAX_EXPANDED_ELEMENTS = 1 << 24
"""The most elements a view may have beyond its storage's own (16 Mi elements, 64 MB of
float32): real exports repeat a handful of statistics; a bomb repeats one element 2**33 times."""


def check_tensor_extent(storage: object, offset: object, size: object, stride: object) -> None:
    """Refuse a tensor view that would reach outside its storage.

    The last element a view touches is ``offset + sum((size_i - 1) * stride_i)``; it must lie
    inside the storage's elements. An empty view (a size of 0) touches nothing.
    """
    sizes, strides = _ints(size), _ints(stride)
    if sizes is None or strides is None or len(sizes) != len(strides) or type(offset) is not int:
        raise UnsafeModelError("The model file rebuilds a tensor with a malformed size or stride.")
    if offset < 0 or any(item < 0 for item in sizes) or any(item < 0 for item in strides):
        raise UnsafeModelError("The model file rebuilds a tensor with a negative size or stride.")
    count = _element_count(storage)
    if type(count) is not int:
        raise UnsafeModelError("The model file rebuilds a tensor over something not a storage.")
    if 0 in sizes:
        return
    last = offset + sum((n - 1) * s for n, s in zip(sizes, strides, strict=True))
    if last >= count:
        raise ResourceLimitError(
            f"The model file rebuilds a tensor of size {sizes} reaching element {last} of a "
            f"storage of {count} elements; refused."
        )
    # A view may repeat elements (stride 0: fastai stores broadcast statistics that way), but
    # the first copy of such a tensor allocates every logical element, so a view larger than
    # its storage is bounded too.
    if math.prod(sizes) > max(count, MAX_EXPANDED_ELEMENTS):
        raise ResourceLimitError(
            f"The model file rebuilds a tensor of size {sizes} over a storage of {count} "
            "elements; refused."
        )
