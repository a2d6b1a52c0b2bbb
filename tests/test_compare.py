"""``asl-eval compare`` on reports written by asl-eval's own writers from synthetic
predictions: pairing, verdicts, exit codes, and what the markdown, JSON and HTML show.

The statistics themselves are checked against scipy/statsmodels in test_compare_stats.py;
the console script end to end, on real tiny models, in test_compare_cli.py.
"""

from __future__ import annotations

import hashlib
import html as html_module
import io
import json
import re
from collections.abc import Mapping, Sequence
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import typer
from PIL import Image
from typer.testing import CliRunner

from asl_eval.compare import CompareOptions, compare_report_files
from asl_eval.compare.command import compare_command
from asl_eval.compare.html import build_page, render_html, write_html
from asl_eval.compare.reading import read_predictions_csv
from asl_eval.compare.render import comparison_json, markdown_text, render_markdown
from asl_eval.errors import ReportError
from asl_eval.predictions import Predictions
from asl_eval.report import EvaluationSet, ModelInfo, build_context, write_report

# ------------------------------------------------------------------------------------------
# Writing hand-made reports
# ------------------------------------------------------------------------------------------
SetSpec = tuple[str, Sequence[str], Sequence[str]]
"""(role, true classes, predicted classes) of one set."""
CLASSES = ["A", "B", "C", "D", "E"]


def one_hot_proba(predicted: Sequence[str], classes: Sequence[str]) -> np.ndarray:
    index = {c: i for i, c in enumerate(classes)}
    proba = np.full((len(predicted), len(classes)), 0.1 / (len(classes) - 1))
    proba[np.arange(len(predicted)), [index[c] for c in predicted]] = 0.9
    return proba


def relpaths_for(y_true: Sequence[str]) -> list[str]:
    return [f"{label}/img{i:05d}.jpg" for i, label in enumerate(y_true)]


def write_side(
    folder: Path,
    name: str,
    sets: Mapping[str, SetSpec],
    classes: Sequence[str] = CLASSES,
    *,
    hashed: bool = True,
    relpaths: Mapping[str, Sequence[str]] | None = None,
    hashes: Mapping[str, Sequence[str]] | None = None,
    root: Path | None = None,
) -> Path:
    """``<folder>/<name>.json`` (+ CSV and HTML) from synthetic predictions, via
    build_context and write_report. Paths are ``<root or /data/SET>/<relpath>``; hashes
    default to the SHA-256 of the relpath text (standing in for the file's bytes)."""
    evaluation_sets = []
    for set_name, (role, y_true, y_pred) in sets.items():
        rel = list((relpaths or {}).get(set_name) or relpaths_for(y_true))
        sha = list(
            (hashes or {}).get(set_name) or [hashlib.sha256(r.encode()).hexdigest() for r in rel]
        )
        where = root or Path("/data") / set_name
        predictions = Predictions(
            classes=tuple(classes),
            paths=tuple(str(where / r) for r in rel),
            y_true=np.array([list(classes).index(t) for t in y_true]),
            y_proba=one_hot_proba(y_pred, classes),
            name=set_name,
            sha256=tuple(sha) if hashed else (),
            relpaths=tuple(rel) if hashed else (),
        )
        evaluation_sets.append(EvaluationSet(predictions, role=role))  # type: ignore[arg-type]
    model = ModelInfo(
        path=str(folder / f"{name}.pkl"),
        sha256="0" * 64,
        arch="resnet18",
        classes=tuple(classes),
        input_size="32×32",
        versions={},
    )
    context = build_context(evaluation_sets, model=model, command="test", n_gallery=0)
    return write_report(context, folder, name=name).json


def flip(
    predicted: Sequence[str], y_true: Sequence[str], indices: Sequence[int], classes=CLASSES
) -> list[str]:
    """``predicted`` with the images at ``indices`` made wrong."""
    out = list(predicted)
    for i in indices:
        out[i] = next(c for c in classes if c != y_true[i])
    return out


def fix(predicted: Sequence[str], y_true: Sequence[str], indices: Sequence[int]) -> list[str]:
    """``predicted`` with the images at ``indices`` made right."""
    out = list(predicted)
    for i in indices:
        out[i] = y_true[i]
    return out


def labels(n: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    return [CLASSES[i] for i in rng.permutation(np.arange(n) % len(CLASSES))]


def base_predictions(y_true: Sequence[str], error_rate: float, seed: int = 1) -> list[str]:
    rng = np.random.default_rng(seed)
    return flip(y_true, y_true, np.flatnonzero(rng.random(len(y_true)) < error_rate).tolist())


@pytest.fixture(scope="module")
def large(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """2000 images. BASE: 90% right. NEW_C: a quarter of class C's right images made wrong.
    NEW_SMALL: 10 right->wrong and 5 wrong->right (an insignificant 0.25-point drop)."""
    folder = tmp_path_factory.mktemp("large")
    y = labels(2000)
    base = base_predictions(y, 0.1)
    right_c = [i for i in range(len(y)) if y[i] == "C" and base[i] == y[i]]
    worse_c = right_c[: len(right_c) // 4]
    right = [i for i in range(len(y)) if base[i] == y[i]]
    wrong = [i for i in range(len(y)) if base[i] != y[i]]
    return {
        "y": y,
        "right_c": len(right_c),
        "worse_c": len(worse_c),
        "base": write_side(folder, "base", {"test": ("test", y, base)}),
        "new_c": write_side(folder, "new_c", {"test": ("test", y, flip(base, y, worse_c))}),
        "new_small": write_side(
            folder,
            "new_small",
            {"test": ("test", y, fix(flip(base, y, right[:10]), y, wrong[:5]))},
        ),
    }


# ------------------------------------------------------------------------------------------
# Verdicts
# ------------------------------------------------------------------------------------------
def test_identical_predictions_give_p_one_and_pass(large: dict) -> None:
    result = compare_report_files(large["base"], large["base"])
    (s,) = result.sets
    assert (s.p_value, s.p_adjusted, s.only_base, s.only_new) == (1.0, 1.0, 0, 0)
    assert s.accuracy_base == s.accuracy_new
    assert s.matched_by == "content"
    assert s.power >= 0.8  # 2000 images detect a 1-point drop
    assert (s.verdict, result.verdict, result.exit_code) == ("no regression",) * 2 + (0,)
    assert s.per_class["p_value"].tolist() == [1.0] * 5


def test_one_class_made_worse_is_flagged_on_that_class_only(large: dict) -> None:
    result = compare_report_files(large["base"], large["new_c"])
    (s,) = result.sets
    assert s.only_base == large["worse_c"] and s.only_new == 0
    assert s.regressed_classes == ("C",)
    table = s.per_class
    assert table.loc["C", "only_a"] == large["worse_c"]
    assert table.loc["C", "drop"] == pytest.approx(large["worse_c"] / 400)
    assert table.drop(index="C")["difference"].eq(0).all()
    assert s.drop == pytest.approx(large["worse_c"] / 2000)
    assert s.verdict == "regression" and result.exit_code == 3
    assert result.regressed_sets == ("test",)


def test_confusion_delta_is_new_minus_base_against_scikit_learn(large: dict) -> None:
    from sklearn.metrics import confusion_matrix

    result = compare_report_files(large["base"], large["new_small"])
    (page,) = build_page(result, images=False).sets
    frame = page.result.images.frame
    full = confusion_matrix(frame["y_true"], frame["pred_new"], labels=CLASSES) - confusion_matrix(
        frame["y_true"], frame["pred_base"], labels=CLASSES
    )
    changed = [i for i in range(len(CLASSES)) if full[i].any() or full[:, i].any()]
    delta = page.confusion
    assert delta.classes == tuple(CLASSES[i] for i in changed)
    assert np.array_equal(np.array(delta.cells), full[np.ix_(changed, changed)])
    assert np.array(delta.cells).sum() == 0  # every image moves from one cell to another
    for i, row in enumerate(delta.cells):
        for j, value in enumerate(row):
            more_right = value > 0 if i == j else value < 0
            expected = "" if value == 0 else ("better" if more_right else "worse")
            assert delta.marks[i][j] == expected


def test_a_class_regression_alone_fails_only_with_fail_on_class(tmp_path: Path) -> None:
    """Set-level drop under --max-drop, one class down a lot: reported; fails only with the flag."""
    y = labels(5000)
    base = base_predictions(y, 0.05)
    right_e = [i for i in range(len(y)) if y[i] == "E" and base[i] == y[i]][:40]
    others = [i for i in range(len(y)) if y[i] != "E" and base[i] != y[i]][:30]
    new = fix(flip(base, y, right_e), y, others)  # 10 images net: 0.2 points overall
    b = write_side(tmp_path, "base", {"test": ("test", y, base)})
    n = write_side(tmp_path, "new", {"test": ("test", y, new)})
    plain = compare_report_files(b, n, CompareOptions(max_drop=0.01))
    assert plain.sets[0].verdict == "no regression"
    assert plain.regressed_classes == {"test": ("E",)}
    assert plain.exit_code == 0
    strict = compare_report_files(b, n, CompareOptions(max_drop=0.01, fail_on_class=True))
    assert strict.exit_code == 3 and strict.verdict == "regression"
    assert "E" in render_markdown(strict)


def test_small_insignificant_drop_passes(large: dict) -> None:
    result = compare_report_files(large["base"], large["new_small"])
    (s,) = result.sets
    assert (s.only_base, s.only_new) == (10, 5)
    assert 0 < s.drop < 0.01 and s.p_value > 0.05
    assert s.verdict == "no regression" and result.exit_code == 0
    assert s.ci_low < 0 < s.ci_high


def test_real_drop_on_a_small_set_is_not_enough_evidence(tmp_path: Path) -> None:
    y = labels(60)
    base = base_predictions(y, 0.1)
    right = [i for i in range(len(y)) if base[i] == y[i]]
    b = write_side(tmp_path, "base", {"test": ("test", y, base)})
    n = write_side(tmp_path, "new", {"test": ("test", y, flip(base, y, right[:3]))})
    result = compare_report_files(b, n)
    (s,) = result.sets
    assert s.drop == pytest.approx(0.05)  # five times --max-drop, but 3 images
    assert s.p_value == pytest.approx(0.25)
    assert s.power < 0.05
    assert s.verdict == "not enough evidence" and result.exit_code == 4
    assert "Not enough evidence on test: with 60 images" in render_markdown(result)


def test_sets_are_holm_adjusted_together(tmp_path: Path) -> None:
    y = labels(1500)
    base = base_predictions(y, 0.1)
    right = [i for i in range(len(y)) if base[i] == y[i]]
    new_a, new_b = flip(base, y, right[:30]), flip(base, y, right[:8])
    b = write_side(tmp_path, "b", {"one": ("test", y, base), "two": ("test", y, base)})
    n = write_side(tmp_path, "n", {"one": ("test", y, new_a), "two": ("test", y, new_b)})
    result = compare_report_files(b, n)
    p = [s.p_value for s in result.sets]
    assert p == pytest.approx([2 * 0.5**30, 2 * 0.5**8])
    assert [s.p_adjusted for s in result.sets] == pytest.approx([2 * p[0], p[1]])


# ------------------------------------------------------------------------------------------
# Pairing images
# ------------------------------------------------------------------------------------------
def test_mismatched_image_sets_name_the_files(tmp_path: Path) -> None:
    y = labels(20)
    rel = relpaths_for(y)
    other = [*rel[:18], "X/new1.jpg", "X/new2.jpg"]
    sha = [hashlib.sha256(r.encode()).hexdigest() for r in rel]
    changed = ["f" * 64, *sha[1:]]
    b = write_side(tmp_path, "b", {"test": ("test", y, y)})
    n = write_side(tmp_path, "n", {"test": ("test", y, y)}, relpaths={"test": other})
    with pytest.raises(ReportError, match=r"2 only in BASE \(.*img00018\.jpg, .*img00019\.jpg\)"):
        compare_report_files(b, n)
    with pytest.raises(ReportError, match=r"2 only in NEW \(X/new1\.jpg, X/new2\.jpg\)"):
        compare_report_files(b, n)
    c = write_side(tmp_path, "c", {"test": ("test", y, y)}, hashes={"test": changed})
    with pytest.raises(ReportError, match=r"1 changed between the runs \(.*img00000\.jpg\)"):
        compare_report_files(b, c)


def test_same_files_in_another_folder_match_by_content(tmp_path: Path) -> None:
    y = labels(40)
    b = write_side(tmp_path, "b", {"test": ("test", y, y)}, root=Path("/home/ana/test"))
    n = write_side(tmp_path, "n", {"test": ("test", y, y)}, root=Path("/ci/work/test"))
    assert compare_report_files(b, n).sets[0].n_images == 40


def test_reports_without_hashes_match_by_path_with_a_note(tmp_path: Path) -> None:
    """Version-3 style: no content hashes; the JSON rewritten as schema version 3."""
    y = labels(30)
    b = write_side(tmp_path, "b", {"test": ("test", y, y)}, hashed=False)
    n = write_side(tmp_path, "n", {"test": ("test", y, fix(y, y, []))}, hashed=True)
    document = json.loads(b.read_text())
    for entry in document["sets"]:
        entry.pop("content")
    document["model"].pop("engine", None)
    document["schema_version"] = 3
    b.write_text(json.dumps(document))
    csv = b.with_name("b.predictions.csv")
    pd.read_csv(csv).drop(columns=["relpath", "sha256"]).to_csv(csv, index=False)
    result = compare_report_files(b, n)
    assert result.sets[0].matched_by == "path"
    assert "not by content" in result.notes[0]
    assert "not by content" in render_markdown(result)


def test_different_true_labels_are_an_error(tmp_path: Path) -> None:
    y = labels(10)
    relabelled = ["B" if t == "A" else t for t in y]
    b = write_side(tmp_path, "b", {"test": ("test", y, y)})
    n = write_side(
        tmp_path,
        "n",
        {"test": ("test", relabelled, relabelled)},
        relpaths={"test": relpaths_for(y)},
    )
    with pytest.raises(ReportError, match=r"2 image.* different true label"):
        compare_report_files(b, n)


def test_csv_cells_a_spreadsheet_would_run_are_read_back_as_written(tmp_path: Path) -> None:
    # names that begin with a quote themselves must come back with it, even before "="
    classes = ["=cmd", "+x", "-y", "@z", "'=q", "'A", "''B"]
    y = [classes[i % len(classes)] for i in range(2 * len(classes))]
    b = write_side(tmp_path, "b", {"test": ("test", y, y)}, classes)
    raw = pd.read_csv(b.with_name("b.predictions.csv"), dtype=str, keep_default_na=False)
    assert set(raw["y_true"]) == {"'" + name for name in classes}
    frame = read_predictions_csv(b.with_name("b.predictions.csv"))
    assert sorted(set(frame["y_true"])) == sorted(classes)
    assert compare_report_files(b, b).sets[0].p_value == 1.0


def test_set_selection_and_sets_in_one_report_only(tmp_path: Path) -> None:
    y = labels(20)
    b = write_side(tmp_path, "b", {"one": ("test", y, y), "two": ("test", y, y)})
    n = write_side(tmp_path, "n", {"one": ("test", y, y), "three": ("test", y, y)})
    result = compare_report_files(b, n)
    assert [s.name for s in result.sets] == ["one"]
    assert {(s.name, s.reason) for s in result.skipped} == {
        ("two", "only in BASE"),
        ("three", "only in NEW"),
    }
    with pytest.raises(
        ReportError, match="--set 'two': NEW has no such set; it has 'one', 'three'"
    ):
        compare_report_files(b, n, CompareOptions(sets=("two",)))


# ------------------------------------------------------------------------------------------
# The in-domain split
# ------------------------------------------------------------------------------------------
def _record(json_path: Path, kind: str | None) -> None:
    config: dict[str, object] = {"valid_pct": 0.2, "seed": 42}
    if kind is not None:
        config["split"] = kind
    json_path.with_name(json_path.stem + ".train.json").write_text(json.dumps({"config": config}))


def test_in_domain_compared_only_on_the_same_split(tmp_path: Path) -> None:
    y = labels(30)
    sets = {"valid": ("in-domain", y, y), "test": ("test", y, y)}
    b = write_side(tmp_path, "b", sets)
    n = write_side(tmp_path, "n", sets)
    result = compare_report_files(b, n)
    assert [s.name for s in result.sets] == ["test"]
    assert "not comparable: no training record for BASE" in result.skipped[0].reason
    _record(b, None)  # no kind recorded: a random split
    _record(n, "random")
    assert [s.name for s in compare_report_files(b, n).sets] == ["valid", "test"]
    _record(n, "grouped")
    (skipped,) = compare_report_files(b, n).skipped
    assert skipped.reason == (
        "not comparable: the models were trained on different kinds of split (random vs grouped)"
    )


def test_in_domain_with_other_files_is_not_comparable(tmp_path: Path) -> None:
    y = labels(30)
    b = write_side(tmp_path, "b", {"valid": ("in-domain", y, y), "test": ("test", y, y)})
    other = {"valid": [f"x/{r}" for r in relpaths_for(y)]}
    n = write_side(
        tmp_path, "n", {"valid": ("in-domain", y, y), "test": ("test", y, y)}, relpaths=other
    )
    _record(b, "random")
    _record(n, "random")
    result = compare_report_files(b, n)
    assert "different files (their content digests differ)" in result.skipped[0].reason
    assert "Not compared: valid" in render_markdown(result)


# ------------------------------------------------------------------------------------------
# Markdown, JSON and HTML
# ------------------------------------------------------------------------------------------
HOSTILE = [
    "<script>alert(1)</script>",
    "a|b",
    "`tick`",
    "[x](javascript:alert(1))",
    "@everyone",
    "**bold**",
]


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Reports whose class and set names are markup; NEW is worse on the first class."""
    folder = tmp_path_factory.mktemp("hostile")
    y = [HOSTILE[i % len(HOSTILE)] for i in range(600)]
    new = flip(y, y, [i for i in range(600) if i % len(HOSTILE) == 0][:60], HOSTILE)
    set_name = "<img src=x onerror=alert(1)>|"
    b = write_side(folder, "b", {set_name: ("test", y, y)}, HOSTILE)
    n = write_side(folder, "n", {set_name: ("test", y, new)}, HOSTILE)
    return b, n


class _Cells(HTMLParser):
    """Tags seen, and the text of each table row's cells."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.rows: list[list[str]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag == "tr":
            self.rows.append([])
        if tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append("".join(self._cell).replace("\u200b", ""))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def test_markdown_renders_hostile_names_as_text(hostile: tuple[Path, Path]) -> None:
    from markdown_it import MarkdownIt

    result = compare_report_files(*hostile, CompareOptions(max_drop=0.01))
    assert result.regressed_classes
    html = MarkdownIt("commonmark").enable("table").render(render_markdown(result))
    parsed = _Cells()
    parsed.feed(html)
    assert not {tag for tag, _ in parsed.tags} & {"script", "img", "a", "code", "em"}
    assert set(re.findall(r"<strong>(.*?)</strong>", html)) <= {"regression", "Regression"}
    assert all(len(row) in (9, 10) for row in parsed.rows)  # no name split a table cell
    set_rows = [row for row in parsed.rows if len(row) == 10]
    class_rows = [row for row in parsed.rows if len(row) == 9]
    assert set_rows[1][0] == "<img src=x onerror=alert(1)>|"
    assert [row[1] for row in class_rows[1:]] == [HOSTILE[0]]
    escaped = html_module.escape(f"{set_rows[1][0]}: {HOSTILE[0]}", quote=False)
    assert f"Classes that regressed (not failing the gate: no --fail-on-class): {escaped}" in html


@pytest.mark.parametrize("name", ["del-2", "-x", "+ y", "1. z", "12) w", "---", "a.b"])
def test_markdown_text_reads_as_itself_at_the_start_of_a_line(name: str) -> None:
    from markdown_it import MarkdownIt

    html = MarkdownIt("commonmark").render(markdown_text(name))
    assert html == f"<p>{html_module.escape(name, quote=False)}</p>\n"


def test_markdown_text_breaks_mentions_and_links() -> None:
    assert "\u200b" in markdown_text("@everyone")
    assert "\u200b" in markdown_text("see https://evil.example")
    assert markdown_text("a\x1b[2Jb") == "a&#92;x1b&#91;2Jb"  # ESC made visible


def test_json_output_is_complete_and_strict(large: dict) -> None:
    result = compare_report_files(large["base"], large["new_c"])
    document = json.loads(json.dumps(comparison_json(result), allow_nan=False))
    assert document["verdict"] == "regression" and document["exit_code"] == 3
    (s,) = document["sets"]
    assert s["right_to_wrong"] == large["worse_c"] and s["regressed_classes"] == ["C"]
    assert {row["class"] for row in s["per_class"]} == set(CLASSES)


def test_html_is_self_contained_escaped_and_shows_the_flips(hostile: tuple[Path, Path]) -> None:
    result = compare_report_files(*hostile)
    page = render_html(build_page(result))
    parsed = _Cells()
    parsed.feed(page)
    assert "script" not in {tag for tag, _ in parsed.tags}
    assert "default-src 'none'" in page and "script-src" not in page
    assert not re.search(r"(src|href)=\"(?!data:image/|#set-)", page)  # no request
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<img src=x" not in page
    assert "Right → wrong (BASE right, NEW wrong): 60" in page
    assert "image unavailable" in page  # the files are not on disk


def test_html_thumbnails_come_only_from_unchanged_files(tmp_path: Path) -> None:
    root = tmp_path / "images"
    y = ["A", "B"] * 4
    rel = relpaths_for(y)
    digests = []
    for i, r in enumerate(rel):
        path = root / r
        path.parent.mkdir(parents=True, exist_ok=True)
        buffer = io.BytesIO()
        Image.new("RGB", (16, 16), (30 * i, 0, 0)).save(buffer, format="JPEG")
        path.write_bytes(buffer.getvalue())
        digests.append(hashlib.sha256(buffer.getvalue()).hexdigest())
    sets = {"test": ("test", y, y)}
    b = write_side(tmp_path, "b", sets, ["A", "B"], hashes={"test": digests}, root=root)
    new = flip(y, y, [0, 1], ["A", "B"])
    n = write_side(
        tmp_path, "n", {"test": ("test", y, new)}, ["A", "B"], hashes={"test": digests}, root=root
    )
    result = compare_report_files(b, n)
    page = write_html(result, tmp_path / "c.html").read_text()
    assert page.count('src="data:image/jpeg;base64,') == 2
    (root / rel[0]).write_bytes(b"changed")  # no longer the image the report saw
    page = render_html(build_page(result))
    assert page.count('src="data:image/jpeg;base64,') == 1
    assert render_html(build_page(result, images=False)).count("data:image/jpeg") == 0


# ------------------------------------------------------------------------------------------
# The command (Typer's runner on a local app; the console script is in test_compare_cli.py)
# ------------------------------------------------------------------------------------------
def _app() -> typer.Typer:
    app = typer.Typer(add_completion=False)
    app.command("compare")(compare_command)

    @app.callback()
    def _root() -> None:
        """asl-eval."""

    return app


def _run(*args: object) -> object:
    return CliRunner().invoke(_app(), ["compare", *map(str, args)])


def test_command_exit_codes_and_outputs(large: dict, tmp_path: Path) -> None:
    same = _run(large["base"], large["base"])
    assert same.exit_code == 0, same.output
    assert same.stdout.startswith("### asl-eval compare: no regression (exit 0)")
    worse = _run(large["base"], large["new_c"], "--json", "--html", tmp_path / "c.html")
    assert worse.exit_code == 3
    assert json.loads(worse.stdout)["regressed_sets"] == ["test"]
    assert "comparison page:" in worse.stderr
    assert (tmp_path / "c.html").stat().st_size > 1000


def test_command_errors_and_usage(large: dict, tmp_path: Path) -> None:
    missing = _run(large["base"], tmp_path / "nothing.json")
    assert missing.exit_code == 1 and missing.stderr.startswith("error: Could not read report")
    assert _run(large["base"], large["new_c"], "--max-drop", "0").exit_code == 2
    assert _run(large["base"], large["new_c"], "--alpha", "1.5").exit_code == 2
    assert _run(large["base"], large["new_c"], "--test", tmp_path).exit_code == 2
    assert _run(large["base"], tmp_path / "model.pkl").exit_code == 2
    assert _run(tmp_path / "a.pkl", tmp_path / "b.pkl").exit_code == 2
    assert _run(large["base"], large["base"], "--set", "nope").exit_code == 1
