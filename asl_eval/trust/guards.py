"""A pure-Python pickle machine whose every call, ``BUILD`` and item insertion is checked first.

:class:`GuardedUnpickler` subclasses :class:`pickle._Unpickler` (the standard library's Python
implementation) and replaces the ``dispatch`` entries of the opcodes that run code or mutate
objects: ``REDUCE``, ``NEWOBJ``, ``NEWOBJ_EX``, ``INST`` and ``OBJ`` (calls), ``BUILD``
(``__setstate__`` or ``__dict__`` updates), ``APPEND(S)``, ``SETITEM(S)`` and ``ADDITEMS``
(methods of the target), ``EXT1/2/4`` (the copyreg extension registry, always refused), and the
ones that allocate (``MARK``, the memo opcodes, ``FRAME``, every read). Before each it calls a
hook (:meth:`GuardedUnpickler.check_call`, :meth:`~GuardedUnpickler.check_build`,
:meth:`~GuardedUnpickler.check_extend`); the base class refuses every call and every state,
and :class:`asl_eval.trust.unpickler.RestrictedUnpickler` allows what the allowlist says.

Objects that a name resolved to are *granted* (:meth:`GuardedUnpickler.grant`) and tracked by
identity, so a hook knows whether a callable came from ``find_class`` or from anywhere else.
The persistent-load function torch installs (``unpickler.persistent_load = ...``) is wrapped so
that every storage it returns is checked against the file first
(:func:`asl_eval.trust.caps.check_storage_id`).

Imports the standard library, :mod:`asl_eval.errors` and :mod:`asl_eval.trust.caps`.
"""

from __future__ import annotations

import pickle
import struct
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from asl_eval.errors import UnsafeModelError
from asl_eval.trust.caps import Caps, ResourceLimitError, StorageBudget, check_storage_id

__all__ = ["MAX_READ", "GuardedUnpickler"]

_Python: Any = pickle._Unpickler

MAX_READ = 1 << 26
"""The longest single string, bytes object or frame a model file may hold (64 MiB)."""


class GuardedUnpickler(_Python):
    """The standard library's Python unpickler with a check before every effect.

    ``caps`` bounds the machine; ``storage_budget`` (set per file by the loader) bounds the
    storages torch's persistent load reads.
    """

    caps: ClassVar[Caps] = Caps()
    storage_budget: ClassVar[StorageBudget | None] = None
    dispatch: ClassVar[dict[int, Callable[[Any], None]]] = dict(_Python.dispatch)

    def __init__(self, file: Any, **kwargs: Any) -> None:
        super().__init__(file, **kwargs)
        self._granted: dict[int, tuple[object, str]] = {}
        self._names: dict[int, str] = {}
        self._persistent: Callable[[object], object] | None = None

    # ------------------------------------------------------------------ granted objects

    def grant(self, value: object, name: str) -> object:
        """Record that ``value`` is what the allowed name ``name`` resolved to."""
        self._granted[id(value)] = (value, name)  # kept alive, so the id stays unique
        self._names[id(value)] = name
        return value

    @property
    def granted(self) -> Mapping[int, str]:
        """``id(object) -> "module:qualname"`` of every granted object."""
        return self._names

    # ------------------------------------------------------------------ hooks

    def check_call(self, kind: str, func: object, args: tuple[object, ...], kwargs: dict) -> None:
        """Refuse ``func(*args, **kwargs)`` (``kind`` "call") or ``func.__new__`` ("new")."""
        raise UnsafeModelError("The model file calls an object; this unpickler allows no calls.")

    def after_call(self, func: object, result: object) -> object:
        """What a call returned, before it goes on the stack."""
        return result

    def check_build(self, instance: object, state: object) -> None:
        """Refuse setting ``state`` on ``instance``."""
        raise UnsafeModelError("The model file sets object state; this unpickler allows none.")

    def check_extend(self, target: object, opcode: str) -> None:
        """Refuse adding items to anything but a list, dict or set."""
        if type(target) not in (list, dict, set):
            raise UnsafeModelError(
                f"The model file adds items ({opcode}) to a {type(target).__qualname__}."
            )

    # ------------------------------------------------------------------ persistent load

    @property
    def persistent_load(self) -> Callable[[object], object]:
        """torch's persistent load, behind :func:`~asl_eval.trust.caps.check_storage_id`."""
        return self._checked_persistent_load

    @persistent_load.setter
    def persistent_load(self, function: Callable[[object], object]) -> None:
        self._persistent = function

    def _checked_persistent_load(self, saved_id: object) -> object:
        if self._persistent is None:
            raise pickle.UnpicklingError("unsupported persistent id encountered")
        if self.storage_budget is None:
            raise UnsafeModelError(
                "The model file references tensor storages, but the file they would be read "
                "from is unknown here; load it with asl_eval.trust.load_learner_file."
            )
        check_storage_id(saved_id, self.storage_budget)
        return self._persistent(saved_id)

    # ------------------------------------------------------------------ the machine

    def _capped_read(self, n: int = -1) -> bytes:
        if n < 0 or n > MAX_READ:
            raise ResourceLimitError(
                f"The model file holds a string, bytes object or frame of {n} bytes; "
                f"at most {MAX_READ} are allowed."
            )
        data: bytes = self._unframer.read(n)
        return data

    def load(self) -> Any:
        """``pickle._Unpickler.load`` with the opcode and stack caps."""
        if not hasattr(self, "_file_read"):
            raise pickle.UnpicklingError("Unpickler.__init__() was not called")
        self._unframer = pickle._Unframer(self._file_read, self._file_readline)  # type: ignore[attr-defined]
        self.read = self._capped_read
        self.readinto = self._unframer.readinto
        self.readline = self._unframer.readline
        self.metastack: list[list[Any]] = []
        self.stack: list[Any] = []
        self.append = self.stack.append
        self.proto = 0
        read, dispatch, caps = self.read, self.dispatch, self.caps
        count = 0
        try:
            while True:
                key = read(1)
                if not key:
                    raise EOFError
                count += 1
                if count > caps.max_opcodes or len(self.stack) > caps.max_stack:
                    raise ResourceLimitError(
                        f"The model file's pickle runs more than {caps.max_opcodes} opcodes or "
                        f"holds more than {caps.max_stack} items at once; refused."
                    )
                dispatch[key[0]](self)
        except pickle._Stop as stop:  # type: ignore[attr-defined]
            return stop.value

    def _call(self, kind: str, func: object, args: object, kwargs: object) -> object:
        if type(args) is not tuple or type(kwargs) is not dict:
            raise UnsafeModelError("The model file calls an object with malformed arguments.")
        self.check_call(kind, func, args, kwargs)
        target: Any = func
        new = kind == "new"
        result = target.__new__(target, *args, **kwargs) if new else target(*args, **kwargs)
        return self.after_call(func, result)

    def load_reduce(self) -> None:
        args = self.stack.pop()
        self.stack[-1] = self._call("call", self.stack[-1], args, {})

    def load_newobj(self) -> None:
        args = self.stack.pop()
        cls = self.stack.pop()
        self.append(self._call("new", cls, args, {}))

    def load_newobj_ex(self) -> None:
        kwargs = self.stack.pop()
        args = self.stack.pop()
        cls = self.stack.pop()
        self.append(self._call("new", cls, args, kwargs))

    def _instantiate(self, klass: object, args: list[object]) -> None:
        """``INST`` and ``OBJ``: ``klass(*args)``, or ``klass.__new__`` without arguments."""
        plain_new = not args and isinstance(klass, type) and "__getinitargs__" not in dir(klass)
        self.append(self._call("new" if plain_new else "call", klass, tuple(args), {}))

    def load_build(self) -> None:
        self.check_build(self.stack[-2], self.stack[-1])
        _Python.load_build(self)

    def refuse_extension(self) -> None:
        """``EXT1``/``EXT2``/``EXT4``: always refused."""
        raise UnsafeModelError(
            "The model file names an object through copyreg's extension registry (EXT1/2/4), "
            "which asl-eval does not allow."
        )

    def load_frame(self) -> None:
        (size,) = struct.unpack("<Q", self._unframer.read(8))
        if size > MAX_READ:
            raise ResourceLimitError(f"The model file's pickle has a frame of {size} bytes.")
        self._unframer.load_frame(size)

    def load_mark(self) -> None:
        if len(self.metastack) >= self.caps.max_marks:
            raise ResourceLimitError(
                f"The model file's pickle nests deeper than {self.caps.max_marks} levels."
            )
        _Python.load_mark(self)

    def check_memo(self) -> None:
        """Refuse a memo entry beyond the cap."""
        if len(self.memo) >= self.caps.max_memo:
            raise ResourceLimitError(
                f"The model file's pickle keeps more than {self.caps.max_memo} memo entries."
            )


def _extending(opcode: str, target: Callable[[Any], object]) -> Callable[[Any], None]:
    original = _Python.dispatch[getattr(pickle, opcode)[0]]

    def load(self: GuardedUnpickler) -> None:
        self.check_extend(target(self), opcode)
        original(self)

    return load


def _memoizing(opcode: str) -> Callable[[Any], None]:
    original = _Python.dispatch[getattr(pickle, opcode)[0]]

    def load(self: GuardedUnpickler) -> None:
        self.check_memo()
        original(self)

    return load


_DISPATCH = GuardedUnpickler.dispatch
_DISPATCH[pickle.REDUCE[0]] = GuardedUnpickler.load_reduce
_DISPATCH[pickle.NEWOBJ[0]] = GuardedUnpickler.load_newobj
_DISPATCH[pickle.NEWOBJ_EX[0]] = GuardedUnpickler.load_newobj_ex
_DISPATCH[pickle.BUILD[0]] = GuardedUnpickler.load_build
_DISPATCH[pickle.FRAME[0]] = GuardedUnpickler.load_frame
_DISPATCH[pickle.MARK[0]] = GuardedUnpickler.load_mark
for _opcode in ("EXT1", "EXT2", "EXT4"):
    _DISPATCH[getattr(pickle, _opcode)[0]] = GuardedUnpickler.refuse_extension
for _opcode in ("PUT", "BINPUT", "LONG_BINPUT", "MEMOIZE"):
    _DISPATCH[getattr(pickle, _opcode)[0]] = _memoizing(_opcode)
_DISPATCH[pickle.APPEND[0]] = _extending("APPEND", lambda u: u.stack[-2])
_DISPATCH[pickle.SETITEM[0]] = _extending("SETITEM", lambda u: u.stack[-3])
for _opcode in ("APPENDS", "SETITEMS", "ADDITEMS"):
    _DISPATCH[getattr(pickle, _opcode)[0]] = _extending(_opcode, lambda u: u.metastack[-1][-1])
