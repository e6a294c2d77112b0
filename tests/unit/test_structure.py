"""The house rules of the package, checked on its source (SPEC 2, STYLE "the shape we want").

Commands go through the shared layer only; only `docker_client` talks to Docker; every
journaled change goes through one `operation(...)`; `config` needs no CLI framework.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "ollama_stack_cli"
COMMANDS = sorted((PACKAGE / "commands").glob("*.py"))
# What a command may import from the package: the shared layer and the shapes.
COMMAND_IMPORTS = {"stack", "output", "schemas", "errors"}


def package_imports(path: Path) -> set[str]:
    """The package modules a file imports (relative imports, first component below the package)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    depth = len(path.relative_to(PACKAGE).parts) - 1  # 0 for the package root, 1 for commands/
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level:
            up = node.level - 1 - depth  # how far above the package root the import climbs
            if node.level - 1 < depth:  # a sibling in the same subpackage
                continue
            if up == 0 and node.module:
                found.add(node.module.split(".")[0])
            elif up == 0:
                found.update(alias.name for alias in node.names)
    return found


def absolute_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: p.name)
def test_commands_go_through_the_shared_layer_only(path: Path) -> None:
    assert package_imports(path) <= COMMAND_IMPORTS, f"{path.name} reaches around the stack layer"


def test_the_import_rule_sees_a_violation() -> None:
    # The checker itself must be able to fail: start.py importing docker_client is caught.
    sample = PACKAGE / "commands" / "start.py"
    text = sample.read_text(encoding="utf-8") + "\nfrom ..docker_client import Engine\n"
    probe = PACKAGE / "commands" / "_probe_for_test.py"
    probe.write_text(text, encoding="utf-8")
    try:
        assert "docker_client" in package_imports(probe)
    finally:
        probe.unlink()


def test_only_docker_client_imports_the_docker_sdk() -> None:
    users = sorted(
        str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py") if {"docker", "requests"} & absolute_imports(p)
    )
    assert users and all(user.startswith("docker_client/") for user in users), users


def test_every_journaled_change_goes_through_one_operation() -> None:
    callers = sorted(
        str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py") if "Journal.begin(" in p.read_text("utf-8")
    )
    assert callers == ["stack/operation.py"]


def test_config_needs_no_cli_framework() -> None:
    assert not {"typer", "click", "rich"} & absolute_imports(PACKAGE / "config.py")


@pytest.mark.parametrize("layer", ["stack", "docker_client"])
def test_no_module_does_five_jobs(layer: str) -> None:
    # stack.py (650 lines) and docker_client.py (1,200) had each grown to do five jobs;
    # their parts are modules of their own now.
    sizes = {p.name: len(p.read_text("utf-8").splitlines()) for p in (PACKAGE / layer).glob("*.py")}
    assert not (PACKAGE / f"{layer}.py").exists()
    assert max(sizes.values()) < 400, sizes


def test_status_and_start_leave_ollamas_client_unloaded_until_asked() -> None:
    import subprocess
    import sys

    code = (
        "import sys, ollama_stack_cli.commands.start, ollama_stack_cli.commands.status\n"
        "from ollama_stack_cli import stack\n"
        "print('ollama_stack_cli.ollama_api' in sys.modules)\n"
        "print(callable(stack.models.validate_names))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["False", "True"]
