"""The report's optional analyses run together as a user runs them: ``run_report`` with the
tiny model, the re-created in-domain split and two test folders, and the console script in a
fresh process. Each stage's own numbers are tested in its own file; here the sections must be
present, agree with the sets they describe and with numbers recomputed independently from the
predictions CSV."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest


def _metadata(folder: Path, out: Path) -> Path:
    """Every image of ``folder`` with a made-up signer (by position) and camera."""
    images = sorted(p for p in folder.rglob("*") if p.suffix.lower() in (".jpg", ".png"))
    frame = pd.DataFrame(
        {
            "path": [p.relative_to(folder).as_posix() for p in images],
            "signer": [f"s{i % 3}" for i in range(len(images))],
            "camera": ["phone" if i % 2 else "webcam" for i in range(len(images))],
        }
    )
    frame.to_csv(out, index=False)
    return out


@pytest.fixture(scope="module")
def staged(tiny_model, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """One report with the property comparison, metadata slices and a small robustness
    sweep."""
    from asl_eval.pipeline import ReportRequest, StressOptions, run_report

    data = tiny_model.data
    root = tmp_path_factory.mktemp("stages")
    metadata = _metadata(data.ood_test, root / "meta.csv")
    files = run_report(
        ReportRequest(
            model=tiny_model.path,
            test_sets=[("ood", data.ood_test), ("kaggle", data.kaggle_test)],
            in_domain=data.train,
            out=root / "out",
            cam=None,
            properties=True,
            metadata=metadata,
            stress=StressOptions(("brightness", "rotate"), (3,), n_per_class=50),
            audit=True,
            embeddings=True,
            embedding_samples=4,
        )
    )
    report = json.loads(files.json.read_text(encoding="utf-8"))
    frame = pd.read_csv(files.predictions_csv, keep_default_na=False)
    return files, report, frame, metadata


def test_the_property_section_covers_every_set(staged) -> None:  # type: ignore[no-untyped-def]
    _, report, frame, _ = staged
    domains = report["sections"]["domains"]
    counts = frame.groupby("set").size().to_dict()
    differences = pd.DataFrame(domains["differences"])
    assert set(differences["set"]) == {"ood", "kaggle"}
    distributions = pd.DataFrame(domains["distributions"])
    assert set(distributions["set"]) == set(counts)
    bins = pd.DataFrame(domains["bins"])
    for (name, prop), part in bins.groupby(["set", "property"]):
        # every evaluated image of the set falls in exactly one bin of each property
        assert part["n"].sum() == counts[name], (name, prop)


def test_slices_equal_a_crosstab_of_the_predictions_csv(staged) -> None:  # type: ignore[no-untyped-def]
    _, report, frame, metadata = staged
    slices = pd.DataFrame(report["sections"]["slices"]["slices"])
    meta = pd.read_csv(metadata)
    ood = frame[frame["set"] == "ood"].merge(meta, left_on="relpath", right_on="path")
    assert len(ood) == (frame["set"] == "ood").sum()
    for column in ("signer", "camera"):
        expected = ood.groupby(column)["correct"].agg(["size", "sum"])
        got = slices[(slices["set"] == "ood") & (slices["column"] == column)].set_index("value")
        assert got.loc[expected.index, "n"].tolist() == expected["size"].tolist()
        assert got.loc[expected.index, "correct"].tolist() == expected["sum"].tolist()
    # the other sets have no metadata: every image is counted in the "(no metadata)" value
    kaggle = slices[(slices["set"] == "kaggle") & (slices["column"] == "signer")]
    assert kaggle["n"].sum() == (frame["set"] == "kaggle").sum()


def test_the_sweep_without_changes_equals_the_reports_predictions(staged) -> None:  # type: ignore[no-untyped-def]
    _, report, frame, _ = staged
    valid = frame[frame["set"] == "valid"]
    conditions = pd.DataFrame(report["sections"]["robustness"]["conditions"])
    clean = conditions[conditions["corruption"] == "clean"]
    # 50 per class samples every in-domain image: unchanged, they are predicted as in the report
    assert clean["n_images"].sum() == len(valid)
    assert clean["n_correct"].sum() == valid["correct"].astype(bool).sum()
    assert set(conditions["corruption"]) == {"clean", "brightness", "rotate"}


def test_the_embedding_bins_cover_every_image_of_each_set(staged) -> None:  # type: ignore[no-untyped-def]
    _, report, frame, _ = staged
    embeddings = report["sections"]["embeddings"]
    bins = pd.DataFrame(embeddings["distance_bins"])
    for name, part in bins.groupby("set"):
        assert part["n_images"].sum() == (frame["set"] == name).sum(), name
        # accuracy by distance bin adds up to the set's accuracy in the predictions CSV
        assert part["n_correct"].sum() == frame.loc[frame["set"] == name, "correct"].sum(), name
    assert {"ood", "kaggle"} <= set(pd.DataFrame(embeddings["auc"])["set"])


def test_the_html_has_the_sections(staged) -> None:  # type: ignore[no-untyped-def]
    files, *_ = staged
    html = files.html.read_text(encoding="utf-8")
    for anchor in ("leakage", "domains", "slices", "embeddings", "robustness", "findings"):
        assert f'id="{anchor}"' in html, anchor


def _console(*args: str) -> subprocess.CompletedProcess[bytes]:
    script = Path(sys.executable).with_name("asl-eval")
    return subprocess.run(
        [str(script), *args], capture_output=True, timeout=900, env=os.environ.copy()
    )


def test_report_with_the_audit_options_through_the_console_script(  # type: ignore[no-untyped-def]
    staged, tiny_model, tmp_path: Path
) -> None:
    _, _, _, metadata = staged
    data = tiny_model.data
    result = _console(
        "report",
        str(tiny_model.path),
        str(data.ood_test),
        "--in-domain",
        str(data.train),
        "--no-cam",
        "--properties",
        "--metadata",
        str(metadata),
        "--slice-by",
        "signer",
        "--out",
        str(tmp_path),
        "--quiet",
    )
    assert result.returncode == 0, result.stderr.decode()
    report = json.loads((tmp_path / "model.json").read_text(encoding="utf-8"))
    assert {"domains", "slices"} <= set(report["sections"])
    assert set(pd.DataFrame(report["sections"]["slices"]["tests"])["column"]) == {"signer"}
