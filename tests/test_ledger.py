"""Every file accounted for: a folder mixing every awkward case, run through the real
``predict_folder`` with the session's tiny fastai learner."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from asl_eval.inference import predict_folder, predict_images
from asl_eval.inputs import (
    BROKEN_LINK,
    LINK_OUTSIDE,
    NOT_AN_IMAGE,
    TOO_LARGE,
    TRUNCATED,
    ZERO_BYTE,
)
from asl_eval.labels import LabelOptions

SIZE = 40


def noise(seed: int, channels: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (SIZE, SIZE, channels), dtype=np.uint8)


def write_png16_grey(path: Path, values: np.ndarray) -> None:
    Image.fromarray(values.astype(np.uint16)).save(path)
    with Image.open(path) as check:
        assert check.mode == "I;16"


def make_mixed_folder(root: Path) -> dict[str, tuple[str, str, str | None]]:
    """Create the folder; return ``relative path -> (status, reason, label)`` expected."""
    for folder in ["A", "B", "C", "D", "E", "F", "g", "7", "x.jpg", "A/x.jpg", ".hidden"]:
        (root / folder).mkdir(parents=True, exist_ok=True)
    expected: dict[str, tuple[str, str, str | None]] = {}

    def evaluated(rel: str, label: str) -> None:
        expected[rel] = ("evaluated", "", label)

    Image.fromarray(noise(1)).save(root / "A/good.png")
    evaluated("A/good.png", "A")
    (root / "A/empty.jpg").write_bytes(b"")
    expected["A/empty.jpg"] = ("excluded", ZERO_BYTE, "A")
    Image.fromarray(noise(2)).save(root / "A/cut.jpg", quality=95)
    data = (root / "A/cut.jpg").read_bytes()
    (root / "A/cut.jpg").write_bytes(data[: len(data) // 2])
    expected["A/cut.jpg"] = ("excluded", TRUNCATED, "A")
    (root / "A/notes.jpg").write_text("not a picture")
    expected["A/notes.jpg"] = ("excluded", NOT_AN_IMAGE, "A")
    (root / "A/readme.txt").write_text("not an input")  # not found: not an image extension
    Image.fromarray(noise(3)).save(root / "A/.secret.png")  # hidden: not found
    Image.fromarray(noise(4)).save(root / ".hidden/h.png")  # hidden folder: not found
    os.symlink(root, root / "A/loop")  # a loop back to the top: walked once

    Image.fromarray(noise(5, 4), mode="RGBA").save(root / "B/alpha.png")
    evaluated("B/alpha.png", "B")
    Image.fromarray(noise(6, 4), mode="CMYK").save(root / "B/cmyk.jpg")
    evaluated("B/cmyk.jpg", "B")
    deep = np.random.default_rng(7).integers(0, 65536, (SIZE, SIZE), dtype=np.uint32)
    write_png16_grey(root / "C/deep16.png", deep)
    evaluated("C/deep16.png", "C")
    Image.fromarray(noise(8, 1)[..., 0], mode="L").save(root / "C/grey.png")
    evaluated("C/grey.png", "C")
    palette = Image.fromarray(noise(9)).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    palette.save(root / "D/palette.gif", transparency=0)
    evaluated("D/palette.gif", "D")
    Image.new("RGB", (200, 200), (9, 9, 9)).save(root / "D/bomb.png")  # over the lowered limit
    expected["D/bomb.png"] = ("excluded", TOO_LARGE, "D")
    for i, name in enumerate(["with space.png", 'quote\'s "x".png', "a<b&c>.png", "Ñandú 手.png"]):
        Image.fromarray(noise(20 + i)).save(root / "E" / name)
        evaluated(f"E/{name}", "E")
    os.symlink(root / "F/gone.png", root / "F/dangling.png")
    expected["F/dangling.png"] = ("excluded", BROKEN_LINK, None)
    Image.fromarray(noise(10)).save(root / "g/lower.PNG")  # folder "g" aligns to class "G"
    evaluated("g/lower.PNG", "G")
    Image.fromarray(noise(11)).save(root / "7/seven.png")
    expected["7/seven.png"] = ("not_in_classes", "label is not one of the model's classes", "7")
    Image.fromarray(noise(12)).save(root / "x.jpg/inner.png")  # a folder named like an image
    expected["x.jpg/inner.png"] = (
        "not_in_classes",
        "label is not one of the model's classes",
        "x.jpg",
    )
    Image.fromarray(noise(13)).save(root / "loose.png")
    expected["loose.png"] = (
        "unlabeled",
        "file directly in the input folder (no class subfolder)",
        None,
    )
    return expected


def test_every_file_is_accounted_for(
    tiny_learner,  # type: ignore[no-untyped-def]
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    root = tmp_path / "mixed"
    expected = make_mixed_folder(root)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 20_000)  # bomb.png has 40,000 pixels

    predictions = predict_folder(tiny_learner, root, label_options=LabelOptions())

    ledger = predictions.ledger
    got = {
        Path(e.path).relative_to(root).as_posix(): (e.status, e.reason, e.label)
        for e in ledger.entries
    }
    assert got == expected

    summary = ledger.summary()
    statuses = Counter(status for status, _, _ in expected.values())
    reasons = Counter(reason for status, reason, _ in expected.values() if status == "excluded")
    assert summary["found"] == len(expected) == 19
    assert summary["evaluated"] == statuses["evaluated"] == 11
    assert summary["excluded"] == dict(reasons)
    assert summary["unlabeled"] == statuses["unlabeled"] == 1
    assert summary["not_in_classes"] == {"7": 1, "x.jpg": 1}
    assert len(expected) == (  # found = evaluated + excluded + unlabeled + not in classes
        summary["evaluated"]
        + sum(summary["excluded"].values())  # type: ignore[attr-defined]
        + summary["unlabeled"]
        + summary["n_not_in_classes"]
    )

    # the predicted rows are exactly the evaluated files, with their labels
    evaluated = [e for e in ledger.entries if e.status == "evaluated"]
    assert list(predictions.paths) == [e.path for e in evaluated]
    assert list(predictions.labels_true) == [e.label for e in evaluated]
    assert predictions.y_proba.shape == (11, len(predictions.classes))


def test_converted_images_reach_the_model_as_documented(
    tiny_learner,  # type: ignore[no-untyped-def]
    tmp_path: Path,
) -> None:
    """The model sees the 16-bit, transparent and palette files exactly as converted by hand."""
    root = tmp_path / "conv"
    (root / "A").mkdir(parents=True)
    deep = np.random.default_rng(7).integers(0, 65536, (SIZE, SIZE), dtype=np.uint32)
    write_png16_grey(root / "A/deep16.png", deep)
    rgba = noise(5, 4)
    Image.fromarray(rgba, mode="RGBA").save(root / "A/alpha.png")
    palette = Image.fromarray(noise(9)).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    palette.save(root / "A/palette.gif", transparency=0)

    predictions = predict_folder(tiny_learner, root)

    grey = np.rint(deep * 255 / 65535).astype(np.uint8)
    alpha = rgba[..., 3:4] / 255
    composite = np.rint(rgba[..., :3] * alpha + 255 * (1 - alpha)).astype(np.uint8)
    with Image.open(root / "A/palette.gif") as gif:
        indices = np.asarray(gif)
        colours = np.asarray(gif.getpalette()[: 3 * 256], dtype=np.uint8).reshape(-1, 3)
    gif_rgb = colours[indices]
    gif_rgb[indices == 0] = 255  # the transparent index becomes the white background
    by_hand = {
        "deep16.png": np.repeat(grey[..., None], 3, axis=2),
        "alpha.png": composite,
        "palette.gif": gif_rgb,
    }
    names = [Path(p).name for p in predictions.paths]
    assert sorted(names) == sorted(by_hand)
    images = [Image.fromarray(by_hand[name]) for name in names]
    reference = predict_images(tiny_learner, images)
    np.testing.assert_allclose(predictions.y_proba, reference, atol=1e-4)


def test_links_out_of_the_folder_are_counted_and_never_read(
    tiny_learner,  # type: ignore[no-untyped-def]
    tmp_path: Path,
) -> None:
    root, elsewhere = tmp_path / "test", tmp_path / "elsewhere"
    for folder in (root / "A", root / "B", elsewhere / "album"):
        folder.mkdir(parents=True)
    Image.fromarray(noise(30)).save(root / "A" / "good.png")
    Image.fromarray(noise(31)).save(root / "B" / "good.png")
    Image.fromarray(noise(32)).save(elsewhere / "secret.png")
    Image.fromarray(noise(33)).save(elsewhere / "album" / "face.png")
    os.symlink(elsewhere / "secret.png", root / "A" / "away.png")
    os.symlink(elsewhere / "album", root / "B" / "album")
    os.symlink(root / "A" / "good.png", root / "B" / "same.png")  # stays inside: evaluated

    predictions = predict_folder(tiny_learner, root, label_options=LabelOptions())
    got = {
        Path(e.path).relative_to(root).as_posix(): (e.status, e.reason)
        for e in predictions.ledger.entries
    }
    assert got == {
        "A/good.png": ("evaluated", ""),
        "B/good.png": ("evaluated", ""),
        "B/same.png": ("evaluated", ""),
        "A/away.png": ("excluded", LINK_OUTSIDE),
        "B/album": ("excluded", LINK_OUTSIDE),
    }
    summary = predictions.ledger.summary()
    assert summary["found"] == 5 == summary["evaluated"] + summary["n_excluded"]  # type: ignore[operator]
    assert not any("elsewhere" in str(Path(p).resolve()) for p in predictions.paths)

    followed = predict_folder(tiny_learner, root, label_options=LabelOptions(follow_links=True))
    statuses = {
        Path(e.path).relative_to(root).as_posix(): e.status for e in followed.ledger.entries
    }
    assert statuses == {
        "A/away.png": "evaluated",
        "A/good.png": "evaluated",
        "B/album/face.png": "not_in_classes",  # walked now; its folder "album" is no class
        "B/good.png": "evaluated",
        "B/same.png": "evaluated",
    }


def test_training_does_not_follow_links_out_of_its_folder(tmp_path: Path) -> None:
    from asl_eval.training.data import training_items

    root, elsewhere = tmp_path / "train", tmp_path / "elsewhere"
    for i, label in enumerate(["A", "A", "B", "B"]):
        (root / label).mkdir(parents=True, exist_ok=True)
        Image.fromarray(noise(40 + i)).save(root / label / f"{i}.png")
    elsewhere.mkdir()
    Image.fromarray(noise(50)).save(elsewhere / "x.png")
    os.symlink(elsewhere / "x.png", root / "B" / "linked.png")
    found = training_items(root)
    assert len(found.items) == 4
    assert [(Path(e.path).name, e.reason) for e in found.entries] == [("linked.png", LINK_OUTSIDE)]
    followed = training_items(root, label_options=LabelOptions(source="folder", follow_links=True))
    assert len(followed.items) == 5 and followed.entries == ()
