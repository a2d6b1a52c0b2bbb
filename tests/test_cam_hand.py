"""Heatmap mass outside the hand (asl_eval.cam.hand) and the findings' Grad-CAM background
check on planted heatmaps: on the background a finding with the right numbers, on the hand
none. The hand is planted, so the expected masses are computed from the planted rectangle, not
from the foreground estimate under test."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.proportion import confint_proportions_2indep

from asl_eval.analysis import AnalysisResult
from asl_eval.cam.hand import hand_masks, outside_mass, outside_masses
from asl_eval.errors import CamError
from asl_eval.findings import FindingsSet, find, findings_of
from asl_eval.predictions import Predictions

SIZE = 48
HAND = (slice(12, 36), slice(14, 34))  # rows, columns of the planted hand


def planted_image(seed: int) -> np.ndarray:
    """A skin-coloured hand on a blue background with a little noise."""
    rng = np.random.default_rng(seed)
    image = np.empty((SIZE, SIZE, 3), dtype=np.float64)
    image[:] = (40, 60, 200)
    image[HAND] = (225, 172, 140)
    image += rng.normal(0, 4, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)


def blob(row: float, col: float, sigma: float = 3.0) -> np.ndarray:
    """A Gaussian heatmap centred at ``(row, col)``, scaled to a maximum of 1 like Grad-CAM's."""
    rows, cols = np.mgrid[0:SIZE, 0:SIZE]
    heatmap = np.exp(-((rows - row) ** 2 + (cols - col) ** 2) / (2 * sigma**2))
    return heatmap / heatmap.max()


def planted_hand() -> np.ndarray:
    mask = np.zeros((SIZE, SIZE), dtype=bool)
    mask[HAND] = True
    return mask


def by_hand(heatmap: np.ndarray) -> float:
    """The outside share computed on the planted rectangle with plain sums."""
    inside = heatmap[HAND].sum()
    return float((heatmap.sum() - inside) / heatmap.sum())


def test_outside_mass_by_hand() -> None:
    heatmap = np.zeros((4, 4))
    heatmap[0, :] = 1.0  # 4 outside
    heatmap[3, 3] = 2.0  # 2 inside
    hand = np.zeros((4, 4), dtype=bool)
    hand[2:, 2:] = True
    assert outside_mass(heatmap, hand) == pytest.approx(4 / 6)
    assert outside_mass(heatmap, np.ones((4, 4), dtype=bool)) == 0.0
    assert math.isnan(outside_mass(np.zeros((4, 4)), hand))  # an empty heatmap
    assert math.isnan(outside_mass(heatmap, np.zeros((4, 4), dtype=bool)))  # no hand found
    with pytest.raises(CamError, match="must have the image's size"):
        outside_mass(heatmap, np.ones((3, 3), dtype=bool))
    with pytest.raises(CamError, match=r"expected \(n, H, W, 3\) RGB images"):
        hand_masks(np.zeros((4, 4, 3), dtype=np.uint8))


def test_the_foreground_estimate_finds_the_planted_hand() -> None:
    images = np.stack([planted_image(seed) for seed in range(3)])
    masks = hand_masks(images)
    truth = planted_hand()
    for mask in masks:
        agreement = (mask == truth).mean()
        assert agreement > 0.98
    on_background, on_hand = blob(5, 5), blob(24, 24)
    found = outside_masses(np.stack([on_background, on_hand, on_background]), masks)
    expected = [by_hand(on_background), by_hand(on_hand), by_hand(on_background)]
    assert found == pytest.approx(expected, abs=0.02)
    assert found[0] > 0.95 and found[1] < 0.05


def _cam_result(outside: np.ndarray, correct: np.ndarray) -> AnalysisResult:
    """A cam analysis as the stage writes it, for the columns the check reads."""
    n = len(outside)
    items = pd.DataFrame(
        {
            "group": ["class"] * n,
            "class": ["A"] * n,
            "path": [f"massey/A/{i}.jpg" for i in range(n)],
            "set": ["massey"] * n,
            "correct": correct,
            "faithfulness_pred": np.full(n, 0.3),
            "outside_mass_pred": outside,
        }
    )
    summary = pd.DataFrame(
        [
            {
                "ood_set": "massey",
                "faithfulness_metric": "road",
                "faithfulness_higher_is_better": True,
            }
        ]
    )
    return AnalysisResult("cam", items, summary)


def _massey() -> Predictions:
    classes = ["A", "B", "C"]
    y_true = ["A"] * 30 + ["B"] * 30 + ["C"] * 30
    proba = np.eye(3)[[0] * 20 + [1] * 10 + [1] * 30 + [2] * 30] * 0.8 + 0.2 / 3
    paths = [f"massey/{t}/{i}.jpg" for i, t in enumerate(y_true)]
    return Predictions.from_labels(y_true, proba, classes, paths=paths, name="massey")


def test_heatmaps_on_the_background_are_a_finding_with_its_numbers() -> None:
    images = np.stack([planted_image(seed) for seed in range(40)])
    masks = hand_masks(images)
    correct = np.array([i < 10 for i in range(40)])
    # wrong images: 24 of 30 look at the background; right ones: 1 of 10
    on_background = [i >= 16 or i == 0 for i in range(40)]
    heatmaps = np.stack([blob(4, 4) if b else blob(24, 24) for b in on_background])
    outside = outside_masses(heatmaps, masks)
    result = find([FindingsSet(_massey())], sections={"cam": _cam_result(outside, correct)})
    (finding,) = [f for f in findings_of(result) if f.check == "cam-background"]
    a, n_a, b, n_b = 24, 30, 1, 10
    assert finding.numbers == {"wrong_outside": a, "wrong": n_a, "right_outside": b, "right": n_b}
    low, high = confint_proportions_2indep(a, n_a, b, n_b, method="newcomb", compare="diff")
    assert (finding.effect, finding.effect_low, finding.effect_high) == pytest.approx(
        (a / n_a - b / n_b, low, high)
    )
    assert finding.score == pytest.approx(n_a * low)
    assert finding.sentence.startswith(
        "On massey, the heatmaps of misclassified images lie mostly outside the hand in 24 of "
        "30 (80%) against 1 of 10 (10%) for correct ones: 70 points more"
    )
    assert finding.evidence.anchor == "cam"
    wrong_off = {f"massey/A/{i}.jpg" for i in range(16, 40)}
    assert set(finding.evidence.paths) <= wrong_off and len(finding.evidence.paths) == 9


def test_heatmaps_on_the_hand_are_silent() -> None:
    images = np.stack([planted_image(seed) for seed in range(40)])
    heatmaps = np.stack([blob(24 + (i % 5) - 2, 24) for i in range(40)])
    outside = outside_masses(heatmaps, hand_masks(images))
    assert (outside < 0.1).all()
    correct = np.array([i < 10 for i in range(40)])
    result = find([FindingsSet(_massey())], sections={"cam": _cam_result(outside, correct)})
    assert [f for f in findings_of(result) if f.check == "cam-background"] == []
    assert "cam-background" not in {s["check"] for s in result.info["skipped"].to_dict("records")}  # type: ignore[union-attr]
