"""Listing the globals a pickle names, from its bytes alone: nothing is unpickled.

A fastai ``export.pkl`` is a ``torch.save`` zip archive whose ``data.pkl`` is a Python pickle
(protocol 2, written by cloudpickle). :func:`pickle_streams` finds the pickle streams in a model
file's bytes and :func:`scan_pickle_bytes` lists the globals one stream names, by walking its
opcodes with :mod:`pickletools`. Whether a name is allowed is :mod:`asl_eval.trust.policy`'s job.

Imports only the standard library and :mod:`asl_eval.errors`: no torch, no fastai (an
import-linter contract keeps it so), so the scan cannot be subverted by the code it inspects.
"""

from __future__ import annotations

import _compat_pickle
import io
import pickletools
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field

from asl_eval.errors import PickleFormatError

__all__ = ["PickleGlobal", "normalize_global", "pickle_streams", "scan_pickle_bytes"]


@dataclass(frozen=True)
class PickleGlobal:
    """One global a pickle stream names: the module, the (possibly dotted) name, and the opcode."""

    module: str
    name: str
    opcode: str

    @property
    def dotted(self) -> str:
        """``module.name``."""
        return f"{self.module}.{self.name}"


_STRING_OPS = frozenset(
    {"SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE", "SHORT_BINSTRING", "BINSTRING"}
)
_MEMO_GET_OPS = frozenset({"GET", "BINGET", "LONG_BINGET"})
_MEMO_PUT_OPS = frozenset({"PUT", "BINPUT", "LONG_BINPUT"})
_EXTENSION_OPS = frozenset({"EXT1", "EXT2", "EXT4"})
_UNKNOWN = object()


def normalize_global(module: str, name: str) -> tuple[str, str]:
    """Map Python 2 names (protocol 2 pickles say ``__builtin__``) to Python 3 ones.

    This is the mapping ``pickle.Unpickler`` applies with ``fix_imports=True``.

    >>> normalize_global("__builtin__", "getattr")
    ('builtins', 'getattr')
    >>> normalize_global("__builtin__", "reduce")
    ('functools', 'reduce')
    >>> normalize_global("fastai.learner", "Learner")
    ('fastai.learner', 'Learner')
    """
    if (module, name) in _compat_pickle.NAME_MAPPING:
        return _compat_pickle.NAME_MAPPING[(module, name)]
    return _compat_pickle.IMPORT_MAPPING.get(module, module), name


@dataclass
class _GlobalTracker:
    """Follows just enough of the pickle machine (string pushes and the memo) to name the
    module and attribute of every ``STACK_GLOBAL``; everything else pushes an unknown value."""

    found: list[PickleGlobal] = field(default_factory=list)
    stack: list[object] = field(default_factory=list)
    memo: dict[int, object] = field(default_factory=dict)

    def step(self, name: str, arg: object) -> None:
        """Account for one opcode ``name`` with its argument."""
        if name in _STRING_OPS:
            self.stack.append(arg)
        elif name in _MEMO_GET_OPS:
            self.stack.append(self.memo.get(int(arg), _UNKNOWN))  # type: ignore[call-overload]
        elif name in _MEMO_PUT_OPS:
            self.memo[int(arg)] = self._top()  # type: ignore[call-overload]
        elif name == "MEMOIZE":
            self.memo[len(self.memo)] = self._top()
        elif name in ("GLOBAL", "INST"):
            module, _, attribute = str(arg).partition(" ")
            self._found(*normalize_global(module, attribute), name)
        elif name == "STACK_GLOBAL":
            top = self.stack.pop() if self.stack else _UNKNOWN
            below = self.stack.pop() if self.stack else _UNKNOWN
            if isinstance(below, str) and isinstance(top, str):
                self._found(*normalize_global(below, top), name)
            else:
                self._found("<computed>", "<computed>", name)
        elif name in _EXTENSION_OPS:
            self._found("<extension registry>", str(arg), name)
        else:
            # Any other opcode: what it leaves on the stack is not a literal string.
            self.stack.append(_UNKNOWN)

    def _top(self) -> object:
        return self.stack[-1] if self.stack else _UNKNOWN

    def _found(self, module: str, name: str, opcode: str) -> None:
        self.found.append(PickleGlobal(module, name, opcode))
        self.stack.append(_UNKNOWN)


def scan_pickle_bytes(data: bytes) -> tuple[list[PickleGlobal], int]:
    """The globals one pickle stream names, without unpickling it, and where the stream ended.

    ``GLOBAL`` and ``INST`` carry their names; for ``STACK_GLOBAL`` the two preceding pushes
    must be literal strings (or memo references to them), as every pickler writes them;
    anything else is reported as the global ``<computed>.<computed>``, which no policy allows.
    Extension-registry opcodes are reported the same way.

    Raises
    ------
    PickleFormatError
        If ``data`` does not start with a pickle opcode, or ends before ``STOP``.

    >>> import pickle, collections
    >>> found, end = scan_pickle_bytes(pickle.dumps(collections.OrderedDict(a=1), protocol=4))
    >>> [g.dotted for g in found]
    ['collections.OrderedDict']
    """
    tracker = _GlobalTracker()
    end = 0
    n_ops = 0
    try:
        for opcode, arg, position in pickletools.genops(io.BytesIO(data)):
            n_ops += 1
            end = (position or 0) + 1
            if opcode.name == "STOP":
                break
            tracker.step(opcode.name, arg)
    except ValueError as error:
        if n_ops <= 1:
            raise PickleFormatError(f"not a pickle ({error})", truncated=False) from error
        raise PickleFormatError(f"pickle ends early ({error})", truncated=True) from error
    if n_ops == 0:
        raise PickleFormatError("empty file", truncated=False)
    return tracker.found, end


def _zip_streams(raw: bytes) -> Iterator[tuple[str, bytes]]:
    """Every ``.pkl`` member of a zip archive (``torch.save``'s format)."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(raw))
        names = [n for n in archive.namelist() if n.endswith(".pkl")]
        if not names:
            raise PickleFormatError("a zip archive with no pickle in it", truncated=False)
        for member in names:
            yield member, archive.read(member)
    except (zipfile.BadZipFile, EOFError, OSError) as error:
        raise PickleFormatError(
            f"a zip archive that is truncated or corrupt ({error})", truncated=True
        ) from error


def pickle_streams(raw: bytes) -> Iterator[tuple[str, bytes]]:
    """The pickle streams inside a model file's bytes, named by where they come from.

    A zip archive (``torch.save``'s format, which fastai's ``Learner.export`` uses) yields every
    member whose name ends in ``.pkl``. Anything else is treated as back-to-back pickles (a plain
    pickle, or torch's legacy format, whose raw tensor bytes after the last pickle are skipped).

    Raises
    ------
    PickleFormatError
        If a zip archive is corrupt or truncated, or the bytes are not a pickle.
    """
    if raw[:2] == b"PK":
        yield from _zip_streams(raw)
        return
    if raw[:1] != b"\x80":
        raise PickleFormatError(
            "neither a zip archive (torch.save's format) nor a pickle of protocol 2 or later",
            truncated=False,
        )
    offset = 0
    index = 0
    # torch's legacy format: magic number, protocol, sys info, object, storage keys; raw bytes.
    while offset < len(raw) and index < 5:
        _, length = scan_pickle_bytes(raw[offset:])
        yield f"pickle #{index + 1}", raw[offset : offset + length]
        offset += length
        index += 1
        if offset >= len(raw) or raw[offset : offset + 1] != b"\x80":
            break
