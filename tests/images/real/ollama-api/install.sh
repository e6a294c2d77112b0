#!/bin/sh
# Runs inside a throwaway container from the base image (see ../build.sh).
# Stdlib only: no network needed.
set -eu
mkdir -p /app /root/.ollama/models
install -m 0644 /tmp/build/recipe/server.py /app/server.py
install -m 0755 /tmp/build/recipe/ollama /usr/local/bin/ollama
python3 -m py_compile /app/server.py
python3 /app/server.py --seed-only
