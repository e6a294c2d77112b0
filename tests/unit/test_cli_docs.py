"""docs/cli.md is generated from the app; this fails when someone forgets to regenerate it."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_cli_reference_is_current() -> None:
    spec = importlib.util.spec_from_file_location("gen_cli_docs", ROOT / "scripts" / "gen_cli_docs.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    expected = module.render()

    assert "## `ollama-stack`" in expected and "`ollama-stack extensions enable`" in expected
    assert (ROOT / "docs" / "cli.md").read_text() == expected, "run: python scripts/gen_cli_docs.py"
