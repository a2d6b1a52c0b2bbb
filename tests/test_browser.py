"""The report in a real browser: headless Chromium (Debian's package) opens it from file://.

No console errors, no network requests, the headline and per-class table visible, and a
screenshot kept in tests/artifacts/. With hostile file names and labels: no dialog, no injected
element. Skipped where Chromium or Playwright is missing, except under CI, where it must run.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from asl_eval.inference import predict_folder
from asl_eval.predictions import Predictions
from asl_eval.report import EvaluationSet, ModelInfo, build_context, write_report

pytestmark = pytest.mark.slow

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def _chromium() -> str:
    path = os.environ.get("ASL_EVAL_CHROMIUM") or shutil.which("chromium")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed; .ci/run installs it with apt-get")
        pytest.skip("chromium not installed (apt-get install chromium)")
    return path


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    executable = _chromium()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        if os.environ.get("CI"):
            raise
        pytest.skip("playwright is not installed")
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(
            executable_path=executable, headless=True, args=CHROMIUM_FLAGS
        )
        yield instance
        instance.close()


def _open(browser, html: Path, width: int = 1280):  # type: ignore[no-untyped-def]
    """Open a report; return the page and what it tried: console errors, requests, dialogs."""
    page = browser.new_page(viewport={"width": width, "height": 900})
    seen: dict[str, list[str]] = {"errors": [], "requests": [], "dialogs": []}
    page.on(
        "console",
        lambda message: seen["errors"].append(message.text) if message.type == "error" else None,
    )
    page.on("pageerror", lambda error: seen["errors"].append(str(error)))
    page.on("request", lambda request: seen["requests"].append(request.url))
    page.on("dialog", lambda dialog: (seen["dialogs"].append(dialog.message), dialog.dismiss()))
    page.goto(html.resolve().as_uri())
    page.wait_for_load_state("load")
    return page, seen


def _outside_requests(urls: list[str], html: Path) -> list[str]:
    own = html.resolve().as_uri()
    return [u for u in urls if u != own and not u.startswith("data:")]


def test_demo_report_in_chromium(browser, tiny_model, tiny_learner, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    valid = Predictions.load(tiny_model.valid_predictions)
    ood = predict_folder(tiny_learner, tiny_model.data.ood_test, name="test")
    context = build_context(
        [EvaluationSet(valid, role="in-domain"), EvaluationSet(ood)],
        model=ModelInfo.describe(
            tiny_model.path, arch="resnet18", classes=ood.classes, input_size="32×32", versions={}
        ),
        command="asl-eval report model.pkl test/",
        now=datetime(2026, 1, 1, tzinfo=UTC),
    )
    files = write_report(context, tmp_path, name="demo")
    page, seen = _open(browser, files.html)
    assert seen["errors"] == []
    assert _outside_requests(seen["requests"], files.html) == []
    headline = page.locator("#headline")
    assert headline.is_visible()
    assert "on valid" in headline.inner_text() and "on test" in headline.inner_text()
    table = page.locator("table.per-class.comparison")
    assert table.count() == 1 and table.is_visible()
    assert table.locator("tbody tr").count() == 29
    # sorting by a column works when JavaScript runs (and the table is complete without it)
    first_before = table.locator("tbody tr th").first.inner_text()
    table.locator("thead th").nth(1).click()
    accuracies = [
        float(v)
        for v in table.locator("tbody tr td:nth-child(2)").evaluate_all(
            "cells => cells.map(c => c.getAttribute('data-sort'))"
        )
    ]
    assert accuracies == sorted(accuracies)
    assert first_before == "A"
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "report.png"), full_page=False)
    assert (ARTIFACTS / "report.png").stat().st_size > 10_000
    page.close()


def test_hostile_names_show_no_dialog_and_inject_nothing(browser, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "images"
    folder.mkdir()
    names = ['"><img src=x onerror=alert(1)>.jpg', "<svg onload=alert(2)>.jpg", "ok.jpg"]
    paths = []
    for i, name in enumerate(names):
        Image.new("RGB", (32, 32), (80 * i, 10, 10)).save(folder / name, format="JPEG")
        paths.append(str(folder / name))
    classes = ["<script>alert(3)</script>", "'\"><iframe src=javascript:alert(4)>"]
    predictions = Predictions.from_labels(
        [classes[0], classes[1], classes[0]],
        np.array([[0.3, 0.7], [0.6, 0.4], [0.9, 0.1]]),
        classes,
        paths=paths,
    )
    model_file = tmp_path / "m.pkl"
    model_file.write_bytes(b"not used")
    context = build_context(
        [EvaluationSet(predictions)],
        model=ModelInfo.describe(
            model_file, arch="x", classes=classes, input_size="?", versions={}
        ),
        command="asl-eval report '<img src=x onerror=alert(5)>'",
    )
    files = write_report(context, tmp_path / "out", name="hostile")
    page, seen = _open(browser, files.html)
    page.wait_for_timeout(300)
    assert seen["dialogs"] == []
    assert seen["errors"] == []
    assert _outside_requests(seen["requests"], files.html) == []
    assert page.locator("img[src='x']").count() == 0
    assert page.locator("iframe, svg, img[onerror]").count() == 0
    assert page.locator("script").count() == 1
    assert "<script>alert(3)</script>" in page.locator("table.per-class").first.inner_text()
    page.close()


def _generated_set(name: str, per_class: dict[str, int], right: float, seed: int) -> Predictions:
    """A set with ``per_class[c]`` images of class c, about ``right`` of them predicted right
    and the rest spread at random; long-ish names, as real set names are."""
    from asl_eval.demo_data import ASL_CLASSES

    rng = np.random.default_rng(seed)
    classes = list(ASL_CLASSES)
    y_true = [c for c in classes for _ in range(per_class.get(c, 0))]
    index = np.array([classes.index(c) for c in y_true])
    hit = rng.random(len(index)) < right
    y_pred = np.where(hit, index, rng.integers(0, len(classes), len(index)))
    proba = rng.dirichlet(np.ones(len(classes)), size=len(index)) * 0.3
    proba[np.arange(len(index)), y_pred] += 0.7
    paths = [f"/data/{name}/{t}/{i}.jpg" for i, t in enumerate(y_true)]
    return Predictions.from_labels(y_true, proba, classes, paths=paths, name=name)


def test_each_comparison_drop_column_is_visible_at_1366_px(browser, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Four sets (the issue's reading): validation, the official one-image-per-class folder,
    another signer without three classes, and a large third source. At 1366 px each
    comparison's drop column is on screen without horizontal scrolling."""
    from asl_eval.demo_data import ASL_CLASSES

    every = dict.fromkeys(ASL_CLASSES, 20)
    sets = [
        EvaluationSet(_generated_set("valid", every, 0.95, 0), role="in-domain"),
        EvaluationSet(
            _generated_set("kaggle28-official", dict.fromkeys(ASL_CLASSES[:28], 1), 0.6, 1)
        ),
        EvaluationSet(
            _generated_set("massey-other-signer", dict.fromkeys(ASL_CLASSES[:26], 20), 0.3, 2)
        ),
        EvaluationSet(_generated_set("third-source-870", dict.fromkeys(ASL_CLASSES, 30), 0.05, 3)),
    ]
    model_file = tmp_path / "m.pkl"
    model_file.write_bytes(b"not used")
    context = build_context(
        sets,
        model=ModelInfo.describe(
            model_file,
            arch="resnet34",
            classes=list(ASL_CLASSES),
            input_size="224×224",
            versions={},
        ),
        command="asl-eval report m.pkl --set a=... --set b=... --set c=...",
        findings=True,
    )
    files = write_report(context, tmp_path / "out", name="four")
    page, seen = _open(browser, files.html, width=1366)
    assert seen["errors"] == []
    tables = page.locator("table.per-class.comparison")
    assert tables.count() == 3
    viewport = page.evaluate("() => window.innerWidth")
    assert viewport == 1366
    for i, name in enumerate(["kaggle28-official", "massey-other-signer", "third-source-870"]):
        table = tables.nth(i)
        assert table.get_attribute("data-out-of-domain") == name
        table.scroll_into_view_if_needed()
        drop = table.locator("th.drop")
        assert drop.is_visible()
        box = drop.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= viewport
        # every drop cell, too, lies within the window, and its scroll box does not scroll
        right = table.locator("td.drop").evaluate_all(
            "cells => Math.max(...cells.map(c => c.getBoundingClientRect().right))"
        )
        assert right <= viewport
        overflow = table.evaluate("t => t.parentElement.scrollWidth - t.parentElement.clientWidth")
        assert overflow <= 0
    assert page.evaluate("() => document.documentElement.scrollWidth") <= viewport
    ARTIFACTS.mkdir(exist_ok=True)
    tables.nth(2).scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / "report-four-sets-1366.png"), full_page=False)
    page.close()
