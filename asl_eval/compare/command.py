"""The ``asl-eval compare`` command, as a plain function the CLI registers
(``app.command("compare")(compare_command)``).

It parses, calls :func:`asl_eval.compare.compare_report_files` (after reporting both models
when it is given model files), prints markdown or JSON on stdout, optionally writes the HTML
page, and exits with the gate's code. An :class:`~asl_eval.errors.AslEvalError` becomes a
message on stderr and exit code 1; bad usage is Typer's exit code 2.

May import: Typer, :mod:`asl_eval.errors`, and the compare modules inside the command (so
that ``asl-eval --help`` stays light, and comparing two reports never imports torch).
"""

from __future__ import annotations

import shlex
import sys
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from asl_eval.errors import AslEvalError, printable

__all__ = ["compare_command"]

_SIDE_HELP = "{}: a report's .json (its .predictions.csv beside it), or a model file with --test."
BaseSide = Annotated[Path, typer.Argument(metavar="BASE", help=_SIDE_HELP.format("The reference"))]
NewSide = Annotated[Path, typer.Argument(metavar="NEW", help=_SIDE_HELP.format("The candidate"))]
SetNames = Annotated[
    list[str] | None,
    typer.Option("--set", help="Compare only this set (repeatable; default: every shared set)."),
]
TestDirs = Annotated[
    list[Path] | None,
    typer.Option("--test", help="Test folder to report both models on (model files; repeatable)."),
]
MaxDrop = Annotated[
    float, typer.Option(help="Largest accuracy drop tolerated, as a fraction (0.01 = 1 point).")
]
Alpha = Annotated[float, typer.Option(help="Significance level, Holm-adjusted across sets.")]
MinPower = Annotated[
    float,
    typer.Option(help="Power a set needs to detect a drop of --max-drop, else exit 4."),
]
FailOnClass = Annotated[
    bool, typer.Option("--fail-on-class", help="A significant per-class regression fails too.")
]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON instead of markdown.")]
HtmlOut = Annotated[
    Path | None, typer.Option("--html", help="Also write a side-by-side HTML page here.")
]
Images = Annotated[
    bool, typer.Option(help="Thumbnails of the flipped images in the HTML (or --no-images).")
]
TrustModel = Annotated[
    bool, typer.Option(help="Load model .pkl files even if the safety scan refuses them.")
]


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {printable(message, keep=chr(10))}", err=True)
    return typer.Exit(code=1)


def _check_range(value: float, low: float, high: float, name: str, *, closed: bool) -> None:
    inside = low <= value <= high if closed else low < value < high
    if not inside:
        bounds = f"[{low:g}, {high:g}]" if closed else f"({low:g}, {high:g})"
        raise typer.BadParameter(f"must be in {bounds}, got {value:g}", param_hint=name)


def _reports(
    base: Path, new: Path, tests: list[Path], work: Path, trust_model: bool
) -> tuple[Path, Path, bool]:
    """The two report JSON files to compare; True when the models were reported here."""
    is_json = [p.suffix.lower() == ".json" for p in (base, new)]
    if all(is_json):
        if tests:
            raise typer.BadParameter("only with two model files, not reports", param_hint="--test")
        return base, new, False
    if any(is_json):
        raise typer.BadParameter(
            "give two report .json files, or two model files with --test", param_hint="BASE NEW"
        )
    if not tests:
        raise typer.BadParameter(
            "give the test folders to report both models on", param_hint="--test"
        )
    from asl_eval.compare.evaluate import report_models

    command = shlex.join(["asl-eval", *sys.argv[1:]])
    base_json, new_json = report_models(
        base, new, tests, work, trust_model=trust_model, command=command
    )
    return base_json, new_json, True


def compare_command(
    base: BaseSide,
    new: NewSide,
    sets: SetNames = None,
    tests: TestDirs = None,
    max_drop: MaxDrop = 0.01,
    alpha: Alpha = 0.05,
    min_power: MinPower = 0.8,
    fail_on_class: FailOnClass = False,
    as_json: AsJson = False,
    html: HtmlOut = None,
    images: Images = True,
    trust_model: TrustModel = False,
) -> None:
    """Compare BASE and NEW image by image and gate CI on real regressions.

    For each set both hold: the two accuracies, their paired difference and
    its interval, McNemar's exact test (Holm-adjusted across sets), its power
    against a drop of --max-drop, and the per-class changes.
    Prints markdown for a pull-request comment (or JSON with --json).

    Exit codes: 0 no regression; 3 a regression (sets and classes named);
    4 not enough evidence (a set too small to detect a --max-drop drop);
    1 an error asl-eval explains; 2 a usage error. See docs/compare.md.
    """
    _check_range(max_drop, 0, 1, "--max-drop", closed=False)
    _check_range(alpha, 0, 1, "--alpha", closed=False)
    _check_range(min_power, 0, 1, "--min-power", closed=True)
    from asl_eval.compare.comparison import CompareOptions, compare_report_files
    from asl_eval.compare.render import render_json, render_markdown

    options = CompareOptions(
        max_drop=max_drop,
        alpha=alpha,
        min_power=min_power,
        fail_on_class=fail_on_class,
        sets=tuple(sets or ()),
    )
    with tempfile.TemporaryDirectory(prefix="asl-eval-compare-") as work:
        try:
            base_json, new_json, evaluated = _reports(
                base, new, list(tests or []), Path(work), trust_model
            )
            result = compare_report_files(
                base_json,
                new_json,
                options,
                base_model=base if evaluated else None,
                new_model=new if evaluated else None,
            )
            typer.echo(render_json(result) if as_json else render_markdown(result), nl=False)
            if html is not None:
                from asl_eval.compare.html import write_html

                written = write_html(result, html, images=images)
                typer.echo(f"comparison page: {printable(written)}", err=True)
        except AslEvalError as error:
            raise _fail(str(error)) from None
    raise typer.Exit(code=result.exit_code)
