"""The only code that reads or writes the home's files.

The home holds `.ollama-stack.json` (CLI state), `.env` (what compose interpolates,
including the two generated secrets), the lock, the journal and the generated proxy
config. Reads never create anything, so read-only commands leave no trace; every
write goes through `atomic_write`, so a crash leaves the old file or the new one,
never half of each.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

from pydantic import ValidationError

from .errors import StackError
from .schemas import SECRET_KEYS, STATE_SCHEMA_VERSION, Platform, StackEnv, StackState

APP_NAME = "ollama-stack"
HOME_ENV_VAR = "OLLAMA_STACK_HOME"
STATE_FILE = ".ollama-stack.json"
ENV_FILE = ".env"
OVERRIDE_FILE = "docker-compose.override.yml"
PROXY_CONFIG_DIR = "mcpo"
PROXY_CONFIG_FILE = "config.json"

_ENV_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_ENV_LINE = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=")


# --- home -------------------------------------------------------------------


def resolve_home(cli_home: str | None) -> Path:
    """`--home`, else `OLLAMA_STACK_HOME`, else the per-user app directory."""
    if cli_home:
        return Path(cli_home).expanduser().absolute()
    from_env = os.environ.get(HOME_ENV_VAR)
    if from_env:
        return Path(from_env).expanduser().absolute()
    return user_app_dir()


def user_app_dir() -> Path:
    """The per-user settings folder, where click's `get_app_dir` puts it (the README lists them).

    Windows: %APPDATA%\\ollama-stack; macOS: ~/Library/Application Support/ollama-stack;
    elsewhere: $XDG_CONFIG_HOME/ollama-stack, default ~/.config/ollama-stack.
    """
    import sys

    if sys.platform == "win32":
        base = os.environ.get("APPDATA") or os.environ.get("LOCALAPPDATA") or str(Path.home())
        return Path(base, APP_NAME).absolute()
    if sys.platform == "darwin":
        return (Path.home() / "Library" / "Application Support" / APP_NAME).absolute()
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base, APP_NAME).expanduser().absolute()


def ensure_home(home: Path) -> None:
    """Create the home owner-only; an existing home keeps the permissions it has."""
    if home.is_dir():
        return
    require_home_dir(home)
    try:
        home.mkdir(parents=True, mode=0o700)
        home.chmod(0o700)
    except OSError as exc:
        raise StackError(
            f"Cannot create the home {home}: {exc.strerror}.",
            f"Choose a writable directory with --home or {HOME_ENV_VAR}.",
        ) from exc


def require_home_dir(home: Path) -> None:
    """A home that exists must be a folder; a file there is named as such, not as a permission problem."""
    if home.exists() and not home.is_dir():
        raise StackError(
            f"The home {home} is not a directory (a file is there).",
            f"Move that file aside, or pass another --home or {HOME_ENV_VAR}.",
            slug="home_not_a_directory",
        )


def write_if_changed(path: Path, text: str, mode: int = 0o600) -> bool:
    """`atomic_write` unless the file already holds exactly this text (and mode); True if written."""
    try:
        if path.read_text(encoding="utf-8") == text and (path.stat().st_mode & 0o777) == mode:
            return False
    except (OSError, UnicodeDecodeError):
        pass
    atomic_write(path, text, mode)
    return True


def atomic_write(path: Path, text: str, mode: int = 0o600) -> None:
    """Write via a temp file in the same folder, fsync, then rename over the target."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{time.monotonic_ns()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    try:
        dir_fd = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


# --- state file -------------------------------------------------------------


def state_path(home: Path) -> Path:
    return home / STATE_FILE


def read_state(home: Path) -> StackState:
    """The saved state, or the default one when there is none yet.

    A file that does not parse stops the command: it is the user's data and is never
    replaced behind their back.
    """
    require_home_dir(home)
    path = state_path(home)
    try:
        raw = path.read_text(encoding="utf-8-sig")  # a BOM (Notepad) is not part of the JSON
    except FileNotFoundError:
        return default_state()
    except OSError as exc:
        raise StackError(f"Cannot read {path}: {exc.strerror}.", "Check the file's permissions.") from exc
    except UnicodeDecodeError:
        raise StackError(
            f"The state file {path} is not UTF-8 text.",
            "Fix it, or move it aside to start from defaults; ollama-stack will not overwrite it.",
            slug="invalid_state",
        ) from None
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise StackError(
            f"The state file {path} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}).",
            "Fix it, or move it aside to start from defaults; ollama-stack will not overwrite it.",
            slug="invalid_state",
        ) from None
    version = data.get("schema_version") if isinstance(data, dict) else None
    if isinstance(version, int) and not isinstance(version, bool) and version > STATE_SCHEMA_VERSION:
        raise StackError(
            f"The state file {path} is from a newer version of ollama-stack (schema {version}; "
            f"this one reads {STATE_SCHEMA_VERSION}).",
            "Upgrade ollama-stack (pip install --upgrade ollama-stack); it will not overwrite the file.",
            slug="invalid_state",
        )
    try:
        return StackState.model_validate(data)
    except ValidationError as exc:
        raise StackError(
            f"The state file {path} does not match the expected shape: {_first_error(exc)}.",
            "Fix it, or move it aside to start from defaults; ollama-stack will not overwrite it.",
            slug="invalid_state",
            details=_error_bullets(exc),
        ) from None


def default_state() -> StackState:
    """What a new home starts from: the `.ollama-stack.json` shipped with the package (SPEC 2)."""
    try:
        return StackState.model_validate_json(resource_path(STATE_FILE).read_bytes())
    except (OSError, ValidationError) as exc:
        raise StackError(
            f"The default state file shipped with ollama-stack is missing or broken ({exc.__class__.__name__}).",
            "Reinstall the package: pip install --force-reinstall ollama-stack.",
        ) from None


def write_state(home: Path, state: StackState) -> None:
    ensure_home(home)
    text = json.dumps(state.model_dump(mode="json"), indent=2, sort_keys=True) + "\n"
    atomic_write(state_path(home), text, mode=0o600)


def set_platform(home: Path, platform: Platform) -> StackState:
    """Record the platform the stack was started with, so stop and status use the same files."""
    state = read_state(home)
    if state.platform != platform:
        state.platform = platform
        write_state(home, state)
    return state


def set_enabled_extensions(home: Path, names: list[str]) -> StackState:
    state = read_state(home)
    state.enabled_extensions = sorted(set(names))
    write_state(home, state)
    return state


def set_openwebui_tool_servers(home: Path, names: list[str]) -> StackState:
    """Record which extensions Open WebUI now holds as tool servers (after a sync)."""
    state = read_state(home)
    if state.openwebui_tool_servers != sorted(names):
        state.openwebui_tool_servers = sorted(names)
        write_state(home, state)
    return state


def read_bytes(path: Path) -> bytes | None:
    """Raw contents of a home file, for the journal's undo record (None: absent)."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


# --- .env -------------------------------------------------------------------


def env_path(home: Path) -> Path:
    return home / ENV_FILE


def read_env_values(home: Path) -> dict[str, str]:
    """Every key in `.env`, the user's own included; empty when there is no file."""
    require_home_dir(home)
    path = env_path(home)
    if not path.exists():
        return {}
    import io

    from dotenv.parser import parse_stream

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise StackError(f"Cannot read {path}: {exc}.", "Check the file's permissions and encoding.") from exc
    values: dict[str, str | None] = {}
    for binding in parse_stream(io.StringIO(text)):
        # python-dotenv skips what it cannot parse; compose would not, so neither do we.
        # The line is named by number only: it may hold a secret.
        if binding.error:
            raise StackError(
                f"Line {binding.original.line} of {path} is not KEY=value (an unclosed quote?).",
                f"Fix line {binding.original.line} of that file.",
                slug="invalid_env",
            )
        if binding.key is None:
            continue
        if not _ENV_KEY.match(binding.key):
            raise StackError(
                f"Invalid key {binding.key!r} on line {binding.original.line} of {path}.",
                "Keys are letters, digits and '_', not starting with a digit.",
                slug="invalid_env",
            )
        values[binding.key] = binding.value
    result: dict[str, str] = {}
    for key, value in values.items():
        if value is None:
            raise StackError(
                f"Invalid line for {key} in {path}: expected KEY=value.",
                f"Edit {path} and give {key} a value or remove it.",
                slug="invalid_env",
            )
        if "\n" in value or "\r" in value or "\x00" in value:
            raise StackError(
                f"Invalid value for {key} in {path}: it contains a newline.",
                f"Edit {path} and put {key}'s value on one line.",
                slug="invalid_env",
            )
        result[key] = value
    return result


def env_duplicates(home: Path) -> list[str]:
    """A key set on two lines (the last one wins, as in compose), one note per key."""
    import io

    from dotenv.parser import parse_stream

    path = env_path(home)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return []  # read_env_values reports what is wrong with the file
    first: dict[str, int] = {}
    notes = []
    for binding in parse_stream(io.StringIO(text)):
        if binding.key is None or binding.error:
            continue
        line = binding.original.line
        if binding.key in first:
            notes.append(
                f"{binding.key} is set twice in {path} (lines {first[binding.key]} and {line}); "
                f"the value on line {line} is used."
            )
        first[binding.key] = line
    return notes


def read_env(home: Path) -> StackEnv:
    """The validated settings, with defaults for what `.env` does not set."""
    return _validate_env(read_env_values(home), env_path(home))


def validate_env(values: dict[str, str], home: Path) -> StackEnv:
    """The validated settings from values already read with `read_env_values`."""
    return _validate_env(values, env_path(home))


def _validate_env(values: dict[str, str], path: Path) -> StackEnv:
    known = {key: values[key] for key in StackEnv.model_fields if key in values}
    try:
        return StackEnv.model_validate(known)
    except ValidationError as exc:
        error = exc.errors()[0]
        key = str(error["loc"][0]) if error["loc"] else "?"
        shown = "(hidden)" if key in SECRET_KEYS else repr(values.get(key, ""))
        raise StackError(
            f"Invalid value {shown} for {key} in {path}: {_clean(error['msg'])}.",
            f"Edit {path} and fix {key}, or delete the line to use the default.",
            slug="invalid_env",
            details=_error_bullets(exc),
        ) from None


def ensure_env(home: Path) -> StackEnv:
    """Make sure `.env` exists with both secrets, generating them once, and return it.

    The file is rewritten line by line: comments, order and keys the user added stay
    exactly as they were; only missing keys are added.
    """
    ensure_home(home)
    path = env_path(home)
    values = read_env_values(home)
    _validate_env(values, path)  # refuse to touch a file we would not accept
    import secrets

    updates = {key: secrets.token_urlsafe(32) for key in SECRET_KEYS if not values.get(key)}
    if not path.exists():
        atomic_write(path, _env_template(updates), mode=0o600)
    elif updates:
        update_env(home, updates)
    return read_env(home)


def update_env(home: Path, updates: dict[str, str]) -> None:
    """Set keys in `.env`, keeping every other line as it is."""
    for key, value in updates.items():
        if not _ENV_KEY.match(key):
            raise StackError(f"Invalid .env key {key!r}.", "Keys are letters, digits and '_'.")
        if any(ch in value for ch in "\r\n\x00"):
            raise StackError(f"Invalid value for {key}: it contains a newline.", "Use a one-line value.")
    path = env_path(home)
    try:
        # split on "\n" only: splitlines() would also break a value at U+2028 and friends.
        # utf-8-sig: a BOM (Notepad) would hide the first line's key from _ENV_LINE.
        lines = path.read_text(encoding="utf-8-sig").rstrip("\n").split("\n")
    except FileNotFoundError:
        lines = []
    pending = dict(updates)
    out: list[str] = []
    for line in lines:
        match = _ENV_LINE.match(line)
        if match and match.group(1) in pending:
            key = match.group(1)
            out.append(f"{key}={pending.pop(key)}")
        else:
            out.append(line)
    out.extend(f"{key}={value}" for key, value in pending.items())
    atomic_write(path, "\n".join(out) + "\n", mode=0o600)


def restore_file(path: Path, content: bytes | None) -> None:
    """Put a home file back as the journal recorded it (None: it did not exist)."""
    if content is None:
        path.unlink(missing_ok=True)
        return
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o600
    atomic_write(path, content.decode("utf-8"), mode=mode)


def restored_home_files(env_text: str | None, state_text: str | None, project: str) -> dict[str, str]:
    """A backup's `.env` and state file as this home will hold them (home-relative name -> text).

    The archive may come from another installation (or machine): its settings and
    secrets come back, under this home's PROJECT_NAME. The state file is validated.
    """
    files: dict[str, str] = {}
    if state_text is not None:
        try:
            state = StackState.model_validate_json(state_text)
        except ValidationError as exc:
            raise StackError(f"The archive's state file is not valid: {_first_error(exc)}") from None
        files[STATE_FILE] = json.dumps(state.model_dump(mode="json"), indent=2, sort_keys=True) + "\n"
    if env_text is not None:
        wanted = f"PROJECT_NAME={project}"
        lines = [wanted if _is_key(line, "PROJECT_NAME") else line for line in env_text.splitlines()]
        files[ENV_FILE] = "\n".join(lines if wanted in lines else [wanted, *lines]) + "\n"
    return files


def write_home_files(home: Path, files: dict[str, str]) -> None:
    """Write home files (names from `restored_home_files`) atomically, readable by the owner only."""
    ensure_home(home)
    for name, text in files.items():
        atomic_write(home / name, text, mode=0o600)


BACKUPS_DIR = "backups"
UPDATE_RECORD = "last-update.json"
KEEP_UPDATE_BACKUPS = 3


def update_backup_path(home: Path, stamp: str) -> Path:
    """Where `update` keeps the data backup it takes before recreating (the folder is made 0700)."""
    folder = home / BACKUPS_DIR
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    return folder / f"update-{stamp}.tar"


def prune_update_backups(home: Path, keep: int = KEEP_UPDATE_BACKUPS) -> list[Path]:
    """Remove all but the newest `keep` update backups; returns the ones removed."""
    found = sorted((home / BACKUPS_DIR).glob("update-*.tar"))
    old = found[:-keep] if keep else found
    for path in old:
        path.unlink(missing_ok=True)
    return old


def write_update_record(home: Path, text: str) -> None:
    atomic_write(home / BACKUPS_DIR / UPDATE_RECORD, text, mode=0o600)


def read_update_record(home: Path) -> str | None:
    content = read_bytes(home / BACKUPS_DIR / UPDATE_RECORD)
    return content.decode("utf-8") if content is not None else None


def _is_key(line: str, key: str) -> bool:
    match = _ENV_LINE.match(line)
    return bool(match and match.group(1) == key)


def _env_template(secret_values: dict[str, str]) -> str:
    defaults = StackEnv()
    lines = [
        "# ollama-stack settings, read by docker compose. Keys you add are kept.",
        "# Ports bind to BIND_ADDRESS; 0.0.0.0 exposes them to your network (Ollama has no login).",
    ]
    for key in StackEnv.model_fields:
        value = secret_values.get(key, str(getattr(defaults, key)))
        lines.append(f"{key}={value}")
    return "\n".join(lines) + "\n"


# --- packaged resources -----------------------------------------------------


def resource_dir() -> Path:
    """Where the compose files and bundled extensions are.

    An installed wheel carries them in `ollama_stack_cli/_data`; a source checkout
    (editable install, tests) uses the top-level files, the one source of both.
    """
    package = Path(__file__).resolve().parent
    bundled = package / "_data"
    if (bundled / "docker-compose.yml").is_file():
        return bundled
    checkout = package.parent
    if (checkout / "docker-compose.yml").is_file():
        return checkout
    raise StackError(
        "The compose files are missing from the installation.",
        "Reinstall the package: pip install --force-reinstall ollama-stack.",
    )


def resource_path(name: str) -> Path:
    return resource_dir() / name


def compose_files(home: Path, platform: Platform) -> list[Path]:
    """Base file, the platform overlay, then the home's override when present."""
    base = resource_dir()
    files = [base / "docker-compose.yml"]
    if platform != "cpu":
        files.append(base / f"docker-compose.{platform}.yml")
    override = home / OVERRIDE_FILE
    if override.is_file():
        files.append(override)
    return files


def proxy_config_dir(home: Path) -> Path:
    return home / PROXY_CONFIG_DIR


def write_proxy_config(home: Path, servers: dict[str, dict[str, object]]) -> Path:
    """Write mcpo's config (Claude-desktop `mcpServers` style) for the proxy container.

    mcpo exits on an empty `mcpServers`, so with no extension enabled it serves a
    tiny built-in server that reports the stack's own facts.
    """
    directory = proxy_config_dir(home)
    ensure_home(home)
    directory.mkdir(mode=0o700, exist_ok=True)
    if not servers:
        write_if_changed(directory / BUILTIN_SERVER_FILE, BUILTIN_SERVER_SOURCE, mode=0o644)
        servers = {"ollama-stack": {"command": "python", "args": [f"/app/config/{BUILTIN_SERVER_FILE}"]}}
    document = json.dumps({"mcpServers": servers}, indent=2, sort_keys=True) + "\n"
    path = directory / PROXY_CONFIG_FILE
    # It may carry extension tokens: owner-only. The proxy container runs as root and still reads it.
    # Unchanged, it is not rewritten: no fsync, and no needless hot reload in the proxy.
    write_if_changed(path, document, mode=0o600)
    return path


def write_run_file(home: Path, name: str, document: dict[str, object]) -> Path:
    """A generated file the CLI hands to compose (JSON is valid YAML)."""
    directory = home / "run"
    ensure_home(home)
    directory.mkdir(mode=0o700, exist_ok=True)
    path = directory / name
    atomic_write(path, json.dumps(document, indent=2, sort_keys=True) + "\n", mode=0o600)
    return path


BUILTIN_SERVER_FILE = "ollama_stack_server.py"
BUILTIN_SERVER_SOURCE = '''"""Built-in MCP server so the proxy has something to serve with no extension enabled."""
from mcp.server.fastmcp import FastMCP

mcp = FastMCP("ollama-stack")


@mcp.tool()
def stack_info() -> str:
    """Describe this ollama-stack installation and how to add tools."""
    return ("This is the ollama-stack MCP proxy. Enable extensions with "
            "`ollama-stack extensions enable NAME` to add tools here.")


if __name__ == "__main__":
    mcp.run()
'''


# --- helpers ----------------------------------------------------------------


def _clean(message: str) -> str:
    return message.removeprefix("Value error, ").rstrip(".")


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"]) or "document"
    return f"{where}: {_clean(error['msg'])}"


def _error_bullets(exc: ValidationError) -> list[str]:
    return [
        f"{'.'.join(str(part) for part in error['loc']) or 'document'}: {_clean(error['msg'])}"
        for error in exc.errors()
    ]
