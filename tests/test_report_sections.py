"""The report's optional sections come from the registry: a registered analysis shows in page
order with a navigation link, writes its JSON block, and stays escaped text; a registered
section the report lacks shows its placeholder (or nothing); unknown analyses are refused.
The report is built before it is rendered, and never imports torch."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from asl_eval.analysis import AnalysisResult
from asl_eval.errors import ReportError
from asl_eval.predictions import Predictions
from asl_eval.report import (
    EvaluationSet,
    ModelInfo,
    ReportContext,
    SectionSpec,
    build_context,
    register_section,
    write_report,
)
from asl_eval.report.generic import table_json, table_variables
from asl_eval.report.registry import registered_sections, section_spec, unregister_section
from asl_eval.report.render import render_html

TEMPLATES = Path(__file__).resolve().parents[1] / "asl_eval" / "report" / "templates"


def _spec(key: str, order: int, placeholder: str = "") -> SectionSpec:
    return SectionSpec(
        key=key,
        title=f"Check {key}",
        anchor=f"#{key.replace('_', '-')}",
        template="table.html.j2",
        build=table_variables,
        to_json=table_json,
        order=order,
        placeholder=placeholder,
    )


@pytest.fixture
def specs() -> Iterator[tuple[SectionSpec, SectionSpec, SectionSpec]]:
    """Three sections registered for one test: later on the page, earlier, and one with a
    placeholder."""
    registered = (
        register_section(_spec("zz_check", order=90)),
        register_section(_spec("aa_check", order=95)),
        register_section(_spec("mm_check", order=80, placeholder="No <mm> check: run it.")),
    )
    yield registered
    for spec in registered:
        unregister_section(spec.key)


def _analysis(name: str, items: pd.DataFrame) -> AnalysisResult:
    summary = pd.DataFrame({"n_items": [len(items)], "share": [0.25]})
    return AnalysisResult(name, items, summary, info={"note": f"note of {name}"})


def _ours(sections: tuple[object, ...]) -> list[str]:
    """The keys of this test's sections (the Grad-CAM section may be registered too)."""
    keys = [str(getattr(s, "key", "")) for s in sections]
    return [key for key in keys if key.endswith("_check")]


def _context(tmp_path: Path, sections: dict[str, AnalysisResult]) -> ReportContext:
    predictions = Predictions.from_labels(
        ["A", "B", "B"], np.array([[0.9, 0.1], [0.3, 0.7], [0.6, 0.4]]), ["A", "B"]
    )
    model_file = tmp_path / "m.pkl"
    model_file.write_bytes(b"m")
    return build_context(
        [EvaluationSet(predictions)],
        model=ModelInfo.describe(
            model_file, arch="x", classes=("A", "B"), input_size="?", versions={}
        ),
        command="x",
        sections=sections,
    )


def test_registered_sections_render_in_order_and_write_their_json(specs, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    items = pd.DataFrame(
        {"path": ["<img src=x onerror=alert(1)>.jpg", "b.jpg"], "score": [0.5, np.nan]}
    )
    sections = {"aa_check": _analysis("aa_check", items), "zz_check": _analysis("zz_check", items)}
    context = _context(tmp_path, sections)
    assert _ours(context.built_sections) == ["mm_check", "zz_check", "aa_check"]
    assert [s.key for s in context.present_sections] == ["zz_check", "aa_check"]
    files = write_report(context, tmp_path / "out", name="r")
    html = files.html.read_text(encoding="utf-8")
    positions = [
        html.index(f'<section id="{anchor}">') for anchor in ("mm-check", "zz-check", "aa-check")
    ]
    assert positions == sorted(positions)
    assert html.index('<section id="gallery">') < positions[0]
    assert positions[-1] < html.index('<section id="ledger">')
    assert '<a href="#zz-check">Check zz_check</a>' in html
    assert '<a href="#aa-check">Check aa_check</a>' in html
    assert 'href="#mm-check"' not in html  # no link to a section the report lacks
    assert "No &lt;mm&gt; check: run it." in html  # its placeholder, as text
    assert "note of zz_check" in html
    assert "<td>&lt;img src=x onerror=alert(1)&gt;.jpg</td><td>0.500</td>" in html
    assert "<td>b.jpg</td><td>–</td>" in html
    data = json.loads(files.json.read_text(encoding="utf-8"))
    assert set(data["sections"]) == {"aa_check", "zz_check"}
    assert data["sections"]["zz_check"] == {
        "summary": {"n_items": 2, "share": 0.25},
        "items": [
            {"path": "<img src=x onerror=alert(1)>.jpg", "score": 0.5},
            {"path": "b.jpg", "score": None},
        ],
    }


def test_a_section_without_placeholder_is_left_out_when_absent(specs, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    context = _context(tmp_path, {})
    assert _ours(context.built_sections) == ["mm_check"]
    assert context.present_sections == ()
    html = render_html(context)
    assert 'id="zz-check"' not in html and 'id="mm-check"' in html
    assert json.loads(write_report(context, tmp_path / "o").json.read_text())["sections"] == {}


def test_unknown_or_misnamed_analyses_are_refused(specs, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    items = pd.DataFrame({"x": [1]})
    with pytest.raises(ReportError, match=r"No report section is registered for analysis 'nope'"):
        _context(tmp_path, {"nope": _analysis("nope", items)})
    with pytest.raises(ReportError, match=r"holds the analysis named 'zz_check'"):
        _context(tmp_path, {"aa_check": _analysis("zz_check", items)})
    with pytest.raises(ReportError, match=r"must be an asl_eval\.analysis\.AnalysisResult"):
        _context(tmp_path, {"aa_check": {"x": 1}})  # type: ignore[dict-item]


def test_registry_refuses_a_second_spec_and_a_bad_anchor(specs) -> None:  # type: ignore[no-untyped-def]
    other_module = SectionSpec("zz_check", "t", "zz-check", "table.html.j2", dict, dict)
    with pytest.raises(ReportError, match="already registered for 'zz_check'"):
        register_section(other_module)
    assert register_section(specs[0]) is specs[0]  # the same spec again is fine
    again = register_section(_spec("zz_check", order=90))  # its module, imported again
    assert section_spec("zz_check") is again
    assert register_section(specs[0]) is specs[0]
    with pytest.raises(ReportError, match="wants the HTML id 'ledger', which the page already"):
        register_section(SectionSpec("other", "t", "ledger", "table.html.j2", dict, dict))
    with pytest.raises(ReportError, match="wants the HTML id 'zz-check'"):
        register_section(SectionSpec("other", "t", "zz-check", "table.html.j2", dict, dict))
    with pytest.raises(ReportError, match="needs an HTML id"):
        _spec("bad anchor", order=1)
    assert specs[0].anchor == "zz-check"  # the leading '#' is dropped
    assert _ours(registered_sections()) == ["mm_check", "zz_check", "aa_check"]


def test_templates_only_loop_and_print() -> None:
    """No pandas lookups or arithmetic in the report's own templates: the context has them."""
    own = [p for p in TEMPLATES.glob("*.j2") if not p.name.startswith("cam")]
    assert {p.name for p in own} >= {"report.html.j2", "table.html.j2", "thumb.html.j2"}
    for path in own:
        text = path.read_text(encoding="utf-8")
        for forbidden in (".loc[", ".iloc[", "itertuples", "to_dict", "[:", " > 0", " < 0"):
            assert forbidden not in text, (path.name, forbidden)


def test_the_report_never_imports_torch_or_fastai() -> None:
    code = (
        "import sys, asl_eval.report, asl_eval.report.reading, asl_eval.report.generic;"
        "print([m for m in sys.modules if m.split('.')[0] in "
        "('torch', 'torchvision', 'fastai', 'fastcore', 'pytorch_grad_cam')])"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
