"""The predictions cache and the content hashes recorded by the inference loop.

Real tiny fastai model, real files. Engine calls are counted by wrapping the engine object (not
by mocking fastai): a hit must not reach the engine, a miss must.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from asl_eval.errors import UnreadableImage
from asl_eval.inference import (
    LazyModel,
    PredictionCache,
    make_engine,
    model_key,
    predict_folder,
)
from asl_eval.inference.decode import decode_file
from asl_eval.inputs import load_rgb

CHUNK = 8


class CountingEngine:
    """An engine that counts the images it is asked to predict."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.name = inner.name
        self.classes = inner.classes
        self.n_predicted = 0

    def describe(self) -> dict[str, Any]:
        return self.inner.describe()

    def predict(self, images: Sequence[Image.Image]) -> np.ndarray:
        self.n_predicted += len(images)
        return self.inner.predict(images)


@pytest.fixture(autouse=True)
def _own_cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASL_EVAL_CACHE_DIR", str(tmp_path / "default-cache"))


@pytest.fixture
def folder(tiny_data, tmp_path: Path) -> Path:  # type: ignore[no-untyped-def]
    """A copy of the tiny OOD test folder (87 images, 11 chunks of 8) that a test may edit."""
    copy = tmp_path / "test"
    shutil.copytree(tiny_data.ood_test, copy)
    return copy


@pytest.fixture
def cache(tiny_model, tmp_path: Path) -> PredictionCache:  # type: ignore[no-untyped-def]
    return PredictionCache(tmp_path / "cache", tiny_model.path)


@pytest.fixture(scope="module")
def filled(tiny_model, tiny_learner, tiny_data, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """A folder predicted once into a cache: (folder, cache root, predictions)."""
    root = tmp_path_factory.mktemp("filled")
    shutil.copytree(tiny_data.ood_test, root / "test")
    cache = PredictionCache(root / "cache", tiny_model.path)
    predictions = predict_folder(tiny_learner, root / "test", chunk_size=CHUNK, cache=cache)
    return root / "test", root / "cache", predictions


@pytest.fixture
def filled_copy(filled, tiny_model, tmp_path: Path):  # type: ignore[no-untyped-def]
    """A private copy of the filled cache: (folder, cache, predictions)."""
    folder, root, predictions = filled
    shutil.copytree(root, tmp_path / "cache-copy")
    return folder, PredictionCache(tmp_path / "cache-copy", tiny_model.path), predictions


def _engine(tiny_learner, **options: Any) -> CountingEngine:  # type: ignore[no-untyped-def]
    return CountingEngine(make_engine(tiny_learner, "fastai", **options))


def _chunk_files(cache: PredictionCache, suffix: str) -> list[Path]:
    files = sorted((cache.root / "v1" / "runs").glob(f"*/*{suffix}"))
    return [f for f in files if f.name != "key.json"]


def test_hashes_and_relative_paths_match_hashlib(tiny_learner, folder: Path) -> None:  # type: ignore[no-untyped-def]
    predictions = predict_folder(tiny_learner, folder, chunk_size=CHUNK)
    assert predictions.n_images == 87
    for path, relpath, digest in zip(
        predictions.paths, predictions.relpaths, predictions.sha256, strict=True
    ):
        assert (folder / relpath).resolve() == Path(path).resolve()
        assert relpath == Path(path).relative_to(folder).as_posix()
        assert digest == hashlib.sha256(Path(path).read_bytes()).hexdigest()


def test_second_run_is_all_hits_with_identical_numbers(  # type: ignore[no-untyped-def]
    tiny_learner, folder: Path, cache: PredictionCache
) -> None:
    uncached = predict_folder(tiny_learner, folder, chunk_size=CHUNK)
    first, second = _engine(tiny_learner), _engine(tiny_learner)
    cold = predict_folder(first, folder, chunk_size=CHUNK, cache=cache)
    warm = predict_folder(second, folder, chunk_size=CHUNK, cache=cache)
    assert first.n_predicted == 87
    assert second.n_predicted == 0
    assert len(_chunk_files(cache, ".npz")) == 11  # ceil(87 / 8), each stored as it finished
    assert np.array_equal(cold.y_proba, uncached.y_proba)  # same chunks, same floats
    assert np.array_equal(warm.y_proba, cold.y_proba)
    assert warm.sha256 == cold.sha256 and warm.paths == cold.paths
    assert warm.ledger.summary() == cold.ledger.summary()


def test_another_batch_size_is_cached_apart(tiny_learner, filled_copy) -> None:  # type: ignore[no-untyped-def]
    """The batch size can move the last float32 digits, so the engine's description (the
    cache's key) names it: the default batch finds the filled cache, another batch does not."""
    folder, cache, before = filled_copy
    default, other = _engine(tiny_learner), _engine(tiny_learner, batch_size=16)
    again = predict_folder(default, folder, chunk_size=CHUNK, cache=cache)
    assert default.n_predicted == 0 and np.array_equal(again.y_proba, before.y_proba)
    predict_folder(other, folder, chunk_size=CHUNK, cache=cache)
    assert other.n_predicted == 87


def test_changed_image_is_predicted_again_unchanged_ones_are_not(  # type: ignore[no-untyped-def]
    tiny_learner, folder: Path, cache: PredictionCache
) -> None:
    before = predict_folder(_engine(tiny_learner), folder, chunk_size=CHUNK, cache=cache)
    changed = folder / "B" / "B0002_test.jpg"
    Image.new("RGB", (32, 32), (200, 10, 10)).save(changed, format="JPEG")
    engine = _engine(tiny_learner)
    after = predict_folder(engine, folder, chunk_size=CHUNK, cache=cache)
    assert engine.n_predicted == 1
    row = after.paths.index(str(changed))
    assert after.sha256[row] == hashlib.sha256(changed.read_bytes()).hexdigest()
    assert after.sha256[row] != before.sha256[row]
    expected = make_engine(tiny_learner, "fastai").predict([load_rgb(changed)])[0]
    np.testing.assert_allclose(after.y_proba[row], expected, atol=1e-6)
    others = [i for i in range(after.n_images) if i != row]
    assert np.array_equal(after.y_proba[others], before.y_proba[others])


def test_chunk_whose_bytes_changed_is_refused(  # type: ignore[no-untyped-def]
    tiny_learner, filled_copy, caplog: pytest.LogCaptureFixture
) -> None:
    folder, cache, before = filled_copy
    chunk = _chunk_files(cache, ".npz")[0]
    n_rows = len(json.loads(chunk.with_suffix(".json").read_text())["sha256"])
    data = bytearray(chunk.read_bytes())
    data[-40] ^= 0xFF
    chunk.write_bytes(bytes(data))
    engine = _engine(tiny_learner)
    with caplog.at_level(logging.WARNING, logger="asl_eval.inference.cache"):
        after = predict_folder(engine, folder, chunk_size=CHUNK, cache=cache)
    assert "bytes changed since it was written" in caplog.text
    assert engine.n_predicted == n_rows
    np.testing.assert_allclose(after.y_proba, before.y_proba, atol=1e-6)


class _Payload:
    """Unpickling this creates a file: proof that code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, ...]:
        return (open, (str(self.marker), "w"))


def _replace_chunk(chunk: Path, **arrays: np.ndarray) -> int:
    """Write new arrays into ``chunk`` and make its manifest name the new bytes (so the hash
    check passes and only the later checks stand guard); the chunk's number of images."""
    manifest_path = chunk.with_suffix(".json")
    manifest = json.loads(manifest_path.read_text())
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    chunk.write_bytes(buffer.getvalue())
    manifest["file_sha256"] = hashlib.sha256(buffer.getvalue()).hexdigest()
    manifest_path.write_text(json.dumps(manifest))
    return len(manifest["sha256"])


def test_pickle_bearing_chunk_is_refused_by_numpy_not_loaded(  # type: ignore[no-untyped-def]
    tiny_learner, filled_copy, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder, cache, before = filled_copy
    chunk = _chunk_files(cache, ".npz")[0]
    with np.load(chunk, allow_pickle=False) as arrays:
        hashes = arrays["sha256"]
    marker = tmp_path / "code-ran"
    evil = np.empty(len(hashes), dtype=object)
    evil[:] = [_Payload(marker)] * len(evil)
    n_rows = _replace_chunk(chunk, sha256=hashes, proba=evil)
    engine = _engine(tiny_learner)
    with caplog.at_level(logging.WARNING, logger="asl_eval.inference.cache"):
        after = predict_folder(engine, folder, chunk_size=CHUNK, cache=cache)
    assert "not a data-only .npz" in caplog.text
    assert not marker.exists()
    assert engine.n_predicted == n_rows
    np.testing.assert_allclose(after.y_proba, before.y_proba, atol=1e-6)


def test_malformed_chunks_and_manifests_are_refused(  # type: ignore[no-untyped-def]
    tiny_learner, filled_copy, caplog: pytest.LogCaptureFixture
) -> None:
    folder, cache, before = filled_copy
    chunks = _chunk_files(cache, ".npz")
    with np.load(chunks[0], allow_pickle=False) as arrays:
        proba, hashes = arrays["proba"], arrays["sha256"]
    n_refused = _replace_chunk(chunks[0], sha256=hashes, proba=proba * 2)
    with np.load(chunks[1], allow_pickle=False) as arrays:
        n_refused += _replace_chunk(
            chunks[1], sha256=arrays["sha256"], proba=arrays["proba"][:, :3]
        )
    edits = [
        lambda m: {**m, "file": "../../elsewhere.npz"},
        lambda m: {**m, "sha256": ["not-a-hash"]},
        lambda m: "just a string",
    ]
    for chunk, edit in zip(chunks[2:], edits, strict=False):
        manifest_path = chunk.with_suffix(".json")
        manifest = json.loads(manifest_path.read_text())
        n_refused += len(manifest["sha256"])
        manifest_path.write_text(json.dumps(edit(manifest)))
    engine = _engine(tiny_learner)
    with caplog.at_level(logging.WARNING, logger="asl_eval.inference.cache"):
        after = predict_folder(engine, folder, chunk_size=CHUNK, cache=cache)
    assert "outside [0, 1]" in caplog.text or "do not sum to 1" in caplog.text
    assert "expected float64" in caplog.text
    assert caplog.text.count("refusing cache file") == 5
    assert engine.n_predicted == n_refused
    np.testing.assert_allclose(after.y_proba, before.y_proba, atol=1e-6)


def test_lazy_model_is_not_loaded_when_everything_is_cached(  # type: ignore[no-untyped-def]
    tiny_model, tiny_learner, folder: Path, cache: PredictionCache
) -> None:
    first = LazyModel(tiny_model.path, cache=cache)
    cold = predict_folder(first, folder, chunk_size=CHUNK, cache=cache)
    assert first.loaded
    second = LazyModel(tiny_model.path, cache=PredictionCache(cache.root, tiny_model.path))
    warm = predict_folder(second, folder, chunk_size=CHUNK, cache=second.cache)
    assert not second.loaded
    assert second.classes == tuple(str(c) for c in tiny_learner.dls.vocab)
    assert second.input_size == (32, 32)
    assert second.describe() == json.loads(json.dumps(first.describe()))
    assert np.array_equal(warm.y_proba, cold.y_proba)
    # asking for the batch size the default came to finds the same record, without a load
    batch = first.describe()["batch_size"]
    explicit = LazyModel(
        tiny_model.path, batch_size=batch, cache=PredictionCache(cache.root, tiny_model.path)
    )
    again = predict_folder(explicit, folder, chunk_size=CHUNK, cache=explicit.cache)
    assert not explicit.loaded and np.array_equal(again.y_proba, cold.y_proba)
    assert explicit.describe() == second.describe()


def test_model_key_covers_the_safe_formats_sidecar(tiny_safe_pair, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    weights, sidecar = tiny_safe_pair
    copy = tmp_path / "m.safetensors"
    shutil.copy(weights, copy)
    shutil.copy(sidecar, copy.with_suffix(".json"))
    key = model_key(copy)
    assert model_key(copy.with_suffix(".json")) == key
    with copy.with_suffix(".json").open("a") as handle:
        handle.write(" ")
    assert model_key(copy) != key


def test_decoding_from_bytes_keeps_every_exclusion_reason(tmp_path: Path) -> None:
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    text = tmp_path / "text.png"
    text.write_bytes(b"not an image at all")
    whole = io.BytesIO()
    Image.new("RGB", (64, 64), (1, 2, 3)).save(whole, format="PNG")
    cut = tmp_path / "cut.png"
    cut.write_bytes(whole.getvalue()[:-200])
    for path in (empty, text, cut):
        with pytest.raises(UnreadableImage) as expected:
            load_rgb(path)
        decoded = decode_file(path)
        assert decoded.image is None and decoded.error is not None
        assert decoded.error.reason == expected.value.reason


def test_onnx_exports_follow_the_cache_choice(tiny_model, cache: PredictionCache) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("onnxruntime")
    cached = LazyModel(tiny_model.path, engine="onnx", cache=cache)
    assert cached._make_options()["cache_dir"] == cache.root / "onnx"
    uncached = LazyModel(tiny_model.path, engine="onnx", cache=None)
    options = uncached._make_options()
    assert options["keep_export"] is False and "cache_dir" not in options
