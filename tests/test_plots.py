"""Plots checked through the Axes they return (Agg backend, no pyplot state)."""

from __future__ import annotations

import string
import warnings
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest
from matplotlib.axes import Axes
from matplotlib.container import BarContainer
from matplotlib.figure import Figure

from asl_eval import metrics, plots
from asl_eval.errors import ReportError
from asl_eval.predictions import Predictions

matplotlib.use("Agg")

ASL_CLASSES = [*string.ascii_uppercase, "del", "nothing", "space"]


def bar_containers(ax: Axes) -> list[BarContainer]:
    return [c for c in ax.containers if isinstance(c, BarContainer)]


def heights(container) -> np.ndarray:  # type: ignore[no-untyped-def]
    return np.array([patch.get_height() for patch in container.patches])


def predictions(n_per_class: int, correct: list[int], name: str, seed: int = 0) -> Predictions:
    rng = np.random.default_rng(seed)
    k = len(correct)
    y_true, y_pred = [], []
    for i, right in enumerate(correct):
        y_true += [i] * n_per_class
        # Wrong predictions: any other class (offset 1..k-1), so exactly `right` are right.
        y_pred += [i] * right + list((i + rng.integers(1, k, n_per_class - right)) % k)
    y_pred_arr = np.array(y_pred)
    # The predicted class gets a confidence in (0.5, 0.99); the rest is shared by the others,
    # so it is the argmax and confidences spread over the reliability bins.
    n = len(y_true)
    top = rng.uniform(0.5, 0.99, n)
    rest = rng.dirichlet(np.ones(k), n) if k > 1 else np.zeros((n, 1))
    rest[np.arange(n), y_pred_arr] = 0.0
    rest = rest / np.where(rest.sum(axis=1, keepdims=True) > 0, rest.sum(axis=1, keepdims=True), 1)
    proba = rest * (1 - top)[:, None]
    proba[np.arange(n), y_pred_arr] = top
    return Predictions(
        classes=tuple(ASL_CLASSES[:k]),
        paths=tuple(f"{name}/{i}.jpg" for i in range(len(y_true))),
        y_true=np.array(y_true),
        y_proba=proba,
        name=name,
    )


@pytest.fixture(autouse=True)
def no_pyplot_figures():  # type: ignore[no-untyped-def]
    """Plots must not register figures with pyplot."""
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    yield
    assert plt.get_fignums() == before


def test_per_class_bars_equal_the_table_and_whiskers_the_wilson_interval(tmp_path: Path) -> None:
    correct = [15, 30, 17, 0, 4, 20]
    table = metrics.per_class_accuracy(predictions(30, correct, "valid"))
    ax = plots.plot_per_class_accuracy(table, title="valid")
    assert isinstance(ax, Axes) and isinstance(ax.figure, Figure)
    (container,) = bar_containers(ax)
    np.testing.assert_allclose(heights(container), np.array(correct) / 30)
    # The error bar segments run from ci_low to ci_high.
    segments = container.errorbar.lines[2][0].get_segments()
    np.testing.assert_allclose([s[0][1] for s in segments], table["ci_low"])
    np.testing.assert_allclose([s[1][1] for s in segments], table["ci_high"])
    assert [t.get_text() for t in ax.get_xticklabels()] == ASL_CLASSES[:6]
    assert ax.get_title(loc="left") == "valid"
    out = tmp_path / "bars.png"
    ax.figure.savefig(out)
    assert out.stat().st_size > 1000


def test_per_class_bars_side_by_side_and_missing_class() -> None:
    inside = metrics.per_class_accuracy(predictions(10, [10, 8, 5], "in"))
    with pytest.warns(RuntimeWarning, match="without images: C"):
        outside = metrics.per_class_accuracy(
            ["A", "A", "B"], ["A", "B", "B"], classes=["A", "B", "C"]
        )
    ax = plots.plot_per_class_accuracy({"in domain": inside, "out of domain": outside})
    first, second = bar_containers(ax)
    np.testing.assert_allclose(heights(first), [1.0, 0.8, 0.5])
    np.testing.assert_allclose(heights(second), [0.5, 1.0, np.nan])
    # Sets sit side by side around each class position.
    x_first = [p.get_x() + p.get_width() / 2 for p in first.patches]
    x_second = [p.get_x() + p.get_width() / 2 for p in second.patches]
    np.testing.assert_allclose(x_first, [-0.2, 0.8, 1.8])
    np.testing.assert_allclose(x_second, [0.2, 1.2, 2.2])
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["in domain", "out of domain"]


def test_per_class_rejects_other_tables() -> None:
    with pytest.raises(ReportError, match="per_class_accuracy"):
        plots.plot_per_class_accuracy(pd.DataFrame({"recall": [1.0]}))
    a = metrics.per_class_accuracy(["A"], ["A"])
    b = metrics.per_class_accuracy(["B"], ["B"])
    with pytest.raises(ReportError, match="different classes"):
        plots.plot_per_class_accuracy({"a": a, "b": b})


def test_confusion_heatmap_at_29_classes_on_a_given_axes() -> None:
    p = predictions(10, [10, 7, 3, 0, 9] * 5 + [8, 8, 8, 8], "valid")
    matrix = metrics.confusion_matrix(p)
    figure = Figure()
    given_ax = figure.add_subplot()
    ax = plots.plot_confusion_matrix(matrix, given_ax)
    assert ax is given_ax
    mesh = ax.collections[0]
    np.testing.assert_array_equal(np.asarray(mesh.get_array()).reshape(29, 29), matrix)
    assert [t.get_text() for t in ax.get_xticklabels()] == ASL_CLASSES
    assert [t.get_text() for t in ax.get_yticklabels()] == ASL_CLASSES
    assert ax.get_xlabel() == "predicted" and ax.get_ylabel() == "actual"
    texts = [t.get_text() for t in ax.texts]
    nonzero = matrix.to_numpy()[matrix.to_numpy() != 0]
    assert sorted(t for t in texts if t) == sorted(str(v) for v in nonzero)
    assert texts.count("") == int((matrix.to_numpy() == 0).sum())


def test_normalised_confusion_heatmap_shows_shares_and_blank_nan() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        matrix = metrics.confusion_matrix(
            ["A", "A", "B"], ["A", "B", "B"], classes=["A", "B", "C"], normalize="true"
        )
    ax = plots.plot_confusion_matrix(matrix)
    texts = [t.get_text() for t in ax.texts]
    assert texts[:3] == ["0.50", "0.50", ""] and texts[3:6] == ["", "1.00", ""]
    assert all(t == "" for t in texts[6:])  # class C has no images: NaN row
    assert np.ma.getmaskarray(ax.collections[0].get_array())[2].all()
    with pytest.raises(ReportError, match="square DataFrame"):
        plots.plot_confusion_matrix(pd.DataFrame(np.zeros((2, 3))))


def test_reliability_diagram_bars_are_the_table() -> None:
    p = predictions(20, [18, 15, 10, 5], "valid", seed=3)
    table = metrics.reliability_table(p, n_bins=10)
    ax = plots.plot_reliability_diagram(table)
    accuracy_bars, gap_bars = ax.containers[:2]
    np.testing.assert_allclose(heights(accuracy_bars), table["accuracy"])
    np.testing.assert_allclose(
        heights(gap_bars), table["confidence"] - table["accuracy"], equal_nan=True
    )
    np.testing.assert_allclose([b.get_x() for b in accuracy_bars.patches], table["lower"])
    ece = metrics.expected_calibration_error(p, n_bins=10)
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert f"ECE {ece:.3f}" in " ".join(legend)


def test_domain_gap_points_are_the_accuracies() -> None:
    classes = ASL_CLASSES[:4]
    inside = predictions(30, [30, 29, 20, 25], "in")
    outside = predictions(30, [2, 28, 22, 10], "out", seed=1)
    comparison = metrics.domain_comparison(inside, outside)
    ax = plots.plot_domain_gap(comparison, title="gap")
    in_points = ax.collections[1].get_offsets()
    out_points = ax.collections[2].get_offsets()
    np.testing.assert_allclose(in_points[:, 0], comparison["accuracy_in"])
    np.testing.assert_allclose(out_points[:, 0], comparison["accuracy_out"])
    np.testing.assert_allclose(in_points[:, 1], np.arange(4))
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels[0] == "A *"  # largest, significant drop on top
    assert sorted(label.rstrip(" *") for label in labels) == classes
    assert sum(label.endswith("*") for label in labels) == int(comparison["significant"].sum())


def test_confidence_histogram_stacks_correct_and_wrong() -> None:
    p = predictions(20, [18, 15, 10, 5], "valid", seed=2)
    histogram = metrics.confidence_histogram(p, n_bins=10)
    ax = plots.plot_confidence_histogram(histogram)
    correct, wrong = ax.containers
    np.testing.assert_allclose(heights(correct), histogram["correct"])
    np.testing.assert_allclose(heights(wrong), histogram["wrong"])
    np.testing.assert_allclose([b.get_y() for b in wrong.patches], histogram["correct"])
    assert (histogram["correct"] + histogram["wrong"]).sum() == p.n_images


HOSTILE = ("$\\notacommand$", "5$", "a$b$c")


def test_names_with_dollars_are_drawn_as_written(tmp_path: Path) -> None:
    """A class or set named with ``$`` is text, not math: the figure still draws."""
    p = Predictions(
        classes=HOSTILE,
        paths=("x/1.jpg", "x/2.jpg", "x/3.jpg"),
        y_true=np.array([0, 1, 2]),
        y_proba=np.array([[0.8, 0.1, 0.1], [0.7, 0.2, 0.1], [0.1, 0.1, 0.8]]),
        name="set $1$",
    )
    q = Predictions(
        classes=HOSTILE,
        paths=("y/1.jpg", "y/2.jpg", "y/3.jpg"),
        y_true=np.array([0, 1, 2]),
        y_proba=np.array([[0.1, 0.8, 0.1], [0.2, 0.7, 0.1], [0.1, 0.1, 0.8]]),
        name="other",
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # tiny sets: undefined intervals
        axes = [
            plots.plot_per_class_accuracy(
                {p.name: metrics.per_class_accuracy(p), q.name: metrics.per_class_accuracy(q)},
                title="$\\bad$",
            ),
            plots.plot_confusion_matrix(metrics.confusion_matrix(p)),
            plots.plot_domain_gap(metrics.domain_comparison(p, q)),
        ]
    for i, ax in enumerate(axes):
        ax.figure.savefig(tmp_path / f"{i}.png")  # raised ValueError before names were escaped
    shown = [t.get_text() for t in axes[1].get_xticklabels()]
    assert shown == [plots.literal(c) for c in HOSTILE]
    # what a reader sees: matplotlib draws the escaped text literally
    assert not any(t._preprocess_math(t.get_text())[1] for t in axes[1].get_xticklabels())
