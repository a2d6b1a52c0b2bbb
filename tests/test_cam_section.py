"""Tests of the report's Grad-CAM analysis: asl_eval.cam.build_cam_section on the session's
tiny resnet18, and its report section (asl_eval.report.cam_section): template variables, the
JSON block and the rendered HTML."""

from __future__ import annotations

import base64
import io
import json
import shutil
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from asl_eval import cam
from asl_eval.analysis import AnalysisResult
from asl_eval.cam.section import ITEM_COLUMNS, SUMMARY_COLUMNS
from asl_eval.errors import LabelError
from asl_eval.predictions import Predictions

LAYER = "0.5"  # 4x4 at 32 px, see test_cam.py


@dataclass(frozen=True)
class Built:
    result: AnalysisResult
    ood: Predictions
    valid: Predictions
    selection: cam.CamSelection
    gone: str


@pytest.fixture(scope="module")
def ood_predictions(tiny_learner, tiny_model):  # type: ignore[no-untyped-def]
    from asl_eval.inference import predict_folder

    return predict_folder(tiny_learner, tiny_model.data.ood_test, name="ood")


@pytest.fixture(scope="module")
def built(tiny_learner, tiny_model, ood_predictions, tmp_path_factory) -> Built:  # type: ignore[no-untyped-def]
    valid = Predictions.load(tiny_model.valid_predictions)
    # copy the OOD images so one can be removed: it must be reported as skipped, not dropped
    tmp_path = tmp_path_factory.mktemp("cam_section")
    copies = []
    for path in ood_predictions.paths:
        target = tmp_path / path.split("/")[-2] / path.split("/")[-1]
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, target)
        copies.append(str(target))
    ood = Predictions(
        classes=ood_predictions.classes,
        paths=tuple(copies),
        y_true=ood_predictions.y_true,
        y_proba=ood_predictions.y_proba,
        name="ood",
    )
    first = cam.select_cam_images(ood, k=3, n_per_class=2)
    gone = copies[first.per_class[first.classes[0]][0]]
    (tmp_path / gone).unlink()
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # model and stored predictions agree
        result = cam.build_cam_section(
            tiny_learner,
            {"valid": valid, "ood": ood},
            ood_set="ood",
            k=3,
            n_per_class=2,
            n_top_losses=2,
            n_mean=4,
            layer=LAYER,
            thumbnail_size=64,
        )
    return Built(result, ood, valid, first, gone)


def test_build_cam_section(built: Built) -> None:
    result, ood, valid, first, gone = (
        built.result,
        built.ood,
        built.valid,
        built.selection,
        built.gone,
    )
    assert isinstance(result, AnalysisResult) and result.name == "cam"
    assert tuple(result.items.columns) == ITEM_COLUMNS
    assert tuple(result.summary.columns) == SUMMARY_COLUMNS
    summary = result.summary_record()
    assert summary["in_domain_set"] == "valid" and summary["layer"] == LAYER
    assert (summary["map_height"], summary["map_width"]) == (4, 4)
    skipped = result.info["skipped"]
    assert list(skipped["path"]) == [gone] and summary["n_skipped"] == 1
    assert "unreadable" in skipped["reason"].iloc[0]
    classes = result.info["classes"]
    assert list(classes["class"]) == list(first.classes) and summary["n_classes"] == 3
    items = result.items
    gallery = items[items["group"] == "class"]
    assert gone not in set(gallery["path"]) and len(gallery) == 2 * 3 - 1
    heatmaps = result.info["heatmaps"]
    assert heatmaps.shape == (len(items), 2, 32, 32) and summary["n_images"] == len(items)
    means = result.info["means"]
    assert result.info["mean_heatmaps"].shape == (len(means), 32, 32)
    for record in classes.to_dict(orient="records"):
        name = record["class"]
        c = ood.classes.index(name)
        assert record["n_ood_images"] == int((ood.y_true == c).sum())
        assert record["ood_accuracy"] == pytest.approx(first.class_accuracy[name])
        of_class = means[means["class"] == name]
        assert "out_of_domain" in set(of_class["role"])
        n_valid = int((valid.y_true == c).sum())
        in_domain = of_class[of_class["role"] == "in_domain"]
        if n_valid:
            assert list(in_domain["set"]) == ["valid"]
            assert list(in_domain["n_images"]) == [min(4, n_valid)]
        else:
            assert in_domain.empty
        rows = gallery[gallery["class"] == name]
        for position, item in rows.iterrows():
            row = ood.paths.index(item["path"])
            assert item["true_class"] == name
            assert item["proba_true"] == pytest.approx(ood.y_proba[row, c])
            assert item["proba_pred"] == pytest.approx(ood.y_proba[row].max())
            assert np.isfinite(item["faithfulness_pred"]) and np.isfinite(item["faithfulness_true"])
            if item["correct"]:
                pred_map, true_map = heatmaps[items.index.get_loc(position)]
                assert np.array_equal(pred_map, true_map)
            for png in (item["image_png"], item["pred_png"], item["true_png"]):
                assert Image.open(io.BytesIO(png)).size == (64, 64)
        if len(rows):
            assert record["mean_faithfulness"] == pytest.approx(rows["faithfulness_pred"].mean())
    top = items[items["group"] == "top_losses"]
    assert top["class"].isna().all() and len(top) == 2
    assert not set(top["path"]) & (set(gallery["path"]) | {gone})


def test_outside_the_hand_columns_equal_a_recount(built: Built, tiny_learner) -> None:  # type: ignore[no-untyped-def]
    """Every explained image's heatmap mass outside the hand, recomputed with plain numpy from
    the foreground estimate of the image the model saw and the stored heatmaps."""
    from asl_eval.audit.foreground import foreground_mask

    items, heatmaps = built.result.items, built.result.info["heatmaps"]
    seen = cam.explain_images(tiny_learner, list(items["path"]), [None], layer=LAYER).images
    for i, item in enumerate(items.to_dict(orient="records")):
        hand = foreground_mask(seen[i])
        for column, heatmap in (
            ("outside_mass_pred", heatmaps[i, 0]),
            ("outside_mass_true", heatmaps[i, 1]),
        ):
            total = float(heatmap.sum())
            if total == 0 or not hand.any():
                assert np.isnan(item[column])
            else:
                assert item[column] == pytest.approx(float(heatmap[~hand].sum()) / total, abs=1e-6)
                assert 0.0 <= item[column] <= 1.0
    classes = built.result.info["classes"]
    for record in classes.to_dict(orient="records"):
        rows = items[(items["group"] == "class") & (items["class"] == record["class"])]
        if len(rows):
            assert record["mean_outside_mass"] == pytest.approx(rows["outside_mass_pred"].mean())
            assert record["n_faithfulness"] == int(rows["faithfulness_pred"].notna().sum())


def test_the_background_check_reads_the_cam_stage(built: Built) -> None:
    """End to end: the findings' Grad-CAM background check runs on the stage's own result
    (not skipped), and whatever it says equals a recount of the stage's items."""
    from asl_eval.findings import FindingsSet, find, findings_of, skipped_of

    result = find(
        [FindingsSet(built.valid, "in-domain"), FindingsSet(built.ood)],
        sections={"cam": built.result},
    )
    assert "cam-background" not in {s.check for s in skipped_of(result)}
    items = built.result.items
    gallery = items[items["group"] == "class"].drop_duplicates("path")
    gallery = gallery[np.isfinite(gallery["outside_mass_pred"].astype(float))]
    off = gallery["outside_mass_pred"].astype(float) > 0.5
    wrong = ~gallery["correct"].astype(bool)
    counts = {
        "wrong_outside": int((off & wrong).sum()),
        "wrong": int(wrong.sum()),
        "right_outside": int((off & ~wrong).sum()),
        "right": int((~wrong).sum()),
    }
    found = [f for f in findings_of(result) if f.check == "cam-background"]
    for finding in found:
        assert dict(finding.numbers) == counts
    if not found:  # silent only when the wrong images are not shown to look off the hand more
        from asl_eval.findings.stats import newcombe_difference

        _, low, _ = newcombe_difference(
            counts["wrong_outside"], counts["wrong"], counts["right_outside"], counts["right"]
        )
        assert not low > 0


def test_build_cam_section_errors(tiny_learner, ood_predictions):  # type: ignore[no-untyped-def]
    with pytest.raises(cam.CamError, match="No evaluation set named 'massey'"):
        cam.build_cam_section(tiny_learner, {"ood": ood_predictions}, ood_set="massey")
    other = Predictions.from_labels(["A"], np.array([[1.0]]), ["A"])
    with pytest.raises(LabelError, match="explain them with the model that made them"):
        cam.build_cam_section(tiny_learner, {"ood": other}, ood_set="ood")


def test_automatic_layer_of_the_section_has_a_3x3_map(tiny_learner, ood_predictions):  # type: ignore[no-untyped-def]
    result = cam.build_cam_section(
        tiny_learner,
        {"ood": ood_predictions},
        ood_set="ood",
        k=1,
        n_per_class=1,
        n_top_losses=0,
        n_mean=1,
        faithfulness="none",
    )
    summary = result.summary_record()
    assert (summary["layer"], summary["map_height"], summary["map_width"]) == ("0.5", 4, 4)
    assert result.summary_record()["in_domain_set"] is None
    assert result.info["means"]["role"].tolist() == ["out_of_domain"]


# -- the report section --------------------------------------------------------------------------
def test_section_is_registered() -> None:
    from asl_eval.report import cam_section  # importing asl_eval.report registers it
    from asl_eval.report.registry import section_spec

    spec = section_spec("cam")
    assert spec.build.__module__ == cam_section.__name__
    assert (spec.anchor, spec.template) == ("cam", "cam.html.j2")


def test_json_block_holds_the_numbers(built: Built) -> None:
    from asl_eval.report.cam_section import to_json

    block = to_json(built.result)
    text = json.dumps(block, allow_nan=False)  # plain data: NaN became null
    assert "png" not in text
    assert (block["method"], block["layer"], block["map_size"]) == ("gradcam", LAYER, [4, 4])
    assert block["ood_set"] == "ood" and block["in_domain_set"] == "valid"
    assert block["selected_by"] == "lowest_accuracy"
    assert block["faithfulness_metric"] == "road" and block["faithfulness_higher_is_better"]
    assert [c["class"] for c in block["classes"]] == list(built.selection.classes)
    items = built.result.items
    for entry in block["classes"]:
        rows = items[(items["group"] == "class") & (items["class"] == entry["class"])]
        assert [i["path"] for i in entry["images"]] == list(rows["path"])
        assert [i["loss"] for i in entry["images"]] == pytest.approx(list(rows["loss"]))
    assert len(block["top_losses"]) == 2
    assert block["skipped"] == [{"path": built.gone, "reason": block["skipped"][0]["reason"]}]
    assert block["n_prediction_mismatches"] == 0


def test_template_variables_and_html(built: Built) -> None:
    from asl_eval.report.cam_section import build
    from asl_eval.report.render import make_environment

    variables = build(built.result)
    assert variables["map_size"] == "4×4" and not variables["map_is_coarse"]
    galleries = variables["galleries"]
    assert [g.class_name for g in galleries] == list(built.selection.classes)
    first = next(g for g in galleries if g.images)
    uri = first.images[0].pred_uri
    assert uri.startswith("data:image/png;base64,")
    assert base64.b64decode(uri.split(",", 1)[1]) == built.result.items["pred_png"].iloc[0]
    html = (
        make_environment()
        .get_template("cam.html.j2")
        .render(section=variables, title="Why it fails")
    )
    assert "feature map 4×4" in html
    assert html.count('src="data:image/png;base64,') == 3 * len(built.result.items) + len(
        built.result.info["means"]
    )
    for gallery in galleries:
        assert f"heatmap for {gallery.class_name}" in html
    assert built.gone in html  # listed as not explained
    assert variables["has_outside_mass"] and "off the hand (pred / true)" in html
    for gallery in galleries:
        if gallery.images:
            assert (
                f"of the predicted-class heatmaps over the\n  {gallery.n_faithfulness} "
                f"{gallery.class_name} images above" in html
            )


def test_coarse_map_is_stated() -> None:
    from asl_eval.report.cam_section import build

    png = cam.png_bytes(np.zeros((2, 2, 3), np.uint8))
    summary = {column: None for column in SUMMARY_COLUMNS} | {
        "method": "gradcam",
        "layer": "0.7",
        "map_height": 2,
        "map_width": 2,
        "ood_set": "ood",
        "selected_by": "by_hand",
        "faithfulness_metric": "none",
        "faithfulness_higher_is_better": True,
        "n_prediction_mismatches": 0,
    }
    result = AnalysisResult(
        "cam",
        pd.DataFrame(columns=list(ITEM_COLUMNS)),
        pd.DataFrame([summary]),
        {
            "classes": pd.DataFrame(columns=["class"]),
            "means": pd.DataFrame(
                [
                    {
                        "class": "A",
                        "set": "ood",
                        "role": "out_of_domain",
                        "n_images": 1,
                        "overlay_png": png,
                    }
                ]
            ),
            "skipped": pd.DataFrame(columns=["path", "reason"]),
        },
    )
    variables = build(result)
    assert variables["map_size"] == "2×2" and variables["map_is_coarse"] and variables["by_hand"]
