"""Accuracy by metadata slice (asl_eval.audit.slices): reading the CSV, matching rows to
images, the numbers against scipy and statsmodels, a planted per-signer failure, the report
section (escaped, valid JSON) and the ``slice`` findings check."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import chi2_contingency, fisher_exact
from statsmodels.stats.contingency_tables import Table
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import proportion_confint

from asl_eval.analysis import AnalysisResult
from asl_eval.audit.slices import (
    NO_METADATA,
    match_metadata,
    read_metadata,
    slice_analysis,
)
from asl_eval.errors import InputError, MetricError
from asl_eval.findings import FindingsSet, find
from asl_eval.findings.checks import slices as slice_check
from asl_eval.predictions import Predictions
from asl_eval.report import (
    EvaluationSet,
    ModelInfo,
    build_context,
    read_report_json,
    slices_section,
    write_report,
)
from asl_eval.report.registry import section_spec
from asl_eval.report.render import make_environment

CLASSES = ("A", "B", "C")
HOSTILE = "<script>alert(1)</script>"


def _predictions(
    name: str, root: Path, signers: list[str], correct: np.ndarray, *, relpaths: bool = True
) -> Predictions:
    """A set of images ``root/<class>/<name>_<i>.jpg``; image ``i`` is right when
    ``correct[i]`` (probabilities put 0.8 on the true class, else on the next class)."""
    n = len(signers)
    y_true = np.arange(n) % len(CLASSES)
    y_pred = np.where(correct, y_true, (y_true + 1) % len(CLASSES))
    proba = np.full((n, len(CLASSES)), 0.1)
    proba[np.arange(n), y_pred] = 0.8
    rel = [f"{CLASSES[t]}/{name}_{i:03d}.jpg" for i, t in enumerate(y_true)]
    return Predictions(
        classes=CLASSES,
        paths=tuple(str(root / r) for r in rel),
        y_true=y_true,
        y_proba=proba,
        name=name,
        relpaths=tuple(rel) if relpaths else (),
    )


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Predictions], Path]:
    """massey: 5 signers of 40 images; signer 3 is right in 4 of 40, the others in 30 of 40.
    valid: 3 signers, every one right in 24 of 30 (no slice differs). A CSV naming every image
    (massey by relative path, valid by absolute path), with a camera column and a hostile
    background value, plus one row for an image that is not evaluated."""
    base = tmp_path_factory.mktemp("slices")
    rng = np.random.default_rng(3)
    signers, correct = [], []
    for signer in ("1", "2", "3", "4", "5"):
        hits = 4 if signer == "3" else 30
        signers += [signer] * 40
        correct += rng.permutation([True] * hits + [False] * (40 - hits)).tolist()
    massey = _predictions("massey", base / "massey", signers, np.array(correct))
    v_signers = [s for s in ("a", "b", "c") for _ in range(30)]
    v_correct = np.array([(i % 5) != 0 for i in range(90)])
    valid = _predictions("valid", base / "valid", v_signers, v_correct, relpaths=False)
    rows = ["path,signer,camera,background"]
    for i, (rel, signer) in enumerate(zip(massey.relpaths, signers, strict=True)):
        rows.append(f"{rel},{signer},cam{i % 2},{HOSTILE if i % 3 == 0 else 'plain'}")
    for path, signer in zip(valid.paths, v_signers, strict=True):
        rows.append(f"{path},{signer},cam0,plain")
    rows.append("elsewhere/not_evaluated.jpg,9,cam1,plain")
    csv = base / "meta.csv"
    csv.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return [valid, massey], csv


@pytest.fixture(scope="module")
def result(planted: tuple[list[Predictions], Path]) -> AnalysisResult:
    sets, csv = planted
    return slice_analysis(sets, read_metadata(csv))


def _slices(result: AnalysisResult) -> pd.DataFrame:
    table = result.info["slices"]
    assert isinstance(table, pd.DataFrame)
    return table


def _tests(result: AnalysisResult) -> pd.DataFrame:
    table = result.info["tests"]
    assert isinstance(table, pd.DataFrame)
    return table


# -- the numbers ------------------------------------------------------------------------------


def test_planted_signer_failure_is_found(result: AnalysisResult) -> None:
    tests = _tests(result).set_index(["set", "column"])
    massey = tests.loc[("massey", "signer")]
    assert massey["test"] == "chi-square" and massey["significant"]
    assert massey["weakest_value"] == "3" and massey["weakest_significant"]
    assert massey["weakest_accuracy"] == pytest.approx(4 / 40)
    slices = _slices(result)
    flagged = slices[slices["significant"]]
    assert flagged[["set", "column", "value"]].values.tolist() == [["massey", "signer", "3"]]
    three = flagged.iloc[0]
    assert (three["n"], three["correct"], three["n_rest"], three["correct_rest"]) == (
        40,
        4,
        160,
        120,
    )
    # the clean set: no slice differs
    assert not tests.loc[("valid", "signer")]["significant"]
    assert result.summary_record()["n_significant_slices"] == 1


def test_wilson_intervals_equal_statsmodels(result: AnalysisResult) -> None:
    slices = _slices(result)
    low, high = proportion_confint(slices["correct"], slices["n"], alpha=0.05, method="wilson")
    assert np.allclose(slices["accuracy_low"], low)
    assert np.allclose(slices["accuracy_high"], high)
    assert np.allclose(slices["accuracy"], slices["correct"] / slices["n"])


def test_column_tests_equal_scipy_and_statsmodels(
    planted: tuple[list[Predictions], Path], result: AnalysisResult
) -> None:
    sets, csv = planted
    meta = pd.read_csv(csv, dtype=str, keep_default_na=False)
    tests = _tests(result).set_index(["set", "column"])
    for predictions in sets:
        frame = pd.DataFrame(
            {
                "relpath": list(predictions.relpaths) or [""] * predictions.n_images,
                "path": list(predictions.paths),
                "correct": predictions.y_true == predictions.y_pred,
            }
        )
        key = "relpath" if predictions.relpaths else "path"
        joined = frame.merge(meta, left_on=key, right_on="path", how="left")
        for column in ("signer", "camera", "background"):
            table = pd.crosstab(joined[column], joined["correct"]).to_numpy()
            row = tests.loc[(predictions.name, column)]
            if table.shape[0] < 2:
                assert np.isnan(row["p_value"])
            elif table.shape[0] == 2:
                assert row["test"] == "fisher"
                assert row["p_value"] == pytest.approx(fisher_exact(table).pvalue, rel=1e-12)
            else:
                expected = chi2_contingency(table, correction=False)
                assert row["p_value"] == pytest.approx(expected.pvalue, rel=1e-12)
                assert row["statistic"] == pytest.approx(expected.statistic, rel=1e-12)
                independent = Table(table).test_nominal_association()
                assert row["p_value"] == pytest.approx(independent.pvalue, rel=1e-9)


def test_value_vs_rest_is_fisher_and_holm_equals_statsmodels(result: AnalysisResult) -> None:
    slices = _slices(result)
    for row in slices[slices["tested"] & (slices["n_rest"] > 0)].itertuples():
        table = [
            [row.correct, row.n - row.correct],
            [row.correct_rest, row.n_rest - row.correct_rest],
        ]
        assert row.p_value == pytest.approx(fisher_exact(table).pvalue, rel=1e-12)
    defined = slices[slices["p_value"].notna()]
    groups = defined.groupby(["set", "column"], sort=False).groups
    # a two-value column's two rows are one Fisher table seen from both sides: counted once
    mirrors = {idx[1]: idx[0] for idx in groups.values() if len(idx) == 2}
    assert mirrors, "the fixture should have a column with two tested values"
    family = defined.drop(index=list(mirrors))
    _, holm, _, _ = multipletests(family["p_value"], method="holm")
    assert np.allclose(family["p_adjusted"], holm)
    for mirror, first in mirrors.items():
        assert slices.loc[mirror, "p_value"] == pytest.approx(slices.loc[first, "p_value"])
        assert slices.loc[mirror, "p_adjusted"] == slices.loc[first, "p_adjusted"]
    tests = _tests(result)
    known = tests["p_value"].notna()
    _, holm_tests, _, _ = multipletests(tests.loc[known, "p_value"], method="holm")
    assert np.allclose(tests.loc[known, "p_adjusted"], holm_tests)


# -- matching and counting ----------------------------------------------------------------------


def test_every_image_is_counted_and_unused_rows_are_reported(
    planted: tuple[list[Predictions], Path], tmp_path: Path
) -> None:
    sets, csv = planted
    lines = csv.read_text(encoding="utf-8").splitlines()
    # drop the rows of 7 massey images and 2 valid images
    kept = [line for i, line in enumerate(lines) if i not in {*range(1, 8), 201, 202}]
    partial = tmp_path / "partial.csv"
    partial.write_text("\n".join(kept) + "\n", encoding="utf-8")
    with pytest.warns(UserWarning, match="9 of 290 evaluated images have no metadata row in sets"):
        got = slice_analysis(sets, read_metadata(partial), columns=["signer"])
    summary = got.summary_record()
    assert (summary["n_images"], summary["n_matched"], summary["n_unmatched"]) == (290, 281, 9)
    assert summary["n_unused_rows"] == 1
    unused = got.info["unused_rows"]
    assert isinstance(unused, pd.DataFrame)
    assert unused["path"].tolist() == ["elsewhere/not_evaluated.jpg"]
    assert unused["line"].tolist() == [len(kept)]
    slices = _slices(got)
    none = slices[slices["value"] == NO_METADATA].set_index("set")
    assert none.loc["massey", "n"] == 7 and none.loc["valid", "n"] == 2
    assert not none["tested"].any() and none["p_value"].isna().all()
    assert slices.groupby("set")["n"].sum().to_dict() == {"massey": 200, "valid": 90}
    matching = got.info["matching"]
    assert isinstance(matching, pd.DataFrame)
    assert matching.set_index("set").loc["massey", ["relpath", "none"]].tolist() == [193, 7]
    assert matching.set_index("set").loc["valid", ["path", "none"]].tolist() == [88, 2]
    assert (got.items["match"] == "none").sum() == 9
    assert len(got.items) == 290


def test_a_set_the_metadata_does_not_cover_is_recorded_without_a_warning(
    planted: tuple[list[Predictions], Path], tmp_path: Path
) -> None:
    sets, csv = planted
    massey = [s for s in sets if s.name == "massey"]
    uncovered = Predictions.from_labels(
        ["A", "B"], np.array([[0.9, 0.1], [0.2, 0.8]]), ["A", "B"], name="other"
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = slice_analysis([*massey, uncovered], read_metadata(csv), columns=["signer"])
    assert got.summary_record()["n_unmatched"] == 2
    other = _slices(got)
    other = other[other["set"] == "other"]
    assert other["value"].tolist() == [NO_METADATA] and other["n"].tolist() == [2]


def test_matching_rules_in_order(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    meta_file = tmp_path / "d" / "meta.csv"
    meta_file.write_text(
        "path,signer\n"
        "A/a1.jpg,by-relpath\n"  # relpath of image 0
        "../img/B/b1.jpg,by-path\n"  # relative to the CSV's folder: image 1
        "c1.jpg,by-name\n"  # a unique file name: image 2
        "x/dup.jpg,one\n"
        "y/dup.jpg,two\n",  # an ambiguous name matches nothing
        encoding="utf-8",
    )
    meta = read_metadata(meta_file)
    paths = [tmp_path / "img" / p for p in ("A/a1.jpg", "B/b1.jpg", "C/c1.jpg", "D/dup.jpg")]
    found = match_metadata(paths, meta, relpaths=["A/a1.jpg", "B/b1.jpg", "C/c1.jpg", "D/dup.jpg"])
    assert found.rules == ("relpath", "path", "name", "none")
    assert found.rows.tolist() == [0, 1, 2, -1]
    assert found.counts() == {"relpath": 1, "path": 1, "name": 1, "none": 1}
    # two evaluated images with one file name: the name rule does not guess
    twice = match_metadata([tmp_path / "p/c1.jpg", tmp_path / "q/c1.jpg"], meta)
    assert twice.rules == ("none", "none")


def test_empty_cells_and_formula_cells_are_text(tmp_path: Path) -> None:
    csv = tmp_path / "m.csv"
    csv.write_text(
        '\ufeffpath,signer,note\na.jpg,,=HYPERLINK("http://x")\nb.jpg,NA,@SUM(1)\n',
        encoding="utf-8",
    )
    meta = read_metadata(csv)
    assert meta["note"].tolist() == ['=HYPERLINK("http://x")', "@SUM(1)"]
    assert meta["signer"].tolist() == ["", "NA"]
    p = Predictions.from_labels(["A", "B"], np.eye(2), ["A", "B"], paths=["a.jpg", "b.jpg"])
    got = slice_analysis([p], meta, columns=["signer"])
    assert got.items["slice:signer"].tolist() == [NO_METADATA, "NA"]
    assert got.summary_record()["n_unmatched"] == 0  # a row with an empty cell is matched


# -- bad input ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("file,signer\na.jpg,1\n", r"has no 'path' column naming each image; its columns are"),
        ("path,signer\na.jpg,1\n./a.jpg,2\nb.jpg,3\n", r"1 paths appear more than once.*a\.jpg"),
        ("path,signer\na.jpg,1\n ,2\n", r"1 rows of .* have an empty 'path' \(lines 3\)"),
        ("", r"Cannot read metadata CSV .*Save it as a UTF-8 CSV"),
        ('path,signer\n"a.jpg,1\n', r"Cannot read metadata CSV"),
    ],
)
def test_bad_csvs_give_clear_errors(tmp_path: Path, text: str, match: str) -> None:
    csv = tmp_path / "bad.csv"
    csv.write_text(text, encoding="utf-8")
    with pytest.raises(InputError, match=match):
        read_metadata(csv)


def test_unreadable_and_missing_csvs(tmp_path: Path) -> None:
    binary = tmp_path / "x.csv"
    binary.write_bytes(b"path,signer\n\xff\xfe\x00bad,\x81\n")
    with pytest.raises(InputError, match="Cannot read metadata CSV"):
        read_metadata(binary)
    with pytest.raises(InputError, match="there is no such file"):
        read_metadata(tmp_path / "missing.csv")
    with pytest.raises(InputError, match="has no 'file' column"):
        read_metadata(_ok(tmp_path), path_column="file")


def _ok(tmp_path: Path) -> Path:
    target = tmp_path / "ok.csv"
    target.write_text("path,signer\na.jpg,1\n", encoding="utf-8")
    return target


def test_column_choice_errors(planted: tuple[list[Predictions], Path], tmp_path: Path) -> None:
    sets, csv = planted
    meta = read_metadata(csv)
    with pytest.raises(
        InputError,
        match=r"--slice-by names columns .*: lens; its columns besides 'path' are signer",
    ):
        slice_analysis(sets, meta, columns=["lens"])
    with pytest.raises(InputError, match="no column to slice by"):
        slice_analysis(sets, meta[["path"]])
    twice = pd.DataFrame([["a.jpg", "1", "2"]], columns=["path", "signer", "signer"])
    with pytest.raises(InputError, match="two columns named 'signer'"):
        slice_analysis(sets, twice)
    with pytest.raises(MetricError, match="unique"):
        slice_analysis([sets[0], sets[0]], meta)
    with pytest.raises(MetricError, match="alpha"):
        slice_analysis(sets, meta, alpha=1.5)
    # an id-like column is skipped (and listed) unless named
    ids = meta.assign(image_id=[f"id{i}" for i in range(len(meta))])
    got = slice_analysis(sets, ids, max_values=10)
    skipped = got.info["skipped_columns"]
    assert isinstance(skipped, pd.DataFrame) and skipped["column"].tolist() == ["image_id"]
    assert "image_id" not in set(_tests(got)["column"])
    named = slice_analysis(sets, ids, columns=["image_id"], max_values=10)
    assert set(_tests(named)["column"]) == {"image_id"}


# -- the report section -------------------------------------------------------------------------


def test_section_is_registered_and_escapes_hostile_values(result: AnalysisResult) -> None:
    assert section_spec("slices") is slices_section.SLICES_SECTION
    variables = slices_section.build(result)
    html = make_environment().get_template("slices.html.j2").render(section=variables, title="t")
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "By signer" in html and "By background" in html
    assert "weakest: <strong>3</strong>" in html
    assert "significantly below the rest" in html
    assert html.count('src="data:image/png;base64,') == 3  # one figure per column


def test_slice_figure_marks_the_flagged_value(result: AnalysisResult) -> None:
    from matplotlib.axes import Axes

    from asl_eval.audit.slice_plots import plot_slice_accuracy

    ax = plot_slice_accuracy(_slices(result), "signer")
    assert isinstance(ax, Axes)
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == ["a", "b", "c", "1", "2", "3", "4", "5"]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["valid", "massey"]
    red = [line for line in ax.get_lines() if line.get_color() == "#D55E00"]
    assert len(red) == 1 and list(red[0].get_xdata()) == [pytest.approx(0.1)]
    assert ax.get_xlim() == (0.0, 1.0)


def test_report_with_the_section_writes_valid_json(
    planted: tuple[list[Predictions], Path], result: AnalysisResult, tmp_path: Path
) -> None:
    sets, _ = planted
    model_file = tmp_path / "m.pkl"
    model_file.write_bytes(b"m")
    context = build_context(
        [EvaluationSet(s) for s in sets],
        model=ModelInfo.describe(
            model_file, arch="x", classes=CLASSES, input_size="?", versions={}
        ),
        command="x",
        sections={"slices": result},
    )
    files = write_report(context, tmp_path / "out", name="r")
    html = files.html.read_text(encoding="utf-8")
    assert '<section id="slices">' in html and "<script>alert(1)" not in html
    read_report_json(files.json)  # validates against the report's JSON Schema
    raw = json.loads(files.json.read_text(encoding="utf-8"))["sections"]["slices"]
    assert raw["summary"]["n_images"] == 290 and raw["summary"]["n_unused_rows"] == 1
    weakest = [t for t in raw["tests"] if t["set"] == "massey" and t["column"] == "signer"]
    assert weakest[0]["weakest_value"] == "3"
    assert HOSTILE in {row["value"] for row in raw["slices"]}


def test_shared_report_redacts_the_sections_paths(
    planted: tuple[list[Predictions], Path], result: AnalysisResult, tmp_path: Path
) -> None:
    from asl_eval.report import Sharing

    sets, csv = planted
    model_file = tmp_path / "m.pkl"
    model_file.write_bytes(b"m")
    context = build_context(
        [EvaluationSet(s) for s in sets],
        model=ModelInfo.describe(
            model_file, arch="x", classes=CLASSES, input_size="?", versions={}
        ),
        command="x",
        sections={"slices": result},
        sharing=Sharing(redact_paths=True),
    )
    files = write_report(context, tmp_path / "out", name="r")
    text = files.json.read_text(encoding="utf-8") + files.html.read_text(encoding="utf-8")
    assert str(csv.parent) not in text
    raw = json.loads(files.json.read_text(encoding="utf-8"))["sections"]["slices"]
    assert raw["summary"]["metadata_file"] == "meta.csv"


# -- the findings check -------------------------------------------------------------------------


def test_planted_failure_is_a_finding(
    planted: tuple[list[Predictions], Path], result: AnalysisResult
) -> None:
    sets, _ = planted
    found = find(
        [FindingsSet(sets[0], "in-domain"), FindingsSet(sets[1], "test")],
        sections={"slices": result},
    )
    findings = [f for f in found.info["findings"] if f.check == "slice"]  # type: ignore[attr-defined]
    assert [f.id for f in findings] == ["slice:massey:signer=3"]
    finding = findings[0]
    assert finding.sentence.startswith(
        "On massey, signer 3's accuracy is 10% (95% CI 4–23%; 40 images) against 75% for the "
        "other signer values (160 images): 65 points lower"
    )
    low = finding.effect_low
    assert finding.effect == pytest.approx(0.75 - 0.10)
    assert finding.score == pytest.approx(40 * low) and low > 0.4
    assert finding.evidence.anchor == "slices" and len(finding.evidence.paths) == 9
    wrong = {p for p, c in zip(result.items["path"], result.items["correct"], strict=True) if not c}
    assert set(finding.evidence.paths) <= wrong
    assert "--group-by signer" in finding.suggestion


def test_clean_slices_give_no_finding(tmp_path: Path) -> None:
    signers = [s for s in ("a", "b", "c", "d") for _ in range(40)]
    correct = np.array([(i % 4) != 0 for i in range(160)])  # 75% for every signer
    clean = _predictions("clean", tmp_path, signers, correct)
    meta = pd.DataFrame({"path": list(clean.relpaths), "signer": signers})
    analysis = slice_analysis([clean], meta)
    assert not _slices(analysis)["significant"].any()
    found = find([FindingsSet(clean, "test")], sections={"slices": analysis})
    assert not [f for f in found.info["findings"] if f.check == "slice"]  # type: ignore[attr-defined]
    skipped = find([FindingsSet(clean, "test")]).info["skipped"]
    assert isinstance(skipped, pd.DataFrame)
    assert "slice" in set(skipped.iloc[:, 0])
    assert slice_check.SLICES_ANCHOR == "slices"


def test_no_test_without_two_values_or_without_errors(tmp_path: Path) -> None:
    signers = ["a"] * 5 + ["b"] * 5
    perfect = _predictions("perfect", tmp_path, signers, np.ones(10, dtype=bool))
    meta = pd.DataFrame({"path": list(perfect.relpaths), "signer": signers, "camera": ["one"] * 10})
    tests = _tests(slice_analysis([perfect], meta)).set_index("column")
    assert tests.loc["signer", "test"] == "none: the outcome does not vary"
    assert tests.loc["camera", "test"] == "none: fewer than two values"
    assert tests["p_value"].isna().all() and not tests["significant"].any()
