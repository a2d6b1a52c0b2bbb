"""Fuzzing the safe format's sidecar: whatever JSON value replaces a field, whatever key is
added or removed, whatever bytes are spliced into the text, loading either succeeds or fails
with a ModelLoadError, never another exception (issue 12)."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from asl_eval.errors import ModelLoadError
from asl_eval.trust import load_safe
from asl_eval.trust.sidecar import content_sha256

SETTINGS = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)


def _paths(value: object, prefix: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    """Every place in a JSON document (object keys and array indices), depth first."""
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, child in value.items():
            found += _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value[:3]):  # the first classes stand for all of them
            found += _paths(child, (*prefix, index))
    return found


@pytest.fixture(scope="module")
def fuzz_pair(tiny_safe_pair, tmp_path_factory):  # type: ignore[no-untyped-def]
    folder = tmp_path_factory.mktemp("fuzz")
    weights = folder / "model.safetensors"
    weights.symlink_to(tiny_safe_pair[0])
    original = json.loads(tiny_safe_pair[1].read_text())
    return weights, folder / "model.json", original


def _load(weights: Path) -> None:
    with contextlib.suppress(ModelLoadError):  # any other exception fails the test
        load_safe(weights)


def _parent(record: dict, path: tuple[object, ...]) -> object:  # type: ignore[type-arg]
    target: object = record
    for key in path[:-1]:
        target = target[key]  # type: ignore[index]
    return target


@SETTINGS
@given(data=st.data(), value=JSON_VALUES, rehash=st.booleans())
def test_any_value_in_any_field_is_a_clear_error(fuzz_pair, data, value, rehash: bool) -> None:  # type: ignore[no-untyped-def]
    weights, sidecar, original = fuzz_pair
    record = json.loads(json.dumps(original))
    path = data.draw(st.sampled_from(_paths(record)), label="path")
    operation = data.draw(st.sampled_from(["replace", "delete", "add"]), label="operation")
    parent = _parent(record, path)
    if operation == "replace":
        parent[path[-1]] = value  # type: ignore[index]
    elif operation == "delete":
        parent.pop(path[-1])  # type: ignore[union-attr]
    elif isinstance(parent, dict):
        parent[data.draw(st.text(max_size=10), label="key")] = value
    if rehash:
        record["content_sha256"] = content_sha256(record)
    sidecar.write_text(json.dumps(record))
    _load(weights)


@SETTINGS
@given(data=st.data(), splice=st.text(max_size=40))
def test_any_text_spliced_into_the_sidecar_is_a_clear_error(fuzz_pair, data, splice: str) -> None:  # type: ignore[no-untyped-def]
    weights, sidecar, original = fuzz_pair
    text = json.dumps(original)
    start = data.draw(st.integers(0, len(text)), label="start")
    end = data.draw(st.integers(start, min(len(text), start + 40)), label="end")
    sidecar.write_text(text[:start] + splice + text[end:])
    _load(weights)
