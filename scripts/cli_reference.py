"""Write the generated part of ``docs/cli.md`` from the Typer app (``asl_eval.cli.app``).

    python scripts/cli_reference.py           # rewrite docs/cli.md between its markers
    python scripts/cli_reference.py --check   # exit 1 if docs/cli.md is out of date

Everything between ``<!-- cli:start -->`` and ``<!-- cli:end -->`` is replaced by one section
per command: its help, usage, arguments and options, read from the Click command that Typer
builds (Typer 0.29 vendors its own Click, so parameters are read by their attributes, not their
classes). The prose around the markers is kept. ``tests/test_docs.py`` checks that every
command and option appears on the page.
"""

from __future__ import annotations

import argparse
import enum
import sys
import types
import typing
from pathlib import Path
from typing import Any

import typer

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "cli.md"
START, END = "<!-- cli:start -->", "<!-- cli:end -->"


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _is_option(param: Any) -> bool:
    return param.param_type_name == "option"


_TYPE_NAMES = {bool: "flag", int: "integer", float: "number", str: "text", Path: "path"}


def _annotation_name(annotation: Any) -> str:
    """A reader's name for a parameter's Python annotation."""
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return " \\| ".join(f"`{choice}`" for choice in typing.get_args(annotation))
    if origin in (list, tuple):
        (inner, *_) = typing.get_args(annotation) or (str,)
        return _annotation_name(inner)
    if origin in (typing.Union, types.UnionType):
        names = [_annotation_name(a) for a in typing.get_args(annotation) if a is not type(None)]
        return " or ".join(names)
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return " \\| ".join(f"`{member.value}`" for member in annotation)
    return _TYPE_NAMES.get(annotation, getattr(annotation, "__name__", str(annotation)))


def _type_name(param: Any) -> str:
    """Typer 0.29 keeps the annotation (``type_descriptor``); older Typer a Click type."""
    descriptor = getattr(param, "type_descriptor", None)
    if descriptor is not None:
        name = _annotation_name(descriptor.annotation)
    else:
        kind = param.type
        choices = getattr(kind, "choices", None)
        if choices:
            name = " \\| ".join(f"`{choice}`" for choice in choices)
        else:
            name = getattr(kind, "name", "") or "text"
    if _is_option(param) and param.is_flag:
        return "flag"
    if getattr(param, "multiple", False):
        name += ", repeatable"
    return name


def _default(param: Any) -> str:
    default = param.default
    if (
        default is None
        or callable(default)
        or default == ()
        or (_is_option(param) and param.is_flag and not param.secondary_opts)
    ):
        return ""
    if _is_option(param) and param.secondary_opts:
        return f"`{param.opts[0] if default else param.secondary_opts[0]}`"
    if isinstance(default, list | tuple):
        default = " ".join(str(value) for value in default)
    return f"`{default}`"


def _option_names(param: Any) -> str:
    names = [f"`{name}`" for name in (*param.opts, *param.secondary_opts)]
    return " / ".join(names)


def _usage(argument: Any) -> str:
    text = argument.name.upper() + ("..." if argument.nargs == -1 else "")
    return text if argument.required else f"[{text}]"


def render_command(name: str, command: Any) -> str:
    """One command's section: help, usage, then its arguments and options as tables."""
    lines = [f"## `asl-eval {name}`", ""]
    help_text = (command.help or "").strip()
    if help_text:
        lines += [help_text, ""]
    arguments = [p for p in command.params if not _is_option(p)]
    options = [p for p in command.params if _is_option(p)]
    usage = " ".join(["asl-eval", name, "[OPTIONS]", *(_usage(a) for a in arguments)])
    lines += ["```text", usage, "```", ""]
    if arguments:
        lines += ["| argument | type | required | description |", "|---|---|---|---|"]
        for argument in arguments:
            many = "..." if argument.nargs == -1 else ""
            lines.append(
                f"| `{argument.name.upper()}{many}` | {_type_name(argument)} "
                f"| {'yes' if argument.required else ''} "
                f"| {_cell(getattr(argument, 'help', None) or '')} |"
            )
        lines.append("")
    lines += ["| option | type | default | description |", "|---|---|---|---|"]
    for option in options:
        lines.append(
            f"| {_option_names(option)} | {_type_name(option)} | {_default(option)} "
            f"| {_cell(option.help or '')} |"
        )
    lines += ["| `-h`, `--help` | flag | | Show the command's help and exit. |", ""]
    return "\n".join(lines)


def render_reference() -> str:
    """Every command of ``asl_eval.cli.app``, in the order the app lists them."""
    from asl_eval.cli import app

    group = typer.main.get_command(app)
    if not hasattr(group, "commands"):
        raise TypeError("asl_eval.cli.app is expected to have sub-commands")
    sections = [
        render_command(name, command)
        for name, command in group.commands.items()
        if not command.hidden
    ]
    return "\n".join(sections).rstrip() + "\n"


def updated_page(page: str) -> str:
    """``page`` with the text between the markers replaced by :func:`render_reference`."""
    before, found, rest = page.partition(START)
    _, found_end, after = rest.partition(END)
    if not (found and found_end):
        raise SystemExit(f"{PAGE} needs the markers {START} and {END}")
    return f"{before}{START}\n\n{render_reference()}\n{END}{after}"


def main(argv: list[str] | None = None) -> int:
    """Rewrite the page, or with ``--check`` say whether it is current."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check; exit 1 if stale")
    args = parser.parse_args(argv)
    page = PAGE.read_text(encoding="utf-8")
    new = updated_page(page)
    if args.check:
        if new != page:
            print(f"{PAGE} is out of date: run python scripts/cli_reference.py", file=sys.stderr)
            return 1
        return 0
    PAGE.write_text(new, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
