"""The comparison as text: a markdown summary for a pull-request comment, and JSON.

Class names, set names and file names come from the reports, which come from folders anyone
could have named: in the markdown every such name goes through :func:`markdown_text`, which
writes markdown and HTML syntax as character references, so a name such as
``<script>``, ``a|b`` or ``[x](javascript:alert(1))`` renders as that text, never as markup,
a link or a broken table.

May import: :mod:`asl_eval.errors`, :mod:`asl_eval.report` (its number formatting and JSON
helpers) and :mod:`.comparison`.
"""

from __future__ import annotations

import json
import math
import re

from asl_eval.compare.comparison import ComparisonResult, SetComparison
from asl_eval.errors import printable
from asl_eval.report.formatting import fmt_percent, fmt_pvalue
from asl_eval.report.serialize import JsonValue, clean, records

__all__ = ["comparison_json", "markdown_text", "render_json", "render_markdown"]

# Characters markdown or HTML read as syntax anywhere in a line. "-", "+" and "." start a list
# or a thematic break only at the start of a line (a table cell never starts one), so they are
# escaped only there: "del-2" stays readable in a terminal.
_SPECIAL = re.compile(r"[\\`*_{}\[\]()<>#!|&~\"'$=:/@]|^[-+.]")
_ORDERED_LIST = re.compile(r"^(\d+)\.")
_ZERO_WIDTH = "\u200b"


def markdown_text(value: object) -> str:
    """``value`` as plain text inside markdown (GitHub-flavoured, tables included).

    Control characters become visible escapes (:func:`asl_eval.errors.printable`); every
    character markdown or HTML could read as syntax becomes a numeric character reference;
    a zero-width space follows ``@`` and ``#`` so that GitHub does not mention users or link
    issues, and breaks ``://`` and ``www.`` so that nothing becomes a link.

    >>> markdown_text("<b>|x")
    '&#60;b&#62;&#124;x'
    >>> markdown_text("del-2"), markdown_text("-1"), markdown_text("1. x")
    ('del-2', '&#45;1', '1&#46; x')
    """
    text = printable(value)
    text = _SPECIAL.sub(lambda m: f"&#{ord(m.group())};", text)
    text = _ORDERED_LIST.sub(r"\1&#46;", text)
    return (
        text.replace("&#64;", "&#64;" + _ZERO_WIDTH)
        .replace("&#35;", "&#35;" + _ZERO_WIDTH)
        .replace("&#58;", "&#58;" + _ZERO_WIDTH)
        .replace("www&#46;", "www" + _ZERO_WIDTH + "&#46;")
    )


def _points(value: float) -> str:
    """An accuracy difference in percentage points, with its sign."""
    if not math.isfinite(value):
        return "–"
    text = f"{100 * value:+.1f}"
    return "±0.0" if text in {"+0.0", "-0.0"} else text.replace("-", "−")


def _drop_points(result: ComparisonResult) -> str:
    """``--max-drop`` in percentage points, unsigned."""
    return f"{100 * result.options.max_drop:.1f}"


def _interval(low: float, high: float) -> str:
    return f"{_points(low)} to {_points(high)}"


def _set_row(s: SetComparison) -> str:
    verdict = f"**{s.verdict}**" if s.verdict != "no regression" else s.verdict
    cells = [
        markdown_text(s.name),
        str(s.n_images),
        fmt_percent(s.accuracy_base),
        fmt_percent(s.accuracy_new),
        f"{_points(s.difference)} ({_interval(s.ci_low, s.ci_high)})",
        str(s.only_base),
        str(s.only_new),
        fmt_pvalue(s.p_adjusted),
        fmt_percent(s.power, 0),
        verdict,
    ]
    return "| " + " | ".join(cells) + " |"


def _class_rows(result: ComparisonResult) -> list[str]:
    rows = []
    for s in result.sets:
        table = s.per_class
        changed = table[(table["p_adjusted"] < result.options.alpha) | table["regression"]]
        for name, row in changed.sort_values("difference").iterrows():
            mark = " **regression**" if row["regression"] else ""
            rows.append(
                f"| {markdown_text(s.name)} | {markdown_text(name)} | {int(row['support'])} | "
                f"{fmt_percent(row['accuracy_a'])} | {fmt_percent(row['accuracy_b'])} | "
                f"{_points(row['difference'])}{mark} | {int(row['only_a'])} | "
                f"{int(row['only_b'])} | {fmt_pvalue(row['p_adjusted'])} |"
            )
    return rows


def _headline(result: ComparisonResult) -> list[str]:
    lines = [f"### asl-eval compare: {result.verdict} (exit {result.exit_code})", ""]
    if result.regressed_sets:
        names = ", ".join(markdown_text(n) for n in result.regressed_sets)
        lines.append(f"**Regression** on {names}.")
    if result.regressed_classes:
        per_set = "; ".join(
            f"{markdown_text(name)}: {', '.join(markdown_text(c) for c in classes)}"
            for name, classes in result.regressed_classes.items()
        )
        counted = (
            "" if result.options.fail_on_class else " (not failing the gate: no --fail-on-class)"
        )
        lines.append(f"Classes that regressed{counted}: {per_set}.")
    needed = fmt_percent(result.options.min_power, 0)
    for s in (s for s in result.sets if s.verdict == "not enough evidence"):
        lines.append(
            f"Not enough evidence on {markdown_text(s.name)}: with {s.n_images} images the test "
            f"detects a drop of {_drop_points(result)} points with probability "
            f"{fmt_percent(s.power, 0)} (needs {needed})."
        )
    return lines


def render_markdown(result: ComparisonResult) -> str:
    """The comparison as markdown for a pull-request comment (hostile names are text)."""
    o = result.options
    lines = _headline(result)
    lines += [
        "",
        f"BASE {markdown_text(result.base.json_path.name)} (model "
        f"{markdown_text(result.base.model_path.rsplit('/', 1)[-1])}) vs NEW "
        f"{markdown_text(result.new.json_path.name)} (model "
        f"{markdown_text(result.new.model_path.rsplit('/', 1)[-1])}).",
        "",
        "| set | images | BASE | NEW | change, points (95% CI) | right→wrong | wrong→right "
        "| p (Holm) | power | verdict |",
        "|---|---:|---:|---:|---|---:|---:|---:|---:|---|",
        *(_set_row(s) for s in result.sets),
    ]
    class_rows = _class_rows(result)
    if class_rows:
        lines += [
            "",
            "Classes that changed significantly (exact McNemar per class, Holm-adjusted "
            "within the set):",
            "",
            "| set | class | images | BASE | NEW | change | right→wrong | wrong→right | p (Holm) |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|",
            *class_rows,
        ]
    for skipped in result.skipped:
        lines += [
            "",
            f"Not compared: {markdown_text(skipped.name)}, {markdown_text(skipped.reason)}.",
        ]
    for note in result.notes:
        lines += ["", f"Note: {markdown_text(note)}"]
    lines += [
        "",
        f"<sub>A set regresses when its accuracy drops by more than "
        f"{_drop_points(result)} points and McNemar's exact p, Holm-adjusted across "
        f"{len(result.sets)} set(s), is below {o.alpha:g}. Power: of that test against a drop "
        f"of {_drop_points(result)} points at level {o.alpha:g}/{len(result.sets)}; "
        f'below {fmt_percent(o.min_power, 0)} a set is "not enough evidence". Interval: '
        "Newcombe's paired hybrid score interval.</sub>",
    ]
    return "\n".join(lines) + "\n"


def _set_json(s: SetComparison) -> dict[str, JsonValue]:
    return {
        "name": s.name,
        "role": s.role,
        "matched_by": s.matched_by,
        "n_images": s.n_images,
        "accuracy_base": clean(s.accuracy_base),
        "accuracy_new": clean(s.accuracy_new),
        "difference": clean(s.difference),
        "difference_ci_low": clean(s.ci_low),
        "difference_ci_high": clean(s.ci_high),
        "right_to_wrong": s.only_base,
        "wrong_to_right": s.only_new,
        "p_value": clean(s.p_value),
        "p_adjusted": clean(s.p_adjusted),
        "power": clean(s.power),
        "discordance": clean(s.discordance),
        "verdict": s.verdict,
        "regressed_classes": list(s.regressed_classes),
        "per_class": records(
            s.per_class.rename(
                columns={
                    "accuracy_a": "accuracy_base",
                    "accuracy_b": "accuracy_new",
                    "only_a": "right_to_wrong",
                    "only_b": "wrong_to_right",
                }
            ),
            index="class",
        ),
    }


def comparison_json(result: ComparisonResult) -> dict[str, JsonValue]:
    """The comparison as a JSON-ready dict (``--json``)."""
    o = result.options
    return {
        "schema": "asl-eval/compare",
        "schema_version": 1,
        "verdict": result.verdict,
        "exit_code": result.exit_code,
        "options": {
            "max_drop": o.max_drop,
            "alpha": o.alpha,
            "min_power": o.min_power,
            "fail_on_class": o.fail_on_class,
            "sets": list(o.sets),
        },
        "base": {
            "report": str(result.base.json_path),
            "model": result.base.model_path,
            "model_sha256": result.base.model_sha256,
            "split": result.base.split.kind,
        },
        "new": {
            "report": str(result.new.json_path),
            "model": result.new.model_path,
            "model_sha256": result.new.model_sha256,
            "split": result.new.split.kind,
        },
        "regressed_sets": list(result.regressed_sets),
        "regressed_classes": {k: list(v) for k, v in result.regressed_classes.items()},
        "sets": [_set_json(s) for s in result.sets],
        "skipped": [{"name": s.name, "reason": s.reason} for s in result.skipped],
        "notes": list(result.notes),
    }


def render_json(result: ComparisonResult) -> str:
    """The ``--json`` text: sorted keys, two-space indent, no NaN."""
    return json.dumps(comparison_json(result), indent=2, sort_keys=True, allow_nan=False) + "\n"
