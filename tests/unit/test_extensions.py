"""Discovery, validation and proxy config generation for extensions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ollama_stack_cli import extensions
from ollama_stack_cli.errors import StackError


def write_ext(home: Path, name: str, manifest: object, compose: str | None = None) -> Path:
    folder = home / "extensions" / name
    folder.mkdir(parents=True)
    text = manifest if isinstance(manifest, str) else json.dumps(manifest)
    (folder / "mcp-config.json").write_text(text)
    if compose is not None:
        (folder / "docker-compose.yml").write_text(compose)
    return folder


def stdio(name: str, **extra: object) -> dict[str, object]:
    return {"name": name, "mcp": {"transport": "stdio", "command": "run-me", "args": ["--x"]}, **extra}


def test_bundled_extensions_are_valid(isolated_home: Path) -> None:
    found = extensions.discover(isolated_home)
    assert {"time", "fetch"} <= set(found)
    assert all(found[name].valid and found[name].source == "bundled" for name in ("time", "fetch"))


def test_broken_extensions_are_listed_with_reasons_and_others_work(isolated_home: Path) -> None:
    write_ext(isolated_home, "good", stdio("good"))
    write_ext(isolated_home, "badjson", "{nope")
    write_ext(isolated_home, "wrongname", stdio("other"))
    write_ext(isolated_home, "nourl", {"name": "nourl", "mcp": {"transport": "sse"}})
    write_ext(isolated_home, "extra", {**stdio("extra"), "surprise": 1})
    (isolated_home / "extensions" / "Bad Name").mkdir()

    found = extensions.discover(isolated_home)

    assert found["good"].valid
    assert "not valid JSON" in (found["badjson"].error or "")
    assert "does not match its folder" in (found["wrongname"].error or "")
    assert "needs 'url'" in (found["nourl"].error or "")
    assert "surprise" in (found["extra"].error or "")
    assert "not a valid extension name" in (found["Bad Name"].error or "")


def test_user_extension_shadows_bundled(isolated_home: Path) -> None:
    write_ext(isolated_home, "time", stdio("time", description="mine"))
    found = extensions.discover(isolated_home)
    assert found["time"].source == "user" and found["time"].manifest.description == "mine"  # type: ignore[union-attr]


@pytest.mark.parametrize("name", ["../etc", "a/b", "UPPER", "", "-x", "a" * 65, "x\ny"])
def test_hostile_names_are_refused_before_any_path_is_built(isolated_home: Path, name: str) -> None:
    with pytest.raises(StackError, match="Invalid extension name"):
        extensions.get(extensions.discover(isolated_home), name)


def test_unknown_name_gets_did_you_mean(isolated_home: Path) -> None:
    with pytest.raises(StackError) as info:
        extensions.get(extensions.discover(isolated_home), "tmie")
    assert info.value.hint == "Did you mean 'time'? Valid extensions: fetch, time."
    assert info.value.code == 2


def test_proxy_servers_by_transport_with_required_env(isolated_home: Path) -> None:
    write_ext(isolated_home, "local", stdio("local", env=["TOKEN"]))
    write_ext(isolated_home, "remote", {"name": "remote", "mcp": {"transport": "sse", "url": "http://remote:8000/sse"}})
    found = extensions.discover(isolated_home)

    servers = extensions.proxy_servers(["local", "remote", "gone"], found, {"TOKEN": "t0k", "OTHER": "no"})

    assert servers == {
        "local": {"command": "run-me", "args": ["--x"], "env": {"TOKEN": "t0k"}},
        "remote": {"type": "sse", "url": "http://remote:8000/sse"},
    }
    assert extensions.missing_env(found["local"].manifest, {}) == ["TOKEN"]  # type: ignore[arg-type]
