"""The exact allowlist: every name real fastai exports contain, and how each may be called.

``allowlist.json`` (package data next to this module) is written by
``scripts/generate_allowlist.py`` from real exports (fastai's ``vision_learner`` on resnet and
xresnet, its standard transforms, losses and metrics, and asl-eval's own training). For each
``module:qualname`` it records what the exports do with it:

- ``call``: how the object was called by ``REDUCE`` (``obj(*args)``), by arity, with the
  *shape token* of every argument (:func:`value_token`) and, for a few positions, the exact
  values seen;
- ``new``: the same for ``NEWOBJ`` (``cls.__new__(cls, *args)``);
- ``build``: the shape of the state ``BUILD`` gave an instance of the class;
- ``extend``: whether the class received ``APPEND``/``SETITEMS``-style items.

An entry with neither ``call`` nor ``new`` can be named but never called. :data:`HAND_LISTED`
adds the few entries that cannot come from a generated export, each with why.

Imports the standard library only (no torch, no fastai): the policy reads this module.
"""

from __future__ import annotations

import functools
import json
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

__all__ = [
    "HAND_LISTED",
    "PLAIN_SCALARS",
    "Allowlist",
    "Entry",
    "Position",
    "Signature",
    "describe_token",
    "key",
    "load_allowlist",
    "value_token",
]

PLAIN_SCALARS: tuple[type, ...] = (type(None), bool, int, float, complex, str, bytes, bytearray)
"""Scalar types whose values are data, never code."""

_CONTAINERS: tuple[type, ...] = (tuple, list, dict, set, frozenset, OrderedDict)
_PLAIN_BUDGET = 200_000
"""How many items :func:`value_token` inspects to call a container plain."""


def key(module: str, qualname: str) -> str:
    """The allowlist key of ``module.qualname``.

    >>> key("torch._utils", "_rebuild_tensor_v2")
    'torch._utils:_rebuild_tensor_v2'
    """
    return f"{module}:{qualname}"


def _is_plain(value: object, budget: list[int]) -> bool:
    """Whether ``value`` is scalars and containers of scalars only (within ``budget`` items)."""
    budget[0] -= 1
    if budget[0] < 0:
        return False
    kind = type(value)
    if kind in PLAIN_SCALARS:
        return True
    if kind in (dict, OrderedDict):
        return all(
            _is_plain(k, budget) and _is_plain(v, budget)
            for k, v in value.items()  # type: ignore[attr-defined]
        )
    if kind in (tuple, list, set, frozenset):
        return all(_is_plain(item, budget) for item in value)  # type: ignore[attr-defined]
    return False


def value_token(value: object, granted: Mapping[int, str], budget: list[int] | None = None) -> str:
    """The shape of one argument, as the allowlist records it.

    An object a name resolved to while loading is ``global:module:qualname``; a scalar is its
    type's name; a container is its type's name, with ``*`` when it holds anything but plain
    data; any other object is ``object:module:qualname`` of its type.

    >>> value_token(3, {}), value_token((1, "a"), {}), value_token((1, print), {})
    ('int', 'tuple', 'tuple*')
    >>> value_token(print, {id(print): "builtins:print"})
    'global:builtins:print'
    """
    name = granted.get(id(value))
    if name is not None:
        return f"global:{name}"
    kind = type(value)
    if kind in PLAIN_SCALARS:
        return "none" if value is None else kind.__name__
    if kind in _CONTAINERS:
        local = [_PLAIN_BUDGET]
        plain = _is_plain(value, local)
        if budget is not None:  # one load's inspections share a budget (ResourceLimitError)
            budget[0] -= _PLAIN_BUDGET - local[0]
        label = "OrderedDict" if kind is OrderedDict else kind.__name__
        return label if plain else f"{label}*"
    return f"object:{kind.__module__}:{kind.__qualname__}"


def describe_token(token: str) -> str:
    """A shape token in words.

    >>> describe_token("global:pathlib:Path"), describe_token("object:re:Pattern")
    ('pathlib.Path', 'a re.Pattern')
    >>> describe_token("tuple*")
    'a tuple holding objects'
    """
    kind, _, rest = token.partition(":")
    if kind == "global":
        return rest.replace(":", ".")
    if kind == "object":
        return "a " + rest.replace(":", ".")
    if token.endswith("*"):
        return f"a {token[:-1]} holding objects"
    return "None" if token == "none" else f"a {token}"


@dataclass(frozen=True)
class Position:
    """What one argument may be: shape tokens, and optionally the exact values seen."""

    tokens: frozenset[str]
    values: tuple[object, ...] | None = None

    def refusal(self, value: object, token: str) -> str | None:
        """Why ``value`` (of shape ``token``) may not be passed here, or None."""
        if token not in self.tokens and f"{token}*" not in self.tokens:  # plain: a special case
            seen = sorted(describe_token(item) for item in self.tokens)
            return f"{describe_token(token)} where real exports pass {' or '.join(seen)}"
        if self.values is not None and value not in self.values:
            return f"the value {value!r}, which real exports never pass"
        return None


@dataclass(frozen=True)
class Signature:
    """The argument positions of one arity."""

    positions: tuple[Position, ...]


@dataclass(frozen=True)
class Entry:
    """One allowed ``module:qualname`` and what real exports do with it."""

    name: str
    kind: str
    call: Mapping[int, Signature] = field(default_factory=dict)
    new: Mapping[int, Signature] = field(default_factory=dict)
    build: frozenset[str] = frozenset()
    build_tuple: Mapping[int, Signature] = field(default_factory=dict)
    extend: bool = False
    varargs: Position | None = None
    """What each argument of a call of any arity may be (paths: one argument per part)."""
    why: str = ""


def _signatures(raw: Mapping[str, Any]) -> dict[int, Signature]:
    return {
        int(arity): Signature(
            tuple(
                Position(
                    frozenset(position["tokens"]),
                    tuple(position["values"]) if "values" in position else None,
                )
                for position in positions
            )
        )
        for arity, positions in raw.items()
    }


def _entry(name: str, raw: Mapping[str, Any]) -> Entry:
    return Entry(
        name=name,
        kind=str(raw.get("kind", "object")),
        call=_signatures(raw.get("call", {})),
        new=_signatures(raw.get("new", {})),
        build=frozenset(raw.get("build", [])),
        build_tuple=_signatures(raw.get("build_tuple", {})),
        extend=bool(raw.get("extend", False)),
        varargs=Position(frozenset(raw["varargs"]["tokens"])) if "varargs" in raw else None,
        why=str(raw.get("why", "")),
    )


_CLOUDPICKLE = ("cloudpickle.cloudpickle", "cloudpickle.cloudpickle_fast")

HAND_LISTED: dict[str, dict[str, Any]] = {
    # cloudpickle >= 3 writes cloudpickle.cloudpickle; files from cloudpickle 2 name the same
    # helpers under cloudpickle.cloudpickle_fast. Each resolves to asl-eval's inert stand-in
    # (asl_eval.trust.unpickler), never to cloudpickle itself.
    **{
        key(module, name): {"alias_of": key("cloudpickle.cloudpickle", name)}
        for module in _CLOUDPICKLE[1:]
        for name in ("_builtin_type", "_make_function", "_function_setstate", "subimport")
    },
    # A closure cell of an embedded function (cloudpickle writes one for a function with a
    # closure); the stand-in returns an inert placeholder.
    **{
        key(module, name): {
            "kind": "function",
            "call": {"0": [], "1": [{"tokens": ["none", "int", "str", "float", "bool"]}]},
            "why": "closure cells of embedded functions; replaced by an inert placeholder",
        }
        for module in _CLOUDPICKLE
        for name in ("_make_empty_cell", "_make_cell")
    },
    # torch.save(model.state_dict()) gives the OrderedDict its _metadata as instance state.
    # Not in a learner, but allowed so that such a file is reported as "a bare state dict"
    # (with how to proceed) rather than refused as hostile. Merged into the generated entry.
    key("collections", "OrderedDict"): {
        "merge": True,
        "build": ["dict"],
        "why": "bare state dicts carry _metadata as OrderedDict state",
    },
}
"""Entries that no generated export contains but loading needs, with why."""


_NEVER_IN_STATE = frozenset(
    {
        "__class__",
        "__dict__",
        "__call__",
        "__getattr__",
        "__getattribute__",
        "__setstate__",
        "__reduce__",
        "__reduce_ex__",
        "__init__",
        "__new__",
        "__del__",
        "__globals__",
        "__code__",
    }
)
"""Dunder names no state may set, whatever an allowlist file says."""


@dataclass(frozen=True)
class Allowlist:
    """The parsed ``allowlist.json`` plus :data:`HAND_LISTED`."""

    entries: Mapping[str, Entry]
    generated_with: Mapping[str, Any]
    state_dunders: frozenset[str]
    """Dunder attribute names real exports keep in instance state (``__signature__``)."""

    def get(self, module: str, qualname: str) -> Entry | None:
        """The entry of ``module.qualname``, or None when it is not allowed."""
        return self.entries.get(key(module, qualname))


def _parse(document: Mapping[str, Any]) -> Allowlist:
    raw: dict[str, Any] = dict(document["entries"])
    for name, hand in HAND_LISTED.items():
        alias = hand.get("alias_of")
        if alias is not None:
            if alias in raw:
                raw[name] = {**raw[alias], "why": f"older cloudpickle's name of {alias}"}
        elif hand.get("merge") and name in raw:
            merged = dict(raw[name])
            merged["build"] = sorted(set(merged.get("build", [])) | set(hand["build"]))
            raw[name] = {**merged, "why": hand["why"]}
        else:
            raw.setdefault(name, hand)
    entries = {name: _entry(name, value) for name, value in raw.items()}
    return Allowlist(
        entries,
        dict(document.get("generated_with", {})),
        frozenset(document.get("state_dunders", [])) - _NEVER_IN_STATE,
    )


@functools.cache
def load_allowlist() -> Allowlist:
    """The allowlist shipped with asl-eval (read once per process)."""
    text = resources.files("asl_eval.trust").joinpath("allowlist.json").read_text("utf-8")
    return _parse(json.loads(text))
