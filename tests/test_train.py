"""Training: the recipe's outputs, the saved validation predictions, and the offline error."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from asl_eval.demo_data import ASL_CLASSES
from asl_eval.errors import InputError, TrainingError
from asl_eval.inference import predict_validation_split
from asl_eval.predictions import Predictions
from asl_eval.train import (
    TrainConfig,
    read_training_record,
    train_model,
    training_record_path,
    validation_files,
)


def test_defaults_are_the_tutorial_recipe() -> None:
    config = TrainConfig()
    assert (config.arch, config.image_size, config.epochs, config.lr) == ("resnet18", 200, 4, 1e-2)
    assert (config.batch_size, config.valid_pct, config.seed, config.pretrained) == (
        64,
        0.2,
        42,
        True,
    )


def test_training_writes_model_validation_predictions_and_record(tiny_model) -> None:  # type: ignore[no-untyped-def]
    assert tiny_model.path.is_file() and tiny_model.path.stat().st_size > 1_000_000
    valid = Predictions.load(tiny_model.valid_predictions)
    assert valid.classes == ASL_CLASSES
    # RandomSplitter(0.2) over 29 x 12 frames
    assert valid.n_images == int(0.2 * 29 * 12)
    record = read_training_record(tiny_model.path)
    assert record is not None and record["n_valid"] == valid.n_images
    assert record["config"]["pretrained"] is False
    assert json.loads(training_record_path(tiny_model.path).read_text())["classes"] == list(
        ASL_CLASSES
    )


def test_saved_validation_predictions_match_a_fresh_prediction_of_the_split(
    tiny_model,  # type: ignore[no-untyped-def]
    tiny_learner,  # type: ignore[no-untyped-def]
) -> None:
    saved = Predictions.load(tiny_model.valid_predictions)
    again = predict_validation_split(tiny_learner, tiny_model.data.train, valid_pct=0.2, seed=42)
    assert sorted(again.paths) == sorted(saved.paths)
    order = [again.paths.index(p) for p in saved.paths]
    np.testing.assert_array_equal(again.y_true[order], saved.y_true)
    np.testing.assert_allclose(again.y_proba[order], saved.y_proba, atol=1e-5)


def test_validation_files_are_the_recipes_split(tiny_data) -> None:  # type: ignore[no-untyped-def]
    first = validation_files(tiny_data.train, valid_pct=0.2, seed=42)
    assert first == validation_files(tiny_data.train, valid_pct=0.2, seed=42)
    assert first != validation_files(tiny_data.train, valid_pct=0.2, seed=7)
    assert len(first) == int(0.2 * 29 * 12)


def test_missing_training_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        train_model(tmp_path / "nope", tmp_path / "m.pkl", TrainConfig(pretrained=False))
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="is empty"):
        train_model(tmp_path / "empty", tmp_path / "m.pkl", TrainConfig(pretrained=False))


def test_pretrained_weights_offline_names_the_fix(
    tiny_data,  # type: ignore[no-untyped-def]
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With an empty torch cache and no network, training stops with the two ways out."""
    import urllib.error

    import torch.hub

    def offline(*args: object, **kwargs: object) -> None:
        raise urllib.error.URLError("[Errno -2] Name or service not known")

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    config = TrainConfig(image_size=32, epochs=1, batch_size=32, pretrained=True)
    with pytest.raises(TrainingError) as caught:
        train_model(tiny_data.train, tmp_path / "m.pkl", config)
    message = str(caught.value)
    assert "--no-pretrained" in message
    assert str(tmp_path / "torch" / "hub" / "checkpoints" / "resnet18-") in message
    assert not (tmp_path / "m.pkl").exists()


def test_learning_rate_finder(tiny_data, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    config = TrainConfig(
        image_size=32, epochs=1, lr="find", batch_size=32, pretrained=False, show_progress=False
    )
    result = train_model(tiny_data.train, tmp_path / "m.pkl", config)
    assert 1e-7 < result.lr < 10
    assert read_training_record(result.model_path)["lr_used"] == pytest.approx(result.lr)


def test_unusable_training_files_are_set_aside_and_recorded(tiny_data, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import shutil

    data = tmp_path / "train"
    for label in ("A", "B", "C"):
        shutil.copytree(tiny_data.train / label, data / label)
    (data / "A" / "broken.jpg").write_bytes(b"")
    (data / "B" / "notes.jpg").write_text("not an image")
    shutil.copy(tiny_data.train / "C" / "C1.jpg", data / "stray.jpg")  # no class folder
    config = TrainConfig(
        image_size=32, epochs=1, batch_size=16, pretrained=False, show_progress=False
    )
    result = train_model(data, tmp_path / "m.pkl", config)
    assert result.n_not_used == 3
    record = read_training_record(result.model_path)
    assert record is not None and record["n_train_files"] == 3 * 12
    reasons = {Path(e["path"]).name: (e["status"], e["reason"]) for e in record["not_used"]}
    assert reasons["stray.jpg"] == ("unlabeled", "not in a class folder")
    assert reasons["broken.jpg"][0] == reasons["notes.jpg"][0] == "excluded"
    assert "zero" in reasons["broken.jpg"][1]
    valid = Predictions.load(result.valid_predictions_path)
    assert valid.classes == ("A", "B", "C")
    assert valid.n_images == int(0.2 * 36)
    assert not {p.rsplit("/", 1)[-1] for p in valid.paths} & set(reasons)
