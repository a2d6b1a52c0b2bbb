"""``train --split grouped``: near-identical frames stay on one side of the validation split,
the training record says which split it was, and ``report --in-domain`` re-creates it."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import imagehash
import numpy as np
import pytest
from PIL import Image

from asl_eval.predictions import Predictions
from asl_eval.training import (
    TrainConfig,
    predict_validation_split,
    read_training_record,
    split_indices,
    train_model,
    training_items,
)

CLASSES = ("A", "B", "C", "D")
BLOCKS = (1, 51, 101)
"""Each class has frames 1-4, 51-54 and 101-104: three sequences the default frame gap G keeps
apart, of images whose pixels are independent noise (so no perceptual-hash links)."""


@pytest.fixture(scope="module")
def framed_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("framed")
    rng = np.random.default_rng(0)
    for cls in CLASSES:
        for start in BLOCKS:
            for frame in range(start, start + 4):
                target = root / cls / f"{cls}{frame}.jpg"
                target.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(target)
    return root


@pytest.fixture(scope="module")
def grouped_model(framed_data: Path, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    config = TrainConfig(
        image_size=32,
        epochs=1,
        lr=5e-3,
        batch_size=8,
        valid_pct=0.34,
        pretrained=False,
        show_progress=False,
        split="grouped",
    )
    out = tmp_path_factory.mktemp("grouped") / "model.pkl"
    return train_model(framed_data, out, config)


def _block(path: str) -> tuple[str, int]:
    """The class and the sequence of a file, by hand: ``A53.jpg`` -> ``("A", 51)``."""
    match = re.fullmatch(r"([A-Z])(\d+)", Path(path).stem)
    assert match is not None
    frame = int(match.group(2))
    return match.group(1), max(b for b in BLOCKS if b <= frame)


def test_each_frame_sequence_stays_on_one_side(framed_data: Path) -> None:
    from asl_eval.audit import DEFAULT_GROUP_DISTANCE

    items = training_items(framed_data).items
    train, valid = split_indices(items, valid_pct=0.34, seed=42, kind="grouped")
    assert sorted(train + valid) == list(range(len(items))) and not set(train) & set(valid)
    train_blocks = {_block(str(items[i][0])) for i in train}
    valid_blocks = {_block(str(items[i][0])) for i in valid}
    assert not train_blocks & valid_blocks
    # one whole sequence of each class in validation: 4 of its 12 images, the nearest to 34%
    assert sorted(cls for cls, _ in valid_blocks) == sorted(CLASSES)
    assert len(valid) == 4 * len(CLASSES)
    # and no validation image is a perceptual near-copy of a training image (imagehash itself)
    hashes = [imagehash.phash(Image.open(path).convert("RGB")) for path, _ in items]
    assert min(hashes[v] - hashes[t] for v in valid for t in train) > DEFAULT_GROUP_DISTANCE
    # the random split, for contrast, mixes sequences
    train_r, valid_r = split_indices(items, valid_pct=0.34, seed=42, kind="random")
    mixed = {_block(str(items[i][0])) for i in train_r} & {
        _block(str(items[i][0])) for i in valid_r
    }
    assert mixed


def test_the_record_and_the_saved_split_say_grouped(grouped_model, framed_data: Path) -> None:  # type: ignore[no-untyped-def]
    record = read_training_record(grouped_model.model_path)
    assert record is not None and record["config"]["split"] == "grouped"  # type: ignore[index]
    saved = Predictions.load(grouped_model.valid_predictions_path)
    assert saved.source == "grouped validation split"
    items = training_items(framed_data).items
    _, valid = split_indices(items, valid_pct=0.34, seed=42, kind="grouped")
    assert sorted(saved.paths) == sorted(str(items[i][0]) for i in valid)


def test_report_in_domain_re_creates_the_grouped_split(grouped_model, framed_data: Path) -> None:  # type: ignore[no-untyped-def]
    from asl_eval.trust import load_learner_file

    learner = load_learner_file(grouped_model.model_path)
    again = predict_validation_split(learner, framed_data, valid_pct=0.34, seed=42, split="grouped")
    saved = Predictions.load(grouped_model.valid_predictions_path)
    assert sorted(again.paths) == sorted(saved.paths)
    assert again.source.startswith("grouped validation split of")
    order = np.argsort(again.paths)
    assert np.allclose(again.y_proba[order], saved.y_proba[np.argsort(saved.paths)], atol=1e-5)


# -- grouped by a metadata column (--group-by signer --metadata CSV) ----------------------------


def _signer(path: Path) -> str:
    """The planted signer of a frame: block 101 is signer s3; blocks 1 and 51 are s1 and s2
    for classes A and B, swapped for C and D (so signers cut across frame sequences' order)."""
    cls, block = _block(str(path))
    if block == 101:
        return "s3"
    first = block == 1
    return "s1" if first == (cls in "AB") else "s2"


@pytest.fixture(scope="module")
def signer_csv(framed_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A metadata CSV naming every frame once: class A by relative path, B by absolute path,
    C and D by file name (the three matching rules), plus a row for no image."""
    rows = ["path,signer,camera"]
    for path, _ in training_items(framed_data).items:
        cls = path.parent.name
        name = {
            "A": path.relative_to(framed_data).as_posix(),
            "B": str(path.resolve()),
        }.get(cls, path.name)
        rows.append(f"{name},{_signer(path)},cam{len(rows) % 2}")
    rows.append("Z/Z1.jpg,s9,cam0")
    target = tmp_path_factory.mktemp("meta") / "signers.csv"
    target.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return target


@pytest.fixture(scope="module")
def signer_model(framed_data: Path, signer_csv: Path, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    config = TrainConfig(
        image_size=32,
        epochs=1,
        lr=5e-3,
        batch_size=8,
        valid_pct=0.34,
        pretrained=False,
        show_progress=False,
        split="grouped",
        group_by="signer",
        metadata=str(signer_csv),
    )
    return train_model(framed_data, tmp_path_factory.mktemp("signer") / "model.pkl", config)


def test_group_by_keeps_each_signer_on_one_side(framed_data: Path, signer_csv: Path) -> None:
    items = training_items(framed_data).items
    train, valid = split_indices(
        items,
        valid_pct=0.34,
        seed=42,
        kind="grouped",
        group_by="signer",
        metadata=signer_csv,
        root=framed_data,
    )
    assert sorted(train + valid) == list(range(len(items)))
    train_signers = {_signer(items[i][0]) for i in train}
    valid_signers = {_signer(items[i][0]) for i in valid}
    assert train_signers and valid_signers and not train_signers & valid_signers
    # frame sequences stay together too (the union of both groupings)
    assert not {_block(str(items[i][0])) for i in train} & {_block(str(items[i][0])) for i in valid}
    # the frame-only grouped split, for contrast, puts signers on both sides
    plain_train, plain_valid = split_indices(items, valid_pct=0.34, seed=42, kind="grouped")
    assert {_signer(items[i][0]) for i in plain_train} & {_signer(items[i][0]) for i in plain_valid}


def test_signer_training_run_and_its_record(
    signer_model, framed_data: Path, signer_csv: Path
) -> None:  # type: ignore[no-untyped-def]
    from asl_eval.hashing import file_sha256
    from asl_eval.training import recorded_split

    saved = Predictions.load(signer_model.valid_predictions_path)
    valid_signers = {_signer(Path(p)) for p in saved.paths}
    all_signers = {_signer(p) for p, _ in training_items(framed_data).items}
    assert len(valid_signers) == 1  # 16 of 48 images: one signer is nearest to 34%
    record = read_training_record(signer_model.model_path)
    assert record is not None
    split = record["split"]
    assert isinstance(split, dict)
    assert split["kind"] == "grouped" and split["group_by"] == "signer"
    assert split["metadata_name"] == "signers.csv"
    assert split["metadata_sha256"] == file_sha256(signer_csv)
    assert split["missing_values"] == "error"
    assert split["valid_values"] == sorted(valid_signers)
    assert split["train_values"] == sorted(all_signers - valid_signers)
    assert split["values_on_both_sides"] == []
    config = record["config"]
    assert isinstance(config, dict) and config["group_by"] == "signer"
    recorded = recorded_split(record)
    assert (recorded.kind, recorded.group_by) == ("grouped", "signer")
    assert recorded.metadata == str(signer_csv.resolve())


def test_in_domain_re_creates_the_signer_split(signer_model, framed_data: Path) -> None:  # type: ignore[no-untyped-def]
    from asl_eval.training import recorded_split
    from asl_eval.trust import load_learner_file

    record = read_training_record(signer_model.model_path)
    assert record is not None
    split = recorded_split(record)
    learner = load_learner_file(signer_model.model_path)
    again = predict_validation_split(
        learner,
        framed_data,
        valid_pct=0.34,
        seed=42,
        split=split.kind,
        group_by=split.group_by,
        metadata=split.metadata,
        metadata_path_column=split.metadata_path_column,
    )
    saved = Predictions.load(signer_model.valid_predictions_path)
    assert sorted(again.paths) == sorted(saved.paths)


def test_recorded_split_refuses_a_changed_csv(tmp_path: Path) -> None:
    from asl_eval.errors import InputError
    from asl_eval.training import recorded_split

    csv = tmp_path / "m.csv"
    csv.write_text("path,signer\na.jpg,1\n", encoding="utf-8")
    record = {
        "split": {"kind": "grouped", "group_by": "signer", "metadata": str(csv)},
    }
    assert recorded_split(record).metadata == str(csv)
    record["split"]["metadata_sha256"] = "0" * 64  # type: ignore[index]
    with pytest.raises(InputError, match="has changed since training"):
        recorded_split(record)
    csv.unlink()
    with pytest.raises(InputError, match="cannot be read"):
        recorded_split(record)
    assert recorded_split({"config": {"split": "grouped"}}).kind == "grouped"


def test_group_by_errors(framed_data: Path, signer_csv: Path, tmp_path: Path) -> None:
    from asl_eval.errors import TrainingError

    items = training_items(framed_data).items
    kwargs = {"valid_pct": 0.34, "seed": 42, "root": framed_data}
    # an image without a row is an error, never a silent group of its own
    partial = tmp_path / "partial.csv"
    lines = signer_csv.read_text(encoding="utf-8").splitlines()
    partial.write_text("\n".join(lines[:-3]) + "\n", encoding="utf-8")
    with pytest.raises(TrainingError, match=r"2 of 48 training images have no 'signer' value"):
        split_indices(items, kind="grouped", group_by="signer", metadata=partial, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(TrainingError, match="'who' is not a column"):
        split_indices(items, kind="grouped", group_by="who", metadata=signer_csv, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(TrainingError, match="needs --split grouped"):
        split_indices(items, kind="random", group_by="signer", metadata=signer_csv, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(TrainingError, match="needs --metadata"):
        TrainConfig(split="grouped", group_by="signer")
    with pytest.raises(TrainingError, match="pass --group-by"):
        TrainConfig(split="grouped", metadata=str(signer_csv))
    with pytest.raises(TrainingError, match="no such file"):
        split_indices(
            items,
            kind="grouped",
            group_by="signer",
            metadata=tmp_path / "nope.csv",
            **kwargs,  # type: ignore[arg-type]
        )
    # signers that join every frame into one group cannot be split
    mixed = tmp_path / "mixed.csv"
    mixed.write_text(
        "path,signer\n" + "".join(f"{p.name},s{i % 2}\n" for i, (p, _) in enumerate(items)),
        encoding="utf-8",
    )
    with pytest.raises(TrainingError, match="leaves validation empty"):
        split_indices(items, kind="grouped", group_by="signer", metadata=mixed, **kwargs)  # type: ignore[arg-type]


def test_a_class_of_one_frame_sequence_is_named_as_unvalidated(
    framed_data: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import shutil

    root = tmp_path / "data"
    shutil.copytree(framed_data, root)
    rng = np.random.default_rng(1)
    for frame in range(1, 7):  # E1-E6: one sequence, so one group
        target = root / "E" / f"E{frame}.jpg"
        target.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(target)
    items = training_items(root).items
    with caplog.at_level(logging.WARNING, logger="asl_eval.training.data"):
        _, valid = split_indices(items, valid_pct=0.34, seed=42, kind="grouped")
    assert {items[i][1] for i in valid} == set(CLASSES)  # E has no validation image
    assert "leaves 1 of 5 classes without validation images (E)" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="asl_eval.training.data"):
        split_indices(training_items(framed_data).items, valid_pct=0.34, seed=42, kind="grouped")
    assert "without validation images" not in caplog.text
