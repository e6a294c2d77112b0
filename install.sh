#!/usr/bin/env bash
# Install the ollama-stack CLI (Linux, macOS). Run from a checkout:  bash install.sh
# See `bash install.sh --help` for options. Safe to run again to reinstall or upgrade.
set -euo pipefail

TAG="ollama-stack install:"
MIN_PY="3.10"

info() { printf '%s %s\n' "$TAG" "$*"; }
warn() { printf '%s warning: %s\n' "$TAG" "$*" >&2; }
die() { printf '%s error: %s\n' "$TAG" "$*" >&2; exit 1; }

usage() {
    cat <<'EOF'
Usage: bash install.sh [--help]

Installs the `ollama-stack` command and checks that it runs.

Where it installs, first that applies:
  1. pipx, when pipx is on PATH           (pipx install --force)
  2. the active virtualenv (VIRTUAL_ENV)  (its own pip)
  3. your user site                       (pip install --user)
     or, if that Python is "externally managed" (PEP 668, e.g. Debian/Ubuntu's
     system Python), a private venv in $OLLAMA_STACK_VENV, with the command
     linked into ~/.local/bin.

Environment:
  PYTHON=/path/to/python    Python (>= 3.10) to use; default: python3, then python
  OLLAMA_STACK_SOURCE=SPEC  what to install (any pip spec: a wheel, a directory,
                            a version); default: the checkout this script is in
  OLLAMA_STACK_VENV=DIR     venv used for the PEP 668 fallback;
                            default: ~/.local/share/ollama-stack/venv

The CLI itself needs Docker Engine 20.10+ with Compose v2.
EOF
}

for arg in "$@"; do
    case "$arg" in
        -h | --help) usage; exit 0 ;;
        *) printf '%s error: unknown argument: %s (see --help)\n' "$TAG" "$arg" >&2; exit 2 ;;
    esac
done

# die_python MESSAGE: error, then how to get a suitable Python with pip.
die_python() {
    printf '%s error: %s\n' "$TAG" "$*" >&2
    cat >&2 <<EOF
$TAG Python $MIN_PY+ with pip is required. Install it, then run this script again:
  Debian/Ubuntu:  sudo apt-get install python3 python3-pip python3-venv
  macOS:          brew install python
  other systems:  https://www.python.org/downloads/
  (or point PYTHON=/path/to/python3 at an existing Python $MIN_PY+)
EOF
    exit 1
}

# ---- what to install ---------------------------------------------------------------
if [[ -n "${OLLAMA_STACK_SOURCE:-}" ]]; then
    SRC="$OLLAMA_STACK_SOURCE"
else
    SRC="$(cd "$(dirname "$0")" && pwd)"
    if [[ ! -f "$SRC/pyproject.toml" ]] || ! grep -q '^name = "ollama-stack"' "$SRC/pyproject.toml"; then
        die "no ollama-stack checkout at $SRC; run this script from the repository, or set OLLAMA_STACK_SOURCE to a pip spec (e.g. a wheel path)"
    fi
fi

# ---- find Python >= 3.10 -------------------------------------------------------------
PY_CHECK='import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)'
py_version() { "$1" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])' 2>/dev/null || true; }

PY=""
if [[ -n "${PYTHON:-}" ]]; then
    command -v "$PYTHON" >/dev/null 2>&1 || die_python "PYTHON=$PYTHON was not found (or is not executable)"
    v="$(py_version "$PYTHON")"
    [[ -n "$v" ]] || die_python "PYTHON=$PYTHON does not run as Python"
    "$PYTHON" -c "$PY_CHECK" >/dev/null 2>&1 || die_python "PYTHON=$PYTHON is Python $v; need $MIN_PY+"
    PY="$PYTHON"
else
    candidates=()
    # An active venv's interpreter comes first, even if PATH was changed after activating.
    if [[ -n "${VIRTUAL_ENV:-}" && -x "$VIRTUAL_ENV/bin/python" ]]; then
        candidates+=("$VIRTUAL_ENV/bin/python")
    fi
    candidates+=(python3 python)
    found=""
    for c in "${candidates[@]}"; do
        command -v "$c" >/dev/null 2>&1 || continue
        v="$(py_version "$c")"
        [[ -n "$v" ]] || continue
        if "$c" -c "$PY_CHECK" >/dev/null 2>&1; then PY="$c"; break; fi
        found="$found $c=$v"
    done
    if [[ -z "$PY" ]]; then
        if [[ -n "$found" ]]; then die_python "found only older Python:$found; need $MIN_PY+"; fi
        die_python "no python3 or python found on PATH"
    fi
fi
# Resolve shims (pyenv, asdf) to the real interpreter so every step uses the same one.
PY="$("$PY" -c 'import sys; print(sys.executable)')"
[[ -x "$PY" ]] || die "could not resolve the Python interpreter (sys.executable is empty)"
info "using Python $(py_version "$PY") at $PY"

need_pip() { # $1 = python, $2 = extra hint
    if ! "$1" -m pip --version >/dev/null 2>&1; then
        die_python "pip is not available for $1${2:+; $2}"
    fi
}

py_is_venv() { "$1" -c 'import sys; sys.exit(0 if sys.prefix != sys.base_prefix else 1)' 2>/dev/null; }
py_is_externally_managed() {
    "$1" -c 'import os, sys, sysconfig
sys.exit(0 if os.path.isfile(os.path.join(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED")) else 1)' 2>/dev/null
}

path_has() { case ":$PATH:" in *":$1:"*) return 0 ;; *) return 1 ;; esac; }
path_hint() { # $1 = bin dir
    if ! path_has "$1"; then
        warn "$1 is not on your PATH; add it: export PATH=\"$1:\$PATH\" (e.g. in ~/.bashrc or ~/.zshrc)"
    fi
}

# pip_install PYTHON ARGS...: quiet pip install; its output lands in $PIP_LOG and is
# shown (on stderr) when it succeeded with warnings; on failure the caller shows it (pip_failed).
PIP_LOG="$(mktemp "${TMPDIR:-/tmp}/ollama-stack-install.XXXXXX")"
trap 'rm -f "$PIP_LOG"' EXIT
pip_install() {
    local py="$1"; shift
    if "$py" -m pip install --quiet --disable-pip-version-check --no-warn-script-location "$@" >"$PIP_LOG" 2>&1; then
        cat "$PIP_LOG" >&2
    else
        return 1
    fi
}
pip_failed() { cat "$PIP_LOG" >&2; die "$*"; }
# install_src PYTHON [PIP ARGS...]: install/upgrade $SRC and its dependencies. pip always
# reinstalls a directory, but skips a wheel/sdist file of the installed version: force that.
install_src() {
    local py="$1"; shift
    pip_install "$py" "$@" --upgrade "$SRC" || return 1
    if [[ -f "$SRC" ]]; then pip_install "$py" "$@" --force-reinstall --no-deps "$SRC" || return 1; fi
}

# ---- install -------------------------------------------------------------------------
BIN=""     # the ollama-stack executable we just installed
MODE=""

install_private_venv() {
    local venv="${OLLAMA_STACK_VENV:-$HOME/.local/share/ollama-stack/venv}"
    local bindir="$HOME/.local/bin"
    MODE="private venv $venv"
    if [[ -x "$venv/bin/python" ]] && "$venv/bin/python" -m pip --version >/dev/null 2>&1; then
        info "reusing venv $venv"
    else
        if ! "$PY" -c 'import venv, ensurepip' >/dev/null 2>&1; then
            die_python "$PY cannot create virtualenvs (module venv/ensurepip missing)"
        fi
        info "creating venv $venv"
        mkdir -p "$(dirname "$venv")"
        "$PY" -m venv --clear "$venv" || die "could not create venv $venv (on Debian/Ubuntu: sudo apt-get install python3-venv)"
    fi
    install_src "$venv/bin/python" || pip_failed "pip install into $venv failed (pip's output above)"
    [[ -x "$venv/bin/ollama-stack" ]] || die "pip did not create $venv/bin/ollama-stack"
    mkdir -p "$bindir"
    if [[ -e "$bindir/ollama-stack" && ! -L "$bindir/ollama-stack" ]]; then
        warn "replacing $bindir/ollama-stack (an earlier install) with a link to $venv/bin/ollama-stack"
    fi
    ln -sfn "$venv/bin/ollama-stack" "$bindir/ollama-stack"
    BIN="$bindir/ollama-stack"
    info "linked $BIN -> $venv/bin/ollama-stack"
    path_hint "$bindir"
}

if command -v pipx >/dev/null 2>&1; then
    MODE="pipx"
    info "installing with pipx from $SRC"
    # pipx ignores (and warns about) --python when --force reuses an existing venv.
    pipx_list="$(pipx list --short 2>/dev/null || true)"
    if grep -q '^ollama-stack ' <<<"$pipx_list"; then
        pipx install --force "$SRC" || die "pipx install failed (pipx's output above)"
    else
        pipx install --force --python "$PY" "$SRC" || die "pipx install failed (pipx's output above)"
    fi
    pipx_bin="$(pipx environment --value PIPX_BIN_DIR 2>/dev/null || true)"
    pipx_bin="${pipx_bin:-${PIPX_BIN_DIR:-$HOME/.local/bin}}"
    BIN="$pipx_bin/ollama-stack"
    path_hint "$pipx_bin"
elif py_is_venv "$PY"; then
    MODE="virtualenv $("$PY" -c 'import sys; print(sys.prefix)')"
    need_pip "$PY" "add it to the venv with: $PY -m ensurepip --upgrade"
    info "installing into the $MODE from $SRC"
    install_src "$PY" || pip_failed "pip install failed (pip's output above)"
    BIN="$("$PY" -c 'import sysconfig; print(sysconfig.get_path("scripts"))')/ollama-stack"
elif py_is_externally_managed "$PY"; then
    info "$PY is externally managed (PEP 668); installing into a private venv instead"
    install_private_venv
else
    MODE="user site (pip install --user)"
    need_pip "$PY"
    info "installing into the $MODE from $SRC"
    if install_src "$PY" --user; then
        bindir="$("$PY" -c 'import sysconfig; print(sysconfig.get_path("scripts", sysconfig.get_preferred_scheme("user")))')"
        BIN="$bindir/ollama-stack"
        path_hint "$bindir"
    elif grep -q 'externally-managed-environment' "$PIP_LOG"; then
        info "pip refused (externally-managed-environment); installing into a private venv instead"
        install_private_venv
    else
        pip_failed "pip install --user failed (pip's output above)"
    fi
fi

# ---- verify --------------------------------------------------------------------------
# Run the command where it was installed; only if it is not there, whatever is on PATH.
version=""
if [[ -z "$BIN" || ! -x "$BIN" ]]; then
    BIN="$(command -v ollama-stack 2>/dev/null || true)"
    [[ -n "$BIN" ]] || die "installed via $MODE, but no ollama-stack command was found (not on PATH either)"
fi
version="$("$BIN" --version 2>&1)" || die "installed, but \`$BIN --version\` failed: $version"

# ---- Docker (needed at run time, not to install) --------------------------------------
if ! command -v docker >/dev/null 2>&1; then
    warn "docker not found on PATH; ollama-stack needs Docker Engine 20.10+ with Compose v2 (https://docs.docker.com/engine/install/)"
elif ! docker compose version >/dev/null 2>&1 && ! docker-compose version >/dev/null 2>&1; then
    warn "Docker Compose v2 not found (neither \`docker compose\` nor \`docker-compose\`); ollama-stack needs it"
fi

info "installed $version via $MODE: $BIN"
on_path="$(command -v ollama-stack 2>/dev/null || true)"
if [[ -z "$on_path" ]]; then
    info "run it as $BIN (or add $(dirname "$BIN") to PATH); try: $BIN --help"
elif [[ "$(cd "$(dirname "$on_path")" && pwd -P)/$(basename "$on_path")" != "$(cd "$(dirname "$BIN")" && pwd -P)/$(basename "$BIN")" ]]; then
    warn "another ollama-stack comes first on your PATH: $on_path (this one is $BIN)"
else
    info "try: ollama-stack --help"
fi
