"""Write docs/cli.md from the Typer app itself, so the reference cannot drift.

Run `python scripts/gen_cli_docs.py` after changing a command; the test suite fails
while docs/cli.md differs from what this prints.
"""

from __future__ import annotations

import inspect
import sys
from pathlib import Path
from typing import Any

import typer

from ollama_stack_cli.main import app

OUT = Path(__file__).resolve().parent.parent / "docs" / "cli.md"


def render() -> str:
    root = typer.main.get_command(app)
    lines = [
        "# ollama-stack command reference",
        "",
        "Generated from the CLI by `scripts/gen_cli_docs.py`; do not edit by hand.",
        "",
    ]
    _command(root, "ollama-stack", lines, level=2)
    return "\n".join(lines).rstrip() + "\n"


def _command(command: Any, path: str, lines: list[str], level: int) -> None:
    lines += [f"{'#' * level} `{path}`", ""]
    help_text = inspect.cleandoc(command.help or "").strip()
    if help_text:
        lines += [help_text, ""]
    arguments = [p for p in command.params if p.param_type_name == "argument"]
    options = [p for p in command.params if p.param_type_name == "option" and not p.hidden]
    usage = path + (" [OPTIONS]" if options else "")
    usage += "".join(f" {a.name.upper()}" if a.required else f" [{a.name.upper()}]" for a in arguments)
    if getattr(command, "commands", None):
        usage += " COMMAND [ARGS]..."
    lines += ["```text", usage, "```", ""]
    if arguments or options:
        lines += ["| argument / option | description |", "|---|---|"]
        for param in arguments:
            lines.append(f"| `{param.name.upper()}` | {_cell(getattr(param, 'help', '') or '')} |")
        for param in options:
            names = ", ".join(f"`{o}`" for o in [*param.opts, *param.secondary_opts])
            described = _cell(param.help or "")
            if param.default not in (None, False) and not param.is_flag:
                described += f" (default: `{param.default}`)"
            lines.append(f"| {names} | {described} |")
        lines.append("")
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        _command(sub, f"{path} {name}", lines, level + 1)


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


if __name__ == "__main__":
    if "--check" in sys.argv:
        sys.exit(0 if OUT.read_text() == render() else 1)
    OUT.write_text(render())
    print(f"wrote {OUT}")
