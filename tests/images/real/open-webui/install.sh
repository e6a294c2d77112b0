#!/bin/sh
# Runs inside a throwaway container from the base image (see ../build.sh), with
# the build kit mounted at /tmp/build (a tmpfs: nothing under /tmp stays in the image).
set -eu
. /tmp/build/in/env.sh
uv venv --quiet --python /usr/bin/python3 /app/venv
# torch: the CPU wheel from pip's find-links; without the pin the resolver
# pulls the CUDA build (several GB).
uv pip install --python /app/venv/bin/python --compile-bytecode \
    "open-webui==0.12.4" "torch==2.13.0+cpu"
mkdir -p /app/backend/data
/app/venv/bin/python -c 'import open_webui, torch; print("open_webui ok, torch", torch.__version__)'
