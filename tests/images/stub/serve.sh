#!/bin/sh
# Entrypoint of the ollama-stack test stub image (FROM scratch + static busybox).
#
# Stands in for ollama/ollama, open-webui and mcpo at once: busybox httpd
# listens on 11434, 8080 and 8000 and serves the same tiny document root
# (/api/version, /health, /openapi.json) on every port.
#
# Any arguments (e.g. mcpo-style `--port 8000 --config ... --hot-reload`
# passed as compose `command:`) are ignored, and echoed to the log.
#
# Fault knobs:
#   STUB_EXIT=1         exit 1 immediately
#   STUB_FAIL_HEALTH=1  serve an empty root: every path is 404, so the
#                       healthchecks never pass
#   STUB_PORTS="..."    override the listening ports (default "11434 8080 8000")

if [ "${STUB_EXIT:-0}" = "1" ]; then
    echo "stub: STUB_EXIT=1, exiting with status 1" >&2
    exit 1
fi

root=/srv/www
if [ "${STUB_FAIL_HEALTH:-0}" = "1" ]; then
    root=/srv/empty
    echo "stub: STUB_FAIL_HEALTH=1, health endpoints will answer 404" >&2
fi

pids=""

stop() {
    trap - TERM INT HUP
    # shellcheck disable=SC2086  # word splitting of the pid list is intended
    [ -n "$pids" ] && kill $pids 2>/dev/null
    exit 0
}
trap stop TERM INT HUP

for port in ${STUB_PORTS:-11434 8080 8000}; do
    httpd -f -p "$port" -h "$root" &
    pids="$pids $!"
done

echo "stub: serving $root on ports ${STUB_PORTS:-11434 8080 8000}" >&2
# Echoed on purpose, like a real server that logs its command line: mcpo's get
# --api-key KEY, so tests can check that the CLI masks secrets in what it shows.
echo "stub: args: $*" >&2

# `wait` returns early when a trapped signal arrives, so TERM is handled at
# once even though we are PID 1. If every httpd dies, exit non-zero.
while :; do
    wait
    alive=0
    for p in $pids; do
        kill -0 "$p" 2>/dev/null && alive=1
    done
    if [ "$alive" = "0" ]; then
        echo "stub: all httpd processes exited" >&2
        exit 1
    fi
    sleep 1
done
