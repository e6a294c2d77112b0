"""Finding extensions and turning the enabled ones into proxy configuration.

Bundled extensions ship inside the package (read-only); a user's own live in
`<home>/extensions/<name>/` and take precedence over a bundled one of the same
name. A broken `mcp-config.json` makes only that extension invalid: discovery never
raises for one bad folder.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from . import config
from .errors import ExitCode, StackError
from .schemas import EXTENSION_NAME_PATTERN, Extension, ExtensionManifest, Platform

MANIFEST = "mcp-config.json"
COMPOSE = "docker-compose.yml"


def validate_name(name: str) -> str:
    """Refuse anything that is not a plain name, before any path is built from it."""
    if not EXTENSION_NAME_PATTERN.match(name):
        raise StackError(
            f"Invalid extension name {name!r}.",
            "Names are lowercase letters, digits, '-' and '_', starting with a letter or digit (at most 64).",
            code=ExitCode.USAGE,
            slug="invalid_name",
        )
    return name


def bundled_dir() -> Path:
    return config.resource_dir() / "extensions"


def user_dir(home: Path) -> Path:
    return home / "extensions"


def discover(home: Path) -> dict[str, Extension]:
    """Every extension by name, sorted; user extensions shadow bundled ones."""
    found: dict[str, Extension] = {}
    for source, root in (("bundled", bundled_dir()), ("user", user_dir(home))):
        if not root.is_dir():
            continue
        for folder in sorted(root.iterdir()):
            if folder.is_dir() and not folder.name.startswith("."):
                found[folder.name] = _load(folder, source)  # type: ignore[arg-type]
    return dict(sorted(found.items()))


def _load(folder: Path, source: str) -> Extension:
    base: dict[str, Any] = {
        "name": folder.name,
        "source": source,
        "path": str(folder),
        "has_compose": (folder / COMPOSE).is_file(),
    }
    if not EXTENSION_NAME_PATTERN.match(folder.name):
        return Extension(**base, error="folder name is not a valid extension name")
    manifest_path = folder / MANIFEST
    try:
        data = json.loads(manifest_path.read_text(encoding="utf-8-sig"))  # Notepad may add a BOM
    except FileNotFoundError:
        return Extension(**base, error=f"no {MANIFEST}")
    except (OSError, UnicodeDecodeError) as exc:
        return Extension(**base, error=f"cannot read {MANIFEST}: {exc}")
    except json.JSONDecodeError as exc:
        return Extension(**base, error=f"{MANIFEST} is not valid JSON (line {exc.lineno}: {exc.msg})")
    try:
        manifest = ExtensionManifest.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(p) for p in error["loc"]) or MANIFEST
        return Extension(**base, error=f"{where}: {error['msg'].removeprefix('Value error, ')}")
    if manifest.name != folder.name:
        return Extension(**base, error=f"name {manifest.name!r} does not match its folder {folder.name!r}")
    return Extension(**base, manifest=manifest)


def get(found: dict[str, Extension], name: str) -> Extension:
    """One extension by name from those discovered, or a usage error with a did-you-mean."""
    validate_name(name)
    if name in found:
        return found[name]
    import difflib

    close = difflib.get_close_matches(name, list(found), n=1)
    known = ", ".join(found) or "none"
    raise StackError(
        f"Unknown extension {name!r}.",
        (f"Did you mean {close[0]!r}? " if close else "") + f"Valid extensions: {known}.",
        code=ExitCode.USAGE,
        slug="unknown_extension",
    )


def require_valid(extension: Extension, platform: Platform | None = None) -> ExtensionManifest:
    if extension.manifest is None:
        raise StackError(
            f"Extension {extension.name!r} is invalid: {extension.error}.",
            f"Fix {Path(extension.path) / MANIFEST}.",
            slug="invalid_extension",
        )
    if platform is not None and platform not in extension.manifest.platforms:
        raise StackError(
            f"Extension {extension.name!r} does not support the {platform} platform.",
            f"It supports: {', '.join(extension.manifest.platforms)}.",
            slug="unsupported_platform",
        )
    return extension.manifest


def missing_env(manifest: ExtensionManifest, env_values: dict[str, str]) -> list[str]:
    return [key for key in manifest.env if not env_values.get(key)]


def proxy_servers(
    enabled: list[str], found: dict[str, Extension], env_values: dict[str, str]
) -> dict[str, dict[str, Any]]:
    """mcpo's `mcpServers` for the enabled, valid extensions (Claude-desktop style)."""
    servers: dict[str, dict[str, Any]] = {}
    for name in enabled:
        extension = found.get(name)
        if extension is None or extension.manifest is None:
            continue
        mcp = extension.manifest.mcp
        if mcp.transport == "stdio":
            entry: dict[str, Any] = {"command": mcp.command, "args": list(mcp.args)}
            env = {key: env_values[key] for key in extension.manifest.env if key in env_values}
            if env:
                entry["env"] = env
        else:
            entry = {"type": mcp.transport, "url": mcp.url}
        servers[name] = entry
    return servers
