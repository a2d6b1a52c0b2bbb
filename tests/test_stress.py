"""The robustness sweep's parts without a model: every change at every severity on the installed
albumentations, identity at severity 0, seeded determinism, background replacement, the
sample, the summary score against a hand computation, Spearman against scipy, the plots."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from matplotlib.axes import Axes
from scipy import stats

from asl_eval.analysis import AnalysisResult
from asl_eval.audit.foreground import foreground_mask
from asl_eval.errors import InputError
from asl_eval.stress.background import generate_background, replace_background
from asl_eval.stress.catalogue import (
    CATALOGUE,
    DEFAULT_CORRUPTIONS,
    check_corruptions,
    check_severities,
    corruption_info,
)
from asl_eval.stress.corruptions import corrupt, image_seed
from asl_eval.stress.plots import heatmap_matrix, plot_robustness_heatmap, plot_severity_curves
from asl_eval.stress.result import add_forecasts, build_result
from asl_eval.stress.summary import forecast_sentence, forecast_table
from asl_eval.stress.sweep import sample_per_class


def _hand_image(height: int = 48, width: int = 40, seed: int = 0) -> np.ndarray:
    """A textured 'hand' (a bright blob) on a plain, slightly noisy background."""
    rng = np.random.default_rng(seed)
    image = np.empty((height, width, 3), np.uint8)
    image[:] = (40, 90, 160)
    image = np.clip(image + rng.integers(-6, 7, image.shape), 0, 255).astype(np.uint8)
    y, x = np.mgrid[0:height, 0:width]
    hand = (y - height * 0.55) ** 2 / (height * 0.28) ** 2 + (x - width / 2) ** 2 / (
        width * 0.25
    ) ** 2 < 1
    texture = rng.integers(170, 240, (height, width, 3)).astype(np.uint8)
    image[hand] = texture[hand]
    return image


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    return _hand_image()


@pytest.mark.parametrize("name", list(CATALOGUE))
def test_every_change_runs_at_every_severity_and_zero_is_the_identity(
    name: str, image: np.ndarray
) -> None:
    original = image.copy()
    same = corrupt(image, name, 0, seed=image_seed(0, 0, name))
    assert same is image and np.array_equal(same, original)
    for severity in range(1, 6):
        out = corrupt(image, name, severity, seed=image_seed(0, 0, name))
        assert out.dtype == np.uint8 and out.shape == image.shape, (name, severity)
        assert not np.array_equal(out, image), f"{name} at {severity} changed nothing"
    assert np.array_equal(image, original), f"{name} wrote into its input"


@pytest.mark.parametrize("name", list(CATALOGUE))
def test_each_change_is_deterministic_under_a_seed(name: str, image: np.ndarray) -> None:
    first = corrupt(image, name, 3, seed=image_seed(7, 2, name))
    again = corrupt(image, name, 3, seed=image_seed(7, 2, name))
    assert np.array_equal(first, again)
    # a coin flip (the sign of a rotation or a hue shift) may agree for two seeds: try a few
    others = [corrupt(image, name, 3, seed=image_seed(s, 2, name)) for s in range(8, 14)]
    if corruption_info(name).random:
        assert any(not np.array_equal(first, o) for o in others), f"{name} ignores its seed"
    else:
        assert all(np.array_equal(first, o) for o in others), f"{name} draws random numbers"


def test_a_change_does_not_touch_numpys_global_generator(image: np.ndarray) -> None:
    np.random.seed(123)
    expected = np.random.random(3)
    np.random.seed(123)
    for name in CATALOGUE:
        corrupt(image, name, 4, seed=1)
    assert np.array_equal(np.random.random(3), expected)


def test_image_seed_is_the_same_in_another_process() -> None:
    code = "from asl_eval.stress.corruptions import image_seed; print(image_seed(3, 17, 'fog'))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert int(out.stdout) == image_seed(3, 17, "fog")
    assert len({image_seed(0, i, n) for i in range(20) for n in CATALOGUE}) == 20 * len(CATALOGUE)
    with pytest.raises(InputError, match="0 or more"):
        image_seed(-1, 0, "fog")


def test_brightness_is_imagenet_c_brightness(image: np.ndarray) -> None:
    """ImageNet-C's brightness: HSV value + c, clipped (c = 0.3 at severity 3)."""
    import cv2

    out = corrupt(image, "brightness", 3)
    hsv = cv2.cvtColor(image, cv2.COLOR_RGB2HSV).astype(np.int64)
    hsv[..., 2] = np.clip(hsv[..., 2] + round(0.3 * 255), 0, 255)
    expected = cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB)
    assert np.abs(out.astype(int) - expected.astype(int)).max() <= 2


def test_background_replacement_keeps_the_foreground(image: np.ndarray) -> None:
    mask = foreground_mask(image)
    assert 0.1 < mask.mean() < 0.6  # the estimate found the blob
    for severity in range(1, 6):
        out = corrupt(image, "background", severity, seed=5)
        assert np.array_equal(out[mask], image[mask])
        assert not np.array_equal(out[~mask], image[~mask])
    given = np.zeros(image.shape[:2], bool)
    given[:10] = True
    out = replace_background(image, 2, seed=1, mask=given)
    assert np.array_equal(out[given], image[given])
    with pytest.raises(InputError, match="mask"):
        replace_background(image, 2, seed=1, mask=given[:5])


def test_generated_backgrounds_grow_in_structure() -> None:
    rng = np.random.default_rng(0)
    plain = generate_background(30, 30, 1, rng)
    assert len(np.unique(plain.reshape(-1, 3), axis=0)) == 1
    noise = generate_background(30, 30, 5, rng)
    assert len(np.unique(noise.reshape(-1, 3), axis=0)) > 500
    with pytest.raises(InputError, match="1 to 5"):
        generate_background(3, 3, 6, rng)


def test_bad_arguments_are_refused(image: np.ndarray) -> None:
    with pytest.raises(InputError, match="unknown corruption 'frost'"):
        corrupt(image, "frost", 1)
    with pytest.raises(InputError, match="0 to 5"):
        corrupt(image, "fog", 6)
    with pytest.raises(InputError, match="uint8"):
        corrupt(image.astype(np.float32), "fog", 1)
    with pytest.raises(InputError, match="2 unknown corruption"):
        check_corruptions(["fog", "frost", "rain"])
    with pytest.raises(InputError, match="twice"):
        check_corruptions(["fog", "fog"])
    with pytest.raises(InputError, match="whole numbers from 0 to 5"):
        check_severities([1, 6])
    assert check_severities([3, 0]) == (0, 3)
    assert set(DEFAULT_CORRUPTIONS) <= set(CATALOGUE)
    assert not corruption_info("horizontal_flip").label_preserving
    assert all(info.label_preserving for n, info in CATALOGUE.items() if n != "horizontal_flip")


def test_sample_is_seeded_per_class_and_accounts_for_every_file() -> None:
    paths = [f"{c}/{i:02d}.png" for c in "ABC" for i in range(12)]
    labels = [p[0] for p in paths]
    sample = sample_per_class(paths, labels, ["C", "B", "A", "D"], n_per_class=5, seed=3)
    assert [c for _, c in sample.items] == ["C"] * 5 + ["B"] * 5 + ["A"] * 5
    assert len(sample.items) + len(sample.not_sampled) == len(paths)
    again = sample_per_class(paths, labels, ["C", "B", "A", "D"], n_per_class=5, seed=3)
    assert again == sample
    fewer = sample_per_class(paths[:12], labels[:12], ["A", "B", "C"], n_per_class=5, seed=3)
    assert [p for p, c in fewer.items if c == "A"] == [p for p, c in sample.items if c == "A"]
    other = sample_per_class(paths, labels, ["A", "B", "C"], n_per_class=5, seed=4)
    assert {p for p, _ in other.items} != {p for p, _ in sample.items}
    with pytest.raises(InputError, match="not among the model's classes"):
        sample_per_class(paths, labels, ["A", "B"], n_per_class=5)
    with pytest.raises(InputError, match="at least 1"):
        sample_per_class(paths, labels, ["A", "B", "C"], n_per_class=0)


# ---- the numbers, on a hand-made outcomes table -------------------------------------------

CLASSES = ("A", "B", "C", "D", "E")


def _outcomes(seed: int = 0) -> pd.DataFrame:
    """6 images per class; clean, blur at 1 and 3, rotate at 1 and 3, flip at 1: random
    correctness with class-dependent rates, wrong predictions sent to the next class."""
    rng = np.random.default_rng(seed)
    rows = []
    conditions = [("clean", 0), ("defocus_blur", 1), ("defocus_blur", 3), ("rotate", 1)]
    conditions += [("rotate", 3), ("horizontal_flip", 1)]
    for name, level in conditions:
        for k, cls in enumerate(CLASSES):
            for j in range(6):
                index = 6 * k + j
                rate = 0.95 - (0.12 * k * level if name != "clean" else 0)
                correct = bool(rng.random() < rate)
                predicted = cls if correct else CLASSES[(k + 1) % 5]
                rows.append(
                    (index, f"{cls}/{j}.png", cls, name, level, predicted, correct, 0.5, 0.6)
                )
    columns = ["index", "path", "class", "corruption", "severity", "predicted", "correct"]
    return pd.DataFrame(rows, columns=[*columns, "p_true", "p_predicted"])


def _result(items: pd.DataFrame) -> AnalysisResult:
    return build_result(
        items, classes=(*CLASSES, "Z"), parameters={"severities": [1, 3], "n_per_class": 6}
    )


def _info(result: AnalysisResult, key: str) -> pd.DataFrame:
    table = result.info[key]
    assert isinstance(table, pd.DataFrame)
    return table


def test_summary_score_equals_its_formula_by_hand() -> None:
    items = _outcomes()
    result = _result(items)
    accuracy = items.groupby(["corruption", "severity"])["correct"].mean()
    clean_error = 1 - accuracy[("clean", 0)]
    ce = {
        name: np.mean([(1 - accuracy[(name, s)]) - clean_error for s in (1, 3)])
        for name in ("defocus_blur", "rotate")
    }
    summary = result.summary_record()
    assert summary["mean_corruption_error"] == pytest.approx(
        (ce["defocus_blur"] + ce["rotate"]) / 2
    )
    table = _info(result, "corruptions").set_index("corruption")
    assert table.loc["rotate", "corruption_error"] == pytest.approx(ce["rotate"])
    assert summary["worst_corruption"] == max(ce, key=ce.__getitem__)


def test_flip_never_enters_the_score() -> None:
    items = _outcomes()
    flipped = items.copy()
    is_flip = flipped["corruption"] == "horizontal_flip"
    flipped.loc[is_flip, "correct"] = False
    flipped.loc[is_flip, "predicted"] = "E"
    first, second = _result(items), _result(flipped)
    for key in ("mean_corruption_error", "mean_corrupted_accuracy", "worst_corruption"):
        assert first.summary_record()[key] == second.summary_record()[key]
    table = _info(second, "corruptions").set_index("corruption")
    assert not table.loc["horizontal_flip", "label_preserving"]
    fragile = _info(second, "fragile_classes")
    assert "horizontal_flip" not in set(fragile["worst_corruption"])


def test_per_class_counts_add_up_and_keep_empty_classes() -> None:
    items = _outcomes()
    per_class = _info(_result(items), "per_class")
    conditions = _info(_result(items), "conditions")
    sums = per_class.groupby(["corruption", "severity"], sort=False)[["n_images", "n_correct"]]
    joined = sums.sum().reset_index().merge(conditions, on=["corruption", "severity"])
    assert (joined["n_images_x"] == joined["n_images_y"]).all()
    assert (joined["n_correct_x"] == joined["n_correct_y"]).all()
    assert (per_class.groupby("class")["n_images"].nunique() == 1).all()
    empty = per_class[per_class["class"] == "Z"]
    assert (empty["n_images"] == 0).all() and empty["accuracy"].isna().all()
    low, high = per_class["accuracy_low"], per_class["accuracy_high"]
    finite = per_class["accuracy"].notna()
    assert (
        (low[finite] <= per_class["accuracy"][finite])
        & (per_class["accuracy"][finite] <= high[finite])
    ).all()


def test_error_destinations_count_where_errors_go() -> None:
    items = _outcomes()
    table = _info(_result(items), "error_destinations")
    changed = items[(items["corruption"] != "clean") & ~items["correct"]]
    assert table["n_errors"].sum() == len(changed)
    assert set(zip(table["class"], table["predicted"], strict=True)) <= {
        (c, CLASSES[(k + 1) % 5]) for k, c in enumerate(CLASSES)
    }
    assert (table["share"] == table["n_errors"] / table["n_images"]).all()


def test_spearman_equals_scipys() -> None:
    items = _outcomes(seed=1)
    result = _result(items)
    ood = pd.Series({"A": 0.9, "B": 0.7, "C": 0.75, "D": 0.2, "E": 0.1, "Z": 0.5})
    table = forecast_table(_info(result, "per_class"), ood, set_name="massey")
    for name in ("defocus_blur", "rotate"):
        chosen = items[(items["corruption"] == name)]
        profile = chosen.groupby(["class", "severity"])["correct"].mean().groupby("class").mean()
        expected = stats.spearmanr(profile.loc[list(CLASSES)], ood.loc[list(CLASSES)])
        row = table.set_index("corruption").loc[name]
        assert row["rho"] == pytest.approx(expected.statistic)
        assert row["p_value"] == pytest.approx(expected.pvalue)
        assert row["n_classes"] == 5  # Z has no sweep images
    assert list(table["rank"]) == list(range(1, len(table) + 1))
    assert table["rho"].is_monotonic_decreasing
    from statsmodels.stats.multitest import multipletests

    family = table[table["label_preserving"] & table["p_value"].notna()]
    expected_holm = multipletests(family["p_value"], method="holm")[1]
    assert family["p_holm"].to_numpy() == pytest.approx(expected_holm)
    assert table.loc[~table["label_preserving"], "p_holm"].isna().all()
    constant = forecast_table(
        _info(result, "per_class"),
        pd.Series(dict.fromkeys(CLASSES, 0.5)),
        set_name="x",
    )
    assert constant["rho"].isna().all()
    sentence = forecast_sentence(table)
    assert sentence.startswith("On massey,")
    with_forecast = add_forecasts(result, {"massey": ood})
    sentences = with_forecast.info["forecast_sentences"]
    assert isinstance(sentences, dict) and sentences["massey"] == sentence
    best = table[table["label_preserving"]].iloc[0]["corruption"]
    assert with_forecast.summary_record()["best_forecast"] == best


def test_the_best_of_fifteen_noise_forecasts_is_seldom_called_a_match() -> None:
    """Out-of-domain accuracies unrelated to the sweep: picking the best of 15 correlations
    would call one a match in about half of the draws; with Holm, about 5% at most."""
    rng = np.random.default_rng(7)
    classes = [f"c{i}" for i in range(12)]
    names = [f"change{i}" for i in range(15)]
    matches = 0
    for _ in range(200):
        per_class = pd.DataFrame(
            [
                {"class": c, "corruption": n, "severity": 3, "accuracy": rng.random()}
                for n in names
                for c in classes
            ]
        )
        table = forecast_table(per_class, pd.Series(rng.random(12), index=classes), set_name="t")
        matches += "follows" in forecast_sentence(table)
    assert matches <= 20  # 10% of 200: Holm keeps the family-wise rate near 5%


def test_forecast_sentence_says_when_nothing_matches() -> None:
    table = pd.DataFrame(
        {
            "set": ["t", "t"],
            "corruption": ["rotate", "horizontal_flip"],
            "label_preserving": [True, False],
            "rho": [0.2, 0.99],
            "p_value": [0.4, 0.0001],
            "p_holm": [0.4, np.nan],
            "n_classes": [10, 10],
        }
    )
    sentence = forecast_sentence(table)
    assert "no simulated change matches" in sentence and "rotate" in sentence
    assert "horizontal_flip" not in sentence


def test_plots_return_axes() -> None:
    result = _result(_outcomes())
    per_class = _info(result, "per_class")
    matrix = heatmap_matrix(per_class)
    assert list(matrix.columns) == ["clean", "defocus_blur", "rotate", "horizontal_flip"]
    assert math.isnan(float(matrix.to_numpy()[-1, 0]))
    ax = plot_robustness_heatmap(per_class)
    assert isinstance(ax, Axes)
    assert [t.get_text() for t in ax.get_yticklabels()] == [*CLASSES, "Z"]
    assert "horizontal_flip (not label-preserving)" in [t.get_text() for t in ax.get_xticklabels()]
    curves = plot_severity_curves(_info(result, "conditions"))
    assert isinstance(curves, Axes)
    assert len(curves.get_lines()) == 3
    clean = float(_info(result, "conditions")["accuracy"].iloc[0])
    assert all(np.asarray(line.get_ydata())[0] == clean for line in curves.get_lines())
