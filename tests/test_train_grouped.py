"""``train --split grouped``: near-identical frames stay on one side of the validation split,
the training record says which split it was, and ``report --in-domain`` re-creates it."""

from __future__ import annotations

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
