"""A report to share: --redact-paths keeps user and folder names out of the HTML, JSON, CSV and
recorded command; --no-images leaves thumbnails and heatmaps out; the report says which."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from asl_eval.analysis import AnalysisResult
from asl_eval.inputs import LINK_OUTSIDE
from asl_eval.predictions import Ledger, LedgerEntry, Predictions
from asl_eval.report import EvaluationSet, ModelInfo, build_context, write_report
from asl_eval.report.sharing import (
    Sharing,
    display_paths,
    redact_analysis,
    redact_command,
    redact_text,
    set_root,
    strip_images,
)

CONSOLE = Path(sys.executable).with_name("asl-eval")


def run_console(*arguments: str) -> subprocess.CompletedProcess[bytes]:
    """The installed ``asl-eval`` console script in a fresh process."""
    return subprocess.run([str(CONSOLE), *arguments], capture_output=True, timeout=900, check=False)


def _images(root: Path) -> Predictions:
    """Four real images under ``root/A`` and ``root/B`` (all misclassified, so each gets a
    thumbnail) and one excluded file."""
    paths = []
    for i, label in enumerate(["A", "A", "B", "B"]):
        path = root / label / f"{label}{i}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (16, 16), (60 * i, 0, 0)).save(path)
        paths.append(str(path))
    proba = np.array([[0.2, 0.8], [0.3, 0.7], [0.9, 0.1], [0.6, 0.4]])
    entries = [
        LedgerEntry(p, "evaluated", label=label)
        for p, label in zip(paths, ["A", "A", "B", "B"], strict=True)
    ]
    entries.append(LedgerEntry(str(root / "B" / "gone.png"), "excluded", "zero-byte file", "B"))
    return Predictions(
        classes=("A", "B"),
        paths=tuple(paths),
        y_true=np.array([0, 0, 1, 1]),
        y_proba=proba,
        name="test",
        ledger=Ledger.of(entries),
        source=str(root),
    )


def _write(tmp_path: Path, sharing: Sharing) -> dict[str, bytes]:
    predictions = _images(tmp_path / "photos" / "test")
    model_file = tmp_path / "models" / "m.pkl"
    model_file.parent.mkdir()
    model_file.write_bytes(b"model")
    model = ModelInfo.describe(
        model_file, arch="resnet18", classes=("A", "B"), input_size="16×16", versions={}
    )
    command = (
        f"asl-eval report {model_file} {tmp_path / 'photos' / 'test'} --out {tmp_path / 'out'}"
    )
    context = build_context(
        [EvaluationSet(predictions)], model=model, command=command, sharing=sharing
    )
    files = write_report(context, tmp_path / "out", name="shared")
    return {
        "html": files.html.read_bytes(),
        "json": files.json.read_bytes(),
        "csv": files.predictions_csv.read_bytes(),
    }


def test_redacted_report_names_no_folder_above_the_sets(tmp_path: Path) -> None:
    written = _write(tmp_path, Sharing(redact_paths=True))
    for kind, data in written.items():
        for secret in (str(tmp_path), tmp_path.name, "photos"):
            assert secret.encode() not in data, (kind, secret)
    document = json.loads(written["json"])
    assert document["sharing"] == {"redact_paths": True, "images": True}
    assert document["model"]["path"] == "m.pkl"
    assert document["command"] == "asl-eval report m.pkl test --out out"
    (only,) = document["sets"]
    assert only["source"] == "test"
    assert {row["path"] for row in only["top_losses"]} == {
        "A/A0.png",
        "A/A1.png",
        "B/B2.png",
        "B/B3.png",
    }
    assert only["not_evaluated"][0]["path"] == "B/gone.png"
    frame = pd.read_csv(pd.io.common.BytesIO(written["csv"]))
    assert sorted(frame["path"]) == ["A/A0.png", "A/A1.png", "B/B2.png", "B/B3.png"]
    html = written["html"].decode()
    assert html.count("data:image/jpeg") == 4 + 4  # gallery and confused-pair examples
    assert "relative to each set&#39;s folder (--redact-paths)" in html


def test_paths_stay_as_given_by_default(tmp_path: Path) -> None:
    written = _write(tmp_path, Sharing())
    document = json.loads(written["json"])
    assert document["sharing"] == {"redact_paths": False, "images": True}
    assert document["model"]["path"] == str(tmp_path / "models" / "m.pkl")
    assert str(tmp_path).encode() in written["csv"]
    assert b"Paths are as given on this computer" in written["html"]


def test_no_images_leaves_out_every_thumbnail(tmp_path: Path) -> None:
    written = _write(tmp_path, Sharing(images=False))
    html = written["html"].decode()
    assert "data:image/jpeg" not in html
    assert "image left out" in html
    assert "thumbnails and heatmaps are left out (--no-images)" in html
    assert "data:image/png" in html  # figures drawn from numbers stay
    assert json.loads(written["json"])["sharing"] == {"redact_paths": False, "images": False}


def test_set_root_and_display_paths(tmp_path: Path) -> None:
    predictions = _images(tmp_path / "test")
    assert set_root(predictions) == str(tmp_path / "test")
    shown = display_paths(predictions)
    assert shown[str(tmp_path / "test" / "B" / "gone.png")] == "B/gone.png"
    # a saved validation split names no folder: the deepest one holding all files is the root
    moved = Predictions(
        classes=predictions.classes,
        paths=predictions.paths,
        y_true=predictions.y_true,
        y_proba=predictions.y_proba,
        ledger=predictions.ledger,
        source="validation split",
    )
    assert set_root(moved) == str(tmp_path / "test")


def test_redact_command_and_text() -> None:
    command = (
        "asl-eval report /home/ana/models/m.pkl ../data/kaggle/ --set k28=/home/ana/k28 "
        "--out=/home/ana/reports --label-regex '^(\\w)/x' --labels-csv labels/mine.csv"
    )
    redacted = redact_command(command, ["../data/kaggle", "labels/mine.csv"])
    assert redacted == (
        "asl-eval report m.pkl kaggle --set k28=k28 --out=reports --label-regex '^(\\w)/x' "
        "--labels-csv mine.csv"
    )
    assert redact_text("split of C:\\Users\\ana\\train") == "split of train"
    assert redact_text("from ~/asl/x.png and /srv/y") == "from x.png and y"


def test_sections_are_redacted_and_stripped_generically() -> None:
    items = pd.DataFrame(
        {"path": ["/home/ana/t/A/1.png", "/elsewhere/2.png"], "set": ["t", "t"]}
    ).assign(image_png=[b"\x89PNG-1", b"\x89PNG-2"], score=[0.5, 0.25])
    result = AnalysisResult(
        "demo",
        items,
        pd.DataFrame({"n": [2]}),
        {"skipped": pd.DataFrame({"path": ["/home/ana/t/A/1.png"]}), "figure": b"png"},
    )
    shown = {"t": {"/home/ana/t/A/1.png": "A/1.png"}}
    redacted = redact_analysis(result, shown)
    assert list(redacted.items["path"]) == ["A/1.png", "2.png"]
    assert list(redacted.info["skipped"]["path"]) == ["A/1.png"]  # type: ignore[index]
    stripped = strip_images(redacted)
    assert list(stripped.items["image_png"]) == [None, None]
    assert list(stripped.items["score"]) == [0.5, 0.25]
    assert stripped.info["figure"] is None
    assert list(result.items["image_png"]) == [b"\x89PNG-1", b"\x89PNG-2"]  # not changed


def test_a_path_column_of_counts_keeps_its_numbers() -> None:
    """The slices section's matching table counts the images matched by path in a column named
    ``path``: redaction rewrites paths, not numbers."""
    matching = pd.DataFrame({"set": ["t", "t"], "path": [3, 0], "name": [1, 2]})
    result = AnalysisResult("demo", matching, pd.DataFrame({"n": [1]}), {"matching": matching})
    redacted = redact_analysis(result, {"t": {"/home/ana/t/A/1.png": "A/1.png"}})
    assert list(redacted.items["path"]) == [3, 0]
    assert list(redacted.info["matching"]["path"]) == [3, 0]  # type: ignore[index]
    assert redacted.items["path"].dtype.kind == "i"


@pytest.mark.parametrize("dtype", [object, "string", "str"])
def test_text_columns_of_any_text_dtype_are_redacted(dtype: object) -> None:
    table = pd.DataFrame({"nearest": pd.Series(["/home/ana/train/A/7.png"], dtype=dtype)})
    result = AnalysisResult("demo", table, pd.DataFrame({"n": [1]}), {"pairs": table})
    redacted = redact_analysis(result, {})
    assert list(redacted.items["nearest"]) == ["7.png"]
    assert list(redacted.info["pairs"]["nearest"]) == ["7.png"]  # type: ignore[index]


def test_shared_report_through_the_console_script(tiny_model, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The real command on the tiny model, with a link out of the test folder: nothing above
    a set's folder, no photo and no heatmap reaches the three files."""
    test = tmp_path / "test"
    for image in sorted(Path(tiny_model.data.ood_test).rglob("*.jpg"))[:12]:
        target = test / image.parent.name / image.name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(image.read_bytes())
    secret = tmp_path / "private" / "face.png"
    secret.parent.mkdir()
    Image.new("RGB", (32, 32), "white").save(secret)
    os.symlink(secret, test / "A" / "link.png")
    out = tmp_path / "out"
    result = run_console(
        "report",
        str(tiny_model.path),
        str(test),
        "--out",
        str(out),
        "--redact-paths",
        "--no-images",
        "--cam-layer",
        "0.5",
    )
    assert result.returncode == 0, result.stderr.decode()
    written = {p.name: p.read_bytes() for p in out.iterdir()}
    assert sorted(written) == ["model.html", "model.json", "model.predictions.csv"]
    base = str(Path(tiny_model.path).parents[1])  # pytest's temporary folder, with the user
    for name, data in written.items():
        for secret_text in (base, str(tmp_path), tmp_path.name, "pytest-of-", "private"):
            assert secret_text.encode() not in data, (name, secret_text)
    html = written["model.html"].decode()
    assert "data:image/jpeg" not in html
    cam = html[html.index('<section id="cam">') : html.index('<section id="ledger">')]
    assert "<img" not in cam and "heatmap left out" in cam
    assert "left out (--no-images)" in html and "(--redact-paths)" in html
    document = json.loads(written["model.json"])
    assert document["sharing"] == {"redact_paths": True, "images": False}
    assert document["model"]["path"] == "model.pkl"
    assert document["command"].startswith("asl-eval report model.pkl test --out out")
    test_set = next(s for s in document["sets"] if s["name"] == "test")
    assert {"path": "A/link.png", "status": "excluded", "reason": LINK_OUTSIDE, "label": None} in (
        test_set["not_evaluated"]
    )
    assert test_set["ledger"]["found"] == 13 and test_set["ledger"]["evaluated"] == 12


def test_files_spread_across_the_disk_show_file_names_only() -> None:
    """Found in review: a set whose files share only '/' must not show home/ana/... paths."""
    import numpy as np

    from asl_eval.predictions import Predictions
    from asl_eval.report.sharing import display_paths, set_root

    spread = Predictions(
        classes=("A", "B"),
        paths=("/home/ana/x/A/1.jpg", "/srv/y/B/2.jpg"),
        y_true=np.array([0, 1]),
        y_proba=np.array([[0.9, 0.1], [0.2, 0.8]]),
        source="/home/ana/x",
    )
    assert set_root(spread) is None
    assert display_paths(spread) == {"/home/ana/x/A/1.jpg": "1.jpg", "/srv/y/B/2.jpg": "2.jpg"}
