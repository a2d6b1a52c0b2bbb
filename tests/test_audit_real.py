"""The leakage audit on the real ASL photos (skipped without ``../shared/data/asl``), through
the console script as a user runs it: the official 28-image test folder has near-copies among
the training frames, and a training frame planted in a copy of it, re-encoded and brightened,
is found."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import imagehash
import pytest
from PIL import Image, ImageEnhance

from .conftest import shared_asl_data

pytestmark = pytest.mark.slow
SCRIPT = Path(sys.executable).with_name("asl-eval")


def _audit(train: Path, against: Path) -> dict:  # type: ignore[type-arg]
    done = subprocess.run(
        [str(SCRIPT), "audit", str(train), "--against", str(against), "--json"],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def test_the_official_test_folder_has_near_copies_of_training_frames(tmp_path: Path) -> None:
    shared = shared_asl_data()
    train, official = shared / "asl_alphabet_train", shared / "asl_alphabet_test"
    planted_from = train / "T" / sorted(p.name for p in (train / "T").iterdir())[0]
    test = tmp_path / "test"
    shutil.copytree(official, test)
    image = ImageEnhance.Brightness(Image.open(planted_from).convert("RGB")).enhance(1.05)
    image.save(test / "planted_test.jpg", quality=70)

    report = _audit(train, test)
    found = {r["relpath"]: r for r in report["near_duplicates"] if r["set"] == "test"}
    # the planted frame: found, and matched to the frame it was made from
    assert found["planted_test.jpg"]["nearest_train"] == f"T/{planted_from.name}"
    # official test images with a near-copy: each pair checked with imagehash itself
    official_hits = sorted(name for name in found if name != "planted_test.jpg")
    assert len(official_hits) >= 3, official_hits
    for name in official_hits:
        row = found[name]
        a = imagehash.phash(Image.open(test / name).convert("RGB"))
        b = imagehash.phash(Image.open(train / row["nearest_train"]).convert("RGB"))
        assert a - b == row["phash_distance"] <= row["phash_threshold"], name
    # a near-copy's nearest frame shows the same letter as the test file's name says
    letters = {name.split("_")[0]: found[name]["nearest_label"] for name in official_hits}
    assert all(letter == label for letter, label in letters.items()), letters
    # the random split's validation frames leak too: a large share has a near-copy in training
    valid = next(s for s in report["sets"] if s["set"] == "valid")
    assert valid["near_duplicate_share"] > 0.2
