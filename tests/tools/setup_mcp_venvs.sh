#!/usr/bin/env bash
# Create the two virtualenvs the real-mcpo tests need, under DIR:
#
#   DIR/mcpo  the mcpo OpenAPI proxy from PyPI.  mcpo 0.0.20 only declares
#             lower bounds, and what pip resolves from them today breaks it:
#             with mcp 2.x `import mcpo` fails (streamablehttp_client is gone),
#             with fastapi >= 0.116 startup fails (TypeError in FastAPI()).
#             sse-starlette < 3 completes the known-good set (mcp 1.x era).
#   DIR/time  the reference `mcp-server-time` MCP server.  It needs mcp>=2.3,
#             which conflicts with the mcp<2 cap above: hence a venv of its own.
#
# Idempotent: a venv whose marker (the exact pin list) matches and whose import
# check passes is left as it is, so a re-run takes about a second.  A venv
# whose pins changed, or that is broken, is rebuilt from scratch.
#
# Prints the two executables' paths, one a line, on stdout at the end:
#   DIR/mcpo/bin/mcpo
#   DIR/time/bin/mcp-server-time
# Progress goes to stderr.  Set PYTHON to choose the interpreter (python3).
#
# Usage: tests/tools/setup_mcp_venvs.sh DIR
set -euo pipefail

MCPO_PINS=(
    "mcpo==0.0.20"
    "mcp<2"
    "fastapi<0.116"
    "sse-starlette<3"
)
MCPO_CHECK='import importlib.metadata as m, mcpo.main, mcp
assert m.version("mcpo") == "0.0.20", m.version("mcpo")
assert int(m.version("mcp").split(".")[0]) < 2, m.version("mcp")'

TIME_PINS=(
    "mcp-server-time==2026.10.19"
    "mcp>=2.3,<3"
)
TIME_CHECK='import mcp_server_time.server'

MARKER_NAME=".ollama-stack-mcp-venv"

usage() {
    echo "usage: $0 DIR" >&2
    exit 2
}

log() {
    echo "setup_mcp_venvs: $*" >&2
}

# venv_ok VENV EXE CHECK PIN...: is VENV built with exactly these pins and working?
venv_ok() {
    local venv=$1 exe=$2 check=$3
    shift 3
    local marker="$venv/$MARKER_NAME"
    [[ -f "$marker" && -x "$venv/bin/$exe" && -x "$venv/bin/python" ]] || return 1
    [[ "$(<"$marker")" == "$(printf '%s\n' "$@")" ]] || return 1
    "$venv/bin/python" -c "$check" >/dev/null 2>&1
}

# build_venv VENV EXE CHECK PIN...: (re)create VENV unless venv_ok says it is fine.
build_venv() {
    local venv=$1 exe=$2 check=$3
    shift 3
    if venv_ok "$venv" "$exe" "$check" "$@"; then
        log "$venv is up to date"
        return 0
    fi
    if [[ -e "$venv" ]]; then
        # Only ever delete something that is a venv: DIR is the caller's.
        if [[ ! -f "$venv/pyvenv.cfg" ]]; then
            log "$venv exists and is not a virtualenv; refusing to replace it"
            return 1
        fi
        log "rebuilding $venv"
        rm -rf -- "$venv"
    else
        log "creating $venv"
    fi
    "$PYTHON" -m venv "$venv"
    local logfile="$venv/.pip-install.log"
    if ! "$venv/bin/python" -m pip install --disable-pip-version-check \
        --no-input --quiet "$@" >"$logfile" 2>&1; then
        log "pip install failed in $venv:"
        cat "$logfile" >&2
        return 1
    fi
    if ! "$venv/bin/python" -c "$check"; then
        log "import check failed in $venv"
        return 1
    fi
    if [[ ! -x "$venv/bin/$exe" ]]; then
        log "$venv/bin/$exe is missing after install"
        return 1
    fi
    # The marker is written last: an interrupted build is redone next time.
    printf '%s\n' "$@" >"$venv/$MARKER_NAME"
    log "built $venv"
}

main() {
    [[ $# -eq 1 && -n "$1" ]] || usage
    PYTHON=${PYTHON:-python3}
    mkdir -p -- "$1"
    # Absolute: the venvs' console scripts carry absolute shebangs.
    local dir
    dir=$(cd -- "$1" && pwd -P)

    # The two builds are independent: run them side by side.
    build_venv "$dir/mcpo" mcpo "$MCPO_CHECK" "${MCPO_PINS[@]}" &
    local mcpo_pid=$!
    build_venv "$dir/time" mcp-server-time "$TIME_CHECK" "${TIME_PINS[@]}" &
    local time_pid=$!
    local status=0
    wait "$mcpo_pid" || status=1
    wait "$time_pid" || status=1
    if [[ $status -ne 0 ]]; then
        log "failed"
        exit 1
    fi

    echo "$dir/mcpo/bin/mcpo"
    echo "$dir/time/bin/mcp-server-time"
}

main "$@"
