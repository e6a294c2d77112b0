#!/bin/sh
# Runs inside a throwaway container from the base image (see ../build.sh).
set -eu
. /tmp/build/in/env.sh
uv venv --quiet --python /usr/bin/python3 /app/.venv
# mcpo 0.0.20 only declares lower bounds; see tests/tools/setup_mcp_venvs.sh.
uv pip install --python /app/.venv/bin/python --compile-bytecode \
    "mcpo==0.0.20" "mcp<2" "fastapi<0.116" "sse-starlette<3" "uv==0.13.9"
# The bundled extensions' MCP servers, installed as uv tools where the stack's
# compose file points uv (UV_TOOL_DIR=/opt/uv-tools, bins in /opt/uv-tools/bin):
# the bundled manifests run "$UV_TOOL_BIN_DIR/<server>" and install it there only
# when it is missing, so here they run with no network. The compose file mounts
# the named volume mcp_proxy_tools at /opt/uv-tools; Docker fills an empty named
# volume from the image on first use, so the tools are there in the volume too.
#
# The receipts also let a plain `uvx mcp-server-time` reuse them offline:
# `uvx NAME` reuses an installed tool only when the tool's receipt
# (uv-receipt.toml: its resolver options and Python request) matches the
# options uvx runs with; otherwise it resolves afresh against the index, i.e.
# needs the network. So the tools are installed with none of the build's
# index/constraint/link-mode/python settings (uvx in the image runs with
# uv's defaults): from PyPI only, through the build's CA bundle.
export PATH=/app/.venv/bin:$PATH
(
    unset UV_INDEX_STRATEGY UV_EXTRA_INDEX_URL UV_FIND_LINKS UV_CONSTRAINT UV_LINK_MODE UV_PYTHON
    export UV_TOOL_DIR=/opt/uv-tools UV_TOOL_BIN_DIR=/opt/uv-tools/bin
    uv tool install "mcp-server-time==2026.10.19"
    uv tool install "mcp-server-fetch==2026.10.19"
    uv tool list
    )
/app/.venv/bin/python -c 'import importlib.metadata as m, mcpo.main; print("mcpo", m.version("mcpo"), "mcp", m.version("mcp"))'
