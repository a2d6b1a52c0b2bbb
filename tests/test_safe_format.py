"""The safe format: safetensors weights plus a JSON sidecar, rebuilt without unpickling,
predicting exactly what the exported pickle predicts."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest

from asl_eval.errors import ModelLoadError
from asl_eval.trust import export_safe, load_learner_file, load_safe, sidecar_path
from asl_eval.trust.sidecar import content_sha256


@pytest.fixture
def safe_pair(tiny_safe_pair):  # type: ignore[no-untyped-def]
    return tiny_safe_pair


def test_sidecar_describes_the_learner(safe_pair, tiny_learner) -> None:  # type: ignore[no-untyped-def]
    weights, sidecar = safe_pair
    assert sidecar == sidecar_path(weights) == weights.with_name("model.json")
    description = json.loads(sidecar.read_text())
    assert description["architecture"] == {"name": "resnet18", "source": "torchvision"}
    assert description["classes"] == list(tiny_learner.dls.vocab)
    assert description["input_size"] == [32, 32]
    assert description["normalization"] is None  # trained from scratch: fastai adds no Normalize
    assert [t["type"] for t in description["item_tfms"]] == ["Resize", "ToTensor"]
    # Brightness is training-only (split_idx 0) and is left out; the affine step is kept.
    assert [t["type"] for t in description["batch_tfms"]] == ["IntToFloatTensor", "AffineCoordTfm"]


@pytest.mark.parametrize("folder", ["ood_test", "kaggle_test"])
def test_round_trip_predictions_are_identical(safe_pair, tiny_model, folder: str) -> None:  # type: ignore[no-untyped-def]
    from asl_eval.inference import predict_folder

    pickled = load_learner_file(tiny_model.path)
    rebuilt = load_learner_file(safe_pair[0])
    root = getattr(tiny_model.data, folder)
    expected = predict_folder(pickled, root)
    got = predict_folder(rebuilt, root)
    assert got.classes == expected.classes
    assert got.paths == expected.paths
    np.testing.assert_array_equal(got.y_proba, expected.y_proba)


def test_default_test_dl_batches_match_too(safe_pair, tiny_model) -> None:  # type: ignore[no-untyped-def]
    """Same batch size as the exported learner, so even fastai's defaults agree bit for bit."""
    from PIL import Image

    images = [Image.open(p).convert("RGB") for p in sorted(tiny_model.data.ood_test.rglob("*.jpg"))]
    outputs = []
    for learner in (load_learner_file(tiny_model.path), load_learner_file(safe_pair[1])):
        with learner.no_bar():
            outputs.append(learner.get_preds(dl=learner.dls.test_dl(images))[0].numpy())
    np.testing.assert_array_equal(outputs[0], outputs[1])


def test_loading_the_pair_unpickles_nothing(safe_pair, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import torch

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the safe format must not unpickle")

    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(pickle, "Unpickler", refuse)
    monkeypatch.setattr(torch, "load", refuse)
    learner = load_safe(safe_pair[0])
    assert len(learner.dls.vocab) == 29


def _copy_pair(pair: tuple[Path, Path], folder: Path) -> tuple[Path, Path]:
    folder.mkdir()
    weights, sidecar = folder / pair[0].name, folder / pair[1].name
    weights.write_bytes(pair[0].read_bytes())
    sidecar.write_text(pair[1].read_text())
    return weights, sidecar


def test_missing_sidecar(safe_pair, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    weights, sidecar = _copy_pair(safe_pair, tmp_path / "pair")
    sidecar.unlink()
    with pytest.raises(ModelLoadError, match=r"has no sidecar: expected .*model\.json"):
        load_learner_file(weights)


def test_sidecar_of_other_weights(safe_pair, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    weights, _ = _copy_pair(safe_pair, tmp_path / "pair")
    weights.write_bytes(weights.read_bytes()[:-4] + b"    ")
    with pytest.raises(ModelLoadError, match="does not belong to"):
        load_learner_file(weights)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda d: d["item_tfms"].append(
                {"type": "os.system", "args": {}, "split_idx": None, "order": 0}
            ),
            r"item_tfms\[2\]\.type must be one of 'Resize'",
        ),
        (lambda d: d["architecture"].update(name="get_weight"), "unknown torchvision model"),
        (lambda d: d.update(format_version=99), "format version number 99"),
    ],
)
def test_sidecar_names_only_known_things(safe_pair, tmp_path: Path, edit, message: str) -> None:  # type: ignore[no-untyped-def]
    weights, sidecar = _copy_pair(safe_pair, tmp_path / "pair")
    description = json.loads(sidecar.read_text())
    edit(description)
    description["content_sha256"] = content_sha256(description)
    sidecar.write_text(json.dumps(description))
    with pytest.raises(ModelLoadError, match=message):
        load_learner_file(weights)


def test_export_needs_a_safetensors_name(tiny_learner, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ModelLoadError, match=r"must end in \.safetensors"):
        export_safe(tiny_learner, tmp_path / "model.pkl")
    assert not (tmp_path / "model.pkl").exists()


@pytest.mark.parametrize("field", ["classes", "item_tfms", "architecture"])
def test_malformed_sidecar_fields_are_a_clear_error(safe_pair, tmp_path: Path, field: str) -> None:  # type: ignore[no-untyped-def]
    """Found in review: a hand-edited sidecar with the right checksum crashed with a KeyError."""
    weights, sidecar = _copy_pair(safe_pair, tmp_path / "pair")
    description = json.loads(sidecar.read_text())
    assert field in description
    del description[field]
    description["content_sha256"] = content_sha256(description)
    sidecar.write_text(json.dumps(description))
    with pytest.raises(ModelLoadError, match=rf"not a valid .*: {field} must be present"):
        load_learner_file(weights)
