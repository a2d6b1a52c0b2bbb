"""The features cache (issue 14): penultimate features of the real tiny learner read back by
content hash, equal to fresh ones; a second run runs the model on nothing; a changed file is
computed again; a damaged, tampered or pickled cache file is refused (and never unpickled)."""

from __future__ import annotations

import io
import logging
import os
import pickle
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image, ImageOps

import asl_eval.inference.features as features_module
from asl_eval.analysis import AnalysisResult
from asl_eval.inference import predict_folder
from asl_eval.inference.feature_cache import FeatureCache
from asl_eval.inference.features import embedding_audit, feature_cache, feature_files

N_IMAGES = 12


@pytest.fixture
def images(tiny_data, tmp_path: Path) -> list[Path]:
    """A dozen training images, copied so a test may change them."""
    folder = tmp_path / "images"
    folder.mkdir()
    paths = []
    for source in sorted(Path(tiny_data.train).rglob("*.jpg"))[::12][:N_IMAGES]:
        target = folder / f"{source.parent.name}_{source.name}"
        shutil.copy(source, target)
        paths.append(target)
    assert len(paths) == N_IMAGES
    return paths


class _Counter:
    """Wraps the module's feature function and counts the images it runs the model on."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.n_images = 0
        self._original = features_module.penultimate_features
        monkeypatch.setattr(features_module, "penultimate_features", self)

    def __call__(self, learner, images, **options):
        self.n_images += len(images)
        return self._original(learner, images, **options)


def _refuse_to_compute(learner, images, **options):
    raise AssertionError(f"the model ran on {len(images)} images; all were cached")


def test_cached_features_equal_fresh_and_second_run_computes_nothing(
    tiny_learner, images: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fresh, _ = feature_files(tiny_learner, images, cache=False)
    assert np.isfinite(fresh).all()
    first, _ = feature_files(tiny_learner, images, cache_dir=tmp_path / "cache")
    np.testing.assert_array_equal(first, fresh)
    store = feature_cache(tiny_learner, cache_dir=tmp_path / "cache")
    assert store.path.is_file() and len(store) == N_IMAGES
    monkeypatch.setattr(features_module, "penultimate_features", _refuse_to_compute)
    second, entries = feature_files(tiny_learner, images, cache_dir=tmp_path / "cache")
    assert entries == ()
    assert second.dtype == np.float32
    np.testing.assert_array_equal(second, fresh)  # exactly, not approximately


def test_changed_file_is_computed_again(
    tiny_learner, images: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache_dir = tmp_path / "cache"
    before, _ = feature_files(tiny_learner, images, cache_dir=cache_dir)
    with Image.open(images[3]) as image:
        ImageOps.mirror(image.convert("RGB")).save(images[3])
    counter = _Counter(monkeypatch)
    again, _ = feature_files(tiny_learner, images, cache_dir=cache_dir)
    assert counter.n_images == 1
    unchanged = [i for i in range(N_IMAGES) if i != 3]
    np.testing.assert_array_equal(again[unchanged], before[unchanged])
    assert not np.allclose(again[3], before[3])
    monkeypatch.undo()
    # the changed file alone, as the cached run computed it (a batch of one: torch's rounding
    # depends on the batch, so a batch of twelve agrees to float32 precision only)
    fresh, _ = feature_files(tiny_learner, images[3:4], cache=False)
    np.testing.assert_array_equal(again[3], fresh[0])


def test_model_key_names_the_store(tiny_learner, tmp_path: Path) -> None:
    by_weights = feature_cache(tiny_learner, cache_dir=tmp_path)
    assert by_weights.path == feature_cache(tiny_learner, cache_dir=tmp_path).path
    by_file = feature_cache(tiny_learner, cache_dir=tmp_path, model_key="ab" * 32)
    assert by_file.path != by_weights.path
    assert by_file.path.parent == tmp_path / "v1" / "features"


def _damage_bytes(store: FeatureCache) -> None:
    data = bytearray(store.path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    store.path.write_bytes(bytes(data[: len(data) - 7]))


def _tamper_values(store: FeatureCache) -> None:
    """A well-formed store whose features were changed and whose checksum was not."""
    with np.load(store.path, allow_pickle=False) as arrays:
        parts = {name: arrays[name] for name in arrays.files}
    parts["features"] = parts["features"] + np.float32(1.0)
    buffer = io.BytesIO()
    np.savez(buffer, **parts)
    store.path.write_bytes(buffer.getvalue())


@pytest.mark.parametrize("spoil", [_damage_bytes, _tamper_values], ids=["damaged", "tampered"])
def test_spoiled_cache_file_is_refused_and_recomputed(
    tiny_learner,
    images: list[Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    spoil,
) -> None:
    cache_dir = tmp_path / "cache"
    fresh, _ = feature_files(tiny_learner, images, cache_dir=cache_dir)
    spoil(feature_cache(tiny_learner, cache_dir=cache_dir))
    counter = _Counter(monkeypatch)
    with caplog.at_level(logging.WARNING, logger="asl_eval.inference.feature_cache"):
        again, _ = feature_files(tiny_learner, images, cache_dir=cache_dir)
    assert "refusing features cache file" in caplog.text
    assert counter.n_images == N_IMAGES
    np.testing.assert_array_equal(again, fresh)
    caplog.clear()
    assert len(feature_cache(tiny_learner, cache_dir=cache_dir)) == N_IMAGES  # rewritten, good
    assert "refusing" not in caplog.text


class _Planted:
    """Unpickling this creates the marker folder."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (str(self.marker),))


def test_planted_pickle_is_never_unpickled(
    tiny_learner,
    images: list[Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    cache_dir = tmp_path / "cache"
    marker = tmp_path / "unpickled"
    store = feature_cache(tiny_learner, cache_dir=cache_dir)
    store.path.parent.mkdir(parents=True)
    store.path.write_bytes(pickle.dumps(_Planted(marker)))
    counter = _Counter(monkeypatch)
    with caplog.at_level(logging.WARNING, logger="asl_eval.inference.feature_cache"):
        got, _ = feature_files(tiny_learner, images, cache_dir=cache_dir)
    assert not marker.exists()
    assert "refusing features cache file" in caplog.text
    assert counter.n_images == N_IMAGES and np.isfinite(got).all()


def test_embedding_audit_passes_the_cache_options(
    tiny_learner, tiny_data, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    train, evaluated = tmp_path / "train", tmp_path / "set"
    for index, source in enumerate(sorted(Path(tiny_data.train).rglob("*.jpg"))[::12][:12]):
        folder = (train if index % 2 else evaluated) / source.parent.name
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy(source, folder / source.name)
    predictions = predict_folder(tiny_learner, evaluated, name="set")

    def audit() -> AnalysisResult:
        return embedding_audit(
            tiny_learner,
            train,
            [predictions],
            n_per_class=2,
            k=2,
            cache_dir=tmp_path / "cache",
            model_key="cd" * 32,
        )

    first = audit()
    assert (tmp_path / "cache" / "v1" / "features").is_dir()
    monkeypatch.setattr(features_module, "penultimate_features", _refuse_to_compute)
    second = audit()
    pd.testing.assert_frame_equal(second.items, first.items)
