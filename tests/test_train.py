"""Training: the recipe's outputs, the saved validation predictions, and the offline error."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from asl_eval.demo_data import ASL_CLASSES
from asl_eval.errors import InputError, LabelError, TrainingError
from asl_eval.labels import LabelOptions
from asl_eval.predictions import Predictions
from asl_eval.training import (
    TrainConfig,
    predict_validation_split,
    read_training_record,
    recorded_label_options,
    train_model,
    training_record_path,
    validation_items,
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


def test_validation_items_are_the_recipes_split(tiny_data) -> None:  # type: ignore[no-untyped-def]
    first = validation_items(tiny_data.train, valid_pct=0.2, seed=42)
    assert first == validation_items(tiny_data.train, valid_pct=0.2, seed=42)
    assert first != validation_items(tiny_data.train, valid_pct=0.2, seed=7)
    assert all(label == path.parent.name for path, label in first)
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


def test_learning_rate_finder(tiny_data, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)  # fastai's finder writes under the learner's folder: not here
    config = TrainConfig(
        image_size=32, epochs=1, lr="find", batch_size=32, pretrained=False, show_progress=False
    )
    result = train_model(tiny_data.train, tmp_path / "m.pkl", config)
    assert 1e-7 < result.lr < 10
    assert read_training_record(result.model_path)["lr_used"] == pytest.approx(result.lr)
    assert list(work.iterdir()) == []


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
    assert reasons["stray.jpg"] == (
        "unlabeled",
        "file directly in the input folder (no class subfolder)",
    )
    assert reasons["broken.jpg"][0] == reasons["notes.jpg"][0] == "excluded"
    assert "zero" in reasons["broken.jpg"][1]
    valid = Predictions.load(result.valid_predictions_path)
    assert valid.classes == ("A", "B", "C")
    assert valid.n_images == int(0.2 * 36)
    assert not {p.rsplit("/", 1)[-1] for p in valid.paths} & set(reasons)


# -- labels other than the class folders' names -----------------------------------------------

FLAT_REGEX = r"^sign-(?P<label>[A-Za-z]+)-\d+\.jpg$"
QUICK = TrainConfig(
    image_size=32, epochs=1, batch_size=16, pretrained=False, augment=False, show_progress=False
)


def test_a_batch_larger_than_the_training_split_is_refused(tiny_data, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """fastai drops the last partial training batch: 29 training images in batches of 64
    would train on nothing, so training refuses to start."""
    import shutil

    data = tmp_path / "small"
    for label in ("A", "B", "C"):
        shutil.copytree(tiny_data.train / label, data / label)
    config = dataclasses.replace(QUICK, batch_size=64)
    with pytest.raises(TrainingError, match=r"29 training images .* one batch of 64"):
        train_model(data, tmp_path / "m.pkl", config)
    assert not (tmp_path / "m.pkl").exists()


def _pickled_globals(model: Path) -> set[str]:
    from asl_eval.trust import pickle_streams, scan_pickle_bytes

    names: set[str] = set()
    for _, stream in pickle_streams(model.read_bytes()):
        found, _ = scan_pickle_bytes(stream)
        names.update(g.dotted for g in found)
    return names


def _pickle_bytes(model: Path) -> bytes:
    from asl_eval.trust import pickle_streams

    return b"".join(stream for _, stream in pickle_streams(model.read_bytes()))


def _assert_split_recreated(result, data_dir: Path):  # type: ignore[no-untyped-def]
    """Re-create the validation split with the labels recorded in training's record and check
    it is exactly the saved one: same files in the same order, same labels, same probabilities.
    Returns the loaded learner."""
    from asl_eval.trust import load_learner_file

    record = read_training_record(result.model_path)
    assert record is not None
    learner = load_learner_file(result.model_path)
    saved = Predictions.load(result.valid_predictions_path)
    again = predict_validation_split(
        learner,
        data_dir,
        valid_pct=0.2,
        seed=42,
        label_options=recorded_label_options(record),
        expected_files=record["n_valid"],
    )
    assert again.classes == saved.classes
    assert list(again.paths) == list(saved.paths)
    np.testing.assert_array_equal(again.y_true, saved.y_true)
    np.testing.assert_allclose(again.y_proba, saved.y_proba, atol=1e-5)
    return learner


@pytest.fixture(scope="module")
def flat_data(tiny_data, tmp_path_factory: pytest.TempPathFactory) -> Path:  # type: ignore[no-untyped-def]
    """Five classes in one flat folder, labelled only by file name (``sign-B-3.jpg``), and two
    files the regex does not label."""
    import shutil

    flat = tmp_path_factory.mktemp("flat")
    for label in ("A", "B", "C", "del", "space"):
        for n, frame in enumerate(sorted((tiny_data.train / label).iterdir())):
            shutil.copy(frame, flat / f"sign-{label}-{n}.jpg")
    shutil.copy(tiny_data.train / "A" / "A1.jpg", flat / "cover photo.jpg")
    (flat / "sub").mkdir()
    shutil.copy(tiny_data.train / "B" / "B1.jpg", flat / "sub" / "sign-B-x.jpg")
    return flat


@pytest.fixture(scope="module")
def regex_model(flat_data: Path, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    out = tmp_path_factory.mktemp("regex_model") / "m.pkl"
    options = LabelOptions(regex=FLAT_REGEX, label_map={"del": "delete"})
    config = dataclasses.replace(QUICK, safe_copy=True)
    return train_model(flat_data, out, config, label_options=options)


def test_training_labels_from_a_file_name_regex(flat_data: Path, regex_model) -> None:  # type: ignore[no-untyped-def]
    import re

    valid = Predictions.load(regex_model.valid_predictions_path)
    # the label map renames a label before it becomes a class
    assert valid.classes == ("A", "B", "C", "delete", "space")
    pattern = re.compile(FLAT_REGEX)
    for path, truth in zip(valid.paths, valid.y_true, strict=True):
        label = pattern.match(Path(path).name)["label"]  # type: ignore[index]
        assert valid.classes[truth] == {"del": "delete"}.get(label, label)
    record = read_training_record(regex_model.model_path)
    assert record is not None
    assert record["n_train_files"] == 5 * 12
    assert record["labels"] == {
        "rule": "regex",
        "regex": FLAT_REGEX,
        "labels_csv": None,
        "labels_csv_sha256": None,
        "label_map": {"del": "delete"},
    }
    not_used = {Path(e["path"]).name: (e["status"], e["reason"]) for e in record["not_used"]}
    assert not_used == {
        "cover photo.jpg": ("unlabeled", "file name does not match --label-regex"),
        "sign-B-x.jpg": ("unlabeled", "file name does not match --label-regex"),
    }
    assert valid.n_images == int(0.2 * 5 * 12)


def test_regex_trained_model_loads_safely_and_ships_no_training_paths(regex_model) -> None:  # type: ignore[no-untyped-def]
    from asl_eval.inference import model_classes
    from asl_eval.trust import load_learner_file

    model = regex_model.model_path
    assert "asl_eval.training.label_lookup.LabelLookup" in _pickled_globals(model)
    assert b"sign-A-0" not in _pickle_bytes(model)
    learner = load_learner_file(model)  # the safe loader, no trust needed
    assert model_classes(learner) == ("A", "B", "C", "delete", "space")
    getter = learner.dls.train_ds.tls[1].tfms.fs[0]
    assert getter.rule == "regex" and getter.labels == {}
    with pytest.raises(LabelError, match="keeps the rule"):
        getter(Path("sign-A-0.jpg"))
    safe = load_learner_file(regex_model.safe_weights_path)  # the safetensors + JSON copy
    assert model_classes(safe) == model_classes(learner)


def test_in_domain_split_is_recreated_with_trainings_labels(flat_data: Path, regex_model) -> None:  # type: ignore[no-untyped-def]

    learner = _assert_split_recreated(regex_model, flat_data)
    # read by folder (the default) the same folder is another data set: refused, not mixed
    with pytest.raises(InputError, match="cannot be split and labelled as training did"):
        predict_validation_split(learner, flat_data, valid_pct=0.2, seed=42)


def test_tutorial_folders_keep_fastais_parent_label(tiny_model) -> None:  # type: ignore[no-untyped-def]
    names = _pickled_globals(tiny_model.path)
    assert "fastai.data.transforms.parent_label" in names
    assert "asl_eval.training.label_lookup.LabelLookup" not in names
    record = read_training_record(tiny_model.path)
    assert record is not None and record["labels"]["rule"] == "folder"


def test_strict_training_refuses_unlabeled_files(flat_data: Path, tmp_path: Path) -> None:
    options = LabelOptions(regex=FLAT_REGEX, strict=True)
    with pytest.raises(LabelError, match="2 have no label"):
        train_model(flat_data, tmp_path / "m.pkl", QUICK, label_options=options)
    assert not (tmp_path / "m.pkl").exists()


def test_a_rule_that_finds_one_class_is_refused(flat_data: Path, tmp_path: Path) -> None:
    options = LabelOptions(regex=r"^(sign)-")
    with pytest.raises(InputError, match="at least two classes"):
        train_model(flat_data, tmp_path / "m.pkl", QUICK, label_options=options)


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        (None, LabelOptions(source="folder")),
        (
            {"rule": "folder", "regex": None, "labels_csv": None, "label_map": {"a": "A"}},
            LabelOptions(source="folder", label_map={"a": "A"}),
        ),
        (
            {"rule": "filename", "regex": None, "labels_csv": None, "label_map": {}},
            LabelOptions(source="filename"),
        ),
        (
            {"rule": "regex", "regex": "^(.)", "labels_csv": None, "label_map": {}},
            LabelOptions(source="filename", regex="^(.)"),
        ),
    ],
)
def test_recorded_label_options(labels: dict[str, object] | None, expected: LabelOptions) -> None:
    record = {} if labels is None else {"labels": labels}
    assert recorded_label_options(record) == expected


def test_recorded_csv_labels(tmp_path: Path) -> None:
    table = tmp_path / "labels.csv"
    labels = {"rule": "csv", "regex": None, "labels_csv": str(table), "label_map": {}}
    with pytest.raises(LabelError, match="cannot be read"):
        recorded_label_options({"labels": labels})
    table.write_text("path,label\na.jpg,A\n")
    assert recorded_label_options({"labels": labels}).labels_csv == str(table)
    digest = hashlib.sha256(table.read_bytes()).hexdigest()
    same = recorded_label_options({"labels": {**labels, "labels_csv_sha256": digest}})
    assert same.labels_csv == str(table)
    table.write_text("path,label\na.jpg,B\n")
    with pytest.raises(LabelError, match="has changed since training"):
        recorded_label_options({"labels": {**labels, "labels_csv_sha256": digest}})
    with pytest.raises(LabelError, match="DataFrame"):
        recorded_label_options({"labels": {**labels, "labels_csv": None}})
    with pytest.raises(LabelError, match="unknown label rule"):
        recorded_label_options({"labels": {"rule": "astrology"}})
    with pytest.raises(LabelError, match="holds no regex"):
        recorded_label_options({"labels": {"rule": "regex", "regex": None}})


def test_training_labels_from_a_csv_table(tiny_data, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A path,label table over files whose folders say nothing; relative paths are relative
    to the training folder, and an image the table does not list is set aside."""
    import shutil

    data = tmp_path / "shots"
    rows = ["path,label"]
    for label in ("A", "B", "C"):
        for n, frame in enumerate(sorted((tiny_data.train / label).iterdir())):
            target = data / f"batch{n % 2}" / f"{label}{n}.jpg"
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(frame, target)
            rows.append(f"{target.relative_to(data)},{label.lower()}")
    shutil.copy(tiny_data.train / "A" / "A1.jpg", data / "batch0" / "unlisted.jpg")
    table = tmp_path / "labels.csv"
    table.write_text("\n".join(rows) + "\n")
    result = train_model(
        data, tmp_path / "m.pkl", QUICK, label_options=LabelOptions(labels_csv=table)
    )
    valid = Predictions.load(result.valid_predictions_path)
    assert valid.classes == ("a", "b", "c")
    for path, truth in zip(valid.paths, valid.y_true, strict=True):
        assert valid.classes[truth] == Path(path).name[0].lower()
    record = read_training_record(result.model_path)
    assert record is not None
    assert [Path(e["path"]).name for e in record["not_used"]] == ["unlisted.jpg"]
    assert recorded_label_options(record).labels_csv == str(table.resolve())
    _assert_split_recreated(result, data)


def test_training_label_map_on_class_folders(tiny_data, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A --label-map over folder labels renames a class; the model then needs the lookup
    (parent_label would give the folder's name), and its split is re-created with the map."""
    import shutil

    data = tmp_path / "train"
    for label in ("A", "B", "del"):
        shutil.copytree(tiny_data.train / label, data / label)
    options = LabelOptions(source="folder", label_map={"del": "delete"})
    result = train_model(data, tmp_path / "m.pkl", QUICK, label_options=options)
    assert Predictions.load(result.valid_predictions_path).classes == ("A", "B", "delete")
    assert "asl_eval.training.label_lookup.LabelLookup" in _pickled_globals(result.model_path)
    _assert_split_recreated(result, data)
    typo = LabelOptions(source="folder", label_map={"dle": "delete"})
    with pytest.raises(LabelError, match=r"finds on no file .*: dle \(labels found: A, B, del\)"):
        train_model(data, tmp_path / "typo.pkl", QUICK, label_options=typo)
    assert not (tmp_path / "typo.pkl").exists()
