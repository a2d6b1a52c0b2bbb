"""mkdocs hook: render the report's packaged JSON Schema as field tables on ``schema.md``.

The page holds the marker ``<!-- schema-fields -->``; this hook replaces it with one table per
object of ``asl_eval/report/schema/report.schema.json`` (the report itself, then each shared
definition), generated at build time so the page cannot drift from the schema the package
validates against. Only the standard library is used.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT / "asl_eval" / "report" / "schema" / "report.schema.json"
MARKER = "<!-- schema-fields -->"


def _describe_type(node: dict[str, Any]) -> str:
    """A short Markdown rendering of a property's type."""
    if "const" in node:
        return f"`{json.dumps(node['const'])}`"
    if "enum" in node:
        return "one of " + ", ".join(f"`{json.dumps(value)}`" for value in node["enum"])
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        return f"[{name}](#def-{name})"
    if "oneOf" in node or "anyOf" in node:
        options = node.get("oneOf") or node.get("anyOf")
        return " or ".join(_describe_type(option) for option in options)
    kind = node.get("type", "any")
    if isinstance(kind, list):
        return " or ".join(kind)
    if kind == "array" and isinstance(node.get("items"), dict):
        return f"array of {_describe_type(node['items'])}"
    if kind == "object" and isinstance(node.get("additionalProperties"), dict):
        return f"object of {_describe_type(node['additionalProperties'])}"
    if node.get("pattern"):
        return f"{kind} (`{node['pattern']}`)"
    return str(kind)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _rows(node: dict[str, Any], prefix: str = "") -> list[str]:
    """One table row per property, nested objects and arrays of objects flattened with dots."""
    required = set(node.get("required", ()))
    rows = []
    for name, child in node.get("properties", {}).items():
        field = f"{prefix}{name}"
        description = _cell(child.get("description", ""))
        mark = "yes" if name in required else ""
        rows.append(f"| `{field}` | {_describe_type(child)} | {mark} | {description} |")
        if child.get("type") == "object" and "properties" in child:
            rows.extend(_rows(child, f"{field}."))
        items = child.get("items")
        if isinstance(items, dict) and "properties" in items:
            rows.extend(_rows(items, f"{field}[]."))
    return rows


def _table(node: dict[str, Any]) -> str:
    header = "| field | type | required | description |\n|---|---|---|---|"
    return "\n".join([header, *_rows(node)])


def render_schema_fields(schema: dict[str, Any]) -> str:
    """The Markdown that replaces the marker: the report's fields, then each definition."""
    parts = ["### The report object", "", _table(schema), ""]
    for name, definition in schema.get("$defs", {}).items():
        parts.append(f"### `{name}` {{#def-{name}}}")
        parts.append("")
        if definition.get("description"):
            parts.extend([definition["description"], ""])
        if "properties" in definition:
            parts.append(_table(definition))
        else:
            parts.append(f"A value of type {_describe_type(definition)}.")
        parts.append("")
    return "\n".join(parts)


def on_page_markdown(markdown: str, page: Any, **kwargs: Any) -> str:
    """Replace the marker on the schema page (mkdocs calls this for every page)."""
    if MARKER not in markdown:
        return markdown
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    return markdown.replace(MARKER, render_schema_fields(schema))
