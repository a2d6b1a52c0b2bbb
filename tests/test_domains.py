"""The domains analysis (asl_eval.audit.domains): its statistics against scipy, statsmodels and
hand computations, a planted dark-only failure found end to end, its figures, its report
section and its findings check."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.axes import Axes
from PIL import Image
from scipy.stats import mannwhitneyu
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import confint_proportions_2indep, proportion_confint

import asl_eval.findings.checks.properties  # registers the check
import asl_eval.report.domains_section  # noqa: F401  (registers the section)
from asl_eval.analysis import AnalysisResult
from asl_eval.audit.domain_plots import (
    plot_accuracy_by_bin,
    plot_property_differences,
    plot_property_distribution,
)
from asl_eval.audit.domains import (
    analyse_properties,
    domain_analysis,
    domains_record,
    standardized_difference,
)
from asl_eval.audit.properties import PROPERTIES
from asl_eval.audit.property_bins import accuracy_by_bin, bin_thresholds
from asl_eval.errors import MetricError, ReportError
from asl_eval.findings import FindingsSet, find
from asl_eval.findings.model import Finding
from asl_eval.inputs import UNREADABLE_FILE
from asl_eval.predictions import Predictions
from asl_eval.report import EvaluationSet, ModelInfo, build_context, read_report_json, write_report
from asl_eval.report.domains_section import DOMAINS_SECTION, build
from asl_eval.report.registry import section_spec
from asl_eval.report.render import make_environment

HOSTILE = "<b>x</b>&"
HOSTILE_FILE = "<img src=x onerror=alert(1)>&"
CLASSES = ("A", "B", HOSTILE)


# -- building blocks against independent computations ---------------------------------------
def test_standardized_difference_by_hand() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.normal(3, 2, 40), rng.normal(1, 1, 25)
    pooled = math.sqrt((39 * a.var(ddof=1) + 24 * b.var(ddof=1)) / 63)
    assert standardized_difference(a, b) == pytest.approx((a.mean() - b.mean()) / pooled)
    assert standardized_difference([2.0, 2.0], [2.0, 2.0]) == 0.0
    assert standardized_difference([1.0, 1.0], [2.0, 2.0]) == -math.inf
    assert standardized_difference([0.1] * 7, [0.1] * 3) == 0.0  # rounding noise in the means
    assert math.isnan(standardized_difference([], [1.0, 2.0]))


def test_bins_keep_ties_together() -> None:
    values = np.array([0.0] * 10 + [1.0, 2.0, 3.0])
    assert bin_thresholds(values, 3).tolist() == [1.0]
    assert bin_thresholds(np.arange(9.0), 3).tolist() == [3.0, 6.0]
    table, index = accuracy_by_bin(np.arange(9.0), [0, 0, 0, 1, 1, 0, 1, 1, 1], bins=3)
    assert index.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert table["n_correct"].tolist() == [0, 2, 3]
    low, high = proportion_confint(2, 3, method="wilson")
    assert (table.loc[1, "accuracy_low"], table.loc[1, "accuracy_high"]) == pytest.approx(
        (low, high)
    )
    assert table["lower"].tolist() == [0.0, 3.0, 6.0] and table["upper"].tolist() == [2.0, 5.0, 8.0]
    with pytest.raises(MetricError, match="one per image"):
        accuracy_by_bin([1.0, 2.0], [True], bins=2)


def _items(seed: int = 1) -> pd.DataFrame:
    """A measured items table without images: set "in" and two other sets."""
    rng = np.random.default_rng(seed)
    frames = []
    for name, n, shift in (("in", 60, 0.0), ("out", 45, 0.8), ("far", 30, 2.0)):
        frame = pd.DataFrame(
            {prop: rng.normal(10 * (i + 1), 3, n) for i, prop in enumerate(PROPERTIES)}
        )
        frame["brightness"] += shift * 3
        frame["sharpness"] -= shift * 1.5
        frame.insert(0, "set", name)
        frame.insert(1, "path", [f"{name}/{i}.jpg" for i in range(n)])
        frame.insert(2, "label", rng.choice(["A", "B"], n))
        frame.insert(3, "correct", rng.random(n) < 0.7)
        frame.insert(4, "status", "measured")
        frame.insert(5, "reason", "")
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def test_differences_match_scipy_and_statsmodels() -> None:
    items = _items()
    result = analyse_properties(items, in_domain="in", alpha=0.05)
    table = result.info["differences"]
    assert isinstance(table, pd.DataFrame) and len(table) == 2 * len(PROPERTIES)
    for row in table.to_dict(orient="records"):
        a = items.loc[items["set"] == row["set"], row["property"]].to_numpy()
        b = items.loc[items["set"] == "in", row["property"]].to_numpy()
        test = mannwhitneyu(a, b, alternative="two-sided")
        assert row["p_value"] == pytest.approx(test.pvalue, rel=1e-12)
        assert row["auc"] == pytest.approx(test.statistic / (a.size * b.size))
        pooled = math.sqrt(
            ((a.size - 1) * a.var(ddof=1) + (b.size - 1) * b.var(ddof=1)) / (a.size + b.size - 2)
        )
        assert row["smd"] == pytest.approx((a.mean() - b.mean()) / pooled)
    reject, adjusted, _, _ = multipletests(table["p_value"], alpha=0.05, method="holm")
    assert table["p_adjusted"].to_numpy() == pytest.approx(adjusted)
    assert table["significant"].tolist() == reject.tolist()
    # Ranked within each set: significant first, each group by |d|; "out" before "far".
    assert table["set"].tolist() == ["out"] * len(PROPERTIES) + ["far"] * len(PROPERTIES)
    for _, part in table.groupby("set"):
        assert part["rank"].tolist() == list(range(1, len(PROPERTIES) + 1))
        flags = part["significant"].tolist()
        assert flags == sorted(flags, reverse=True)
        for _, group in part.groupby("significant"):
            assert group["smd"].abs().is_monotonic_decreasing
    # the summary's top difference is the largest over every set, not the first set's
    significant = table[table["significant"]]
    largest = significant.loc[significant["smd"].abs().idxmax()]
    summary = result.summary_record()
    assert (summary["top_set"], summary["top_property"]) == ("far", largest["property"])
    assert largest["set"] == "far"
    far = table[table["set"] == "far"]
    assert set(far["property"][:2]) == {"brightness", "sharpness"}


def test_options_and_inputs_are_checked() -> None:
    items = _items()
    with pytest.raises(MetricError, match="bins"):
        analyse_properties(items, in_domain="in", bins=0)
    with pytest.raises(MetricError, match="alpha"):
        analyse_properties(items, in_domain="in", alpha=1.0)
    with pytest.raises(MetricError, match="not among the sets"):
        analyse_properties(items, in_domain="nope")
    with pytest.raises(MetricError, match="lacks the columns"):
        analyse_properties(items.drop(columns=["sharpness"]), in_domain="in")


def test_in_domain_alone_has_no_differences() -> None:
    items = _items()
    result = analyse_properties(items[items["set"] == "in"], in_domain="in")
    differences = result.info["differences"]
    assert isinstance(differences, pd.DataFrame) and differences.empty
    assert result.summary_record()["top_property"] == ""
    json.dumps(domains_record(result), allow_nan=False)


# -- a planted dark-only failure, end to end --------------------------------------------------
def _image(rng: np.random.Generator, offset: float) -> np.ndarray:
    """A skin-coloured blob on a blue-grey background, shifted in brightness by ``offset``
    (the same offset on every channel: contrast, sharpness and colourfulness do not change)."""
    image = np.empty((48, 48, 3))
    image[:] = (100.0, 110.0, 140.0)
    rows, cols = np.mgrid[0:48, 0:48]
    image[((rows - 26) / 14) ** 2 + ((cols - 24) / 10) ** 2 <= 1] = (170.0, 130.0, 110.0)
    image += rng.normal(0.0, 6.0, image.shape) + offset
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def _write_set(root: Path, name: str, offsets: list[float], rng: np.random.Generator) -> list[str]:
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, offset in enumerate(offsets):
        path = folder / f"{i:02d}{HOSTILE_FILE if i == 20 else ''}.png"
        Image.fromarray(_image(rng, offset)).save(path)
        paths.append(str(path))
    return paths


def _predictions(paths: list[str], correct: list[bool], name: str) -> Predictions:
    labels = [CLASSES[i % 3] for i in range(len(paths))]
    proba = np.array(
        [np.eye(3)[CLASSES.index(lab) if ok else (CLASSES.index(lab) + 1) % 3] * 0.8 + 0.2 / 3
         for lab, ok in zip(labels, correct, strict=True)]
    )  # fmt: skip
    return Predictions.from_labels(labels, proba, CLASSES, paths=paths, name=name)


@pytest.fixture(scope="module")
def planted(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Predictions, Predictions, AnalysisResult]:
    """In-domain: 40 bright images, all correct. Out-of-domain: 18 dark images, all wrong, and
    18 bright ones, all correct; one file of it removed after prediction."""
    root = tmp_path_factory.mktemp("domains")
    rng = np.random.default_rng(5)
    inside_paths = _write_set(root, "valid", list(rng.uniform(40, 70, 40)), rng)
    dark, bright = list(rng.uniform(-75, -45, 18)), list(rng.uniform(40, 70, 18))
    outside_paths = _write_set(root, "massey", dark + bright, rng)
    inside = _predictions(inside_paths, [True] * 40, "valid")
    outside = _predictions(outside_paths, [False] * 18 + [True] * 18, "massey")
    removed = Path(outside_paths[20])
    gone = root / "gone.png"
    removed.rename(gone)
    events: list[object] = []
    try:
        result = domain_analysis(inside, [outside], workers=2, progress=events.append)
    finally:
        gone.rename(removed)
    assert events, "no progress was reported"
    return inside, outside, result


def test_planted_dark_failure_is_found(
    planted: tuple[Predictions, Predictions, AnalysisResult],
) -> None:
    inside, outside, result = planted
    assert result.name == "domains"
    items = result.items
    assert len(items) == inside.n_images + outside.n_images  # every image has a row
    excluded = items[items["status"] == "excluded"]
    assert excluded["reason"].tolist() == [UNREADABLE_FILE]
    assert excluded["path"].tolist() == [outside.paths[20]]
    differences = result.info["differences"]
    assert isinstance(differences, pd.DataFrame)
    top = differences.iloc[0]
    assert (top["set"], top["property"], bool(top["significant"])) == ("massey", "brightness", True)
    assert top["smd"] < -1
    assert (differences["smd"].abs().iloc[1:] < 0.5).all()  # nothing else was changed
    assert differences.loc[differences["property"] == "width", "smd"].item() == 0.0
    summary = result.summary_record()
    assert summary["top_property"] == "brightness" and summary["n_excluded"] == 1
    bins = result.info["bins"]
    assert isinstance(bins, pd.DataFrame)
    massey = bins[(bins["set"] == "massey") & (bins["property"] == "brightness")]
    assert massey["bin_label"].tolist() == ["low", "middle", "high"]
    low_bin = massey.iloc[0]
    assert (low_bin["n"], low_bin["n_correct"]) == (12, 0)  # 35 measured images: 12, 11, 12
    wilson = proportion_confint(0, 12, method="wilson")
    assert (low_bin["accuracy_low"], low_bin["accuracy_high"]) == pytest.approx(wilson, abs=1e-12)
    assert massey["accuracy"].tolist()[0] == min(massey["accuracy"])
    segments = result.info["segments"]
    assert isinstance(segments, pd.DataFrame)
    segment = segments[(segments["set"] == "massey") & (segments["property"] == "brightness")].iloc[
        0
    ]
    assert segment["bin_label"] == "low" and bool(segment["separated"])
    assert (segment["rest_n"], segment["rest_correct"]) == (23, 17)
    # The dark bin's images are exactly the darkest 12 measured ones.
    measured = items[(items["set"] == "massey") & (items["status"] == "measured")]
    darkest = measured.nsmallest(12, "brightness")
    assert set(darkest["path"]) == set(measured.loc[measured["bin:brightness"] == 0, "path"])
    json.dumps(domains_record(result), allow_nan=False)


# -- figures -------------------------------------------------------------------------------
def test_figures_return_axes(planted: tuple[Predictions, Predictions, AnalysisResult]) -> None:
    _, _, result = planted
    differences, bins = result.info["differences"], result.info["bins"]
    assert isinstance(differences, pd.DataFrame) and isinstance(bins, pd.DataFrame)
    ax = plot_property_differences(differences)
    assert isinstance(ax, Axes)
    assert len(ax.patches) == len(PROPERTIES)  # one bar per property (one compared set)
    assert ax.get_yticklabels()[0].get_text().startswith("brightness")
    ax = plot_property_distribution(result.items, "brightness")
    legend = ax.get_legend()
    assert legend is not None
    assert [t.get_text() for t in legend.get_texts()] == ["valid (n=40)", "massey (n=35)"]
    ax = plot_accuracy_by_bin(bins, "brightness")
    assert [t.get_text() for t in ax.get_xticklabels()] == ["low", "middle", "high"]
    assert len(ax.containers) == 2  # one error-bar series per set
    massey = ax.containers[1].lines[0].get_ydata()  # type: ignore[attr-defined]
    assert list(massey) == pytest.approx([0.0, 5 / 11, 1.0])
    with pytest.raises(ReportError, match="needs the columns"):
        plot_accuracy_by_bin(bins.drop(columns=["n"]), "brightness")


# -- the report section ------------------------------------------------------------------------
def test_section_renders_the_analysis_numbers(
    planted: tuple[Predictions, Predictions, AnalysisResult],
) -> None:
    _, _, result = planted
    assert section_spec("domains") is DOMAINS_SECTION
    variables = build(result)
    html = make_environment().get_template("domains.html.j2").render(section=variables, title="t")
    assert "<b>x</b>" not in html and "&lt;b&gt;x&lt;/b&gt;&amp;" in html
    assert "<img src=x" not in html and "&lt;img src=x onerror=alert(1)&gt;&amp;" in html
    differences = result.info["differences"]
    assert isinstance(differences, pd.DataFrame)
    smd = float(differences.iloc[0]["smd"])
    assert f"{smd:+.2f}".replace("-", "−") in html
    assert "0.0% (0.0–24.2)" in html  # the dark bin: 0 of 12, Wilson 0–24.2%
    assert html.count('src="data:image/png;base64,') == 1 + 2 * len(variables["panels"])  # type: ignore[arg-type]


def test_report_with_the_section(
    planted: tuple[Predictions, Predictions, AnalysisResult], tmp_path: Path
) -> None:
    inside, outside, result = planted
    model_file = tmp_path / "m.pkl"
    model_file.write_bytes(b"m")
    context = build_context(
        [EvaluationSet(inside, "in-domain"), EvaluationSet(outside, "test")],
        model=ModelInfo.describe(
            model_file, arch="x", classes=CLASSES, input_size="?", versions={}
        ),
        command="x",
        sections={"domains": result},
        findings=True,
    )
    files = write_report(context, tmp_path / "out", name="r")
    html = files.html.read_text(encoding="utf-8")
    assert '<section id="domains">' in html
    assert "What is different about the out-of-domain images" in html
    assert "<b>x</b>" not in html and "<img src=x" not in html
    read_report_json(files.json)  # validates against the report's JSON Schema
    raw = json.loads(files.json.read_text(encoding="utf-8"))
    block = raw["sections"]["domains"]
    record = json.loads(json.dumps(domains_record(result), allow_nan=False))
    assert block.keys() == record.keys()
    for key in ("differences", "segments", "bins"):  # numbers as the analysis' (JSON rounds)
        assert len(block[key]) == len(record[key])
        for got, expected in zip(block[key], record[key], strict=True):
            assert got.keys() == expected.keys()
            for field, value in expected.items():
                assert got[field] == (pytest.approx(value) if isinstance(value, float) else value)
    assert block["differences"][0]["property"] == "brightness"
    assert block["summary"]["n_excluded"] == 1
    findings = raw["sections"]["findings"]
    assert any(f["check"] == "domain-property" for f in findings["findings"])


# -- the findings check ------------------------------------------------------------------------
def _findings(result: AnalysisResult, inside: Predictions, outside: Predictions) -> list[Finding]:
    found = find(
        [FindingsSet(inside, "in-domain"), FindingsSet(outside, "test")],
        sections={"domains": result},
    )
    return [f for f in found.info["findings"] if f.check == "domain-property"]  # type: ignore[attr-defined]


def test_check_finds_the_planted_failure(
    planted: tuple[Predictions, Predictions, AnalysisResult],
) -> None:
    inside, outside, result = planted
    (finding,) = _findings(result, inside, outside)
    assert finding.id == "domain-property:massey"
    assert finding.numbers["property"] == "brightness"
    low, high = confint_proportions_2indep(17, 23, 0, 12, method="newcomb")
    assert (finding.effect, finding.effect_low, finding.effect_high) == pytest.approx(
        (17 / 23, low, high)
    )
    assert finding.score == pytest.approx(12 * low)
    assert finding.sentence.startswith("massey images differ from valid most in brightness (d = −")
    assert "0% (0 of 12" in finding.sentence and "low brightness" in finding.sentence
    assert finding.evidence.anchor == "domains" and len(finding.evidence.paths) == 9
    assert "brightness and exposure" in finding.suggestion


def test_check_stays_quiet_without_a_weak_segment(
    planted: tuple[Predictions, Predictions, AnalysisResult],
) -> None:
    inside, outside, result = planted
    # The same images and properties, but errors spread evenly over dark and bright images.
    items = result.items.copy()
    massey = np.flatnonzero(items["set"] == "massey")
    items.loc[massey, "correct"] = np.arange(massey.size) % 2 == 0
    clean = analyse_properties(
        items.drop(columns=[c for c in items if str(c).startswith("bin:")]), in_domain="valid"
    )
    assert _findings(clean, inside, outside) == []
    # And a weak segment in a property the domains share: no finding either. The in-domain
    # images take the out-of-domain brightness values (as dark and as bright).
    same = result.items.drop(columns=[c for c in result.items if str(c).startswith("bin:")])
    measured = same.loc[(same["set"] == "massey") & (same["status"] == "measured"), "brightness"]
    valid = np.flatnonzero(same["set"] == "valid")
    same.loc[valid, "brightness"] = np.resize(measured.to_numpy(), valid.size)
    quiet = analyse_properties(same, in_domain="valid")
    segments = quiet.info["segments"]
    assert isinstance(segments, pd.DataFrame)
    assert segments.query("set == 'massey' and property == 'brightness'")["separated"].item()
    assert _findings(quiet, inside, outside) == []


def test_check_is_skipped_without_the_section() -> None:
    valid = _predictions([f"{i}.png" for i in range(6)], [True] * 6, "valid")
    found = find([FindingsSet(valid, "in-domain")])
    skipped = found.info["skipped"]
    assert isinstance(skipped, pd.DataFrame)
    reason = skipped.set_index("check").loc["domain-property", "reason"]
    assert str(reason).startswith("no domain-differences section")


def test_a_set_with_no_measured_image_is_kept_and_renders() -> None:
    items = _items()
    far = items["set"] == "far"
    items.loc[far, "status"], items.loc[far, "reason"] = "excluded", "corrupt image"
    items.loc[far, list(PROPERTIES)] = np.nan
    result = analyse_properties(items, in_domain="in")
    differences = result.info["differences"]
    assert isinstance(differences, pd.DataFrame)
    far_rows = differences[differences["set"] == "far"]
    assert len(far_rows) == len(PROPERTIES) and far_rows["p_value"].isna().all()
    assert not far_rows["significant"].any()
    # the other set's Holm family holds only its own defined p-values
    out = differences[differences["set"] == "out"]
    expected = multipletests(out["p_value"], method="holm")[1]
    assert out["p_adjusted"].to_numpy() == pytest.approx(expected)
    excluded = result.info["excluded"]
    assert isinstance(excluded, pd.DataFrame) and len(excluded) == int(far.sum())
    html = (
        make_environment().get_template("domains.html.j2").render(section=build(result), title="t")
    )
    assert f"{int(far.sum())} images could not be measured" in html
    json.dumps(domains_record(result), allow_nan=False)
