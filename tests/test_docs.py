"""The documentation stays true: the CLI reference, the site's nav, the schema page, the notebook.

The site itself is built by ``nox -s docs`` (``mkdocs build --strict``); these tests check what
the build cannot: that ``docs/cli.md`` names every command and option of the Typer app, that
every page is reachable from the nav, that the pictures exist and stay small, and that the
notebook runs from top to bottom against this version of the library.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import warnings
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
DOCS = REPO_ROOT / "docs"
CLI_PAGE = DOCS / "cli.md"
NOTEBOOK = DOCS / "notebooks" / "quickstart.ipynb"
MAX_IMAGE_BYTES = 300 * 1024


def _cli_group() -> Any:
    import typer

    from asl_eval.cli import app

    return typer.main.get_command(app)


def missing_from_reference(page: str) -> list[str]:
    """Every command, argument and option of the app that ``page`` does not mention."""
    missing = []
    for name, command in _cli_group().commands.items():
        if command.hidden:
            continue
        if not re.search(rf"^## `asl-eval {re.escape(name)}`$", page, flags=re.MULTILINE):
            missing.append(f"command {name}")
        for param in command.params:
            if param.param_type_name == "argument":
                names = [param.name.upper()]
            else:
                names = [*param.opts, *param.secondary_opts]
            missing += [f"{name} {opt}" for opt in names if f"`{opt}" not in page]
    return missing


def test_cli_reference_names_every_command_and_option() -> None:
    missing = missing_from_reference(CLI_PAGE.read_text(encoding="utf-8"))
    assert not missing, (
        f"docs/cli.md does not mention {', '.join(missing)}: run python scripts/cli_reference.py"
    )


def test_cli_reference_check_fails_when_an_option_is_missing() -> None:
    page = CLI_PAGE.read_text(encoding="utf-8")
    report = _cli_group().commands["report"]
    option = next(p for p in report.params if p.param_type_name == "option")
    flag = option.opts[-1]
    without = page.replace(f"`{flag}`", "`removed`")
    assert f"report {flag}" in missing_from_reference(without)
    without_command = page.replace("## `asl-eval labels`", "## labels")
    assert "command labels" in missing_from_reference(without_command)


def _site_pages() -> list[str]:
    return sorted(
        path.relative_to(DOCS).as_posix()
        for path in [*DOCS.rglob("*.md"), *DOCS.rglob("*.ipynb")]
        if "_hooks" not in path.parts and ".ipynb_checkpoints" not in path.parts
    )


def test_every_page_is_in_the_site_nav() -> None:
    config = (REPO_ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    nav = config[config.index("\nnav:") :]
    linked = set(re.findall(r":\s*(\S+\.(?:md|ipynb))\s*$", nav, flags=re.MULTILINE))
    missing = [page for page in _site_pages() if page not in linked]
    assert not missing, f"pages missing from the nav in mkdocs.yml: {missing}"
    absent = sorted(page for page in linked if not (DOCS / page).is_file())
    assert not absent, f"mkdocs.yml names pages that do not exist: {absent}"


def test_pictures_exist_and_stay_small() -> None:
    referenced = set()
    for page in [REPO_ROOT / "README.md", *DOCS.rglob("*.md")]:
        for target in re.findall(r"!\[[^\]]*\]\(([^)\s]+\.png)\)", page.read_text("utf-8")):
            referenced.add((page.parent / target).resolve())
    assert referenced, "no page shows a picture of the report"
    for image in sorted(referenced):
        assert image.is_file(), f"missing picture {image}"
        assert image.stat().st_size < MAX_IMAGE_BYTES, f"{image} is over 300 kB"


def test_readme_links_resolve() -> None:
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    targets = re.findall(r"\]\((?!https?://|#)([^)\s#]+)", readme)
    assert any(target.startswith("docs/") for target in targets)
    missing = [target for target in targets if not (REPO_ROOT / target).exists()]
    assert not missing, f"README.md links to missing files: {missing}"


def _load_schema_hook() -> Any:
    spec = importlib.util.spec_from_file_location("schema_table", DOCS / "_hooks/schema_table.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_schema_page_lists_every_field_of_the_packaged_schema() -> None:
    hook = _load_schema_hook()
    schema = json.loads(hook.SCHEMA.read_text(encoding="utf-8"))
    page = hook.on_page_markdown((DOCS / "schema.md").read_text(encoding="utf-8"), page=None)
    assert hook.MARKER not in page
    for name in schema["properties"]:
        assert f"| `{name}` |" in page
    for name, definition in schema["$defs"].items():
        assert f"{{#def-{name}}}" in page
        for field in definition.get("properties", {}):
            assert f"| `{field}` |" in page
    nested = schema["$defs"]["set"]["properties"]["per_class"]["items"]["properties"]
    assert all(f"| `per_class[].{field}` |" in page for field in nested)


def test_schema_types_render_references_and_nulls() -> None:
    hook = _load_schema_hook()
    assert hook._describe_type({"$ref": "#/$defs/count"}) == "[count](#def-count)"
    assert hook._describe_type({"type": ["string", "null"]}) == "string or null"
    assert hook._describe_type({"type": "array", "items": {"type": "string"}}) == (
        "array of string"
    )
    assert hook._describe_type({"enum": ["in-domain", "test"]}) == 'one of `"in-domain"`, `"test"`'


def test_notebook_runs_top_to_bottom(tmp_path: Path) -> None:
    """The notebook executes without an error and draws its figures (tiny settings)."""
    nbclient = pytest.importorskip("nbclient")
    nbformat = pytest.importorskip("nbformat")

    notebook = nbformat.read(NOTEBOOK, as_version=4)
    assert all(not cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code"), (
        "commit the notebook with its outputs cleared; the site executes it"
    )
    client = nbclient.NotebookClient(
        notebook,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    )
    os.environ.setdefault("JUPYTER_PLATFORM_DIRS", "1")
    with warnings.catch_warnings():
        # Jupyter's client libraries warn about their own deprecations; the kernel's warnings
        # (fastai, torch) print in the cells and do not fail the run either.
        warnings.simplefilter("ignore")
        client.execute()

    outputs = [output for cell in notebook.cells for output in cell.get("outputs", [])]
    errors = [output for output in outputs if output.output_type == "error"]
    assert not errors, errors
    pictures = [output for output in outputs if "image/png" in output.get("data", {})]
    assert len(pictures) >= 3  # confusion matrix, Grad-CAM, domain gap
    text = "".join(output.get("text", "") for output in outputs)
    assert "validation accuracy" in text
    assert "notebook.html" in text
